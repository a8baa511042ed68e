//! The segmenter: frames of a stream's tracks in, init segments, parts and segments of
//! [`crate::index`] out, with time injected (each frame carries the wall clock the caller read).
//!
//! Rules:
//! - A segment is one GOP: video is cut at keyframes only; audio is cut at the first audio frame
//!   at or after the same media time, and takes the same media sequence number, so segment `n`
//!   of both tracks covers the same interval. An audio frame is therefore placed only once video
//!   has reached its time (or audio leads by more than [`MAX_AUDIO_LEAD_NS`], so that a stalled
//!   video track cannot hold audio without bound). Audio up to [`EARLY_AUDIO_NS`] before a run's
//!   first keyframe goes into the run's first segment (the run's media time starts there, so the
//!   tracks keep their offset). Without a video track, audio is cut every
//!   [`SegmenterConfig::audio_only_segment`].
//! - Parts are cut at any frame so that none lasts longer than the part target (unless one frame
//!   alone does); a part is independent when its first frame is a keyframe (audio: always).
//! - A frame is emitted once its successor gives its duration (next DTS − its DTS); the last
//!   frame of a run takes the duration the caller gave, else the previous one.
//! - Output decode times increase strictly: a repeated or backwards DTS becomes the previous
//!   one + 1 tick, counted in [`Stats::dts_corrected`].
//! - Each track's timeline is continuous: a segment starts where the previous one ended, and
//!   after [`Segmenter::discontinuity`] the next run (new init segment number, `discontinuity`
//!   set) starts where the last one ended. At a discontinuity the last frames of the tracks are
//!   stretched to a common end, so that the new run starts the tracks together.
//! - The target duration is the first segment's duration rounded up to whole seconds; a later
//!   segment whose duration rounds to more is reported ([`Event::TargetDurationExceeded`]).

mod track;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::cmaf::init::TrackConfig;
use crate::index::{OpenSegment, Part, Segment, TrackKind};
use track::{Context, Track, TrackFrame, ns_to_ticks, ticks_to_ns};

/// How far audio may run ahead of video before it is placed without waiting for video.
pub const MAX_AUDIO_LEAD_NS: i64 = 10_000_000_000;
/// Audio this much before a run's first keyframe still goes into its first segment (publishers
/// often send the first audio frame a frame or two before the first video frame).
pub const EARLY_AUDIO_NS: i64 = 500_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmenterConfig {
    /// Parts last at most this long (default 1 s; LL-HLS uses less).
    pub part_target: Duration,
    /// Segment length of a stream without video, which has no keyframes to cut at.
    pub audio_only_segment: Duration,
    /// `EXT-X-TARGETDURATION` fixed in advance (a resumed recording keeps its own); `None`:
    /// the first segment's duration rounded up.
    pub target_duration: Option<u32>,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        SegmenterConfig {
            part_target: Duration::from_secs(1),
            audio_only_segment: Duration::from_secs(4),
            target_duration: None,
        }
    }
}

/// One access unit (video: length-prefixed NAL units as in the avcC; audio: one raw AAC frame).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub track: TrackKind,
    /// Decode and presentation times on the publisher's clock, nanoseconds.
    pub dts_ns: i64,
    pub pts_ns: i64,
    /// When the publisher says (used for the last frame of a run only).
    pub duration_ns: Option<u64>,
    pub keyframe: bool,
    pub data: Bytes,
    /// Wall clock when the frame arrived, milliseconds since the epoch (`PROGRAM-DATE-TIME`).
    pub wall_clock_ms: i64,
}

