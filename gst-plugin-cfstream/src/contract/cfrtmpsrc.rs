//! `cfrtmpsrc`'s element messages and its `stats` structure.

use super::{DisconnectReason, count, field, flag, text};

/// A publisher's publish was accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct PublisherConnected {
    /// `ip:port` of the publisher.
    pub remote_address: String,
    pub app: String,
    pub tls: bool,
    /// The connect command's `flashVer` (e.g. `FMLE/3.0 (compatible; Lavf61.1.100)`).
    pub encoder: String,
    /// This publisher continues an earlier one within `idle-timeout`.
    pub reconnect: bool,
}

impl PublisherConnected {
    pub const NAME: &'static str = "cfrtmpsrc-publisher-connected";

    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder(Self::NAME)
            .field(field::REMOTE_ADDRESS, &self.remote_address)
            .field(field::APP, &self.app)
            .field(field::TLS, self.tls)
            .field(field::ENCODER, &self.encoder)
            .field(field::RECONNECT, self.reconnect)
            .build()
    }

    pub fn from_structure(s: &gst::StructureRef) -> PublisherConnected {
        PublisherConnected {
            remote_address: text(s, field::REMOTE_ADDRESS),
            app: text(s, field::APP),
            tls: flag(s, field::TLS),
            encoder: text(s, field::ENCODER),
            reconnect: flag(s, field::RECONNECT),
        }
    }
}

/// The publisher's publish ended.
#[derive(Clone, Debug, PartialEq)]
pub struct PublisherDisconnected {
    pub remote_address: String,
    pub reason: DisconnectReason,
}

impl PublisherDisconnected {
    pub const NAME: &'static str = "cfrtmpsrc-publisher-disconnected";

    pub fn to_structure(&self) -> gst::Structure {
        disconnected_structure(Self::NAME, &self.remote_address, &self.reason)
    }

    /// `None` when `reason` is not one the plugin writes.
    pub fn from_structure(s: &gst::StructureRef) -> Option<PublisherDisconnected> {
        Some(PublisherDisconnected {
            remote_address: text(s, field::REMOTE_ADDRESS),
            reason: DisconnectReason::parse(&text(s, field::REASON))?,
        })
    }
}

/// The structure of a disconnect, message or event.
pub(super) fn disconnected_structure(
    name: &str,
    remote_address: &str,
    reason: &DisconnectReason,
) -> gst::Structure {
    gst::Structure::builder(name)
        .field(field::REMOTE_ADDRESS, remote_address)
        .field(field::REASON, reason.to_string())
        .build()
}

/// The structure of a refusal.
pub(super) fn rejected_structure(
    name: &str,
    remote_address: &str,
    code: &str,
    reason: &str,
) -> gst::Structure {
    gst::Structure::builder(name)
        .field(field::REMOTE_ADDRESS, remote_address)
        .field(field::REASON, reason)
        .field(field::CODE, code)
        .build()
}

/// A publisher was refused by a rule (codec, or its key being live already).
#[derive(Clone, Debug, PartialEq)]
pub struct PublisherRejected {
    pub remote_address: String,
    /// One of [`super::codes`].
    pub code: String,
    /// A sentence naming what was wrong.
    pub reason: String,
}

impl PublisherRejected {
    pub const NAME: &'static str = "cfrtmpsrc-publisher-rejected";

    pub fn to_structure(&self) -> gst::Structure {
        rejected_structure(Self::NAME, &self.remote_address, &self.code, &self.reason)
    }

    pub fn from_structure(s: &gst::StructureRef) -> PublisherRejected {
        PublisherRejected {
            remote_address: text(s, field::REMOTE_ADDRESS),
            code: text(s, field::CODE),
            reason: text(s, field::REASON),
        }
    }
}

/// The read-only `stats` property.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Media bytes received.
    pub bytes: u64,
    /// Bits a second of the current publisher.
    pub bitrate: u64,
    /// Video frames received.
    pub frames: u64,
    /// `ip:port` of the current publisher; empty without one.
    pub publisher_address: String,
    /// RFC 3339 time the current publisher connected; empty without one.
    pub connected_since: String,
}

impl Stats {
    pub const NAME: &'static str = "cfrtmpsrc-stats";

    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder(Self::NAME)
            .field(field::BYTES, self.bytes)
            .field(field::BITRATE, self.bitrate)
            .field(field::FRAMES, self.frames)
            .field(field::PUBLISHER_ADDRESS, &self.publisher_address)
            .field(field::CONNECTED_SINCE, &self.connected_since)
            .build()
    }

    pub fn from_structure(s: &gst::StructureRef) -> Stats {
        Stats {
            bytes: count(s, field::BYTES),
            bitrate: count(s, field::BITRATE),
            frames: count(s, field::FRAMES),
            publisher_address: text(s, field::PUBLISHER_ADDRESS),
            connected_since: text(s, field::CONNECTED_SINCE),
        }
    }
}
