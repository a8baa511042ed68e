//! Shared RTMP(S) listeners: one per listen address in a process, dispatching publishers to
//! whoever registered their `(app, stream key)` — `cfrtmpsrc` elements, or the daemon through
//! the unknown-key handler.
//!
//! Everything runs on [`crate::runtime::RUNTIME`]: a listener is one accept task, a connection
//! one task; nothing waits on a thread. A connection's media reaches its consumer through a queue
//! bounded in items and in bytes; when it is full the connection task stops reading the socket,
//! so a slow consumer slows the publisher down through TCP instead of growing memory.
//!
//! A live publisher's messages travel in batches: once its socket is drained, the connection
//! reads again only at the next tick of a process-wide grid ([`StreamOptions::read_interval`]). An encoder sends
//! 70–80 messages a second; handed over one by one, each costs a wake-up of the runtime and one
//! of the consumer's thread, which is most of what a real-time stream costs. Batched, a stream
//! costs one wake-up of each per tick, and every connection due on a tick is served in the same
//! turn of the runtime. A consumer with a thread of its own (`cfrtmpsrc`) can take a plain-TCP
//! publisher's connection over and read it there ([`PublisherFeed`]), which saves the runtime's
//! wake-ups and the hand-over between threads as well.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::AbortHandle;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

pub use super::feed::{FeedEvent, PublisherFeed};
use crate::runtime::RUNTIME;
use cfstream_proto::flv;
use cfstream_proto::rtmp::session::{MediaMessage, ServerSession, SessionEvent};

/// How long a publisher accepted by the unknown-key handler waits for its key to be registered.
const REGISTRATION_WAIT: Duration = Duration::from_secs(5);
/// Handshake timeout until an element sets one.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes asked of the socket per read: small until a publish is accepted, so that many idle or
/// hostile connections hold little memory.
const SETUP_READ_SIZE: usize = 4 * 1024;
pub(super) const PUBLISH_READ_SIZE: usize = 64 * 1024;
/// The batching grid's default interval (see the module documentation): at most this much is
/// added to the time a message takes to reach its consumer. Measured with 60 s 3 Mbps streams:
/// 40 ms costs ~25 % less CPU than 20 ms (N = 50) and ~30 % less at N = 1, and stays within the
/// 50 ms a closing keyframe may take to reach the playlist.
pub const DEFAULT_READ_INTERVAL: Duration = Duration::from_millis(40);
/// A batch is handed over early once it holds this many bytes.
const BATCH_BYTES: usize = 1024 * 1024;
/// A live publisher's plain TCP socket wakes the runtime only once this much is queued (a fast
/// publisher); otherwise it is read on the batching grid.
pub(super) const PUBLISH_LOW_WATER: usize = 256 * 1024;
/// Queue between a publisher's connection and its consumer: batches of media messages…
const QUEUE_ITEMS: usize = 1024;
/// …and their bytes (at least one maximal message, see `session::PUBLISH_LIMITS`).
const QUEUE_BYTES: usize = 16 * 1024 * 1024;
/// After refusing a publisher, how long its further data is read and discarded so that it gets
/// to read the error status (closing at once would reset the connection and lose it).
pub(super) const REFUSAL_LINGER: Duration = Duration::from_secs(2);
/// Pause after a failed accept (e.g. out of file descriptors) instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// A live publisher that sent no media for this long is presumed gone: a network cut leaves its
/// TCP connection open until `read-timeout` notices, and an encoder reconnecting meanwhile takes
/// the key over instead of being refused. Encoders send several messages a second.
const TAKEOVER_SILENCE: Duration = Duration::from_secs(2);
/// How long a taking-over publisher waits for the silent one's connection to end.
const TAKEOVER_WAIT: Duration = Duration::from_secs(2);

/// Error code of a publisher refused because its key is live already.
pub const ERR_STREAM_KEY_IN_USE: &str = "ERR_STREAM_KEY_IN_USE";

pub struct ListenerConfig {
    pub addr: SocketAddr,
    pub tls: Option<TlsFiles>,
}

