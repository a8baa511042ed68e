//! Server side of an RTMP connection: handshake, protocol control, the commands of a publish
//! (connect, releaseStream, FCPublish, createStream, publish, FCUnpublish, deleteStream) and
//! their replies, then media messages; or the commands of a play (connect, createStream, play)
//! after which the server sends media ([`ServerSession::send_media`]).
//!
//! Sans-IO: [`ServerSession::process`] takes the bytes that arrived and yields events; replies
//! accumulate in [`ServerSession::output`] for the caller to send. Whether a publish or a play is
//! allowed is the caller's decision ([`ServerSession::accept_publish`] /
//! [`ServerSession::accept_play`] / [`ServerSession::reject_publish`]).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::amf0::{self, Amf0Error, Value};
use super::chunk::{ChunkError, ChunkReader, ChunkWriter, Message, ReaderLimits, message_type};
use super::handshake::{HandshakeError, ServerHandshake};

/// Until a publish is accepted only small command messages are expected: an unauthenticated
/// peer can make the server hold at most a few hundred KiB.
pub const SETUP_LIMITS: ReaderLimits = ReaderLimits {
    max_message_size: 64 * 1024,
    max_chunk_streams: 8,
    max_buffered_bytes: 256 * 1024,
};

/// Limits for an accepted publisher: an 8 MiB message is an 8 MiB keyframe, far above what a
/// live encoder sends (a 20 Mbps 4K IDR frame is about 2 MiB); the wire allows 16 MiB − 1.
pub const PUBLISH_LIMITS: ReaderLimits = ReaderLimits {
    max_message_size: 8 * 1024 * 1024,
    max_chunk_streams: 16,
    max_buffered_bytes: 12 * 1024 * 1024,
};

/// Chunk size of everything the server sends after connect.
const SERVER_CHUNK_SIZE: u32 = 4096;
/// Acknowledgement window announced to the peer, and its peer bandwidth.
const WINDOW_ACK_SIZE: u32 = 2_500_000;
/// Chunk stream ids for the server's messages.
const CONTROL_CHUNK_STREAM: u32 = 2;
const COMMAND_CHUNK_STREAM: u32 = 3;
const STATUS_CHUNK_STREAM: u32 = 5;
/// Chunk streams of the media a player receives: one per kind, as FMS and nginx-rtmp do.
const VIDEO_CHUNK_STREAM: u32 = 6;
const AUDIO_CHUNK_STREAM: u32 = 7;
const DATA_CHUNK_STREAM: u32 = 8;
/// The message stream id handed out by createStream.
const PUBLISH_STREAM_ID: u32 = 1;

/// User control event types.
const USER_CONTROL_STREAM_BEGIN: u16 = 0;
const USER_CONTROL_PING_REQUEST: u16 = 6;
const USER_CONTROL_PING_RESPONSE: u16 = 7;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error("bad AMF0 in {context}: {source}")]
    Amf0 {
        context: &'static str,
        source: Amf0Error,
    },
    #[error("{0}")]
    Protocol(String),
}

