//! Binding and accepting: one listener per listen address in a process, shared by everyone who
//! asks for that address. A listener is one accept task on [`crate::runtime::RUNTIME`]; each
//! accepted connection is a task of its own ([`super::connection`]).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsAcceptor;

use super::connection::Connection;
use super::registry::{
    AlreadyRegistered, KeyDecision, PublishRequest, Registration, Registry, StreamOptions, lock,
};
use crate::net::admission::{Admitted, admission};
use crate::net::tls::{self, TlsFiles};
use crate::runtime::RUNTIME;

/// Handshake timeout until an element sets one.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors) instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub struct ListenerConfig {
    pub addr: SocketAddr,
    pub tls: Option<TlsFiles>,
}

/// What the accept task and the handles share.
struct Shared {
    local_addr: SocketAddr,
    tls: bool,
    registry: Arc<Registry>,
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

/// Binds (or returns the already bound) listener for this address.
pub fn listener(config: &ListenerConfig) -> io::Result<ListenerHandle> {
    let mut listeners = lock(&LISTENERS);
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
    let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
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
        registry: Arc::new(Registry::new(local_addr)),
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

impl ListenerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.shared.local_addr
    }

    /// Called (on a runtime thread; must not block long) for a publish whose (app, key) no
    /// element has registered. `Accept` means "an element for this key will register within
    /// 5 s": the publisher waits for it, then is handed over. `Reject` answers
    /// NetStream.Publish.BadName with the text.
    pub fn set_unknown_key_handler(
        &self,
        f: Arc<dyn Fn(&PublishRequest) -> KeyDecision + Send + Sync>,
    ) {
        self.registry().set_unknown_key_handler(f);
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
        Registration::new(self.clone(), app, stream_key, options)
    }

    pub(super) fn registry(&self) -> &Registry {
        &self.listener.shared.registry
    }

    #[cfg(test)]
    pub(super) fn is_same_listener(&self, other: &ListenerHandle) -> bool {
        Arc::ptr_eq(&self.listener, &other.listener)
    }
}

async fn accept_loop(socket: TcpListener, shared: Arc<Shared>, acceptor: Option<TlsAcceptor>) {
    loop {
        match socket.accept().await {
            Ok((stream, remote)) => {
                // Over a cap: closed at once (dropped), counted by the admission.
                let Ok(admitted) = admission().admit(remote.ip()) else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                tokio::spawn(serve(stream, remote, admitted, shared.clone(), acceptor));
            }
            Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
        }
    }
}

/// One accepted connection: TLS (if any) and the RTMP session, within the handshake timeout
/// until the publish command.
async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    admitted: Admitted,
    shared: Arc<Shared>,
    acceptor: Option<TlsAcceptor>,
) {
    let timeout = Duration::from_millis(shared.handshake_timeout_ms.load(Ordering::Relaxed));
    let setup_deadline = Instant::now() + timeout;
    let registry = shared.registry.clone();
    match acceptor {
        Some(acceptor) => {
            if let Ok(Ok(stream)) = timeout_at(setup_deadline, acceptor.accept(stream)).await {
                Connection::new(stream, remote, admitted, registry, true)
                    .run(setup_deadline)
                    .await;
            }
        }
        None => {
            Connection::new(stream, remote, admitted, registry, false)
                .run(setup_deadline)
                .await
        }
    }
}
