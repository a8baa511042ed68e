//! The pipeline manager: owns GStreamer, the RTMP and SRT listeners and one pipeline per *live*
//! input.
//!
//! Idle inputs cost an entry in an in-memory index and nothing else: the shared RTMP listener
//! hands unknown keys to `on_publish`, the shared SRT listener unknown stream ids to
//! [`SrtCallers`]; both accept known, enabled inputs and ask for a pipeline (`cfrtmpsrc ! tee !
//! flvdemux` or `cfsrtsrc ! tee ! tsdemux`, each demuxed stream `gopvalidate ! cfhlssink`; see
//! `build`), built off the listener's thread. The publisher waits for the element to register
//! (the registries give it 5 s). Each pipeline runs in its source's streaming thread
//! (no queues), and its bus is consumed by one tokio task (`session::run`) which keeps status and
//! video records and tears it down.

mod build;
mod continuation;
pub(crate) mod leases;
mod outputs;
mod playback;
pub mod recorded_media;
mod recovery;
mod session;

pub use outputs::location as output_location;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use gstcfstream::net::admission::{Limits as AdmissionLimits, admission};
use gstcfstream::rtmp::{
    self, KeyDecision, ListenerConfig, ListenerHandle, PublishRequest, TlsFiles,
};
use gstcfstream::srt::{self, CallerRequest, Lookup, UnknownStreamHandler};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::media_bucket::MediaBucket;
use crate::metrics::Metrics;
use crate::store::live_inputs::LiveInput;
use crate::store::{Conn, Store, live_inputs};
use crate::webhooks::Webhooks;

/// `recording.timeoutSeconds: 0` means this many seconds: long enough for an encoder's
/// automatic reconnect, short enough that a finished broadcast becomes a ready video quickly.
pub const DEFAULT_RECONNECT_TIMEOUT_SECS: u32 = 30;

/// The RTMP application publishers use (`rtmp://host:port/live/`), as on Cloudflare.
pub const RTMP_APP: &str = "live";

/// How long `shutdown` waits for pipelines to finish their recordings.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Where the RTMP (and optionally RTMPS and SRT) listeners bind, and how pipelines take media
/// in and write it.
pub struct IngestConfig {
    pub rtmp: SocketAddr,
    pub rtmps: Option<(SocketAddr, TlsPaths)>,
    pub srt: Option<SocketAddr>,
    /// `read-interval` of `cfrtmpsrc` and `cfsrtsrc`, in milliseconds.
    pub read_interval_ms: u32,
    /// Duration of LL-HLS parts (`part-target` of cfhlssink), in milliseconds.
    pub part_target_ms: u32,
    /// Caps on RTMP(S) connections (`max-connections` and `max-unauthenticated-per-address`
    /// of `cfrtmpsrc`).
    pub limits: AdmissionLimits,
    /// This node's name in input leases and logs (`--node-id`): unique among the nodes that
    /// share a database, and the same across restarts.
    pub node_id: String,
    /// Where finished and growing recordings are copied (`--media-url`), if anywhere.
    pub bucket: Option<MediaBucket>,
}

/// The protocol a publisher came in with: the status' `ingestProtocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingest {
    Rtmp,
    Rtmps,
    Srt,
}

impl Ingest {
    pub fn as_str(self) -> &'static str {
        match self {
            Ingest::Rtmp => "rtmp",
            Ingest::Rtmps => "rtmps",
            Ingest::Srt => "srt",
        }
    }
}

/// Certificate chain and private key (PEM files) of the RTMPS listener.
#[derive(Debug, Clone)]
pub struct TlsPaths {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

/// Why a live pipeline is stopped by the daemon rather than by its publisher.
#[derive(Debug, Clone, Copy)]
pub enum StopReason {
    Disabled,
    Deleted,
    KeysRotated,
    Shutdown,
    /// Another node holds the input's lease (this one was cut off from the database).
    LeaseLost,
}

/// A bound listener and the `location` that makes `cfrtmpsrc` share it.
struct Listener {
    handle: ListenerHandle,
    location: String,
    tls: Option<TlsPaths>,
}

/// Every configured input by uid (its SRT stream id) and by stream key: all a publish attempt
/// needs, without the database.
#[derive(Default)]
struct KeyIndex {
    by_uid: HashMap<String, Arc<LiveInput>>,
    /// Stream key → input uid.
    uid_of_key: HashMap<String, String>,
    /// Playback key → input uid.
    uid_of_playback_key: HashMap<String, String>,
}

impl KeyIndex {
    fn by_key(&self, key: &str) -> Option<&Arc<LiveInput>> {
        self.by_uid.get(self.uid_of_key.get(key)?)
    }

