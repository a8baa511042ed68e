//! One recording being written: frames through the CMAF segmenter
//! ([`cfstream_proto::cmaf::Segmenter`]) into init and media segment files, `index.log` and the
//! in-process live index, through the [`Storage`] interface.
//!
//! Order of writes, which is what makes a crash at any moment leave a playable recording: a
//! part's bytes are appended to its segment file before the live index lists the part, and a
//! record goes into `index.log` only once the files it names are complete (sealed: in a bucket,
//! uploaded), and the log is sealed after each segment's record. A resumed recording
//! drops the files its log does not list and continues behind a discontinuity.
//!
//! Memory and per-frame cost do not depend on the recording's length, except for the live
//! index, which holds one entry per listed segment (about 100 bytes) for the server.

mod resume;
mod retention;
mod startup;
#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cfstream_proto::cmaf::{self, Event, Segmenter, SegmenterConfig, TrackConfig};
use cfstream_proto::index::log::{self, Record};
use cfstream_proto::index::{TrackKind, init_name, segment_name};

use super::live::{self, LiveHandle};
use super::{INDEX_LOG, RecordingSummary};
use crate::storage::{LocalDir, Storage};
use retention::{Retention, WINDOW_TARGET_DURATIONS};
use startup::Startup;

/// Parts of segments that ended more than this many target durations before the live edge are
/// dropped from the live index (LL-HLS lists parts of the last three).
const PART_HISTORY_TARGET_DURATIONS: u64 = WINDOW_TARGET_DURATIONS + 1;
/// The part target of a recording without low latency: one fragment per segment.
const NO_PARTS: Duration = Duration::from_secs(3600);
/// Segments of a stream without video (no keyframes to cut at), or the target duration when
/// it is shorter.
const AUDIO_ONLY_SEGMENT: Duration = Duration::from_secs(6);

#[derive(Clone, Debug)]
pub struct RecordingConfig {
    pub directory: PathBuf,
    /// `EXT-X-TARGETDURATION` in seconds; `None`: the first segment's duration rounded up.
    pub target_duration: Option<u32>,
    /// Keep the recording; false = the live window only.
    pub record: bool,
    pub max_duration_ns: u64,
    /// `None`: no parts (one fragment per segment).
    pub part_target: Option<Duration>,
}

/// One access unit: H.264 with 4-byte or avcC-sized NAL unit lengths, or one raw AAC frame.
#[derive(Clone, Debug)]
pub struct Frame {
    pub kind: TrackKind,
    pub data: Bytes,
    /// Nanoseconds on the element's running time.
    pub pts: i64,
    pub dts: i64,
    pub duration: Option<u64>,
    pub keyframe: bool,
}

/// What the element reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A segment of the main track (video, or audio alone) was listed.
    SegmentAdded(SegmentAdded),
    /// A segment lasts longer than the target duration (a GOP too long).
    TargetExceeded {
        uri: String,
        duration_ns: u64,
        target_seconds: u32,
    },
    /// Media that could not be written (a box beyond its format's limits).
    Dropped(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentAdded {
    pub uri: String,
    pub sequence: u64,
    pub duration_ns: u64,
    /// Start on the media timeline, ns.
    pub start_ns: u64,
    pub discontinuity: bool,
}

/// A storage error; its message names the path.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct Error {
    /// Opening the recording failed (rather than writing to it).
    pub opening: bool,
    #[source]
    pub source: io::Error,
}

impl Error {
    fn open(source: io::Error) -> Self {
        Error {
            opening: true,
            source,
        }
    }

    fn write(source: io::Error) -> Self {
        Error {
            opening: false,
            source,
        }
    }
}

