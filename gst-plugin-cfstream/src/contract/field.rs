//! Field names of the plugin's message, event and statistics structures. A name used by several
//! structures (`remote-address`, `reason`, `code`, …) is the same field everywhere.

pub const REMOTE_ADDRESS: &str = "remote-address";
pub const APP: &str = "app";
pub const STREAM_ID: &str = "stream-id";
pub const ENCRYPTED: &str = "encrypted";
pub const TLS: &str = "tls";
pub const ENCODER: &str = "encoder";
pub const RECONNECT: &str = "reconnect";
pub const REASON: &str = "reason";
pub const CODE: &str = "code";
pub const GAP: &str = "gap";
pub const STREAM_TIME: &str = "stream-time";
pub const INTERVAL: &str = "interval";
pub const RECORDING: &str = "recording";
pub const DIRECTORY: &str = "directory";
pub const RESUMED: &str = "resumed";
pub const URI: &str = "uri";
pub const DURATION: &str = "duration";
pub const SEQUENCE: &str = "sequence";
pub const DISCONTINUITY: &str = "discontinuity";
pub const SEGMENTS: &str = "segments";

// cfrtmpsrc-stats
pub const BYTES: &str = "bytes";
pub const BITRATE: &str = "bitrate";
pub const FRAMES: &str = "frames";
pub const PUBLISHER_ADDRESS: &str = "publisher-address";
pub const CONNECTED_SINCE: &str = "connected-since";

// cfsrtsrc-stats (besides the above)
pub const PACKETS_LOST: &str = "packets-lost";
pub const PACKETS_DROPPED: &str = "packets-dropped";

// gopvalidate-stats
pub const GOPS: &str = "gops";
pub const LAST_INTERVAL: &str = "last-interval";
pub const MIN_INTERVAL: &str = "min-interval";
pub const MAX_INTERVAL: &str = "max-interval";
pub const B_FRAMES: &str = "b-frames";
pub const IDR_COUNT: &str = "idr-count";
