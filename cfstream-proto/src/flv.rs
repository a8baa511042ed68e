//! FLV tag reading and writing, and identification of the codecs in FLV tags, without GStreamer.
//!
//! `cfrtmpsrc` outputs RTMP media as an FLV stream (header, then tag + PreviousTagSize per
//! message), the shape `rtmp2src` produces and `flvdemux` reads. Codec identification covers the
//! classic FLV codec ids and enhanced RTMP's FourCC ex-headers (`hvc1`, `av01`, `vp09`, …).

use bytes::{BufMut, BytesMut};

use crate::rtmp::amf0::{self, Value};

pub const TAG_AUDIO: u8 = 8;
pub const TAG_VIDEO: u8 = 9;
pub const TAG_SCRIPT_DATA: u8 = 18;

/// Tag header size; the body follows, then a 4-byte PreviousTagSize.
pub const TAG_HEADER_SIZE: usize = 11;

/// FLV header announcing audio and video, followed by PreviousTagSize0.
pub const FILE_HEADER: [u8; 13] = [b'F', b'L', b'V', 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0];

/// Error code of a video codec other than H.264/AVC.
pub const ERR_UNSUPPORTED_VIDEO_CODEC: &str = "ERR_UNSUPPORTED_VIDEO_CODEC";
/// Error code of an audio codec other than AAC.
pub const ERR_UNSUPPORTED_AUDIO_CODEC: &str = "ERR_UNSUPPORTED_AUDIO_CODEC";

const VIDEO_CODEC_AVC: u8 = 7;
const AUDIO_FORMAT_AAC: u8 = 10;
/// AVCPacketType and AACPacketType 0: the decoder configuration (AVCDecoderConfigurationRecord,
/// AudioSpecificConfig) rather than coded media.
const PACKET_SEQUENCE_HEADER: u8 = 0;
/// The name of the script tag that carries the stream's metadata.
const METADATA_NAME: &[u8] = b"onMetaData";
/// [`stream_header`] looks for [`METADATA_NAME`] starting within this many bytes of a script
/// tag's body (an encoder writes it first, after 3 bytes of AMF0 string header).
const METADATA_NAME_SEARCH: usize = 24;
/// Enhanced RTMP: bit 7 of a video tag's first byte announces a FourCC ex-header.
const VIDEO_EX_HEADER: u8 = 0x80;
/// Enhanced RTMP v2: sound format 9 announces an audio FourCC ex-header.
const AUDIO_EX_HEADER: u8 = 9;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FlvError {
    #[error("not an FLV file (signature {0:?})")]
    Signature([u8; 3]),
    #[error("FLV data ends inside a header")]
    Truncated,
    #[error("FLV header size {0} is smaller than 9")]
    HeaderSize(u32),
}

/// Appends one tag (header, body, PreviousTagSize) to `out`.
pub fn write_tag(out: &mut BytesMut, tag_type: u8, timestamp_ms: u32, body: &[u8]) {
    out.reserve(TAG_HEADER_SIZE + body.len() + 4);
    out.put_u8(tag_type);
    out.put_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.put_slice(&timestamp_ms.to_be_bytes()[1..]);
    out.put_u8((timestamp_ms >> 24) as u8);
    out.put_slice(&[0, 0, 0]);
    out.put_slice(body);
    out.put_u32((TAG_HEADER_SIZE + body.len()) as u32);
}

/// Size of the FLV file header (including PreviousTagSize0) at the front of `data`.
pub fn parse_file_header(data: &[u8]) -> Result<usize, FlvError> {
    let header = data.get(..9).ok_or(FlvError::Truncated)?;
    if &header[..3] != b"FLV" {
        return Err(FlvError::Signature([header[0], header[1], header[2]]));
    }
    let size = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
    if size < 9 {
        return Err(FlvError::HeaderSize(size));
    }
    Ok(size as usize + 4)
}

/// One tag of an FLV stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Tag<'a> {
    pub tag_type: u8,
    pub timestamp_ms: u32,
    pub body: &'a [u8],
}

/// Reads the tag at the front of `data`; returns it and the bytes it took (with
/// PreviousTagSize), or `None` when `data` does not hold the whole tag yet.
pub fn parse_tag(data: &[u8]) -> Option<(Tag<'_>, usize)> {
    let header = data.get(..TAG_HEADER_SIZE)?;
    let size = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
    let timestamp_ms = u32::from_be_bytes([header[7], header[4], header[5], header[6]]);
    let body = data.get(TAG_HEADER_SIZE..TAG_HEADER_SIZE + size)?;
    let total = TAG_HEADER_SIZE + size + 4;
    (data.len() >= total).then_some((
        Tag {
            tag_type: header[0] & 0x1f,
            timestamp_ms,
            body,
        },
        total,
    ))
}

