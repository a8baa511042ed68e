//! `cfsrtsrc`'s element messages and its `stats` structure: the shapes of `cfrtmpsrc`'s, with
//! the caller's stream id and encryption where an RTMP publisher has an app and TLS.

use super::cfrtmpsrc::{disconnected_structure, rejected_structure};
use super::{DisconnectReason, count, field, flag, text};

/// A caller's handshake completed and its stream id was claimed.
#[derive(Clone, Debug, PartialEq)]
pub struct PublisherConnected {
    /// `ip:port` of the caller.
    pub remote_address: String,
    /// The resource of the caller's stream id.
    pub stream_id: String,
    /// The caller's media is AES-encrypted (the input has a passphrase).
    pub encrypted: bool,
    /// This caller continues an earlier one within `idle-timeout`.
    pub reconnect: bool,
}

impl PublisherConnected {
    pub const NAME: &'static str = "cfsrtsrc-publisher-connected";

    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder(Self::NAME)
            .field(field::REMOTE_ADDRESS, &self.remote_address)
            .field(field::STREAM_ID, &self.stream_id)
            .field(field::ENCRYPTED, self.encrypted)
            .field(field::RECONNECT, self.reconnect)
            .build()
    }

    pub fn from_structure(s: &gst::StructureRef) -> PublisherConnected {
        PublisherConnected {
            remote_address: text(s, field::REMOTE_ADDRESS),
            stream_id: text(s, field::STREAM_ID),
            encrypted: flag(s, field::ENCRYPTED),
            reconnect: flag(s, field::RECONNECT),
        }
    }
}

/// The caller left, was cut or refused; `reason` as for `cfrtmpsrc`.
#[derive(Clone, Debug, PartialEq)]
pub struct PublisherDisconnected {
    pub remote_address: String,
    pub reason: DisconnectReason,
}

impl PublisherDisconnected {
    pub const NAME: &'static str = "cfsrtsrc-publisher-disconnected";

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

/// A caller was refused by a rule (codec at the PMT, or its id being live already).
#[derive(Clone, Debug, PartialEq)]
pub struct PublisherRejected {
    pub remote_address: String,
    /// One of [`super::codes`].
    pub code: String,
    pub reason: String,
}

impl PublisherRejected {
    pub const NAME: &'static str = "cfsrtsrc-publisher-rejected";

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
    /// MPEG-TS bytes received.
    pub bytes: u64,
    /// Bits a second of the current caller.
    pub bitrate: u64,
    /// Video access units received.
    pub frames: u64,
    /// `ip:port` of the current caller; empty without one.
    pub publisher_address: String,
    /// RFC 3339 time the current caller connected; empty without one.
    pub connected_since: String,
    /// Packets of the current caller that never arrived (libsrt's receiver loss count).
    pub packets_lost: u64,
    /// Packets of the current caller that arrived too late to play and were dropped.
    pub packets_dropped: u64,
}

impl Stats {
    pub const NAME: &'static str = "cfsrtsrc-stats";

    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder(Self::NAME)
            .field(field::BYTES, self.bytes)
            .field(field::BITRATE, self.bitrate)
            .field(field::FRAMES, self.frames)
            .field(field::PUBLISHER_ADDRESS, &self.publisher_address)
            .field(field::CONNECTED_SINCE, &self.connected_since)
            .field(field::PACKETS_LOST, self.packets_lost)
            .field(field::PACKETS_DROPPED, self.packets_dropped)
            .build()
    }

    pub fn from_structure(s: &gst::StructureRef) -> Stats {
        Stats {
            bytes: count(s, field::BYTES),
            bitrate: count(s, field::BITRATE),
            frames: count(s, field::FRAMES),
            publisher_address: text(s, field::PUBLISHER_ADDRESS),
            connected_since: text(s, field::CONNECTED_SINCE),
            packets_lost: count(s, field::PACKETS_LOST),
            packets_dropped: count(s, field::PACKETS_DROPPED),
        }
    }
}
