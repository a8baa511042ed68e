//! HLS media playlists (RFC 8216, version 3) as cfhlssink writes them: formatting of the header
//! and of segment entries, and a streaming rewrite that never holds a whole playlist in memory
//! (used to trim the head of a recording, to finish it, and to resume it after a crash).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

/// `EXT-X-PLAYLIST-TYPE`; a playlist whose head was trimmed has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaylistType {
    Event,
    Vod,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub target_duration: u32,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub playlist_type: Option<PlaylistType>,
}

impl Header {
    pub fn format(&self, out: &mut String) {
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
            self.target_duration, self.media_sequence, self.discontinuity_sequence
        );
        match self.playlist_type {
            Some(PlaylistType::Event) => out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
            Some(PlaylistType::Vod) => out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n"),
            None => {}
        }
    }
}

pub const ENDLIST: &str = "#EXT-X-ENDLIST\n";

/// A segment entry as listed: its lines, already formatted, and what they say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The tag lines and the URI line, each ending in a newline.
    pub text: String,
    pub duration_ns: u64,
    pub discontinuity: bool,
}

impl Entry {
    /// `program_date_time` is an RFC 3339 date-time with milliseconds.
    pub fn new(uri: &str, duration_ns: u64, discontinuity: bool, program_date_time: &str) -> Self {
        let mut text = String::with_capacity(96);
        if discontinuity {
            text.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let millis = (duration_ns + 500_000) / 1_000_000;
        let _ = write!(
            text,
            "#EXT-X-PROGRAM-DATE-TIME:{program_date_time}\n#EXTINF:{}.{:03},\n{uri}\n",
            millis / 1000,
            millis % 1000
        );
        Entry {
            text,
            duration_ns: millis * 1_000_000,
            discontinuity,
        }
    }

    /// The URI line of the entry.
    pub fn uri(&self) -> &str {
        self.text.trim_end().rsplit('\n').next().unwrap_or("")
    }
}

/// What [`rewrite`] does on the way.
#[derive(Clone, Copy, Debug, Default)]
pub struct RewriteOptions {
    /// Drop entries from the head until at least this much media is dropped.
    pub drop_ns: u64,
    /// Write `EXT-X-ENDLIST` (and type VOD unless entries were ever dropped).
    pub finish: bool,
    /// How many of the last entries to return in [`RewriteSummary::tail`].
    pub keep_tail: usize,
}

#[derive(Clone, Debug)]
pub struct RewriteSummary {
    /// The header as written.
    pub header: Header,
    /// Whether the source was already finished.
    pub was_finished: bool,
    pub dropped: u64,
    pub kept: u64,
    pub kept_ns: u64,
    /// The last `keep_tail` kept entries with their discontinuity sequence numbers.
    pub tail: VecDeque<(Entry, u64)>,
    /// Discontinuity sequence number of the last kept entry (or of the header when none).
    pub last_discontinuity_number: u64,
}

/// Streams the playlist `src` into `dst` with `options` applied. An incomplete entry at the end
/// (cut by a crash) is left out. Returns `InvalidData` when `src` is not a playlist this module
/// can continue (no `#EXTM3U`, no target duration).
pub fn rewrite(src: &Path, dst: &Path, options: RewriteOptions) -> io::Result<RewriteSummary> {
    let mut reader = Reader::new(BufReader::with_capacity(64 * 1024, File::open(src)?));
    let mut out = BufWriter::with_capacity(64 * 1024, File::create(dst)?);

    let mut dropped = 0u64;
    let mut dropped_ns = 0u64;
    let mut dropped_discontinuities = 0u64;
    let mut pending = reader.next_entry()?;
    while let Some(entry) = pending.as_ref().filter(|_| dropped_ns < options.drop_ns) {
        dropped += 1;
        dropped_ns += entry.duration_ns;
        dropped_discontinuities += entry.discontinuity as u64;
        pending = reader.next_entry()?;
    }
    let input = reader.header()?;
    let playlist_type = match input.playlist_type {
        Some(PlaylistType::Event) if dropped > 0 => None,
        Some(PlaylistType::Event) if options.finish => Some(PlaylistType::Vod),
        other => other,
    };
    let header = Header {
        target_duration: input.target_duration,
        media_sequence: input.media_sequence + dropped,
        discontinuity_sequence: input.discontinuity_sequence + dropped_discontinuities,
        playlist_type,
    };
    let mut text = String::new();
    header.format(&mut text);
    out.write_all(text.as_bytes())?;

    let mut summary = RewriteSummary {
        header: header.clone(),
        was_finished: false,
        dropped,
        kept: 0,
        kept_ns: 0,
        tail: VecDeque::with_capacity(options.keep_tail + 1),
        last_discontinuity_number: header.discontinuity_sequence,
    };
    while let Some(entry) = pending {
        out.write_all(entry.text.as_bytes())?;
        summary.kept += 1;
        summary.kept_ns += entry.duration_ns;
        summary.last_discontinuity_number += entry.discontinuity as u64;
        if options.keep_tail > 0 {
            if summary.tail.len() == options.keep_tail {
                summary.tail.pop_front();
            }
            summary
                .tail
                .push_back((entry, summary.last_discontinuity_number));
        }
        pending = reader.next_entry()?;
    }
    summary.was_finished = reader.ended;
    if options.finish {
        out.write_all(ENDLIST.as_bytes())?;
    }
    out.into_inner().map_err(|e| e.into_error())?;
    Ok(summary)
}

/// Reads a media playlist entry by entry.
struct Reader<R> {
    input: R,
    line: String,
    target_duration: Option<u32>,
    media_sequence: u64,
    discontinuity_sequence: u64,
    playlist_type: Option<PlaylistType>,
    seen_extm3u: bool,
    ended: bool,
}

impl<R: BufRead> Reader<R> {
    fn new(input: R) -> Self {
        Reader {
            input,
            line: String::new(),
            target_duration: None,
            media_sequence: 0,
            discontinuity_sequence: 0,
            playlist_type: None,
            seen_extm3u: false,
            ended: false,
        }
    }

