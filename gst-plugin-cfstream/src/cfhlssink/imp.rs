//! cfhlssink: a sink element without preroll, clock sync or threads of its own. Buffers of both
//! pads are written in arrival order, in the streaming thread(s), under one mutex; segments,
//! parts and the index are the business of [`crate::hls::Recording`].

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use cfstream_proto::cmaf::TrackConfig;
use cfstream_proto::h264::Framing;
use cfstream_proto::index::TrackKind;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::input::{Input, aac_frame_ns};
use crate::contract::cfhlssink::{RecordingFinished, RecordingStarted, SegmentAdded};
use crate::hls::{self, DirectoryState, Frame, Notice, Recording, RecordingConfig};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "cfhlssink",
        gst::DebugColorFlags::empty(),
        Some("cfstream HLS sink"),
    )
});

/// 0: the first GOP's duration rounded up to whole seconds.
const DEFAULT_TARGET_DURATION: u32 = 0;
const DEFAULT_RECORD: bool = true;
const DEFAULT_MAX_DURATION: u64 = 604_800;
const DEFAULT_PART_TARGET_MS: u32 = 1000;
const DEFAULT_LOW_LATENCY: bool = true;
/// Structure name of the custom downstream event cfrtmpsrc sends ahead of a returning publisher.
const RECONNECT_EVENT: &str = "cfstream-publisher-reconnected";
/// Structure name of the `stats` property.
const STATS: &str = "cfhlssink-stats";
/// After a new SEGMENT event, a timestamp this far from the pad's last one is a discontinuity.
const JUMP_THRESHOLD_NS: i64 = 1_000_000_000;

#[derive(Clone, Debug)]
struct Settings {
    location: Option<PathBuf>,
    target_duration: u32,
    record: bool,
    max_duration: u64,
    part_target_ms: u32,
    low_latency: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            location: None,
            target_duration: DEFAULT_TARGET_DURATION,
            record: DEFAULT_RECORD,
            max_duration: DEFAULT_MAX_DURATION,
            part_target_ms: DEFAULT_PART_TARGET_MS,
            low_latency: DEFAULT_LOW_LATENCY,
        }
    }
}

struct PadState {
    pad: gst::Pad,
    video: bool,
    eos: bool,
    segment: gst::FormattedSegment<gst::ClockTime>,
    /// A SEGMENT event came after data: check the next timestamp for a jump.
    segment_changed: bool,
    /// The pad wrote a buffer since the last gap was handled (a DISCONT right after the
    /// reconnect event is the same gap).
    wrote_since_gap: bool,
    /// Another pad already handled the gap this pad has yet to signal: the same gap arrives on
    /// every pad, possibly after the other pad's first buffers, and is handled once.
    gap_owed: bool,
    /// The recording's gap epoch this pad's buffers belong to (see `Recording::epoch`).
    epoch: u64,
    /// End (PTS + duration, running time) of the pad's last buffer.
    last_end: Option<i64>,
    /// The framing of the pad's buffers, from its caps.
    input: Input,
    /// The codec configuration the pad's caps or stream gave last.
    config: Option<TrackConfig>,
    /// Duration of a frame, from the caps, for buffers without one (flvdemux sets none).
    frame_duration: Option<u64>,
    /// A buffer could not be converted since the caps were set (warned once per caps).
    conversion_failed: bool,
}

#[derive(Default)]
struct State {
    pads: Vec<PadState>,
    recording: Option<Recording>,
    name: String,
    /// EOS was posted or an error happened: buffers are refused until READY.
    done: bool,
    /// The last recording's counts, kept for the `stats` property once it finished.
    stats: cfstream_proto::cmaf::Stats,
}

