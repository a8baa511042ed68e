//! `gopvalidate` implementation: caps are checked in `set_caps`, each H.264 access unit is
//! classified from its NAL headers (never its slice data) and fed to the GOP tracker.

use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use super::Action;
use super::caps::{self, CapsProblem, Stream};
use super::gop::{self, GopTracker, Limits};
use crate::contract::codes::ERR_GOP_OUT_OF_RANGE;
use crate::contract::event::PublisherReconnected;
use crate::contract::gopvalidate::{ErrorDetails, Stats, Violation};
use cfstream_proto::h264::{self, PictureKind};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "gopvalidate",
        gst::DebugColorFlags::empty(),
        Some("cfstream keyframe interval, GOP and codec validator"),
    )
});

const DEFAULT_MIN_KEYFRAME_INTERVAL: f64 = 4.0;
const DEFAULT_MAX_KEYFRAME_INTERVAL: f64 = 10.0;
const DEFAULT_REQUIRE_CLOSED_GOP: bool = true;
const DEFAULT_ACTION: Action = Action::Error;
/// An hour: anything longer is a configuration mistake, and it keeps nanoseconds far from overflow.
const MAX_INTERVAL_SETTING: f64 = 3600.0;

#[derive(Clone, Copy, Debug)]
struct Settings {
    min_keyframe_interval: f64,
    max_keyframe_interval: f64,
    require_closed_gop: bool,
    action: Action,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_keyframe_interval: DEFAULT_MIN_KEYFRAME_INTERVAL,
            max_keyframe_interval: DEFAULT_MAX_KEYFRAME_INTERVAL,
            require_closed_gop: DEFAULT_REQUIRE_CLOSED_GOP,
            action: DEFAULT_ACTION,
        }
    }
}

#[derive(Debug)]
struct State {
    stream: Stream,
    /// Caps of the running stream: a change restarts the measurement.
    caps: Option<gst::Caps>,
    /// Caps already reported as unusable, so that caps sent again are reported once.
    rejected_caps: Option<gst::Caps>,
    gop: GopTracker,
    /// A violation stopped the flow (`action=error`): later buffers fail without a new report.
    failed: bool,
    /// A malformed access unit was reported since the measurement last restarted.
    malformed_reported: bool,
    last_pts: Option<gst::ClockTime>,
}

impl Default for State {
    fn default() -> Self {
        State {
            stream: Stream::Unchecked,
            caps: None,
            rejected_caps: None,
            gop: GopTracker::default(),
            failed: false,
            malformed_reported: false,
            last_pts: None,
        }
    }
}

impl State {
    fn restart(&mut self) {
        self.gop.restart();
        self.malformed_reported = false;
    }
}

/// What one buffer showed, to be reported once the state lock is released.
enum Findings {
    Nothing,
    Unmappable,
    /// The first malformed access unit since the measurement restarted.
    Malformed(h264::Error),
    Violations {
        interval: Option<gop::IntervalViolation>,
        open_gop: bool,
    },
}

#[derive(Default)]
pub struct GopValidate {
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

impl GopValidate {
    fn stream_time(&self, pts: Option<gst::ClockTime>) -> u64 {
        let segment = self.obj().segment();
        pts.and_then(|pts| {
            segment
                .downcast_ref::<gst::ClockTime>()?
                .to_stream_time(pts)
        })
        .map_or(0, gst::ClockTime::nseconds)
    }

