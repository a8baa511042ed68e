use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;
use tokio::time::Instant;

use crate::contract::cfrtmpsrc::{
    PublisherConnected, PublisherDisconnected, PublisherRejected, Stats as StatsStructure,
};
use crate::contract::{DisconnectReason, event};
use crate::ingest_stats::IngestStats;
use crate::net::admission::{self, Limits, admission};
use crate::rtmp::url::ListenUrl;
use crate::rtmp::{
    self, FeedEvent, IngestItem, ListenerConfig, MediaItem, PublisherFeed, Registration,
    StreamOptions, TlsFiles,
};
use crate::source_wake::{Waited, Wakeup, idle_deadline};
use cfstream_proto::flv::{self, StreamHeader};
use cfstream_proto::rtmp::session::MediaMessage;
use cfstream_proto::timeline::Timeline;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "cfrtmpsrc",
        gst::DebugColorFlags::empty(),
        Some("cfstream RTMP/RTMPS server source"),
    )
});

const DEFAULT_LOCATION: &str = "rtmp://0.0.0.0:1935/live";
const DEFAULT_IDLE_TIMEOUT: u32 = 0;
const DEFAULT_ENFORCE_CODECS: bool = true;
const DEFAULT_READ_TIMEOUT: u32 = 10;
const DEFAULT_READ_INTERVAL: u32 = rtmp::DEFAULT_READ_INTERVAL.as_millis() as u32;
const DEFAULT_HANDSHAKE_TIMEOUT: u32 = 10;
const DEFAULT_MAX_CONNECTIONS: u32 = admission::DEFAULT_MAX_CONNECTIONS as u32;
const DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS: u32 =
    admission::DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS as u32;

#[derive(Debug, Clone)]
struct Settings {
    location: String,
    stream_key: Option<String>,
    tls_certificate: Option<PathBuf>,
    tls_private_key: Option<PathBuf>,
    idle_timeout: u32,
    enforce_codecs: bool,
    read_timeout: u32,
    read_interval: u32,
    handshake_timeout: u32,
    max_connections: u32,
    max_unauthenticated_per_address: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            location: DEFAULT_LOCATION.into(),
            stream_key: None,
            tls_certificate: None,
            tls_private_key: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            enforce_codecs: DEFAULT_ENFORCE_CODECS,
            read_timeout: DEFAULT_READ_TIMEOUT,
            read_interval: DEFAULT_READ_INTERVAL,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_unauthenticated_per_address: DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS,
        }
    }
}

#[derive(Default)]
struct State {
    registration: Option<Registration>,
    header_sent: bool,
    /// Address of the publisher being received.
    publisher: Option<String>,
    /// Publishers' tag timestamps mapped onto the element's running time.
    timeline: Timeline,
    /// When the last publisher left; the idle timeout counts from here.
    idle_since: Option<Instant>,
    /// The rest of the batch being output, one tag per `create()`.
    batch: Option<MediaItem>,
    /// The live publisher's connection, read by `create()` itself.
    feed: Option<Box<PublisherFeed>>,
}

/// What a consumer joining mid-stream (a `tee` branch, `rtmp2sink`) needs before any frame:
/// onMetaData and the codec sequence headers (AVC decoder configuration, AAC
/// AudioSpecificConfig). The latest of each is kept, so a returning publisher's new headers
/// replace the old ones.
#[derive(Default)]
struct StreamHeaders {
    metadata: Option<gst::Buffer>,
    video: Option<gst::Buffer>,
    audio: Option<gst::Buffer>,
}

impl StreamHeaders {
    /// Keeps `buffer` if it is a header tag; returns whether it was one.
    fn keep(&mut self, tag_type: u8, body: &[u8], buffer: &gst::Buffer) -> bool {
        let slot = match flv::stream_header(tag_type, body) {
            Some(StreamHeader::Metadata) => &mut self.metadata,
            Some(StreamHeader::VideoConfig) => &mut self.video,
            Some(StreamHeader::AudioConfig) => &mut self.audio,
            None => return false,
        };
        *slot = Some(buffer.clone());
        true
    }

