//! Elementary streams as MPEG-TS carries them, turned into what CMAF samples hold: H.264 in
//! Annex B byte-stream framing becomes NAL units with 4-byte lengths (parameter sets go to the
//! init segment), and ADTS frames lose their header (its fields become the
//! AudioSpecificConfig).

/// What an Annex B access unit held besides its sample.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParameterSets<'a> {
    pub sps: Option<&'a [u8]>,
    pub pps: Option<&'a [u8]>,
}

/// NAL unit types not copied into samples: parameter sets (in the init segment) and access unit
/// delimiters (ISO/IEC 14496-15 §5.3.1 leaves them out of `avc1` samples).
const SPS: u8 = 7;
const PPS: u8 = 8;
const AUD: u8 = 9;

/// Appends the NAL units of an Annex B access unit to `out` with 4-byte lengths, except
/// parameter sets and delimiters, which are returned (the first of each).
pub fn annex_b_to_sample<'a>(data: &'a [u8], out: &mut Vec<u8>) -> ParameterSets<'a> {
    let mut sets = ParameterSets::default();
    for nal in annex_b_units(data) {
        match nal.first().map(|&h| h & 0x1f) {
            Some(SPS) => {
                sets.sps.get_or_insert(nal);
            }
            Some(PPS) => {
                sets.pps.get_or_insert(nal);
            }
            Some(AUD) | None => {}
            Some(_) => {
                out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                out.extend_from_slice(nal);
            }
        }
    }
    sets
}

/// The NAL units between `00 00 01` start codes (trailing zero bytes belong to the next start
/// code, or are `trailing_zero_8bits`).
pub fn annex_b_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = (starts.iter().skip(1))
        .map(|&next| next - 3)
        .chain(std::iter::once(data.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .filter_map(move |(start, end)| {
            let mut end = end;
            while end > start && data[end - 1] == 0 {
                end -= 1;
            }
            (end > start).then(|| &data[start..end])
        })
}

/// An ADTS frame's header, as an AudioSpecificConfig, and where its raw frame is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdtsFrame {
    /// Two bytes: object type, sampling frequency index, channel configuration.
    pub audio_specific_config: [u8; 2],
    /// Byte range of the raw AAC frame in the buffer.
    pub payload: std::ops::Range<usize>,
}

/// Reads the ADTS header at the start of `data` (ISO/IEC 13818-7 §6.2).
pub fn parse_adts(data: &[u8]) -> Result<AdtsFrame, String> {
    if data.len() < 7 {
        return Err(format!(
            "ADTS frame of {} bytes (the header alone is 7)",
            data.len()
        ));
    }
    if data[0] != 0xFF || data[1] & 0xF0 != 0xF0 {
        return Err("no ADTS sync word".into());
    }
    let protection_absent = data[1] & 1 == 1;
    let profile = data[2] >> 6;
    let frequency_index = (data[2] >> 2) & 0x0F;
    let channels = ((data[2] & 1) << 2) | (data[3] >> 6);
    let frame_length = (usize::from(data[3] & 0x03) << 11)
        | (usize::from(data[4]) << 3)
        | usize::from(data[5] >> 5);
    let header = if protection_absent { 7 } else { 9 };
    if data[6] & 0x03 != 0 {
        return Err("ADTS frame with several raw data blocks".into());
    }
    if frame_length < header || frame_length > data.len() {
        return Err(format!(
            "ADTS frame_length {frame_length} outside the header and the {} bytes given",
            data.len()
        ));
    }
    let object_type = profile + 1;
    let audio_specific_config = [
        (object_type << 3) | (frequency_index >> 1),
        ((frequency_index & 1) << 7) | (channels << 3),
    ];
    Ok(AdtsFrame {
        audio_specific_config,
        payload: header..frame_length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_becomes_length_prefixed_without_parameter_sets() {
        let au = [
            0, 0, 0, 1, 0x09, 0xF0, // AUD
            0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1F, // SPS
            0, 0, 1, 0x68, 0xEE, // PPS
            0, 0, 1, 0x65, 0x88, 0x84, 0x00, // IDR slice, with a trailing zero
        ];
        let mut out = Vec::new();
        let sets = annex_b_to_sample(&au, &mut out);
        assert_eq!(sets.sps, Some(&[0x67, 0x64, 0x00, 0x1F][..]));
        assert_eq!(sets.pps, Some(&[0x68, 0xEE][..]));
        assert_eq!(out, [0, 0, 0, 3, 0x65, 0x88, 0x84]);
        assert_eq!(annex_b_units(&[1, 2, 3]).count(), 0);
    }

    #[test]
    fn adts_header_gives_the_audio_specific_config() {
        // AAC-LC, 44.1 kHz (index 4), stereo, 10-byte frame without CRC.
        let frame = [0xFF, 0xF1, 0x50, 0x80, 0x01, 0x5F, 0xFC, 0xAA, 0xBB, 0xCC];
        let parsed = parse_adts(&frame).unwrap();
        assert_eq!(parsed.audio_specific_config, [0x12, 0x10]);
        assert_eq!(parsed.payload, 7..10);
        assert!(parse_adts(&frame[..5]).unwrap_err().contains("7"));
        assert!(parse_adts(&[0u8; 10]).unwrap_err().contains("sync"));
        assert!(
            parse_adts(&frame[..9])
                .unwrap_err()
                .contains("frame_length")
        );
    }
}
