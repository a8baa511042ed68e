//! The RTMP "simple" handshake: C0 C1 → S0 S1 S2 → C2.
//!
//! S1 carries a zero version field, which tells digest-aware clients (ffmpeg, OBS/librtmp,
//! GStreamer's rtmp2) that the server does not use the Flash Player digest scheme; S2 echoes C1.
//! C2 is read but not checked: digest-aware clients do not echo S1 in it.

use bytes::{Buf, BufMut, BytesMut};

/// Size of C1/C2/S1/S2.
pub const HANDSHAKE_SIZE: usize = 1536;
/// The only RTMP version there is (C0/S0); 6 would be RTMPE, which is not supported.
pub const RTMP_VERSION: u8 = 3;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HandshakeError {
    #[error("not an RTMP client: handshake version byte is 0x{0:02x}, expected 0x03")]
    UnsupportedVersion(u8),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    AwaitingC0C1,
    AwaitingC2,
    Done,
}

/// Server side of the handshake (sans-IO: bytes in, bytes out).
#[derive(Debug)]
pub struct ServerHandshake {
    state: State,
    seed: u64,
}

impl ServerHandshake {
    /// `seed` fills S1's random part; it needs no cryptographic quality.
    pub fn new(seed: u64) -> Self {
        ServerHandshake {
            state: State::AwaitingC0C1,
            seed,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes handshake bytes from `input`, appends S0 S1 S2 to `output` once C0 C1 are in.
    /// Returns true when the handshake is complete; the rest of `input` is chunk stream.
    pub fn process(
        &mut self,
        input: &mut BytesMut,
        output: &mut BytesMut,
    ) -> Result<bool, HandshakeError> {
        if self.state == State::AwaitingC0C1 {
            // Reject garbage on its first byte instead of waiting for 1537 of them.
            match input.first() {
                None => return Ok(false),
                Some(&RTMP_VERSION) => {}
                Some(&other) => return Err(HandshakeError::UnsupportedVersion(other)),
            }
            if input.len() < 1 + HANDSHAKE_SIZE {
                return Ok(false);
            }
            input.advance(1);
            let c1 = input.split_to(HANDSHAKE_SIZE);
            output.reserve(1 + 2 * HANDSHAKE_SIZE);
            output.put_u8(RTMP_VERSION);
            put_random_block(output, self.seed);
            output.put_slice(&c1);
            self.state = State::AwaitingC2;
        }
        if self.state == State::AwaitingC2 {
            if input.len() < HANDSHAKE_SIZE {
                return Ok(false);
            }
            input.advance(HANDSHAKE_SIZE);
            self.state = State::Done;
        }
        Ok(true)
    }
}

/// A C1/S1 block: time (4 bytes), zero version (4 bytes), 1528 filler bytes.
fn put_random_block(output: &mut BytesMut, seed: u64) {
    output.put_u32(0);
    output.put_u32(0);
    let mut x = seed | 1;
    for _ in 0..(HANDSHAKE_SIZE - 8) / 8 {
        // xorshift64: cheap filler, the protocol only needs the bytes to vary.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        output.put_u64(x);
    }
}

/// Client side, for tests and tools: C0 and C1.
pub fn client_c0c1(seed: u64) -> BytesMut {
    let mut out = BytesMut::with_capacity(1 + HANDSHAKE_SIZE);
    out.put_u8(RTMP_VERSION);
    put_random_block(&mut out, seed);
    out
}

/// Client side: given S0 S1 S2 (3073 bytes), the C2 to send (S1 echoed).
pub fn client_c2(s0s1s2: &[u8]) -> Result<BytesMut, HandshakeError> {
    match s0s1s2.first() {
        Some(&RTMP_VERSION) => {}
        other => return Err(HandshakeError::UnsupportedVersion(*other.unwrap_or(&0))),
    }
    let s1 = s0s1s2
        .get(1..1 + HANDSHAKE_SIZE)
        .ok_or(HandshakeError::UnsupportedVersion(0))?;
    Ok(BytesMut::from(s1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_c0c1_and_echoes_c1_in_s2() {
        let mut server = ServerHandshake::new(42);
        let c0c1 = client_c0c1(7);
        let mut input = BytesMut::new();
        let mut output = BytesMut::new();
        // Byte by byte: nothing is answered before C1 is complete.
        for (i, b) in c0c1.iter().enumerate() {
            input.put_u8(*b);
            assert!(!server.process(&mut input, &mut output).unwrap());
            assert_eq!(output.is_empty(), i < c0c1.len() - 1);
        }
        assert_eq!(output.len(), 1 + 2 * HANDSHAKE_SIZE);
        assert_eq!(&output[1 + HANDSHAKE_SIZE..], &c0c1[1..]);
        let c2 = client_c2(&output).unwrap();
        input.extend_from_slice(&c2);
        input.extend_from_slice(b"rest");
        assert!(server.process(&mut input, &mut output).unwrap());
        assert!(server.is_done());
        assert_eq!(&input[..], b"rest");
    }

    #[test]
    fn rejects_garbage_on_first_byte() {
        let mut server = ServerHandshake::new(1);
        let mut input = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        assert_eq!(
            server.process(&mut input, &mut BytesMut::new()),
            Err(HandshakeError::UnsupportedVersion(b'G'))
        );
    }
}
