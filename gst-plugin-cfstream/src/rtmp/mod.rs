//! RTMP ingest networking: shared RTMP(S) listeners that dispatch publishers by `(app, stream
//! key)` to whoever registered the key — `cfrtmpsrc` elements, or the daemon through the
//! unknown-key handler — on top of the sans-IO protocol in [`cfstream_proto::rtmp`].
//!
//! Everything runs on [`crate::runtime::RUNTIME`] (a listener is one accept task, a connection
//! one task; nothing waits on a thread), except a plain-TCP publisher's connection that its
//! consumer reads on its own thread ([`PublisherFeed`]). The pieces, in the order a connection
//! meets them:
//!
//! - `listener`: bind and accept, one listener per address in a process, TLS accept;
//! - `connection`: one connection's reads and writes under timeouts, and its setup (handshake,
//!   connect, publish command) driving [`cfstream_proto::rtmp::session::ServerSession`];
//! - `registry`: the keys registered on a listener, and a publisher's claim of one (unknown-key
//!   handler, waiting for the registration, takeover of a silent publisher);
//! - `publish`: the publish phase on the runtime, handing batches (`batch`) over through the
//!   consumer's bounded `queue` on the batching grid ([`crate::net::grid`]);
//! - `feed`: the publish phase on the consumer's thread;
//! - `play`: the play phase of a player (playback egress), fed by a viewer of an
//!   [`crate::egress::Hub`] that the listener's play handler hands out;
//! - `url`: listen locations.

mod batch;
mod connection;
mod feed;
mod listener;
mod play;
mod publish;
mod queue;
mod registry;
pub mod url;

pub use crate::net::grid::DEFAULT_READ_INTERVAL;
pub use crate::net::tls::TlsFiles;
pub use feed::{FeedEvent, PublisherFeed};
pub use listener::{ListenerConfig, ListenerHandle, listener};
pub use play::{PlayDecision, PlayRequest};
pub use queue::{IngestItem, MediaItem};
pub use registry::{
    AlreadyRegistered, KeyDecision, PublishRequest, Registration, StreamOptions, TAKEOVER_SILENCE,
};

#[cfg(test)]
mod tests;