impl State {
    /// Whether a gap signalled on `pad` is a new one (then every other pad owes its signal of
    /// it) rather than one already handled.
    fn gap_signalled(&mut self, pad: &gst::Pad) -> bool {
        let epoch = self.recording.as_ref().map(|r| r.epoch()).unwrap_or(0);
        let Some(signalling) = self.pad_mut(pad) else {
            return false;
        };
        if std::mem::take(&mut signalling.gap_owed) {
            signalling.wrote_since_gap = false;
            signalling.epoch = epoch;
            return false;
        }
        if !signalling.wrote_since_gap {
            return false;
        }
        for p in &mut self.pads {
            p.gap_owed = &p.pad != pad;
            p.wrote_since_gap = false;
            if &p.pad == pad {
                p.epoch = epoch + 1; // the epoch `Recording::break_at_gap` starts
            }
        }
        true
    }

    /// The epoch of a buffer at `pts` on `pad`. A pad still owing its signal of the last gap
    /// is past it once its buffers reach the first segment after the gap.
    fn epoch_for(&mut self, pad: &gst::Pad, pts: i64) -> u64 {
        let caught_up = self.recording.as_ref().and_then(|r| {
            let past_gap = r.epoch_start().is_some_and(|start| pts >= start);
            past_gap.then(|| r.epoch())
        });
        let Some(p) = self.pad_mut(pad) else {
            return 0;
        };
        if let (true, Some(epoch)) = (p.gap_owed, caught_up) {
            p.gap_owed = false;
            p.epoch = epoch;
        }
        p.epoch
    }

    fn pad_mut(&mut self, pad: &gst::Pad) -> Option<&mut PadState> {
        self.pads.iter_mut().find(|p| &p.pad == pad)
    }
}

#[derive(Default)]
pub struct CfHlsSink {
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

#[glib::object_subclass]
impl ObjectSubclass for CfHlsSink {
    const NAME: &'static str = "GstCfHlsSink";
    type Type = super::CfHlsSink;
    type ParentType = gst::Element;
}

/// Why a buffer or event could not be handled; turned into an element error by the caller.
enum Failure {
    Io(hls::recording::Error),
    Other(gst::ErrorMessage),
}

impl CfHlsSink {
    fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    fn chain(
        &self,
        pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut messages = Vec::new();
        let result = {
            let mut state = lock(&self.state);
            if state.done {
                return Err(gst::FlowError::Eos);
            }
            self.handle_buffer(&mut state, pad, &buffer, &mut messages)
        };
        self.post(messages);
        result.map_err(|failure| {
            self.fail(failure);
            gst::FlowError::Error
        })
    }

