//! One track of the segmenter: its output timeline (strictly increasing decode times, continuous
//! across segments and runs), the frame held until its successor gives its duration, and the
//! part and segment being written.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{Event, Stats};
use crate::cmaf::fragment::{FragmentHeader, FragmentSample, write_fragment};
use crate::cmaf::init::{TrackConfig, init_segment};
use crate::index::{OpenSegment, Part, Segment, TrackKind};

/// What a track needs from the segmenter while it emits.
pub(super) struct Context<'a> {
    pub events: &'a mut VecDeque<Event>,
    pub stats: &'a mut Stats,
    /// Discontinuity sequence number of the current run.
    pub discontinuity_number: u64,
    /// `EXT-X-TARGETDURATION`, seconds, once known.
    pub target_duration: &'a mut Option<u32>,
    /// Whether this track's first segment sets the target duration (video, or audio alone).
    pub sets_target: bool,
}

/// A frame on the track's timeline, waiting for its duration.
struct Held {
    dts: u64,
    composition_offset: i32,
    sync: bool,
    data: Bytes,
    wall_clock_ms: i64,
    /// Media sequence number of the segment this frame starts.
    starts_segment: Option<u64>,
    /// The duration the caller gave, in ticks.
    duration_hint: Option<u64>,
}

/// The part being filled.
#[derive(Default)]
struct PartBuilder {
    samples: Vec<FragmentSample>,
    /// The samples' data as handed over (shared, not copied until the fragment is written).
    payload: Vec<Bytes>,
    payload_len: usize,
    decode_time: u64,
    duration: u64,
}

/// A frame handed to a track: its times in nanoseconds since the run's origin.
pub(super) struct TrackFrame {
    pub dts_ns: i64,
    /// PTS − DTS as sent, nanoseconds.
    pub composition_ns: i64,
    pub duration_ns: Option<u64>,
    pub sync: bool,
    pub data: Bytes,
    pub wall_clock_ms: i64,
    pub starts_segment: Option<u64>,
}

pub(super) struct Track {
    pub config: TrackConfig,
    part_target: u64,
    /// Added to a frame's ticks since the run origin; set by the run's first frame so that the
    /// run continues the track's timeline.
    run_base: Option<i64>,
    /// Decode time of the last frame accepted (after correction).
    last_dts: Option<u64>,
    last_duration: Option<u64>,
    /// Where the next sample begins: end of the last emitted sample.
    pub end: u64,
    held: Option<Held>,
    open: Option<(OpenSegment, u64)>,
    part: PartBuilder,
    fragment_sequence: u32,
    /// The next segment opened is the first of a run: it gets an init segment first.
    new_run: bool,
    /// Segments were written before (the next run's first one is a discontinuity).
    wrote_segments: bool,
}

impl Track {
    pub fn new(config: TrackConfig, part_target_ns: u64) -> Self {
        let part_target = ns_to_ticks(part_target_ns as i64, config.timescale()).max(1) as u64;
        Track {
            config,
            part_target,
            run_base: None,
            last_dts: None,
            last_duration: None,
            end: 0,
            held: None,
            open: None,
            part: PartBuilder::default(),
            fragment_sequence: 1,
            new_run: true,
            wrote_segments: false,
        }
    }

    /// Takes over the timeline of the track this one replaces (a new codec configuration after
    /// its run ended), so that decode times and fragment numbers carry on.
    pub fn continue_from(&mut self, old: Track) {
        self.last_dts = old.last_dts;
        self.last_duration = old.last_duration;
        self.end = old.end;
        self.fragment_sequence = old.fragment_sequence;
        self.wrote_segments = old.wrote_segments;
    }

    /// Continues a recorded timeline that ended at `end` ticks: the next run starts there, as a
    /// discontinuity.
    pub fn resume_at(&mut self, end: u64) {
        self.end = end;
        self.last_dts = Some(end.saturating_sub(1));
        self.wrote_segments = true;
    }

    pub fn kind(&self) -> TrackKind {
        self.config.kind()
    }

    pub fn timescale(&self) -> u32 {
        self.config.timescale()
    }

