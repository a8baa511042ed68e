//! H.264 bitstream inspection (NAL units, slice types, SEI) without GStreamer.
//!
//! Only what `gopvalidate` needs to classify an access unit: NAL unit iteration over byte-stream
//! (Annex B) and length-prefixed (avcC) framing, the first two fields of a slice header and the
//! recovery-point SEI. Everything stops at the first slice of an access unit so that the cost per
//! access unit does not grow with the bitrate. Also the avcC record and the conversion of
//! length-prefixed access units to Annex B that `cfhlssink` needs for `stream-format=avc` input.

mod access_unit;
mod avcc;
pub(crate) mod bits;
mod nal;
mod sei;
mod slice;

pub use access_unit::{AccessUnit, PictureKind, inspect_access_unit};
pub use avcc::{AvcConfig, to_annex_b};
pub use nal::{Framing, Nal, NalUnits, nal_length_size};
pub use sei::has_recovery_point;
pub use slice::{SliceHeader, SliceType, parse_slice_header};

/// NAL unit types (H.264 table 7-1) that this module looks at.
pub mod nal_type {
    pub const SLICE: u8 = 1;
    pub const IDR: u8 = 5;
    pub const SEI: u8 = 6;
}

/// What was wrong with an H.264 access unit or `codec_data`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("no start code (00 00 01) in a byte-stream buffer")]
    NoStartCode,
    #[error("NAL unit length field truncated: {available} of {size} bytes")]
    TruncatedLength { size: u8, available: usize },
    #[error("NAL unit length {length} exceeds the {available} bytes left in the buffer")]
    LengthOverrun { length: usize, available: usize },
    #[error("forbidden_zero_bit is set in NAL unit header {0:#04x}")]
    ForbiddenBit(u8),
    #[error("{0} ends early")]
    Truncated(&'static str),
    #[error("exp-Golomb code longer than 32 bits in {0}")]
    ExpGolombTooLong(&'static str),
    #[error("slice_type {0} is out of range 0..=9")]
    SliceTypeOutOfRange(u32),
    #[error("codec_data is not an avcC record: {0}")]
    InvalidAvcC(String),
}
