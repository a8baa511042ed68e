//! The stream ids registered on one SRT listener: what a caller's handshake is answered with
//! (the input's passphrase), and how an accepted caller claims its id: a registered id, or one
//! the unknown-stream handler accepts (the caller then waits for its registration), or a live
//! id taken over from a caller gone silent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, timeout_at};

use super::feed::CallerFeed;
use super::listener::ListenerHandle;
use crate::contract::codes::ERR_STREAM_KEY_IN_USE;
use crate::egress::Viewer;
use crate::net::silence::Silence;
use crate::rtmp::{KeyDecision, TAKEOVER_SILENCE};

/// How long a caller accepted by the unknown-stream handler waits for its id to be registered.
const REGISTRATION_WAIT: Duration = Duration::from_secs(5);
/// How long a taking-over caller waits for the silent one's feed to end.
const TAKEOVER_WAIT: Duration = Duration::from_secs(2);
/// Items waiting for a consumer: callers arrive one at a time, each a whole connection.
const QUEUE_ITEMS: usize = 16;

static NEXT_REGISTRATION: AtomicU64 = AtomicU64::new(1);

/// An accepted caller asking to publish.
#[derive(Clone, Debug)]
pub struct CallerRequest {
    pub remote: SocketAddr,
    /// The resource of its stream id.
    pub stream_id: String,
}

/// What the handshake of a caller for an unregistered id is answered with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// No such input (or one that takes no callers now): refused like a wrong passphrase.
    Unknown,
    /// The input exists; its callers must present this passphrase (`None`: unencrypted).
    Known { passphrase: Option<String> },
}

/// The daemon's side of a listener: it knows inputs no element has registered yet.
pub trait UnknownStreamHandler: Send + Sync {
    /// During the handshake, on libsrt's receiving thread for the whole port: must only look
    /// up. The caller's passphrase is not checked yet, so this must not act on the caller.
    fn lookup(&self, stream_id: &str) -> Lookup;
    /// After the handshake (passphrase checked), for an id still unregistered. `Accept` means
    /// "an element for this id will register within 5 s": the caller waits for it.
    fn on_caller(&self, request: &CallerRequest) -> KeyDecision;
    /// During the handshake of a play request (see [`super::stream_id`]) for the input
    /// `stream_id`: the playback passphrase. Same rules as [`Self::lookup`].
    fn lookup_play(&self, _stream_id: &str) -> Lookup {
        Lookup::Unknown
    }
    /// After the handshake of a play request: a viewer of the input, or why not.
    fn on_viewer(&self, _request: &CallerRequest) -> Result<Viewer, String> {
        Err("this server does not serve players".into())
    }
}

/// What a registered consumer wants from its callers.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// Callers must present this passphrase (10–79 bytes); `None`: they must not encrypt.
    pub passphrase: Option<String>,
    /// SRT receive latency (`SRTO_RCVLATENCY`): how long lost packets may take to arrive.
    pub latency: Duration,
    /// Refuse video other than H.264 and audio other than AAC (ADTS) at the PMT.
    pub enforce_codecs: bool,
    /// A caller that sent nothing this long is considered cut off.
    pub read_timeout: Duration,
    /// A live caller's socket is read at the ticks of this grid ([`crate::net::grid`]).
    pub read_interval: Duration,
}

/// What a registered consumer receives.
#[derive(Debug)]
pub enum CallerItem {
    /// An accepted caller's connection, to be read on the consumer's thread.
    Caller(Box<CallerFeed>),
    /// A caller refused while another one is live.
    Rejected {
        remote: SocketAddr,
        code: &'static str,
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("stream id {stream_id:?} is registered already on SRT listener {addr}")]
pub struct AlreadyRegistered {
    pub addr: SocketAddr,
    pub stream_id: String,
}

/// One listener's stream ids.
pub(super) struct Registry {
    local_addr: SocketAddr,
    ids: Mutex<HashMap<String, Arc<Entry>>>,
    registered: Notify,
    handler: Mutex<Option<Arc<dyn UnknownStreamHandler>>>,
}

/// A registered id: its consumer's queue and options, and its live caller's state.
pub(super) struct Entry {
    id: u64,
    pub(super) options: StreamOptions,
    items: mpsc::Sender<CallerItem>,
    live: AtomicBool,
    /// The live caller's silence, which a takeover needs.
    silence: Silence,
    /// Bumped by a caller taking the id over; the live one ends when it changes.
    takeover_generation: AtomicU64,
    /// Signalled when `live` turns false.
    released: Notify,
}

impl Registry {
    pub(super) fn new(local_addr: SocketAddr) -> Registry {
        Registry {
            local_addr,
            ids: Mutex::default(),
            registered: Notify::new(),
            handler: Mutex::default(),
        }
    }

    pub(super) fn set_handler(&self, handler: Arc<dyn UnknownStreamHandler>) {
        *lock(&self.handler) = Some(handler);
    }

    /// The handshake's answer for `stream_id`: registered ids first, then the handler.
    pub(super) fn lookup(&self, stream_id: &str) -> (Lookup, Option<Duration>) {
        if let Some(entry) = lock(&self.ids).get(stream_id) {
            let passphrase = entry.options.passphrase.clone();
            return (Lookup::Known { passphrase }, Some(entry.options.latency));
        }
        let handler = lock(&self.handler).clone();
        let lookup = handler.map_or(Lookup::Unknown, |h| h.lookup(stream_id));
        (lookup, None)
    }

    /// The handshake's answer for a play request of the input `stream_id` (the handler's).
    pub(super) fn lookup_play(&self, stream_id: &str) -> Lookup {
        let handler = lock(&self.handler).clone();
        handler.map_or(Lookup::Unknown, |h| h.lookup_play(stream_id))
    }

