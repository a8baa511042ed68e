//! How a pad's buffers become CMAF samples: H.264 `avc`/`avc3` and raw AAC are samples as
//! they are (their codec configuration comes with the caps); H.264 byte-stream and ADTS are
//! converted, their configuration read from the stream (SPS/PPS, the ADTS header).

use bytes::Bytes;
use cfstream_proto::cmaf::elementary::{annex_b_to_sample, parse_adts};
use cfstream_proto::cmaf::{AudioConfig, TrackConfig, VideoConfig};
use cfstream_proto::h264::Framing;

#[derive(Clone, Debug, Default)]
pub enum Input {
    /// `stream-format=avc`/`avc3` with the NAL unit length size of its avcC.
    Avc { length_size: u8 },
    /// `stream-format=byte-stream`: the configuration follows the last SPS/PPS seen.
    #[default]
    ByteStream,
    /// `stream-format=raw` with its AudioSpecificConfig in the caps.
    RawAac,
    /// `stream-format=adts`.
    Adts,
}

/// What a buffer became: the sample and, when the stream changed it, a new configuration.
pub struct Converted {
    pub data: Bytes,
    pub config: Option<TrackConfig>,
}

impl Input {
    /// Reads a pad's caps: the framing, the codec configuration they carry (`codec_data`) and
    /// the frame duration they tell. Refuses caps whose `codec_data` is missing or invalid.
    pub fn from_caps(
        caps: &gst::CapsRef,
    ) -> Result<(Input, Option<TrackConfig>, Option<u64>), String> {
        let s = caps.structure(0).ok_or("empty caps")?;
        let codec_data = || {
            s.get::<gst::Buffer>("codec_data")
                .map_err(|_| format!("{} caps without codec_data", s.name()))?
                .into_mapped_buffer_readable()
                .map_err(|_| "codec_data cannot be mapped".to_string())
        };
        let stream_format = s.get_optional::<&str>("stream-format").ok().flatten();
        match (s.name().as_str(), stream_format) {
            ("video/x-h264", Some("avc" | "avc3")) => {
                // flvdemux sets no alignment: its buffers are access units all the same.
                match s.get_optional::<&str>("alignment").ok().flatten() {
                    None | Some("au") => {}
                    Some(other) => {
                        return Err(format!(
                            "H.264 alignment={other} is not supported: whole access units \
                             (alignment=au) are needed"
                        ));
                    }
                }
                let config = VideoConfig::from_avcc(&codec_data()?).map_err(|e| e.to_string())?;
                let input = Input::Avc {
                    length_size: config.avcc.length_size,
                };
                Ok((
                    input,
                    Some(TrackConfig::Video(config)),
                    framerate_duration(s),
                ))
            }
            ("video/x-h264", _) => Ok((Input::ByteStream, None, framerate_duration(s))),
            ("audio/mpeg", Some("raw")) => {
                let config = AudioConfig::from_audio_specific_config(&codec_data()?)
                    .map_err(|e| e.to_string())?;
                let duration = aac_frame_ns(config.sample_rate);
                Ok((Input::RawAac, Some(TrackConfig::Audio(config)), duration))
            }
            ("audio/mpeg", _) => Ok((Input::Adts, None, None)),
            (other, _) => Err(format!("{other} is neither H.264 nor AAC")),
        }
    }

    pub fn framing(&self) -> Framing {
        match self {
            Input::Avc { length_size } => Framing::LengthPrefixed {
                length_size: *length_size,
            },
            _ => Framing::ByteStream,
        }
    }

    /// The sample of `data`; `current` is the track's configuration, which a byte-stream's
    /// parameter sets or an ADTS header may change.
    pub fn convert(&self, data: &[u8], current: Option<&TrackConfig>) -> Result<Converted, String> {
        match self {
            Input::Avc { .. } | Input::RawAac => Ok(Converted {
                data: Bytes::copy_from_slice(data),
                config: None,
            }),
            Input::ByteStream => {
                let mut sample = Vec::with_capacity(data.len());
                let sets = annex_b_to_sample(data, &mut sample);
                let current = match current {
                    Some(TrackConfig::Video(video)) => Some(video),
                    _ => None,
                };
                let known = |i: usize| {
                    current.and_then(|c| match i {
                        0 => c.avcc.sequence_parameter_sets.first(),
                        _ => c.avcc.picture_parameter_sets.first(),
                    })
                };
                let sps = sets.sps.or(known(0).map(Vec::as_slice));
                let pps = sets.pps.or(known(1).map(Vec::as_slice));
                let changed = (sets.sps.is_some() || sets.pps.is_some())
                    && (sps != known(0).map(Vec::as_slice) || pps != known(1).map(Vec::as_slice));
                let config = match (changed, sps, pps) {
                    (true, Some(sps), Some(pps)) => Some(TrackConfig::Video(
                        VideoConfig::from_parameter_sets(sps, pps).map_err(|e| e.to_string())?,
                    )),
                    _ => None,
                };
                Ok(Converted {
                    data: sample.into(),
                    config,
                })
            }
            Input::Adts => {
                let frame = parse_adts(data)?;
                let changed = match current {
                    Some(TrackConfig::Audio(audio)) => {
                        audio.audio_specific_config != frame.audio_specific_config
                    }
                    _ => true,
                };
                let config = if changed {
                    let config =
                        AudioConfig::from_audio_specific_config(&frame.audio_specific_config)
                            .map_err(|e| e.to_string())?;
                    Some(TrackConfig::Audio(config))
                } else {
                    None
                };
                Ok(Converted {
                    data: Bytes::copy_from_slice(&data[frame.payload]),
                    config,
                })
            }
        }
    }
}

/// An AAC frame's duration (1024 samples).
pub fn aac_frame_ns(sample_rate: u32) -> Option<u64> {
    (sample_rate > 0).then(|| 1024 * 1_000_000_000 / u64::from(sample_rate))
}

/// The frame duration of a caps `framerate` (none for 0/1, variable rate).
fn framerate_duration(s: &gst::StructureRef) -> Option<u64> {
    let rate = s.get::<gst::Fraction>("framerate").ok()?;
    let (numer, denom) = (
        u64::try_from(rate.numer()).ok()?,
        u64::try_from(rate.denom()).ok()?,
    );
    (numer > 0 && denom > 0).then(|| denom * 1_000_000_000 / numer)
}
