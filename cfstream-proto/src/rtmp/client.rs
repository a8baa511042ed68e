//! The client side, reduced to what tests and load tools need: the commands of a publish or a
//! play and the status replies of the server. Sans-IO like the server session.

use bytes::BytesMut;

use super::amf0::{self, Value};
use super::chunk::{ChunkError, ChunkReader, ChunkWriter, ReaderLimits, message_type};

/// The message stream the server's createStream hands out (this crate's server always uses 1).
pub const PUBLISH_STREAM_ID: u32 = 1;
const COMMAND_CHUNK_STREAM: u32 = 3;

/// What a client accepts from a server.
const CLIENT_LIMITS: ReaderLimits = ReaderLimits {
    max_message_size: 1024 * 1024,
    max_chunk_streams: 16,
    max_buffered_bytes: 2 * 1024 * 1024,
};

/// connect, releaseStream, FCPublish, createStream and publish in one go, as ffmpeg sends them
/// (it waits for the replies in between, which a server must not depend on).
pub fn publish_commands(writer: &ChunkWriter, app: &str, stream_key: &str) -> BytesMut {
    let connect = amf0::object(&[
        ("app", app.into()),
        ("type", "nonprivate".into()),
        ("flashVer", "FMLE/3.0 (compatible; cfstream)".into()),
        ("tcUrl", format!("rtmp://localhost/{app}").as_str().into()),
    ]);
    let commands: [(u32, Vec<Value>); 5] = [
        (0, vec!["connect".into(), 1.0.into(), connect]),
        (
            0,
            vec![
                "releaseStream".into(),
                2.0.into(),
                Value::Null,
                stream_key.into(),
            ],
        ),
        (
            0,
            vec![
                "FCPublish".into(),
                3.0.into(),
                Value::Null,
                stream_key.into(),
            ],
        ),
        (0, vec!["createStream".into(), 4.0.into(), Value::Null]),
        (
            PUBLISH_STREAM_ID,
            vec![
                "publish".into(),
                5.0.into(),
                Value::Null,
                stream_key.into(),
                "live".into(),
            ],
        ),
    ];
    write_commands(writer, &commands)
}

/// connect, createStream and play in one go: a player of `stream_key`.
pub fn play_commands(writer: &ChunkWriter, app: &str, stream_key: &str) -> BytesMut {
    let connect = amf0::object(&[
        ("app", app.into()),
        ("tcUrl", format!("rtmp://localhost/{app}").as_str().into()),
    ]);
    let commands: [(u32, Vec<Value>); 3] = [
        (0, vec!["connect".into(), 1.0.into(), connect]),
        (0, vec!["createStream".into(), 2.0.into(), Value::Null]),
        (
            PUBLISH_STREAM_ID,
            vec!["play".into(), 3.0.into(), Value::Null, stream_key.into()],
        ),
    ];
    write_commands(writer, &commands)
}

/// AMF0 commands, each `(message stream, values)`, as chunks.
fn write_commands(writer: &ChunkWriter, commands: &[(u32, Vec<Value>)]) -> BytesMut {
    let mut out = BytesMut::new();
    for (stream_id, values) in commands {
        let payload = amf0::encode_all(values);
        writer.write(
            &mut out,
            COMMAND_CHUNK_STREAM,
            0,
            message_type::COMMAND_AMF0,
            *stream_id,
            &payload,
        );
    }
    out
}

/// An `onStatus` the server sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub level: String,
    pub code: String,
    pub description: String,
}

/// Reads the server's messages, keeping the `onStatus` ones.
pub struct StatusReader {
    reader: ChunkReader,
}

impl Default for StatusReader {
    fn default() -> Self {
        StatusReader {
            reader: ChunkReader::new(CLIENT_LIMITS),
        }
    }
}

impl StatusReader {
    /// Consumes the server's bytes (after the handshake) from `input`.
    pub fn read(&mut self, input: &mut BytesMut) -> Result<Vec<Status>, ChunkError> {
        let mut statuses = vec![];
        while let Some(message) = self.reader.read_message(input)? {
            match message.type_id {
                message_type::SET_CHUNK_SIZE if message.payload.len() >= 4 => {
                    let size = u32::from_be_bytes(message.payload[..4].try_into().expect("4"));
                    self.reader.set_chunk_size(size)?;
                }
                message_type::COMMAND_AMF0 => {
                    let Ok(values) = amf0::decode_all(&message.payload) else {
                        continue;
                    };
                    if values.first().and_then(Value::as_str) != Some("onStatus") {
                        continue;
                    }
                    let info = values.get(3).unwrap_or(&Value::Null);
                    let text = |key| {
                        info.property(key)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    statuses.push(Status {
                        level: text("level"),
                        code: text("code"),
                        description: text("description"),
                    });
                }
                _ => {}
            }
        }
        Ok(statuses)
    }
}