pub struct TlsFiles {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

#[derive(Clone, Debug)]
pub struct PublishRequest {
    pub remote: SocketAddr,
    pub app: String,
    pub stream_key: String,
    pub tls: bool,
}

pub enum KeyDecision {
    Accept,
    Reject(String),
}

type UnknownKeyHandler = Arc<dyn Fn(&PublishRequest) -> KeyDecision + Send + Sync>;

/// What a registered consumer wants from its publishers.
#[derive(Clone, Copy, Debug)]
pub struct StreamOptions {
    /// Refuse video other than AVC and audio other than AAC.
    pub enforce_codecs: bool,
    /// A publisher silent this long is considered cut off.
    pub read_timeout: Duration,
    /// Hand a plain-TCP publisher's connection over as an [`IngestItem::Feed`], to be read on
    /// the consumer's thread (see [`PublisherFeed`]).
    pub read_on_consumer_thread: bool,
    /// Once a publisher's socket is drained, it is read again at the next multiple of this
    /// (see the module documentation).
    pub read_interval: Duration,
}

/// What a registered consumer receives, in order.
#[derive(Debug)]
pub enum IngestItem {
    PublisherConnected {
        remote: SocketAddr,
        app: String,
        tls: bool,
        /// The client's connect `flashVer` (e.g. `FMLE/3.0 (compatible; Lavf61.1.100)`).
        encoder: String,
    },
    Media(MediaItem),
    /// The publisher's connection itself, after `PublisherConnected`, for a consumer that
    /// asked to read it on its own thread (plain TCP only): from here on the feed reports the
    /// media and the end, and no `PublisherDisconnected` follows.
    Feed(Box<PublisherFeed>),
    /// `reason`: `closed`, `read-timeout`, `rejected`, `protocol-error: …`, `stopped`.
    PublisherDisconnected {
        remote: SocketAddr,
        reason: String,
    },
    PublisherRejected {
        remote: SocketAddr,
        code: &'static str,
        reason: String,
    },
}

/// Media messages in the order received; their bytes count against the queue until the batch
/// is dropped.
#[derive(Debug)]
pub struct MediaItem {
    pub messages: VecDeque<MediaMessage>,
    /// None for a batch read on the consumer's thread: it never waits in the queue.
    _budget: Option<OwnedSemaphorePermit>,
}

impl MediaItem {
    pub(super) fn unqueued(messages: VecDeque<MediaMessage>) -> MediaItem {
        MediaItem {
            messages,
            _budget: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("stream key {stream_key:?} of app {app:?} is registered already on {addr}")]
pub struct AlreadyRegistered {
    pub addr: SocketAddr,
    pub app: String,
    pub stream_key: String,
}

type StreamName = (String, String);

pub(super) struct KeyEntry {
    id: u64,
    items: mpsc::Sender<IngestItem>,
    budget: Arc<Semaphore>,
    pub(super) options: StreamOptions,
    live: AtomicBool,
    /// When the live publisher last sent media (or was accepted), on the [`elapsed_ms`] clock.
    pub(super) last_media_ms: AtomicU64,
    /// Bumped by a publisher taking the key over; the live one ends when it changes.
    pub(super) takeover_generation: AtomicU64,
    takeover: Notify,
    /// Signalled when `live` turns false.
    released: Notify,
}

/// Milliseconds on a process-wide monotonic clock.
pub(super) fn elapsed_ms() -> u64 {
    static ORIGIN: LazyLock<std::time::Instant> = LazyLock::new(std::time::Instant::now);
    ORIGIN.elapsed().as_millis() as u64
}

struct Shared {
    local_addr: SocketAddr,
    tls: bool,
    keys: Mutex<HashMap<StreamName, Arc<KeyEntry>>>,
    registered: Notify,
    unknown_key_handler: Mutex<Option<UnknownKeyHandler>>,
    handshake_timeout_ms: AtomicU64,
}

struct Listener {
    shared: Arc<Shared>,
    accept_task: AbortHandle,
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Connections already accepted finish on their own.
        self.accept_task.abort();
    }
}

/// A shared listener; it stops accepting when the last handle is dropped.
#[derive(Clone)]
pub struct ListenerHandle {
    listener: Arc<Listener>,
}

/// Listeners by requested address (when its port is not 0) and by bound address.
static LISTENERS: LazyLock<Mutex<HashMap<SocketAddr, Weak<Listener>>>> =
    LazyLock::new(Default::default);
static NEXT_REGISTRATION: AtomicU64 = AtomicU64::new(1);

/// Binds (or returns the already bound) listener for this address.
pub fn listener(config: &ListenerConfig) -> io::Result<ListenerHandle> {
    let mut listeners = LISTENERS.lock().unwrap_or_else(|e| e.into_inner());
    listeners.retain(|_, listener| listener.strong_count() > 0);
    if config.addr.port() != 0
        && let Some(listener) = listeners.get(&config.addr).and_then(Weak::upgrade)
    {
        if listener.shared.tls != config.tls.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "{} is already listened on {} TLS",
                    config.addr,
                    if listener.shared.tls {
                        "with"
                    } else {
                        "without"
                    }
                ),
            ));
        }
        return Ok(ListenerHandle { listener });
    }
    let acceptor = config.tls.as_ref().map(tls_acceptor).transpose()?;
    let socket = std::net::TcpListener::bind(config.addr)?;
    socket.set_nonblocking(true)?;
    let local_addr = socket.local_addr()?;
    let socket = {
        let _runtime = RUNTIME.enter();
        TcpListener::from_std(socket)?
    };
    let shared = Arc::new(Shared {
        local_addr,
        tls: acceptor.is_some(),
        keys: Mutex::default(),
        registered: Notify::new(),
        unknown_key_handler: Mutex::default(),
        handshake_timeout_ms: AtomicU64::new(DEFAULT_HANDSHAKE_TIMEOUT.as_millis() as u64),
    });
    let accept_task = RUNTIME
        .spawn(accept_loop(socket, shared.clone(), acceptor))
        .abort_handle();
    let listener = Arc::new(Listener {
        shared,
        accept_task,
    });
    listeners.insert(local_addr, Arc::downgrade(&listener));
    if config.addr.port() != 0 {
        listeners.insert(config.addr, Arc::downgrade(&listener));
    }
    Ok(ListenerHandle { listener })
}

