//! RTMP networking: the shared listeners that dispatch publishers to `cfrtmpsrc` elements (or
//! the daemon), on top of the sans-IO protocol in [`cfstream_proto::rtmp`].

mod feed;
pub mod server;
pub mod socket;
pub mod url;
