//! The stream keys registered on one listener, and how a publisher claims one: a registered key,
//! or an unknown one the unknown-key handler accepts (the publisher then waits for its
//! registration), or a live key taken over from a publisher gone silent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, timeout_at};

use super::listener::ListenerHandle;
use super::queue::{ConsumerQueue, IngestItem};
use crate::contract::codes::ERR_STREAM_KEY_IN_USE;
use crate::net::silence::Silence;

/// How long a publisher accepted by the unknown-key handler waits for its key to be registered.
const REGISTRATION_WAIT: Duration = Duration::from_secs(5);
/// A live publisher that sent no media for this long is presumed gone: a network cut leaves its
/// TCP connection open until `read-timeout` notices, and an encoder reconnecting meanwhile takes
/// the key over instead of being refused. Encoders send several messages a second. Only time
/// spent waiting for its bytes counts: a publisher we stopped reading (its consumer is behind)
/// is not silent, whatever it looks like from here.
pub const TAKEOVER_SILENCE: Duration = Duration::from_secs(2);
/// How long a taking-over publisher waits for the silent one's connection to end.
const TAKEOVER_WAIT: Duration = Duration::from_secs(2);

static NEXT_REGISTRATION: AtomicU64 = AtomicU64::new(1);

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

pub(super) type UnknownKeyHandler = Arc<dyn Fn(&PublishRequest) -> KeyDecision + Send + Sync>;

/// What a registered consumer wants from its publishers.
#[derive(Clone, Copy, Debug)]
pub struct StreamOptions {
    /// Refuse video other than AVC and audio other than AAC.
    pub enforce_codecs: bool,
    /// A publisher silent this long is considered cut off.
    pub read_timeout: Duration,
    /// Hand a plain-TCP publisher's connection over as an [`IngestItem::Feed`], to be read on
    /// the consumer's thread (see [`super::PublisherFeed`]).
    pub read_on_consumer_thread: bool,
    /// Once a publisher's socket is drained, it is read again at the next multiple of this
    /// (see [`crate::net::grid`]).
    pub read_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("stream key {stream_key:?} of app {app:?} is registered already on {addr}")]
pub struct AlreadyRegistered {
    pub addr: SocketAddr,
    pub app: String,
    pub stream_key: String,
}

/// `(app, stream key)`.
type StreamName = (String, String);

/// One listener's keys.
pub(super) struct Registry {
    local_addr: SocketAddr,
    keys: Mutex<HashMap<StreamName, Arc<KeyEntry>>>,
    registered: Notify,
    unknown_key_handler: Mutex<Option<UnknownKeyHandler>>,
    /// Answers players (see [`super::play`]).
    pub(super) play_handler: Mutex<Option<super::play::PlayHandler>>,
}

/// A registered key: its consumer's queue and options, and its live publisher's state.
pub(super) struct KeyEntry {
    id: u64,
    pub(super) queue: ConsumerQueue,
    pub(super) options: StreamOptions,
    live: AtomicBool,
    /// The live publisher's silence, which a takeover needs.
    silence: Silence,
    /// Bumped by a publisher taking the key over; the live one ends when it changes.
    takeover_generation: AtomicU64,
    takeover: Notify,
    /// Signalled when `live` turns false.
    released: Notify,
}

impl Registry {
    pub(super) fn new(local_addr: SocketAddr) -> Registry {
        Registry {
            local_addr,
            keys: Mutex::default(),
            registered: Notify::new(),
            unknown_key_handler: Mutex::default(),
            play_handler: Mutex::default(),
        }
    }

    pub(super) fn set_unknown_key_handler(&self, handler: UnknownKeyHandler) {
        *lock(&self.unknown_key_handler) = Some(handler);
    }

    fn register(
        &self,
        name: StreamName,
        options: StreamOptions,
    ) -> Result<(Arc<KeyEntry>, mpsc::Receiver<IngestItem>), AlreadyRegistered> {
        let mut keys = lock(&self.keys);
        if keys.contains_key(&name) {
            return Err(AlreadyRegistered {
                addr: self.local_addr,
                app: name.0,
                stream_key: name.1,
            });
        }
        let (queue, items) = ConsumerQueue::new();
        let entry = Arc::new(KeyEntry {
            id: NEXT_REGISTRATION.fetch_add(1, Ordering::Relaxed),
            queue,
            options,
            live: AtomicBool::new(false),
            silence: Silence::default(),
            takeover_generation: AtomicU64::new(0),
            takeover: Notify::new(),
            released: Notify::new(),
        });
        keys.insert(name, entry.clone());
        drop(keys);
        self.registered.notify_waiters();
        Ok((entry, items))
    }

