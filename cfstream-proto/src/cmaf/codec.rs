//! What the init segment and the playlists need to know about a track's codec, read from the
//! decoder configurations an FLV stream (or GStreamer caps) carries: the
//! AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1) with its SPS (H.264 §7.3.2.1), and
//! the AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1). The codec strings follow RFC 6381 §3.3.

use crate::h264::bits::BitReader;
use crate::index::StreamInfo;

/// What was wrong with a decoder configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("avcC record: {0}")]
    AvcC(String),
    #[error("SPS: {0}")]
    Sps(String),
    #[error("AudioSpecificConfig: {0}")]
    AudioSpecificConfig(String),
}

/// An H.264 track: its avcC record and what its first SPS says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoConfig {
    /// The AVCDecoderConfigurationRecord as received; the init segment's `avcC` is built from
    /// its fields.
    pub avcc: mp4_atom::Avcc,
    pub profile_idc: u8,
    /// The constraint flags byte (`profile_compatibility` in the avcC).
    pub constraint_flags: u8,
    pub level_idc: u8,
    /// Picture size after cropping.
    pub width: u32,
    pub height: u32,
    /// Frames per second as a reduced fraction, from the VUI timing information when present.
    pub frame_rate: Option<(u32, u32)>,
}

impl VideoConfig {
    /// Reads an AVCDecoderConfigurationRecord (the body of an FLV AVC sequence header after its
    /// five-byte tag header, or `codec_data` of `video/x-h264,stream-format=avc`).
    pub fn from_avcc(record: &[u8]) -> Result<Self, CodecError> {
        use mp4_atom::DecodeAtom;
        let header = mp4_atom::Header {
            kind: mp4_atom::FourCC::new(b"avcC"),
            size: Some(record.len()),
        };
        let avcc = mp4_atom::Avcc::decode_atom(&header, &mut std::io::Cursor::new(record))
            .map_err(|e| CodecError::AvcC(e.to_string()))?;
        Self::from_record(avcc)
    }

    /// Builds the configuration of a byte-stream (Annex B) track from its SPS and PPS NAL units
    /// (each with its header byte, without start code), with 4-byte NAL unit lengths.
    pub fn from_parameter_sets(sps: &[u8], pps: &[u8]) -> Result<Self, CodecError> {
        let avcc = mp4_atom::Avcc::new(sps, pps).map_err(|e| CodecError::Sps(e.to_string()))?;
        Self::from_record(avcc)
    }

    fn from_record(avcc: mp4_atom::Avcc) -> Result<Self, CodecError> {
        let sps = avcc
            .sequence_parameter_sets
            .first()
            .ok_or_else(|| CodecError::AvcC("no SPS".into()))?;
        let parsed = Sps::parse(sps)?;
        Ok(VideoConfig {
            profile_idc: parsed.profile_idc,
            constraint_flags: parsed.constraint_flags,
            level_idc: parsed.level_idc,
            width: parsed.width,
            height: parsed.height,
            frame_rate: parsed.frame_rate,
            avcc,
        })
    }

    /// RFC 6381 codec string, e.g. `avc1.64001f`: profile, constraint flags and level of the
    /// SPS in hexadecimal.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}

/// An AAC track: its AudioSpecificConfig and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioConfig {
    /// The AudioSpecificConfig as received (the body of an FLV AAC sequence header after its
    /// two-byte tag header, or `codec_data` of `audio/mpeg,mpegversion=4`).
    pub audio_specific_config: Vec<u8>,
    /// Audio object type: 2 for AAC-LC, 5 for HE-AAC (SBR), 29 for HE-AACv2 (PS).
    pub object_type: u8,
    pub sample_rate: u32,
    /// `channelConfiguration`: 1 mono, 2 stereo, … (0: defined in the stream).
    pub channels: u8,
}

/// Sampling rates of `samplingFrequencyIndex` 0..=12 (ISO/IEC 14496-3 table 1.18).
const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