    /// `video/x-flv, streamheader=<FLV header, onMetaData, sequence headers>`.
    fn caps(&self) -> gst::Caps {
        let file_header = gst::Buffer::from_slice(flv::FILE_HEADER);
        let headers = std::iter::once(&file_header)
            .chain(
                [&self.metadata, &self.video, &self.audio]
                    .into_iter()
                    .flatten(),
            )
            .map(|b| {
                let mut header = b.copy();
                header
                    .get_mut()
                    .expect("new buffer")
                    .set_flags(gst::BufferFlags::HEADER);
                header.to_send_value()
            });
        gst::Caps::builder("video/x-flv")
            .field("streamheader", gst::Array::from_values(headers))
            .build()
    }
}

fn stats_structure(stats: &IngestStats) -> gst::Structure {
    StatsStructure {
        bytes: stats.bytes,
        bitrate: stats.bitrate,
        frames: stats.frames,
        publisher_address: stats.publisher_address.clone(),
        connected_since: stats.connected_since.clone(),
    }
    .to_structure()
}

/// What a wait for the next item ended with.
enum Wake {
    Item(IngestItem),
    IdleTimeout,
    Flushing,
}

#[derive(Default)]
pub struct CfRtmpSrc {
    settings: Mutex<Settings>,
    /// Held by `create()` while it waits: everything else it needs lives outside.
    state: Mutex<State>,
    stats: Mutex<IngestStats>,
    /// The latest header tags, announced in the caps' `streamheader` (apart from `state`:
    /// caps queries must not wait for `create()`).
    headers: Mutex<StreamHeaders>,
    bound_port: AtomicU32,
    wakeup: Wakeup,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl CfRtmpSrc {
    fn post_element_message(&self, structure: gst::Structure) {
        let message = gst::message::Element::builder(structure)
            .src(&*self.obj())
            .build();
        let _ = self.obj().post_message(message);
    }

    fn running_time_ms(&self) -> u64 {
        self.obj()
            .current_running_time()
            .map_or(0, gst::ClockTime::mseconds)
    }

    /// Waits for the next item, the idle timeout or `unlock()`.
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

    fn on_connected(
        &self,
        state: &mut State,
        remote: String,
        app: String,
        tls: bool,
        encoder: String,
    ) {
        gst::info!(
            CAT,
            imp = self,
            "publisher {remote} connected (app {app}, tls {tls}, {encoder})"
        );
        let reconnect = state.timeline.has_output() || state.idle_since.is_some();
        state.publisher = Some(remote.clone());
        state.timeline.new_publisher();
        state.idle_since = None;
        lock(&self.stats).connected(&remote);
        let connected = PublisherConnected {
            remote_address: remote,
            app,
            tls,
            encoder,
            reconnect,
        };
        self.post_element_message(connected.to_structure());
    }

    /// Reports the end of a publish: an element message, and downstream an event (serialized:
    /// after the publisher's last buffer) that lets a sink close what it has open now.
    fn on_disconnected(&self, state: &mut State, remote: String, reason: DisconnectReason) {
        gst::info!(CAT, imp = self, "publisher {remote} disconnected: {reason}");
        state.publisher = None;
        state.timeline.new_publisher();
        state.idle_since = Some(Instant::now());
        lock(&self.stats).disconnected();
        let event = event::PublisherDisconnected {
            remote_address: remote.clone(),
            reason: reason.clone(),
        };
        self.post_element_message(
            PublisherDisconnected {
                remote_address: remote,
                reason,
            }
            .to_structure(),
        );
        self.obj().src_pad().push_event(event.to_event());
    }

    fn on_rejected(&self, remote: String, code: &str, reason: String) {
        gst::warning!(
            CAT,
            imp = self,
            "publisher {remote} rejected: {code}: {reason}"
        );
        let rejected = PublisherRejected {
            remote_address: remote,
            code: code.into(),
            reason,
        };
        self.post_element_message(rejected.to_structure());
    }

    /// Reads the live publisher's connection until it has media or news.
    fn read_feed(&self, state: &mut State) -> Wake {
        // Other publishers refused while this one is live are reported as they come.
        if let Some(item) = state.registration.as_mut().and_then(Registration::try_recv) {
            return Wake::Item(item);
        }
        let Some(interrupt) = self.wakeup.interrupt() else {
            return Wake::Flushing;
        };
        let Some(feed) = state.feed.as_mut() else {
            return Wake::Flushing;
        };
        let remote = feed.remote();
        let ended = |reason: DisconnectReason| {
            Wake::Item(IngestItem::PublisherDisconnected { remote, reason })
        };
        let wake = match feed.next(interrupt) {
            FeedEvent::Media(batch) => return Wake::Item(IngestItem::Media(batch)),
            FeedEvent::Interrupted => return Wake::Flushing,
            FeedEvent::Ended(reason) => ended(reason),
            FeedEvent::Rejected { code, reason } => {
                self.on_rejected(remote.to_string(), code, reason);
                ended(DisconnectReason::Rejected)
            }
        };
        state.feed = None;
        wake
    }

    /// One FLV tag buffer for a media message, timestamped in running time.
    fn tag_buffer(&self, state: &mut State, message: &MediaMessage) -> gst::Buffer {
        let placed = state
            .timeline
            .place(message.timestamp, || self.running_time_ms());
        let output_ms = placed.output_ms;
        if let Some(gap_ms) = placed.gap_ms {
            let gap = gst::ClockTime::from_mseconds(gap_ms);
            let remote = state.publisher.clone().unwrap_or_default();
            gst::info!(
                CAT,
                imp = self,
                "publisher {remote} continues after a gap of {gap}"
            );
            let event = event::PublisherReconnected {
                gap,
                remote_address: remote,
            };
            self.obj().src_pad().push_event(event.to_event());
        }

        lock(&self.stats).count(
            message.body.len(),
            u64::from(flv::is_video_frame(message.tag_type, &message.body)),
        );
        let mut tag = BytesMut::new();
        flv::write_tag(&mut tag, message.tag_type, output_ms as u32, &message.body);
        let mut buffer = gst::Buffer::from_slice(tag);
        {
            let buffer = buffer.get_mut().expect("new buffer");
            let timestamp = gst::ClockTime::from_mseconds(output_ms);
            buffer.set_pts(timestamp);
            buffer.set_dts(timestamp);
            if placed.gap_ms.is_some() {
                buffer.set_flags(gst::BufferFlags::DISCONT);
            }
        }
        // The new caps go out before this buffer, so a branch linked later starts with them.
        let header_caps = {
            let mut headers = lock(&self.headers);
            headers
                .keep(message.tag_type, &message.body, &buffer)
                .then(|| headers.caps())
        };
        if let Some(caps) = header_caps
            && let Err(e) = self.obj().set_caps(&caps)
        {
            gst::warning!(CAT, imp = self, "announcing stream headers: {e}");
        }
        buffer
    }
}

#[glib::object_subclass]
impl ObjectSubclass for CfRtmpSrc {
    const NAME: &'static str = "GstCfRtmpSrc";
    type Type = super::CfRtmpSrc;
    type ParentType = gst_base::PushSrc;
}

impl ObjectImpl for CfRtmpSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Location")
                    .blurb(
                        "Where to listen and the application publishers use: \
                         rtmp://HOST:PORT/APP or rtmps://HOST:PORT/APP (port 0 picks a free \
                         port, see bound-port)",
                    )
                    .default_value(Some(DEFAULT_LOCATION))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("stream-key")
                    .nick("Stream key")
                    .blurb("The publish name (stream key) a publisher must present (required)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("tls-certificate")
                    .nick("TLS certificate")
                    .blurb("PEM file with the server certificate chain (required for rtmps://)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("tls-private-key")
                    .nick("TLS private key")
                    .blurb(
                        "PEM file with the private key of tls-certificate (required for rtmps://)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("idle-timeout")
                    .nick("Idle timeout")
                    .blurb(
                        "Seconds to wait for a publisher to come back after one left before \
                         pushing EOS (0 = wait forever; before the first publisher the element \
                         always waits)",
                    )
                    .default_value(DEFAULT_IDLE_TIMEOUT)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("enforce-codecs")
                    .nick("Enforce codecs")
                    .blurb(
                        "Refuse publishers sending video other than H.264 (AVC) or audio other \
                         than AAC (ERR_UNSUPPORTED_VIDEO_CODEC / ERR_UNSUPPORTED_AUDIO_CODEC)",
                    )
                    .default_value(DEFAULT_ENFORCE_CODECS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("read-timeout")
                    .nick("Read timeout")
                    .blurb("Seconds of silence after which a publisher counts as cut off")
                    .minimum(1)
                    .default_value(DEFAULT_READ_TIMEOUT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("read-interval")
                    .nick("Read interval")
                    .blurb(
                        "Milliseconds between reads of a live publisher's connection: its data \
                         waits up to this long; longer costs less CPU per stream",
                    )
                    .minimum(1)
                    .maximum(1000)
                    .default_value(DEFAULT_READ_INTERVAL)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("handshake-timeout")
                    .nick("Handshake timeout")
                    .blurb(
                        "Seconds a new connection has from accept to its publish command (TLS, \
                         RTMP handshake, connect); shared by all elements on the same listener, \
                         the last one started sets it",
                    )
                    .minimum(1)
                    .default_value(DEFAULT_HANDSHAKE_TIMEOUT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-connections")
                    .nick("Maximum connections")
                    .blurb(
                        "RTMP(S) connections the process keeps open at most; a new one over the \
                         cap is closed at accept (0: no cap). Process-wide: the last element \
                         started sets it",
                    )
                    .default_value(DEFAULT_MAX_CONNECTIONS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-unauthenticated-per-address")
                    .nick("Maximum unauthenticated connections per address")
                    .blurb(
                        "RTMP(S) connections one source address may have open before presenting \
                         a known stream key; more are closed at accept (0: no cap). \
                         Process-wide: the last element started sets it",
                    )
                    .default_value(DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "cfrtmpsrc-stats: bytes (u64, media bytes received), bitrate (u64, \
                         bits/s of the current publisher), frames (u64, video frames), \
                         publisher-address (string), connected-since (RFC 3339 string, empty \
                         without publisher)",
                    )
                    .read_only()
                    .build(),
                glib::ParamSpecUInt::builder("bound-port")
                    .nick("Bound port")
                    .blurb("The TCP port actually listened on (useful with port 0), 0 before start")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = lock(&self.settings);
        let path = |value: &glib::Value| {
            value
                .get::<Option<String>>()
                .expect("type checked upstream")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        };
        match pspec.name() {
            "location" => {
                settings.location = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_else(|| DEFAULT_LOCATION.into());
            }
            "stream-key" => settings.stream_key = value.get().expect("type checked upstream"),
            "tls-certificate" => settings.tls_certificate = path(value),
            "tls-private-key" => settings.tls_private_key = path(value),
            "idle-timeout" => settings.idle_timeout = value.get().expect("type checked upstream"),
            "enforce-codecs" => {
                settings.enforce_codecs = value.get().expect("type checked upstream")
            }
            "read-timeout" => settings.read_timeout = value.get().expect("type checked upstream"),
            "read-interval" => settings.read_interval = value.get().expect("type checked upstream"),
            "handshake-timeout" => {
                settings.handshake_timeout = value.get().expect("type checked upstream")
            }
            "max-connections" => {
                settings.max_connections = value.get().expect("type checked upstream")
            }
            "max-unauthenticated-per-address" => {
                settings.max_unauthenticated_per_address =
                    value.get().expect("type checked upstream")
            }
            other => unimplemented!("property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = lock(&self.settings);
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        match pspec.name() {
            "location" => settings.location.to_value(),
            "stream-key" => settings.stream_key.to_value(),
            "tls-certificate" => path(&settings.tls_certificate).to_value(),
            "tls-private-key" => path(&settings.tls_private_key).to_value(),
            "idle-timeout" => settings.idle_timeout.to_value(),
            "enforce-codecs" => settings.enforce_codecs.to_value(),
            "read-timeout" => settings.read_timeout.to_value(),
            "read-interval" => settings.read_interval.to_value(),
            "handshake-timeout" => settings.handshake_timeout.to_value(),
            "max-connections" => settings.max_connections.to_value(),
            "max-unauthenticated-per-address" => {
                settings.max_unauthenticated_per_address.to_value()
            }
            "stats" => stats_structure(&lock(&self.stats)).to_value(),
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

impl GstObjectImpl for CfRtmpSrc {}

impl ElementImpl for CfRtmpSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "RTMP/RTMPS server source",
                "Source/Network",
                "Listens for an RTMP or RTMPS publisher with a given stream key and outputs its \
                 media as FLV",
                "cfstream developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::builder("video/x-flv").build();
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

impl BaseSrcImpl for CfRtmpSrc {
    /// The stream headers known so far, so that renegotiation keeps them.
    fn caps(&self, filter: Option<&gst::Caps>) -> Option<gst::Caps> {
        let caps = lock(&self.headers).caps();
        Some(match filter {
            Some(filter) => filter.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
            None => caps,
        })
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let url = ListenUrl::parse(&settings.location)
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))?;
        let stream_key = settings
            .stream_key
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                gst::error_msg!(gst::ResourceError::Settings, ("stream-key is required"))
            })?;
        let tls = match (url.tls, settings.tls_certificate, settings.tls_private_key) {
            (false, _, _) => None,
            (true, Some(certificate), Some(private_key)) => Some(TlsFiles {
                certificate,
                private_key,
            }),
            (true, _, _) => {
                return Err(gst::error_msg!(
                    gst::ResourceError::Settings,
                    ("rtmps:// needs tls-certificate and tls-private-key")
                ));
            }
        };
        let listener = rtmp::listener(&ListenerConfig {
            addr: url.addr,
            tls,
        })
        .map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ("Cannot listen on {}: {e}", url.addr)
            )
        })?;
        listener.set_handshake_timeout(Duration::from_secs(settings.handshake_timeout.into()));
        admission().set_limits(Limits {
            max_connections: settings.max_connections as usize,
            max_unauthenticated_per_address: settings.max_unauthenticated_per_address as usize,
        });
        self.wakeup.prepare().map_err(|e| {
            gst::error_msg!(gst::ResourceError::Failed, ("Cannot make an eventfd: {e}"))
        })?;
        let options = StreamOptions {
            enforce_codecs: settings.enforce_codecs,
            read_timeout: Duration::from_secs(settings.read_timeout.into()),
            read_on_consumer_thread: true,
            read_interval: Duration::from_millis(settings.read_interval.into()),
        };
        let registration = listener
            .register(&url.app, &stream_key, options)
            .map_err(|e| gst::error_msg!(gst::ResourceError::Busy, ("{e}")))?;
        let port = listener.local_addr().port();
        self.bound_port.store(port.into(), Ordering::Relaxed);
        gst::info!(
            CAT,
            imp = self,
            "listening on {} for app {}",
            listener.local_addr(),
            url.app
        );
        *lock(&self.state) = State {
            registration: Some(registration),
            ..State::default()
        };
        *lock(&self.stats) = IngestStats::default();
        *lock(&self.headers) = StreamHeaders::default();
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
        // Dropping the registration unregisters the key and cuts a live publisher.
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

impl PushSrcImpl for CfRtmpSrc {
    fn create(
        &self,
        _buffer: Option<&mut gst::BufferRef>,
    ) -> Result<CreateSuccess, gst::FlowError> {
        let mut state = lock(&self.state);
        if !state.header_sent {
            state.header_sent = true;
            let mut buffer = gst::Buffer::from_slice(flv::FILE_HEADER);
            buffer
                .get_mut()
                .expect("new buffer")
                .set_pts(gst::ClockTime::from_mseconds(self.running_time_ms()));
            return Ok(CreateSuccess::NewBuffer(buffer));
        }
        loop {
            if let Some(message) = state.batch.as_mut().and_then(|b| b.messages.pop_front()) {
                return Ok(CreateSuccess::NewBuffer(
                    self.tag_buffer(&mut state, &message),
                ));
            }
            // The batch's bytes leave the queue's budget once all of it is out.
            state.batch = None;
            let wake = if state.feed.is_some() {
                self.read_feed(&mut state)
            } else {
                self.wait(&mut state)?
            };
            match wake {
                Wake::Flushing if self.wakeup.is_flushing() => {
                    return Err(gst::FlowError::Flushing);
                }
                // An interrupt left over from an earlier unlock.
                Wake::Flushing => {}
                Wake::IdleTimeout => {
                    gst::info!(CAT, imp = self, "no publisher came back: end of stream");
                    state.registration = None;
                    return Err(gst::FlowError::Eos);
                }
                Wake::Item(IngestItem::Media(batch)) => state.batch = Some(batch),
                Wake::Item(IngestItem::Feed(feed)) => state.feed = Some(feed),
                Wake::Item(IngestItem::PublisherConnected {
                    remote,
                    app,
                    tls,
                    encoder,
                }) => self.on_connected(&mut state, remote.to_string(), app, tls, encoder),
                Wake::Item(IngestItem::PublisherDisconnected { remote, reason }) => {
                    self.on_disconnected(&mut state, remote.to_string(), reason)
                }
                Wake::Item(IngestItem::PublisherRejected {
                    remote,
                    code,
                    reason,
                }) => self.on_rejected(remote.to_string(), code, reason),
            }
        }
    }
}
