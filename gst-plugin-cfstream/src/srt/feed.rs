//! A live caller's connection read on its consumer's thread.
//!
//! libsrt's own threads receive, acknowledge, retransmit, decrypt and release packets at their
//! time (TSBPD); what is left is taking the released messages. As for an RTMP publisher
//! (`crate::rtmp::PublisherFeed`), the consumer's streaming thread does it on the batching grid
//! ([`crate::net::grid`]): it sleeps until the next tick, then takes every message queued, so a
//! stream costs the consumer one wake-up per tick. The MPEG-TS program tables are checked on the
//! way ([`cfstream_proto::mpegts`]).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::ffi;
use super::registry::{Entry, LiveGuard};
use super::socket::{Counters, Received, Socket};
use crate::contract::DisconnectReason;
use crate::net::grid;
use crate::net::socket::Interrupt;
use cfstream_proto::mpegts::ProgramScanner;

/// Room for one SRT live message (1456 bytes at most; callers send 1316, 7 TS packets).
const MESSAGE_ROOM: usize = 1500;
/// A batch is handed over early once it holds this much (a caller faster than real time).
const BATCH_BYTES: usize = 1024 * 1024;
/// A connection that breaks after this much silence was cut (libsrt's peer idle timeout, 5 s,
/// ran out), not closed by the caller, who sends until it closes.
const SILENCE_OF_A_CUT: Duration = Duration::from_secs(2);

/// What [`CallerFeed::next`] found.
#[derive(Debug)]
pub enum FeedEvent {
    /// MPEG-TS bytes, whole packets as the caller sent them.
    Media(TsBatch),
    /// The caller is gone.
    Ended(DisconnectReason),
    /// A codec rule refused the caller, whose connection is closed.
    Rejected { code: &'static str, reason: String },
    /// The [`Interrupt`] was raised.
    Interrupted,
}

/// The messages taken on one tick.
#[derive(Debug)]
pub struct TsBatch {
    pub bytes: BytesMut,
    /// Video access units that started in `bytes`.
    pub video_frames: u64,
}

/// An accepted caller's connection; dropping it closes the connection and frees its id.
pub struct CallerFeed {
    socket: Socket,
    remote: SocketAddr,
    stream_id: String,
    guard: LiveGuard,
    /// The id's takeover generation when this caller got it.
    generation: u64,
    scanner: ProgramScanner,
    last_data: Instant,
    /// The last read took everything: the next one waits for the grid.
    drained: bool,
}

impl fmt::Debug for CallerFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallerFeed")
            .field("remote", &self.remote)
            .field("stream_id", &self.stream_id)
            .finish_non_exhaustive()
    }
}

impl CallerFeed {
    pub(super) fn new(
        socket: Socket,
        remote: SocketAddr,
        stream_id: String,
        guard: LiveGuard,
    ) -> io::Result<CallerFeed> {
        socket.set_bool(ffi::SRTO_RCVSYN, false)?;
        let generation = guard.0.generation();
        Ok(CallerFeed {
            socket,
            remote,
            stream_id,
            guard,
            generation,
            scanner: ProgramScanner::new(),
            last_data: Instant::now(),
            drained: false,
        })
    }

    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// The id the caller asked for (the resource of its stream id).
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// Whether the caller's media is encrypted (the input has a passphrase).
    pub fn encrypted(&self) -> bool {
        self.guard.0.options.passphrase.is_some()
    }

    /// libsrt's loss counters of the connection.
    pub fn counters(&self) -> Counters {
        self.socket.counters()
    }

    /// Blocks until the next batch of media, the end of the caller or `interrupt`. Between two
    /// calls the caller is not read: it is held back, not silent.
    pub fn next(&mut self, interrupt: &Interrupt) -> FeedEvent {
        let entry = self.guard.0.clone();
        entry.silence().resume();
        let event = self.read_next(&entry, interrupt);
        entry.silence().hold_back();
        event
    }

    fn read_next(&mut self, entry: &Entry, interrupt: &Interrupt) -> FeedEvent {
        loop {
            if entry.generation() != self.generation {
                return FeedEvent::Ended(DisconnectReason::Replaced);
            }
            if self.drained && interrupt.wait(grid::next_tick(entry.options.read_interval)) {
                return FeedEvent::Interrupted;
            }
            let (bytes, end) = self.take_queued();
            self.drained = bytes.len() < BATCH_BYTES;
            if !bytes.is_empty() {
                self.last_data = Instant::now();
                entry.silence().heard();
                return match self.check(&bytes) {
                    Ok(video_frames) => FeedEvent::Media(TsBatch {
                        bytes,
                        video_frames,
                    }),
                    Err(rejected) => rejected,
                };
            }
            if let Some(reason) = end {
                return FeedEvent::Ended(reason);
            }
            if self.last_data.elapsed() >= entry.options.read_timeout {
                return FeedEvent::Ended(DisconnectReason::ReadTimeout);
            }
        }
    }

    /// The messages queued now (up to [`BATCH_BYTES`]), and the caller's end if it came.
    fn take_queued(&mut self) -> (BytesMut, Option<DisconnectReason>) {
        let mut bytes = BytesMut::new();
        while bytes.len() < BATCH_BYTES {
            let start = bytes.len();
            bytes.resize(start + MESSAGE_ROOM, 0);
            let received = self.socket.receive(&mut bytes[start..]);
            match received {
                Ok(Received::Message(n)) => bytes.truncate(start + n),
                Ok(Received::Empty) => {
                    bytes.truncate(start);
                    // Not connected and nothing queued: broken (timed out) or closed.
                    let end = (!self.socket.is_connected()).then(|| self.ending());
                    return (bytes, end);
                }
                Err(_) => {
                    bytes.truncate(start);
                    return (bytes, Some(self.ending()));
                }
            }
        }
        (bytes, None)
    }

    fn ending(&self) -> DisconnectReason {
        if self.last_data.elapsed() >= SILENCE_OF_A_CUT {
            DisconnectReason::ReadTimeout
        } else {
            DisconnectReason::Closed
        }
    }

    /// The codec rules on the program tables in `bytes`; the video frames they started.
    fn check(&mut self, bytes: &[u8]) -> Result<u64, FeedEvent> {
        match self.scanner.push(bytes) {
            Ok(progress) => Ok(progress.video_frames),
            Err(_) if !self.guard.0.options.enforce_codecs => Ok(0),
            Err(violation) => Err(FeedEvent::Rejected {
                code: violation.code,
                reason: violation.reason,
            }),
        }
    }
}