    pub fn has_open_segment(&self) -> bool {
        self.open.is_some() || self.held.is_some()
    }

    /// Puts a frame on the timeline; emits its predecessor, whose duration it completes.
    pub fn accept(&mut self, frame: TrackFrame, cx: &mut Context) {
        let timescale = self.timescale();
        let raw = ns_to_ticks(frame.dts_ns, timescale);
        let base = *self.run_base.get_or_insert(match self.last_dts {
            // The first run starts the track's timeline where its first frame is.
            None => 0,
            Some(_) => self.end as i64 - raw,
        });
        let wanted = (raw + base).max(0) as u64;
        let dts = match self.last_dts {
            Some(last) if wanted <= last => {
                cx.stats.dts_corrected += 1;
                last + 1
            }
            _ => wanted,
        };
        let shift = (dts - wanted) as i64;
        let composition_offset = (ns_to_ticks(frame.composition_ns, timescale) - shift)
            .clamp(0, i64::from(i32::MAX)) as i32;
        if let Some(held) = self.held.take() {
            let duration = dts - held.dts;
            self.emit(held, duration, cx);
        }
        self.held = Some(Held {
            dts,
            composition_offset,
            sync: frame.sync,
            data: frame.data,
            wall_clock_ms: frame.wall_clock_ms,
            starts_segment: frame.starts_segment,
            duration_hint: frame
                .duration_ns
                .map(|ns| ns_to_ticks(ns as i64, timescale).max(1) as u64),
        });
        self.last_dts = Some(dts);
    }

    /// The end of the track if its held frame got its given or previous duration.
    pub fn natural_end(&self) -> u64 {
        match &self.held {
            Some(held) => held.dts + self.fallback_duration(held),
            None => self.end,
        }
    }

    fn fallback_duration(&self, held: &Held) -> u64 {
        held.duration_hint
            .or(self.last_duration)
            .unwrap_or(match self.kind() {
                // Nothing to go by (a one-frame track): one frame at 30 fps, one AAC frame.
                TrackKind::Video => u64::from(self.timescale() / 30),
                TrackKind::Audio => 1024,
            })
    }

    /// Emits the held frame (ending at `end`, or with its given or previous duration) and
    /// closes the part and segment; the next frame starts a new run.
    pub fn finish_run(&mut self, end: Option<u64>, cx: &mut Context) {
        if let Some(held) = self.held.take() {
            let duration = match end {
                Some(end) => end.saturating_sub(held.dts).max(1),
                None => self.fallback_duration(&held),
            };
            self.emit(held, duration, cx);
        }
        self.close_segment(cx);
        self.run_base = None;
        self.new_run = true;
    }

    fn emit(&mut self, sample: Held, duration: u64, cx: &mut Context) {
        if sample.starts_segment.is_some() || self.open.is_none() {
            self.close_segment(cx);
            let sequence = sample.starts_segment.unwrap_or(0);
            self.open_segment(sequence, &sample, cx);
        } else if self.part.duration > 0 && self.part.duration + duration > self.part_target {
            self.flush_part(cx);
        }
        if self.part.samples.is_empty() {
            self.part.decode_time = sample.dts;
        }
        self.part.samples.push(FragmentSample {
            duration: duration.min(u64::from(u32::MAX)) as u32,
            size: sample.data.len() as u32,
            sync: sample.sync,
            composition_offset: sample.composition_offset,
        });
        self.part.payload_len += sample.data.len();
        self.part.payload.push(sample.data);
        self.part.duration += duration;
        self.last_duration = Some(duration);
        self.end = sample.dts + duration;
        // Close the part now if a frame like this one would not fit: one frame sooner listed.
        if self.part.duration + duration > self.part_target {
            self.flush_part(cx);
        }
    }

