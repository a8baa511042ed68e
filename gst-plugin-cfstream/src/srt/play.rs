//! Sending a viewer's MPEG-TS to an SRT caller that asked to play. Sends never wait: libsrt's
//! send buffer holds what the link has not acknowledged yet, and a caller that lets it fill up
//! is not keeping up with the live stream and is closed (as the hub drops a viewer whose queue
//! falls behind).

use std::time::Duration;

use super::ffi;
use super::socket::Socket;
use crate::egress::{Chunk, Viewer};

/// The payload of one SRT live-mode packet: 7 TS packets (libsrt's default `SRTO_PAYLOADSIZE`).
const MESSAGE_SIZE: usize = 7 * 188;
/// How often a viewer whose input sends nothing is checked for a caller that left.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Sends the viewer's stream until it ends, the caller leaves or falls behind.
pub(super) async fn send(socket: Socket, viewer: Viewer) {
    if socket.set_bool(ffi::SRTO_SNDSYN, false).is_err() {
        return;
    }
    loop {
        let chunk = tokio::select! {
            chunk = viewer.next() => chunk,
            () = tokio::time::sleep(IDLE_CHECK) => {
                if !socket.is_connected() {
                    return;
                }
                continue;
            }
        };
        let Ok(Chunk::Ts(packets)) = chunk else {
            return;
        };
        for message in packets.chunks(MESSAGE_SIZE) {
            if !matches!(socket.send(message), Ok(true)) {
                return;
            }
        }
    }
}