/// A codec that may not enter the pipeline: the error code and a sentence naming it.
#[derive(Clone, Debug, PartialEq)]
pub struct CodecViolation {
    pub code: &'static str,
    pub reason: String,
}

pub(crate) fn video_violation(name: &str) -> CodecViolation {
    CodecViolation {
        code: ERR_UNSUPPORTED_VIDEO_CODEC,
        reason: format!("video codec {name} is not supported: send H.264"),
    }
}

pub(crate) fn audio_violation(name: &str) -> CodecViolation {
    CodecViolation {
        code: ERR_UNSUPPORTED_AUDIO_CODEC,
        reason: format!("audio codec {name} is not supported: send AAC"),
    }
}

/// Name of a classic FLV video codec id.
fn video_codec_name(id: u8) -> String {
    match id {
        1 => "JPEG".into(),
        2 => "Sorenson H.263".into(),
        3 => "Screen video".into(),
        4 => "On2 VP6".into(),
        5 => "On2 VP6 with alpha".into(),
        6 => "Screen video v2".into(),
        7 => "H.264 (AVC)".into(),
        12 => "HEVC (legacy codec id 12)".into(),
        13 => "AV1 (legacy codec id 13)".into(),
        other => format!("with FLV codec id {other}"),
    }
}

/// Name of a classic FLV sound format.
fn audio_format_name(format: u8) -> String {
    match format {
        0 => "Linear PCM (platform endian)".into(),
        1 => "ADPCM".into(),
        2 => "MP3".into(),
        3 => "Linear PCM (little endian)".into(),
        4 => "Nellymoser 16 kHz".into(),
        5 => "Nellymoser 8 kHz".into(),
        6 => "Nellymoser".into(),
        7 => "G.711 A-law".into(),
        8 => "G.711 mu-law".into(),
        10 => "AAC".into(),
        11 => "Speex".into(),
        14 => "MP3 8 kHz".into(),
        15 => "device-specific sound".into(),
        other => format!("with FLV sound format {other}"),
    }
}

/// A FourCC with what it stands for, e.g. `hvc1 (HEVC)`.
fn fourcc_name(fourcc: [u8; 4]) -> String {
    let text: String = fourcc
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect();
    let meaning = match &fourcc {
        b"hvc1" => "HEVC",
        b"av01" => "AV1",
        b"vp09" => "VP9",
        b"vp08" => "VP8",
        b"avc1" => "H.264 in enhanced-RTMP form",
        b"Opus" => "Opus",
        b"fLaC" => "FLAC",
        b"ac-3" => "AC-3",
        b"ec-3" => "E-AC-3",
        b".mp3" => "MP3",
        b"mp4a" => "AAC in enhanced-RTMP form",
        _ => "enhanced RTMP",
    };
    format!("{text} ({meaning})")
}

/// Checks an audio or video tag body: only classic AVC video and AAC audio pass.
pub fn check_tag(tag_type: u8, body: &[u8]) -> Result<(), CodecViolation> {
    let Some(&first) = body.first() else {
        return Ok(());
    };
    match tag_type {
        TAG_VIDEO if first & VIDEO_EX_HEADER != 0 => {
            let fourcc = body.get(1..5).and_then(|b| b.try_into().ok());
            Err(video_violation(&fourcc.map_or(
                "in an enhanced-RTMP ex-header".into(),
                fourcc_name,
            )))
        }
        TAG_VIDEO if first & 0x0f != VIDEO_CODEC_AVC => {
            Err(video_violation(&video_codec_name(first & 0x0f)))
        }
        TAG_AUDIO if first >> 4 == AUDIO_EX_HEADER => {
            let fourcc = body.get(1..5).and_then(|b| b.try_into().ok());
            Err(audio_violation(&fourcc.map_or(
                "in an enhanced-RTMP ex-header".into(),
                fourcc_name,
            )))
        }
        TAG_AUDIO if first >> 4 != AUDIO_FORMAT_AAC => {
            Err(audio_violation(&audio_format_name(first >> 4)))
        }
        _ => Ok(()),
    }
}