/// What the writer does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Write `init_name(track, discontinuity_number)`; comes before the run's first segment.
    Init {
        track: TrackKind,
        discontinuity_number: u64,
        data: Vec<u8>,
    },
    /// A segment file begins (its parts follow): `segment.parts` is empty.
    SegmentStarted {
        track: TrackKind,
        segment: OpenSegment,
    },
    /// Append `data` to segment `sequence`'s file; `part` is its byte range there.
    Part {
        track: TrackKind,
        sequence: u64,
        part: Part,
        data: Vec<u8>,
    },
    /// The segment is complete (all its parts were given) and can be listed.
    SegmentClosed { track: TrackKind, segment: Segment },
    /// `EXT-X-TARGETDURATION`, known from the first segment; comes before its `SegmentClosed`.
    TargetDuration { seconds: u32 },
    /// A segment's duration, rounded to the nearest second, exceeds the target duration.
    TargetDurationExceeded {
        track: TrackKind,
        sequence: u64,
        /// Ticks.
        duration: u64,
        target_seconds: u32,
    },
    /// A box could not be serialised (sizes beyond the format's fields); the data is dropped.
    Error { track: TrackKind, reason: String },
}

/// What the segmenter corrected or dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames whose DTS repeated or went backwards, moved to previous + 1 tick.
    pub dts_corrected: u64,
    /// Frames before a run's first keyframe (or before its start, for audio), which no segment
    /// can begin with.
    pub dropped_before_keyframe: u64,
    /// Segments longer than the target duration.
    pub segments_over_target: u64,
}

/// Where a recording left off, for a segmenter that continues it (after a crash): numbering and
/// each track's timeline carry on, and the first segment written is a discontinuity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResumePoint {
    /// Media sequence number of the next segment.
    pub next_sequence: u64,
    /// Discontinuity sequence number of the run that starts.
    pub discontinuity_number: u64,
    /// End (decode time, ticks) of each track's last listed segment.
    pub track_ends: Vec<(TrackKind, u64)>,
}

/// Frames for a track that has no configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} frame for a stream without a {0:?} track (no decoder configuration was given)")]
pub struct NoSuchTrack(pub TrackKind);

pub struct Segmenter {
    config: SegmenterConfig,
    video: Option<Track>,
    audio: Option<Track>,
    /// DTS (publisher clock) of the run's first frame: media time 0 of the run.
    origin_ns: Option<i64>,
    /// Video cuts not yet reached by audio: (media time, sequence number).
    cuts: VecDeque<(i64, u64)>,
    /// Media time of the latest video frame.
    video_horizon_ns: Option<i64>,
    /// Audio frames waiting for video to reach them.
    pending_audio: VecDeque<Frame>,
    /// Audio alone: media time of the current segment's start.
    audio_segment_start_ns: Option<i64>,
    next_sequence: u64,
    discontinuity_number: u64,
    /// Something was written in the current run (a discontinuity then starts a new one).
    run_written: bool,
    target_duration: Option<u32>,
    /// Track timelines to continue, taken by each track as it is first set.
    resume_ends: Vec<(TrackKind, u64)>,
    stats: Stats,
    events: VecDeque<Event>,
}

impl Segmenter {
    pub fn new(config: SegmenterConfig) -> Self {
        Segmenter {
            video: None,
            audio: None,
            origin_ns: None,
            cuts: VecDeque::new(),
            video_horizon_ns: None,
            pending_audio: VecDeque::new(),
            audio_segment_start_ns: None,
            next_sequence: 0,
            discontinuity_number: 0,
            run_written: false,
            target_duration: config.target_duration,
            resume_ends: Vec::new(),
            stats: Stats::default(),
            events: VecDeque::new(),
            config,
        }
    }

    /// Continues a recording from `point` (call before the first frame).
    pub fn resume(&mut self, point: ResumePoint) {
        self.next_sequence = point.next_sequence;
        self.discontinuity_number = point.discontinuity_number;
        self.resume_ends = point.track_ends;
    }

