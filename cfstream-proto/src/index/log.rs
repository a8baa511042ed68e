//! `index.log`: a recording's index as an append-only text file, written by cfhlssink and read
//! back by controld (to serve a finished recording) and by cfhlssink itself (to resume after a
//! crash).
//!
//! One record per line, `\n`-terminated, fields `key=value` separated by single spaces:
//!
//! ```text
//! cfstream-index 1
//! track kind=v timescale=90000 part_target=45000
//! stream video_codec=avc1.64001f audio_codec=mp4a.40.2 width=640 height=360 fps=30/1 rate=48000 channels=2
//! target seconds=4
//! init kind=v dn=0
//! seg kind=v seq=0 t=0 d=360000 pdt=1764705000123 disc=0 dn=0 size=123456
//! trim seq=5
//! end
//! ```
//!
//! The writer appends a record only once every byte it refers to is on storage, so whatever the
//! log lists is playable; a last line without its `\n` is a write torn by a crash and is
//! ignored. Appending costs the same whatever the recording's length.

use std::collections::VecDeque;
use std::fmt::Write;

use super::{Progress, RecordingIndex, Segment, StreamInfo, TrackIndex, TrackKind};

/// The first line of every log.
pub const HEADER: &str = "cfstream-index 1";

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Header,
    Track {
        kind: TrackKind,
        timescale: u32,
        /// Ticks.
        part_target: u64,
    },
    /// What the multivariant playlist and the MPD say; the last one wins.
    Stream(StreamInfo),
    /// `EXT-X-TARGETDURATION`, seconds.
    Target {
        seconds: u32,
    },
    /// An init segment was written.
    Init {
        kind: TrackKind,
        discontinuity_number: u64,
    },
    /// A segment was closed and is listed (its `parts` are not logged).
    Segment {
        kind: TrackKind,
        segment: Segment,
    },
    /// `max-duration` removed the head: segments before `first_sequence` are not listed.
    Trim {
        first_sequence: u64,
    },
    /// The recording is finished.
    End,
}

/// Appends `record` as one line, `\n` included.
pub fn encode(record: &Record, out: &mut String) {
    // Writing to a String cannot fail.
    let _ = match record {
        Record::Header => writeln!(out, "{HEADER}"),
        Record::Track {
            kind,
            timescale,
            part_target,
        } => writeln!(
            out,
            "track kind={} timescale={timescale} part_target={part_target}",
            kind.code()
        ),
        Record::Stream(info) => {
            encode_stream(info, out);
            Ok(())
        }
        Record::Target { seconds } => writeln!(out, "target seconds={seconds}"),
        Record::Init {
            kind,
            discontinuity_number,
        } => writeln!(out, "init kind={} dn={discontinuity_number}", kind.code()),
        Record::Segment { kind, segment: s } => writeln!(
            out,
            "seg kind={} seq={} t={} d={} pdt={} disc={} dn={} size={}",
            kind.code(),
            s.sequence,
            s.decode_time,
            s.duration,
            s.program_date_time_ms,
            u8::from(s.discontinuity),
            s.discontinuity_number,
            s.size
        ),
        Record::Trim { first_sequence } => writeln!(out, "trim seq={first_sequence}"),
        Record::End => writeln!(out, "end"),
    };
}

fn encode_stream(info: &StreamInfo, out: &mut String) {
    out.push_str("stream");
    if let Some(codec) = &info.video_codec {
        let _ = write!(out, " video_codec={codec}");
    }
    if let Some(codec) = &info.audio_codec {
        let _ = write!(out, " audio_codec={codec}");
    }
    if info.width > 0 && info.height > 0 {
        let _ = write!(out, " width={} height={}", info.width, info.height);
    }
    if let Some((num, den)) = info.frame_rate {
        let _ = write!(out, " fps={num}/{den}");
    }
    if info.audio_sample_rate > 0 {
        let _ = write!(out, " rate={}", info.audio_sample_rate);
    }
    if info.audio_channels > 0 {
        let _ = write!(out, " channels={}", info.audio_channels);
    }
    out.push('\n');
}