    fn handle_buffer(
        &self,
        state: &mut State,
        pad: &gst::Pad,
        buffer: &gst::Buffer,
        messages: &mut Vec<gst::Message>,
    ) -> Result<gst::FlowSuccess, Failure> {
        if state.recording.is_none() {
            self.start_recording(state, messages)?;
        }
        let Some(pad_state) = state.pad_mut(pad) else {
            return Ok(gst::FlowSuccess::Ok); // released meanwhile
        };
        let video = pad_state.video;
        let running_time = |t: Option<gst::ClockTime>| {
            t.and_then(|t| pad_state.segment.to_running_time_full(t))
                .map(signed_ns)
        };
        let pts = running_time(buffer.pts().or(buffer.dts()));
        let dts = running_time(buffer.dts()).or(pts);
        let (Some(pts), Some(dts)) = (pts, dts) else {
            gst::warning!(
                CAT,
                obj = pad,
                "dropping buffer without timestamp (or outside the segment)"
            );
            return Ok(gst::FlowSuccess::Ok);
        };
        let duration = buffer
            .duration()
            .map(|d| d.nseconds())
            .or(pad_state.frame_duration);

        let jumped = pad_state.segment_changed
            && pad_state.last_end.is_some_and(|end| {
                pts.saturating_sub(end).unsigned_abs() > JUMP_THRESHOLD_NS as u64
            });
        let discont = video && buffer.flags().contains(gst::BufferFlags::DISCONT);
        pad_state.segment_changed = false;
        pad_state.last_end =
            Some(pts.saturating_add(duration.unwrap_or(0).min(i64::MAX as u64) as i64));
        if (jumped || discont) && state.gap_signalled(pad) {
            gst::info!(
                CAT,
                obj = pad,
                "discontinuity at {pts} ns (jump: {jumped}, DISCONT: {discont})"
            );
            self.break_at_gap(state, messages)?;
        }

        let map = buffer.map_readable().map_err(|_| {
            Failure::Other(gst::error_msg!(
                gst::StreamError::Failed,
                ("cannot map buffer of pad {}", pad.name())
            ))
        })?;
        let epoch = state.epoch_for(pad, pts);
        let State {
            pads, recording, ..
        } = &mut *state;
        let (Some(pad_state), Some(recording)) =
            (pads.iter_mut().find(|p| &p.pad == pad), recording.as_mut())
        else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)
            && (!video || is_random_access_point(&map, pad_state.input.framing()));
        let converted = match pad_state.input.convert(&map, pad_state.config.as_ref()) {
            Ok(converted) => converted,
            Err(reason) => {
                gst::warning!(CAT, obj = pad, "dropping a buffer: {reason}");
                if !std::mem::replace(&mut pad_state.conversion_failed, true) {
                    gst::element_imp_warning!(
                        self,
                        gst::StreamError::Decode,
                        (
                            "dropping buffers of pad {} that cannot be converted: {reason}",
                            pad.name()
                        )
                    );
                }
                return Ok(gst::FlowSuccess::Ok);
            }
        };
        if let Some(config) = converted.config {
            if let TrackConfig::Audio(audio) = &config {
                pad_state.frame_duration = aac_frame_ns(audio.sample_rate);
            }
            pad_state.config = Some(config.clone());
            recording.set_config(config).map_err(Failure::Io)?;
        }
        let frame = Frame {
            kind: pad_kind(video),
            data: converted.data,
            pts,
            dts,
            duration: duration.or(pad_state.frame_duration),
            keyframe,
        };
        pad_state.wrote_since_gap = true;
        recording.push(frame, epoch).map_err(Failure::Io)?;
        self.report(state, messages);
        Ok(gst::FlowSuccess::Ok)
    }

    /// Names, opens (or resumes) the recording directory.
    fn start_recording(
        &self,
        state: &mut State,
        messages: &mut Vec<gst::Message>,
    ) -> Result<(), Failure> {
        let settings = self.settings();
        let Some(location) = settings.location.clone() else {
            return Err(Failure::Other(gst::error_msg!(
                gst::ResourceError::NotFound,
                ("property 'location' is not set")
            )));
        };
        let name = match self
            .obj()
            .emit_by_name::<Option<String>>("recording-name", &[])
        {
            Some(name) if hls::is_valid_recording_name(&name) => name,
            Some(name) => {
                return Err(Failure::Other(gst::error_msg!(
                    gst::ResourceError::Settings,
                    ("recording-name handler returned {name:?}, which is not a plain directory name")
                )));
            }
            None => default_name(&location),
        };
        let directory = location.join(&name);
        let part_target = Duration::from_millis(u64::from(settings.part_target_ms));
        let config = RecordingConfig {
            directory: directory.clone(),
            target_duration: (settings.target_duration > 0).then_some(settings.target_duration),
            record: settings.record,
            max_duration_ns: settings.max_duration.saturating_mul(1_000_000_000),
            part_target: settings.low_latency.then_some(part_target),
        };
        let mut recording = Recording::open(config).map_err(Failure::Io)?;
        gst::info!(
            CAT,
            imp = self,
            "recording {name} in {} (resumed: {})",
            directory.display(),
            recording.resumed()
        );
        let started = RecordingStarted {
            recording: name.clone(),
            directory: directory.to_string_lossy().into_owned(),
            resumed: recording.resumed(),
        };
        messages.push(self.message(started.to_structure()));
        // Pads (and the caps) that came before the recording opened.
        for pad in &state.pads {
            recording.expect(pad_kind(pad.video)).map_err(Failure::Io)?;
            if let Some(config) = pad.config.clone() {
                recording.set_config(config).map_err(Failure::Io)?;
            }
        }
        state.recording = Some(recording);
        state.name = name;
        Ok(())
    }

