//! One accepted connection on the runtime: its byte stream, reads and writes under timeouts, and
//! the setup phase that drives [`ServerSession`] from the handshake to a publish command. What
//! follows an accepted publish is [`super::publish`]'s, an accepted play [`super::play`]'s.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::feed::PublisherFeed;
use super::queue::ConsumerQueue;
use super::registry::{LiveGuard, PublishRequest, Registry};
use crate::contract::DisconnectReason;
use crate::net::admission::Admitted;
use cfstream_proto::rtmp::session::{ServerSession, SessionEvent};

/// Bytes asked of the socket per read: small until a publish is accepted, so that many idle or
/// hostile connections hold little memory.
const SETUP_READ_SIZE: usize = 4 * 1024;
pub(super) const PUBLISH_READ_SIZE: usize = 64 * 1024;
/// After refusing a publisher, how long its further data is read and discarded so that it gets
/// to read the error status (closing at once would reset the connection and lose it).
const REFUSAL_LINGER: Duration = Duration::from_secs(2);

/// A connection's byte stream.
pub(super) trait Transport: AsyncRead + AsyncWrite + Unpin + Sized {
    /// Hands an accepted publisher's connection over to be read on its consumer's thread, which
    /// only a stream whose bytes are the socket's bytes (no TLS) can be.
    fn hand_over(connection: Connection<Self>, guard: LiveGuard) -> Handover<Self>;
    /// The TCP socket underneath (for socket options).
    fn tcp(&self) -> &TcpStream;
}

/// What [`Transport::hand_over`] did.
pub(super) enum Handover<S> {
    Feed(io::Result<Box<PublisherFeed>>),
    /// The connection stays on the runtime.
    Kept(Box<(Connection<S>, LiveGuard)>),
}

impl Transport for TcpStream {
    fn hand_over(connection: Connection<Self>, guard: LiveGuard) -> Handover<Self> {
        let Connection {
            stream,
            remote,
            admitted,
            session,
            input,
            ..
        } = connection;
        let feed = PublisherFeed::new(stream, session, input, remote, guard, admitted);
        Handover::Feed(feed.map(Box::new))
    }

    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Transport for tokio_rustls::server::TlsStream<TcpStream> {
    fn hand_over(connection: Connection<Self>, guard: LiveGuard) -> Handover<Self> {
        Handover::Kept(Box::new((connection, guard)))
    }

    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// How long reads and writes may take.
#[derive(Clone, Copy)]
pub(super) enum Patience {
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

/// What one read did.
pub(super) enum Read {
    /// Less than there was room for: the socket had nothing more.
    Drained,
    /// The buffer filled up: the socket may have more.
    More,
    Closed,
}

pub(super) struct Connection<S> {
    pub(super) stream: S,
    pub(super) remote: SocketAddr,
    /// Counts the connection against the caps while it is open.
    pub(super) admitted: Admitted,
    pub(super) registry: Arc<Registry>,
    pub(super) tls: bool,
    pub(super) session: ServerSession,
    /// Received bytes the session has not taken yet.
    pub(super) input: BytesMut,
    /// The stream ended (or failed) right after a read took bytes: those are processed first,
    /// and the next read reports the end.
    ended: bool,
}

impl<S: Transport> Connection<S> {
    pub(super) fn new(
        stream: S,
        remote: SocketAddr,
        admitted: Admitted,
        registry: Arc<Registry>,
        tls: bool,
    ) -> Self {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let seed = now.map_or(0, |d| d.as_nanos() as u64) ^ ((remote.port() as u64) << 32);
        Connection {
            stream,
            remote,
            admitted,
            registry,
            tls,
            session: ServerSession::new(seed),
            input: BytesMut::new(),
            ended: false,
        }
    }

    /// Runs the connection: setup until `setup_deadline`, then the publish it asks for.
    pub(super) async fn run(mut self, setup_deadline: Instant) {
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
                    let admitted = &mut self.admitted;
                    let key_known = || admitted.authenticated();
                    match self.registry.claim(&request, key_known).await {
                        Ok(guard) => break guard,
                        Err(description) => {
                            self.session
                                .reject_publish("NetStream.Publish.BadName", &description);
                            self.linger().await;
                            return;
                        }
                    }
                }
                SessionEvent::PlayRequested { stream_key } => {
                    return self.play(app, stream_key).await;
                }
                SessionEvent::Media(_) | SessionEvent::Unpublished => {}
            }
        };
        self.publish(guard, app, flash_ver).await;
    }

    /// Runs the session on received bytes until it has an event; reads when it needs more.
    /// `Ok(None)`: the peer closed.
    async fn next_event(
        &mut self,
        patience: Patience,
    ) -> Result<Option<SessionEvent>, DisconnectReason> {
        loop {
            let event = self.session.process(&mut self.input);
            self.flush(patience).await?;
            match event {
                Ok(Some(event)) => return Ok(Some(event)),
                Ok(None) => {}
                Err(e) => return Err(DisconnectReason::protocol_error(e)),
            }
            if let Read::Closed = self.read(patience, None).await? {
                return Ok(None);
            }
        }
    }

    /// Reads what the socket has (waiting for something), unless `consumer` goes away first.
    pub(super) async fn read(
        &mut self,
        patience: Patience,
        consumer: Option<&ConsumerQueue>,
    ) -> Result<Read, DisconnectReason> {
        if self.ended {
            return Ok(Read::Closed);
        }
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
                Err(_) => return Err(DisconnectReason::ReadTimeout),
                Ok(Err(_)) | Ok(Ok(0)) => return Ok(Read::Closed),
                Ok(Ok(n)) => n,
            },
            _ = stopped => return Err(DisconnectReason::Stopped),
        };
        // A short read is not proof of a drained socket: through TLS a read returns one record
        // (16 KiB at most). Take what is ready at once, up to the room there was. A publisher's
        // last frames, its unpublish commands and its close (TLS close_notify or not, then the
        // TCP end) arrive together: bytes taken before the end must still be processed.
        let mut taken = first;
        while taken < room {
            let ready = std::future::ready(());
            let read = self.stream.read_buf(&mut self.input);
            tokio::select! {
                biased;
                read = read => match read {
                    Ok(0) | Err(_) => {
                        self.ended = true;
                        return Ok(Read::Drained);
                    }
                    Ok(n) => taken += n,
                },
                () = ready => return Ok(Read::Drained),
            }
        }
        Ok(Read::More)
    }

    /// Writes what the session has to say.
    pub(super) async fn flush(&mut self, patience: Patience) -> Result<(), DisconnectReason> {
        if self.session.output().is_empty() {
            return Ok(());
        }
        let output = self.session.output().split();
        match timeout_at(patience.deadline(), self.stream.write_all(&output)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(DisconnectReason::Closed),
            Err(_) => Err(DisconnectReason::ReadTimeout),
        }
    }

    /// Sends the session's refusal and lingers (see [`linger`]).
    pub(super) async fn linger(&mut self) {
        let output = self.session.output().split();
        linger(&mut self.stream, output).await;
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
