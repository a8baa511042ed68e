//! What the plugin's elements and their users (the daemon, pipeline authors) agree on: the
//! element messages, custom events and statistics structures with their fields, the error codes
//! and the disconnect reasons. Every name is defined once, here; `docs/DESIGN.md` describes the
//! same contract for people.
//!
//! Each structure is a type with its `NAME`, `to_structure` (or `to_event`), which the element
//! uses, and `from_structure` (or `from_event`), which readers use. Readers are lenient as the
//! daemon always was: a missing field reads as empty, 0 or false. The element and its readers are
//! built from the same crate, so the two sides cannot disagree on names.

pub mod cfhlssink;
pub mod cfrtmpsrc;
pub mod cfsrtsrc;
pub mod codes;
mod disconnect;
pub mod event;
pub mod field;
pub mod gopvalidate;

pub use disconnect::DisconnectReason;

/// An element message of the plugin, as read from a bus message's structure.
#[derive(Clone, Debug, PartialEq)]
pub enum ElementMessage {
    PublisherConnected(cfrtmpsrc::PublisherConnected),
    PublisherDisconnected(cfrtmpsrc::PublisherDisconnected),
    PublisherRejected(cfrtmpsrc::PublisherRejected),
    SrtPublisherConnected(cfsrtsrc::PublisherConnected),
    SrtPublisherDisconnected(cfsrtsrc::PublisherDisconnected),
    SrtPublisherRejected(cfsrtsrc::PublisherRejected),
    GopViolation(gopvalidate::Violation),
    RecordingStarted(cfhlssink::RecordingStarted),
    SegmentAdded(cfhlssink::SegmentAdded),
    RecordingFinished(cfhlssink::RecordingFinished),
}

impl ElementMessage {
    /// `None` for structures that are none of the plugin's messages.
    pub fn parse(s: &gst::StructureRef) -> Option<ElementMessage> {
        use ElementMessage::*;
        Some(match s.name().as_str() {
            cfrtmpsrc::PublisherConnected::NAME => {
                PublisherConnected(cfrtmpsrc::PublisherConnected::from_structure(s))
            }
            cfrtmpsrc::PublisherDisconnected::NAME => {
                PublisherDisconnected(cfrtmpsrc::PublisherDisconnected::from_structure(s)?)
            }
            cfrtmpsrc::PublisherRejected::NAME => {
                PublisherRejected(cfrtmpsrc::PublisherRejected::from_structure(s))
            }
            cfsrtsrc::PublisherConnected::NAME => {
                SrtPublisherConnected(cfsrtsrc::PublisherConnected::from_structure(s))
            }
            cfsrtsrc::PublisherDisconnected::NAME => {
                SrtPublisherDisconnected(cfsrtsrc::PublisherDisconnected::from_structure(s)?)
            }
            cfsrtsrc::PublisherRejected::NAME => {
                SrtPublisherRejected(cfsrtsrc::PublisherRejected::from_structure(s))
            }
            gopvalidate::Violation::NAME => GopViolation(gopvalidate::Violation::from_structure(s)),
            cfhlssink::RecordingStarted::NAME => {
                RecordingStarted(cfhlssink::RecordingStarted::from_structure(s))
            }
            cfhlssink::SegmentAdded::NAME => {
                SegmentAdded(cfhlssink::SegmentAdded::from_structure(s))
            }
            cfhlssink::RecordingFinished::NAME => {
                RecordingFinished(cfhlssink::RecordingFinished::from_structure(s))
            }
            _ => return None,
        })
    }
}

/// A string field; empty when absent.
fn text(s: &gst::StructureRef, field: &str) -> String {
    s.get::<String>(field).unwrap_or_default()
}

/// A boolean field; false when absent.
fn flag(s: &gst::StructureRef, field: &str) -> bool {
    s.get::<bool>(field).unwrap_or(false)
}

/// A u64 field; 0 when absent.
fn count(s: &gst::StructureRef, field: &str) -> u64 {
    s.get::<u64>(field).unwrap_or(0)
}

