use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;
use tokio::time::Instant;

use crate::contract::cfsrtsrc::{
    PublisherConnected, PublisherDisconnected, PublisherRejected, Stats as StatsStructure,
};
use crate::contract::{DisconnectReason, event};
use crate::ingest_stats::IngestStats;
use crate::net::grid::DEFAULT_READ_INTERVAL as GRID_INTERVAL;
use crate::source_wake::{Waited, Wakeup, idle_deadline};
use crate::srt::{
    self, CallerFeed, CallerItem, Counters, FeedEvent, ListenerConfig, Registration, StreamOptions,
    TsBatch,
};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "cfsrtsrc",
        gst::DebugColorFlags::empty(),
        Some("cfstream SRT listener source"),
    )
});

const DEFAULT_LOCATION: &str = "srt://0.0.0.0:9000";
const DEFAULT_LATENCY: u32 = 120;
const DEFAULT_IDLE_TIMEOUT: u32 = 0;
const DEFAULT_ENFORCE_CODECS: bool = true;
const DEFAULT_READ_TIMEOUT: u32 = 10;
const DEFAULT_READ_INTERVAL: u32 = GRID_INTERVAL.as_millis() as u32;
/// libsrt's bounds on `SRTO_PASSPHRASE`.
const PASSPHRASE_LENGTH: std::ops::RangeInclusive<usize> = 10..=79;

#[derive(Debug, Clone)]
struct Settings {
    location: String,
    stream_id: Option<String>,
    passphrase: Option<String>,
    latency: u32,
    idle_timeout: u32,
    enforce_codecs: bool,
    read_timeout: u32,
    read_interval: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            location: DEFAULT_LOCATION.into(),
            stream_id: None,
            passphrase: None,
            latency: DEFAULT_LATENCY,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            enforce_codecs: DEFAULT_ENFORCE_CODECS,
            read_timeout: DEFAULT_READ_TIMEOUT,
            read_interval: DEFAULT_READ_INTERVAL,
        }
    }
}

#[derive(Default)]
struct State {
    registration: Option<Registration>,
    /// The live caller's connection, read by `create()` itself.
    feed: Option<Box<CallerFeed>>,
    /// Address of the caller being received.
    publisher: Option<String>,
    /// A caller was seen: the next one is a reconnect.
    had_publisher: bool,
    /// Running time of the last buffer, for the gap before a returning caller's first one.
    last_output: Option<gst::ClockTime>,
    /// The next buffer is a returning caller's first.
    gap_pending: bool,
    /// When the last caller left; the idle timeout counts from here.
    idle_since: Option<Instant>,
}

/// What a wait ended with.
enum Wake {
    Item(CallerItem),
    Feed(FeedEvent),
    IdleTimeout,
    Flushing,
}

