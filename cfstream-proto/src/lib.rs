//! cfstream's protocol and container code: RTMP (handshake, chunk stream, AMF0, server and
//! client sessions), FLV, MPEG-TS program tables (what SRT callers send), H.264 bitstream
//! inspection, CMAF (codec strings, init segments, fragments and the segmenter that cuts them into
//! parts and segments), the output timeline that carries a stream's timestamps across its
//! publishers, the segment index of a recording and the manifests rendered from it (HLS, LL-HLS,
//! DASH).
//!
//! Like quinn-proto, this crate does no I/O and reads no clock: bytes go in, events and bytes
//! come out, and whatever time a state machine needs is passed in by the caller. The same code
//! therefore runs under tokio in the GStreamer plugin, in unit tests and under cargo-fuzz, and
//! the compiler keeps GStreamer out of it (it is not a dependency).

pub mod cmaf;
pub mod flv;
pub mod h264;
pub mod index;
pub mod mp4file;
pub mod mpegts;
pub mod render;
pub mod rtmp;
pub mod timeline;