impl AudioConfig {
    pub fn from_audio_specific_config(asc: &[u8]) -> Result<Self, CodecError> {
        let error = |reason: &str| CodecError::AudioSpecificConfig(reason.to_string());
        // The config is plain bits (no emulation prevention); BitReader only removes `00 00 03`,
        // which the first 7 bytes of a valid config cannot contain before the fields read here.
        let mut bits = BitReader::new(asc, "AudioSpecificConfig");
        let read = |bits: &mut BitReader, n| bits.read_bits(n).map_err(|_| error("ends early"));
        let mut object_type = read(&mut bits, 5)?;
        if object_type == 31 {
            object_type = 32 + read(&mut bits, 6)?;
        }
        if object_type == 0 {
            return Err(error("audio object type 0 (null)"));
        }
        let frequency_index = read(&mut bits, 4)?;
        let sample_rate = match frequency_index {
            15 => read(&mut bits, 24)?,
            i => *SAMPLE_RATES
                .get(i as usize)
                .ok_or_else(|| error(&format!("reserved samplingFrequencyIndex {i}")))?,
        };
        if sample_rate == 0 {
            return Err(error("sampling rate 0"));
        }
        let channels = read(&mut bits, 4)? as u8;
        Ok(AudioConfig {
            audio_specific_config: asc.to_vec(),
            object_type: object_type as u8,
            sample_rate,
            channels,
        })
    }

    /// RFC 6381 codec string, e.g. `mp4a.40.2` (MPEG-4 audio, object type in decimal).
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

/// The codec fields of [`StreamInfo`] (the bandwidths are the index's to compute and stay 0).
pub fn stream_info(video: Option<&VideoConfig>, audio: Option<&AudioConfig>) -> StreamInfo {
    StreamInfo {
        video_codec: video.map(VideoConfig::codec_string),
        audio_codec: audio.map(AudioConfig::codec_string),
        width: video.map_or(0, |v| v.width),
        height: video.map_or(0, |v| v.height),
        frame_rate: video.and_then(|v| v.frame_rate),
        audio_sample_rate: audio.map_or(0, |a| a.sample_rate),
        audio_channels: audio.map_or(0, |a| u32::from(a.channels)),
        ..StreamInfo::default()
    }
}

/// The fields of an SPS that the init segment and the playlists use.
struct Sps {
    profile_idc: u8,
    constraint_flags: u8,
    level_idc: u8,
    width: u32,
    height: u32,
    frame_rate: Option<(u32, u32)>,
}

/// Profiles whose SPS carries chroma format, bit depths and scaling matrices (H.264 §7.3.2.1.1).
const HIGH_PROFILES: [u8; 12] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134];