/// An f64 field; 0 when absent.
fn seconds(s: &gst::StructureRef, field: &str) -> f64 {
    s.get::<f64>(field).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_back_as_built() {
        gst::init().unwrap();
        let messages = [
            ElementMessage::PublisherConnected(cfrtmpsrc::PublisherConnected {
                remote_address: "127.0.0.1:5000".into(),
                app: "live".into(),
                tls: true,
                encoder: "FMLE/3.0".into(),
                reconnect: true,
            }),
            ElementMessage::PublisherDisconnected(cfrtmpsrc::PublisherDisconnected {
                remote_address: "127.0.0.1:5000".into(),
                reason: DisconnectReason::protocol_error("bad chunk"),
            }),
            ElementMessage::PublisherRejected(cfrtmpsrc::PublisherRejected {
                remote_address: "127.0.0.1:5000".into(),
                code: codes::ERR_STREAM_KEY_IN_USE.into(),
                reason: "stream key already in use".into(),
            }),
            ElementMessage::SrtPublisherConnected(cfsrtsrc::PublisherConnected {
                remote_address: "127.0.0.1:5000".into(),
                stream_id: "f256e6ea9341d51eea64c9454659e576".into(),
                encrypted: true,
                reconnect: false,
            }),
            ElementMessage::SrtPublisherDisconnected(cfsrtsrc::PublisherDisconnected {
                remote_address: "127.0.0.1:5000".into(),
                reason: DisconnectReason::ReadTimeout,
            }),
            ElementMessage::SrtPublisherRejected(cfsrtsrc::PublisherRejected {
                remote_address: "127.0.0.1:5000".into(),
                code: codes::ERR_UNSUPPORTED_VIDEO_CODEC.into(),
                reason: "video codec HEVC is not supported: send H.264".into(),
            }),
            ElementMessage::GopViolation(gopvalidate::Violation {
                code: codes::ERR_GOP_OUT_OF_RANGE.into(),
                reason: "no keyframe for 10.067 s".into(),
                stream_time: 12_000_000_000,
                interval: Some(10.067),
            }),
            ElementMessage::RecordingStarted(cfhlssink::RecordingStarted {
                recording: "v1".into(),
                directory: "/media/i/v1".into(),
                resumed: false,
            }),
            ElementMessage::SegmentAdded(cfhlssink::SegmentAdded {
                recording: "v1".into(),
                uri: "seg-00000003.ts".into(),
                duration: 4_000_000_000,
                stream_time: 12_000_000_000,
                sequence: 3,
                discontinuity: true,
            }),
            ElementMessage::RecordingFinished(cfhlssink::RecordingFinished {
                recording: "v1".into(),
                directory: "/media/i/v1".into(),
                duration: 16_000_000_000,
                segments: 4,
            }),
        ];
        for message in messages {
            let structure = match &message {
                ElementMessage::PublisherConnected(m) => m.to_structure(),
                ElementMessage::PublisherDisconnected(m) => m.to_structure(),
                ElementMessage::PublisherRejected(m) => m.to_structure(),
                ElementMessage::SrtPublisherConnected(m) => m.to_structure(),
                ElementMessage::SrtPublisherDisconnected(m) => m.to_structure(),
                ElementMessage::SrtPublisherRejected(m) => m.to_structure(),
                ElementMessage::GopViolation(m) => m.to_structure(),
                ElementMessage::RecordingStarted(m) => m.to_structure(),
                ElementMessage::SegmentAdded(m) => m.to_structure(),
                ElementMessage::RecordingFinished(m) => m.to_structure(),
            };
            assert_eq!(ElementMessage::parse(&structure), Some(message));
        }
        let other = gst::Structure::new_empty(cfrtmpsrc::Stats::NAME);
        assert_eq!(ElementMessage::parse(&other), None);
    }

    #[test]
    fn every_name_is_documented_in_design_md() {
        let design = include_str!("../../../docs/DESIGN.md");
        let structures = [
            cfrtmpsrc::PublisherConnected::NAME,
            cfrtmpsrc::PublisherDisconnected::NAME,
            cfrtmpsrc::PublisherRejected::NAME,
            cfrtmpsrc::Stats::NAME,
            cfsrtsrc::PublisherConnected::NAME,
            cfsrtsrc::PublisherDisconnected::NAME,
            cfsrtsrc::PublisherRejected::NAME,
            cfsrtsrc::Stats::NAME,
            event::PublisherReconnected::NAME,
            event::PublisherDisconnected::NAME,
            gopvalidate::Violation::NAME,
            gopvalidate::ErrorDetails::NAME,
            gopvalidate::Stats::NAME,
            cfhlssink::RecordingStarted::NAME,
            cfhlssink::SegmentAdded::NAME,
            cfhlssink::RecordingFinished::NAME,
        ];
        let fields = [
            field::REMOTE_ADDRESS,
            field::APP,
            field::STREAM_ID,
            field::ENCRYPTED,
            field::TLS,
            field::ENCODER,
            field::RECONNECT,
            field::REASON,
            field::CODE,
            field::GAP,
            field::STREAM_TIME,
            field::INTERVAL,
            field::RECORDING,
            field::DIRECTORY,
            field::RESUMED,
            field::URI,
            field::DURATION,
            field::SEQUENCE,
            field::DISCONTINUITY,
            field::SEGMENTS,
            field::BYTES,
            field::BITRATE,
            field::FRAMES,
            field::PUBLISHER_ADDRESS,
            field::CONNECTED_SINCE,
            field::PACKETS_LOST,
            field::PACKETS_DROPPED,
            field::GOPS,
            field::LAST_INTERVAL,
            field::MIN_INTERVAL,
            field::MAX_INTERVAL,
            field::B_FRAMES,
            field::IDR_COUNT,
        ];
        let codes = [
            codes::ERR_UNSUPPORTED_VIDEO_CODEC,
            codes::ERR_UNSUPPORTED_AUDIO_CODEC,
            codes::ERR_GOP_OUT_OF_RANGE,
            codes::ERR_STREAM_KEY_IN_USE,
        ];
        let reasons = disconnect::every_kind();
        let reasons = reasons.iter().map(DisconnectReason::kind);
        for name in structures
            .into_iter()
            .chain(fields)
            .chain(codes)
            .chain(reasons)
        {
            // `protocol-error: <detail>` names its kind with a detail after it.
            let documented =
                design.contains(&format!("`{name}`")) || design.contains(&format!("`{name}: "));
            assert!(documented, "`{name}` is not described in docs/DESIGN.md");
        }
    }

    #[test]
    fn missing_fields_read_as_defaults() {
        gst::init().unwrap();
        let bare = gst::Structure::new_empty(cfrtmpsrc::PublisherConnected::NAME);
        let Some(ElementMessage::PublisherConnected(connected)) = ElementMessage::parse(&bare)
        else {
            panic!("not read")
        };
        assert_eq!(connected.app, "");
        assert!(!connected.tls && !connected.reconnect);
        // A disconnect without a reason the plugin writes is no disconnect message of ours.
        let unknown = gst::Structure::builder(cfrtmpsrc::PublisherDisconnected::NAME)
            .field(field::REASON, "gone")
            .build();
        assert_eq!(ElementMessage::parse(&unknown), None);
    }
}