    /// The header tags seen so far (complete once the first entry was read).
    fn header(&self) -> io::Result<Header> {
        let invalid = |what| io::Error::new(io::ErrorKind::InvalidData, what);
        if !self.seen_extm3u {
            return Err(invalid("not an HLS playlist: no #EXTM3U"));
        }
        let target_duration = self
            .target_duration
            .ok_or_else(|| invalid("playlist without #EXT-X-TARGETDURATION"))?;
        Ok(Header {
            target_duration,
            media_sequence: self.media_sequence,
            discontinuity_sequence: self.discontinuity_sequence,
            playlist_type: self.playlist_type,
        })
    }

    /// The next complete entry, or None at the end (or at an incomplete last entry).
    fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        let mut entry = Entry {
            text: String::new(),
            duration_ns: 0,
            discontinuity: false,
        };
        let mut has_duration = false;
        loop {
            self.line.clear();
            if self.input.read_line(&mut self.line)? == 0 || !self.line.ends_with('\n') {
                return Ok(None);
            }
            let line = self.line.trim_end();
            if line.is_empty() {
                continue;
            }
            if let Some(tag) = line.strip_prefix('#') {
                let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
                match name {
                    "EXTM3U" => self.seen_extm3u = true,
                    "EXT-X-TARGETDURATION" => self.target_duration = value.parse().ok(),
                    "EXT-X-MEDIA-SEQUENCE" => self.media_sequence = value.parse().unwrap_or(0),
                    "EXT-X-DISCONTINUITY-SEQUENCE" => {
                        self.discontinuity_sequence = value.parse().unwrap_or(0)
                    }
                    "EXT-X-PLAYLIST-TYPE" => {
                        self.playlist_type = match value {
                            "EVENT" => Some(PlaylistType::Event),
                            "VOD" => Some(PlaylistType::Vod),
                            _ => None,
                        }
                    }
                    "EXT-X-ENDLIST" => self.ended = true,
                    "EXT-X-DISCONTINUITY" => {
                        entry.discontinuity = true;
                        entry.text.push_str(&self.line);
                    }
                    "EXTINF" => {
                        entry.duration_ns = parse_duration_ns(value);
                        has_duration = true;
                        entry.text.push_str(&self.line);
                    }
                    "EXT-X-PROGRAM-DATE-TIME" => entry.text.push_str(&self.line),
                    _ => {}
                }
                continue;
            }
            if !has_duration {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("playlist lists {line:?} without #EXTINF"),
                ));
            }
            entry.text.push_str(line);
            entry.text.push('\n');
            return Ok(Some(entry));
        }
    }
}

