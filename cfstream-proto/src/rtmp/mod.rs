//! RTMP without I/O: handshake, chunk stream, AMF0, the server session of a publisher and the
//! few client-side pieces the load generator and tests publish with.
//!
//! The protocol is written here rather than taken from a crate such as `rml_rtmp` because:
//! every limit that matters against hostile peers (handshake time, message size, chunk streams in
//! use, bytes held per connection, how a chunk size of 2^31 is treated) must be under our control
//! and checked *before* memory is used; the code is sans-IO (bytes in, events and bytes out), so
//! the same state machine runs under tokio, in unit tests and under cargo-fuzz; and a publisher
//! server needs only a small part of RTMP (no AMF3, no RTMPE), which keeps the code short enough
//! to review.

pub mod amf0;
pub mod chunk;
pub mod client;
pub mod handshake;
pub mod session;
