//! Classification of an access unit by its first slice.

use super::nal::{Framing, NalUnits};
use super::{Error, nal_type, parse_slice_header, sei, slice::SliceType};

/// The kind of picture an access unit carries, from its first slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PictureKind {
    /// IDR picture: starts a closed GOP.
    Idr,
    /// I picture with a recovery-point SEI: x264's open-GOP keyframe.
    RecoveryPointI,
    /// Any other I (or SI) picture.
    I,
    /// P (or SP) picture.
    P,
    B,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessUnit {
    pub kind: PictureKind,
    /// Non-zero when the buffer does not start a picture (e.g. `alignment=nal`, a later slice).
    pub first_mb_in_slice: u32,
}

/// Classifies the access unit in `data` from its NAL headers, SEI and first slice header; returns
/// `None` for a buffer without slices (e.g. only SPS/PPS). Stops at the first slice: the cost does
/// not depend on the size of the picture.
pub fn inspect_access_unit(data: &[u8], framing: Framing) -> Result<Option<AccessUnit>, Error> {
    let mut recovery_point = false;
    for nal in NalUnits::new(data, framing) {
        let nal = nal?;
        match nal.unit_type() {
            nal_type::SEI => recovery_point |= sei::has_recovery_point(nal.payload)?,
            unit_type @ nal_type::SLICE..=nal_type::IDR => {
                let header = parse_slice_header(nal.payload)?;
                let kind = match (unit_type, header.slice_type) {
                    (nal_type::IDR, _) => PictureKind::Idr,
                    (_, SliceType::I | SliceType::Si) if recovery_point => {
                        PictureKind::RecoveryPointI
                    }
                    (_, SliceType::I | SliceType::Si) => PictureKind::I,
                    (_, SliceType::P | SliceType::Sp) => PictureKind::P,
                    (_, SliceType::B) => PictureKind::B,
                };
                return Ok(Some(AccessUnit {
                    kind,
                    first_mb_in_slice: header.first_mb_in_slice,
                }));
            }
            _ => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUD: [u8; 6] = [0, 0, 0, 1, 0x09, 0xf0];
    const SPS_PPS: [u8; 12] = [0, 0, 0, 1, 0x67, 0x64, 0, 0x0d, 0, 0, 1, 0x68];
    const RECOVERY_SEI: [u8; 9] = [0, 0, 0, 1, 0x06, 6, 1, 0x84, 0x80];

    fn au(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn kind(data: &[u8]) -> Option<PictureKind> {
        inspect_access_unit(data, Framing::ByteStream)
            .unwrap()
            .map(|au| au.kind)
    }

    #[test]
    fn classifies_pictures() {
        // IDR slice, ue(0) ue(7); big payload must not matter.
        let idr = au(&[&AUD, &SPS_PPS, &[0, 0, 1, 0x65, 0x88, 0x84], &[0x55; 4096]]);
        assert_eq!(kind(&idr), Some(PictureKind::Idr));
        let i = au(&[&AUD, &[0, 0, 1, 0x41, 0x88, 0x84]]);
        assert_eq!(kind(&i), Some(PictureKind::I));
        let open = au(&[&AUD, &RECOVERY_SEI, &[0, 0, 1, 0x41, 0x88, 0x84]]);
        assert_eq!(kind(&open), Some(PictureKind::RecoveryPointI));
        // Intra refresh: recovery point on a P picture is not a keyframe.
        let p = au(&[&AUD, &RECOVERY_SEI, &[0, 0, 1, 0x41, 0x9a]]);
        assert_eq!(kind(&p), Some(PictureKind::P));
        let b = au(&[&AUD, &[0, 0, 1, 0x01, 0x9e]]);
        assert_eq!(kind(&b), Some(PictureKind::B));
        assert_eq!(kind(&au(&[&AUD, &SPS_PPS])), None);
    }

    #[test]
    fn reports_first_mb_of_a_later_slice() {
        // ue(3)=00100, ue(5)=00110 → 0010_0001, 1000_0000
        let slice = [0, 0, 1, 0x41, 0x21, 0x80];
        let unit = inspect_access_unit(&slice, Framing::ByteStream)
            .unwrap()
            .unwrap();
        assert_eq!(unit.first_mb_in_slice, 3);
        assert_eq!(unit.kind, PictureKind::P);
    }

    #[test]
    fn length_prefixed_access_unit() {
        let data = [0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 3, 0x65, 0x88, 0x84];
        let framing = Framing::LengthPrefixed { length_size: 4 };
        let unit = inspect_access_unit(&data, framing).unwrap().unwrap();
        assert_eq!(unit.kind, PictureKind::Idr);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x1234_5678u32;
        for len in 0..2000usize {
            let data: Vec<u8> = (0..len % 97)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    // Plenty of zeros and ones so that start codes and EPBs occur.
                    match state >> 28 {
                        0..=5 => 0,
                        6..=7 => 1,
                        _ => (state >> 20) as u8,
                    }
                })
                .collect();
            for framing in [
                Framing::ByteStream,
                Framing::LengthPrefixed { length_size: 1 },
                Framing::LengthPrefixed { length_size: 4 },
            ] {
                let _ = inspect_access_unit(&data, framing);
            }
        }
    }

    #[test]
    fn malformed_units_are_errors() {
        let truncated = au(&[&AUD, &[0, 0, 1, 0x65]]);
        assert_eq!(
            inspect_access_unit(&truncated, Framing::ByteStream),
            Err(Error::Truncated("slice header"))
        );
        let bad_sei = au(&[&[0, 0, 1, 0x06, 5, 40, 1], &[0, 0, 1, 0x65, 0x88]]);
        assert_eq!(
            inspect_access_unit(&bad_sei, Framing::ByteStream),
            Err(Error::Truncated("SEI message payload"))
        );
    }
}