pub struct Recording {
    config: RecordingConfig,
    storage: Arc<LocalDir>,
    segmenter: Segmenter,
    live: LiveHandle,
    /// Configured codecs; a track is set on the segmenter once the startup hold is over.
    configs: [Option<TrackConfig>; 2],
    /// Tracks the log declared.
    declared: [bool; 2],
    /// Tracks whose pads exist (their configuration may still be unknown).
    expected: [bool; 2],
    /// Until the first frames are released into the segmenter.
    startup: Option<Startup>,
    /// The gap epoch the segmenter's current run belongs to.
    run_epoch: u64,
    /// The newest epoch each track's frames came with.
    track_epochs: [u64; 2],
    /// Frames of a newer epoch than the run's, waiting for every track to reach the gap.
    next_run: Startup,
    retention: Retention,
    /// The track whose segments are reported and counted (fixed by the first one listed).
    main: Option<TrackKind>,
    epoch: u64,
    epoch_start: Option<i64>,
    resumed: bool,
    notices: Vec<Notice>,
    line: String,
}

fn slot(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
    }
}

impl Recording {
    /// Starts a recording in `config.directory`, or resumes the unfinished one found there
    /// behind a discontinuity. A finished recording there is an error (never overwritten).
    pub fn open(config: RecordingConfig) -> Result<Self, Error> {
        let storage = Arc::new(LocalDir::open(&config.directory).map_err(Error::open)?);
        let found = resume::prepare(&storage).map_err(Error::open)?;
        // A resumed recording keeps the target its playlists were published with.
        let target_duration = found.target_duration.or(config.target_duration);
        let segmenter_config = SegmenterConfig {
            part_target: config.part_target.unwrap_or(NO_PARTS),
            target_duration,
            audio_only_segment: AUDIO_ONLY_SEGMENT.min(Duration::from_secs(
                target_duration.map_or(u64::MAX, u64::from),
            )),
        };
        let log_target = found.target_duration.is_none() && target_duration.is_some();
        let mut segmenter = Segmenter::new(segmenter_config);
        let max_ns = config.record.then_some(config.max_duration_ns);
        let mut retention = Retention::new(max_ns);
        let mut main = None;
        if let Some(point) = &found.point {
            segmenter.resume(point.clone());
            main = found.main;
            for &(sequence, duration_ns) in &found.main_segments {
                retention.listed(sequence, duration_ns, found.target_duration.unwrap_or(1));
            }
        }
        let mut declared = [false; 2];
        for track in &found.index.tracks {
            declared[slot(track.kind)] = true;
        }
        let live = live::register(&config.directory, found.index);
        let mut recording = Recording {
            config,
            storage,
            segmenter,
            live,
            configs: [None, None],
            declared,
            expected: [false; 2],
            startup: Some(Startup::default()),
            run_epoch: 0,
            track_epochs: [0; 2],
            next_run: Startup::default(),
            retention,
            main,
            epoch: 0,
            epoch_start: None,
            resumed: found.point.is_some(),
            notices: Vec::new(),
            line: String::new(),
        };
        if let (true, Some(seconds)) = (log_target, target_duration) {
            recording
                .log(Record::Target { seconds })
                .map_err(|e| Error::open(e.source))?;
        }
        Ok(recording)
    }

