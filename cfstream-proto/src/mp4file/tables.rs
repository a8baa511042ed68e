//! The sample tables of one track of a progressive file, grown one chunk at a time and
//! run-length coded as they grow (`stts`, `ctts`, `stsc`), so that the memory they take is about
//! what the encoded `moov` takes: 4 bytes per sample (`stsz`), plus a few per chunk and per
//! change of duration or composition offset.

use mp4_atom::{Co64, Ctts, CttsEntry, Stsc, StscEntry, Stss, Stsz, StszSamples, Stts, SttsEntry};

use super::fragments::Sample;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleTables {
    stts: Vec<SttsEntry>,
    ctts: Vec<CttsEntry>,
    /// 1-based numbers of the sync samples.
    stss: Vec<u32>,
    sizes: Vec<u32>,
    stsc: Vec<StscEntry>,
    /// Offsets of the chunks from the start of the `mdat` payload.
    chunk_offsets: Vec<u64>,
    /// Ticks of all samples.
    pub duration: u64,
}

impl SampleTables {
    pub fn sample_count(&self) -> usize {
        self.sizes.len()
    }

    /// Appends a chunk of `samples` found `offset` bytes into the `mdat` payload, described by
    /// sample entry `description` (1-based).
    pub fn push_chunk(&mut self, offset: u64, samples: &[Sample], description: u32) {
        if samples.is_empty() {
            return;
        }
        self.chunk_offsets.push(offset);
        let chunk = self.chunk_offsets.len() as u32;
        let same_layout = self.stsc.last().is_some_and(|last| {
            last.samples_per_chunk == samples.len() as u32
                && last.sample_description_index == description
        });
        if !same_layout {
            self.stsc.push(StscEntry {
                first_chunk: chunk,
                samples_per_chunk: samples.len() as u32,
                sample_description_index: description,
            });
        }
        for sample in samples {
            self.push_sample(sample);
        }
    }

    fn push_sample(&mut self, sample: &Sample) {
        self.sizes.push(sample.size);
        if sample.sync {
            self.stss.push(self.sizes.len() as u32);
        }
        self.duration = self.duration.saturating_add(u64::from(sample.duration));
        match self.stts.last_mut() {
            Some(last) if last.sample_delta == sample.duration => last.sample_count += 1,
            _ => self.stts.push(SttsEntry {
                sample_count: 1,
                sample_delta: sample.duration,
            }),
        }
        let offset = i64::from(sample.composition_offset);
        match self.ctts.last_mut() {
            Some(last) if last.sample_offset == offset => last.sample_count += 1,
            _ => self.ctts.push(CttsEntry {
                sample_count: 1,
                sample_offset: offset,
            }),
        }
    }

    /// The boxes, chunk offsets moved by `base` (where the `mdat` payload starts in the file).
    /// `ctts` is left out when no sample has an offset, `stss` when every sample is a sync
    /// sample (ISO/IEC 14496-12 §8.6.2: no `stss`, every sample is one).
    pub fn boxes(&self, base: u64) -> (Stts, Option<Ctts>, Option<Stss>, Stsc, Stsz, Co64) {
        let any_offset = self.ctts.iter().any(|e| e.sample_offset != 0);
        let all_sync = self.stss.len() == self.sizes.len();
        (
            Stts {
                entries: self.stts.clone(),
            },
            any_offset.then(|| Ctts {
                entries: self.ctts.clone(),
            }),
            (!all_sync).then(|| Stss {
                entries: self.stss.clone(),
            }),
            Stsc {
                entries: self.stsc.clone(),
            },
            Stsz {
                samples: StszSamples::Different {
                    sizes: self.sizes.clone(),
                },
            },
            Co64 {
                entries: self.chunk_offsets.iter().map(|o| o + base).collect(),
            },
        )
    }
}
