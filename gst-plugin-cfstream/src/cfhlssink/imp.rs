//! cfhlssink: a sink element without preroll, clock sync or threads of its own. Buffers of both
//! pads are written in arrival order, in the streaming thread(s), under one mutex; the segment and
//! playlist logic lives in [`crate::hls::Recording`].

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::SystemTime;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::hls::adts::AdtsConfig;
use crate::hls::{
    self, Access, DirectoryState, Frame, Recording, RecordingConfig, SegmentAdded, Streams,
};
use cfstream_proto::h264::{self, AvcConfig, Framing};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "cfhlssink",
        gst::DebugColorFlags::empty(),
        Some("cfstream HLS sink"),
    )
});

const DEFAULT_PLAYLIST_LENGTH: u32 = 6;
const DEFAULT_TARGET_DURATION: u32 = 10;
const DEFAULT_RECORD: bool = true;
const DEFAULT_MAX_DURATION: u64 = 604_800;
/// Structure name of the custom downstream event cfrtmpsrc sends ahead of a returning publisher.
const RECONNECT_EVENT: &str = "cfstream-publisher-reconnected";
/// After a new SEGMENT event, a timestamp this far from the pad's last one is a discontinuity.
const JUMP_THRESHOLD_NS: i64 = 1_000_000_000;

#[derive(Clone, Debug)]
struct Settings {
    location: Option<PathBuf>,
    playlist_length: u32,
    target_duration: u32,
    record: bool,
    max_duration: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            location: None,
            playlist_length: DEFAULT_PLAYLIST_LENGTH,
            target_duration: DEFAULT_TARGET_DURATION,
            record: DEFAULT_RECORD,
            max_duration: DEFAULT_MAX_DURATION,
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
    /// Duration of a frame, from the caps, for buffers without one (flvdemux sets none).
    frame_duration: Option<u64>,
    /// A buffer could not be converted since the caps were set (warned once per caps).
    conversion_failed: bool,
}

/// How a pad's buffers become what the TS muxer takes (Annex B H.264, ADTS AAC).
#[derive(Clone, Debug, Default)]
enum Input {
    /// H.264 `stream-format=byte-stream` or ADTS AAC: written as they are.
    #[default]
    AsIs,
    /// H.264 `stream-format=avc`/`avc3`: converted to Annex B; keyframes lacking SPS/PPS get
    /// those of the avcC (the muxer caches and repeats them from there).
    Avc(AvcConfig),
    /// AAC `stream-format=raw`: each frame gets an ADTS header built from the
    /// AudioSpecificConfig.
    RawAac(AdtsConfig),
}

impl Input {
    /// Reads a pad's caps: the input framing and the frame duration they tell. Refuses caps
    /// whose `codec_data` is missing or cannot be carried in MPEG-TS.
    fn from_caps(caps: &gst::CapsRef) -> Result<(Input, Option<u64>), String> {
        let s = caps.structure(0).ok_or("empty caps")?;
        let codec_data = || {
            s.get::<gst::Buffer>("codec_data")
                .map_err(|_| format!("{} caps without codec_data", s.name()))?
                .into_mapped_buffer_readable()
                .map_err(|_| "codec_data cannot be mapped".to_string())
        };
        let stream_format = s.get_optional::<&str>("stream-format").ok().flatten();
        match (s.name().as_str(), stream_format) {
            ("video/x-h264", Some("avc" | "avc3")) => {
                // flvdemux sets no alignment: its buffers are access units all the same.
                match s.get_optional::<&str>("alignment").ok().flatten() {
                    None | Some("au") => {}
                    Some(other) => {
                        return Err(format!(
                            "H.264 alignment={other} is not supported: whole access units \
                             (alignment=au) are needed"
                        ));
                    }
                }
                let config = AvcConfig::parse(&codec_data()?).map_err(|e| e.to_string())?;
                Ok((Input::Avc(config), framerate_duration(s)))
            }
            ("video/x-h264", _) => Ok((Input::AsIs, framerate_duration(s))),
            ("audio/mpeg", Some("raw")) => {
                let mpeg2 = s.get::<i32>("mpegversion") == Ok(2);
                let adts = AdtsConfig::from_audio_specific_config(&codec_data()?, mpeg2)
                    .map_err(|e| e.to_string())?;
                Ok((Input::RawAac(adts), Some(adts.frame_duration_ns())))
            }
            _ => Ok((Input::AsIs, None)),
        }
    }