/// A tag a consumer joining mid-stream needs before any frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamHeader {
    /// The `onMetaData` script tag.
    Metadata,
    /// The AVC decoder configuration (AVC sequence header).
    VideoConfig,
    /// The AAC AudioSpecificConfig (AAC sequence header).
    AudioConfig,
}

/// Which stream header a tag is, if any. Cheap enough for every tag: `onMetaData` is found by
/// its name near the start of a script tag, without decoding AMF0.
pub fn stream_header(tag_type: u8, body: &[u8]) -> Option<StreamHeader> {
    match (tag_type, body) {
        (TAG_SCRIPT_DATA, _)
            if body
                .windows(METADATA_NAME.len())
                .take(METADATA_NAME_SEARCH)
                .any(|w| w == METADATA_NAME) =>
        {
            Some(StreamHeader::Metadata)
        }
        (TAG_VIDEO, [first, PACKET_SEQUENCE_HEADER, ..]) if first & 0x0f == VIDEO_CODEC_AVC => {
            Some(StreamHeader::VideoConfig)
        }
        (TAG_AUDIO, [first, PACKET_SEQUENCE_HEADER, ..]) if first >> 4 == AUDIO_FORMAT_AAC => {
            Some(StreamHeader::AudioConfig)
        }
        _ => None,
    }
}

/// True for an AVC video tag carrying a coded picture (not a sequence header or end marker).
pub fn is_video_frame(tag_type: u8, body: &[u8]) -> bool {
    tag_type == TAG_VIDEO && body.len() > 1 && body[0] & VIDEO_EX_HEADER == 0 && body[1] == 1
}

/// The properties of an `onMetaData` script tag body, if it is one.
pub fn metadata(body: &[u8]) -> Option<Vec<(String, Value)>> {
    let mut rest = body;
    let name = amf0::decode(&mut rest).ok()?;
    if name.as_str() != Some("onMetaData") {
        return None;
    }
    match amf0::decode(&mut rest).ok()? {
        Value::EcmaArray(props) | Value::Object(props) => Some(props),
        _ => None,
    }
}