#[derive(Default)]
pub struct CfSrtSrc {
    settings: Mutex<Settings>,
    /// Held by `create()` while it waits: everything else it needs lives outside.
    state: Mutex<State>,
    stats: Mutex<IngestStats>,
    /// libsrt's counters of the current caller, refreshed with each batch.
    counters: Mutex<Counters>,
    bound_port: AtomicU32,
    wakeup: Wakeup,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl CfSrtSrc {
    fn post_element_message(&self, structure: gst::Structure) {
        let message = gst::message::Element::builder(structure)
            .src(&*self.obj())
            .build();
        let _ = self.obj().post_message(message);
    }

    fn running_time(&self) -> gst::ClockTime {
        self.obj()
            .current_running_time()
            .unwrap_or(gst::ClockTime::ZERO)
    }

    fn stats_structure(&self) -> gst::Structure {
        let stats = lock(&self.stats);
        let counters = *lock(&self.counters);
        StatsStructure {
            bytes: stats.bytes,
            bitrate: stats.bitrate,
            frames: stats.frames,
            publisher_address: stats.publisher_address.clone(),
            connected_since: stats.connected_since.clone(),
            packets_lost: counters.packets_lost,
            packets_dropped: counters.packets_dropped,
        }
        .to_structure()
    }

    /// Waits for the next caller (or news of a refused one), the idle timeout or `unlock()`.
    fn wait(&self, state: &mut State) -> Result<Wake, gst::FlowError> {
        let idle_timeout = lock(&self.settings).idle_timeout;
        let idle_deadline = idle_deadline(state.idle_since, idle_timeout);
        let registration = state
            .registration
            .as_mut()
            .ok_or(gst::FlowError::Flushing)?;
        Ok(match self.wakeup.wait(idle_deadline, registration.recv()) {
            Waited::Item(item) => Wake::Item(item),
            Waited::IdleTimeout => Wake::IdleTimeout,
            Waited::Flushing => Wake::Flushing,
        })
    }

    /// Reads the live caller until it has media or news.
    fn read_feed(&self, state: &mut State) -> Wake {
        // Callers refused while this one is live are reported as they come.
        if let Some(item) = state.registration.as_mut().and_then(Registration::try_recv) {
            return Wake::Item(item);
        }
        match (self.wakeup.interrupt(), state.feed.as_mut()) {
            (Some(interrupt), Some(feed)) => Wake::Feed(feed.next(interrupt)),
            _ => Wake::Flushing,
        }
    }

    fn on_caller(&self, state: &mut State, feed: Box<CallerFeed>) {
        let remote = feed.remote().to_string();
        gst::info!(
            CAT,
            imp = self,
            "caller {remote} connected (stream id {}, encrypted {})",
            feed.stream_id(),
            feed.encrypted()
        );
        let reconnect = state.had_publisher;
        state.had_publisher = true;
        state.gap_pending = reconnect;
        state.idle_since = None;
        state.publisher = Some(remote.clone());
        lock(&self.stats).connected(&remote);
        *lock(&self.counters) = Counters::default();
        let connected = PublisherConnected {
            remote_address: remote,
            stream_id: feed.stream_id().to_owned(),
            encrypted: feed.encrypted(),
            reconnect,
        };
        state.feed = Some(feed);
        self.post_element_message(connected.to_structure());
    }

    /// Reports a caller's end: an element message, and downstream an event (serialized: after
    /// the caller's last buffer) that lets a sink close what it has open now.
    fn on_disconnected(&self, state: &mut State, reason: DisconnectReason) {
        let remote = state.publisher.take().unwrap_or_default();
        gst::info!(CAT, imp = self, "caller {remote} disconnected: {reason}");
        state.feed = None;
        state.idle_since = Some(Instant::now());
        lock(&self.stats).disconnected();
        let event = event::PublisherDisconnected {
            remote_address: remote.clone(),
            reason: reason.clone(),
        };
        let message = PublisherDisconnected {
            remote_address: remote,
            reason,
        };
        self.post_element_message(message.to_structure());
        self.obj().src_pad().push_event(event.to_event());
    }

    fn on_rejected(&self, remote: String, code: &str, reason: String) {
        gst::warning!(
            CAT,
            imp = self,
            "caller {remote} rejected: {code}: {reason}"
        );
        let rejected = PublisherRejected {
            remote_address: remote,
            code: code.into(),
            reason,
        };
        self.post_element_message(rejected.to_structure());
    }

    /// One buffer of the batch's MPEG-TS; a returning caller's first is announced by
    /// `cfstream-publisher-reconnected` and DISCONT. Buffers carry no timestamps: the stream's
    /// own (PCR, PTS) are exact, while the time a batch was read at is late by up to a grid
    /// interval, which `tsdemux` would take into the frames' timestamps (and a 4 s GOP would
    /// measure 3.96 s).
    fn batch_buffer(&self, state: &mut State, batch: TsBatch) -> gst::Buffer {
        let now = self.running_time();
        let gap = std::mem::take(&mut state.gap_pending)
            .then(|| now.saturating_sub(state.last_output.unwrap_or(now)));
        if let Some(gap) = gap {
            let remote = state.publisher.clone().unwrap_or_default();
            gst::info!(
                CAT,
                imp = self,
                "caller {remote} continues after a gap of {gap}"
            );
            let event = event::PublisherReconnected {
                gap,
                remote_address: remote,
            };
            self.obj().src_pad().push_event(event.to_event());
        }
        state.last_output = Some(now);
        lock(&self.stats).count(batch.bytes.len(), batch.video_frames);
        if let Some(feed) = &state.feed {
            *lock(&self.counters) = feed.counters();
        }
        let mut buffer = gst::Buffer::from_slice(batch.bytes.freeze());
        if gap.is_some() {
            buffer
                .get_mut()
                .expect("new buffer")
                .set_flags(gst::BufferFlags::DISCONT);
        }
        buffer
    }

    fn options(settings: &Settings) -> Result<StreamOptions, gst::ErrorMessage> {
        let passphrase = settings.passphrase.clone().filter(|p| !p.is_empty());
        if let Some(passphrase) = &passphrase
            && !PASSPHRASE_LENGTH.contains(&passphrase.len())
        {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                (
                    "passphrase must be 10 to 79 bytes long, not {}",
                    passphrase.len()
                )
            ));
        }
        Ok(StreamOptions {
            passphrase,
            latency: Duration::from_millis(settings.latency.into()),
            enforce_codecs: settings.enforce_codecs,
            read_timeout: Duration::from_secs(settings.read_timeout.into()),
            read_interval: Duration::from_millis(settings.read_interval.into()),
        })
    }
}

