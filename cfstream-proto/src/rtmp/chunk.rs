//! The RTMP chunk stream: messages cut into chunks of `chunk size` bytes, interleaved on chunk
//! stream ids, with compressed headers (fmt 0–3) and extended timestamps.
//!
//! The reader is incremental: it takes whatever bytes have arrived, never waits for a whole chunk
//! and never allocates according to a length it has not yet received. Limits (message size,
//! chunk streams in use, bytes held in unfinished messages) are checked before memory is used.

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Chunk size both sides start with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest chunk size on the wire (the top bit of Set Chunk Size must be zero).
pub const MAX_CHUNK_SIZE: u32 = 0x7fff_ffff;
/// A timestamp field of this value means "extended timestamp follows".
const EXTENDED_TIMESTAMP: u32 = 0xff_ffff;

/// Protocol control and media message type ids.
pub mod message_type {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACKNOWLEDGEMENT: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const COMMAND_AMF0: u8 = 20;
}

/// One complete RTMP message.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub chunk_stream_id: u32,
    /// Milliseconds, as reconstructed from the chunk headers.
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Bytes,
}

/// What a reader accepts from its peer.
#[derive(Clone, Copy, Debug)]
pub struct ReaderLimits {
    /// Largest message accepted (the wire allows 16 MiB − 1).
    pub max_message_size: usize,
    /// Chunk stream ids a peer may use (each keeps a header).
    pub max_chunk_streams: usize,
    /// Bytes held in all unfinished messages together.
    pub max_buffered_bytes: usize,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ChunkError {
    #[error("chunk stream {0} uses a compressed header before any full header")]
    UnknownChunkStream(u32),
    #[error("chunk stream {0} starts a new message before finishing the previous one")]
    InterleavedHeader(u32),
    #[error("message of {size} bytes is larger than the limit of {limit} bytes")]
    MessageTooLarge { size: u32, limit: usize },
    #[error("peer uses more than {0} chunk streams")]
    TooManyChunkStreams(usize),
    #[error("more than {0} bytes held in unfinished messages")]
    TooMuchBuffered(usize),
    #[error("invalid chunk size {0}: must be between 1 and 2147483647")]
    InvalidChunkSize(u32),
}

#[derive(Debug, Default)]
struct ChunkStream {
    timestamp: u32,
    /// The last timestamp field: a delta, or the absolute value after a fmt 0 header (fmt 3
    /// headers that start a message add it again, as ffmpeg and librtmp do).
    timestamp_field: u32,
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// Payload received so far of the message in progress, if any.
    partial: Option<BytesMut>,
}

/// Incremental chunk stream reader.
#[derive(Debug)]
pub struct ChunkReader {
    chunk_size: u32,
    limits: ReaderLimits,
    streams: HashMap<u32, ChunkStream>,
    buffered: usize,
    /// Chunk stream id and payload bytes still due of the chunk being read.
    in_chunk: Option<(u32, usize)>,
}

impl ChunkReader {
    pub fn new(limits: ReaderLimits) -> Self {
        ChunkReader {
            chunk_size: DEFAULT_CHUNK_SIZE,
            limits,
            streams: HashMap::new(),
            buffered: 0,
            in_chunk: None,
        }
    }

    pub fn set_limits(&mut self, limits: ReaderLimits) {
        self.limits = limits;
    }

    /// Applies the peer's Set Chunk Size.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(ChunkError::InvalidChunkSize(size));
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Drops the unfinished message of a chunk stream (Abort message).
    pub fn abort(&mut self, chunk_stream_id: u32) {
        if let Some(partial) = self
            .streams
            .get_mut(&chunk_stream_id)
            .and_then(|s| s.partial.take())
        {
            self.buffered -= partial.len();
            if matches!(self.in_chunk, Some((id, _)) if id == chunk_stream_id) {
                self.in_chunk = None;
            }
        }
    }