    fn open_segment(&mut self, sequence: u64, first: &Held, cx: &mut Context) {
        let kind = self.kind();
        let discontinuity = self.new_run && self.wrote_segments;
        if self.new_run {
            match init_segment(&self.config) {
                Ok(data) => cx.events.push_back(Event::Init {
                    track: kind,
                    discontinuity_number: cx.discontinuity_number,
                    data,
                }),
                Err(error) => cx.events.push_back(Event::Error {
                    track: kind,
                    reason: format!("init segment not written: {error}"),
                }),
            }
            self.new_run = false;
        }
        let segment = OpenSegment {
            sequence,
            decode_time: first.dts,
            program_date_time_ms: first.wall_clock_ms,
            discontinuity,
            discontinuity_number: cx.discontinuity_number,
            parts: Vec::new(),
        };
        cx.events.push_back(Event::SegmentStarted {
            track: kind,
            segment: segment.clone(),
        });
        self.open = Some((segment, 0));
        self.wrote_segments = true;
    }

    fn flush_part(&mut self, cx: &mut Context) {
        let Some((segment, size)) = self.open.as_mut() else {
            return;
        };
        if self.part.samples.is_empty() {
            return;
        }
        let header = FragmentHeader {
            track_id: self.config.track_id(),
            sequence_number: self.fragment_sequence,
            base_decode_time: self.part.decode_time,
            composition_offsets: self.config.kind() == TrackKind::Video,
        };
        self.fragment_sequence = self.fragment_sequence.wrapping_add(1).max(1);
        let mut data =
            Vec::with_capacity(self.part.payload_len + 64 + 16 * self.part.samples.len());
        if let Err(error) =
            write_fragment(&header, &self.part.samples, &self.part.payload, &mut data)
        {
            cx.events.push_back(Event::Error {
                track: self.config.kind(),
                reason: format!("part of segment {} not written: {error}", segment.sequence),
            });
        } else {
            let part = Part {
                duration: self.part.duration,
                independent: self.part.samples[0].sync,
                offset: *size,
                length: data.len() as u64,
            };
            *size += part.length;
            segment.parts.push(part);
            cx.events.push_back(Event::Part {
                track: self.config.kind(),
                sequence: segment.sequence,
                part,
                data,
            });
        }
        self.part.samples.clear();
        self.part.payload.clear();
        self.part.payload_len = 0;
        self.part.duration = 0;
    }

    fn close_segment(&mut self, cx: &mut Context) {
        self.flush_part(cx);
        let Some((open, size)) = self.open.take() else {
            return;
        };
        let timescale = u64::from(self.timescale());
        let duration = self.end - open.decode_time;
        let target = match *cx.target_duration {
            Some(target) => target,
            None if cx.sets_target => {
                let target = duration.div_ceil(timescale).max(1) as u32;
                *cx.target_duration = Some(target);
                cx.events
                    .push_back(Event::TargetDuration { seconds: target });
                target
            }
            None => u32::MAX,
        };
        // RFC 8216 §4.3.3.1: EXTINF rounded to the nearest second may not exceed the target.
        if (duration + timescale / 2) / timescale > u64::from(target) {
            cx.stats.segments_over_target += 1;
            cx.events.push_back(Event::TargetDurationExceeded {
                track: self.kind(),
                sequence: open.sequence,
                duration,
                target_seconds: target,
            });
        }
        cx.events.push_back(Event::SegmentClosed {
            track: self.kind(),
            segment: Segment {
                sequence: open.sequence,
                decode_time: open.decode_time,
                duration,
                program_date_time_ms: open.program_date_time_ms,
                discontinuity: open.discontinuity,
                discontinuity_number: open.discontinuity_number,
                size,
                parts: open.parts,
            },
        });
    }
}

/// Nanoseconds to ticks of `timescale`, rounded to the nearest tick.
pub(super) fn ns_to_ticks(ns: i64, timescale: u32) -> i64 {
    let scaled = i128::from(ns) * i128::from(timescale);
    let half = 500_000_000i128 * scaled.signum();
    ((scaled + half) / 1_000_000_000) as i64
}

/// Ticks of `timescale` to nanoseconds, rounded.
pub(super) fn ticks_to_ns(ticks: u64, timescale: u32) -> i64 {
    let scaled = i128::from(ticks) * 1_000_000_000;
    ((scaled + i128::from(timescale / 2)) / i128::from(timescale)) as i64
}