#[glib::object_subclass]
impl ObjectSubclass for CfSrtSrc {
    const NAME: &'static str = "CfSrtSrc";
    type Type = super::CfSrtSrc;
    type ParentType = gst_base::PushSrc;
}

impl ObjectImpl for CfSrtSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Location")
                    .blurb(
                        "UDP address to listen on: srt://HOST:PORT (port 0 picks a free port, \
                         see bound-port); shared by every cfsrtsrc of the process on it",
                    )
                    .default_value(Some(DEFAULT_LOCATION))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("stream-id")
                    .nick("Stream id")
                    .blurb(
                        "The stream id a caller must present (required): plain, or the \
                         resource r= of #!::r=ID,m=publish",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("passphrase")
                    .nick("Passphrase")
                    .blurb(
                        "AES passphrase (10-79 bytes) callers must present; unset: callers \
                         must not encrypt. Callers with a wrong one, or an unknown stream id, \
                         are refused in the handshake alike",
                    )
                    .write_only()
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("latency")
                    .nick("Latency")
                    .blurb(
                        "SRT receive latency in milliseconds: how long a lost packet may take \
                         to be resent before it is given up",
                    )
                    .default_value(DEFAULT_LATENCY)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("idle-timeout")
                    .nick("Idle timeout")
                    .blurb(
                        "Seconds to wait for a caller to come back after one left before \
                         pushing EOS (0 = wait forever; before the first caller the element \
                         always waits)",
                    )
                    .default_value(DEFAULT_IDLE_TIMEOUT)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("enforce-codecs")
                    .nick("Enforce codecs")
                    .blurb(
                        "Refuse callers whose MPEG-TS program table lists video other than \
                         H.264 or audio other than AAC in ADTS (ERR_UNSUPPORTED_VIDEO_CODEC / \
                         ERR_UNSUPPORTED_AUDIO_CODEC)",
                    )
                    .default_value(DEFAULT_ENFORCE_CODECS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("read-timeout")
                    .nick("Read timeout")
                    .blurb("Seconds without media after which a caller counts as cut off")
                    .minimum(1)
                    .default_value(DEFAULT_READ_TIMEOUT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("read-interval")
                    .nick("Read interval")
                    .blurb(
                        "Milliseconds between reads of a live caller's connection: its data \
                         waits up to this long; longer costs less CPU per stream",
                    )
                    .minimum(1)
                    .maximum(1000)
                    .default_value(DEFAULT_READ_INTERVAL)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "cfsrtsrc-stats: bytes (u64, MPEG-TS bytes received), bitrate (u64, \
                         bits/s of the current caller), frames (u64, video access units), \
                         publisher-address (string), connected-since (RFC 3339 string, empty \
                         without caller), packets-lost and packets-dropped (u64, the current \
                         caller's, from libsrt)",
                    )
                    .read_only()
                    .build(),
                glib::ParamSpecUInt::builder("bound-port")
                    .nick("Bound port")
                    .blurb("The UDP port actually listened on (useful with port 0), 0 before start")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = lock(&self.settings);
        match pspec.name() {
            "location" => {
                settings.location = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_else(|| DEFAULT_LOCATION.into());
            }
            "stream-id" => settings.stream_id = value.get().expect("type checked upstream"),
            "passphrase" => settings.passphrase = value.get().expect("type checked upstream"),
            "latency" => settings.latency = value.get().expect("type checked upstream"),
            "idle-timeout" => settings.idle_timeout = value.get().expect("type checked upstream"),
            "enforce-codecs" => {
                settings.enforce_codecs = value.get().expect("type checked upstream")
            }
            "read-timeout" => settings.read_timeout = value.get().expect("type checked upstream"),
            "read-interval" => settings.read_interval = value.get().expect("type checked upstream"),
            other => unimplemented!("property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = lock(&self.settings);
        match pspec.name() {
            "location" => settings.location.to_value(),
            "stream-id" => settings.stream_id.to_value(),
            "latency" => settings.latency.to_value(),
            "idle-timeout" => settings.idle_timeout.to_value(),
            "enforce-codecs" => settings.enforce_codecs.to_value(),
            "read-timeout" => settings.read_timeout.to_value(),
            "read-interval" => settings.read_interval.to_value(),
            "stats" => {
                drop(settings);
                self.stats_structure().to_value()
            }
            "bound-port" => self.bound_port.load(Ordering::Relaxed).to_value(),
            other => unimplemented!("property {other}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_live(true);
        obj.set_format(gst::Format::Time);
    }
}

impl GstObjectImpl for CfSrtSrc {}

impl ElementImpl for CfSrtSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "SRT listener source",
                "Source/Network",
                "Listens for an SRT caller with a given stream id and passphrase (one UDP port \
                 for many inputs) and outputs its MPEG-TS",
                "cfstream developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::builder("video/mpegts")
                .field("systemstream", true)
                .field("packetsize", 188i32)
                .build();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("valid template"),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseSrcImpl for CfSrtSrc {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let addr = srt::url::listen_addr(&settings.location)
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))?;
        let stream_id = settings
            .stream_id
            .clone()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                gst::error_msg!(gst::ResourceError::Settings, ("stream-id is required"))
            })?;
        let options = Self::options(&settings)?;
        let listener = srt::listener(&ListenerConfig { addr }).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ("Cannot listen for SRT on {addr}: {e}")
            )
        })?;
        self.wakeup.prepare().map_err(|e| {
            gst::error_msg!(gst::ResourceError::Failed, ("Cannot make an eventfd: {e}"))
        })?;
        let registration = listener
            .register(&stream_id, options)
            .map_err(|e| gst::error_msg!(gst::ResourceError::Busy, ("{e}")))?;
        self.bound_port
            .store(listener.local_addr().port().into(), Ordering::Relaxed);
        gst::info!(
            CAT,
            imp = self,
            "listening on {} for stream id {stream_id}",
            listener.local_addr()
        );
        *lock(&self.state) = State {
            registration: Some(registration),
            ..State::default()
        };
        *lock(&self.stats) = IngestStats::default();
        *lock(&self.counters) = Counters::default();
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let state = std::mem::take(&mut *lock(&self.state));
        if let Some(remote) = state.publisher {
            let disconnected = PublisherDisconnected {
                remote_address: remote,
                reason: DisconnectReason::Stopped,
            };
            self.post_element_message(disconnected.to_structure());
        }
        // Dropping the registration unregisters the id; dropping the feed closes the caller.
        drop(state.feed);
        drop(state.registration);
        Ok(())
    }

    fn is_seekable(&self) -> bool {
        false
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        self.wakeup.unlock();
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        self.wakeup.unlock_stop();
        Ok(())
    }
}

