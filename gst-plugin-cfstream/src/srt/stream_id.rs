//! The stream id an SRT caller sends in its handshake (`SRTO_STREAMID`, ≤ 512 bytes): a plain
//! id, as Cloudflare hands out (`streamId`, the live input's uid), or SRT's access control
//! syntax `#!::r=<resource>,m=<mode>[,…]` (keys other than `r` and `m` are ignored).
//!
//! Play requests (playback egress, `srtPlayback.streamId`): a plain id `play<input>`
//! ([`PLAY_PREFIX`]), or `#!::r=<input>,m=request` (where `r` may carry the prefix too). Ingest
//! ids are never play requests: an id that begins with `play` names the input after it.

/// What the caller asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// It sends a stream (`m=publish`, the default).
    Publish,
    /// It wants to receive one (`m=request`): playback egress.
    Request,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRequest {
    /// The input named (`r`, or the whole plain id).
    pub resource: String,
    pub mode: Mode,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    #[error("the stream id is empty")]
    Empty,
    #[error("the stream id names no resource (r=)")]
    NoResource,
    #[error("unsupported mode {0:?} in the stream id (m=publish or m=request)")]
    Mode(String),
}

const ACCESS_CONTROL_PREFIX: &str = "#!::";
/// What a plain play stream id starts with, before the input's id.
pub const PLAY_PREFIX: &str = "play";

impl StreamRequest {
    /// The input a play request names; `None` for a publish.
    pub fn play_input(&self) -> Option<&str> {
        let unprefixed = self.resource.strip_prefix(PLAY_PREFIX);
        match (self.mode, unprefixed) {
            (_, Some(input)) if !input.is_empty() => Some(input),
            (Mode::Request, _) => Some(&self.resource),
            _ => None,
        }
    }

    pub fn parse(stream_id: &str) -> Result<StreamRequest, StreamIdError> {
        let Some(keys) = stream_id.strip_prefix(ACCESS_CONTROL_PREFIX) else {
            if stream_id.is_empty() {
                return Err(StreamIdError::Empty);
            }
            return Ok(StreamRequest {
                resource: stream_id.to_owned(),
                mode: Mode::Publish,
            });
        };
        let mut resource = None;
        let mut mode = Mode::Publish;
        for pair in keys.split(',') {
            match pair.split_once('=') {
                Some(("r", value)) if !value.is_empty() => resource = Some(value.to_owned()),
                Some(("m", "publish")) => mode = Mode::Publish,
                Some(("m", "request")) => mode = Mode::Request,
                Some(("m", other)) => return Err(StreamIdError::Mode(other.to_owned())),
                _ => {}
            }
        }
        Ok(StreamRequest {
            resource: resource.ok_or(StreamIdError::NoResource)?,
            mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_and_access_control_ids() {
        let plain = StreamRequest::parse("f256e6ea9341d51eea64c9454659e576").unwrap();
        assert_eq!(plain.resource, "f256e6ea9341d51eea64c9454659e576");
        assert_eq!(plain.mode, Mode::Publish);
        let keyed = StreamRequest::parse("#!::u=admin,r=abc,m=request,s=1").unwrap();
        assert_eq!(
            (keyed.resource.as_str(), keyed.mode),
            ("abc", Mode::Request)
        );
        let default_mode = StreamRequest::parse("#!::r=abc").unwrap();
        assert_eq!(default_mode.mode, Mode::Publish);
        assert_eq!(StreamRequest::parse(""), Err(StreamIdError::Empty));
        assert_eq!(plain.play_input(), None);
        assert_eq!(keyed.play_input(), Some("abc"));
        let play = StreamRequest::parse("playf256e6ea").unwrap();
        assert_eq!(play.play_input(), Some("f256e6ea"));
        let keyed_play = StreamRequest::parse("#!::r=playabc,m=request").unwrap();
        assert_eq!(keyed_play.play_input(), Some("abc"));
        assert_eq!(
            StreamRequest::parse("#!::m=publish"),
            Err(StreamIdError::NoResource)
        );
        assert_eq!(
            StreamRequest::parse("#!::r=abc,m=bidirectional"),
            Err(StreamIdError::Mode("bidirectional".into()))
        );
    }
}
