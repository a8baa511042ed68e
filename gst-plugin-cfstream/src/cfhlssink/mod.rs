//! `cfhlssink`: HLS sink writing MPEG-TS segments, a live window and a recording per broadcast,
//! with discontinuities across publisher reconnects and a retention window. See the cfhlssink
//! section of docs/DESIGN.md for the contract (properties, signal, messages, files).

use gst::glib;
use gst::prelude::*;

mod imp;
mod input;

glib::wrapper! {
    pub struct CfHlsSink(ObjectSubclass<imp::CfHlsSink>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "cfhlssink",
        gst::Rank::NONE,
        CfHlsSink::static_type(),
    )
}
