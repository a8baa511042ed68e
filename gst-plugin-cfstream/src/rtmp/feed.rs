//! A live publisher's connection read on its consumer's thread.
//!
//! `cfrtmpsrc`'s streaming thread does a live stream's work anyway (demuxing, checking,
//! writing HLS). When it also reads the socket, a message needs neither a wake-up of the
//! runtime nor a hand-over between threads, and with it the inter-processor wake-up that makes
//! a hand-over expensive. The thread sleeps until the next tick of the batching grid
//! ([`crate::net::grid`], the same for every feed) and then takes everything queued on the
//! socket, unless a fast publisher fills the socket past its low-water mark first. Everything
//! else about a connection (accept, TLS, handshake, connect and publish commands, refusals)
//! stays on the runtime.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Buf, BytesMut};

use super::batch::{Ending, refusal_description, take_batch};
use super::connection::{PUBLISH_READ_SIZE, linger};
use super::queue::MediaItem;
use super::registry::LiveGuard;
use crate::contract::DisconnectReason;
use crate::net::admission::Admitted;
use crate::net::grid;
use crate::net::socket::{self, Interrupt};
use crate::runtime::RUNTIME;
use cfstream_proto::rtmp::session::ServerSession;

/// A live publisher's socket wakes its consumer's thread before the next tick of the grid only
/// once this much is queued (a publisher faster than real time).
const PUBLISH_LOW_WATER: usize = 256 * 1024;
/// Session output (acknowledgements, pings) a publisher may leave unread before it is cut.
const MAX_PENDING_OUTPUT: usize = 64 * 1024;

/// What [`PublisherFeed::next`] found.
#[derive(Debug)]
pub enum FeedEvent {
    Media(MediaItem),
    /// The publish is over; the reason as in `IngestItem::PublisherDisconnected`.
    Ended(DisconnectReason),
    /// A codec rule refused the publisher, which was told; the publish is over.
    Rejected {
        code: &'static str,
        reason: String,
    },
    /// The [`Interrupt`] was raised.
    Interrupted,
}

/// An accepted publisher's connection; dropping it cuts the publisher and frees its key.
pub struct PublisherFeed {
    socket: std::net::TcpStream,
    session: ServerSession,
    input: BytesMut,
    output: BytesMut,
    remote: SocketAddr,
    guard: LiveGuard,
    /// Counts the connection against the caps while it is open.
    _admitted: Admitted,
    /// The key's takeover generation when this publisher got it.
    generation: u64,
    last_data: Instant,
    /// The last read took all there was: the next one waits for the grid.
    drained: bool,
    /// Found with a batch, reported on the next call.
    ending: Option<FeedEvent>,
}

impl fmt::Debug for PublisherFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublisherFeed")
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl PublisherFeed {
    pub(super) fn new(
        socket: tokio::net::TcpStream,
        session: ServerSession,
        input: BytesMut,
        remote: SocketAddr,
        guard: LiveGuard,
        admitted: Admitted,
    ) -> io::Result<PublisherFeed> {
        // Leaves the runtime's poller: from here on only the consumer's thread looks at it.
        let socket = socket.into_std()?;
        // Best effort: without it a fast publisher is read at each tick only.
        let _ = socket::set_receive_low_water(&socket, PUBLISH_LOW_WATER);
        let generation = guard.0.generation();
        Ok(PublisherFeed {
            socket,
            session,
            input,
            output: BytesMut::new(),
            remote,
            guard,
            _admitted: admitted,
            generation,
            last_data: Instant::now(),
            drained: false,
            ending: None,
        })
    }

    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Blocks until the next batch of media, the end of the publish or `interrupt`. Between two
    /// calls the publisher is not read: it is held back, not silent (see
    /// [`super::TAKEOVER_SILENCE`]).
    pub fn next(&mut self, interrupt: &Interrupt) -> FeedEvent {
        let entry = self.guard.0.clone();
        entry.silence().resume();
        let event = self.read_next(interrupt);
        entry.silence().hold_back();
        event
    }

    fn read_next(&mut self, interrupt: &Interrupt) -> FeedEvent {
        if let Some(ending) = self.ending.take() {
            return ending;
        }
        // The publish reply, on the first call.
        if let Err(reason) = self.write_output() {
            return FeedEvent::Ended(reason);
        }
        let entry = self.guard.0.clone();
        loop {
            if entry.generation() != self.generation {
                return FeedEvent::Ended(DisconnectReason::Replaced);
            }
            if self.drained
                && socket::wait_readable(
                    &self.socket,
                    interrupt,
                    grid::next_tick(entry.options.read_interval),
                )
            {
                return FeedEvent::Interrupted;
            }
            match socket::read_queued(&self.socket, &mut self.input, PUBLISH_READ_SIZE) {
                Ok(0) => return FeedEvent::Ended(DisconnectReason::Closed),
                Ok(n) => {
                    self.last_data = Instant::now();
                    self.drained = n < PUBLISH_READ_SIZE;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.last_data.elapsed() >= entry.options.read_timeout {
                        return FeedEvent::Ended(DisconnectReason::ReadTimeout);
                    }
                    self.drained = true;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return FeedEvent::Ended(DisconnectReason::Closed),
            }
            let (batch, _, end) = take_batch(
                &mut self.session,
                &mut self.input,
                entry.options.enforce_codecs,
            );
            let end = match end {
                None => self.write_output().err().map(FeedEvent::Ended),
                Some(Ending::Left) => Some(FeedEvent::Ended(DisconnectReason::Closed)),
                Some(Ending::Reason(reason)) => Some(FeedEvent::Ended(reason)),
                Some(Ending::Violation(violation)) => {
                    self.session.reject_publish(
                        "NetStream.Publish.Rejected",
                        &refusal_description(&violation),
                    );
                    self.linger_on_runtime();
                    Some(FeedEvent::Rejected {
                        code: violation.code,
                        reason: violation.reason,
                    })
                }
            };
            if batch.is_empty() {
                if let Some(end) = end {
                    return end;
                }
                continue;
            }
            entry.silence().heard();
            self.ending = end;
            return FeedEvent::Media(MediaItem::unqueued(batch));
        }
    }

    /// Writes what the session has to say without blocking; `Err`: the disconnect reason.
    fn write_output(&mut self) -> Result<(), DisconnectReason> {
        if !self.session.output().is_empty() {
            self.output
                .extend_from_slice(&self.session.output().split());
        }
        while !self.output.is_empty() {
            match (&self.socket).write(&self.output) {
                Ok(0) => return Err(DisconnectReason::Closed),
                Ok(n) => self.output.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(DisconnectReason::Closed),
            }
        }
        if self.output.len() > MAX_PENDING_OUTPUT {
            return Err(DisconnectReason::protocol_error(
                "the publisher does not read what the server sends",
            ));
        }
        Ok(())
    }

    /// Lets the refused publisher read why, on a duplicate of the socket, while the feed ends.
    fn linger_on_runtime(&mut self) {
        let mut output = std::mem::take(&mut self.output);
        output.extend_from_slice(&self.session.output().split());
        let Ok(socket) = self.socket.try_clone() else {
            return;
        };
        let _ = socket::set_receive_low_water(&socket, 1);
        RUNTIME.spawn(async move {
            if let Ok(mut stream) = tokio::net::TcpStream::from_std(socket) {
                linger(&mut stream, output).await;
            }
        });
    }
}
