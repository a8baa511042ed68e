//! A progressive MP4 (`ftyp` + `moov` + `mdat`) remuxed from a recording's CMAF files without
//! re-encoding: the sample entries come from the init segments (one per distinct init of a
//! track), the sample tables from each fragment's `trun`, and the samples stay where they are.
//!
//! The writer never holds sample data: each fragment's samples become one chunk, a byte range
//! of its segment file ([`Chunk`]), and the `mdat` payload is those ranges back to back in the
//! order the fragments were added. So the whole `moov` (its `co64` offsets included) is known
//! before the first `mdat` byte, which lets a server stream the file from the segment files and
//! answer byte ranges of it without a copy. Memory: the sample tables, about 4 bytes per sample
//! plus a few per chunk, and one [`Chunk`] per fragment.

mod fragments;
mod tables;

use mp4_atom::{Codec, Decode, Encode, FourCC, Ftyp, Header, Moov, Mvhd, Stbl, Stsd, Trak, Trex};

pub use fragments::{BoxHeader, Run, Sample, box_header, decode_moof, runs};
use tables::SampleTables;

/// The `mvhd` timescale: milliseconds, enough for a movie's duration.
const MOVIE_TIMESCALE: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum Mp4Error {
    #[error("MP4 box: {0}")]
    Atom(#[from] mp4_atom::Error),
    #[error("init segment: {0}")]
    Init(&'static str),
    #[error("fragment: {0}")]
    Fragment(&'static str),
}

/// A byte range of one of the caller's files (the number it passed with the fragment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub file: usize,
    pub offset: u64,
    pub len: u64,
}

/// The finished file: `header` (`ftyp`, `moov`, the `mdat` header), then the bytes of `chunks`
/// in order; `size` bytes in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mp4File {
    pub header: Vec<u8>,
    pub chunks: Vec<Chunk>,
    pub size: u64,
}

struct Track {
    /// The first init's `trak`, its sample tables replaced when the file is written.
    trak: Trak,
    trex: Trex,
    /// One sample entry per distinct init (`stsd`, 1-based in `stsc`).
    entries: Vec<Codec>,
    tables: SampleTables,
}

impl Track {
    fn handler(&self) -> FourCC {
        self.trak.mdia.hdlr.handler
    }

    fn timescale(&self) -> u32 {
        self.trak.mdia.mdhd.timescale
    }
}

/// Builds a progressive MP4 from init segments and fragments, added in the order their samples
/// go in the `mdat`.
#[derive(Default)]
pub struct Mp4Writer {
    tracks: Vec<Track>,
    chunks: Vec<Chunk>,
    payload_len: u64,
}

impl Mp4Writer {
    pub fn new() -> Mp4Writer {
        Mp4Writer::default()
    }

    /// Reads an init segment (`ftyp` + `moov` of one track). Returns the track it belongs to
    /// (one per handler type: video, audio) and its sample description index there, for
    /// [`Mp4Writer::add_fragment`]. An init equal to one seen before shares its entry.
    pub fn add_init(&mut self, init: &[u8]) -> Result<(usize, u32), Mp4Error> {
        let mut cursor = std::io::Cursor::new(init);
        Ftyp::decode(&mut cursor)?;
        let moov = Moov::decode(&mut cursor)?;
        let mut trak = moov
            .trak
            .into_iter()
            .next()
            .ok_or(Mp4Error::Init("no trak"))?;
        let trex = (moov.mvex.iter().flat_map(|m| m.trex.iter()))
            .find(|t| t.track_id == trak.tkhd.track_id)
            .cloned()
            .ok_or(Mp4Error::Init("no trex for its track"))?;
        let codecs = std::mem::take(&mut trak.mdia.minf.stbl.stsd.codecs);
        let entry = codecs
            .into_iter()
            .next()
            .ok_or(Mp4Error::Init("no sample entry"))?;
        let (handler, timescale) = (trak.mdia.hdlr.handler, trak.mdia.mdhd.timescale);
        let position = self.tracks.iter().position(|t| t.handler() == handler);
        let index = match position {
            Some(index) => index,
            None => {
                self.tracks.push(Track {
                    trak,
                    trex: trex.clone(),
                    entries: Vec::new(),
                    tables: SampleTables::default(),
                });
                self.tracks.len() - 1
            }
        };
        let track = &mut self.tracks[index];
        if track.timescale() != timescale {
            return Err(Mp4Error::Init(
                "a timescale other than the track's first init",
            ));
        }
        track.trex = trex;
        let description = match track.entries.iter().position(|e| *e == entry) {
            Some(at) => at + 1,
            None => {
                track.entries.push(entry);
                track.entries.len()
            }
        };
        Ok((index, description as u32))
    }

    /// Adds the samples of one fragment: `moof` is the whole `moof` box found at byte
    /// `moof_offset` of the caller's file number `file`, for `track` as `add_init` named it.
    pub fn add_fragment(
        &mut self,
        track: usize,
        description: u32,
        file: usize,
        moof_offset: u64,
        moof: &[u8],
    ) -> Result<(), Mp4Error> {
        let track = (self.tracks.get_mut(track)).ok_or(Mp4Error::Fragment("unknown track"))?;
        for run in runs(&decode_moof(moof)?, &track.trex)? {
            let len = run.data_len();
            if len == 0 {
                continue;
            }
            track
                .tables
                .push_chunk(self.payload_len, &run.samples, description);
            self.chunks.push(Chunk {
                file,
                offset: moof_offset + run.data_offset,
                len,
            });
            self.payload_len += len;
        }
        Ok(())
    }

    /// The file: its header and the chunks that follow it.
    pub fn finish(self) -> Result<Mp4File, Mp4Error> {
        // `co64` entries have a fixed size: the header's length does not depend on the offsets
        // written in it, so measure it with offsets from 0, then write them from its end.
        let payload_start = self.header(0)?.len() as u64;
        let header = self.header(payload_start)?;
        debug_assert_eq!(header.len() as u64, payload_start);
        Ok(Mp4File {
            size: header.len() as u64 + self.payload_len,
            header,
            chunks: self.chunks,
        })
    }

    /// `ftyp`, `moov` (chunk offsets from `payload_start`) and the `mdat` header.
    fn header(&self, payload_start: u64) -> Result<Vec<u8>, Mp4Error> {
        let base = payload_start;
        let traks: Vec<Trak> = (self.tracks.iter())
            .filter(|t| t.tables.sample_count() > 0)
            .enumerate()
            .map(|(i, t)| trak(t, i as u32 + 1, base))
            .collect();
        let movie_duration = traks.iter().map(|t| t.tkhd.duration).max().unwrap_or(0);
        let moov = Moov {
            mvhd: Mvhd {
                timescale: MOVIE_TIMESCALE,
                duration: movie_duration,
                rate: 1.into(),
                volume: 1.into(),
                next_track_id: traks.len() as u32 + 1,
                ..Default::default()
            },
            trak: traks,
            ..Default::default()
        };
        let ftyp = Ftyp {
            major_brand: b"isom".into(),
            minor_version: 512,
            compatible_brands: vec![
                b"isom".into(),
                b"iso2".into(),
                b"avc1".into(),
                b"mp41".into(),
            ],
        };
        let mut out = Vec::new();
        ftyp.encode(&mut out)?;
        moov.encode(&mut out)?;
        let payload =
            usize::try_from(self.payload_len).map_err(|_| mp4_atom::Error::InvalidSize)?;
        Header {
            kind: FourCC::new(b"mdat"),
            size: Some(payload),
        }
        .encode(&mut out)?;
        Ok(out)
    }
}

/// The track's `trak` with its tables, numbered `track_id`, chunk offsets from `base`.
fn trak(track: &Track, track_id: u32, base: u64) -> Trak {
    let (stts, ctts, stss, stsc, stsz, co64) = track.tables.boxes(base);
    let mut trak = track.trak.clone();
    let timescale = u64::from(track.timescale().max(1));
    trak.tkhd.track_id = track_id;
    trak.tkhd.duration = track.tables.duration * u64::from(MOVIE_TIMESCALE) / timescale;
    trak.mdia.mdhd.duration = track.tables.duration;
    trak.edts = None;
    trak.mdia.minf.stbl = Stbl {
        stsd: Stsd {
            codecs: track.entries.clone(),
        },
        stts,
        ctts,
        stss,
        stsc,
        stsz,
        co64: Some(co64),
        ..Default::default()
    };
    trak
}

#[cfg(test)]
mod tests;