    fn by_playback_key(&self, key: &str) -> Option<&Arc<LiveInput>> {
        self.by_uid.get(self.uid_of_playback_key.get(key)?)
    }

    /// Indexes `input`; returns it as it was indexed before.
    fn insert(&mut self, input: &LiveInput) -> Option<Arc<LiveInput>> {
        let old = self
            .by_uid
            .insert(input.uid.clone(), Arc::new(input.clone()));
        if let Some(old) = &old {
            self.forget_keys(old);
        }
        self.uid_of_key
            .insert(input.stream_key.clone(), input.uid.clone());
        self.uid_of_playback_key
            .insert(input.playback_key.clone(), input.uid.clone());
        old
    }

    /// Drops the keys of `input` (as indexed before).
    fn forget_keys(&mut self, input: &LiveInput) {
        self.uid_of_key.remove(&input.stream_key);
        self.uid_of_playback_key.remove(&input.playback_key);
    }
}

/// The bound SRT listener, and the `location` that makes `cfsrtsrc` share it.
struct SrtListener {
    handle: srt::ListenerHandle,
    location: String,
}

/// What the rest of the daemon may know about a live pipeline.
struct SessionHandle {
    stop: Option<oneshot::Sender<StopReason>>,
    /// Uid of the video being recorded, if any.
    recording: Option<String>,
    /// A publisher is connected right now.
    publishing: bool,
    /// Wakes the session to re-read the input's outputs.
    outputs_changed: Arc<Notify>,
    /// Output branches `(relaying, waiting to retry)`.
    output_counts: (usize, usize),
    /// The players' fan-out, fed by the pipeline once it runs.
    hub: gstcfstream::egress::Hub,
}

struct StartRequest {
    input: Arc<LiveInput>,
    protocol: Ingest,
    hub: gstcfstream::egress::Hub,
    stop: oneshot::Receiver<StopReason>,
    outputs_changed: Arc<Notify>,
}

struct Inner {
    store: Store,
    metrics: Arc<Metrics>,
    webhooks: Webhooks,
    media_dir: PathBuf,
    rtmp: Listener,
    rtmps: Option<Listener>,
    srt: Option<SrtListener>,
    read_interval_ms: u32,
    /// For cfhlssink's `part-target`, in milliseconds.
    part_target_ms: u32,
    limits: AdmissionLimits,
    node_id: String,
    bucket: Option<MediaBucket>,
    /// Where the other nodes reach this one's HTTP (`set_node_url`, once it is bound).
    node_url: std::sync::OnceLock<String>,
    index: RwLock<KeyIndex>,
    sessions: Mutex<HashMap<String, SessionHandle>>,
    session_ended: Notify,
    starts: mpsc::UnboundedSender<StartRequest>,
}

impl Inner {
    /// What closing a recording needs: to mark it ready, tell webhooks, copy it.
    fn closing(&self) -> recovery::Closing {
        recovery::Closing {
            store: self.store.clone(),
            webhooks: self.webhooks.clone(),
            bucket: self.bucket.clone(),
        }
    }
}

#[derive(Clone)]
pub struct PipelineManager {
    inner: Arc<Inner>,
}

impl PipelineManager {
    /// Registers the plugin, binds the listeners, starts webhook deliveries, loads the key
    /// index and closes recordings a crash left open. Must run inside the tokio runtime.
    pub async fn start(
        store: Store,
        media_dir: PathBuf,
        ingest: IngestConfig,
        webhook_retry_base: Duration,
    ) -> Result<PipelineManager, Box<dyn std::error::Error + Send + Sync>> {
        gst::init()?;
        gstcfstream::plugin_register_static()?;
        let interval = ingest.read_interval_ms;
        // Before the first accept: the elements, which set them too, start after it.
        admission().set_limits(ingest.limits);
        let rtmp = bind("rtmp", ingest.rtmp, None)?;
        let rtmps = match ingest.rtmps {
            Some((addr, tls)) => Some(bind("rtmps", addr, Some(tls))?),
            None => None,
        };
        let srt = match ingest.srt {
            Some(addr) => Some(bind_srt(addr)?),
            None => None,
        };
        let metrics = Arc::new(Metrics::default());
        let webhooks = Webhooks::start(
            store.clone(),
            metrics.clone(),
            webhook_retry_base,
            &ingest.node_id,
        );
        let closing = recovery::Closing {
            store: store.clone(),
            webhooks: webhooks.clone(),
            bucket: ingest.bucket.clone(),
        };
        recovery::close_unfinished(&closing, &media_dir, &ingest.node_id).await?;
        let inputs = store.read(crate::store::live_inputs::all)?;
        let (starts, start_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            store,
            metrics,
            webhooks,
            media_dir,
            rtmp,
            rtmps,
            srt,
            read_interval_ms: interval,
            part_target_ms: ingest.part_target_ms,
            limits: ingest.limits,
            node_id: ingest.node_id,
            bucket: ingest.bucket,
            node_url: std::sync::OnceLock::new(),
            index: RwLock::new(KeyIndex::default()),
            sessions: Mutex::new(HashMap::new()),
            session_ended: Notify::new(),
            starts,
        });
        let manager = PipelineManager { inner };
        for input in &inputs {
            manager.index_input(input);
        }
        tokio::spawn(run_starts(Arc::downgrade(&manager.inner), start_rx));
        tokio::spawn(leases::renew(Arc::downgrade(&manager.inner)));
        for listener in [Some(&manager.inner.rtmp), manager.inner.rtmps.as_ref()]
            .into_iter()
            .flatten()
        {
            let weak = Arc::downgrade(&manager.inner);
            listener
                .handle
                .set_unknown_key_handler(Arc::new(move |req| on_publish(&weak, req)));
            let weak = Arc::downgrade(&manager.inner);
            listener
                .handle
                .set_play_handler(Arc::new(move |req| playback::on_play(&weak, req)));
        }
        if let Some(srt) = &manager.inner.srt {
            let callers = SrtCallers(Arc::downgrade(&manager.inner));
            srt.handle.set_unknown_stream_handler(Arc::new(callers));
        }
        tracing::info!(
            inputs = inputs.len(),
            node = manager.inner.node_id,
            part_target_ms = manager.inner.part_target_ms,
            "pipeline manager ready"
        );
        Ok(manager)
    }