    fn break_at_gap(
        &self,
        state: &mut State,
        messages: &mut Vec<gst::Message>,
    ) -> Result<(), Failure> {
        let Some(recording) = state.recording.as_mut() else {
            return Ok(());
        };
        recording.break_at_gap().map_err(Failure::Io)?;
        self.report(state, messages);
        Ok(())
    }

    /// Turns what the recording noticed into messages and warnings.
    fn report(&self, state: &mut State, messages: &mut Vec<gst::Message>) {
        let Some(recording) = state.recording.as_mut() else {
            return;
        };
        let notices = recording.take_notices();
        self.report_notices(state, notices, messages);
    }

    fn report_notices(
        &self,
        state: &State,
        notices: Vec<Notice>,
        messages: &mut Vec<gst::Message>,
    ) {
        for notice in notices {
            match notice {
                Notice::SegmentAdded(added) => {
                    gst::debug!(
                        CAT,
                        imp = self,
                        "segment {} ({} ns) listed",
                        added.uri,
                        added.duration_ns
                    );
                    let message = SegmentAdded {
                        recording: state.name.clone(),
                        uri: added.uri,
                        duration: added.duration_ns,
                        stream_time: added.start_ns,
                        sequence: added.sequence,
                        discontinuity: added.discontinuity,
                    };
                    messages.push(self.message(message.to_structure()));
                }
                Notice::TargetExceeded {
                    uri,
                    duration_ns,
                    target_seconds,
                } => gst::element_imp_warning!(
                    self,
                    gst::StreamError::Format,
                    (
                        "segment {uri} lasts {:.3} s, longer than the target duration {target_seconds} s: \
                         a GOP is too long",
                        duration_ns as f64 / 1e9
                    )
                ),
                Notice::Dropped(reason) => gst::element_imp_warning!(
                    self,
                    gst::StreamError::Mux,
                    ("media dropped: {reason}")
                ),
            }
        }
    }