impl Sps {
    fn parse(nal: &[u8]) -> Result<Self, CodecError> {
        let [header, profile_idc, constraint_flags, level_idc, ..] = *nal else {
            return Err(CodecError::Sps(format!("{} bytes", nal.len())));
        };
        if header & 0x1f != 7 {
            return Err(CodecError::Sps(format!("NAL unit type {}", header & 0x1f)));
        }
        let mut r = SpsReader(BitReader::new(&nal[4..], "SPS"));
        r.ue()?; // seq_parameter_set_id
        let mut chroma_format_idc = 1;
        if HIGH_PROFILES.contains(&profile_idc) {
            chroma_format_idc = r.ue()?;
            if chroma_format_idc == 3 {
                r.bits(1)?; // separate_colour_plane_flag
            }
            r.ue()?; // bit_depth_luma_minus8
            r.ue()?; // bit_depth_chroma_minus8
            r.bits(1)?; // qpprime_y_zero_transform_bypass_flag
            if r.bits(1)? == 1 {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.bits(1)? == 1 {
                        r.skip_scaling_list(if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        r.ue()?; // log2_max_frame_num_minus4
        match r.ue()? {
            0 => {
                r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
            }
            1 => {
                r.bits(1)?; // delta_pic_order_always_zero_flag
                r.se()?; // offset_for_non_ref_pic
                r.se()?; // offset_for_top_to_bottom_field
                for _ in 0..r.ue()? {
                    r.se()?; // offset_for_ref_frame
                }
            }
            _ => {}
        }
        r.ue()?; // max_num_ref_frames
        r.bits(1)?; // gaps_in_frame_num_value_allowed_flag
        let width_mbs = r.ue()? + 1;
        let height_map_units = r.ue()? + 1;
        let frame_mbs_only = r.bits(1)?;
        if frame_mbs_only == 0 {
            r.bits(1)?; // mb_adaptive_frame_field_flag
        }
        r.bits(1)?; // direct_8x8_inference_flag
        let crop = if r.bits(1)? == 1 {
            [r.ue()?, r.ue()?, r.ue()?, r.ue()?]
        } else {
            [0; 4]
        };
        // Crop units (§7.4.2.1.1): chroma subsampling, and field pairs when not frame-only.
        let (sub_width, sub_height) = match chroma_format_idc {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let field_factor = 2 - frame_mbs_only;
        let width = (width_mbs * 16).saturating_sub(sub_width * (crop[0] + crop[1]));
        let height = (height_map_units * 16 * field_factor)
            .saturating_sub(sub_height * field_factor * (crop[2] + crop[3]));
        let frame_rate = if r.bits(1)? == 1 {
            r.vui_frame_rate()?
        } else {
            None
        };
        Ok(Sps {
            profile_idc,
            constraint_flags,
            level_idc,
            width,
            height,
            frame_rate,
        })
    }
}

/// [`BitReader`] with SPS-specific reads and errors.
struct SpsReader<'a>(BitReader<'a>);

impl SpsReader<'_> {
    fn bits(&mut self, count: u32) -> Result<u32, CodecError> {
        self.0
            .read_bits(count)
            .map_err(|e| CodecError::Sps(e.to_string()))
    }

    fn ue(&mut self) -> Result<u32, CodecError> {
        self.0.read_ue().map_err(|e| CodecError::Sps(e.to_string()))
    }

    /// A signed exp-Golomb code, se(v) (§9.1.1): 1, -1, 2, -2, … for codes 1, 2, 3, 4, …
    fn se(&mut self) -> Result<i64, CodecError> {
        let code = i64::from(self.ue()?);
        Ok(if code % 2 == 1 {
            (code + 1) / 2
        } else {
            -code / 2
        })
    }

    fn skip_scaling_list(&mut self, size: usize) -> Result<(), CodecError> {
        let (mut last, mut next) = (8i64, 8i64);
        for _ in 0..size {
            if next != 0 {
                next = (last + self.se()? + 256) % 256;
            }
            if next != 0 {
                last = next;
            }
        }
        Ok(())
    }

    /// Skips the VUI up to its timing information (§E.1.1) and returns frames per second:
    /// `time_scale / (2 × num_units_in_tick)` for frame pictures.
    fn vui_frame_rate(&mut self) -> Result<Option<(u32, u32)>, CodecError> {
        if self.bits(1)? == 1 && self.bits(8)? == 255 {
            self.bits(16)?; // sar_width
            self.bits(16)?; // sar_height
        }
        if self.bits(1)? == 1 {
            self.bits(1)?; // overscan_appropriate_flag
        }
        if self.bits(1)? == 1 {
            self.bits(4)?; // video_format, video_full_range_flag
            if self.bits(1)? == 1 {
                self.bits(24)?; // colour primaries, transfer, matrix
            }
        }
        if self.bits(1)? == 1 {
            self.ue()?;
            self.ue()?; // chroma_sample_loc_type top and bottom
        }
        if self.bits(1)? == 0 {
            return Ok(None);
        }
        let num_units_in_tick = self.bits(32)?;
        let time_scale = self.bits(32)?;
        if num_units_in_tick == 0 || time_scale == 0 {
            return Ok(None);
        }
        let (num, den) = (u64::from(time_scale), 2 * u64::from(num_units_in_tick));
        let divisor = gcd(num, den);
        let (num, den) = (num / divisor, den / divisor);
        Ok(u32::try_from(num).ok().zip(u32::try_from(den).ok()))
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// x264's SPS for 320x240 High 4:2:0 level 1.3 at 30 fps (VUI timing 1/60).
    pub const SPS_320X240_30FPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
        0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99, 0x60,
    ];
    pub const PPS: &[u8] = &[0x68, 0xef, 0x8f, 0xcb];
    /// x264 ultrafast: Constrained Baseline 320x240 level 1.3, 30 fps.
    const SPS_BASELINE: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40,
        0x00, 0x00, 0x0f, 0x23, 0xc5, 0x0a, 0xa8,
    ];

    /// The body of an avcC box (what FLV and caps carry) around `sps` and `pps`.
    fn avcc_record(sps: &[u8], pps: &[u8]) -> Vec<u8> {
        use mp4_atom::Encode;
        let mut boxed = Vec::new();
        mp4_atom::Avcc::new(sps, pps)
            .unwrap()
            .encode(&mut boxed)
            .unwrap();
        boxed.split_off(8)
    }

    #[test]
    fn reads_profile_size_and_frame_rate_from_the_sps() {
        let config = VideoConfig::from_avcc(&avcc_record(SPS_320X240_30FPS, PPS)).unwrap();
        assert_eq!(
            config,
            VideoConfig::from_parameter_sets(SPS_320X240_30FPS, PPS).unwrap()
        );
        assert_eq!(config.codec_string(), "avc1.64000d");
        assert_eq!((config.width, config.height), (320, 240));
        assert_eq!(config.frame_rate, Some((30, 1)));
        assert_eq!(config.avcc.length_size, 4);
        let baseline = VideoConfig::from_parameter_sets(SPS_BASELINE, PPS).unwrap();
        assert_eq!(baseline.codec_string(), "avc1.42c00d");
        assert_eq!((baseline.width, baseline.height), (320, 240));
        assert_eq!(baseline.frame_rate, Some((30, 1)));
    }

    #[test]
    fn cropping_and_baseline_without_vui() {
        // Constrained Baseline 1920x1080 (120x68 MBs cropped by 8 lines), no VUI:
        // profile 66, constraints 0xc0, level 40.
        let mut bits = BitWriter::default();
        bits.ue(0); // sps id
        bits.ue(0); // log2_max_frame_num_minus4
        bits.ue(2); // poc type 2
        bits.ue(1); // max_num_ref_frames
        bits.put(0, 1); // gaps
        bits.ue(119); // width in MBs - 1
        bits.ue(67); // height in map units - 1
        bits.put(1, 1); // frame_mbs_only
        bits.put(1, 1); // direct_8x8
        bits.put(1, 1); // cropping
        for crop in [0, 0, 0, 4] {
            bits.ue(crop);
        }
        bits.put(0, 1); // no VUI
        let sps = [&[0x67, 66, 0xc0, 40][..], &bits.finish()].concat();
        let config = VideoConfig::from_parameter_sets(&sps, PPS).unwrap();
        assert_eq!(config.codec_string(), "avc1.42c028");
        assert_eq!((config.width, config.height), (1920, 1080));
        assert_eq!(config.frame_rate, None);
    }

    #[test]
    fn bad_video_configs_are_named() {
        assert!(matches!(
            VideoConfig::from_avcc(&[1, 0x64]),
            Err(CodecError::AvcC(_))
        ));
        let no_sps = [1, 0x64, 0, 0x1f, 0xff, 0xe0, 0];
        assert_eq!(
            VideoConfig::from_avcc(&no_sps),
            Err(CodecError::AvcC("no SPS".into()))
        );
        let truncated = avcc_record(&SPS_320X240_30FPS[..6], PPS);
        assert!(matches!(
            VideoConfig::from_avcc(&truncated),
            Err(CodecError::Sps(_))
        ));
    }

    #[test]
    fn reads_audio_specific_configs() {
        let lc = AudioConfig::from_audio_specific_config(&[0x12, 0x10]).unwrap();
        assert_eq!((lc.object_type, lc.sample_rate, lc.channels), (2, 44100, 2));
        assert_eq!(lc.codec_string(), "mp4a.40.2");
        // HE-AAC, 24 kHz core, mono.
        let he = AudioConfig::from_audio_specific_config(&[0x2b, 0x08]).unwrap();
        assert_eq!(
            (he.codec_string(), he.sample_rate, he.channels),
            ("mp4a.40.5".into(), 24000, 1)
        );
        // Explicit frequency (index 15) of 22050 Hz.
        let explicit =
            AudioConfig::from_audio_specific_config(&[0x17, 0x80, 0x2b, 0x11, 0x10]).unwrap();
        assert_eq!((explicit.sample_rate, explicit.channels), (22050, 2));
        for bad in [&[][..], &[0x12], &[0x16, 0x80], &[0x00, 0x10]] {
            assert!(
                matches!(
                    AudioConfig::from_audio_specific_config(bad),
                    Err(CodecError::AudioSpecificConfig(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn stream_info_carries_codecs_and_picture() {
        let video = VideoConfig::from_parameter_sets(SPS_320X240_30FPS, PPS).unwrap();
        let audio = AudioConfig::from_audio_specific_config(&[0x12, 0x10]).unwrap();
        let info = stream_info(Some(&video), Some(&audio));
        assert_eq!(info.video_codec.as_deref(), Some("avc1.64000d"));
        assert_eq!(info.audio_codec.as_deref(), Some("mp4a.40.2"));
        assert_eq!(
            (info.width, info.height, info.frame_rate),
            (320, 240, Some((30, 1)))
        );
        assert_eq!((info.audio_sample_rate, info.audio_channels), (44100, 2));
    }

    /// Writes exp-Golomb test SPSs (no emulation prevention needed for these values).
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        used: u32,
    }

    impl BitWriter {
        fn put(&mut self, value: u32, count: u32) {
            for i in (0..count).rev() {
                if self.used.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                let bit = ((value >> i) & 1) as u8;
                *self.bytes.last_mut().unwrap() |= bit << (7 - self.used % 8);
                self.used += 1;
            }
        }

        fn ue(&mut self, value: u32) {
            let code = value + 1;
            let length = 32 - code.leading_zeros();
            self.put(0, length - 1);
            self.put(code, length);
        }

        fn finish(mut self) -> Vec<u8> {
            self.put(1, 1); // rbsp_stop_one_bit
            self.bytes
        }
    }
}
