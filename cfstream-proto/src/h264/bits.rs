//! RBSP reading: emulation-prevention removal and exp-Golomb codes, on the fly and only over the
//! bytes actually read (a slice header needs a handful of bytes out of a 100 KB slice).

use super::Error;

/// Yields the RBSP bytes of a NAL unit payload: drops emulation-prevention bytes (`00 00 03`) and
/// ends at a start code (`00 00 0x`, x ≤ 2), which cannot occur inside a NAL unit. A reader given
/// "the rest of the buffer" in byte-stream framing therefore stops at the end of its NAL unit
/// without that end having been searched for first.
#[derive(Clone)]
pub struct RbspBytes<'a> {
    data: &'a [u8],
    pos: usize,
    zeros: u8,
}

impl<'a> RbspBytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        RbspBytes {
            data,
            pos: 0,
            zeros: 0,
        }
    }

    pub fn next_byte(&mut self) -> Option<u8> {
        loop {
            let byte = *self.data.get(self.pos)?;
            if self.zeros >= 2 {
                match byte {
                    3 => {
                        self.pos += 1;
                        self.zeros = 0;
                        continue;
                    }
                    0..=2 => {
                        self.pos = self.data.len();
                        return None;
                    }
                    _ => {}
                }
            }
            self.pos += 1;
            self.zeros = if byte == 0 {
                self.zeros.saturating_add(1)
            } else {
                0
            };
            return Some(byte);
        }
    }

    /// Whether RBSP data other than the trailing bits (`80`, then zero bytes) remains.
    pub fn more_data(&self) -> bool {
        let mut rest = self.clone();
        match rest.next_byte() {
            None => false,
            Some(0x80) => std::iter::from_fn(|| rest.next_byte()).any(|b| b != 0),
            Some(_) => true,
        }
    }
}

/// Big-endian bit reader over RBSP bytes.
pub struct BitReader<'a> {
    bytes: RbspBytes<'a>,
    /// Unread bits, left-aligned.
    cache: u64,
    cached: u32,
    /// Named in errors.
    what: &'static str,
}

impl<'a> BitReader<'a> {
    pub fn new(payload: &'a [u8], what: &'static str) -> Self {
        BitReader {
            bytes: RbspBytes::new(payload),
            cache: 0,
            cached: 0,
            what,
        }
    }

    fn refill(&mut self, wanted: u32) -> Result<(), Error> {
        while self.cached < wanted {
            let byte = self.bytes.next_byte().ok_or(Error::Truncated(self.what))?;
            self.cache |= u64::from(byte) << (56 - self.cached);
            self.cached += 8;
        }
        Ok(())
    }

    /// Reads `count` (≤ 32) bits.
    pub fn read_bits(&mut self, count: u32) -> Result<u32, Error> {
        debug_assert!(count <= 32);
        if count == 0 {
            return Ok(0);
        }
        self.refill(count)?;
        let value = (self.cache >> (64 - count)) as u32;
        self.cache <<= count;
        self.cached -= count;
        Ok(value)
    }

    /// Reads an unsigned exp-Golomb code, ue(v).
    pub fn read_ue(&mut self) -> Result<u32, Error> {
        let mut leading_zeros = 0;
        while self.read_bits(1)? == 0 {
            leading_zeros += 1;
            if leading_zeros > 31 {
                return Err(Error::ExpGolombTooLong(self.what));
            }
        }
        let suffix = self.read_bits(leading_zeros)?;
        Ok(((1u64 << leading_zeros) - 1 + u64::from(suffix)) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rbsp(data: &[u8]) -> Vec<u8> {
        let mut bytes = RbspBytes::new(data);
        std::iter::from_fn(|| bytes.next_byte()).collect()
    }

    #[test]
    fn removes_emulation_prevention_bytes() {
        assert_eq!(rbsp(&[0, 0, 3, 1, 0, 0, 3, 0, 7]), [0, 0, 1, 0, 0, 0, 7]);
    }

    #[test]
    fn stops_at_start_code() {
        assert_eq!(rbsp(&[5, 6, 0, 0, 1, 9, 9]), [5, 6, 0, 0]);
        assert_eq!(rbsp(&[5, 0, 0, 0, 1, 9]), [5, 0, 0]);
    }

    #[test]
    fn more_data_ignores_trailing_bits() {
        assert!(!RbspBytes::new(&[0x80]).more_data());
        assert!(!RbspBytes::new(&[0x80, 0, 0, 0, 1, 5]).more_data());
        assert!(RbspBytes::new(&[0x80, 0x12]).more_data());
        assert!(RbspBytes::new(&[0x06]).more_data());
        assert!(!RbspBytes::new(&[]).more_data());
    }

    #[test]
    fn reads_exp_golomb() {
        // 1 | 010 | 011 | 00100 | 0001000 → 0, 1, 2, 3, 7
        let data = [0b1010_0110, 0b0100_0001, 0b0000_0000];
        let mut reader = BitReader::new(&data, "test");
        let values: Vec<u32> = (0..5).map(|_| reader.read_ue().unwrap()).collect();
        assert_eq!(values, [0, 1, 2, 3, 7]);
    }

    #[test]
    fn exp_golomb_across_emulation_prevention() {
        // RBSP 00 00 01 ff ff fe: 23 zeros, a one, 23 ones, a zero; the raw bytes need an
        // emulation-prevention byte.
        let data = [0x00, 0x00, 0x03, 0x01, 0xff, 0xff, 0xfe];
        let mut reader = BitReader::new(&data, "test");
        assert_eq!(reader.read_ue().unwrap(), (1 << 24) - 2);
        assert_eq!(reader.read_bits(1).unwrap(), 0);
    }

    #[test]
    fn rejects_overlong_and_truncated_codes() {
        let zeros = [0u8, 0, 3, 0, 0, 3, 0, 0, 3, 0, 0, 3, 0, 0, 3, 0];
        let mut reader = BitReader::new(&zeros, "slice header");
        assert_eq!(
            reader.read_ue(),
            Err(Error::ExpGolombTooLong("slice header"))
        );
        let mut reader = BitReader::new(&[0b0000_0001], "slice header");
        assert_eq!(reader.read_ue(), Err(Error::Truncated("slice header")));
    }
}
