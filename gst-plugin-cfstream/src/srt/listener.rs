//! Binding and accepting: one SRT listener (one UDP port) per listen address in a process,
//! shared by everyone who asks for that address.
//!
//! libsrt does the protocol: its receiving thread answers handshakes (with SYN cookies, so a
//! half handshake costs no state), calls [`on_handshake`] with the caller's stream id before the
//! handshake completes, and checks the passphrase set there. A listener adds one thread blocked
//! in `srt_accept`; each accepted caller claims its id on the runtime ([`serve`]) and is handed
//! to its consumer as a [`CallerFeed`].

use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use super::feed::CallerFeed;
use super::ffi;
use super::registry::{
    AlreadyRegistered, CallerRequest, Lookup, Registration, Registry, StreamOptions,
    UnknownStreamHandler, lock,
};
use super::socket::{Handshake, Socket};
use super::stream_id::StreamRequest;
use crate::runtime::RUNTIME;

/// Accepted callers libsrt may hold before the accept thread takes them.
const BACKLOG: u32 = 64;
/// Pause after a failed accept instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub struct ListenerConfig {
    pub addr: SocketAddr,
}

/// What the accept thread, the handshake callback and the handles share.
struct Shared {
    local_addr: SocketAddr,
    registry: Registry,
}

struct Listener {
    shared: Arc<Shared>,
    socket: Arc<Socket>,
    closing: Arc<AtomicBool>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Ends the accept thread; callers already accepted keep their connections.
        self.closing.store(true, Ordering::Release);
        self.socket.close();
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

/// Binds (or returns the already bound) SRT listener for this address.
pub fn listener(config: &ListenerConfig) -> io::Result<ListenerHandle> {
    let mut listeners = lock(&LISTENERS);
    listeners.retain(|_, listener| listener.strong_count() > 0);
    if config.addr.port() != 0
        && let Some(listener) = listeners.get(&config.addr).and_then(Weak::upgrade)
    {
        return Ok(ListenerHandle { listener });
    }
    let socket = Socket::new()?;
    socket.bind(config.addr)?;
    let local_addr = socket.local_addr()?;
    let shared = Arc::new(Shared {
        local_addr,
        registry: Registry::new(local_addr),
    });
    // libsrt may call the hook until the socket is closed, and a call may be under way while
    // it closes: the hook gets a weak reference that is never freed (one per listener).
    let opaque: &'static Weak<Shared> = Box::leak(Box::new(Arc::downgrade(&shared)));
    socket.set_listen_callback(on_handshake, (opaque as *const Weak<Shared>).cast())?;
    socket.listen(BACKLOG)?;
    let socket = Arc::new(socket);
    let closing = Arc::new(AtomicBool::new(false));
    {
        let (socket, shared, closing) = (socket.clone(), shared.clone(), closing.clone());
        std::thread::Builder::new()
            .name("cfstream-srt-accept".into())
            .spawn(move || accept_loop(&socket, &shared, &closing))?;
    }
    let listener = Arc::new(Listener {
        shared,
        socket,
        closing,
    });
    listeners.insert(local_addr, Arc::downgrade(&listener));
    if config.addr.port() != 0 {
        listeners.insert(config.addr, Arc::downgrade(&listener));
    }
    Ok(ListenerHandle { listener })
}

impl ListenerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.shared.local_addr
    }

    /// Answers callers of ids no element has registered (see [`UnknownStreamHandler`]).
    pub fn set_unknown_stream_handler(&self, handler: Arc<dyn UnknownStreamHandler>) {
        self.registry().set_handler(handler);
    }

    /// Takes the callers of `stream_id` until the registration is dropped.
    pub fn register(
        &self,
        stream_id: &str,
        options: StreamOptions,
    ) -> Result<Registration, AlreadyRegistered> {
        Registration::new(self.clone(), stream_id, options)
    }

    pub(super) fn registry(&self) -> &Registry {
        &self.listener.shared.registry
    }
}