fn tls_acceptor(files: &TlsFiles) -> io::Result<TlsAcceptor> {
    let open = |path: &Path| {
        File::open(path)
            .map(BufReader::new)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    };
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let certificates = rustls_pemfile::certs(&mut open(&files.certificate)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{}: {e}", files.certificate.display())))?;
    if certificates.is_empty() {
        return Err(invalid(format!(
            "{}: no PEM certificate",
            files.certificate.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut open(&files.private_key)?)
        .map_err(|e| invalid(format!("{}: {e}", files.private_key.display())))?
        .ok_or_else(|| {
            invalid(format!(
                "{}: no PEM private key",
                files.private_key.display()
            ))
        })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certificates, key)
    .map_err(|e| invalid(format!("{}: {e}", files.certificate.display())))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl ListenerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.shared.local_addr
    }

    pub fn is_tls(&self) -> bool {
        self.listener.shared.tls
    }

    /// Called (on a runtime thread; must not block long) for a publish whose (app, key) no
    /// element has registered. `Accept` means "an element for this key will register within
    /// 5 s": the publisher waits for it, then is handed over. `Reject` answers
    /// NetStream.Publish.BadName with the text.
    pub fn set_unknown_key_handler(
        &self,
        f: Arc<dyn Fn(&PublishRequest) -> KeyDecision + Send + Sync>,
    ) {
        *lock(&self.listener.shared.unknown_key_handler) = Some(f);
    }

    /// Time a new connection has from accept to its publish command (TLS, handshake, connect);
    /// shared by everyone on this listener, the last setting wins.
    pub fn set_handshake_timeout(&self, timeout: Duration) {
        self.listener
            .shared
            .handshake_timeout_ms
            .store(timeout.as_millis() as u64, Ordering::Relaxed);
    }

    /// Takes the publishers of `(app, stream_key)` until the registration is dropped.
    pub fn register(
        &self,
        app: &str,
        stream_key: &str,
        options: StreamOptions,
    ) -> Result<Registration, AlreadyRegistered> {
        let shared = &self.listener.shared;
        let name = (app.to_string(), stream_key.to_string());
        let mut keys = lock(&shared.keys);
        if keys.contains_key(&name) {
            return Err(AlreadyRegistered {
                addr: shared.local_addr,
                app: name.0,
                stream_key: name.1,
            });
        }
        let (sender, receiver) = mpsc::channel(QUEUE_ITEMS);
        let entry = Arc::new(KeyEntry {
            id: NEXT_REGISTRATION.fetch_add(1, Ordering::Relaxed),
            items: sender,
            budget: Arc::new(Semaphore::new(QUEUE_BYTES)),
            options,
            live: AtomicBool::new(false),
            last_media_ms: AtomicU64::new(0),
            takeover_generation: AtomicU64::new(0),
            takeover: Notify::new(),
            released: Notify::new(),
        });
        keys.insert(name.clone(), entry.clone());
        drop(keys);
        shared.registered.notify_waiters();
        Ok(Registration {
            listener: self.clone(),
            name,
            entry,
            items: receiver,
        })
    }
}

/// A consumer's claim on a stream key; dropping it unregisters the key and cuts its publisher.
pub struct Registration {
    listener: ListenerHandle,
    name: StreamName,
    entry: Arc<KeyEntry>,
    items: mpsc::Receiver<IngestItem>,
}

impl Registration {
    /// The next item; `None` only if the registration was replaced.
    pub async fn recv(&mut self) -> Option<IngestItem> {
        self.items.recv().await
    }

    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Option<IngestItem> {
        self.items.try_recv().ok()
    }

    pub fn listener(&self) -> &ListenerHandle {
        &self.listener
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.entry.budget.close();
        let mut keys = lock(&self.listener.listener.shared.keys);
        if keys.get(&self.name).is_some_and(|e| e.id == self.entry.id) {
            keys.remove(&self.name);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps stay consistent across a panicking holder: every update is a single insert/remove.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(socket: TcpListener, shared: Arc<Shared>, acceptor: Option<TlsAcceptor>) {
    loop {
        match socket.accept().await {
            Ok((stream, remote)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, remote, shared.clone(), acceptor.clone()));
            }
            Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
        }
    }
}

async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<TlsAcceptor>,
) {
    let timeout = Duration::from_millis(shared.handshake_timeout_ms.load(Ordering::Relaxed));
    let setup_deadline = Instant::now() + timeout;
    match acceptor {
        Some(acceptor) => {
            if let Ok(Ok(stream)) = timeout_at(setup_deadline, acceptor.accept(stream)).await {
                Connection::new(stream, remote, shared, true)
                    .run(setup_deadline)
                    .await;
            }
        }
        None => {
            Connection::new(stream, remote, shared, false)
                .run(setup_deadline)
                .await
        }
    }
}

/// How long reads and writes may take.
#[derive(Clone, Copy)]
enum Patience {
    Until(Instant),
    PerOperation(Duration),
}

impl Patience {
    fn deadline(self) -> Instant {
        match self {
            Patience::Until(deadline) => deadline,
            Patience::PerOperation(timeout) => Instant::now() + timeout,
        }
    }
}

/// Marks a key live while its publisher's connection runs.
pub(super) struct LiveGuard(pub(super) Arc<KeyEntry>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.store(false, Ordering::Release);
        self.0.released.notify_waiters();
    }
}

/// Takes a live key over from a publisher that has been silent for [`TAKEOVER_SILENCE`]: tells
/// its connection to end and claims the key once it has. `false`: the live publisher is active
/// (or did not let go in time) and the new one is refused.
async fn take_over(entry: &KeyEntry) -> bool {
    let silent_ms = elapsed_ms().saturating_sub(entry.last_media_ms.load(Ordering::Acquire));
    if silent_ms < TAKEOVER_SILENCE.as_millis() as u64 {
        return false;
    }
    entry.takeover_generation.fetch_add(1, Ordering::AcqRel);
    entry.takeover.notify_waiters();
    let deadline = Instant::now() + TAKEOVER_WAIT;
    loop {
        let mut released = pin!(entry.released.notified());
        released.as_mut().enable();
        if entry
            .live
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return true;
        }
        if timeout_at(deadline, released).await.is_err() {
            return false;
        }
    }
}