/// Checks the codec ids an encoder announces in `onMetaData`, so that a stream can be refused
/// before its first media tag. Only codecs identified for certain are refused; anything vague is
/// left to the tag check.
pub fn check_metadata(props: &[(String, Value)]) -> Result<(), CodecViolation> {
    for (key, value) in props {
        let announced = match value {
            Value::Number(n) if *n >= 0.0 && *n <= u32::MAX as f64 => *n as u32,
            _ => continue,
        };
        // Enhanced RTMP announces FourCCs as numbers; classic ids are below 16.
        let fourcc = (announced >= 1 << 24).then(|| announced.to_be_bytes());
        match key.as_str() {
            "videocodecid" => match fourcc {
                Some(fourcc) => return Err(video_violation(&fourcc_name(fourcc))),
                None if (1..=13).contains(&announced) && announced != VIDEO_CODEC_AVC as u32 => {
                    return Err(video_violation(&video_codec_name(announced as u8)));
                }
                None => {}
            },
            "audiocodecid" => match fourcc {
                Some(fourcc) if &fourcc != b"mp4a" => {
                    return Err(audio_violation(&fourcc_name(fourcc)));
                }
                None if announced < 16
                    && announced != AUDIO_FORMAT_AAC as u32
                    && announced != AUDIO_EX_HEADER as u32 =>
                {
                    return Err(audio_violation(&audio_format_name(announced as u8)));
                }
                _ => {}
            },
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_parses_tags() {
        let mut out = BytesMut::from(&FILE_HEADER[..]);
        write_tag(&mut out, TAG_VIDEO, 0x1234_5678, &[0x17, 1, 0, 0, 0, 0xaa]);
        let header = parse_file_header(&out).unwrap();
        assert_eq!(header, 13);
        let (tag, used) = parse_tag(&out[header..]).unwrap();
        assert_eq!(used, 11 + 6 + 4);
        assert_eq!(tag.timestamp_ms, 0x1234_5678);
        assert_eq!(tag.body, &[0x17, 1, 0, 0, 0, 0xaa]);
        assert!(is_video_frame(tag.tag_type, tag.body));
        assert_eq!(&out[out.len() - 4..], &17u32.to_be_bytes());
        assert!(parse_tag(&out[header..out.len() - 1]).is_none());
        assert_eq!(
            parse_file_header(b"GIF89a..."),
            Err(FlvError::Signature(*b"GIF"))
        );
    }

    #[test]
    fn recognises_stream_headers() {
        let metadata = amf0::encode_all(&["onMetaData".into(), Value::Number(1.0)]);
        assert_eq!(
            stream_header(TAG_SCRIPT_DATA, &metadata),
            Some(StreamHeader::Metadata)
        );
        let other_script = amf0::encode_all(&["onTextData".into()]);
        assert_eq!(stream_header(TAG_SCRIPT_DATA, &other_script), None);
        // The name far into the body is not looked for.
        let mut late = vec![0; METADATA_NAME_SEARCH];
        late.extend_from_slice(METADATA_NAME);
        assert_eq!(stream_header(TAG_SCRIPT_DATA, &late), None);
        // Key frame + AVC, packet type 0 / 1.
        let video_config = [0x17, 0, 0, 0, 0, 1, 0x64];
        assert_eq!(
            stream_header(TAG_VIDEO, &video_config),
            Some(StreamHeader::VideoConfig)
        );
        assert_eq!(stream_header(TAG_VIDEO, &[0x17, 1, 0, 0, 0]), None);
        // VP6 with a zero second byte is no AVC configuration.
        assert_eq!(stream_header(TAG_VIDEO, &[0x14, 0]), None);
        // AAC 44.1 kHz stereo, packet type 0 / 1; MP3 is never a header.
        assert_eq!(
            stream_header(TAG_AUDIO, &[0xaf, 0, 0x12, 0x10]),
            Some(StreamHeader::AudioConfig)
        );
        assert_eq!(stream_header(TAG_AUDIO, &[0xaf, 1, 0x21]), None);
        assert_eq!(stream_header(TAG_AUDIO, &[0x2f, 0]), None);
        assert_eq!(stream_header(TAG_VIDEO, &[]), None);
    }

    #[test]
    fn names_refused_codecs() {
        assert_eq!(check_tag(TAG_VIDEO, &[0x17, 0]), Ok(()));
        assert_eq!(check_tag(TAG_AUDIO, &[0xaf, 0]), Ok(()));
        let hevc = check_tag(TAG_VIDEO, &[0x90, b'h', b'v', b'c', b'1']).unwrap_err();
        assert_eq!(hevc.code, ERR_UNSUPPORTED_VIDEO_CODEC);
        assert_eq!(
            hevc.reason,
            "video codec hvc1 (HEVC) is not supported: send H.264"
        );
        let vp6 = check_tag(TAG_VIDEO, &[0x14]).unwrap_err();
        assert!(vp6.reason.contains("On2 VP6"), "{}", vp6.reason);
        let mp3 = check_tag(TAG_AUDIO, &[0x2f]).unwrap_err();
        assert_eq!(mp3.code, ERR_UNSUPPORTED_AUDIO_CODEC);
        assert_eq!(mp3.reason, "audio codec MP3 is not supported: send AAC");
        assert!(
            check_tag(TAG_AUDIO, &[0xb6])
                .unwrap_err()
                .reason
                .contains("Speex")
        );
        let opus = check_tag(TAG_AUDIO, &[0x90, b'O', b'p', b'u', b's']).unwrap_err();
        assert!(opus.reason.contains("Opus"));
    }

    #[test]
    fn checks_announced_codecs_in_metadata() {
        let props = |video: f64, audio: f64| {
            vec![
                ("videocodecid".to_string(), Value::Number(video)),
                ("audiocodecid".to_string(), Value::Number(audio)),
            ]
        };
        assert_eq!(check_metadata(&props(7.0, 10.0)), Ok(()));
        let mp3 = check_metadata(&props(7.0, 2.0)).unwrap_err();
        assert_eq!(mp3.code, ERR_UNSUPPORTED_AUDIO_CODEC);
        let hvc1 = u32::from_be_bytes(*b"hvc1") as f64;
        let hevc = check_metadata(&props(hvc1, 10.0)).unwrap_err();
        assert!(hevc.reason.contains("hvc1 (HEVC)"), "{}", hevc.reason);

        let mut body = amf0::encode_all(&["onMetaData".into()]);
        amf0::encode(&mut body, &Value::EcmaArray(props(7.0, 11.0)));
        let parsed = metadata(&body).unwrap();
        assert!(
            check_metadata(&parsed)
                .unwrap_err()
                .reason
                .contains("Speex")
        );
    }
}