    /// Sets a track's codec. A new track joins at the next segment; a changed configuration
    /// (e.g. a new SPS) needs a new init segment and so starts a new run, as a discontinuity.
    pub fn set_track(&mut self, config: TrackConfig) {
        let slot = match config.kind() {
            TrackKind::Video => &self.video,
            TrackKind::Audio => &self.audio,
        };
        match slot {
            Some(track) if track.config == config => return,
            Some(_) => self.discontinuity(),
            None => {}
        }
        let part_target_ns = self.config.part_target.as_nanos().min(u64::MAX as u128) as u64;
        let mut track = Track::new(config, part_target_ns);
        let slot = match track.kind() {
            TrackKind::Video => &mut self.video,
            TrackKind::Audio => &mut self.audio,
        };
        if let Some(old) = slot.take() {
            track.continue_from(old);
        } else if let Some(at) = self
            .resume_ends
            .iter()
            .position(|(k, _)| *k == track.kind())
        {
            track.resume_at(self.resume_ends.swap_remove(at).1);
        }
        *slot = Some(track);
    }

    /// The next event for the writer, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// `EXT-X-TARGETDURATION` in seconds, once the first segment is complete.
    pub fn target_duration(&self) -> Option<u32> {
        self.target_duration
    }

    pub fn push(&mut self, frame: Frame) -> Result<(), NoSuchTrack> {
        match frame.track {
            TrackKind::Video if self.video.is_some() => self.push_video(frame),
            TrackKind::Audio if self.audio.is_some() && self.video.is_some() => {
                self.pending_audio.push_back(frame);
                self.place_audio(false);
            }
            TrackKind::Audio if self.audio.is_some() => self.push_audio_alone(frame),
            kind => return Err(NoSuchTrack(kind)),
        }
        Ok(())
    }

    /// The publisher went away: closes every open segment (the tracks end together) so that it
    /// can be listed, and starts a new run for what comes next.
    pub fn discontinuity(&mut self) {
        self.place_audio(true);
        let end_ns = self
            .tracks()
            .filter(|t| t.has_open_segment())
            .map(|t| ticks_to_ns(t.natural_end(), t.timescale()))
            .max();
        self.end_run(end_ns);
    }

    /// End of stream: emits everything held; the last frames keep their given or previous
    /// durations. Frames pushed after it start a new run, as after a discontinuity.
    pub fn finish(&mut self) {
        self.place_audio(true);
        self.end_run(None);
    }

    fn tracks(&self) -> impl Iterator<Item = &Track> {
        self.video.iter().chain(self.audio.iter())
    }

    fn end_run(&mut self, end_ns: Option<i64>) {
        let number = self.discontinuity_number;
        for kind in [TrackKind::Video, TrackKind::Audio] {
            let (track, mut cx) = self.track_context(kind, number);
            if let Some(track) = track {
                let end = end_ns.map(|ns| ns_to_ticks(ns, track.timescale()).max(0) as u64);
                track.finish_run(end, &mut cx);
            }
        }
        if self.run_written {
            self.discontinuity_number += 1;
            self.run_written = false;
        }
        self.origin_ns = None;
        self.cuts.clear();
        self.video_horizon_ns = None;
        self.audio_segment_start_ns = None;
    }

    fn track_context(
        &mut self,
        kind: TrackKind,
        discontinuity_number: u64,
    ) -> (Option<&mut Track>, Context<'_>) {
        let sets_target = kind == TrackKind::Video || self.video.is_none();
        let track = match kind {
            TrackKind::Video => self.video.as_mut(),
            TrackKind::Audio => self.audio.as_mut(),
        };
        let cx = Context {
            events: &mut self.events,
            stats: &mut self.stats,
            discontinuity_number,
            target_duration: &mut self.target_duration,
            sets_target,
        };
        (track, cx)
    }

    fn push_video(&mut self, frame: Frame) {
        let (origin, starts_run) = match self.origin_ns {
            Some(origin) => (origin, false),
            None if frame.keyframe => (*self.origin_ns.insert(self.run_origin(&frame)), true),
            None => {
                self.stats.dropped_before_keyframe += 1;
                return;
            }
        };
        let media_ns = frame.dts_ns.saturating_sub(origin);
        self.video_horizon_ns = Some(self.video_horizon_ns.map_or(media_ns, |h| h.max(media_ns)));
        let starts_segment = frame.keyframe.then(|| {
            let sequence = self.next_sequence;
            self.next_sequence += 1;
            if self.audio.is_some() {
                // The run's first segment also takes the audio that came just before it.
                let cut_ns = if starts_run { 0 } else { media_ns };
                self.cuts.push_back((cut_ns, sequence));
            }
            sequence
        });
        self.accept(TrackKind::Video, frame, media_ns, starts_segment);
        self.place_audio(false);
    }

