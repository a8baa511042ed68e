//! NAL unit iteration over byte-stream (Annex B start codes) and length-prefixed (avcC) buffers.

use super::Error;

/// How NAL units are delimited in a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Annex B: each NAL unit follows a `00 00 01` start code.
    ByteStream,
    /// avc/avc3: each NAL unit follows its big-endian length in `length_size` bytes.
    LengthPrefixed { length_size: u8 },
}

/// One NAL unit: its header byte and what follows it.
///
/// In byte-stream framing `payload` runs to the end of the buffer: finding the real end would mean
/// scanning the whole NAL unit for the next start code. Readers built on `bits::RbspBytes` stop at
/// that start code by themselves.
#[derive(Clone, Copy, Debug)]
pub struct Nal<'a> {
    pub header: u8,
    pub payload: &'a [u8],
}

impl Nal<'_> {
    pub fn unit_type(&self) -> u8 {
        self.header & 0x1f
    }
}

/// Iterates over the NAL units of a buffer. Searching for the next start code only happens when
/// the next NAL unit is asked for, so stopping after the first slice costs nothing more.
pub struct NalUnits<'a> {
    data: &'a [u8],
    pos: usize,
    framing: Framing,
    /// Set at the end and after an error: framing errors leave nothing to resynchronise on.
    done: bool,
}

impl<'a> NalUnits<'a> {
    pub fn new(data: &'a [u8], framing: Framing) -> Self {
        NalUnits {
            data,
            pos: 0,
            framing,
            done: false,
        }
    }

    fn next_byte_stream(&mut self) -> Option<Result<&'a [u8], Error>> {
        match find_start_code(self.data, self.pos) {
            Some(start) => {
                self.pos = start + 1;
                Some(Ok(&self.data[start..]))
            }
            None => {
                self.done = true;
                (self.pos == 0).then_some(Err(Error::NoStartCode))
            }
        }
    }

    fn next_length_prefixed(&mut self, length_size: u8) -> Option<Result<&'a [u8], Error>> {
        let rest = &self.data[self.pos..];
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        let size = usize::from(length_size);
        let Some(field) = rest.get(..size) else {
            self.done = true;
            return Some(Err(Error::TruncatedLength {
                size: length_size,
                available: rest.len(),
            }));
        };
        let length = field
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let available = rest.len() - size;
        if length > available {
            self.done = true;
            return Some(Err(Error::LengthOverrun { length, available }));
        }
        self.pos += size + length;
        Some(Ok(&rest[size..size + length]))
    }
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = Result<Nal<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let unit = match self.framing {
                Framing::ByteStream => self.next_byte_stream()?,
                Framing::LengthPrefixed { length_size } => {
                    self.next_length_prefixed(length_size)?
                }
            };
            let unit = match unit {
                Ok(unit) => unit,
                Err(err) => return Some(Err(err)),
            };
            // Empty units (a zero length; in byte-stream two start codes in a row, which shows as
            // a zero header byte, i.e. the next start code) carry nothing: skip them.
            let Some((&header, payload)) = unit.split_first() else {
                continue;
            };
            if header == 0 && self.framing == Framing::ByteStream {
                continue;
            }
            if header & 0x80 != 0 {
                self.done = true;
                return Some(Err(Error::ForbiddenBit(header)));
            }
            return Some(Ok(Nal { header, payload }));
        }
        None
    }
}

/// Index of the first byte after the next `00 00 01` at or after `from`.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(offset) = memchr::memchr(1, data.get(at..)?) {
        let one = at + offset;
        if one >= 2 && data[one - 1] == 0 && data[one - 2] == 0 {
            return Some(one + 1);
        }
        at = one + 1;
    }
    None
}

/// NAL length size of an avcC record (`codec_data` of `stream-format=avc`/`avc3` caps).
pub fn nal_length_size(avcc: &[u8]) -> Result<u8, Error> {
    let [version, _profile, _compat, _level, sizes, ..] = *avcc else {
        return Err(Error::InvalidAvcC(format!(
            "{} bytes, at least 5 needed",
            avcc.len()
        )));
    };
    if version != 1 {
        return Err(Error::InvalidAvcC(format!(
            "configurationVersion {version} is not 1"
        )));
    }
    match (sizes & 0x03) + 1 {
        3 => Err(Error::InvalidAvcC(
            "lengthSizeMinusOne 2 is reserved".to_string(),
        )),
        size => Ok(size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(data: &[u8], framing: Framing) -> Vec<Result<u8, Error>> {
        NalUnits::new(data, framing)
            .map(|nal| nal.map(|nal| nal.unit_type()))
            .collect()
    }

    #[test]
    fn byte_stream_with_three_and_four_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x65, 0x88,
        ];
        assert_eq!(types(&data, Framing::ByteStream), [Ok(9), Ok(7), Ok(5)]);
        let nal = NalUnits::new(&data, Framing::ByteStream)
            .nth(2)
            .unwrap()
            .unwrap();
        assert_eq!(nal.payload, [0x88]);
    }

    #[test]
    fn byte_stream_skips_empty_units_and_leading_garbage() {
        let data = [7, 0, 0, 1, 0, 0, 1, 0x41, 0x9a];
        assert_eq!(types(&data, Framing::ByteStream), [Ok(1)]);
    }

    #[test]
    fn byte_stream_without_start_code_is_an_error() {
        assert_eq!(
            types(&[0x65, 0x88, 1, 0, 1], Framing::ByteStream),
            [Err(Error::NoStartCode)]
        );
        assert_eq!(types(&[], Framing::ByteStream), [Err(Error::NoStartCode)]);
    }

    #[test]
    fn length_prefixed_units() {
        let data = [0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 0, 0, 0, 0, 1, 0x65];
        let framing = Framing::LengthPrefixed { length_size: 4 };
        assert_eq!(types(&data, framing), [Ok(9), Ok(5)]);
        let framing = Framing::LengthPrefixed { length_size: 2 };
        assert_eq!(types(&[0, 1, 0x41, 0, 1, 0x01], framing), [Ok(1), Ok(1)]);
    }

    #[test]
    fn length_prefixed_errors() {
        let framing = Framing::LengthPrefixed { length_size: 4 };
        assert_eq!(
            types(&[0, 0, 0, 9, 0x65, 0x88], framing),
            [Err(Error::LengthOverrun {
                length: 9,
                available: 2
            })]
        );
        assert_eq!(
            types(&[0, 0, 0, 1, 0x09, 0, 0], framing),
            [
                Ok(9),
                Err(Error::TruncatedLength {
                    size: 4,
                    available: 2
                })
            ]
        );
        assert_eq!(
            types(&[0, 0, 0, 1, 0x85], framing),
            [Err(Error::ForbiddenBit(0x85))]
        );
    }

    #[test]
    fn avcc_length_size() {
        assert_eq!(nal_length_size(&[1, 0x64, 0, 0x1f, 0xff, 0xe1]), Ok(4));
        assert_eq!(nal_length_size(&[1, 0x64, 0, 0x1f, 0xfd]), Ok(2));
        assert!(matches!(
            nal_length_size(&[1, 0x64, 0, 0x1f, 0xfe]),
            Err(Error::InvalidAvcC(_))
        ));
        assert!(matches!(
            nal_length_size(&[0, 0x64, 0, 0x1f, 0xff]),
            Err(Error::InvalidAvcC(_))
        ));
        assert!(matches!(
            nal_length_size(&[1, 0x64]),
            Err(Error::InvalidAvcC(_))
        ));
    }
}