/// A connection's byte stream.
trait Transport: AsyncRead + AsyncWrite + Unpin + Sized {
    /// The TCP socket, when the stream's bytes are the socket's bytes (no TLS).
    fn into_tcp(self) -> Result<TcpStream, Self>;
}

impl Transport for TcpStream {
    fn into_tcp(self) -> Result<TcpStream, Self> {
        Ok(self)
    }
}

impl Transport for tokio_rustls::server::TlsStream<TcpStream> {
    fn into_tcp(self) -> Result<TcpStream, Self> {
        Err(self)
    }
}

struct Connection<S> {
    stream: S,
    remote: SocketAddr,
    shared: Arc<Shared>,
    tls: bool,
    session: ServerSession,
    input: BytesMut,
}

impl<S: Transport> Connection<S> {
    fn new(stream: S, remote: SocketAddr, shared: Arc<Shared>, tls: bool) -> Self {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let seed = now.map_or(0, |d| d.as_nanos() as u64) ^ ((remote.port() as u64) << 32);
        Connection {
            stream,
            remote,
            shared,
            tls,
            session: ServerSession::new(seed),
            input: BytesMut::new(),
        }
    }

    async fn run(mut self, setup_deadline: Instant) {
        let setup = Patience::Until(setup_deadline);
        let mut app = String::new();
        let mut flash_ver = String::new();
        let guard = loop {
            let event = match self.next_event(setup).await {
                Ok(Some(event)) => event,
                Ok(None) | Err(_) => return,
            };
            match event {
                SessionEvent::Connected {
                    app: name,
                    flash_ver: version,
                    ..
                } => {
                    app = name;
                    flash_ver = version;
                }
                SessionEvent::PublishRequested { stream_key } => {
                    let request = PublishRequest {
                        remote: self.remote,
                        app: app.clone(),
                        stream_key,
                        tls: self.tls,
                    };
                    match self.claim(&request).await {
                        Ok(guard) => break guard,
                        Err(description) => {
                            self.session
                                .reject_publish("NetStream.Publish.BadName", &description);
                            self.linger().await;
                            return;
                        }
                    }
                }
                SessionEvent::Media(_) | SessionEvent::Unpublished => {}
            }
        };
        let entry = guard.0.clone();
        self.session.accept_publish();
        let connected = IngestItem::PublisherConnected {
            remote: self.remote,
            app,
            tls: self.tls,
            encoder: flash_ver,
        };
        if entry.items.send(connected).await.is_err() {
            return;
        }
        if entry.options.read_on_consumer_thread {
            let remote = self.remote;
            let item = match self.into_feed(guard) {
                Ok(Ok(feed)) => IngestItem::Feed(Box::new(feed)),
                Ok(Err(_)) => IngestItem::PublisherDisconnected {
                    remote,
                    reason: "closed".into(),
                },
                Err(rest) => {
                    let (connection, guard) = *rest;
                    return connection.forward(&entry, guard).await;
                }
            };
            let _ = entry.items.send(item).await;
            return;
        }
        self.forward(&entry, guard).await;
    }