impl PushSrcImpl for CfSrtSrc {
    fn create(
        &self,
        _buffer: Option<&mut gst::BufferRef>,
    ) -> Result<CreateSuccess, gst::FlowError> {
        let mut state = lock(&self.state);
        loop {
            let wake = if state.feed.is_some() {
                self.read_feed(&mut state)
            } else {
                self.wait(&mut state)?
            };
            match wake {
                Wake::Flushing | Wake::Feed(FeedEvent::Interrupted)
                    if self.wakeup.is_flushing() =>
                {
                    return Err(gst::FlowError::Flushing);
                }
                // An interrupt left over from an earlier unlock.
                Wake::Flushing | Wake::Feed(FeedEvent::Interrupted) => {}
                Wake::IdleTimeout => {
                    gst::info!(CAT, imp = self, "no caller came back: end of stream");
                    state.registration = None;
                    return Err(gst::FlowError::Eos);
                }
                Wake::Item(CallerItem::Caller(feed)) => self.on_caller(&mut state, feed),
                Wake::Item(CallerItem::Rejected {
                    remote,
                    code,
                    reason,
                }) => self.on_rejected(remote.to_string(), code, reason),
                Wake::Feed(FeedEvent::Media(batch)) => {
                    return Ok(CreateSuccess::NewBuffer(
                        self.batch_buffer(&mut state, batch),
                    ));
                }
                Wake::Feed(FeedEvent::Ended(reason)) => self.on_disconnected(&mut state, reason),
                Wake::Feed(FeedEvent::Rejected { code, reason }) => {
                    let remote = state.publisher.clone().unwrap_or_default();
                    self.on_rejected(remote, code, reason);
                    self.on_disconnected(&mut state, DisconnectReason::Rejected);
                }
            }
        }
    }
}
