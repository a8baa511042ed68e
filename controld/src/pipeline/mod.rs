//! The pipeline manager: owns GStreamer, the RTMP listeners and one pipeline per *live* input.
//!
//! Idle inputs cost an entry in an in-memory stream key index and nothing else: the shared
//! listener hands unknown keys to `on_publish`, which accepts known, enabled keys and asks for a
//! pipeline (`cfrtmpsrc ! tee ! flvdemux`, each demuxed stream `gopvalidate ! cfhlssink`, no
//! parsers; see `build`), built off the listener's thread. The publisher waits for the element
//! to register (the registry gives it 5 s). Each pipeline runs in its source's streaming thread
//! (no queues), and its bus is consumed by one tokio task (`session::run`) which keeps status and
//! video records and tears it down.

mod build;
mod outputs;
mod recovery;
mod session;

pub use outputs::location as output_location;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use gstcfstream::rtmp::{
    self, KeyDecision, ListenerConfig, ListenerHandle, PublishRequest, TlsFiles,
};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::metrics::Metrics;
use crate::store::Store;
use crate::store::live_inputs::LiveInput;
use crate::webhooks::Webhooks;

/// `recording.timeoutSeconds: 0` means this many seconds: long enough for an encoder's
/// automatic reconnect, short enough that a finished broadcast becomes a ready video quickly.
pub const DEFAULT_RECONNECT_TIMEOUT_SECS: u32 = 30;

/// The RTMP application publishers use (`rtmp://host:port/live/`), as on Cloudflare.
pub const RTMP_APP: &str = "live";

/// How long `shutdown` waits for pipelines to finish their playlists.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Where the RTMP (and optionally RTMPS) listeners bind.
pub struct IngestConfig {
    pub rtmp: SocketAddr,
    pub rtmps: Option<(SocketAddr, TlsPaths)>,
    /// `cfrtmpsrc`'s `read-interval` in milliseconds.
    pub read_interval_ms: u32,
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
}

/// A bound listener and the `location` that makes `cfrtmpsrc` share it.
struct Listener {
    handle: ListenerHandle,
    location: String,
    tls: Option<TlsPaths>,
    read_interval_ms: u32,
}

/// Every configured input by its stream key: all a publish attempt needs, without the database.
#[derive(Default)]
struct KeyIndex {
    by_key: HashMap<String, Arc<LiveInput>>,
    /// Input uid → its current key, to drop the old key when it changes.
    key_of: HashMap<String, String>,
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
}

struct StartRequest {
    input: Arc<LiveInput>,
    tls: bool,
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
    index: RwLock<KeyIndex>,
    sessions: Mutex<HashMap<String, SessionHandle>>,
    session_ended: Notify,
    starts: mpsc::UnboundedSender<StartRequest>,
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
        let rtmp = bind("rtmp", ingest.rtmp, None, interval)?;
        let rtmps = match ingest.rtmps {
            Some((addr, tls)) => Some(bind("rtmps", addr, Some(tls), interval)?),
            None => None,
        };
        let metrics = Arc::new(Metrics::default());
        let webhooks = Webhooks::start(store.clone(), metrics.clone(), webhook_retry_base);
        recovery::close_unfinished(&store, &webhooks, &media_dir).await?;
        let inputs = store.read(crate::store::live_inputs::all)?;
        let (starts, start_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            store,
            metrics,
            webhooks,
            media_dir,
            rtmp,
            rtmps,
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
        for listener in [Some(&manager.inner.rtmp), manager.inner.rtmps.as_ref()]
            .into_iter()
            .flatten()
        {
            let weak = Arc::downgrade(&manager.inner);
            listener
                .handle
                .set_unknown_key_handler(Arc::new(move |req| on_publish(&weak, req)));
        }
        tracing::info!(inputs = inputs.len(), "pipeline manager ready");
        Ok(manager)
    }

    pub fn rtmp_addr(&self) -> SocketAddr {
        self.inner.rtmp.handle.local_addr()
    }

    pub fn rtmps_addr(&self) -> Option<SocketAddr> {
        self.inner.rtmps.as_ref().map(|l| l.handle.local_addr())
    }

    /// Takes a created or updated input into account. New settings apply to the next broadcast;
    /// a disabled input or a rotated key cuts the live publisher now.
    pub fn configure(&self, input: &LiveInput) {
        let old_key = self.index_input(input);
        if !input.enabled {
            self.stop(&input.uid, StopReason::Disabled);
        } else if old_key.is_some_and(|k| k != input.stream_key) {
            self.stop(&input.uid, StopReason::KeysRotated);
        }
    }

    /// Forgets a deleted input and cuts its publisher.
    pub fn remove(&self, uid: &str) {
        {
            let mut index = write(&self.inner.index);
            if let Some(key) = index.key_of.remove(uid) {
                index.by_key.remove(&key);
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

    /// Publishers connected right now, over all inputs.
    pub fn publishers_connected(&self) -> usize {
        lock(&self.inner.sessions)
            .values()
            .filter(|s| s.publishing)
            .count()
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

    /// Stops every pipeline (publishers are cut, playlists finished) and waits for them.
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

    /// Updates the key index; returns the input's previous key.
    fn index_input(&self, input: &LiveInput) -> Option<String> {
        let mut index = write(&self.inner.index);
        let old_key = index
            .key_of
            .insert(input.uid.clone(), input.stream_key.clone());
        if let Some(old) = &old_key {
            index.by_key.remove(old);
        }
        index
            .by_key
            .insert(input.stream_key.clone(), Arc::new(input.clone()));
        old_key
    }

    fn stop(&self, uid: &str, reason: StopReason) {
        if let Some(stop) = lock(&self.inner.sessions)
            .get_mut(uid)
            .and_then(|s| s.stop.take())
        {
            tracing::info!(input = uid, ?reason, "stopping live pipeline");
            let _ = stop.send(reason);
        }
    }
}

pub fn recording_dir(media_dir: &Path, input_uid: &str, video_uid: &str) -> PathBuf {
    media_dir.join(input_uid).join(video_uid)
}

fn bind(
    scheme: &str,
    addr: SocketAddr,
    tls: Option<TlsPaths>,
    read_interval_ms: u32,
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
        read_interval_ms,
    })
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
    // Looking the key up under the sessions lock closes the race with `configure`: it updates
    // the index before it looks for a session to stop.
    let mut sessions = lock(&inner.sessions);
    let Some(input) = read(&inner.index).by_key.get(&req.stream_key).cloned() else {
        tracing::info!(remote = %req.remote, "publish refused: unknown stream key");
        return KeyDecision::Reject("unknown stream key".into());
    };
    if !input.enabled {
        tracing::info!(input = input.uid, remote = %req.remote, "publish refused: input disabled");
        return KeyDecision::Reject("live input is disabled".into());
    }
    if sessions.contains_key(&input.uid) {
        return KeyDecision::Reject(
            "the previous broadcast of this live input is still ending; retry in a few seconds"
                .into(),
        );
    }
    let (stop_tx, stop) = oneshot::channel();
    let outputs_changed = Arc::new(Notify::new());
    sessions.insert(
        input.uid.clone(),
        SessionHandle {
            stop: Some(stop_tx),
            recording: None,
            publishing: false,
            outputs_changed: outputs_changed.clone(),
            output_counts: (0, 0),
        },
    );
    let uid = input.uid.clone();
    let request = StartRequest {
        input,
        tls: req.tls,
        stop,
        outputs_changed,
    };
    if inner.starts.send(request).is_err() {
        sessions.remove(&uid);
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
