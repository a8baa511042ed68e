//! Why a publisher's publish ended: built by the listener, posted by `cfrtmpsrc` as the `reason`
//! of `cfrtmpsrc-publisher-disconnected` (and of the `cfstream-publisher-disconnected` event),
//! read back by the daemon.

use std::fmt;

const CLOSED: &str = "closed";
const READ_TIMEOUT: &str = "read-timeout";
const REPLACED: &str = "replaced";
const REJECTED: &str = "rejected";
const PROTOCOL_ERROR: &str = "protocol-error";
const STOPPED: &str = "stopped";

/// The wire text is [`DisconnectReason::kind`], followed by `: <detail>` for a protocol error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The publisher unpublished or closed its connection.
    Closed,
    /// Nothing arrived for `read-timeout` (a network cut), or the server's writes timed out.
    ReadTimeout,
    /// A new publisher of the same key took it over after the old one fell silent.
    Replaced,
    /// A codec rule refused the publisher (`cfrtmpsrc-publisher-rejected` came first).
    Rejected,
    /// The publisher broke the protocol; the text says how.
    ProtocolError(String),
    /// The consumer went away (the element stopped): the server cut the publisher.
    Stopped,
}

impl DisconnectReason {
    /// A protocol error described by `detail`.
    pub fn protocol_error(detail: impl fmt::Display) -> DisconnectReason {
        DisconnectReason::ProtocolError(detail.to_string())
    }

    /// The wire text without a protocol error's detail, e.g. `protocol-error`.
    pub fn kind(&self) -> &'static str {
        match self {
            DisconnectReason::Closed => CLOSED,
            DisconnectReason::ReadTimeout => READ_TIMEOUT,
            DisconnectReason::Replaced => REPLACED,
            DisconnectReason::Rejected => REJECTED,
            DisconnectReason::ProtocolError(_) => PROTOCOL_ERROR,
            DisconnectReason::Stopped => STOPPED,
        }
    }

    /// Reads the wire text; `None` for text no version of the plugin writes.
    pub fn parse(text: &str) -> Option<DisconnectReason> {
        let (kind, detail) = match text.split_once(": ") {
            Some((kind, detail)) => (kind, Some(detail)),
            None => (text, None),
        };
        Some(match (kind, detail) {
            (CLOSED, None) => DisconnectReason::Closed,
            (READ_TIMEOUT, None) => DisconnectReason::ReadTimeout,
            (REPLACED, None) => DisconnectReason::Replaced,
            (REJECTED, None) => DisconnectReason::Rejected,
            (STOPPED, None) => DisconnectReason::Stopped,
            (PROTOCOL_ERROR, detail) => {
                DisconnectReason::ProtocolError(detail.unwrap_or_default().to_owned())
            }
            _ => return None,
        })
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::ProtocolError(detail) => write!(f, "{}: {detail}", self.kind()),
            other => f.write_str(other.kind()),
        }
    }
}

/// One reason of each kind.
#[cfg(test)]
pub(super) fn every_kind() -> [DisconnectReason; 6] {
    [
        DisconnectReason::Closed,
        DisconnectReason::ReadTimeout,
        DisconnectReason::Replaced,
        DisconnectReason::Rejected,
        DisconnectReason::protocol_error("message of 16777215 bytes is larger than the limit"),
        DisconnectReason::Stopped,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_text_reads_back() {
        for reason in every_kind() {
            assert_eq!(DisconnectReason::parse(&reason.to_string()), Some(reason));
        }
        assert_eq!(
            DisconnectReason::protocol_error("bad chunk").to_string(),
            format!("{PROTOCOL_ERROR}: bad chunk")
        );
        assert_eq!(DisconnectReason::parse("gone"), None);
        assert_eq!(DisconnectReason::parse(&format!("{CLOSED}: extra")), None);
    }
}