/// Parses an `EXTINF` value ("4.000," or "4,title") to nanoseconds; bad values count as 0.
fn parse_duration_ns(value: &str) -> u64 {
    let number = value.split(',').next().unwrap_or("").trim();
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u64 = whole.parse().unwrap_or(0);
    let mut nanos = 0u64;
    let mut scale = 100_000_000u64;
    for digit in fraction.bytes().take(9) {
        if !digit.is_ascii_digit() {
            return 0;
        }
        nanos += (digit - b'0') as u64 * scale;
        scale /= 10;
    }
    whole.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// The live playlist: the window of the last entries.
pub fn format_live<'a>(
    target_duration: u32,
    first_sequence: u64,
    discontinuity_sequence: u64,
    entries: impl Iterator<Item = &'a Entry>,
    finished: bool,
) -> String {
    let mut text = String::with_capacity(1024);
    Header {
        target_duration,
        media_sequence: first_sequence,
        discontinuity_sequence,
        playlist_type: None,
    }
    .format(&mut text);
    for entry in entries {
        text.push_str(&entry.text);
    }
    if finished {
        text.push_str(ENDLIST);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_playlist(
        dir: &Path,
        header: &Header,
        entries: &[Entry],
        tail: &str,
    ) -> std::path::PathBuf {
        let mut text = String::new();
        header.format(&mut text);
        for e in entries {
            text.push_str(&e.text);
        }
        text.push_str(tail);
        let path = dir.join("in.m3u8");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn entries(n: u64) -> Vec<Entry> {
        (0..n)
            .map(|i| {
                Entry::new(
                    &format!("seg-{i:08}.ts"),
                    2_000_000_000,
                    i == 2,
                    "2026-01-01T00:00:00.000Z",
                )
            })
            .collect()
    }

    fn header() -> Header {
        Header {
            target_duration: 4,
            media_sequence: 0,
            discontinuity_sequence: 0,
            playlist_type: Some(PlaylistType::Event),
        }
    }

    #[test]
    fn entry_format() {
        let e = Entry::new(
            "seg-00000007.ts",
            4_000_400_000,
            true,
            "2026-01-02T03:04:05.678Z",
        );
        assert_eq!(
            e.text,
            "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-01-02T03:04:05.678Z\n#EXTINF:4.000,\nseg-00000007.ts\n"
        );
        assert_eq!(e.uri(), "seg-00000007.ts");
        assert_eq!(e.duration_ns, 4_000_000_000);
        assert_eq!(parse_duration_ns("3.5,"), 3_500_000_000);
        assert_eq!(parse_duration_ns("x"), 0);
    }

    #[test]
    fn finish_turns_event_into_vod_and_parses() {
        let dir = tempfile::tempdir().unwrap();
        let src = write_playlist(dir.path(), &header(), &entries(5), "");
        let dst = dir.path().join("out.m3u8");
        let summary = rewrite(
            &src,
            &dst,
            RewriteOptions {
                finish: true,
                keep_tail: 2,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(summary.kept, 5);
        assert_eq!(summary.kept_ns, 10_000_000_000);
        assert_eq!(summary.tail.len(), 2);
        assert_eq!(summary.tail[1].0.uri(), "seg-00000004.ts");
        assert_eq!(summary.last_discontinuity_number, 1);
        let text = std::fs::read(&dst).unwrap();
        let playlist = m3u8_rs::parse_media_playlist_res(&text).unwrap();
        assert_eq!(
            playlist.playlist_type,
            Some(m3u8_rs::MediaPlaylistType::Vod)
        );
        assert!(playlist.end_list);
        assert_eq!(playlist.segments.len(), 5);
        assert!(playlist.segments[2].discontinuity);
    }

    #[test]
    fn trim_advances_sequences_and_drops_type() {
        let dir = tempfile::tempdir().unwrap();
        let src = write_playlist(dir.path(), &header(), &entries(6), "");
        let dst = dir.path().join("out.m3u8");
        let summary = rewrite(
            &src,
            &dst,
            RewriteOptions {
                drop_ns: 5_000_000_000,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(summary.dropped, 3, "drops until at least 5 s are gone");
        assert_eq!(summary.header.media_sequence, 3);
        assert_eq!(
            summary.header.discontinuity_sequence, 1,
            "the dropped discontinuity counts"
        );
        assert_eq!(summary.header.playlist_type, None);
        let playlist = m3u8_rs::parse_media_playlist_res(&std::fs::read(&dst).unwrap()).unwrap();
        assert_eq!(playlist.media_sequence, 3);
        assert_eq!(playlist.discontinuity_sequence, 1);
        assert_eq!(playlist.segments.len(), 3);
        assert_eq!(playlist.segments[0].uri, "seg-00000003.ts");
        assert!(!playlist.end_list);
    }

    #[test]
    fn incomplete_last_entry_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let src = write_playlist(
            dir.path(),
            &header(),
            &entries(2),
            "#EXTINF:2.000,\nseg-000",
        );
        let dst = dir.path().join("out.m3u8");
        let summary = rewrite(&src, &dst, RewriteOptions::default()).unwrap();
        assert_eq!(summary.kept, 2);
        assert!(
            std::fs::read_to_string(&dst)
                .unwrap()
                .ends_with("seg-00000001.ts\n")
        );
    }

    #[test]
    fn not_a_playlist_is_invalid_data() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("in.m3u8");
        std::fs::write(&src, "hello\n").unwrap();
        let err = rewrite(&src, &dir.path().join("out"), RewriteOptions::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn live_window_parses() {
        let e = entries(4);
        let text = format_live(4, 1, 0, e[1..].iter(), true);
        let playlist = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(playlist.media_sequence, 1);
        assert_eq!(playlist.segments.len(), 3);
        assert!(playlist.end_list);
        assert!(playlist.segments[0].program_date_time.is_some());
    }
}