    /// Whether an unfinished recording was continued.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    pub fn directory(&self) -> &Path {
        &self.config.directory
    }

    /// What the segmenter corrected or dropped.
    pub fn stats(&self) -> &cmaf::Stats {
        self.segmenter.stats()
    }

    /// What happened since the last call.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// The current gap epoch: [`Self::break_at_gap`] increments it. Frames carry the epoch of
    /// their pad (the epoch before a gap until that pad, too, reached the gap), so that frames
    /// from before a gap arriving after it was handled are dropped rather than written after it.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// PTS of the first frame written in the current epoch: a pad that has not signalled the
    /// gap yet but sends frames from this time on is past it.
    pub fn epoch_start(&self) -> Option<i64> {
        self.epoch_start
    }

    /// Sets a track's codec (from caps, or from the stream's first parameter sets). A changed
    /// configuration starts a new run, as a discontinuity, with a new init segment.
    pub fn set_config(&mut self, config: TrackConfig) -> Result<(), Error> {
        let index = slot(config.kind());
        if self.configs[index].as_ref() == Some(&config) {
            return Ok(());
        }
        self.configs[index] = Some(config.clone());
        if self.startup.is_some() {
            return self.release_if_ready();
        }
        self.set_track(config)?;
        self.drain()
    }

    /// A pad for `kind` exists: the first frames wait for its configuration (within bounds).
    pub fn expect(&mut self, kind: TrackKind) -> Result<(), Error> {
        self.expected[slot(kind)] = true;
        self.release_if_ready()
    }

    pub fn push(&mut self, frame: Frame, epoch: u64) -> Result<(), Error> {
        if epoch < self.run_epoch {
            return Ok(()); // from before a gap whose run is already closed
        }
        let wall_clock_ms = now_ms();
        let kind = slot(frame.kind);
        self.track_epochs[kind] = self.track_epochs[kind].max(epoch);
        if epoch > self.run_epoch {
            // After a gap that another track has not reached yet: its frames from before the
            // gap still go into the run they belong to.
            self.epoch_start.get_or_insert(frame.pts);
            self.next_run.hold(frame, wall_clock_ms);
            return self.start_next_run_if_ready();
        }
        if let Some(startup) = self.startup.as_mut() {
            startup.hold(frame, wall_clock_ms);
            return self.release_if_ready();
        }
        self.write_frame(frame, wall_clock_ms)?;
        self.drain()
    }

    /// The publisher went away and came back: the run ends once every track has reached the
    /// gap (or after a bounded wait), and what follows is a new run behind a discontinuity.
    pub fn break_at_gap(&mut self) -> Result<(), Error> {
        self.epoch += 1;
        self.epoch_start = None;
        Ok(())
    }

    /// Ends the run when every track with frames has sent one from after the gap, or the
    /// frames waiting for that exceed their bounds.
    fn start_next_run_if_ready(&mut self) -> Result<(), Error> {
        let run = self.run_epoch;
        let waiting = |kind: TrackKind| {
            self.configs[slot(kind)].is_some() && self.track_epochs[slot(kind)] <= run
        };
        let all_reached = ![TrackKind::Video, TrackKind::Audio]
            .into_iter()
            .any(waiting);
        if all_reached || self.next_run.ready(|_| false, |_| true) {
            self.start_next_run()?;
        }
        Ok(())
    }

    fn start_next_run(&mut self) -> Result<(), Error> {
        self.release()?;
        self.segmenter.discontinuity();
        self.drain()?;
        self.run_epoch = self.epoch;
        for held in std::mem::take(&mut self.next_run).into_frames() {
            self.write_frame(held.frame, held.wall_clock_ms)?;
        }
        self.drain()
    }

    /// Writes everything held, closes the last segments and the log (`end`); the live index
    /// goes away, so that the server reads the finished log.
    /// Returns what it holds, with the notices of the last segments.
    pub fn finish(mut self) -> Result<(RecordingSummary, Vec<Notice>), Error> {
        self.release()?;
        if self.run_epoch < self.epoch {
            self.start_next_run()?;
        }
        self.segmenter.finish();
        self.drain()?;
        self.log(Record::End)?;
        self.storage.seal(INDEX_LOG).map_err(Error::write)?;
        self.delete_pending_later();
        let summary = RecordingSummary {
            segments: self.retention.listed_segments(),
            duration: Duration::from_nanos(self.retention.listed_ns()),
            media_sequence: self.retention.first_listed().unwrap_or(0),
        };
        Ok((summary, self.take_notices()))
    }

    fn release_if_ready(&mut self) -> Result<(), Error> {
        let ready = (self.startup.as_ref()).is_some_and(|s| {
            s.ready(
                |kind| self.configs[slot(kind)].is_some(),
                |kind| self.expected[slot(kind)],
            )
        });
        if ready { self.release() } else { Ok(()) }
    }

    /// Ends the startup hold: the configured tracks are set, the held frames written.
    fn release(&mut self) -> Result<(), Error> {
        let Some(startup) = self.startup.take() else {
            return Ok(());
        };
        for config in self.configs.clone().into_iter().flatten() {
            self.set_track(config)?;
        }
        for held in startup.into_frames() {
            self.write_frame(held.frame, held.wall_clock_ms)?;
        }
        self.drain()
    }

    fn set_track(&mut self, config: TrackConfig) -> Result<(), Error> {
        let kind = config.kind();
        if !self.declared[slot(kind)] {
            let seconds = self.config.part_target.unwrap_or(NO_PARTS).as_secs_f64();
            let part_target = (seconds * f64::from(config.timescale())).round() as u64;
            self.log(Record::Track {
                kind,
                timescale: config.timescale(),
                part_target,
            })?;
            self.declared[slot(kind)] = true;
        }
        self.segmenter.set_track(config);
        let (video, audio) = match &self.configs {
            [video, audio] => (video.as_ref(), audio.as_ref()),
        };
        let video = video.and_then(|c| match c {
            TrackConfig::Video(v) => Some(v),
            TrackConfig::Audio(_) => None,
        });
        let audio = audio.and_then(|c| match c {
            TrackConfig::Audio(a) => Some(a),
            TrackConfig::Video(_) => None,
        });
        self.log(Record::Stream(cmaf::stream_info(video, audio)))
    }

    /// Hands a frame to the segmenter when its track is set (else it has no codec yet).
    fn write_frame(&mut self, frame: Frame, wall_clock_ms: i64) -> Result<(), Error> {
        if self.configs[slot(frame.kind)].is_none() {
            return Ok(());
        }
        self.epoch_start.get_or_insert(frame.pts);
        let frame = cmaf::Frame {
            track: frame.kind,
            dts_ns: frame.dts,
            pts_ns: frame.pts,
            duration_ns: frame.duration,
            keyframe: frame.keyframe,
            data: frame.data,
            wall_clock_ms,
        };
        // The track is set (configs and the segmenter's tracks are set together).
        let _ = self.segmenter.push(frame);
        Ok(())
    }

    /// Carries out what the segmenter decided.
    fn drain(&mut self) -> Result<(), Error> {
        while let Some(event) = self.segmenter.poll_event() {
            self.handle(event)?;
        }
        Ok(())
    }

    fn handle(&mut self, event: Event) -> Result<(), Error> {
        match event {
            Event::Init {
                track,
                discontinuity_number,
                data,
            } => {
                let name = init_name(track, discontinuity_number);
                self.storage.replace(&name, &data).map_err(Error::write)?;
                self.log(Record::Init {
                    kind: track,
                    discontinuity_number,
                })?;
            }
            Event::SegmentStarted { track, segment } => {
                let name = segment_name(track, segment.sequence);
                self.storage.create(&name).map_err(Error::write)?;
                self.live.update(|index| {
                    if let Some(t) = index.tracks.iter_mut().find(|t| t.kind == track) {
                        t.open = Some(segment);
                    }
                });
            }
            Event::Part {
                track,
                sequence,
                part,
                data,
            } => {
                let name = segment_name(track, sequence);
                self.storage.append(&name, &data).map_err(Error::write)?;
                self.live.update(|index| {
                    let open = (index.tracks.iter_mut().find(|t| t.kind == track))
                        .and_then(|t| t.open.as_mut());
                    if let Some(open) = open.filter(|o| o.sequence == sequence) {
                        open.parts.push(part);
                    }
                });
            }
            Event::SegmentClosed { track, segment } => self.segment_closed(track, segment)?,
            Event::TargetDuration { seconds } => self.log(Record::Target { seconds })?,
            Event::TargetDurationExceeded {
                track,
                sequence,
                duration,
                target_seconds,
            } => {
                if self.main.is_none_or(|main| main == track) {
                    self.notices.push(Notice::TargetExceeded {
                        uri: segment_name(track, sequence),
                        duration_ns: self.ticks_to_ns(track, duration),
                        target_seconds,
                    });
                }
            }
            Event::Error { reason, .. } => self.notices.push(Notice::Dropped(reason)),
        }
        Ok(())
    }

    fn segment_closed(
        &mut self,
        track: TrackKind,
        segment: cfstream_proto::index::Segment,
    ) -> Result<(), Error> {
        // Complete before the log names it (a bucket uploads it now).
        let name = segment_name(track, segment.sequence);
        self.storage.seal(&name).map_err(Error::write)?;
        let parts = segment.parts.clone();
        let listed = Record::Segment {
            kind: track,
            segment: cfstream_proto::index::Segment {
                parts: Vec::new(),
                ..segment.clone()
            },
        };
        self.append_log(&listed)?;
        // The log is durable up to this segment: a seal point.
        self.storage.seal(INDEX_LOG).map_err(Error::write)?;
        let history_ticks = self.part_history_ticks(track);
        self.live.update(|index| {
            let Some(t) = index.tracks.iter_mut().find(|t| t.kind == track) else {
                return;
            };
            t.open = None;
            if t.segments
                .back()
                .is_some_and(|s| s.sequence + 1 != segment.sequence)
            {
                // Cannot happen (the segmenter numbers consecutively); keep the index valid.
                return;
            }
            if t.segments.is_empty() {
                t.discontinuity_sequence = segment.discontinuity_number;
            }
            let end = segment.end_time();
            t.segments.push_back(cfstream_proto::index::Segment {
                parts,
                ..segment.clone()
            });
            for older in t.segments.iter_mut().rev().skip(1) {
                if older.parts.is_empty() {
                    break;
                }
                if end.saturating_sub(older.end_time()) > history_ticks {
                    older.parts = Vec::new();
                }
            }
        });
        let main = *self.main.get_or_insert(if self.configs[0].is_some() {
            TrackKind::Video
        } else {
            track
        });
        if main != track {
            return Ok(());
        }
        let duration_ns = self.ticks_to_ns(track, segment.duration);
        self.notices.push(Notice::SegmentAdded(SegmentAdded {
            uri: segment_name(track, segment.sequence),
            sequence: segment.sequence,
            duration_ns,
            start_ns: self.ticks_to_ns(track, segment.decode_time),
            discontinuity: segment.discontinuity,
        }));
        let target = self.segmenter.target_duration().unwrap_or(1);
        if let Some(first_sequence) = self.retention.listed(segment.sequence, duration_ns, target) {
            self.log(Record::Trim { first_sequence })?;
        }
        for sequence in self.retention.expired() {
            self.delete_segment(sequence)?;
        }
        Ok(())
    }

    fn part_history_ticks(&self, track: TrackKind) -> u64 {
        let target = u64::from(self.segmenter.target_duration().unwrap_or(1));
        PART_HISTORY_TARGET_DURATIONS * target * self.timescale(track)
    }

    fn delete_segment(&self, sequence: u64) -> Result<(), Error> {
        for kind in [TrackKind::Video, TrackKind::Audio] {
            (self.storage.delete(&segment_name(kind, sequence))).map_err(Error::write)?;
        }
        Ok(())
    }

    /// Segments trimmed in the last live window are still wanted by players finishing it:
    /// they go once the wall clock has run as far as media would have, on the runtime. A
    /// process that exits sooner leaves them (the daemon's sweep removes such leftovers).
    fn delete_pending_later(&mut self) {
        let pending = self.retention.take_pending();
        let Some(grace_ns) = pending.iter().map(|&(_, left)| left).max() else {
            return;
        };
        let storage = Arc::clone(&self.storage);
        crate::runtime::RUNTIME.spawn(async move {
            tokio::time::sleep(Duration::from_nanos(grace_ns)).await;
            // A few unlinks: not worth a blocking thread.
            for (sequence, _) in pending {
                for kind in [TrackKind::Video, TrackKind::Audio] {
                    let _ = storage.delete(&segment_name(kind, sequence));
                }
            }
        });
    }

    /// Appends a record to `index.log` and applies it to the live index.
    fn log(&mut self, record: Record) -> Result<(), Error> {
        self.append_log(&record)?;
        // The writer only logs records that apply (tracks before their segments).
        let _ = self.live.apply(record);
        Ok(())
    }

    fn append_log(&mut self, record: &Record) -> Result<(), Error> {
        self.line.clear();
        log::encode(record, &mut self.line);
        (self.storage.append(INDEX_LOG, self.line.as_bytes())).map_err(Error::write)
    }

    fn ticks_to_ns(&self, track: TrackKind, ticks: u64) -> u64 {
        (u128::from(ticks) * 1_000_000_000 / u128::from(self.timescale(track))) as u64
    }

    fn timescale(&self, track: TrackKind) -> u64 {
        (self.configs[slot(track)].as_ref()).map_or(1, |c| u64::from(c.timescale()))
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
