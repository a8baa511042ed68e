//! SRT ingest networking: shared SRT listeners (one UDP port for every input) that route a
//! caller by its stream id to whoever registered the id — `cfsrtsrc` elements, or the daemon
//! through the unknown-stream handler — with each input's own AES passphrase, set before the
//! handshake completes. The protocol itself is libsrt's (Debian's libsrt 1.5, the library
//! ffmpeg, OBS, GStreamer and srt-live-transmit use), reached through a small FFI module.
//!
//! The pieces, in the order a caller meets them:
//!
//! - `listener`: bind, the handshake hook (stream id → passphrase, unknown ids refused as a
//!   wrong passphrase is), the accept thread;
//! - `registry`: the ids registered on a listener, and an accepted caller's claim of one
//!   (unknown-stream handler, waiting for the registration, takeover of a silent caller);
//! - `feed`: the caller's MPEG-TS read on the consumer's thread on the batching grid
//!   ([`crate::net::grid`]), its program tables checked ([`cfstream_proto::mpegts`]);
//! - `stream_id`: the caller's stream id (plain, or `#!::r=…,m=…`);
//! - `socket` and `ffi`: libsrt;
//! - `url`: listen locations.
//!
//! - `play`: a caller with a play stream id (playback egress): the playback passphrase is set
//!   at the handshake as for publishers, then the viewer the unknown-stream handler hands out
//!   is sent as MPEG-TS.

mod feed;
mod ffi;
mod listener;
mod play;
mod registry;
mod socket;
pub mod stream_id;
pub mod url;

pub use feed::{CallerFeed, FeedEvent, TsBatch};
pub use listener::{ListenerConfig, ListenerHandle, listener};
pub use registry::{
    AlreadyRegistered, CallerItem, CallerRequest, Lookup, Registration, StreamOptions,
    UnknownStreamHandler,
};
pub use socket::Counters;
