//! SEI messages (H.264 7.3.2.3): only whether a recovery point (payload type 6) is present.

use super::Error;
use super::bits::RbspBytes;

const RECOVERY_POINT: u32 = 6;

/// Whether the SEI NAL unit payload (after the header byte) carries a recovery-point message,
/// which x264 attaches to the non-IDR I frames that start its open GOPs.
pub fn has_recovery_point(payload: &[u8]) -> Result<bool, Error> {
    let mut bytes = RbspBytes::new(payload);
    while bytes.more_data() {
        let payload_type = read_ff_coded(&mut bytes)?;
        if payload_type == RECOVERY_POINT {
            return Ok(true);
        }
        let size = read_ff_coded(&mut bytes)?;
        for _ in 0..size {
            bytes
                .next_byte()
                .ok_or(Error::Truncated("SEI message payload"))?;
        }
    }
    Ok(false)
}

/// payloadType / payloadSize: a run of 0xff bytes, each adding 255, then the last byte.
fn read_ff_coded(bytes: &mut RbspBytes) -> Result<u32, Error> {
    let mut value = 0u32;
    loop {
        let byte = bytes
            .next_byte()
            .ok_or(Error::Truncated("SEI message header"))?;
        // A real message is far below this bound; it keeps garbage from overflowing.
        value = value.saturating_add(u32::from(byte));
        if byte != 0xff {
            return Ok(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_recovery_point_after_other_messages() {
        // user data unregistered (5) with 3 bytes, then recovery point (6), trailing bits.
        let sei = [5, 3, 0xaa, 0xbb, 0xcc, 6, 1, 0x84, 0x80];
        assert_eq!(has_recovery_point(&sei), Ok(true));
    }

    #[test]
    fn other_messages_only() {
        // buffering period (0), pic timing (1), then trailing bits and a following start code.
        let sei = [0, 1, 0x80, 1, 2, 0x12, 0x34, 0x80, 0, 0, 1, 0x65];
        assert_eq!(has_recovery_point(&sei), Ok(false));
    }

    #[test]
    fn long_payload_with_ff_coded_size_and_emulation_prevention() {
        let mut sei = vec![5, 0xff, 0x01]; // 256 bytes of user data
        sei.extend([0, 0, 3, 0]);
        sei.extend([0x11; 253]);
        sei.extend([6, 1, 0x84, 0x80]);
        assert_eq!(has_recovery_point(&sei), Ok(true));
    }

    #[test]
    fn truncated_messages_are_errors() {
        assert_eq!(
            has_recovery_point(&[5, 10, 1, 2]),
            Err(Error::Truncated("SEI message payload"))
        );
        assert_eq!(
            has_recovery_point(&[0xff, 0xff]),
            Err(Error::Truncated("SEI message header"))
        );
    }
}