    /// Closes the recording (`end` in its index) and reports it.
    fn finish_recording(
        &self,
        state: &mut State,
        messages: &mut Vec<gst::Message>,
    ) -> Result<(), Failure> {
        let Some(recording) = state.recording.take() else {
            return Ok(());
        };
        let directory = recording.directory().to_string_lossy().into_owned();
        state.stats = recording.stats().clone();
        let (summary, notices) = recording.finish().map_err(Failure::Io)?;
        self.report_notices(state, notices, messages);
        gst::info!(
            CAT,
            imp = self,
            "recording {} finished: {summary:?}",
            state.name
        );
        let finished = RecordingFinished {
            recording: state.name.clone(),
            directory,
            duration: summary.duration.as_nanos() as u64,
            segments: summary.segments,
        };
        messages.push(self.message(finished.to_structure()));
        Ok(())
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        let mut messages = Vec::new();
        let mut post_eos = false;
        let mut caps_refused = false;
        let result = {
            let mut state = lock(&self.state);
            match event.view() {
                gst::EventView::Caps(caps) => match Input::from_caps(caps.caps()) {
                    Ok((input, config, frame_duration)) => {
                        gst::debug!(
                            CAT,
                            obj = pad,
                            "input {input:?}, frame {frame_duration:?} ns"
                        );
                        if let Some(p) = state.pad_mut(pad) {
                            p.input = input;
                            p.frame_duration = frame_duration;
                            p.conversion_failed = false;
                            p.config = config.clone();
                        }
                        match (config, state.recording.as_mut()) {
                            (Some(config), Some(recording)) => {
                                recording.set_config(config).map_err(Failure::Io)
                            }
                            _ => Ok(()),
                        }
                    }
                    Err(reason) => {
                        caps_refused = true;
                        Err(Failure::Other(gst::error_msg!(
                            gst::StreamError::Format,
                            (
                                "pad {} cannot take caps {}: {reason}",
                                pad.name(),
                                caps.caps()
                            )
                        )))
                    }
                },
                gst::EventView::CustomDownstream(custom)
                    if custom
                        .structure()
                        .is_some_and(|s| s.name() == RECONNECT_EVENT) =>
                {
                    gst::info!(
                        CAT,
                        obj = pad,
                        "publisher reconnected: {:?}",
                        custom.structure()
                    );
                    if !state.done && state.gap_signalled(pad) {
                        self.break_at_gap(&mut state, &mut messages)
                    } else {
                        Ok(())
                    }
                }
                gst::EventView::Segment(segment) => {
                    let Ok(segment) = segment.segment().clone().downcast::<gst::ClockTime>() else {
                        drop(state);
                        gst::element_imp_error!(
                            self,
                            gst::StreamError::Format,
                            ("pad {} got a non-TIME segment", pad.name())
                        );
                        return false;
                    };
                    if let Some(p) = state.pad_mut(pad) {
                        p.segment_changed = p.last_end.is_some();
                        p.segment = segment;
                    }
                    Ok(())
                }
                gst::EventView::Eos(_) => {
                    if let Some(p) = state.pad_mut(pad) {
                        p.eos = true;
                    }
                    if !state.done && state.pads.iter().all(|p| p.eos) {
                        state.done = true;
                        post_eos = true;
                        self.finish_recording(&mut state, &mut messages)
                    } else {
                        Ok(())
                    }
                }
                gst::EventView::FlushStop(_) => {
                    if let Some(p) = state.pad_mut(pad) {
                        p.eos = false;
                    }
                    Ok(())
                }
                _ => Ok(()),
            }
        };
        self.post(messages);
        if let Err(failure) = result {
            self.fail(failure);
        } else if post_eos {
            let _ = self
                .obj()
                .post_message(gst::message::Eos::builder().src(&*self.obj()).build());
        }
        match event.view() {
            gst::EventView::Caps(_) => !caps_refused,
            gst::EventView::Segment(_) | gst::EventView::Eos(_) => true,
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn message(&self, structure: gst::Structure) -> gst::Message {
        gst::message::Element::builder(structure)
            .src(&*self.obj())
            .build()
    }

    fn post(&self, messages: Vec<gst::Message>) {
        for message in messages {
            let _ = self.obj().post_message(message);
        }
    }

    /// Posts the element error; the recording is dropped (its listed segments stay valid) and
    /// further buffers are refused.
    fn fail(&self, failure: Failure) {
        {
            let mut state = lock(&self.state);
            state.recording = None;
            state.done = true;
        }
        match failure {
            Failure::Io(e) => {
                let kind = if e.opening {
                    gst::ResourceError::OpenWrite
                } else {
                    gst::ResourceError::Write
                };
                gst::element_imp_error!(self, kind, ("{}", e));
            }
            Failure::Other(message) => self.post_error_message(message),
        }
    }
}

/// The default name: the UTC start time, with `-1`, `-2`… when a finished recording has it.
fn default_name(location: &std::path::Path) -> String {
    let base = hls::default_recording_name(SystemTime::now());
    (0..)
        .map(|n| {
            if n == 0 {
                base.clone()
            } else {
                format!("{base}-{n}")
            }
        })
        .find(|name| {
            hls::directory_state(&location.join(name)).ok() != Some(DirectoryState::Finished)
        })
        .unwrap_or(base)
}

fn pad_kind(video: bool) -> TrackKind {
    if video {
        TrackKind::Video
    } else {
        TrackKind::Audio
    }
}

fn signed_ns(t: gst::Signed<gst::ClockTime>) -> i64 {
    match t {
        gst::Signed::Positive(t) => t.nseconds().min(i64::MAX as u64) as i64,
        gst::Signed::Negative(t) => -(t.nseconds().min(i64::MAX as u64) as i64),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CfHlsSink {
    fn stats(&self) -> gst::Structure {
        let state = lock(&self.state);
        let stats = state
            .recording
            .as_ref()
            .map(|r| r.stats().clone())
            .unwrap_or_default();
        gst::Structure::builder(STATS)
            .field("dts-corrected", stats.dts_corrected)
            .field("dropped-before-keyframe", stats.dropped_before_keyframe)
            .field("segments-over-target", stats.segments_over_target)
            .build()
    }
}

impl ObjectImpl for CfHlsSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Location")
                    .blurb(
                        "Directory under which each recording gets its own subdirectory (named by \
                         the recording-name signal) holding init-NNNNNNNN.{v,a}.mp4, \
                         seg-NNNNNNNN.{v,a}.m4s and index.log",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("target-duration")
                    .nick("Target duration")
                    .blurb(
                        "EXT-X-TARGETDURATION in seconds; 0: the first GOP's duration rounded up \
                         (a longer GOP later still makes one segment, with a warning). Audio-only \
                         streams are cut every 4 s. Only settable in NULL/READY",
                    )
                    .maximum(3600)
                    .default_value(DEFAULT_TARGET_DURATION)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("part-target")
                    .nick("Part target")
                    .blurb(
                        "Milliseconds a part (CMAF chunk, LL-HLS EXT-X-PART) lasts at most; parts \
                         are cut at any frame, and one that starts with a keyframe is independent",
                    )
                    .minimum(100)
                    .maximum(10_000)
                    .default_value(DEFAULT_PART_TARGET_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("low-latency")
                    .nick("Low latency")
                    .blurb(
                        "Cut segments into parts of part-target, listed as they are written \
                         (LL-HLS); false: one fragment per segment",
                    )
                    .default_value(DEFAULT_LOW_LATENCY)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "cfhlssink-stats: dts-corrected (frames whose DTS repeated or went back, \
                         moved forward so that output DTS increase strictly), \
                         dropped-before-keyframe, segments-over-target",
                    )
                    .read_only()
                    .build(),
                glib::ParamSpecBoolean::builder("record")
                    .nick("Record")
                    .blurb(
                        "Keep the recording; false = the live window only, segments are deleted \
                         once they left it and no client can still fetch them",
                    )
                    .default_value(DEFAULT_RECORD)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("max-duration")
                    .nick("Maximum duration")
                    .blurb(
                        "Seconds of media a recording keeps: older segments leave the index and the \
                         disk (the newest segment always stays)",
                    )
                    .minimum(1)
                    .default_value(DEFAULT_MAX_DURATION)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![
                // The first handler returning a name wins.
                glib::subclass::Signal::builder("recording-name")
                    .return_type::<Option<String>>()
                    .accumulator(|_hint, accumulated, value| {
                        if value.get::<Option<String>>().ok().flatten().is_some() {
                            ControlFlow::Break(value.clone())
                        } else {
                            ControlFlow::Continue(accumulated)
                        }
                    })
                    .build(),
            ]
        });
        SIGNALS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if pspec.name() == "target-duration" && self.obj().current_state() > gst::State::Ready {
            gst::warning!(
                CAT,
                imp = self,
                "target-duration can only be changed in NULL or READY"
            );
            return;
        }
        let mut settings = lock(&self.settings);
        match pspec.name() {
            "location" => {
                settings.location = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .map(PathBuf::from)
            }
            "part-target" => {
                settings.part_target_ms = value.get().unwrap_or(DEFAULT_PART_TARGET_MS)
            }
            "low-latency" => settings.low_latency = value.get().unwrap_or(DEFAULT_LOW_LATENCY),
            "target-duration" => {
                settings.target_duration = value.get().unwrap_or(DEFAULT_TARGET_DURATION)
            }
            "record" => settings.record = value.get().unwrap_or(DEFAULT_RECORD),
            "max-duration" => settings.max_duration = value.get().unwrap_or(DEFAULT_MAX_DURATION),
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = lock(&self.settings);
        match pspec.name() {
            "location" => settings
                .location
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .to_value(),
            "part-target" => settings.part_target_ms.to_value(),
            "low-latency" => settings.low_latency.to_value(),
            "stats" => {
                drop(settings);
                self.stats().to_value()
            }
            "target-duration" => settings.target_duration.to_value(),
            "record" => settings.record.to_value(),
            "max-duration" => settings.max_duration.to_value(),
            _ => None::<String>.to_value(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        self.obj().set_element_flags(gst::ElementFlags::SINK);
    }
}

impl GstObjectImpl for CfHlsSink {}

impl ElementImpl for CfHlsSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "cfstream HLS sink",
                "Sink/Muxer",
                "Writes H.264/AAC as CMAF (fragmented MP4) segments made of parts, with the index \
                 the server renders HLS, LL-HLS and DASH from: a recording per broadcast, with \
                 discontinuities across publisher reconnects and a retention window. Signal \
                 recording-name: return the recording's directory name (first non-NULL answer \
                 wins; default: UTC start time YYYYMMDDTHHMMSSZ)",
                "cfstream contributors",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            // avc without an alignment field, as flvdemux sets it (alignment=nal is refused
            // when the caps arrive); raw AAC needs its codec_data, checked then as well.
            let mut video = gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build();
            video.merge(
                gst::Caps::builder("video/x-h264")
                    .field("stream-format", gst::List::new(["avc", "avc3"]))
                    .build(),
            );
            let audio = gst::Caps::builder("audio/mpeg")
                .field("mpegversion", gst::List::new([2i32, 4]))
                .field("stream-format", gst::List::new(["adts", "raw"]))
                .build();
            [("video", video), ("audio", audio)]
                .into_iter()
                .map(|(name, caps)| {
                    gst::PadTemplate::new(
                        name,
                        gst::PadDirection::Sink,
                        gst::PadPresence::Request,
                        &caps,
                    )
                    .expect("valid pad template")
                })
                .collect()
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        _name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        let name = templ.name_template();
        let video = name == "video";
        let mut state = lock(&self.state);
        if state.pads.iter().any(|p| p.video == video) {
            gst::warning!(CAT, imp = self, "pad {name} already exists");
            return None;
        }
        let pad = gst::Pad::builder_from_template(templ)
            .name(name)
            .chain_function(|pad, parent, buffer| {
                CfHlsSink::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                CfHlsSink::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .build();
        state.pads.push(PadState {
            pad: pad.clone(),
            video,
            eos: false,
            segment: gst::FormattedSegment::new(),
            segment_changed: false,
            wrote_since_gap: false,
            gap_owed: false,
            epoch: 0,
            last_end: None,
            input: Input::default(),
            config: None,
            frame_duration: None,
            conversion_failed: false,
        });
        // A recording already open waits for this pad's first frames (within bounds).
        if let Some(Err(e)) = state.recording.as_mut().map(|r| r.expect(pad_kind(video))) {
            drop(state);
            self.fail(Failure::Io(e));
            return None;
        }
        drop(state);
        self.obj().add_pad(&pad).ok()?;
        Some(pad)
    }

    fn release_pad(&self, pad: &gst::Pad) {
        lock(&self.state).pads.retain(|p| &p.pad != pad);
        let _ = pad.set_active(false);
        let _ = self.obj().remove_pad(pad);
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            let mut state = lock(&self.state);
            state.done = false;
            state.recording = None;
            state.stats = Default::default();
            for pad in &mut state.pads {
                pad.eos = false;
                pad.segment_changed = false;
                pad.wrote_since_gap = false;
                pad.gap_owed = false;
                pad.epoch = 0;
                pad.last_end = None;
            }
        }
        let success = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            // Stopping without EOS finishes the recording all the same (graceful shutdown).
            let mut messages = Vec::new();
            let result = self.finish_recording(&mut lock(&self.state), &mut messages);
            self.post(messages);
            if let Err(failure) = result {
                self.fail(failure);
                return Err(gst::StateChangeError);
            }
        }
        Ok(success)
    }
}

/// Whether a video access unit can start a segment. h264parse clears `DELTA_UNIT` on every I
/// picture, but a plain I picture (x264's scene cut inside a GOP) does not stop later pictures
/// from referencing earlier ones: only IDR and recovery-point pictures are cut at. Read in the
/// pad's own framing (avc: length-prefixed), before any conversion.
fn is_random_access_point(access_unit: &[u8], framing: Framing) -> bool {
    use cfstream_proto::h264::{PictureKind, inspect_access_unit};
    matches!(
        inspect_access_unit(access_unit, framing),
        Ok(Some(unit)) if matches!(unit.kind, PictureKind::Idr | PictureKind::RecoveryPointI)
    )
}
