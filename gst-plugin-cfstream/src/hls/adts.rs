//! ADTS headers (ISO/IEC 13818-7 §6.2, ISO/IEC 14496-3 §1.A.2) for raw AAC frames: an
//! `stream-format=raw` stream carries its AudioSpecificConfig out of band (`codec_data`), an
//! MPEG-TS needs a 7-byte ADTS header in front of every frame.

/// Samples per AAC frame (the 960-sample variant cannot be signalled in ADTS).
pub const SAMPLES_PER_FRAME: u64 = 1024;
const HEADER_LEN: usize = 7;
/// `frame_length` is 13 bits and counts the header.
const MAX_FRAME_LEN: usize = (1 << 13) - 1;
/// Sampling frequencies by `sampling_frequency_index` (ISO/IEC 14496-3 table 1.18).
const SAMPLING_FREQUENCIES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];
const AOT_SBR: u32 = 5;
const AOT_PS: u32 = 29;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdtsError {
    #[error("AudioSpecificConfig ends early ({0} bytes)")]
    Truncated(usize),
    #[error("AAC with {0} cannot be carried in ADTS")]
    NotExpressible(String),
    #[error("AAC frame of {0} bytes is too long for an ADTS header")]
    FrameTooLong(usize),
}

/// The ADTS header of a stream, from its AudioSpecificConfig; only `frame_length` varies per frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdtsConfig {
    header: [u8; HEADER_LEN],
    /// Sampling frequency of the AAC core (half the output rate of explicitly signalled SBR).
    sample_rate: u32,
}

