//! A whole server session (handshake, chunk stream, AMF0 commands, publish) on arbitrary bytes
//! fed in arbitrary pieces: no panic, and the bytes held stay within the publish limits.
#![no_main]

use bytes::BytesMut;
use cfstream_proto::rtmp::session::{PUBLISH_LIMITS, ServerSession, SessionEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&piece, data)) = data.split_first() else {
        return;
    };
    let mut session = ServerSession::new(0);
    let mut input = BytesMut::new();
    for chunk in data.chunks(usize::from(piece).max(1) * 16) {
        input.extend_from_slice(chunk);
        loop {
            match session.process(&mut input) {
                Ok(Some(SessionEvent::PublishRequested { .. })) => session.accept_publish(),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
            assert!(session.buffered_bytes() <= PUBLISH_LIMITS.max_buffered_bytes);
        }
        session.output().clear();
    }
});
