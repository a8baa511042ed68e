//! `gopvalidate`: an in-place passthrough that enforces the service's ingest rules: H.264 video,
//! AAC audio, keyframe intervals within [`min-keyframe-interval`, `max-keyframe-interval`] and,
//! with `require-closed-gop`, IDR keyframes only.
//!
//! Every violation posts an element message `gopvalidate-violation` with `code` (string),
//! `reason` (string), `stream-time` (u64 ns: the violating buffer, or the last buffer seen for a
//! caps violation) and, for interval violations, `interval` (f64 s). With `action=error` an
//! element error (`gst::StreamError::Format`) follows whose details structure
//! `gopvalidate-error` carries `code` and `reason`, and the flow stops (not-negotiated for caps);
//! with `action=warn` a warning with the same details is posted and the data passes unchanged.

use gst::glib;
use gst::prelude::*;

mod caps;
mod gop;
mod imp;

/// What a violation does besides the element message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstGopValidateAction")]
pub enum Action {
    #[enum_value(
        name = "Error: post an element error and stop the flow",
        nick = "error"
    )]
    Error = 0,
    #[enum_value(
        name = "Warn: post a warning and let the data pass unchanged",
        nick = "warn"
    )]
    Warn = 1,
}

glib::wrapper! {
    pub struct GopValidate(ObjectSubclass<imp::GopValidate>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    #[cfg(feature = "doc")]
    Action::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "gopvalidate",
        gst::Rank::NONE,
        GopValidate::static_type(),
    )
}
