//! What the negotiated caps say about the stream: H.264 to inspect, other accepted media, or a
//! codec the service does not take.

use std::fmt::Write;

use gst::prelude::*;

use cfstream_proto::h264::{Framing, nal_length_size};

use crate::contract::codes::{ERR_UNSUPPORTED_AUDIO_CODEC, ERR_UNSUPPORTED_VIDEO_CODEC};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    H264 {
        framing: Framing,
        /// From the caps' framerate, nanoseconds; `None` for variable frame rate.
        frame_duration: Option<u64>,
    },
    /// AAC, or caps that are neither audio nor video: passed without checks.
    Unchecked,
}

#[derive(Debug)]
pub enum CapsProblem {
    /// A codec the service rejects, with its error code.
    Unsupported { code: &'static str, reason: String },
    /// H.264 caps that cannot be inspected (e.g. a broken avcC).
    Invalid(String),
}

pub fn inspect_caps(caps: &gst::CapsRef) -> Result<Stream, CapsProblem> {
    let Some(s) = caps.structure(0) else {
        return Ok(Stream::Unchecked);
    };
    let name = s.name().as_str();
    if name == "video/x-h264" {
        return Ok(Stream::H264 {
            framing: framing(s)?,
            frame_duration: frame_duration(s),
        });
    }
    if name.starts_with("video/") {
        return Err(CapsProblem::Unsupported {
            code: ERR_UNSUPPORTED_VIDEO_CODEC,
            reason: format!("video codec {} is not supported: send H.264", describe(s)),
        });
    }
    if name.starts_with("audio/") && !is_aac(s) {
        return Err(CapsProblem::Unsupported {
            code: ERR_UNSUPPORTED_AUDIO_CODEC,
            reason: format!("audio codec {} is not supported: send AAC", describe(s)),
        });
    }
    Ok(Stream::Unchecked)
}

fn framing(s: &gst::StructureRef) -> Result<Framing, CapsProblem> {
    match s.get_optional::<&str>("stream-format").ok().flatten() {
        Some("avc" | "avc3") => {
            let codec_data = s.get::<gst::Buffer>("codec_data").map_err(|_| {
                CapsProblem::Invalid("H.264 caps with stream-format=avc carry no codec_data".into())
            })?;
            let map = codec_data
                .map_readable()
                .map_err(|_| CapsProblem::Invalid("H.264 codec_data cannot be mapped".into()))?;
            let length_size =
                nal_length_size(&map).map_err(|err| CapsProblem::Invalid(err.to_string()))?;
            Ok(Framing::LengthPrefixed { length_size })
        }
        _ => Ok(Framing::ByteStream),
    }
}

fn frame_duration(s: &gst::StructureRef) -> Option<u64> {
    let rate = s.get::<gst::Fraction>("framerate").ok()?;
    let (numer, denom) = (
        u64::try_from(rate.numer()).ok()?,
        u64::try_from(rate.denom()).ok()?,
    );
    if numer == 0 || denom == 0 {
        return None;
    }
    Some(denom * 1_000_000_000 / numer)
}

/// AAC: `audio/mpeg` MPEG-2 or MPEG-4, in any framing but LOAS/LATM, which players do not take.
fn is_aac(s: &gst::StructureRef) -> bool {
    s.name() == "audio/mpeg"
        && matches!(s.get::<i32>("mpegversion"), Ok(2 | 4))
        && !matches!(
            s.get_optional::<&str>("stream-format").ok().flatten(),
            Some("loas" | "latm")
        )
}

/// The media type plus the fields that tell `audio/mpeg` variants apart.
fn describe(s: &gst::StructureRef) -> String {
    let mut text = s.name().to_string();
    for field in ["mpegversion", "layer", "stream-format"] {
        if let Ok(value) = s.value(field)
            && let Ok(value) = value.serialize()
        {
            let _ = write!(text, ", {field}={value}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(caps: &str) -> Result<Stream, CapsProblem> {
        gst::init().unwrap();
        inspect_caps(&caps.parse::<gst::Caps>().unwrap())
    }

    fn reason(caps: &str) -> (&'static str, String) {
        match inspect(caps) {
            Err(CapsProblem::Unsupported { code, reason }) => (code, reason),
            other => panic!("{caps}: {other:?}"),
        }
    }

    #[test]
    fn h264_framing_and_frame_duration() {
        assert_eq!(
            inspect("video/x-h264, stream-format=byte-stream, framerate=30000/1001").unwrap(),
            Stream::H264 {
                framing: Framing::ByteStream,
                frame_duration: Some(33_366_666)
            }
        );
        assert_eq!(
            inspect(
                "video/x-h264, stream-format=avc, codec_data=(buffer)01640028ffe1, framerate=0/1"
            )
            .unwrap(),
            Stream::H264 {
                framing: Framing::LengthPrefixed { length_size: 4 },
                frame_duration: None
            }
        );
        assert!(matches!(
            inspect("video/x-h264, stream-format=avc"),
            Err(CapsProblem::Invalid(_))
        ));
        assert!(matches!(
            inspect("video/x-h264, stream-format=avc, codec_data=(buffer)02"),
            Err(CapsProblem::Invalid(_))
        ));
    }

    #[test]
    fn accepted_audio_and_other_caps() {
        let aac = "audio/mpeg, mpegversion=4, stream-format=raw";
        assert_eq!(inspect(aac).unwrap(), Stream::Unchecked);
        assert_eq!(
            inspect("audio/mpeg, mpegversion=2").unwrap(),
            Stream::Unchecked
        );
        assert_eq!(inspect("application/x-id3").unwrap(), Stream::Unchecked);
    }

    #[test]
    fn unsupported_codecs_are_named() {
        assert_eq!(
            reason("video/x-h265, stream-format=hvc1"),
            (
                ERR_UNSUPPORTED_VIDEO_CODEC,
                "video codec video/x-h265, stream-format=hvc1 is not supported: send H.264".into()
            )
        );
        assert_eq!(
            reason("audio/mpeg, mpegversion=1, layer=3"),
            (
                ERR_UNSUPPORTED_AUDIO_CODEC,
                "audio codec audio/mpeg, mpegversion=1, layer=3 is not supported: send AAC".into()
            )
        );
        assert_eq!(
            reason("audio/mpeg, mpegversion=4, stream-format=loas").0,
            ERR_UNSUPPORTED_AUDIO_CODEC
        );
        assert_eq!(reason("audio/x-speex").0, ERR_UNSUPPORTED_AUDIO_CODEC);
        assert_eq!(
            reason("video/x-flash-video, flvversion=1").0,
            ERR_UNSUPPORTED_VIDEO_CODEC
        );
    }
}