    fn unregister(&self, name: &StreamName, entry: &KeyEntry) {
        entry.queue.close();
        let mut keys = lock(&self.keys);
        if keys.get(name).is_some_and(|e| e.id == entry.id) {
            keys.remove(name);
        }
    }

    /// Finds the consumer of the requested key and marks it live; or the BadName description.
    /// `key_known` is called as soon as the key is known to be good (registered, or accepted
    /// by the unknown-key handler), before any wait.
    pub(super) async fn claim(
        &self,
        request: &PublishRequest,
        key_known: impl FnOnce(),
    ) -> Result<LiveGuard, String> {
        let entry = self.consumer(request, key_known).await?;
        let claimed = entry
            .live
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if !claimed && !take_over(&entry).await {
            let reason = "stream key already in use".to_string();
            // Best effort: a refused client must not be able to block the live one's queue.
            entry.queue.try_send(IngestItem::PublisherRejected {
                remote: request.remote,
                code: ERR_STREAM_KEY_IN_USE,
                reason: reason.clone(),
            });
            return Err(reason);
        }
        entry.silence.resume();
        Ok(LiveGuard(entry))
    }

    /// The registered entry of the requested key, waiting for it if the unknown-key handler
    /// accepts the key.
    async fn consumer(
        &self,
        request: &PublishRequest,
        key_known: impl FnOnce(),
    ) -> Result<Arc<KeyEntry>, String> {
        let name = (request.app.clone(), request.stream_key.clone());
        let lookup = || lock(&self.keys).get(&name).cloned();
        if let Some(entry) = lookup() {
            key_known();
            return Ok(entry);
        }
        let handler = lock(&self.unknown_key_handler).clone();
        match handler.map(|handler| handler(request)) {
            None => Err("unknown stream key".into()),
            Some(KeyDecision::Reject(text)) => Err(text),
            Some(KeyDecision::Accept) => {
                key_known();
                let deadline = Instant::now() + REGISTRATION_WAIT;
                loop {
                    let mut registered = pin!(self.registered.notified());
                    registered.as_mut().enable();
                    if let Some(entry) = lookup() {
                        return Ok(entry);
                    }
                    if timeout_at(deadline, registered).await.is_err() {
                        return Err("no input became ready for this stream key".into());
                    }
                }
            }
        }
    }
}

impl KeyEntry {
    /// The live publisher's silence: heard from, held back by us, read again.
    pub(super) fn silence(&self) -> &Silence {
        &self.silence
    }

    /// The takeover generation now: a live publisher ends once it changes.
    pub(super) fn generation(&self) -> u64 {
        self.takeover_generation.load(Ordering::Acquire)
    }

    /// Resolves when a publisher takes the key over (enable it before checking
    /// [`KeyEntry::generation`]).
    pub(super) fn taken_over(&self) -> tokio::sync::futures::Notified<'_> {
        self.takeover.notified()
    }
}

/// Takes a live key over from a publisher that has been silent for [`TAKEOVER_SILENCE`]: tells
/// its connection to end and claims the key once it has. `false`: the live publisher is active
/// or held back by its consumer (or did not let go in time) and the new one is refused.
async fn take_over(entry: &KeyEntry) -> bool {
    if !entry.silence.is_silent_for(TAKEOVER_SILENCE) {
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

/// Marks a key live while its publisher's connection runs.
pub(super) struct LiveGuard(pub(super) Arc<KeyEntry>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.store(false, Ordering::Release);
        self.0.released.notify_waiters();
    }
}

/// A consumer's claim on a stream key; dropping it unregisters the key and cuts its publisher.
pub struct Registration {
    /// Keeps the listener accepting.
    listener: ListenerHandle,
    name: StreamName,
    entry: Arc<KeyEntry>,
    items: mpsc::Receiver<IngestItem>,
}

impl Registration {
    pub(super) fn new(
        listener: ListenerHandle,
        app: &str,
        stream_key: &str,
        options: StreamOptions,
    ) -> Result<Registration, AlreadyRegistered> {
        let name = (app.to_string(), stream_key.to_string());
        let (entry, items) = listener.registry().register(name.clone(), options)?;
        Ok(Registration {
            listener,
            name,
            entry,
            items,
        })
    }

    /// The next item; `None` only if the registration was replaced.
    pub async fn recv(&mut self) -> Option<IngestItem> {
        self.items.recv().await
    }

    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Option<IngestItem> {
        self.items.try_recv().ok()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.listener.registry().unregister(&self.name, &self.entry);
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps stay consistent across a panicking holder: every update is a single insert/remove.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