/// A line that is not a record of this format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("index.log line {line}: {reason}")]
pub struct LogError {
    /// 1-based.
    pub line: u64,
    pub reason: String,
}

/// Parses one line (without its `\n`).
pub fn decode(line: &str) -> Result<Record, String> {
    if line == HEADER {
        return Ok(Record::Header);
    }
    let mut words = line.split(' ');
    let tag = words.next().unwrap_or_default();
    let fields = Fields::parse(words)?;
    let record = match tag {
        "track" => Record::Track {
            kind: fields.kind()?,
            timescale: fields.number("timescale")?,
            part_target: fields.number("part_target")?,
        },
        "stream" => Record::Stream(fields.stream()?),
        "target" => Record::Target {
            seconds: fields.number("seconds")?,
        },
        "init" => Record::Init {
            kind: fields.kind()?,
            discontinuity_number: fields.number("dn")?,
        },
        "seg" => Record::Segment {
            kind: fields.kind()?,
            segment: Segment {
                sequence: fields.number("seq")?,
                decode_time: fields.number("t")?,
                duration: fields.number("d")?,
                program_date_time_ms: fields.number("pdt")?,
                discontinuity: fields.flag("disc")?,
                discontinuity_number: fields.number("dn")?,
                size: fields.number("size")?,
                parts: Vec::new(),
            },
        },
        "trim" => Record::Trim {
            first_sequence: fields.number("seq")?,
        },
        "end" => Record::End,
        other if other.starts_with("cfstream-index") => {
            return Err(format!(
                "unsupported version {line:?} (this build reads {HEADER:?})"
            ));
        }
        other => return Err(format!("unknown record {other:?}")),
    };
    Ok(record)
}