    /// Where the other nodes sharing the database reach this one's HTTP (`--node-url`).
    pub fn set_node_url(&self, url: &str) {
        let _ = self.inner.node_url.set(url.to_owned());
    }

    /// This node's `--node-id`.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    pub fn rtmp_addr(&self) -> SocketAddr {
        self.inner.rtmp.handle.local_addr()
    }

    pub fn rtmps_addr(&self) -> Option<SocketAddr> {
        self.inner.rtmps.as_ref().map(|l| l.handle.local_addr())
    }

    pub fn srt_addr(&self) -> Option<SocketAddr> {
        self.inner.srt.as_ref().map(|l| l.handle.local_addr())
    }

    /// Takes a created or updated input into account. New settings apply to the next broadcast;
    /// a disabled input or rotated keys (stream key, SRT passphrase) cut the live publisher now.
    pub fn configure(&self, input: &LiveInput) {
        let old = self.index_input(input);
        let rotated = old.is_some_and(|old| {
            old.stream_key != input.stream_key
                || old.srt_passphrase != input.srt_passphrase
                || old.playback_key != input.playback_key
        });
        if !input.enabled {
            self.stop(&input.uid, StopReason::Disabled);
        } else if rotated {
            self.stop(&input.uid, StopReason::KeysRotated);
        }
    }

    /// Forgets a deleted input and cuts its publisher.
    pub fn remove(&self, uid: &str) {
        {
            let mut index = write(&self.inner.index);
            if let Some(old) = index.by_uid.remove(uid) {
                index.forget_keys(&old);
            }
        }
        self.stop(uid, StopReason::Deleted);
    }

    /// Video uid of the recording the input is making now.
    pub fn current_recording(&self, input_uid: &str) -> Option<String> {
        lock(&self.inner.sessions)
            .get(input_uid)
            .and_then(|s| s.recording.clone())
    }

    /// Whether a publisher is connected to the input right now.
    pub fn is_publishing(&self, input_uid: &str) -> bool {
        lock(&self.inner.sessions)
            .get(input_uid)
            .is_some_and(|s| s.publishing)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn webhooks(&self) -> &Webhooks {
        &self.inner.webhooks
    }

    /// The bucket recordings are copied to (`--media-url`), if any.
    pub fn bucket(&self) -> Option<&MediaBucket> {
        self.inner.bucket.as_ref()
    }

    /// Publishers connected right now, over all inputs.
    pub fn publishers_connected(&self) -> usize {
        lock(&self.inner.sessions)
            .values()
            .filter(|s| s.publishing)
            .count()
    }

    /// Players of live inputs right now (those dropped since the last buffer may still count).
    pub fn players(&self) -> usize {
        lock(&self.inner.sessions)
            .values()
            .map(|s| s.hub.viewers())
            .sum()
    }

    /// An output of the input was added, changed or deleted: a live pipeline applies it now.
    pub fn outputs_changed(&self, input_uid: &str) {
        if let Some(s) = lock(&self.inner.sessions).get(input_uid) {
            s.outputs_changed.notify_one();
        }
    }

    /// Output branches of live pipelines by state: `relaying`, `retrying`.
    pub fn output_states(&self) -> [(&'static str, u64); 2] {
        let (relaying, retrying) = lock(&self.inner.sessions)
            .values()
            .fold((0, 0), |(a, r), s| {
                (a + s.output_counts.0, r + s.output_counts.1)
            });
        [("relaying", relaying as u64), ("retrying", retrying as u64)]
    }

    /// Directory of a recording: `<data-dir>/media/<input uid>/<video uid>`.
    pub fn recording_dir(&self, input_uid: &str, video_uid: &str) -> PathBuf {
        recording_dir(&self.inner.media_dir, input_uid, video_uid)
    }

    /// Stops every pipeline (publishers are cut, recordings finished) and waits for them.
    pub async fn shutdown(&self) {
        let uids: Vec<String> = lock(&self.inner.sessions).keys().cloned().collect();
        for uid in &uids {
            self.stop(uid, StopReason::Shutdown);
        }
        let all_ended = async {
            loop {
                let ended = self.inner.session_ended.notified();
                if lock(&self.inner.sessions).is_empty() {
                    return;
                }
                ended.await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, all_ended)
            .await
            .is_err()
        {
            tracing::warn!("some pipelines did not stop within {SHUTDOWN_GRACE:?}");
        }
    }

    /// Updates the index; returns the input as it was indexed before.
    fn index_input(&self, input: &LiveInput) -> Option<Arc<LiveInput>> {
        write(&self.inner.index).insert(input)
    }

    fn stop(&self, uid: &str, reason: StopReason) {
        stop_session(&self.inner, uid, reason);
    }
}

fn stop_session(inner: &Inner, uid: &str, reason: StopReason) {
    if let Some(stop) = lock(&inner.sessions)
        .get_mut(uid)
        .and_then(|s| s.stop.take())
    {
        tracing::info!(input = uid, ?reason, "stopping live pipeline");
        let _ = stop.send(reason);
    }
}

/// The file of a recording directory cfhlssink appends the recording's index to
/// (`cfstream_proto::index::log`): what playback serves and what says which media files count.
pub use gstcfstream::hls::INDEX_LOG;

pub fn recording_dir(media_dir: &Path, input_uid: &str, video_uid: &str) -> PathBuf {
    media_dir.join(input_uid).join(video_uid)
}

fn bind(
    scheme: &str,
    addr: SocketAddr,
    tls: Option<TlsPaths>,
) -> Result<Listener, Box<dyn std::error::Error + Send + Sync>> {
    let config = ListenerConfig {
        addr,
        tls: tls.as_ref().map(|t| TlsFiles {
            certificate: t.certificate.clone(),
            private_key: t.private_key.clone(),
        }),
    };
    let handle = rtmp::listener(&config)
        .map_err(|e| format!("binding the {scheme} listener on {addr}: {e}"))?;
    // The bound address (not a requested port 0) is what makes the element find this listener.
    let location = format!("{scheme}://{}/{RTMP_APP}", handle.local_addr());
    Ok(Listener {
        handle,
        location,
        tls,
    })
}

fn bind_srt(addr: SocketAddr) -> Result<SrtListener, Box<dyn std::error::Error + Send + Sync>> {
    let handle = srt::listener(&srt::ListenerConfig { addr })
        .map_err(|e| format!("binding the SRT listener on {addr}: {e}"))?;
    let location = format!("srt://{}", handle.local_addr());
    Ok(SrtListener { handle, location })
}

/// The SRT listener's unknown-stream handler: the stream id is the input's uid.
struct SrtCallers(Weak<Inner>);

impl UnknownStreamHandler for SrtCallers {
    /// During the handshake: an enabled input's passphrase (nothing else is done, as the
    /// caller's passphrase is not checked yet).
    fn lookup(&self, stream_id: &str) -> Lookup {
        let Some(inner) = self.0.upgrade() else {
            return Lookup::Unknown;
        };
        match read(&inner.index).by_uid.get(stream_id) {
            Some(input) if input.enabled => Lookup::Known {
                passphrase: Some(input.srt_passphrase.clone()),
            },
            _ => Lookup::Unknown,
        }
    }

    fn on_caller(&self, request: &CallerRequest) -> KeyDecision {
        let Some(inner) = self.0.upgrade() else {
            return KeyDecision::Reject("server is shutting down".into());
        };
        let remote = request.remote;
        let id = request.stream_id.as_str();
        let found = |index: &KeyIndex| index.by_uid.get(id).cloned();
        let stored = |c: &Conn| live_inputs::get_any(c, id);
        start_session(&inner, remote, Ingest::Srt, found, stored)
    }

    fn lookup_play(&self, stream_id: &str) -> Lookup {
        match self.0.upgrade() {
            Some(inner) => playback::srt_passphrase(&inner, stream_id),
            None => Lookup::Unknown,
        }
    }

    fn on_viewer(&self, request: &CallerRequest) -> Result<gstcfstream::egress::Viewer, String> {
        let inner = self.0.upgrade().ok_or("server is shutting down")?;
        playback::srt_viewer(&inner, request)
    }
}

/// The registry's unknown-key handler: runs on a listener thread, so it only looks things up
/// and queues the pipeline build.
fn on_publish(inner: &Weak<Inner>, req: &PublishRequest) -> KeyDecision {
    let Some(inner) = inner.upgrade() else {
        return KeyDecision::Reject("server is shutting down".into());
    };
    if req.app != RTMP_APP {
        return KeyDecision::Reject(format!(
            "unknown application {:?}: publish to rtmp://host:port/{RTMP_APP}/",
            req.app
        ));
    }
    let protocol = if req.tls { Ingest::Rtmps } else { Ingest::Rtmp };
    let key = req.stream_key.as_str();
    let found = |index: &KeyIndex| index.by_key(key).cloned();
    let stored = |c: &Conn| live_inputs::by_stream_key(c, key);
    start_session(&inner, req.remote, protocol, found, stored)
}

/// Accepts a publisher of the input `find` finds in the index (or `stored` in the store: an
/// input another node made) if it is enabled, not still ending its previous broadcast and this
/// node can take its lease, and queues its pipeline's start.
fn start_session(
    inner: &Inner,
    remote: SocketAddr,
    protocol: Ingest,
    find: impl FnOnce(&KeyIndex) -> Option<Arc<LiveInput>>,
    stored: impl FnOnce(&Conn) -> crate::store::sql::Result<Option<LiveInput>> + Send,
) -> KeyDecision {
    // Looking the input up under the sessions lock closes the race with `configure`: it updates
    // the index before it looks for a session to stop.
    let mut sessions = lock(&inner.sessions);
    let indexed = find(&read(&inner.index));
    let Some(input) = indexed.or_else(|| {
        let input = inner.store.read(stored).ok().flatten()?;
        write(&inner.index).insert(&input);
        read(&inner.index).by_uid.get(&input.uid).cloned()
    }) else {
        tracing::info!(%remote, "publish refused: unknown stream key or id");
        return KeyDecision::Reject("unknown stream key".into());
    };
    if !input.enabled {
        tracing::info!(input = input.uid, %remote, "publish refused: input disabled");
        return KeyDecision::Reject("live input is disabled".into());
    }
    if sessions.contains_key(&input.uid) {
        return KeyDecision::Reject(
            "the previous broadcast of this live input is still ending; retry in a few seconds"
                .into(),
        );
    }
    if let Err(refusal) = leases::take(inner, &input.uid) {
        tracing::info!(input = input.uid, %remote, "publish refused: {refusal}");
        return KeyDecision::Reject(refusal);
    }
    let (stop_tx, stop) = oneshot::channel();
    let outputs_changed = Arc::new(Notify::new());
    let hub = playback::hub_for(protocol);
    sessions.insert(
        input.uid.clone(),
        SessionHandle {
            stop: Some(stop_tx),
            recording: None,
            publishing: false,
            outputs_changed: outputs_changed.clone(),
            output_counts: (0, 0),
            hub: hub.clone(),
        },
    );
    let uid = input.uid.clone();
    let request = StartRequest {
        input,
        protocol,
        hub,
        stop,
        outputs_changed,
    };
    if inner.starts.send(request).is_err() {
        sessions.remove(&uid);
        leases::give_up(inner, &uid);
        return KeyDecision::Reject("server is shutting down".into());
    }
    KeyDecision::Accept
}

async fn run_starts(inner: Weak<Inner>, mut requests: mpsc::UnboundedReceiver<StartRequest>) {
    while let Some(request) = requests.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        tokio::spawn(session::run(inner, request));
    }
}

// Lock helpers: a panic elsewhere must not wedge ingest, and the guarded maps stay consistent
// (every update is a single insert/remove).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}