    /// Forwards the publisher's media from this task until it leaves.
    async fn forward(mut self, entry: &KeyEntry, guard: LiveGuard) {
        let reason = self.publish(entry).await;
        let _ = entry
            .items
            .send(IngestItem::PublisherDisconnected {
                remote: self.remote,
                reason,
            })
            .await;
        drop(guard);
    }

    /// Finds the consumer of the requested key and marks it live; or the BadName description.
    async fn claim(&self, request: &PublishRequest) -> Result<LiveGuard, String> {
        let name = (request.app.clone(), request.stream_key.clone());
        let lookup = || lock(&self.shared.keys).get(&name).cloned();
        let entry = match lookup() {
            Some(entry) => entry,
            None => {
                let handler = lock(&self.shared.unknown_key_handler).clone();
                match handler.map(|handler| handler(request)) {
                    None => return Err("unknown stream key".into()),
                    Some(KeyDecision::Reject(text)) => return Err(text),
                    Some(KeyDecision::Accept) => {
                        let deadline = Instant::now() + REGISTRATION_WAIT;
                        loop {
                            let mut registered = pin!(self.shared.registered.notified());
                            registered.as_mut().enable();
                            if let Some(entry) = lookup() {
                                break entry;
                            }
                            if timeout_at(deadline, registered).await.is_err() {
                                return Err("no input became ready for this stream key".into());
                            }
                        }
                    }
                }
            }
        };
        let claimed = entry
            .live
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if !claimed && !take_over(&entry).await {
            let reason = "stream key already in use".to_string();
            // Best effort: a refused client must not be able to block the live one's queue.
            let _ = entry.items.try_send(IngestItem::PublisherRejected {
                remote: request.remote,
                code: ERR_STREAM_KEY_IN_USE,
                reason: reason.clone(),
            });
            return Err(reason);
        }
        entry.last_media_ms.store(elapsed_ms(), Ordering::Release);
        Ok(LiveGuard(entry))
    }

    /// Forwards media until the publisher leaves; returns the disconnect reason.
    async fn publish(&mut self, entry: &KeyEntry) -> String {
        let patience = Patience::PerOperation(entry.options.read_timeout);
        let generation = entry.takeover_generation.load(Ordering::Acquire);
        let mut drained = false;
        loop {
            let mut taken_over = pin!(entry.takeover.notified());
            taken_over.as_mut().enable();
            if entry.takeover_generation.load(Ordering::Acquire) != generation {
                return "replaced".into();
            }
            let (batch, batch_bytes, end) = take_batch(
                &mut self.session,
                &mut self.input,
                entry.options.enforce_codecs,
            );
            if let Err(reason) = self.flush(patience).await {
                return reason;
            }
            if !batch.is_empty() {
                entry.last_media_ms.store(elapsed_ms(), Ordering::Release);
                if !hand_over(entry, batch, batch_bytes).await {
                    return "stopped".into();
                }
            }
            match end {
                Some(Ending::Left) => return "closed".into(),
                Some(Ending::Reason(reason)) => return reason,
                Some(Ending::Violation(violation)) => {
                    self.reject(entry, violation).await;
                    return "rejected".into();
                }
                None if batch_bytes >= BATCH_BYTES => continue,
                None => {}
            }
            if drained {
                tokio::select! {
                    () = tokio::time::sleep_until(
                        next_batch_tick(entry.options.read_interval).into(),
                    ) => {}
                    () = &mut taken_over => return "replaced".into(),
                }
            }
            let read = tokio::select! {
                read = self.read(patience, Some(&entry.items)) => read,
                () = &mut taken_over => return "replaced".into(),
            };
            match read {
                Ok(Read::Drained) => drained = true,
                Ok(Read::More) => drained = false,
                Ok(Read::Closed) => return "closed".into(),
                Err(reason) => return reason,
            }
        }
    }

