//! `cfsrtsrc`: an SRT listener as a live source. It listens on a UDP port (shared with every
//! other `cfsrtsrc` of the process on the same address), accepts the caller presenting its
//! stream id and passphrase, and outputs the caller's MPEG-TS (`video/mpegts`), so that
//! `cfsrtsrc ! tsdemux` takes the place of `srtsrc mode=listener ! tsdemux` with one port for
//! many inputs.
//!
//! Element messages ([`crate::contract::cfsrtsrc`]): `cfsrtsrc-publisher-connected`,
//! `cfsrtsrc-publisher-disconnected` and `cfsrtsrc-publisher-rejected`. Custom serialized
//! downstream events ([`crate::contract::event`]) as `cfrtmpsrc`'s:
//! `cfstream-publisher-reconnected` before a returning caller's first buffer,
//! `cfstream-publisher-disconnected` after a caller's last.
//!
//! The element is an adapter: the networking is [`crate::srt`]'s (libsrt underneath).

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct CfSrtSrc(ObjectSubclass<imp::CfSrtSrc>)
        @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "cfsrtsrc",
        gst::Rank::NONE,
        CfSrtSrc::static_type(),
    )
}