    /// Media time 0 of a run that starts at `keyframe`: the keyframe, or the earliest audio
    /// waiting within [`EARLY_AUDIO_NS`] before it, so that the tracks keep their offset.
    fn run_origin(&self, keyframe: &Frame) -> i64 {
        (self.pending_audio.iter())
            .map(|f| f.dts_ns)
            .filter(|&dts| dts < keyframe.dts_ns && keyframe.dts_ns - dts <= EARLY_AUDIO_NS)
            .min()
            .unwrap_or(keyframe.dts_ns)
    }

    fn push_audio_alone(&mut self, frame: Frame) {
        let origin = *self.origin_ns.get_or_insert(frame.dts_ns);
        let media_ns = frame.dts_ns.saturating_sub(origin);
        let segment_ns = self
            .config
            .audio_only_segment
            .as_nanos()
            .min(i64::MAX as u128) as i64;
        let starts_segment = match self.audio_segment_start_ns {
            Some(start) if media_ns.saturating_sub(start) < segment_ns => None,
            _ => {
                self.audio_segment_start_ns = Some(media_ns);
                let sequence = self.next_sequence;
                self.next_sequence += 1;
                Some(sequence)
            }
        };
        self.accept(TrackKind::Audio, frame, media_ns, starts_segment);
    }

    /// Places waiting audio frames that video has reached (all of them with `all`).
    fn place_audio(&mut self, all: bool) {
        while let Some(front) = self.pending_audio.front() {
            let newest = self.pending_audio.back().map_or(front.dts_ns, |b| b.dts_ns);
            let leads_too_far = newest.saturating_sub(front.dts_ns) > MAX_AUDIO_LEAD_NS;
            let Some(origin) = self.origin_ns else {
                // Video has not started: keep waiting for its first keyframe, within bounds.
                if leads_too_far || all {
                    self.pending_audio.pop_front();
                    self.stats.dropped_before_keyframe += 1;
                    continue;
                }
                return;
            };
            let media_ns = front.dts_ns.saturating_sub(origin);
            let reached = self.video_horizon_ns.is_some_and(|h| h >= media_ns);
            if !(reached || leads_too_far || all) {
                return;
            }
            let frame = self.pending_audio.pop_front().expect("front exists");
            let mut starts_segment = None;
            while let Some(&(cut, sequence)) = self.cuts.front() {
                if cut > media_ns {
                    break;
                }
                starts_segment = Some(sequence);
                self.cuts.pop_front();
            }
            let joined = self.audio.as_ref().is_some_and(Track::has_open_segment);
            if starts_segment.is_none() && !joined {
                // Before the run's first cut, or a track that joins at the next one.
                self.stats.dropped_before_keyframe += 1;
                continue;
            }
            self.accept(TrackKind::Audio, frame, media_ns, starts_segment);
        }
    }

    fn accept(
        &mut self,
        kind: TrackKind,
        frame: Frame,
        media_ns: i64,
        starts_segment: Option<u64>,
    ) {
        self.run_written = true;
        let number = self.discontinuity_number;
        let (track, mut cx) = self.track_context(kind, number);
        let Some(track) = track else { return };
        track.accept(
            TrackFrame {
                dts_ns: media_ns,
                composition_ns: frame.pts_ns.saturating_sub(frame.dts_ns),
                duration_ns: frame.duration_ns,
                sync: frame.keyframe || kind == TrackKind::Audio,
                data: frame.data,
                wall_clock_ms: frame.wall_clock_ms,
                starts_segment,
            },
            &mut cx,
        );
    }
}