    /// Refuses the publisher for a codec rule and tells the consumer.
    async fn reject(&mut self, entry: &KeyEntry, violation: flv::CodecViolation) {
        let description = format!("{}: {}", violation.code, violation.reason);
        self.session
            .reject_publish("NetStream.Publish.Rejected", &description);
        self.linger().await;
        let _ = entry
            .items
            .send(IngestItem::PublisherRejected {
                remote: self.remote,
                code: violation.code,
                reason: violation.reason,
            })
            .await;
    }

    /// Runs the session on received bytes until it has an event; reads when it needs more.
    /// `Ok(None)`: the peer closed. `Err`: the disconnect reason.
    async fn next_event(&mut self, patience: Patience) -> Result<Option<SessionEvent>, String> {
        loop {
            let event = self.session.process(&mut self.input);
            self.flush(patience).await?;
            match event {
                Ok(Some(event)) => return Ok(Some(event)),
                Ok(None) => {}
                Err(e) => return Err(format!("protocol-error: {e}")),
            }
            if let Read::Closed = self.read(patience, None).await? {
                return Ok(None);
            }
        }
    }

    /// Reads what the socket has (waiting for something); `Err`: the disconnect reason.
    async fn read(
        &mut self,
        patience: Patience,
        consumer: Option<&mpsc::Sender<IngestItem>>,
    ) -> Result<Read, String> {
        self.input.reserve(if self.session.is_publishing() {
            PUBLISH_READ_SIZE
        } else {
            SETUP_READ_SIZE
        });
        let room = self.input.capacity() - self.input.len();
        let read = timeout_at(patience.deadline(), self.stream.read_buf(&mut self.input));
        let stopped = async {
            match consumer {
                Some(consumer) => consumer.closed().await,
                None => std::future::pending().await,
            }
        };
        let first = tokio::select! {
            read = read => match read {
                Err(_) => return Err("read-timeout".into()),
                Ok(Err(_)) | Ok(Ok(0)) => return Ok(Read::Closed),
                Ok(Ok(n)) => n,
            },
            _ = stopped => return Err("stopped".into()),
        };
        // A short read is not proof of a drained socket: through TLS a read returns one record
        // (16 KiB at most). Take what is ready at once, up to the room there was.
        let mut taken = first;
        while taken < room {
            let ready = std::future::ready(());
            let read = self.stream.read_buf(&mut self.input);
            tokio::select! {
                biased;
                read = read => match read {
                    Ok(0) | Err(_) => return Ok(Read::Closed),
                    Ok(n) => taken += n,
                },
                () = ready => return Ok(Read::Drained),
            }
        }
        Ok(Read::More)
    }

    /// Hands the connection of an accepted publisher over to be read on its consumer's thread;
    /// back when it cannot be (TLS).
    #[allow(clippy::type_complexity)]
    fn into_feed(
        self,
        guard: LiveGuard,
    ) -> Result<io::Result<PublisherFeed>, Box<(Self, LiveGuard)>> {
        let Connection {
            stream,
            remote,
            shared,
            tls,
            session,
            input,
        } = self;
        match stream.into_tcp() {
            Ok(tcp) => Ok(PublisherFeed::new(tcp, session, input, remote, guard)),
            Err(stream) => Err(Box::new((
                Connection {
                    stream,
                    remote,
                    shared,
                    tls,
                    session,
                    input,
                },
                guard,
            ))),
        }
    }

    async fn linger(&mut self) {
        let output = self.session.output().split();
        linger(&mut self.stream, output).await;
    }

    async fn flush(&mut self, patience: Patience) -> Result<(), String> {
        if self.session.output().is_empty() {
            return Ok(());
        }
        let output = self.session.output().split();
        match timeout_at(patience.deadline(), self.stream.write_all(&output)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err("closed".into()),
            Err(_) => Err("read-timeout".into()),
        }
    }
}