    fn framing(&self) -> Framing {
        match self {
            Input::Avc(config) => Framing::LengthPrefixed {
                length_size: config.length_size,
            },
            _ => Framing::ByteStream,
        }
    }

    /// What the muxer takes for `data`: `data` itself, or its conversion, written into
    /// `scratch` (reused from buffer to buffer).
    fn convert<'a>(
        &self,
        data: &'a [u8],
        keyframe: bool,
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], String> {
        match self {
            Input::AsIs => return Ok(data),
            Input::Avc(config) => {
                let parameter_sets = keyframe.then_some(config.parameter_sets.as_slice());
                h264::to_annex_b(data, config.length_size, parameter_sets, scratch)
                    .map_err(|e| e.to_string())?;
            }
            Input::RawAac(adts) => adts.write_frame(data, scratch).map_err(|e| e.to_string())?,
        }
        Ok(scratch)
    }
}

/// The frame duration of a caps `framerate` (none for 0/1, variable rate).
fn framerate_duration(s: &gst::StructureRef) -> Option<u64> {
    let rate = s.get::<gst::Fraction>("framerate").ok()?;
    let (numer, denom) = (
        u64::try_from(rate.numer()).ok()?,
        u64::try_from(rate.denom()).ok()?,
    );
    (numer > 0 && denom > 0).then(|| denom * 1_000_000_000 / numer)
}

#[derive(Default)]
struct State {
    pads: Vec<PadState>,
    recording: Option<Recording>,
    name: String,
    /// EOS was posted or an error happened: buffers are refused until READY.
    done: bool,
    /// Converted buffers (avc → Annex B, raw AAC → ADTS), reused to spare an allocation each.
    scratch: Vec<u8>,
}

