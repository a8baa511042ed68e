//! The start of a slice header (H.264 7.3.3): `first_mb_in_slice` and `slice_type`.

use super::Error;
use super::bits::BitReader;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceType {
    P,
    B,
    I,
    Sp,
    Si,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceHeader {
    pub first_mb_in_slice: u32,
    pub slice_type: SliceType,
}

/// Parses the first two fields of a slice header from the payload after the NAL header byte.
pub fn parse_slice_header(payload: &[u8]) -> Result<SliceHeader, Error> {
    let mut bits = BitReader::new(payload, "slice header");
    let first_mb_in_slice = bits.read_ue()?;
    // Values 5..=9 mean the same type as value - 5, for every slice of the picture.
    let slice_type = match bits.read_ue()? {
        0 | 5 => SliceType::P,
        1 | 6 => SliceType::B,
        2 | 7 => SliceType::I,
        3 | 8 => SliceType::Sp,
        4 | 9 => SliceType::Si,
        other => return Err(Error::SliceTypeOutOfRange(other)),
    };
    Ok(SliceHeader {
        first_mb_in_slice,
        slice_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_first_mb_and_type() {
        // ue(0)=1, ue(7)=0001000 → 1000_1000
        assert_eq!(
            parse_slice_header(&[0x88, 0x84]),
            Ok(SliceHeader {
                first_mb_in_slice: 0,
                slice_type: SliceType::I
            })
        );
        // ue(2)=011, ue(1)=010 → 0110_1000
        assert_eq!(
            parse_slice_header(&[0x68]),
            Ok(SliceHeader {
                first_mb_in_slice: 2,
                slice_type: SliceType::B
            })
        );
        // ue(0)=1, ue(5)=00110 → 1001_1000
        assert_eq!(
            parse_slice_header(&[0x98]).unwrap().slice_type,
            SliceType::P
        );
    }

    #[test]
    fn rejects_bad_headers() {
        // ue(0)=1, ue(10)=0001011 → 1000_1011
        assert_eq!(
            parse_slice_header(&[0x8b]),
            Err(Error::SliceTypeOutOfRange(10))
        );
        assert_eq!(
            parse_slice_header(&[]),
            Err(Error::Truncated("slice header"))
        );
        // A start code right after the header byte ends the NAL unit.
        assert_eq!(
            parse_slice_header(&[0, 0, 1, 0x88]),
            Err(Error::Truncated("slice header"))
        );
    }
}