/// The `key=value` fields of a line.
struct Fields<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Fields<'a> {
    fn parse(words: impl Iterator<Item = &'a str>) -> Result<Self, String> {
        let pairs = words
            .map(|w| {
                w.split_once('=')
                    .ok_or_else(|| format!("{w:?} is not key=value"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Fields(pairs))
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn required(&self, key: &str) -> Result<&'a str, String> {
        self.get(key).ok_or_else(|| format!("{key} is missing"))
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> Result<T, String> {
        let value = self.required(key)?;
        value
            .parse()
            .map_err(|_| format!("{key}={value} is not a number in range"))
    }

    fn optional_number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, String> {
        self.get(key).map(|_| self.number(key)).transpose()
    }

    fn flag(&self, key: &str) -> Result<bool, String> {
        match self.required(key)? {
            "0" => Ok(false),
            "1" => Ok(true),
            other => Err(format!("{key}={other} is not 0 or 1")),
        }
    }

    fn kind(&self) -> Result<TrackKind, String> {
        match self.required("kind")? {
            "v" => Ok(TrackKind::Video),
            "a" => Ok(TrackKind::Audio),
            other => Err(format!("kind={other} is not v or a")),
        }
    }

    fn stream(&self) -> Result<StreamInfo, String> {
        let frame_rate = match self.get("fps") {
            None => None,
            Some(fps) => {
                let (num, den) = fps
                    .split_once('/')
                    .and_then(|(n, d)| Some((n.parse().ok()?, d.parse().ok()?)))
                    .ok_or_else(|| format!("fps={fps} is not N/D"))?;
                Some((num, den))
            }
        };
        Ok(StreamInfo {
            video_codec: self.get("video_codec").map(str::to_owned),
            audio_codec: self.get("audio_codec").map(str::to_owned),
            width: self.optional_number("width")?.unwrap_or(0),
            height: self.optional_number("height")?.unwrap_or(0),
            frame_rate,
            audio_sample_rate: self.optional_number("rate")?.unwrap_or(0),
            audio_channels: self.optional_number("channels")?.unwrap_or(0),
            peak_bandwidth: 0,
            average_bandwidth: 0,
        })
    }
}

/// Reads a log incrementally into a [`RecordingIndex`].
#[derive(Clone, Debug)]
pub struct Replay {
    index: RecordingIndex,
    lines: u64,
    /// Target duration, known before or after the tracks are declared.
    target_seconds: u32,
    finished: bool,
}

impl Default for Replay {
    fn default() -> Self {
        Self::new()
    }
}

impl Replay {
    pub fn new() -> Self {
        Replay {
            index: RecordingIndex {
                stream: StreamInfo::default(),
                tracks: Vec::new(),
            },
            lines: 0,
            target_seconds: 0,
            finished: false,
        }
    }

    /// Continues from an index built elsewhere (the writer's live index, a resumed recording):
    /// records applied next change it as if it had been replayed.
    pub fn from_index(index: RecordingIndex) -> Self {
        Replay {
            target_seconds: index.tracks.first().map_or(0, |t| t.target_duration),
            finished: !index.tracks.is_empty()
                && (index.tracks.iter()).all(|t| t.progress == Progress::Finished),
            // Past the header line: more bytes fed are records.
            lines: 1,
            index,
        }
    }

    /// Feeds bytes of the file, split anywhere. Returns how many were consumed (whole lines);
    /// the caller keeps the rest and feeds it again with what follows.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<usize, LogError> {
        let mut consumed = 0;
        while let Some(end) = memchr::memchr(b'\n', &bytes[consumed..]) {
            let line = &bytes[consumed..consumed + end];
            self.lines += 1;
            let line_number = self.lines;
            let error = |reason: String| LogError {
                line: line_number,
                reason,
            };
            let text = std::str::from_utf8(line).map_err(|_| error("not UTF-8".into()))?;
            if self.lines == 1 && text != HEADER {
                return Err(error(format!("expected {HEADER:?}, found {text:?}")));
            }
            let record = decode(text).map_err(error)?;
            self.apply(record).map_err(error)?;
            consumed += end + 1;
        }
        Ok(consumed)
    }

    /// Applies one record, as [`Self::feed`] does for each line.
    pub fn apply(&mut self, record: Record) -> Result<(), String> {
        match record {
            Record::Header => {}
            Record::Track {
                kind,
                timescale,
                part_target,
            } => self.declare_track(kind, timescale, part_target)?,
            Record::Stream(info) => self.index.stream = info,
            Record::Target { seconds } => {
                self.target_seconds = seconds;
                for track in &mut self.index.tracks {
                    track.target_duration = seconds;
                }
            }
            Record::Init { kind, .. } => {
                self.track_mut(kind)?;
            }
            Record::Segment { kind, segment } => self.push_segment(kind, segment)?,
            Record::Trim { first_sequence } => self.trim(first_sequence),
            Record::End => {
                self.finished = true;
                for track in &mut self.index.tracks {
                    track.progress = Progress::Finished;
                }
            }
        }
        Ok(())
    }

    fn declare_track(&mut self, kind: TrackKind, timescale: u32, part: u64) -> Result<(), String> {
        if timescale == 0 {
            return Err("timescale=0".into());
        }
        if let Some(track) = self.index.tracks.iter_mut().find(|t| t.kind == kind) {
            // A resumed recording declares its tracks again.
            if track.timescale != timescale {
                return Err(format!(
                    "track {} redeclared with timescale {timescale} (was {})",
                    kind.code(),
                    track.timescale
                ));
            }
            track.part_target = part;
            return Ok(());
        }
        let track = TrackIndex {
            kind,
            timescale,
            target_duration: self.target_seconds,
            part_target: part,
            discontinuity_sequence: 0,
            segments: VecDeque::new(),
            open: None,
            progress: if self.finished {
                Progress::Finished
            } else {
                Progress::Live
            },
            trimmed: false,
        };
        self.index.tracks.push(track);
        // Video first, as RecordingIndex promises.
        self.index
            .tracks
            .sort_by_key(|t| t.kind != TrackKind::Video);
        Ok(())
    }

    fn track_mut(&mut self, kind: TrackKind) -> Result<&mut TrackIndex, String> {
        let code = kind.code();
        (self.index.tracks.iter_mut())
            .find(|t| t.kind == kind)
            .ok_or_else(|| format!("kind={code} before its track record"))
    }

    fn push_segment(&mut self, kind: TrackKind, segment: Segment) -> Result<(), String> {
        let track = self.track_mut(kind)?;
        if let Some(last) = track.segments.back() {
            if segment.sequence != last.sequence + 1 {
                return Err(format!(
                    "seq={} after seq={} (sequence numbers must be consecutive)",
                    segment.sequence, last.sequence
                ));
            }
        } else {
            track.discontinuity_sequence = segment.discontinuity_number;
        }
        track.segments.push_back(segment);
        Ok(())
    }

    fn trim(&mut self, first_sequence: u64) {
        for track in &mut self.index.tracks {
            let before = track.segments.len();
            while track
                .segments
                .front()
                .is_some_and(|s| s.sequence < first_sequence)
            {
                track.segments.pop_front();
            }
            if track.segments.len() != before {
                track.trimmed = true;
            }
            if let Some(first) = track.segments.front() {
                track.discontinuity_sequence = first.discontinuity_number;
            }
        }
    }

    pub fn index(&self) -> &RecordingIndex {
        &self.index
    }

    /// For what the log does not record: the open segment and the parts of a live recording.
    pub fn index_mut(&mut self) -> &mut RecordingIndex {
        &mut self.index
    }

    pub fn into_index(self) -> RecordingIndex {
        self.index
    }

    /// An `end` record was read.
    pub fn finished(&self) -> bool {
        self.finished
    }
}

/// Replays a whole log; a torn last line is ignored.
pub fn replay(bytes: &[u8]) -> Result<Replay, LogError> {
    let mut replay = Replay::new();
    replay.feed(bytes)?;
    Ok(replay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(sequence: u64, disc: bool, dn: u64) -> Segment {
        Segment {
            sequence,
            decode_time: sequence * 360_000,
            duration: 360_000,
            program_date_time_ms: 1_764_705_000_123 + sequence as i64 * 4000,
            discontinuity: disc,
            discontinuity_number: dn,
            size: 1000 + sequence,
            parts: Vec::new(),
        }
    }

    fn log(records: &[Record]) -> String {
        let mut out = String::new();
        for r in records {
            encode(r, &mut out);
        }
        out
    }

    fn sample() -> Vec<Record> {
        vec![
            Record::Header,
            Record::Track {
                kind: TrackKind::Audio,
                timescale: 48_000,
                part_target: 24_000,
            },
            Record::Track {
                kind: TrackKind::Video,
                timescale: 90_000,
                part_target: 45_000,
            },
            Record::Stream(StreamInfo {
                video_codec: Some("avc1.64001f".into()),
                audio_codec: Some("mp4a.40.2".into()),
                width: 640,
                height: 360,
                frame_rate: Some((30, 1)),
                audio_sample_rate: 48_000,
                audio_channels: 2,
                ..StreamInfo::default()
            }),
            Record::Init {
                kind: TrackKind::Video,
                discontinuity_number: 0,
            },
            Record::Target { seconds: 4 },
            Record::Segment {
                kind: TrackKind::Video,
                segment: segment(0, false, 0),
            },
            Record::Segment {
                kind: TrackKind::Video,
                segment: segment(1, true, 1),
            },
            Record::Segment {
                kind: TrackKind::Video,
                segment: segment(2, false, 1),
            },
        ]
    }

    #[test]
    fn every_record_round_trips() {
        let records = [
            sample(),
            vec![Record::Trim { first_sequence: 1 }, Record::End],
        ]
        .concat();
        let text = log(&records);
        assert!(
            text.starts_with("cfstream-index 1\ntrack kind=a timescale=48000 part_target=24000\n")
        );
        assert!(text.contains(
            "stream video_codec=avc1.64001f audio_codec=mp4a.40.2 width=640 height=360 fps=30/1 rate=48000 channels=2\n"
        ));
        assert!(text.contains(
            "seg kind=v seq=1 t=360000 d=360000 pdt=1764705004123 disc=1 dn=1 size=1001\n"
        ));
        let decoded: Vec<Record> = text.lines().map(|l| decode(l).unwrap()).collect();
        assert_eq!(decoded, records);
    }

    #[test]
    fn replay_builds_the_index_with_video_first_and_applies_trim_and_end() {
        let mut replay = replay(log(&sample()).as_bytes()).unwrap();
        let index = replay.index();
        assert_eq!(index.tracks[0].kind, TrackKind::Video);
        assert_eq!(index.tracks[0].target_duration, 4);
        assert_eq!(index.tracks[1].target_duration, 4);
        assert_eq!(index.tracks[0].segments.len(), 3);
        assert_eq!(index.tracks[0].progress, Progress::Live);
        assert_eq!(index.stream.width, 640);
        replay.apply(Record::Trim { first_sequence: 1 }).unwrap();
        let video = &replay.index().tracks[0];
        assert_eq!(video.media_sequence(), 1);
        assert_eq!(video.discontinuity_sequence, 1);
        assert!(video.trimmed);
        replay.apply(Record::End).unwrap();
        assert!(replay.finished());
        assert_eq!(replay.index().tracks[0].progress, Progress::Finished);
    }

    #[test]
    fn feed_accepts_any_split_and_ignores_a_torn_last_line() {
        let text = log(&sample());
        let whole = replay(text.as_bytes()).unwrap().into_index();
        for cut in [1, 7, 40, text.len() / 2, text.len() - 1] {
            let mut r = Replay::new();
            let mut pending = text.as_bytes()[..cut].to_vec();
            let used = r.feed(&pending).unwrap();
            pending.drain(..used);
            pending.extend_from_slice(&text.as_bytes()[cut..]);
            let used = r.feed(&pending).unwrap();
            assert_eq!(used, pending.len());
            assert_eq!(r.into_index(), whole, "cut at {cut}");
        }
        let torn = format!("{text}seg kind=v seq=3 t=10");
        let r = replay(torn.as_bytes()).unwrap();
        assert_eq!(r.index().tracks[0].segments.len(), 3);
    }

    #[test]
    fn malformed_lines_name_their_line_and_fault() {
        let cases = [
            ("cfstream-index 2\n", 1, "expected"),
            (
                "cfstream-index 1\nbogus x=1\n",
                2,
                "unknown record \"bogus\"",
            ),
            (
                "cfstream-index 1\ntrack kind=q timescale=1 part_target=1\n",
                2,
                "kind=q",
            ),
            (
                "cfstream-index 1\ntrack kind=v timescale=x part_target=1\n",
                2,
                "timescale=x",
            ),
            (
                "cfstream-index 1\ntrack kind=v part_target=1\n",
                2,
                "timescale is missing",
            ),
            (
                "cfstream-index 1\nseg kind=v seq=0 t=0 d=1 pdt=0 disc=0 dn=0 size=1\n",
                2,
                "before its track",
            ),
            (
                "cfstream-index 1\ntrack kind=v timescale=90000 part_target=1\nseg kind=v seq=0 t=0 d=1 pdt=0 disc=2 dn=0 size=1\n",
                3,
                "disc=2",
            ),
            (
                "cfstream-index 1\ntrack kind=v timescale=90000 part_target=1\nseg kind=v seq=0 t=0 d=1 pdt=0 disc=0 dn=0 size=1\nseg kind=v seq=2 t=0 d=1 pdt=0 disc=0 dn=0 size=1\n",
                4,
                "consecutive",
            ),
            ("cfstream-index 1\nstream fps=30\n", 2, "fps=30"),
            (
                "cfstream-index 1\ntrack kind=v timescale=0 part_target=1\n",
                2,
                "timescale=0",
            ),
            ("cfstream-index 1\nend junk\n", 2, "not key=value"),
        ];
        for (text, line, fault) in cases {
            let e = replay(text.as_bytes()).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.reason.contains(fault), "{text:?}: {e}");
        }
    }
}