/// Sends `output` (a refusal), closes our direction and discards input for a short while, so
/// that the peer gets to read the refusal (closing at once would reset the connection).
pub(super) async fn linger<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, output: BytesMut) {
    let _ = timeout_at(Instant::now() + REFUSAL_LINGER, async {
        stream.write_all(&output).await?;
        stream.shutdown().await?;
        let mut discard = [0; 4096];
        while stream.read(&mut discard).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// What one read did.
enum Read {
    /// Less than there was room for: the socket had nothing more.
    Drained,
    /// The buffer filled up: the socket may have more.
    More,
    Closed,
}

/// Why a publish ends, found while taking in a batch.
pub(super) enum Ending {
    Left,
    Reason(String),
    Violation(flv::CodecViolation),
}

/// The media messages complete in `input`, up to [`BATCH_BYTES`], with their size, and why the
/// publish ends if it does.
pub(super) fn take_batch(
    session: &mut ServerSession,
    input: &mut BytesMut,
    enforce_codecs: bool,
) -> (VecDeque<MediaMessage>, usize, Option<Ending>) {
    let mut batch = VecDeque::new();
    let mut bytes = 0;
    loop {
        let message = match session.process(input) {
            Ok(Some(SessionEvent::Media(message))) => message,
            Ok(Some(SessionEvent::Unpublished)) => return (batch, bytes, Some(Ending::Left)),
            Ok(Some(_)) => continue,
            Ok(None) => return (batch, bytes, None),
            Err(e) => {
                let reason = format!("protocol-error: {e}");
                return (batch, bytes, Some(Ending::Reason(reason)));
            }
        };
        if enforce_codecs && let Some(violation) = codec_violation(&message) {
            return (batch, bytes, Some(Ending::Violation(violation)));
        }
        bytes += message.body.len();
        batch.push_back(message);
        if bytes >= BATCH_BYTES {
            return (batch, bytes, None);
        }
    }
}

/// Queues a batch for the consumer once the byte budget allows; `false`: the consumer is gone.
async fn hand_over(entry: &KeyEntry, messages: VecDeque<MediaMessage>, bytes: usize) -> bool {
    let permits = bytes.min(QUEUE_BYTES) as u32;
    let Ok(budget) = entry.budget.clone().acquire_many_owned(permits).await else {
        return false;
    };
    let item = IngestItem::Media(MediaItem {
        messages,
        _budget: Some(budget),
    });
    entry.items.send(item).await.is_ok()
}

/// The next tick of the batching grid of `interval`, shared by every connection of the process
/// with that interval.
pub(super) fn next_batch_tick(interval: Duration) -> std::time::Instant {
    static EPOCH: LazyLock<std::time::Instant> = LazyLock::new(std::time::Instant::now);
    let interval = interval.as_nanos().max(1);
    let ticks = EPOCH.elapsed().as_nanos() / interval + 1;
    *EPOCH + Duration::from_nanos((ticks * interval) as u64)
}

pub(super) fn codec_violation(message: &MediaMessage) -> Option<flv::CodecViolation> {
    if message.tag_type == flv::TAG_SCRIPT_DATA {
        let props = flv::metadata(&message.body)?;
        return flv::check_metadata(&props).err();
    }
    flv::check_tag(message.tag_type, &message.body).err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfstream_proto::rtmp::chunk::ChunkWriter;
    use cfstream_proto::rtmp::client::{self, Status, StatusReader};
    use cfstream_proto::rtmp::handshake;

    const OPTIONS: StreamOptions = StreamOptions {
        enforce_codecs: true,
        read_timeout: Duration::from_secs(10),
        read_on_consumer_thread: false,
        read_interval: DEFAULT_READ_INTERVAL,
    };
    const PATIENCE: Duration = Duration::from_secs(30);

    fn local_listener() -> ListenerHandle {
        listener(&ListenerConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            tls: None,
        })
        .unwrap()
    }

    /// Publishes `key` and returns the connection with the first status the server sent.
    async fn publish(addr: SocketAddr, key: &str) -> (TcpStream, Status) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&handshake::client_c0c1(9)).await.unwrap();
        let mut s0s1s2 = vec![0; 1 + 2 * handshake::HANDSHAKE_SIZE];
        stream.read_exact(&mut s0s1s2).await.unwrap();
        let c2 = handshake::client_c2(&s0s1s2).unwrap();
        stream.write_all(&c2).await.unwrap();
        let commands = client::publish_commands(&ChunkWriter::default(), "live", key);
        stream.write_all(&commands).await.unwrap();
        let mut statuses = StatusReader::default();
        let mut input = BytesMut::new();
        loop {
            let read = tokio::time::timeout(PATIENCE, stream.read_buf(&mut input));
            assert_ne!(read.await.unwrap().unwrap(), 0, "closed without status");
            if let Some(status) = statuses.read(&mut input).unwrap().into_iter().next() {
                return (stream, status);
            }
        }
    }

    #[tokio::test]
    async fn unknown_key_without_handler_is_bad_name() {
        let listener = local_listener();
        let (_, status) = publish(listener.local_addr(), "nobody").await;
        assert_eq!(status.code, "NetStream.Publish.BadName");
        assert_eq!(status.description, "unknown stream key");
    }

    #[tokio::test]
    async fn handler_rejection_text_reaches_the_publisher() {
        let listener = local_listener();
        let (seen, requests) = std::sync::mpsc::channel();
        listener.set_unknown_key_handler(Arc::new(move |request: &PublishRequest| {
            seen.send(request.clone()).unwrap();
            KeyDecision::Reject("input is disabled".into())
        }));
        let (_, status) = publish(listener.local_addr(), "k1").await;
        assert_eq!(status.code, "NetStream.Publish.BadName");
        assert_eq!(status.description, "input is disabled");
        let request = requests.try_recv().unwrap();
        assert_eq!(
            (request.app.as_str(), request.stream_key.as_str()),
            ("live", "k1")
        );
        assert!(!request.tls);
    }

    #[tokio::test]
    async fn accepted_unknown_key_waits_for_its_registration() {
        let listener = local_listener();
        let (asked, requests) = tokio::sync::mpsc::unbounded_channel();
        listener.set_unknown_key_handler(Arc::new(move |request: &PublishRequest| {
            asked.send(request.stream_key.clone()).unwrap();
            KeyDecision::Accept
        }));
        let addr = listener.local_addr();
        let publisher = tokio::spawn(publish(addr, "late"));
        // Register only once the handler was consulted: the publisher must be waiting.
        let mut requests = requests;
        let key = requests.recv().await.unwrap();
        let mut registration = listener.register("live", &key, OPTIONS).unwrap();
        let (mut stream, status) = publisher.await.unwrap();
        assert_eq!(status.code, "NetStream.Publish.Start");
        let Some(IngestItem::PublisherConnected { app, encoder, .. }) = registration.recv().await
        else {
            panic!("expected the publisher")
        };
        assert_eq!(
            (app.as_str(), encoder.as_str()),
            ("live", "FMLE/3.0 (compatible; cfstream)")
        );
        let mut tag = BytesMut::new();
        ChunkWriter::default().write(&mut tag, 6, 40, flv::TAG_VIDEO, 1, &[0x17, 0, 0, 0, 0]);
        stream.write_all(&tag).await.unwrap();
        let Some(IngestItem::Media(media)) = registration.recv().await else {
            panic!("expected media")
        };
        let message = &media.messages[0];
        assert_eq!((message.tag_type, message.timestamp), (9, 40));
    }

    #[tokio::test]
    async fn second_publisher_of_a_live_key_is_refused() {
        let listener = local_listener();
        let mut registration = listener.register("live", "k", OPTIONS).unwrap();
        assert!(listener.register("live", "k", OPTIONS).is_err());
        let (_live, first) = publish(listener.local_addr(), "k").await;
        assert_eq!(first.code, "NetStream.Publish.Start");
        let (_, second) = publish(listener.local_addr(), "k").await;
        assert_eq!(
            (second.code.as_str(), second.description.as_str()),
            ("NetStream.Publish.BadName", "stream key already in use")
        );
        assert!(matches!(
            registration.recv().await,
            Some(IngestItem::PublisherConnected { .. })
        ));
        assert!(matches!(
            registration.recv().await,
            Some(IngestItem::PublisherRejected {
                code: ERR_STREAM_KEY_IN_USE,
                ..
            })
        ));
    }

    #[test]
    fn listeners_are_shared_by_address() {
        let first = local_listener();
        let again = listener(&ListenerConfig {
            addr: first.local_addr(),
            tls: None,
        })
        .unwrap();
        assert!(Arc::ptr_eq(&first.listener, &again.listener));
        assert_ne!(local_listener().local_addr(), first.local_addr());
        let tls = listener(&ListenerConfig {
            addr: first.local_addr(),
            tls: Some(TlsFiles {
                certificate: "/nonexistent.pem".into(),
                private_key: "/nonexistent.key".into(),
            }),
        });
        assert!(tls.is_err());
    }
}
