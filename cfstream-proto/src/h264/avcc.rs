//! The avcC record (AVCDecoderConfigurationRecord, ISO/IEC 14496-15 §5.3.3.1) of
//! `stream-format=avc`/`avc3` caps, and the conversion of its length-prefixed access units to the
//! Annex B byte stream an MPEG-TS carries.

use super::Error;
use super::nal::{Framing, NalUnits, nal_length_size};

const NAL_AUD: u8 = 9;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// What an avcC record says about the access units that follow it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcConfig {
    /// Size of the NAL unit length fields: 1, 2 or 4.
    pub length_size: u8,
    /// The record's SPS and then PPS NAL units, each behind a four-byte start code (empty when
    /// the record lists none, as avc3 may).
    pub parameter_sets: Vec<u8>,
}

impl AvcConfig {
    /// Reads an avcC record; the SPS/PPS extension of high profiles after the PPS is ignored.
    pub fn parse(avcc: &[u8]) -> Result<Self, Error> {
        let length_size = nal_length_size(avcc)?;
        let mut parameter_sets = Vec::new();
        let mut pos = 5;
        for (kind, count_mask) in [("SPS", 0x1F), ("PPS", 0xFF)] {
            let count = *avcc
                .get(pos)
                .ok_or_else(|| invalid(format!("ends before the number of {kind}")))?
                & count_mask;
            pos += 1;
            for _ in 0..count {
                let length = avcc
                    .get(pos..pos + 2)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                    .ok_or_else(|| invalid(format!("{kind} length truncated")))?;
                let nal = avcc
                    .get(pos + 2..pos + 2 + length)
                    .ok_or_else(|| invalid(format!("{kind} of {length} bytes truncated")))?;
                pos += 2 + length;
                if !nal.is_empty() {
                    parameter_sets.extend_from_slice(&START_CODE);
                    parameter_sets.extend_from_slice(nal);
                }
            }
        }
        Ok(AvcConfig {
            length_size,
            parameter_sets,
        })
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidAvcC(reason)
}

/// Replaces the contents of `out` with the access unit `au` (NAL units behind `length_size`-byte
/// lengths) in Annex B framing: a four-byte start code in front of every NAL unit, so that the
/// result is as long as `au` for the usual 4-byte lengths.
///
/// With `parameter_sets` (Annex B SPS/PPS, e.g. [`AvcConfig::parameter_sets`]; meant for
/// keyframes), an access unit that lacks an SPS or a PPS of its own gets them in front of its
/// first NAL unit other than an access unit delimiter: an avc stream keeps them out of band,
/// a segment must carry them to decode on its own.
pub fn to_annex_b(
    au: &[u8],
    length_size: u8,
    parameter_sets: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    out.clear();
    let framing = Framing::LengthPrefixed { length_size };
    let mut insert = match parameter_sets {
        Some(sets) if !sets.is_empty() => {
            let (mut sps, mut pps) = (false, false);
            for nal in NalUnits::new(au, framing) {
                match nal?.unit_type() {
                    NAL_SPS => sps = true,
                    NAL_PPS => pps = true,
                    _ => {}
                }
            }
            (!(sps && pps)).then_some(sets)
        }
        _ => None,
    };
    // Shorter length fields than 4 bytes grow a little; the vector grows as needed then.
    out.reserve(au.len() + insert.map_or(0, <[u8]>::len));
    for nal in NalUnits::new(au, framing) {
        let nal = nal?;
        if nal.unit_type() != NAL_AUD
            && let Some(sets) = insert.take()
        {
            out.extend_from_slice(sets);
        }
        out.extend_from_slice(&START_CODE);
        out.push(nal.header);
        out.extend_from_slice(nal.payload);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x64, 0x00, 0x1F, 0xAC];
    const PPS: &[u8] = &[0x68, 0xEB, 0xE3, 0xCB];

    /// An avcC with the given length size, one SPS and one PPS.
    fn avcc(length_size: u8) -> Vec<u8> {
        let mut record = vec![1, 0x64, 0x00, 0x1F, 0xFC | (length_size - 1), 0xE1];
        record.extend_from_slice(&(SPS.len() as u16).to_be_bytes());
        record.extend_from_slice(SPS);
        record.push(1);
        record.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
        record.extend_from_slice(PPS);
        record.extend_from_slice(&[0xFD, 0xF8, 0xF8, 0x00]); // high profile extension
        record
    }

    fn length_prefixed(length_size: u8, nals: &[&[u8]]) -> Vec<u8> {
        let mut au = Vec::new();
        for nal in nals {
            let len = (nal.len() as u32).to_be_bytes();
            au.extend_from_slice(&len[4 - usize::from(length_size)..]);
            au.extend_from_slice(nal);
        }
        au
    }

    fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|nal| [&START_CODE[..], nal].concat())
            .collect()
    }

    #[test]
    fn parses_length_size_and_parameter_sets() {
        for length_size in [1, 2, 4] {
            let config = AvcConfig::parse(&avcc(length_size)).unwrap();
            assert_eq!(config.length_size, length_size);
            assert_eq!(config.parameter_sets, annex_b(&[SPS, PPS]));
        }
        // avc3 may carry no parameter sets at all.
        let empty = AvcConfig::parse(&[1, 0x64, 0, 0x1F, 0xFF, 0xE0, 0]).unwrap();
        assert!(empty.parameter_sets.is_empty());
    }

    #[test]
    fn truncated_records_are_errors() {
        let record = avcc(4);
        for len in [0, 3, 5, 7, 10, 11, 13, 16, 18] {
            assert!(
                matches!(AvcConfig::parse(&record[..len]), Err(Error::InvalidAvcC(_))),
                "{len} bytes"
            );
        }
        assert!(
            AvcConfig::parse(&record[..20]).is_ok(),
            "extension optional"
        );
    }

    #[test]
    fn converts_delta_units_as_they_are() {
        let p: &[u8] = &[0x41, 0x9A, 0x00, 0x00, 0x03, 0x01];
        let sei: &[u8] = &[0x06, 0x05, 0x01, 0x80];
        for length_size in [1, 2, 4] {
            let mut out = vec![0xAA; 3]; // replaced, not appended to
            let au = length_prefixed(length_size, &[sei, p]);
            to_annex_b(&au, length_size, None, &mut out).unwrap();
            assert_eq!(out, annex_b(&[sei, p]), "length size {length_size}");
        }
    }

    #[test]
    fn keyframes_get_missing_parameter_sets_after_the_delimiter() {
        let sets = AvcConfig::parse(&avcc(4)).unwrap().parameter_sets;
        let aud: &[u8] = &[0x09, 0xF0];
        let idr: &[u8] = &[0x65, 0x88, 0x84, 0x00];
        let mut out = Vec::new();

        to_annex_b(&length_prefixed(4, &[idr]), 4, Some(&sets), &mut out).unwrap();
        assert_eq!(out, annex_b(&[SPS, PPS, idr]));

        to_annex_b(&length_prefixed(4, &[aud, idr]), 4, Some(&sets), &mut out).unwrap();
        assert_eq!(out, annex_b(&[aud, SPS, PPS, idr]));

        // In-band parameter sets (avc3, or an encoder repeating them) are kept as they are.
        let own_sps: &[u8] = &[0x67, 0x42, 0x00, 0x1E];
        let own_pps: &[u8] = &[0x68, 0xCE];
        let au = length_prefixed(4, &[own_sps, own_pps, idr]);
        to_annex_b(&au, 4, Some(&sets), &mut out).unwrap();
        assert_eq!(out, annex_b(&[own_sps, own_pps, idr]));

        // An SPS alone is not enough: the record's SPS and PPS both go in front.
        let au = length_prefixed(4, &[own_sps, idr]);
        to_annex_b(&au, 4, Some(&sets), &mut out).unwrap();
        assert_eq!(out, annex_b(&[SPS, PPS, own_sps, idr]));

        // Nothing to insert without parameter sets in the record.
        to_annex_b(&length_prefixed(4, &[idr]), 4, Some(&[]), &mut out).unwrap();
        assert_eq!(out, annex_b(&[idr]));
    }

    #[test]
    fn malformed_units_are_errors() {
        let mut out = Vec::new();
        assert_eq!(
            to_annex_b(&[0, 0, 0, 9, 0x65, 0x88], 4, None, &mut out),
            Err(Error::LengthOverrun {
                length: 9,
                available: 2
            })
        );
        let sets = annex_b(&[SPS, PPS]);
        assert!(to_annex_b(&[0, 0, 0, 1, 0x65, 0, 0], 4, Some(&sets), &mut out).is_err());
    }
}
