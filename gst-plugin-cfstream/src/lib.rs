//! cfstream's GStreamer plugin: `cfrtmpsrc`, `gopvalidate` and `cfhlssink`.
//!
//! Protocol and container code (RTMP, FLV, H.264 bitstream, MPEG-TS, HLS playlists) lives in plain
//! Rust modules without GStreamer types so that it can be unit-tested and fuzzed on its own; the
//! element modules are thin adapters around them.

use gst::glib;

pub mod flv;
pub mod h264;
pub mod hls;
pub mod rtmp;
pub mod runtime;

mod cfhlssink;
mod cfrtmpsrc;
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
    gopvalidate::register(plugin)?;
    cfhlssink::register(plugin)?;
    Ok(())
}