/// libsrt's listen callback: the caller's stream id is known, its passphrase not yet checked.
/// An id nobody takes gets a passphrase nobody knows, so that the caller is refused exactly as
/// for a wrong passphrase and learns nothing about which ids exist.
unsafe extern "C" fn on_handshake(
    opaque: *mut c_void,
    socket: ffi::SRTSOCKET,
    _hs_version: c_int,
    _peer: *const libc::sockaddr,
    stream_id: *const c_char,
) -> c_int {
    // SAFETY: `opaque` is the leaked `Weak<Shared>` of `listener()`, alive forever.
    let shared = unsafe { &*opaque.cast::<Weak<Shared>>() };
    let handshake = Handshake(socket);
    let Some(shared) = shared.upgrade() else {
        return -1;
    };
    let stream_id = if stream_id.is_null() {
        String::new()
    } else {
        // SAFETY: libsrt passes a NUL-terminated string valid for the call.
        unsafe { CStr::from_ptr(stream_id) }
            .to_string_lossy()
            .into_owned()
    };
    // A panic must not unwind into libsrt.
    let answer = std::panic::catch_unwind(|| answer_handshake(&shared, &handshake, &stream_id));
    answer.unwrap_or(-1)
}

fn answer_handshake(shared: &Shared, handshake: &Handshake, stream_id: &str) -> c_int {
    let request = match StreamRequest::parse(stream_id) {
        Ok(request) => request,
        Err(_) => {
            handshake.reject(ffi::SRT_REJX_BAD_REQUEST);
            return -1;
        }
    };
    if let Some(input) = request.play_input() {
        let passphrase = match shared.registry.lookup_play(input) {
            Lookup::Known { passphrase } => passphrase,
            Lookup::Unknown => Some(unguessable_passphrase()),
        };
        return match passphrase {
            Some(passphrase) if !handshake.set_passphrase(&passphrase) => -1,
            _ => 0,
        };
    }
    let (lookup, latency) = shared.registry.lookup(&request.resource);
    if let Some(latency) = latency {
        handshake.set_latency(latency.as_millis().min(i32::MAX as u128) as i32);
    }
    let passphrase = match lookup {
        Lookup::Known { passphrase } => passphrase,
        Lookup::Unknown => Some(unguessable_passphrase()),
    };
    match passphrase {
        Some(passphrase) if !handshake.set_passphrase(&passphrase) => -1,
        _ => 0,
    }
}

/// 32 hex digits from the OS's random source (as good as a wrong guess can be refused with).
fn unguessable_passphrase() -> String {
    let mut bytes = [0u8; 16];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the array.
    let filled = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if filled != bytes.len() as isize {
        // Never expected; std's randomly keyed hasher is still unknown to the caller.
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        bytes[..8].copy_from_slice(&state.hash_one(std::time::Instant::now()).to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn accept_loop(socket: &Socket, shared: &Arc<Shared>, closing: &AtomicBool) {
    loop {
        match socket.accept() {
            Ok((caller, remote)) => {
                RUNTIME.spawn(serve(caller, remote, shared.clone()));
            }
            Err(_) if closing.load(Ordering::Acquire) => return,
            Err(_) => std::thread::sleep(ACCEPT_BACKOFF),
        }
    }
}

/// One accepted caller: its id claimed, then handed to the consumer; refused callers are
/// closed (after the handshake SRT has no way to say why).
async fn serve(socket: Socket, remote: SocketAddr, shared: Arc<Shared>) {
    let Ok(stream_id) = socket.text(ffi::SRTO_STREAMID) else {
        return;
    };
    let Ok(stream_request) = StreamRequest::parse(&stream_id) else {
        return;
    };
    if let Some(input) = stream_request.play_input() {
        let request = CallerRequest {
            remote,
            stream_id: input.to_owned(),
        };
        if let Ok(viewer) = shared.registry.viewer(&request) {
            super::play::send(socket, viewer).await;
        }
        return;
    }
    let request = CallerRequest {
        remote,
        stream_id: stream_request.resource,
    };
    let Ok(guard) = shared.registry.claim(&request).await else {
        return;
    };
    let entry = guard.0.clone();
    let Ok(feed) = CallerFeed::new(socket, remote, request.stream_id, guard) else {
        return;
    };
    entry.hand_over(feed).await;
}
