//! Error codes the plugin reports (`code` fields, and the description of an RTMP refusal):
//! Cloudflare's names for the stream rules, which the daemon passes on as a live input's
//! `errorCode`.

/// An audio codec other than AAC; defined beside the video one.
pub use cfstream_proto::flv::ERR_UNSUPPORTED_AUDIO_CODEC;
/// A video codec other than H.264/AVC. Defined where the FLV tags are checked
/// (`cfstream-proto`, which cannot depend on the plugin).
pub use cfstream_proto::flv::ERR_UNSUPPORTED_VIDEO_CODEC;

/// Keyframe interval outside the allowed range, or an open GOP (`gopvalidate`).
pub const ERR_GOP_OUT_OF_RANGE: &str = "ERR_GOP_OUT_OF_RANGE";
/// A second publisher for a stream key that is live already (the listener).
pub const ERR_STREAM_KEY_IN_USE: &str = "ERR_STREAM_KEY_IN_USE";
