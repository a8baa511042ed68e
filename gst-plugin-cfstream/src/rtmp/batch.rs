//! Cutting a batch of media out of a publisher's received bytes: the session turns bytes into
//! messages, the codec rules check them, and a batch is handed over whole (see
//! [`crate::net::grid`] for why media travels in batches).

use std::collections::VecDeque;

use bytes::BytesMut;

use crate::contract::DisconnectReason;
use cfstream_proto::flv;
use cfstream_proto::rtmp::session::{MediaMessage, ServerSession, SessionEvent};

/// A batch is handed over early once it holds this many bytes.
pub(super) const BATCH_BYTES: usize = 1024 * 1024;

/// Why a publish ends, found while taking in a batch.
pub(super) enum Ending {
    /// The publisher unpublished.
    Left,
    Reason(DisconnectReason),
    Violation(flv::CodecViolation),
}

/// The media messages complete in `input`, up to [`BATCH_BYTES`], with their size, and why the
/// publish ends if it does.
pub(super) fn take_batch(
    session: &mut ServerSession,
    input: &mut BytesMut,
    enforce_codecs: bool,
) -> (VecDeque<MediaMessage>, usize, Option<Ending>) {
    let mut batch = VecDeque::new();
    let mut bytes = 0;
    loop {
        let message = match session.process(input) {
            Ok(Some(SessionEvent::Media(message))) => message,
            Ok(Some(SessionEvent::Unpublished)) => return (batch, bytes, Some(Ending::Left)),
            Ok(Some(_)) => continue,
            Ok(None) => return (batch, bytes, None),
            Err(e) => {
                let reason = DisconnectReason::protocol_error(e);
                return (batch, bytes, Some(Ending::Reason(reason)));
            }
        };
        if enforce_codecs && let Some(violation) = codec_violation(&message) {
            return (batch, bytes, Some(Ending::Violation(violation)));
        }
        bytes += message.body.len();
        batch.push_back(message);
        if bytes >= BATCH_BYTES {
            return (batch, bytes, None);
        }
    }
}

fn codec_violation(message: &MediaMessage) -> Option<flv::CodecViolation> {
    if message.tag_type == flv::TAG_SCRIPT_DATA {
        let props = flv::metadata(&message.body)?;
        return flv::check_metadata(&props).err();
    }
    flv::check_tag(message.tag_type, &message.body).err()
}

/// The status description of a codec refusal: `<CODE>: <reason>`.
pub(super) fn refusal_description(violation: &flv::CodecViolation) -> String {
    format!("{}: {}", violation.code, violation.reason)
}
