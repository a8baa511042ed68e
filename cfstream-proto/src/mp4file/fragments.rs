//! Reading what a progressive file needs from CMAF fragments: box headers (to find the `moof`s
//! of a segment file without reading its `mdat`s) and each `trun`'s samples with the defaults of
//! `tfhd` and `trex` applied.

use mp4_atom::{Decode, Moof, Trex};

use super::Mp4Error;

/// `sample_is_non_sync_sample` in `sample_flags` (ISO/IEC 14496-12 §8.8.3.1).
const NON_SYNC_FLAG: u32 = 0x0001_0000;

/// More samples than any part holds (a part lasts at most a few seconds): a bound on what one
/// `trun` may make us allocate.
const MAX_SAMPLES_PER_RUN: usize = 100_000;

/// A box's type, header length and total size (header included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxHeader {
    pub kind: [u8; 4],
    pub header_len: u64,
    pub size: u64,
}

/// The header of the box starting at `bytes[0]` (16 bytes are enough for any), in a file where
/// `remaining` bytes are left from there (a size of 0 means "to the end of the file"). `None`:
/// fewer bytes than a header, or a size smaller than its header.
pub fn box_header(bytes: &[u8], remaining: u64) -> Option<BoxHeader> {
    let size32 = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?);
    let kind: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
    let (header_len, size) = match size32 {
        0 => (8, remaining),
        1 => (16, u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?)),
        n => (8, u64::from(n)),
    };
    (size >= header_len).then_some(BoxHeader {
        kind,
        header_len,
        size,
    })
}

/// One sample of a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub size: u32,
    pub duration: u32,
    pub sync: bool,
    /// PTS − DTS.
    pub composition_offset: i32,
}

/// The samples of one `trun`, stored back to back from `data_offset` bytes after the start of
/// the `moof` (CMAF: `default-base-is-moof`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub data_offset: u64,
    pub samples: Vec<Sample>,
}

impl Run {
    pub fn data_len(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.size)).sum()
    }
}

/// Decodes a whole `moof` box.
pub fn decode_moof(bytes: &[u8]) -> Result<Moof, Mp4Error> {
    Ok(Moof::decode(&mut std::io::Cursor::new(bytes))?)
}

/// The runs of the `traf` of `track_id` in `moof` (CMAF: one track per fragment), defaults
/// taken from its `tfhd`, then from `trex`.
pub fn runs(moof: &Moof, trex: &Trex) -> Result<Vec<Run>, Mp4Error> {
    let traf = (moof.traf.iter())
        .find(|t| t.tfhd.track_id == trex.track_id)
        .ok_or(Mp4Error::Fragment("no traf for the init's track"))?;
    if !traf.tfhd.default_base_is_moof || traf.tfhd.base_data_offset.is_some() {
        return Err(Mp4Error::Fragment("data offsets not relative to the moof"));
    }
    let tfhd = &traf.tfhd;
    let default_duration = tfhd
        .default_sample_duration
        .unwrap_or(trex.default_sample_duration);
    let default_size = tfhd.default_sample_size.unwrap_or(trex.default_sample_size);
    let default_flags = tfhd
        .default_sample_flags
        .unwrap_or(trex.default_sample_flags);
    let mut runs = Vec::with_capacity(traf.trun.len());
    for trun in &traf.trun {
        if trun.samples.len() > MAX_SAMPLES_PER_RUN {
            return Err(Mp4Error::Fragment(
                "trun with more samples than a part can hold",
            ));
        }
        let data_offset = trun
            .data_offset
            .and_then(|o| u64::try_from(o).ok())
            .ok_or(Mp4Error::Fragment("trun without a positive data offset"))?;
        let samples = trun.samples.iter().map(|entry| {
            let flags = entry.flags.unwrap_or(default_flags);
            Sample {
                size: entry.size.unwrap_or(default_size),
                duration: entry.duration.unwrap_or(default_duration),
                sync: flags & NON_SYNC_FLAG == 0,
                composition_offset: entry
                    .cts
                    .map_or(0, |c| c.clamp(i32::MIN.into(), i32::MAX.into()) as i32),
            }
        });
        runs.push(Run {
            data_offset,
            samples: samples.collect(),
        });
    }
    Ok(runs)
}