impl AdtsConfig {
    /// Reads an AudioSpecificConfig. `mpeg2` sets the header's ID bit (caps `mpegversion=2`).
    /// Explicit SBR/PS signalling (object type 5 or 29) is written the implicit way ADTS knows:
    /// the core object type and sampling frequency. Refuses what ADTS cannot say: object types
    /// other than Main, LC, SSR and LTP, a sampling frequency outside the index table, channel
    /// configuration 0 (a program_config_element) and 960-sample frames.
    pub fn from_audio_specific_config(asc: &[u8], mpeg2: bool) -> Result<Self, AdtsError> {
        let mut bits = Bits { data: asc, pos: 0 };
        let mut object_type = bits.object_type()?;
        let frequency_index = bits.frequency_index()?;
        let channels = bits.read(4)?;
        if object_type == AOT_SBR || object_type == AOT_PS {
            bits.frequency_index()?; // extension (output) sampling frequency
            object_type = bits.object_type()?;
        }
        if !(1..=4).contains(&object_type) {
            return Err(AdtsError::NotExpressible(format!(
                "audio object type {object_type} (ADTS takes Main, LC, SSR and LTP only)"
            )));
        }
        if bits.read(1)? != 0 {
            return Err(AdtsError::NotExpressible(
                "960-sample frames (frameLengthFlag)".into(),
            ));
        }
        let frequency_index = match frequency_index {
            FrequencyIndex::Index(index) if index < SAMPLING_FREQUENCIES.len() => index,
            FrequencyIndex::Index(index) => {
                return Err(AdtsError::NotExpressible(format!(
                    "reserved sampling_frequency_index {index}"
                )));
            }
            FrequencyIndex::Explicit(hz) => SAMPLING_FREQUENCIES
                .iter()
                .position(|&f| f == hz)
                .ok_or_else(|| {
                    AdtsError::NotExpressible(format!(
                        "an explicit sampling frequency of {hz} Hz (ADTS has an index of \
                         standard frequencies only)"
                    ))
                })?,
        };
        if !(1..=7).contains(&channels) {
            return Err(AdtsError::NotExpressible(format!(
                "channel configuration {channels} (ADTS needs 1 to 7; 0 means a \
                 program_config_element)"
            )));
        }
        let profile = (object_type - 1) as u8;
        let header = [
            0xFF,
            0xF1 | if mpeg2 { 0x08 } else { 0 }, // syncword, ID, layer 0, protection_absent
            profile << 6 | (frequency_index as u8) << 2 | (channels >> 2) as u8,
            ((channels & 3) as u8) << 6,
            0,
            0x1F, // buffer fullness 0x7FF: variable bitrate
            0xFC, // one raw data block
        ];
        Ok(AdtsConfig {
            header,
            sample_rate: SAMPLING_FREQUENCIES[frequency_index],
        })
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Duration of one frame in nanoseconds.
    pub fn frame_duration_ns(&self) -> u64 {
        SAMPLES_PER_FRAME * 1_000_000_000 / u64::from(self.sample_rate)
    }

    /// Replaces the contents of `out` with the ADTS frame of the raw AAC frame `raw`.
    pub fn write_frame(&self, raw: &[u8], out: &mut Vec<u8>) -> Result<(), AdtsError> {
        let len = HEADER_LEN + raw.len();
        if len > MAX_FRAME_LEN {
            return Err(AdtsError::FrameTooLong(raw.len()));
        }
        let mut header = self.header;
        header[3] |= (len >> 11) as u8 & 0x03;
        header[4] = (len >> 3) as u8;
        header[5] |= ((len & 0x07) as u8) << 5;
        out.clear();
        out.reserve(len);
        out.extend_from_slice(&header);
        out.extend_from_slice(raw);
        Ok(())
    }
}

enum FrequencyIndex {
    Index(usize),
    /// The escape: a 24-bit frequency in Hz.
    Explicit(u32),
}

/// MSB-first bit reader over the AudioSpecificConfig.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, count: usize) -> Result<u32, AdtsError> {
        let mut value = 0;
        for _ in 0..count {
            let byte = self
                .data
                .get(self.pos / 8)
                .ok_or(AdtsError::Truncated(self.data.len()))?;
            value = value << 1 | u32::from(byte >> (7 - self.pos % 8) & 1);
            self.pos += 1;
        }
        Ok(value)
    }

    fn object_type(&mut self) -> Result<u32, AdtsError> {
        match self.read(5)? {
            31 => Ok(32 + self.read(6)?),
            object_type => Ok(object_type),
        }
    }

    fn frequency_index(&mut self) -> Result<FrequencyIndex, AdtsError> {
        match self.read(4)? {
            15 => Ok(FrequencyIndex::Explicit(self.read(24)?)),
            index => Ok(FrequencyIndex::Index(index as usize)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(asc: &[u8]) -> Result<AdtsConfig, AdtsError> {
        AdtsConfig::from_audio_specific_config(asc, false)
    }

    /// What an ADTS parser reads back: (ID, profile, frequency index, channels, frame length).
    fn fields(frame: &[u8]) -> (u8, u8, u8, u8, usize) {
        assert_eq!(frame[0], 0xFF);
        assert_eq!(frame[1] & 0xF6, 0xF0, "syncword, layer 0");
        assert_eq!(frame[1] & 0x01, 1, "protection_absent");
        let fullness = (usize::from(frame[5] & 0x1F) << 6) | usize::from(frame[6] >> 2);
        assert_eq!(fullness, 0x7FF);
        assert_eq!(frame[6] & 3, 0, "one raw data block");
        (
            frame[1] >> 3 & 1,
            frame[2] >> 6,
            frame[2] >> 2 & 0x0F,
            (frame[2] & 1) << 2 | frame[3] >> 6,
            usize::from(frame[3] & 3) << 11
                | usize::from(frame[4]) << 3
                | usize::from(frame[5] >> 5),
        )
    }

    #[test]
    fn lc_stereo_44100() {
        // AOT 2, index 4, 2 channels: 00010 0100 0010 000 = 0x12 0x10
        let adts = config(&[0x12, 0x10]).unwrap();
        assert_eq!(adts.sample_rate(), 44100);
        assert_eq!(adts.frame_duration_ns(), 23_219_954);
        let mut out = vec![1, 2, 3];
        adts.write_frame(&[0xAB; 300], &mut out).unwrap();
        assert_eq!(out.len(), 307);
        assert_eq!(fields(&out), (0, 1, 4, 2, 307));
        assert_eq!(&out[7..], &[0xAB; 300][..]);
        // The same header ffmpeg's ADTS muxer writes for this stream.
        assert_eq!(&out[..7], &[0xFF, 0xF1, 0x50, 0x80, 0x26, 0x7F, 0xFC]);
    }

    #[test]
    fn mono_48000_with_sbr_sync_extension_and_mpeg2_id() {
        // What ffmpeg's aac encoder puts in FLV: LC, 48 kHz, mono, then a backward-compatible
        // SBR sync extension (0x2B7) that ADTS ignores.
        let adts =
            AdtsConfig::from_audio_specific_config(&[0x11, 0x88, 0x56, 0xE5, 0x00], true).unwrap();
        let mut out = Vec::new();
        adts.write_frame(&[0; 8184], &mut out).unwrap();
        assert_eq!(fields(&out), (1, 1, 3, 1, 8191));
        assert_eq!(
            adts.write_frame(&[0; 8185], &mut out),
            Err(AdtsError::FrameTooLong(8185))
        );
    }

    #[test]
    fn explicit_sbr_and_ps_become_the_core_profile_and_rate() {
        // AOT 5, core index 6 (24 kHz), 2 channels, extension index 3 (48 kHz), AOT 2:
        // 00101 0110 0010 0011 00010 0
        let he = config(&[0x2B, 0x11, 0x88]).unwrap();
        assert_eq!(he.sample_rate(), 24000);
        let mut out = Vec::new();
        he.write_frame(&[0; 10], &mut out).unwrap();
        assert_eq!(fields(&out), (0, 1, 6, 2, 17));
        // AOT 29 (PS), mono core: 11101 0110 0001 0011 00010 0
        let ps = config(&[0xEB, 0x09, 0x88]).unwrap();
        assert_eq!(ps.sample_rate(), 24000);
    }

    #[test]
    fn explicit_frequency_is_mapped_to_its_index_or_refused() {
        // AOT 2, index 15, 24-bit 48000 (0x00BB80), 2 channels, frameLengthFlag 0:
        // 00010 1111 000000001011101110000000 0010 0
        let standard = config(&[0x17, 0x80, 0x5D, 0xC0, 0x10]).unwrap();
        assert_eq!(standard.sample_rate(), 48000);
        // 47999 Hz (0x00BB7F) has no index.
        let odd = config(&[0x17, 0x80, 0x5D, 0xBF, 0x90]);
        assert!(
            matches!(&odd, Err(AdtsError::NotExpressible(why)) if why.contains("47999 Hz")),
            "{odd:?}"
        );
    }

    #[test]
    fn refuses_what_adts_cannot_say() {
        let refused = |asc: &[u8], needle: &str| match config(asc) {
            Err(AdtsError::NotExpressible(why)) => assert!(why.contains(needle), "{why}"),
            other => panic!("{asc:02x?}: {other:?}"),
        };
        // AOT 23 (ER AAC LD): 10111 0011 0001 0 → 0xB9 0x88
        refused(&[0xB9, 0x88], "object type 23");
        // Escaped AOT 32+10 = 42 (USAC): 11111 001010 0011 0001 0
        refused(&[0xF9, 0x46, 0x20], "object type 42");
        // Channel configuration 0: 00010 0100 0000 0
        refused(&[0x12, 0x00], "channel configuration 0");
        // 960-sample frames: frameLengthFlag 1: 00010 0100 0010 1
        refused(&[0x12, 0x14], "960");
        // Reserved index 13: 00010 1101 0010 0
        refused(&[0x16, 0x90], "reserved");
        assert_eq!(config(&[0x12]), Err(AdtsError::Truncated(1)));
        assert_eq!(config(&[]), Err(AdtsError::Truncated(0)));
    }
}