    /// Bytes held in unfinished messages.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Consumes bytes from `input` until a message is complete (returned) or `input` is used up
    /// (`None`; a partial chunk header stays in `input`).
    pub fn read_message(&mut self, input: &mut BytesMut) -> Result<Option<Message>, ChunkError> {
        loop {
            let (id, due) = match self.in_chunk {
                Some(current) => current,
                None => match self.read_header(input)? {
                    Some(HeaderOutcome::Chunk(id, due)) => (id, due),
                    Some(HeaderOutcome::EmptyMessage(message)) => return Ok(Some(message)),
                    None => return Ok(None),
                },
            };
            let take = due.min(input.len());
            if take == 0 {
                self.in_chunk = Some((id, due));
                return Ok(None);
            }
            if self.buffered + take > self.limits.max_buffered_bytes {
                return Err(ChunkError::TooMuchBuffered(self.limits.max_buffered_bytes));
            }
            let stream = self.streams.get_mut(&id).expect("stream of current chunk");
            let partial = stream.partial.as_mut().expect("message of current chunk");
            partial.extend_from_slice(&input[..take]);
            input.advance(take);
            self.buffered += take;
            let due = due - take;
            self.in_chunk = (due > 0).then_some((id, due));
            if due == 0 && partial.len() == stream.length as usize {
                let payload = stream.partial.take().expect("checked above").freeze();
                self.buffered -= payload.len();
                return Ok(Some(Message {
                    chunk_stream_id: id,
                    timestamp: stream.timestamp,
                    type_id: stream.type_id,
                    stream_id: stream.stream_id,
                    payload,
                }));
            }
        }
    }