impl State {
    fn streams(&self) -> Streams {
        Streams {
            video: self.pads.iter().any(|p| p.video),
            audio: self.pads.iter().any(|p| !p.video),
        }
    }

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
    Io(hls::Error),
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
            pads,
            recording,
            scratch,
            ..
        } = &mut *state;
        let Some(pad_state) = pads.iter_mut().find(|p| &p.pad == pad) else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)
            && (!video || is_random_access_point(&map, pad_state.input.framing()));
        let data = match pad_state.input.convert(&map, keyframe, scratch) {
            Ok(data) => data,
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
        let frame = Frame {
            data,
            pts,
            dts,
            duration,
            keyframe,
        };
        let Some(recording) = recording.as_mut() else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let added = if video {
            recording.push_video(frame, epoch)
        } else {
            recording.push_audio(frame, epoch)
        };
        if let Some(added) = added.map_err(Failure::Io)? {
            self.segment_added(state, &added, messages);
        }
        if let Some(pad_state) = state.pad_mut(pad) {
            pad_state.wrote_since_gap = true;
        }
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
        let config = RecordingConfig {
            directory: directory.clone(),
            playlist_length: settings.playlist_length,
            target_duration: settings.target_duration,
            record: settings.record,
            max_duration_ns: settings.max_duration.saturating_mul(1_000_000_000),
            streams: state.streams(),
        };
        let recording = Recording::open(config).map_err(Failure::Io)?;
        gst::info!(
            CAT,
            imp = self,
            "recording {name} in {} (resumed: {})",
            directory.display(),
            recording.resumed()
        );
        messages.push(
            self.message(
                gst::Structure::builder("cfhlssink-recording-started")
                    .field("recording", &name)
                    .field("directory", directory.to_string_lossy().as_ref())
                    .field("resumed", recording.resumed())
                    .build(),
            ),
        );
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
        if let Some(added) = recording.break_at_gap().map_err(Failure::Io)? {
            self.segment_added(state, &added, messages);
        }
        Ok(())
    }

    fn segment_added(&self, state: &State, added: &SegmentAdded, messages: &mut Vec<gst::Message>) {
        gst::debug!(
            CAT,
            imp = self,
            "segment {} ({} ns) listed",
            added.uri,
            added.duration_ns
        );
        if added.exceeds_target {
            let settings = self.settings();
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                (
                    "segment {} lasts {:.3} s, longer than target-duration {} s: a GOP is too long",
                    added.uri,
                    added.duration_ns as f64 / 1e9,
                    settings.target_duration
                )
            );
        }
        messages.push(
            self.message(
                gst::Structure::builder("cfhlssink-segment-added")
                    .field("recording", &state.name)
                    .field("uri", &added.uri)
                    .field("duration", added.duration_ns)
                    .field("stream-time", added.start_ns)
                    .field("sequence", added.sequence)
                    .field("discontinuity", added.discontinuity)
                    .build(),
            ),
        );
    }

    /// Closes the recording (ENDLIST) and reports it.
    fn finish_recording(
        &self,
        state: &mut State,
        messages: &mut Vec<gst::Message>,
    ) -> Result<(), Failure> {
        let Some(mut recording) = state.recording.take() else {
            return Ok(());
        };
        let (added, summary) = recording.finish().map_err(Failure::Io)?;
        if let Some(added) = added {
            self.segment_added(state, &added, messages);
        }
        gst::info!(
            CAT,
            imp = self,
            "recording {} finished: {summary:?}",
            state.name
        );
        messages.push(
            self.message(
                gst::Structure::builder("cfhlssink-recording-finished")
                    .field("recording", &state.name)
                    .field(
                        "directory",
                        recording.directory().to_string_lossy().as_ref(),
                    )
                    .field("duration", summary.duration.as_nanos() as u64)
                    .field("segments", summary.segments)
                    .build(),
            ),
        );
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
                    Ok((input, frame_duration)) => {
                        gst::debug!(
                            CAT,
                            obj = pad,
                            "input {input:?}, frame {frame_duration:?} ns"
                        );
                        if let Some(p) = state.pad_mut(pad) {
                            p.input = input;
                            p.frame_duration = frame_duration;
                            p.conversion_failed = false;
                        }
                        Ok(())
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
                let kind = match e.access {
                    Access::Open => gst::ResourceError::OpenWrite,
                    Access::Write => gst::ResourceError::Write,
                };
                gst::element_imp_error!(self, kind, ("{}", e), ["path: {}", e.path.display()]);
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

impl ObjectImpl for CfHlsSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Location")
                    .blurb(
                        "Directory under which each recording gets its own subdirectory (named by \
                         the recording-name signal) holding video.m3u8, live.m3u8 and seg-NNNNNNNN.ts",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("playlist-length")
                    .nick("Playlist length")
                    .blurb("Number of segments in the live window (live.m3u8); applies to the next recording")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(DEFAULT_PLAYLIST_LENGTH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("target-duration")
                    .nick("Target duration")
                    .blurb(
                        "EXT-X-TARGETDURATION in seconds: the longest GOP expected (a longer one still \
                         makes one segment, with a warning); audio-only streams are cut every \
                         min(6, target-duration) s. Only settable in NULL/READY",
                    )
                    .minimum(1)
                    .maximum(3600)
                    .default_value(DEFAULT_TARGET_DURATION)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("record")
                    .nick("Record")
                    .blurb(
                        "Keep the recording (video.m3u8); false = live window only, segments are \
                         deleted once they left live.m3u8 and no client can still fetch them",
                    )
                    .default_value(DEFAULT_RECORD)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("max-duration")
                    .nick("Maximum duration")
                    .blurb(
                        "Seconds of media a recording keeps: older segments leave video.m3u8 and the \
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
            "playlist-length" => {
                settings.playlist_length = value.get().unwrap_or(DEFAULT_PLAYLIST_LENGTH)
            }
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
            "playlist-length" => settings.playlist_length.to_value(),
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
                "Writes H.264/AAC as MPEG-TS HLS: a live window and a recording per broadcast, with \
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
            input: Input::AsIs,
            frame_duration: None,
            conversion_failed: false,
        });
        let streams = state.streams();
        if let Some(recording) = state.recording.as_mut() {
            recording.set_streams(streams);
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
