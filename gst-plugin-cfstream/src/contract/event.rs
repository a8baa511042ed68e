//! Custom serialized downstream events `cfrtmpsrc` pushes between buffers. Both pass
//! `flvdemux`, `gopvalidate`, `h264parse` and `aacparse` (tested in `tests/cfrtmpsrc.rs`); the
//! parsers hold them until their next buffer.

use super::cfrtmpsrc::disconnected_structure;
use super::{DisconnectReason, count, field, text};

/// Pushed before the first buffer of a returning publisher.
#[derive(Clone, Debug, PartialEq)]
pub struct PublisherReconnected {
    /// Running time between the last buffer of the previous publisher and this one's first.
    pub gap: gst::ClockTime,
    pub remote_address: String,
}

impl PublisherReconnected {
    pub const NAME: &'static str = "cfstream-publisher-reconnected";

    pub fn to_event(&self) -> gst::Event {
        let structure = gst::Structure::builder(Self::NAME)
            .field(field::GAP, self.gap.nseconds())
            .field(field::REMOTE_ADDRESS, &self.remote_address)
            .build();
        gst::event::CustomDownstream::new(structure)
    }

    pub fn from_event(event: &gst::EventRef) -> Option<PublisherReconnected> {
        let s = custom_structure(event, Self::NAME)?;
        Some(PublisherReconnected {
            gap: gst::ClockTime::from_nseconds(count(s, field::GAP)),
            remote_address: text(s, field::REMOTE_ADDRESS),
        })
    }

    pub fn is(event: &gst::EventRef) -> bool {
        custom_structure(event, Self::NAME).is_some()
    }
}

/// Pushed when the publisher leaves, whatever the reason, so that a sink can close what it has
/// open at once rather than at the next publisher or EOS (behind a parser, only with the next
/// publisher's data). Not pushed when the element itself stops (its pad is flushing then; the
/// pipeline is going down).
#[derive(Clone, Debug, PartialEq)]
pub struct PublisherDisconnected {
    pub remote_address: String,
    pub reason: DisconnectReason,
}

impl PublisherDisconnected {
    pub const NAME: &'static str = "cfstream-publisher-disconnected";

    pub fn to_event(&self) -> gst::Event {
        let structure = disconnected_structure(Self::NAME, &self.remote_address, &self.reason);
        gst::event::CustomDownstream::new(structure)
    }

    /// `None` for other events, or a `reason` the plugin does not write.
    pub fn from_event(event: &gst::EventRef) -> Option<PublisherDisconnected> {
        let s = custom_structure(event, Self::NAME)?;
        Some(PublisherDisconnected {
            remote_address: text(s, field::REMOTE_ADDRESS),
            reason: DisconnectReason::parse(&text(s, field::REASON))?,
        })
    }

    pub fn is(event: &gst::EventRef) -> bool {
        custom_structure(event, Self::NAME).is_some()
    }
}

/// The structure of a custom downstream event named `name`.
fn custom_structure<'a>(event: &'a gst::EventRef, name: &str) -> Option<&'a gst::StructureRef> {
    match event.view() {
        gst::EventView::CustomDownstream(custom) => custom.structure().filter(|s| s.name() == name),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_back_as_built() {
        gst::init().unwrap();
        let reconnected = PublisherReconnected {
            gap: gst::ClockTime::from_mseconds(1500),
            remote_address: "127.0.0.1:5000".into(),
        };
        let event = reconnected.to_event();
        assert!(event.is_serialized() && event.is_downstream());
        assert_eq!(PublisherReconnected::from_event(&event), Some(reconnected));
        assert!(!PublisherDisconnected::is(&event));

        let disconnected = PublisherDisconnected {
            remote_address: "127.0.0.1:5000".into(),
            reason: DisconnectReason::ReadTimeout,
        };
        let event = disconnected.to_event();
        assert!(event.is_serialized() && event.is_downstream());
        assert_eq!(
            PublisherDisconnected::from_event(&event),
            Some(disconnected)
        );
        assert!(!PublisherReconnected::is(&event));
        assert_eq!(
            PublisherDisconnected::from_event(&gst::event::Eos::new()),
            None
        );
    }
}