    /// Posts the violation message, then the error or warning that `action` asks for.
    fn report(
        &self,
        action: Action,
        code: &str,
        reason: &str,
        stream_time: u64,
        interval: Option<f64>,
    ) {
        gst::warning!(CAT, imp = self, "{code}: {reason}");
        let violation = Violation {
            code: code.into(),
            reason: reason.into(),
            stream_time,
            interval,
        };
        let obj = self.obj();
        // Posting only fails without a bus (no pipeline): nobody to tell then.
        let message = gst::message::Element::builder(violation.to_structure()).src(&*obj);
        let _ = obj.post_message(message.build());
        let details = ErrorDetails {
            code: code.into(),
            reason: reason.into(),
        }
        .to_structure();
        match action {
            Action::Error => gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                ("{}", reason),
                details: details
            ),
            Action::Warn => gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                ("{}", reason),
                details: details
            ),
        }
    }

    /// Classifies the access unit and measures it.
    fn inspect(&self, state: &mut State, settings: &Settings, buffer: &gst::BufferRef) -> Findings {
        let Stream::H264 {
            framing,
            frame_duration,
        } = state.stream
        else {
            return Findings::Nothing;
        };
        if buffer.flags().contains(gst::BufferFlags::DISCONT) {
            gst::debug!(CAT, imp = self, "discontinuity: measurement restarts");
            state.restart();
        }
        state.last_pts = buffer.pts().or(state.last_pts);
        let Ok(map) = buffer.map_readable() else {
            return Findings::Unmappable;
        };
        let unit = match h264::inspect_access_unit(&map, framing) {
            // A picture starts at its first macroblock; later slices were counted with it.
            Ok(Some(unit)) if unit.first_mb_in_slice == 0 => unit,
            Ok(_) => return Findings::Nothing,
            Err(_) if state.malformed_reported => return Findings::Nothing,
            Err(err) => {
                state.malformed_reported = true;
                return Findings::Malformed(err);
            }
        };
        // Only random access points start a GOP. h264parse also clears DELTA_UNIT on plain I
        // pictures (x264 codes scene cuts closer than min-keyint that way), but later pictures
        // may still reference frames before them: they are neither keyframes nor violations.
        let keyframe = matches!(unit.kind, PictureKind::Idr | PictureKind::RecoveryPointI);
        let limits = Limits::from_seconds(
            settings.min_keyframe_interval,
            settings.max_keyframe_interval,
        );
        let frame_duration = frame_duration.or(buffer.duration().map(gst::ClockTime::nseconds));
        let interval = state.gop.frame(
            buffer.pts().map(gst::ClockTime::nseconds),
            unit.kind,
            keyframe,
            frame_duration,
            limits,
        );
        let open_gop = keyframe && unit.kind != PictureKind::Idr && settings.require_closed_gop;
        if interval.is_none() && !open_gop {
            return Findings::Nothing;
        }
        state.failed = settings.action == Action::Error;
        Findings::Violations { interval, open_gop }
    }

    /// The per-buffer work, the same whether or not the base class runs in passthrough.
    fn check(&self, buffer: &gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = *self.settings.lock().unwrap();
        let findings = {
            let mut state = self.state.lock().unwrap();
            if state.failed {
                return Err(gst::FlowError::Error);
            }
            self.inspect(&mut state, &settings, buffer)
        };
        // Reported without the state lock: bus sync handlers may read `stats`.
        let (interval, open_gop) = match findings {
            Findings::Nothing => return Ok(gst::FlowSuccess::Ok),
            Findings::Unmappable => {
                gst::element_imp_error!(self, gst::ResourceError::Read, ("Failed to map buffer"));
                return Err(gst::FlowError::Error);
            }
            Findings::Malformed(err) => {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Decode,
                    (
                        "Malformed H.264 access unit at {}: {}",
                        buffer.pts().display(),
                        err
                    )
                );
                return Ok(gst::FlowSuccess::Ok);
            }
            Findings::Violations { interval, open_gop } => (interval, open_gop),
        };
        let stream_time = self.stream_time(buffer.pts());
        if let Some(violation) = interval {
            let interval = violation.interval() as f64 / 1e9;
            let reason = violation.reason();
            self.report(
                settings.action,
                ERR_GOP_OUT_OF_RANGE,
                &reason,
                stream_time,
                Some(interval),
            );
        }
        if open_gop {
            let reason = format!(
                "keyframe at {} s is not IDR: open GOP",
                gop::seconds(stream_time)
            );
            self.report(
                settings.action,
                ERR_GOP_OUT_OF_RANGE,
                &reason,
                stream_time,
                None,
            );
        }
        match settings.action {
            Action::Error => Err(gst::FlowError::Error),
            Action::Warn => Ok(gst::FlowSuccess::Ok),
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for GopValidate {
    const NAME: &'static str = "GstGopValidate";
    type Type = super::GopValidate;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for GopValidate {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecDouble::builder("min-keyframe-interval")
                    .nick("Minimum keyframe interval")
                    .blurb(
                        "Shortest allowed time between two keyframes, in seconds of presentation \
                         time (one frame duration of tolerance)",
                    )
                    .minimum(0.0)
                    .maximum(MAX_INTERVAL_SETTING)
                    .default_value(DEFAULT_MIN_KEYFRAME_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("max-keyframe-interval")
                    .nick("Maximum keyframe interval")
                    .blurb(
                        "Longest allowed time between two keyframes, in seconds of presentation \
                         time (one frame duration of tolerance); a GOP fails as soon as it runs \
                         past it",
                    )
                    .minimum(0.0)
                    .maximum(MAX_INTERVAL_SETTING)
                    .default_value(DEFAULT_MAX_KEYFRAME_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("require-closed-gop")
                    .nick("Require closed GOPs")
                    .blurb(
                        "Every keyframe must be an IDR access unit; open-GOP keyframes (I \
                         pictures with a recovery-point SEI) are violations",
                    )
                    .default_value(DEFAULT_REQUIRE_CLOSED_GOP)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("action", DEFAULT_ACTION)
                    .nick("Action")
                    .blurb(
                        "What a violation does besides posting a gopvalidate-violation element \
                         message: error (element error, the flow stops) or warn (warning, data \
                         passes unchanged)",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "gopvalidate-stats: gops (u64, keyframes seen), last-interval, \
                         min-interval, max-interval (f64 s, 0 before the first interval), \
                         b-frames (u64), idr-count (u64)",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "min-keyframe-interval" => {
                settings.min_keyframe_interval = value.get().expect("type checked upstream")
            }
            "max-keyframe-interval" => {
                settings.max_keyframe_interval = value.get().expect("type checked upstream")
            }
            "require-closed-gop" => {
                settings.require_closed_gop = value.get().expect("type checked upstream")
            }
            "action" => settings.action = value.get().expect("type checked upstream"),
            name => unreachable!("unknown property {name}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "min-keyframe-interval" => self
                .settings
                .lock()
                .unwrap()
                .min_keyframe_interval
                .to_value(),
            "max-keyframe-interval" => self
                .settings
                .lock()
                .unwrap()
                .max_keyframe_interval
                .to_value(),
            "require-closed-gop" => self.settings.lock().unwrap().require_closed_gop.to_value(),
            "action" => self.settings.lock().unwrap().action.to_value(),
            "stats" => {
                let stats = self.state.lock().unwrap().gop.stats();
                let seconds = |ns: Option<u64>| ns.map_or(0.0, |ns| ns as f64 / 1e9);
                Stats {
                    gops: stats.gops,
                    last_interval: seconds(stats.last_interval),
                    min_interval: seconds(stats.min_interval),
                    max_interval: seconds(stats.max_interval),
                    b_frames: stats.b_frames,
                    idr_count: stats.idr_count,
                }
                .to_structure()
                .to_value()
            }
            name => unreachable!("unknown property {name}"),
        }
    }
}

impl GstObjectImpl for GopValidate {}

impl ElementImpl for GopValidate {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "GOP and codec validator",
                "Filter/Video/Audio",
                "Passes data unchanged while checking that video is H.264 with keyframe \
                 intervals in range and closed GOPs, and that audio is AAC",
                "cfstream developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::new_any();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("valid src template"),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("valid sink template"),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for GopValidate {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = true;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = true;

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = State::default();
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let action = self.settings.lock().unwrap().action;
        let mut state = self.state.lock().unwrap();
        let problem = match caps::inspect_caps(incaps) {
            Ok(stream) => {
                if state.caps.as_ref().is_some_and(|caps| caps != incaps) {
                    gst::debug!(CAT, imp = self, "caps changed: measurement restarts");
                    state.restart();
                }
                state.stream = stream;
                state.caps = Some(incaps.clone());
                state.rejected_caps = None;
                return Ok(());
            }
            Err(problem) => problem,
        };
        state.stream = Stream::Unchecked;
        let first_report = state.rejected_caps.as_ref() != Some(incaps);
        state.rejected_caps = Some(incaps.clone());
        let pts = state.last_pts;
        drop(state);
        match problem {
            CapsProblem::Unsupported { code, reason } => {
                if first_report {
                    self.report(action, code, &reason, self.stream_time(pts), None);
                }
                match action {
                    Action::Error => Err(gst::loggable_error!(CAT, "{reason}")),
                    Action::Warn => Ok(()),
                }
            }
            CapsProblem::Invalid(reason) => {
                if first_report {
                    gst::element_imp_error!(self, gst::StreamError::Format, ("{}", reason));
                }
                Err(gst::loggable_error!(CAT, "{reason}"))
            }
        }
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        let restart = match event.view() {
            gst::EventView::FlushStop(_) => {
                self.state.lock().unwrap().failed = false;
                true
            }
            gst::EventView::Segment(_) => true,
            gst::EventView::CustomDownstream(_) => PublisherReconnected::is(&event),
            _ => false,
        };
        if restart {
            gst::debug!(CAT, imp = self, "{:?}: measurement restarts", event.type_());
            self.state.lock().unwrap().restart();
        }
        self.parent_sink_event(event)
    }

    fn transform_ip_passthrough(
        &self,
        buffer: &gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.check(buffer)
    }

    /// Only reached if upstream and downstream caps ever differed; the check is the same.
    fn transform_ip(
        &self,
        buffer: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.check(buffer)
    }
}
