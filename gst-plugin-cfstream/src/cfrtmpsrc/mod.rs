//! `cfrtmpsrc`: an RTMP/RTMPS server as a live source. It listens (sharing the listener with
//! every other `cfrtmpsrc` of the process on the same address), takes the publisher presenting
//! its stream key and outputs the media as an FLV stream (`video/x-flv`), so that
//! `cfrtmpsrc ! flvdemux` replaces `rtmp2src ! flvdemux`.
//!
//! Element messages:
//! - `cfrtmpsrc-publisher-connected`: `remote-address`, `app`, `tls`, `encoder`, `reconnect`.
//! - `cfrtmpsrc-publisher-disconnected`: `remote-address`, `reason` (`closed`, `read-timeout`,
//!   `rejected`, `protocol-error: …`, `stopped`).
//! - `cfrtmpsrc-publisher-rejected`: `remote-address`, `reason`, `code`
//!   (`ERR_UNSUPPORTED_VIDEO_CODEC`, `ERR_UNSUPPORTED_AUDIO_CODEC`, `ERR_STREAM_KEY_IN_USE`).
//!
//! Downstream custom serialized event `cfstream-publisher-reconnected` (`gap` u64 ns,
//! `remote-address` string) precedes the first buffer of a returning publisher.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct CfRtmpSrc(ObjectSubclass<imp::CfRtmpSrc>)
        @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "cfrtmpsrc",
        gst::Rank::NONE,
        CfRtmpSrc::static_type(),
    )
}