    /// A viewer for an accepted play request.
    pub(super) fn viewer(&self, request: &CallerRequest) -> Result<Viewer, String> {
        match lock(&self.handler).clone() {
            Some(handler) => handler.on_viewer(request),
            None => Err("this server does not serve players".into()),
        }
    }

    fn register(
        &self,
        stream_id: &str,
        options: StreamOptions,
    ) -> Result<(Arc<Entry>, mpsc::Receiver<CallerItem>), AlreadyRegistered> {
        let mut ids = lock(&self.ids);
        if ids.contains_key(stream_id) {
            return Err(AlreadyRegistered {
                addr: self.local_addr,
                stream_id: stream_id.to_owned(),
            });
        }
        let (items, receiver) = mpsc::channel(QUEUE_ITEMS);
        let entry = Arc::new(Entry {
            id: NEXT_REGISTRATION.fetch_add(1, Ordering::Relaxed),
            options,
            items,
            live: AtomicBool::new(false),
            silence: Silence::default(),
            takeover_generation: AtomicU64::new(0),
            released: Notify::new(),
        });
        ids.insert(stream_id.to_owned(), entry.clone());
        drop(ids);
        self.registered.notify_waiters();
        Ok((entry, receiver))
    }

    fn unregister(&self, stream_id: &str, entry: &Entry) {
        let mut ids = lock(&self.ids);
        if ids.get(stream_id).is_some_and(|e| e.id == entry.id) {
            ids.remove(stream_id);
        }
        // A feed still running sees the generation change and ends.
        entry.takeover_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Finds the consumer of the caller's id and marks it live; or why the caller is refused.
    pub(super) async fn claim(&self, request: &CallerRequest) -> Result<LiveGuard, String> {
        let entry = self.consumer(request).await?;
        let claimed = entry
            .live
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if !claimed && !take_over(&entry).await {
            let reason = "stream id already in use".to_string();
            // Best effort: a refused caller must not block the live one's queue.
            let _ = entry.items.try_send(CallerItem::Rejected {
                remote: request.remote,
                code: ERR_STREAM_KEY_IN_USE,
                reason: reason.clone(),
            });
            return Err(reason);
        }
        entry.silence.resume();
        Ok(LiveGuard(entry))
    }

    async fn consumer(&self, request: &CallerRequest) -> Result<Arc<Entry>, String> {
        let lookup = || lock(&self.ids).get(&request.stream_id).cloned();
        if let Some(entry) = lookup() {
            return Ok(entry);
        }
        let handler = lock(&self.handler).clone();
        match handler.map(|handler| handler.on_caller(request)) {
            None => Err("unknown stream id".into()),
            Some(KeyDecision::Reject(text)) => Err(text),
            Some(KeyDecision::Accept) => {
                let deadline = Instant::now() + REGISTRATION_WAIT;
                loop {
                    let mut registered = pin!(self.registered.notified());
                    registered.as_mut().enable();
                    if let Some(entry) = lookup() {
                        return Ok(entry);
                    }
                    if timeout_at(deadline, registered).await.is_err() {
                        return Err("no input became ready for this stream id".into());
                    }
                }
            }
        }
    }
}

impl Entry {
    /// The live caller's silence: heard from, held back by us, read again.
    pub(super) fn silence(&self) -> &Silence {
        &self.silence
    }

    /// The takeover generation now: a live caller ends once it changes.
    pub(super) fn generation(&self) -> u64 {
        self.takeover_generation.load(Ordering::Acquire)
    }

    /// Hands an accepted caller to the consumer; `false`: the consumer is gone.
    pub(super) async fn hand_over(&self, feed: CallerFeed) -> bool {
        self.items
            .send(CallerItem::Caller(Box::new(feed)))
            .await
            .is_ok()
    }
}

/// Takes a live id over from a caller silent for [`TAKEOVER_SILENCE`] (a network cut leaves its
/// SRT connection up until the peer idle timeout): tells its feed to end and claims the id once
/// it has. `false`: the live caller is active (or did not let go in time).
async fn take_over(entry: &Entry) -> bool {
    if !entry.silence.is_silent_for(TAKEOVER_SILENCE) {
        return false;
    }
    entry.takeover_generation.fetch_add(1, Ordering::AcqRel);
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

/// Marks an id live while its caller's feed exists.
pub(super) struct LiveGuard(pub(super) Arc<Entry>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.store(false, Ordering::Release);
        self.0.released.notify_waiters();
    }
}

/// A consumer's claim on a stream id; dropping it unregisters the id and ends its caller.
pub struct Registration {
    /// Keeps the listener accepting.
    listener: ListenerHandle,
    stream_id: String,
    entry: Arc<Entry>,
    items: mpsc::Receiver<CallerItem>,
}

impl Registration {
    pub(super) fn new(
        listener: ListenerHandle,
        stream_id: &str,
        options: StreamOptions,
    ) -> Result<Registration, AlreadyRegistered> {
        let (entry, items) = listener.registry().register(stream_id, options)?;
        Ok(Registration {
            listener,
            stream_id: stream_id.to_owned(),
            entry,
            items,
        })
    }

    /// The next item; `None` only if the registration was replaced.
    pub async fn recv(&mut self) -> Option<CallerItem> {
        self.items.recv().await
    }

    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Option<CallerItem> {
        self.items.try_recv().ok()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.listener
            .registry()
            .unregister(&self.stream_id, &self.entry);
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps stay consistent across a panicking holder: every update is a single insert/remove.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
