//! The server handshake on arbitrary bytes fed in arbitrary pieces: no panic, answers only once
//! and only with S0 S1 S2.
#![no_main]

use bytes::BytesMut;
use cfstream_proto::rtmp::handshake::{HANDSHAKE_SIZE, ServerHandshake};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&piece, data)) = data.split_first() else {
        return;
    };
    let mut handshake = ServerHandshake::new(0);
    let mut input = BytesMut::new();
    let mut output = BytesMut::new();
    for chunk in data.chunks(usize::from(piece).max(1)) {
        input.extend_from_slice(chunk);
        match handshake.process(&mut input, &mut output) {
            Ok(true) | Err(_) => break,
            Ok(false) => {}
        }
    }
    assert!(output.is_empty() || output.len() == 1 + 2 * HANDSHAKE_SIZE);
});
