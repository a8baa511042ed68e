//! cfstream's GStreamer plugin: `cfrtmpsrc`, `cfsrtsrc`, `gopvalidate` and `cfhlssink`.
//!
//! Protocol and container code without I/O (RTMP, FLV, H.264 bitstream, the publishers'
//! timeline, MPEG-TS program tables) lives in the crate `cfstream-proto`; this crate holds the
//! networking around it (`net`, `rtmp`, `srt`), the HLS writer (`hls`), the names its elements
//! and their users share (`contract`) and the elements, which are thin adapters around those.

use gst::glib;

pub mod contract;
pub mod egress;
pub mod hls;
mod ingest_stats;
pub mod net;
pub mod rtmp;
pub mod runtime;
mod source_wake;
pub mod srt;
pub mod storage;

mod cfhlssink;
mod cfrtmpsrc;
mod cfsrtsrc;
mod gopvalidate;

gst::plugin_define!(
    cfstream,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    cfrtmpsrc::register(plugin)?;
    cfsrtsrc::register(plugin)?;
    gopvalidate::register(plugin)?;
    cfhlssink::register(plugin)?;
    Ok(())
}