    fn read_header(&mut self, input: &mut BytesMut) -> Result<Option<HeaderOutcome>, ChunkError> {
        let Some(&first) = input.first() else {
            return Ok(None);
        };
        let fmt = first >> 6;
        let (id, basic_len) = match first & 0x3f {
            0 => match input.get(1) {
                Some(&b) => (64 + b as u32, 2),
                None => return Ok(None),
            },
            1 => match (input.get(1), input.get(2)) {
                (Some(&lo), Some(&hi)) => (64 + lo as u32 + 256 * hi as u32, 3),
                _ => return Ok(None),
            },
            id => (id as u32, 1),
        };
        let message_header_len = [11, 7, 3, 0][fmt as usize];
        if !self.streams.contains_key(&id) {
            if fmt != 0 {
                return Err(ChunkError::UnknownChunkStream(id));
            }
            if self.streams.len() >= self.limits.max_chunk_streams {
                return Err(ChunkError::TooManyChunkStreams(
                    self.limits.max_chunk_streams,
                ));
            }
        }
        let header = &input[basic_len.min(input.len())..];
        if header.len() < message_header_len {
            return Ok(None);
        }
        let field = |i: usize| u32::from_be_bytes([0, header[i], header[i + 1], header[i + 2]]);
        let continuing = self.streams.get(&id).is_some_and(|s| s.partial.is_some());
        if fmt != 3 && continuing {
            return Err(ChunkError::InterleavedHeader(id));
        }
        let previous_extended = self.streams.get(&id).is_some_and(|s| s.extended);
        let timestamp_field = (fmt != 3).then(|| field(0));
        let extended = match timestamp_field {
            Some(value) => value == EXTENDED_TIMESTAMP,
            None => previous_extended,
        };
        let total_len = basic_len + message_header_len + if extended { 4 } else { 0 };
        if input.len() < total_len {
            return Ok(None);
        }
        let extended_value = extended.then(|| {
            let at = basic_len + message_header_len;
            u32::from_be_bytes([input[at], input[at + 1], input[at + 2], input[at + 3]])
        });
        let header = &input[basic_len..];
        let length = (fmt <= 1).then(|| field(3));
        if let Some(length) = length
            && length as usize > self.limits.max_message_size
        {
            return Err(ChunkError::MessageTooLarge {
                size: length,
                limit: self.limits.max_message_size,
            });
        }
        let type_id = (fmt <= 1).then(|| header[6]);
        let stream_id =
            (fmt == 0).then(|| u32::from_le_bytes([header[7], header[8], header[9], header[10]]));

        let stream = self.streams.entry(id).or_default();
        if let Some(field) = timestamp_field {
            stream.extended = extended;
            stream.timestamp_field = extended_value.unwrap_or(field);
        }
        if !continuing {
            stream.timestamp = if fmt == 0 {
                stream.timestamp_field
            } else {
                stream.timestamp.wrapping_add(stream.timestamp_field)
            };
            if let Some(length) = length {
                stream.length = length;
            }
            if let Some(type_id) = type_id {
                stream.type_id = type_id;
            }
            if let Some(stream_id) = stream_id {
                stream.stream_id = stream_id;
            }
        }
        input.advance(total_len);
        if !continuing && stream.length == 0 {
            return Ok(Some(HeaderOutcome::EmptyMessage(Message {
                chunk_stream_id: id,
                timestamp: stream.timestamp,
                type_id: stream.type_id,
                stream_id: stream.stream_id,
                payload: Bytes::new(),
            })));
        }
        let received = stream.partial.get_or_insert_with(BytesMut::new).len();
        let due = (stream.length as usize - received).min(self.chunk_size as usize);
        Ok(Some(HeaderOutcome::Chunk(id, due)))
    }
}

enum HeaderOutcome {
    Chunk(u32, usize),
    EmptyMessage(Message),
}

/// Chunk stream writer: fmt 0 for the first chunk of every message, fmt 3 for the rest.
#[derive(Debug)]
pub struct ChunkWriter {
    chunk_size: u32,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        ChunkWriter {
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

impl ChunkWriter {
    /// Changes the size of the following chunks; send Set Chunk Size to the peer first.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, MAX_CHUNK_SIZE);
    }

    pub fn write(
        &self,
        out: &mut BytesMut,
        chunk_stream_id: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
    ) {
        let extended = timestamp >= EXTENDED_TIMESTAMP;
        let mut chunks = payload.chunks(self.chunk_size as usize);
        put_basic_header(out, 0, chunk_stream_id);
        put_u24(out, timestamp.min(EXTENDED_TIMESTAMP));
        put_u24(out, payload.len() as u32);
        out.put_u8(type_id);
        out.put_u32_le(stream_id);
        if extended {
            out.put_u32(timestamp);
        }
        out.put_slice(chunks.next().unwrap_or_default());
        for chunk in chunks {
            put_basic_header(out, 3, chunk_stream_id);
            if extended {
                out.put_u32(timestamp);
            }
            out.put_slice(chunk);
        }
    }
}

fn put_u24(out: &mut BytesMut, value: u32) {
    out.put_slice(&value.to_be_bytes()[1..]);
}

fn put_basic_header(out: &mut BytesMut, fmt: u8, id: u32) {
    match id {
        2..=63 => out.put_u8(fmt << 6 | id as u8),
        64..=319 => {
            out.put_u8(fmt << 6);
            out.put_u8((id - 64) as u8);
        }
        _ => {
            let id = id.min(65599) - 64;
            out.put_u8(fmt << 6 | 1);
            out.put_u16_le(id as u16);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ReaderLimits = ReaderLimits {
        max_message_size: 1 << 20,
        max_chunk_streams: 8,
        max_buffered_bytes: 2 << 20,
    };

    fn read_all(reader: &mut ChunkReader, bytes: &[u8]) -> Vec<Message> {
        let mut input = BytesMut::new();
        let mut messages = vec![];
        // One byte at a time: every split point of every header and payload is exercised.
        for b in bytes {
            input.put_u8(*b);
            while let Some(m) = reader.read_message(&mut input).unwrap() {
                messages.push(m);
            }
        }
        assert!(input.is_empty());
        messages
    }

    #[test]
    fn round_trips_multi_chunk_messages_and_extended_timestamps() {
        let mut writer = ChunkWriter::default();
        let mut out = BytesMut::new();
        let big: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        writer.write(&mut out, 6, 40, message_type::VIDEO, 1, &big);
        writer.write(
            &mut out,
            300,
            0x0100_0000,
            message_type::AUDIO,
            1,
            &big[..300],
        );
        writer.set_chunk_size(4096);
        writer.write(&mut out, 4, 7, message_type::DATA_AMF0, 1, b"");
        writer.write(&mut out, 70, 8, message_type::COMMAND_AMF0, 0, &big);

        let mut reader = ChunkReader::new(LIMITS);
        let mut input = BytesMut::from(&out[..]);
        let first = reader.read_message(&mut input).unwrap().unwrap();
        assert_eq!((first.timestamp, first.payload.len()), (40, 1000));
        assert_eq!(first.payload, big);
        let second = reader.read_message(&mut input).unwrap().unwrap();
        assert_eq!(
            (second.chunk_stream_id, second.timestamp),
            (300, 0x0100_0000)
        );
        reader.set_chunk_size(4096).unwrap();
        let rest = read_all(&mut reader, &input);
        assert_eq!(rest.len(), 2);
        assert_eq!((rest[0].type_id, rest[0].payload.len()), (18, 0));
        assert_eq!((rest[1].chunk_stream_id, rest[1].payload.len()), (70, 1000));
        assert_eq!(reader.buffered_bytes(), 0);
    }

    #[test]
    fn applies_timestamp_deltas_of_compressed_headers() {
        // fmt 0 at ts 100 (len 1), fmt 2 delta 20, fmt 3 (delta 20 again).
        let bytes = [
            0x04, 0, 0, 100, 0, 0, 1, 8, 1, 0, 0, 0, 0xaa, // fmt 0
            0x84, 0, 0, 20, 0xbb, // fmt 2
            0xc4, 0xcc, // fmt 3
        ];
        let messages = read_all(&mut ChunkReader::new(LIMITS), &bytes);
        let stamps: Vec<u32> = messages.iter().map(|m| m.timestamp).collect();
        assert_eq!(stamps, [100, 120, 140]);
    }

    #[test]
    fn enforces_limits_before_buffering() {
        let mut reader = ChunkReader::new(LIMITS);
        // A 16 MiB − 1 message is refused from its header alone.
        let mut input = BytesMut::from(&[0x04, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0][..]);
        assert!(matches!(
            reader.read_message(&mut input),
            Err(ChunkError::MessageTooLarge {
                size: 0xff_ffff,
                ..
            })
        ));
        let mut reader = ChunkReader::new(LIMITS);
        let mut input = BytesMut::from(&[0x45, 0, 0, 0, 0, 0, 1, 9][..]);
        assert_eq!(
            reader.read_message(&mut input),
            Err(ChunkError::UnknownChunkStream(5))
        );
        assert_eq!(
            reader.set_chunk_size(0x8000_0000),
            Err(ChunkError::InvalidChunkSize(0x8000_0000))
        );
        assert_eq!(
            reader.set_chunk_size(0),
            Err(ChunkError::InvalidChunkSize(0))
        );
        // Many chunk streams each starting a message: refused past the limit.
        let mut reader = ChunkReader::new(LIMITS);
        let mut input = BytesMut::new();
        for id in 3..20u8 {
            // 200-byte messages: the first 128-byte chunk leaves each of them unfinished.
            input.extend_from_slice(&[id, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0]);
            input.extend_from_slice(&[0; 128]);
        }
        let mut result = Ok(None);
        while !input.is_empty() && result.is_ok() {
            result = reader.read_message(&mut input);
        }
        assert_eq!(result, Err(ChunkError::TooManyChunkStreams(8)));
    }

    #[test]
    fn abort_drops_the_partial_message() {
        let mut reader = ChunkReader::new(LIMITS);
        let mut input = BytesMut::from(&[0x04, 0, 0, 0, 0, 1, 0, 9, 1, 0, 0, 0, 1, 2, 3][..]);
        assert_eq!(reader.read_message(&mut input), Ok(None));
        assert_eq!(reader.buffered_bytes(), 3);
        reader.abort(4);
        assert_eq!(reader.buffered_bytes(), 0);
    }
}