/// An FLV-shaped media message of the publisher: audio, video or script data.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaMessage {
    /// FLV tag type: 8 audio, 9 video, 18 script data.
    pub tag_type: u8,
    /// Milliseconds.
    pub timestamp: u32,
    /// The FLV tag body (for script data without the `@setDataFrame` wrapper).
    pub body: Bytes,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SessionEvent {
    /// `connect` was answered.
    Connected {
        app: String,
        flash_ver: String,
        tc_url: String,
    },
    /// The peer asks to publish; answer with `accept_publish` or `reject_publish`.
    PublishRequested {
        stream_key: String,
    },
    Media(MediaMessage),
    /// FCUnpublish / deleteStream / closeStream: the publisher ends the broadcast (or the
    /// player stops playing).
    Unpublished,
    /// The peer asks to play `stream_key`; answer with `accept_play` or `reject_publish`.
    PlayRequested {
        stream_key: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Handshake,
    AwaitingConnect,
    Connected,
    PublishRequested,
    Publishing,
    PlayRequested,
    Playing,
    Finished,
}

pub struct ServerSession {
    phase: Phase,
    handshake: ServerHandshake,
    reader: ChunkReader,
    writer: ChunkWriter,
    output: BytesMut,
    publish_transaction: f64,
    publish_stream_id: u32,
    stream_key: String,
    received: u64,
    acknowledged: u64,
    peer_window: u32,
}

impl ServerSession {
    /// `seed` varies the handshake's random bytes.
    pub fn new(seed: u64) -> Self {
        ServerSession {
            phase: Phase::Handshake,
            handshake: ServerHandshake::new(seed),
            reader: ChunkReader::new(SETUP_LIMITS),
            writer: ChunkWriter::default(),
            output: BytesMut::new(),
            publish_transaction: 0.0,
            publish_stream_id: PUBLISH_STREAM_ID,
            stream_key: String::new(),
            received: 0,
            acknowledged: 0,
            peer_window: 0,
        }
    }

    /// Bytes to send to the peer; the caller takes them (e.g. with `split()`).
    pub fn output(&mut self) -> &mut BytesMut {
        &mut self.output
    }

    pub fn is_publishing(&self) -> bool {
        self.phase == Phase::Publishing
    }

    pub fn is_playing(&self) -> bool {
        self.phase == Phase::Playing
    }

    /// Bytes held in unfinished messages.
    pub fn buffered_bytes(&self) -> usize {
        self.reader.buffered_bytes()
    }

    /// Consumes bytes from `input` until an event happens or `input` is used up.
    pub fn process(&mut self, input: &mut BytesMut) -> Result<Option<SessionEvent>, SessionError> {
        if self.phase == Phase::Handshake {
            if !self.handshake.process(input, &mut self.output)? {
                return Ok(None);
            }
            self.phase = Phase::AwaitingConnect;
        }
        loop {
            if matches!(
                self.phase,
                Phase::PublishRequested | Phase::PlayRequested | Phase::Finished
            ) {
                return Ok(None);
            }
            let before = input.len();
            let message = self.reader.read_message(input)?;
            self.count_received((before - input.len()) as u64);
            let Some(message) = message else {
                return Ok(None);
            };
            if let Some(event) = self.handle_message(message)? {
                return Ok(Some(event));
            }
        }
    }

    /// Lets the requested publish start (NetStream.Publish.Start).
    pub fn accept_publish(&mut self) {
        if self.phase != Phase::PublishRequested {
            return;
        }
        self.send_stream_begin();
        let description = format!("Publishing {}.", self.stream_key);
        self.send_status("status", "NetStream.Publish.Start", &description);
        self.reader.set_limits(PUBLISH_LIMITS);
        self.phase = Phase::Publishing;
    }

    /// Lets the requested play start: Stream Begin, NetStream.Play.Reset and
    /// NetStream.Play.Start; media follows with [`ServerSession::send_media`].
    pub fn accept_play(&mut self) {
        if self.phase != Phase::PlayRequested {
            return;
        }
        self.send_stream_begin();
        let description = format!("Playing {}.", self.stream_key);
        self.send_status("status", "NetStream.Play.Reset", &description);
        self.send_status("status", "NetStream.Play.Start", &description);
        self.phase = Phase::Playing;
    }

    /// Sends one FLV-shaped media message to a player: `tag_type` 8 audio, 9 video, 18 script
    /// data (an `onMetaData` tag body), at `timestamp` milliseconds. Ignored unless playing.
    pub fn send_media(&mut self, tag_type: u8, timestamp: u32, body: &[u8]) {
        if self.phase != Phase::Playing {
            return;
        }
        let chunk_stream = match tag_type {
            message_type::VIDEO => VIDEO_CHUNK_STREAM,
            message_type::AUDIO => AUDIO_CHUNK_STREAM,
            message_type::DATA_AMF0 => DATA_CHUNK_STREAM,
            _ => return,
        };
        self.writer.write(
            &mut self.output,
            chunk_stream,
            timestamp,
            tag_type,
            self.publish_stream_id,
            body,
        );
    }

    /// Refuses the publish or play (or ends an accepted one) with an error status; the caller
    /// sends the output and closes the connection.
    pub fn reject_publish(&mut self, code: &str, description: &str) {
        if matches!(
            self.phase,
            Phase::PublishRequested | Phase::Publishing | Phase::PlayRequested | Phase::Playing
        ) {
            self.send_status("error", code, description);
        }
        self.phase = Phase::Finished;
    }

    /// User Control Stream Begin for the requested stream.
    fn send_stream_begin(&mut self) {
        let mut event = BytesMut::new();
        event.put_u16(USER_CONTROL_STREAM_BEGIN);
        event.put_u32(self.publish_stream_id);
        self.send(CONTROL_CHUNK_STREAM, message_type::USER_CONTROL, 0, &event);
    }

    /// Takes the stream name of a publish or play command (`values[3]`) and the message stream
    /// it came on; returns the key.
    fn take_stream_request(&mut self, values: &[Value], stream_id: u32) -> String {
        let raw_key = values.get(3).and_then(Value::as_str).unwrap_or_default();
        // Query parameters some encoders append (`key?param=…`) are not part of the key.
        let stream_key = raw_key.split('?').next().unwrap_or_default().to_string();
        self.publish_stream_id = if stream_id == 0 {
            PUBLISH_STREAM_ID
        } else {
            stream_id
        };
        self.stream_key = stream_key.clone();
        stream_key
    }

    fn count_received(&mut self, bytes: u64) {
        self.received += bytes;
        if self.peer_window > 0 && self.received - self.acknowledged >= self.peer_window as u64 {
            self.acknowledged = self.received;
            // The sequence number wraps at 32 bits by definition.
            let sequence = (self.received as u32).to_be_bytes();
            self.send(
                CONTROL_CHUNK_STREAM,
                message_type::ACKNOWLEDGEMENT,
                0,
                &sequence,
            );
        }
    }

    fn send(&mut self, chunk_stream_id: u32, type_id: u8, stream_id: u32, payload: &[u8]) {
        self.writer.write(
            &mut self.output,
            chunk_stream_id,
            0,
            type_id,
            stream_id,
            payload,
        );
    }

    fn send_command(&mut self, chunk_stream_id: u32, stream_id: u32, values: &[Value]) {
        let payload = amf0::encode_all(values);
        self.send(
            chunk_stream_id,
            message_type::COMMAND_AMF0,
            stream_id,
            &payload,
        );
    }

    fn send_status(&mut self, level: &str, code: &str, description: &str) {
        let info = amf0::object(&[
            ("level", level.into()),
            ("code", code.into()),
            ("description", description.into()),
        ]);
        let values = ["onStatus".into(), Value::Number(0.0), Value::Null, info];
        self.send_command(STATUS_CHUNK_STREAM, self.publish_stream_id, &values);
    }

    fn handle_message(&mut self, message: Message) -> Result<Option<SessionEvent>, SessionError> {
        let payload = &message.payload[..];
        match message.type_id {
            message_type::SET_CHUNK_SIZE => {
                self.reader
                    .set_chunk_size(read_u32(payload, "Set Chunk Size")?)?;
            }
            message_type::ABORT => {
                self.reader.abort(read_u32(payload, "Abort")?);
            }
            message_type::WINDOW_ACK_SIZE => {
                self.peer_window = read_u32(payload, "Window Acknowledgement Size")?;
            }
            message_type::USER_CONTROL
                if payload.len() >= 6
                    && u16::from_be_bytes([payload[0], payload[1]])
                        == USER_CONTROL_PING_REQUEST =>
            {
                let mut response = BytesMut::new();
                response.put_u16(USER_CONTROL_PING_RESPONSE);
                response.put_slice(&payload[2..6]);
                self.send(
                    CONTROL_CHUNK_STREAM,
                    message_type::USER_CONTROL,
                    0,
                    &response,
                );
            }
            message_type::AUDIO | message_type::VIDEO if self.is_publishing() => {
                return Ok(Some(SessionEvent::Media(MediaMessage {
                    tag_type: message.type_id,
                    timestamp: message.timestamp,
                    body: message.payload,
                })));
            }
            message_type::DATA_AMF0 if self.is_publishing() => {
                return Ok(Some(SessionEvent::Media(MediaMessage {
                    tag_type: message_type::DATA_AMF0,
                    timestamp: message.timestamp,
                    body: strip_set_data_frame(message.payload),
                })));
            }
            message_type::COMMAND_AMF0 => return self.handle_command(payload, message.stream_id),
            // AMF3 commands are AMF0 behind a format byte.
            message_type::COMMAND_AMF3 if !payload.is_empty() => {
                return self.handle_command(&payload[1..], message.stream_id);
            }
            // Acknowledgements, peer bandwidth, AMF3 data, media outside a publish: not needed.
            _ => {}
        }
        Ok(None)
    }

    fn handle_command(
        &mut self,
        payload: &[u8],
        stream_id: u32,
    ) -> Result<Option<SessionEvent>, SessionError> {
        let values = amf0::decode_all(payload).map_err(|source| SessionError::Amf0 {
            context: "command",
            source,
        })?;
        let name = values.first().and_then(Value::as_str).unwrap_or_default();
        let transaction = values.get(1).and_then(Value::as_number).unwrap_or(0.0);
        match name {
            "connect" => {
                if self.phase != Phase::AwaitingConnect {
                    return Err(SessionError::Protocol("connect sent twice".into()));
                }
                let object = values.get(2).unwrap_or(&Value::Null);
                let text = |key| {
                    object
                        .property(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let app = text("app").trim_matches('/').to_string();
                self.answer_connect(transaction);
                self.phase = Phase::Connected;
                Ok(Some(SessionEvent::Connected {
                    app,
                    flash_ver: text("flashVer"),
                    tc_url: text("tcUrl"),
                }))
            }
            "createStream" => {
                self.require_connected(name)?;
                let values = [
                    "_result".into(),
                    Value::Number(transaction),
                    Value::Null,
                    Value::Number(PUBLISH_STREAM_ID as f64),
                ];
                self.send_command(COMMAND_CHUNK_STREAM, 0, &values);
                Ok(None)
            }
            "publish" => {
                self.require_connected(name)?;
                if self.phase != Phase::Connected {
                    return Err(SessionError::Protocol("publish sent twice".into()));
                }
                self.publish_transaction = transaction;
                let stream_key = self.take_stream_request(&values, stream_id);
                self.phase = Phase::PublishRequested;
                Ok(Some(SessionEvent::PublishRequested { stream_key }))
            }
            "FCUnpublish" | "deleteStream" | "closeStream"
                if self.is_publishing() || self.is_playing() =>
            {
                self.phase = Phase::Finished;
                Ok(Some(SessionEvent::Unpublished))
            }
            "play" => {
                self.require_connected(name)?;
                if self.phase != Phase::Connected {
                    return Err(SessionError::Protocol("play after publish or play".into()));
                }
                let stream_key = self.take_stream_request(&values, stream_id);
                self.phase = Phase::PlayRequested;
                Ok(Some(SessionEvent::PlayRequested { stream_key }))
            }
            "play2" => Err(SessionError::Protocol(
                "play2 (stream switching) is not supported: send play".into(),
            )),
            // releaseStream and FCPublish need no answer (clients do not wait for one); other
            // commands are not part of publishing.
            _ => Ok(None),
        }
    }

    fn require_connected(&self, command: &str) -> Result<(), SessionError> {
        if self.phase == Phase::AwaitingConnect {
            return Err(SessionError::Protocol(format!("{command} before connect")));
        }
        Ok(())
    }

    fn answer_connect(&mut self, transaction: f64) {
        self.send(
            CONTROL_CHUNK_STREAM,
            message_type::WINDOW_ACK_SIZE,
            0,
            &WINDOW_ACK_SIZE.to_be_bytes(),
        );
        let mut bandwidth = BytesMut::new();
        bandwidth.put_u32(WINDOW_ACK_SIZE);
        bandwidth.put_u8(2); // dynamic limit type
        self.send(
            CONTROL_CHUNK_STREAM,
            message_type::SET_PEER_BANDWIDTH,
            0,
            &bandwidth,
        );
        self.send(
            CONTROL_CHUNK_STREAM,
            message_type::SET_CHUNK_SIZE,
            0,
            &SERVER_CHUNK_SIZE.to_be_bytes(),
        );
        self.writer.set_chunk_size(SERVER_CHUNK_SIZE);
        let values = [
            "_result".into(),
            Value::Number(transaction),
            amf0::object(&[
                ("fmsVer", "FMS/3,0,1,123".into()),
                ("capabilities", Value::Number(31.0)),
            ]),
            amf0::object(&[
                ("level", "status".into()),
                ("code", "NetConnection.Connect.Success".into()),
                ("description", "Connection succeeded.".into()),
                ("objectEncoding", Value::Number(0.0)),
            ]),
        ];
        self.send_command(COMMAND_CHUNK_STREAM, 0, &values);
    }
}

fn read_u32(payload: &[u8], what: &str) -> Result<u32, SessionError> {
    let mut bytes = payload;
    if bytes.len() < 4 {
        return Err(SessionError::Protocol(format!(
            "{what} message of {} bytes, expected 4",
            payload.len()
        )));
    }
    Ok(bytes.get_u32())
}

/// `@setDataFrame` wraps the script data that belongs into the FLV; remove the wrapper.
fn strip_set_data_frame(payload: Bytes) -> Bytes {
    let mut rest = &payload[..];
    match amf0::decode(&mut rest) {
        Ok(Value::String(name)) if name == "@setDataFrame" => {
            let consumed = payload.len() - rest.len();
            payload.slice(consumed..)
        }
        _ => payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::handshake;

    fn command(writer: &ChunkWriter, out: &mut BytesMut, stream_id: u32, values: &[Value]) {
        let payload = amf0::encode_all(values);
        writer.write(out, 3, 0, message_type::COMMAND_AMF0, stream_id, &payload);
    }

    /// Reads every message the server sent after the handshake.
    fn server_messages(output: &mut BytesMut, reader: &mut ChunkReader) -> Vec<Message> {
        let mut messages = vec![];
        while let Some(m) = reader.read_message(output).unwrap() {
            if m.type_id == message_type::SET_CHUNK_SIZE {
                reader
                    .set_chunk_size(u32::from_be_bytes(m.payload[..4].try_into().unwrap()))
                    .unwrap();
            }
            messages.push(m);
        }
        messages
    }

    fn status_code(message: &Message) -> String {
        let values = amf0::decode_all(&message.payload).unwrap();
        values[3]
            .property("code")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A session past the handshake, and the client's input after its C2.
    fn handshaken_session() -> (ServerSession, BytesMut) {
        let mut session = ServerSession::new(1);
        let mut input = handshake::client_c0c1(2);
        assert_eq!(session.process(&mut input).unwrap(), None);
        let s0s1s2 = session.output().split();
        input.extend_from_slice(&handshake::client_c2(&s0s1s2).unwrap());
        (session, input)
    }

    /// Handshake, connect, createStream, publish "key": returns the session awaiting a decision.
    fn publishing_session() -> (ServerSession, BytesMut, ChunkReader) {
        let (mut session, mut input) = handshaken_session();
        let writer = ChunkWriter::default();
        let connect = amf0::object(&[
            ("app", "live".into()),
            ("flashVer", "FMLE/3.0 (compatible; test)".into()),
        ]);
        command(
            &writer,
            &mut input,
            0,
            &["connect".into(), 1.0.into(), connect],
        );
        command(
            &writer,
            &mut input,
            0,
            &[
                "releaseStream".into(),
                2.0.into(),
                Value::Null,
                "key".into(),
            ],
        );
        command(
            &writer,
            &mut input,
            0,
            &["createStream".into(), 3.0.into(), Value::Null],
        );
        command(
            &writer,
            &mut input,
            1,
            &[
                "publish".into(),
                4.0.into(),
                Value::Null,
                "key?x=1".into(),
                "live".into(),
            ],
        );
        let event = session.process(&mut input).unwrap();
        assert_eq!(
            event,
            Some(SessionEvent::Connected {
                app: "live".into(),
                flash_ver: "FMLE/3.0 (compatible; test)".into(),
                tc_url: String::new()
            })
        );
        let event = session.process(&mut input).unwrap();
        assert_eq!(
            event,
            Some(SessionEvent::PublishRequested {
                stream_key: "key".into()
            })
        );
        let mut reader = ChunkReader::new(PUBLISH_LIMITS);
        let messages = server_messages(session.output(), &mut reader);
        let types: Vec<u8> = messages.iter().map(|m| m.type_id).collect();
        assert_eq!(types, [5, 6, 1, 20, 20]);
        (session, input, reader)
    }

    #[test]
    fn publish_accepted_then_media_flows() {
        let (mut session, mut input, mut reader) = publishing_session();
        session.accept_publish();
        let messages = server_messages(session.output(), &mut reader);
        assert_eq!(
            status_code(messages.last().unwrap()),
            "NetStream.Publish.Start"
        );

        let writer = ChunkWriter::default();
        let mut meta = amf0::encode_all(&["@setDataFrame".into(), "onMetaData".into()]);
        amf0::encode(
            &mut meta,
            &Value::EcmaArray(vec![("width".into(), 320.0.into())]),
        );
        writer.write(&mut input, 4, 0, message_type::DATA_AMF0, 1, &meta);
        writer.write(
            &mut input,
            6,
            33,
            message_type::VIDEO,
            1,
            &[0x17, 0, 0, 0, 0],
        );
        let Some(SessionEvent::Media(data)) = session.process(&mut input).unwrap() else {
            panic!("expected metadata")
        };
        assert_eq!(
            amf0::decode_all(&data.body).unwrap()[0].as_str(),
            Some("onMetaData")
        );
        let Some(SessionEvent::Media(video)) = session.process(&mut input).unwrap() else {
            panic!("expected video")
        };
        assert_eq!(
            (video.tag_type, video.timestamp, &video.body[..]),
            (9, 33, &[0x17, 0, 0, 0, 0][..])
        );

        command(
            &writer,
            &mut input,
            1,
            &["deleteStream".into(), 5.0.into(), Value::Null, 1.0.into()],
        );
        assert_eq!(
            session.process(&mut input).unwrap(),
            Some(SessionEvent::Unpublished)
        );
    }

    #[test]
    fn play_is_answered_then_media_is_sent_on_the_play_stream() {
        let (mut session, mut input) = handshaken_session();
        let writer = ChunkWriter::default();
        input.extend_from_slice(&crate::rtmp::client::play_commands(
            &writer,
            "live",
            "viewer-key",
        ));
        assert!(matches!(
            session.process(&mut input).unwrap(),
            Some(SessionEvent::Connected { .. })
        ));
        assert_eq!(
            session.process(&mut input).unwrap(),
            Some(SessionEvent::PlayRequested {
                stream_key: "viewer-key".into()
            })
        );
        // Media before the play is accepted is not sent.
        session.send_media(9, 0, &[0x17, 0]);
        session.accept_play();
        session.send_media(9, 40, &[0x17, 1, 0, 0, 0]);
        let mut reader = ChunkReader::new(PUBLISH_LIMITS);
        let messages = server_messages(session.output(), &mut reader);
        let codes: Vec<String> = messages
            .iter()
            .filter(|m| m.type_id == message_type::COMMAND_AMF0 && m.stream_id == 1)
            .map(status_code)
            .collect();
        assert_eq!(codes, ["NetStream.Play.Reset", "NetStream.Play.Start"]);
        let media: Vec<&Message> = messages.iter().filter(|m| m.type_id == 9).collect();
        assert_eq!(media.len(), 1);
        assert_eq!((media[0].timestamp, media[0].stream_id), (40, 1));
        assert!(session.is_playing());
        command(
            &writer,
            &mut input,
            1,
            &["deleteStream".into(), 4.0.into(), Value::Null, 1.0.into()],
        );
        assert_eq!(
            session.process(&mut input).unwrap(),
            Some(SessionEvent::Unpublished)
        );
    }

    #[test]
    fn rejected_publish_gets_error_status() {
        let (mut session, _input, mut reader) = publishing_session();
        session.reject_publish("NetStream.Publish.BadName", "unknown stream key");
        let messages = server_messages(session.output(), &mut reader);
        assert_eq!(status_code(&messages[0]), "NetStream.Publish.BadName");
        assert!(!session.is_publishing());
    }

    #[test]
    fn huge_chunk_size_is_a_protocol_error() {
        let (mut session, mut input, _reader) = publishing_session();
        session.accept_publish();
        ChunkWriter::default().write(&mut input, 2, 0, 1, 0, &0x8000_0000u32.to_be_bytes());
        assert!(matches!(
            session.process(&mut input),
            Err(SessionError::Chunk(ChunkError::InvalidChunkSize(
                0x8000_0000
            )))
        ));
    }

    #[test]
    fn answers_pings_and_acknowledges_windows() {
        let (mut session, mut input, mut reader) = publishing_session();
        session.accept_publish();
        server_messages(session.output(), &mut reader);
        let writer = ChunkWriter::default();
        writer.write(
            &mut input,
            2,
            0,
            message_type::WINDOW_ACK_SIZE,
            0,
            &100u32.to_be_bytes(),
        );
        writer.write(
            &mut input,
            2,
            0,
            message_type::USER_CONTROL,
            0,
            &[0, 6, 0, 0, 0, 9],
        );
        writer.write(&mut input, 6, 0, message_type::VIDEO, 1, &[0x27; 120]);
        session.process(&mut input).unwrap();
        let messages = server_messages(session.output(), &mut reader);
        let pong = messages
            .iter()
            .find(|m| m.type_id == message_type::USER_CONTROL);
        assert_eq!(&pong.unwrap().payload[..], &[0, 7, 0, 0, 0, 9]);
        assert!(
            messages
                .iter()
                .any(|m| m.type_id == message_type::ACKNOWLEDGEMENT)
        );
    }
}
