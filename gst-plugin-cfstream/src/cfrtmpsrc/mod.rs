//! `cfrtmpsrc`: an RTMP/RTMPS server as a live source. It listens (sharing the listener with
//! every other `cfrtmpsrc` of the process on the same address), takes the publisher presenting
//! its stream key and outputs the media as an FLV stream (`video/x-flv`), so that
//! `cfrtmpsrc ! flvdemux` replaces `rtmp2src ! flvdemux`.
//!
//! Element messages ([`crate::contract::cfrtmpsrc`]): `cfrtmpsrc-publisher-connected`,
//! `cfrtmpsrc-publisher-disconnected` (with a [`crate::contract::DisconnectReason`]) and
//! `cfrtmpsrc-publisher-rejected`. Custom serialized downstream events
//! ([`crate::contract::event`]): `cfstream-publisher-reconnected` precedes the first buffer of a
//! returning publisher, `cfstream-publisher-disconnected` follows a publisher's last buffer.
//!
//! The element is an adapter: the networking is [`crate::rtmp`]'s, the timestamps are mapped by
//! [`cfstream_proto::timeline`] and header tags recognised by [`cfstream_proto::flv`].

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
