//! A CMAF chunk (one part): `moof` (`mfhd`, `traf` with `tfhd` default-base-is-moof, `tfdt` and
//! one `trun`) followed by the `mdat` holding its samples back to back.

use mp4_atom::{Encode, FourCC, Header, Mfhd, Moof, Tfdt, Tfhd, Traf, Trun, TrunEntry};

/// `sample_flags` (ISO/IEC 14496-12 §8.8.3.1) of a sync sample: depends on no other sample.
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample: depends on others, `sample_is_non_sync_sample`.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// One sample of a fragment, in the track's timescale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentSample {
    pub duration: u32,
    pub size: u32,
    /// A random access point (video keyframe; every audio frame).
    pub sync: bool,
    /// PTS − DTS, signed (`trun` version 1).
    pub composition_offset: i32,
}

/// Where a fragment goes: its track and timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentHeader {
    pub track_id: u32,
    /// `mfhd` sequence number: increases by one per fragment of the track.
    pub sequence_number: u32,
    /// `tfdt`: the decode time of the first sample, in the track's timescale.
    pub base_decode_time: u64,
    /// Write composition offsets (video); audio has none.
    pub composition_offsets: bool,
}

/// Appends `moof` + `mdat` of `samples` to `out`; `payload` is their data back to back, in as
/// many pieces as the caller holds it (as long as the sum of their sizes): the samples are
/// copied once, into `out`.
pub fn write_fragment<P: AsRef<[u8]>>(
    header: &FragmentHeader,
    samples: &[FragmentSample],
    payload: &[P],
    out: &mut Vec<u8>,
) -> Result<(), mp4_atom::Error> {
    let payload_len = payload.iter().map(|p| p.as_ref().len()).sum::<usize>();
    debug_assert_eq!(
        samples.iter().map(|s| s.size as usize).sum::<usize>(),
        payload_len
    );
    let entries = samples
        .iter()
        .map(|s| TrunEntry {
            duration: Some(s.duration),
            size: Some(s.size),
            flags: Some(if s.sync {
                SYNC_SAMPLE_FLAGS
            } else {
                NON_SYNC_SAMPLE_FLAGS
            }),
            cts: header
                .composition_offsets
                .then_some(i64::from(s.composition_offset)),
        })
        .collect::<Vec<_>>();
    let mut moof = Moof {
        mfhd: Mfhd {
            sequence_number: header.sequence_number,
        },
        traf: vec![Traf {
            tfhd: Tfhd {
                track_id: header.track_id,
                default_base_is_moof: true,
                ..Default::default()
            },
            tfdt: Some(Tfdt {
                base_media_decode_time: header.base_decode_time,
            }),
            trun: vec![Trun {
                data_offset: Some(0),
                samples: entries.into(),
            }],
            ..Default::default()
        }],
    };
    // The data offset counts from the start of the moof to the first sample, past the mdat
    // header; the moof's size does not depend on the offset's value, so measure it first.
    let start = out.len();
    moof.encode(out)?;
    let moof_size = out.len() - start;
    out.truncate(start);
    let mdat = Header {
        kind: FourCC::new(b"mdat"),
        size: Some(payload_len),
    };
    let mdat_header_size = if payload_len + 8 > u32::MAX as usize {
        16
    } else {
        8
    };
    let data_offset =
        i32::try_from(moof_size + mdat_header_size).map_err(|_| mp4_atom::Error::InvalidSize)?;
    moof.traf[0].trun[0].data_offset = Some(data_offset);
    out.reserve(moof_size + mdat_header_size + payload_len);
    moof.encode(out)?;
    mdat.encode(out)?;
    for piece in payload {
        out.extend_from_slice(piece.as_ref());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::{Decode, Mdat};

    #[test]
    fn fragment_points_at_its_samples_and_keeps_signed_offsets() {
        let samples = [
            FragmentSample {
                duration: 3000,
                size: 3,
                sync: true,
                composition_offset: 6000,
            },
            FragmentSample {
                duration: 3000,
                size: 2,
                sync: false,
                composition_offset: -3000,
            },
        ];
        let header = FragmentHeader {
            track_id: 1,
            sequence_number: 7,
            base_decode_time: 1 << 33,
            composition_offsets: true,
        };
        let mut out = vec![0xAA]; // appended to
        write_fragment(
            &header,
            &samples,
            &[&[1u8, 2][..], &[3, 4, 5][..]],
            &mut out,
        )
        .unwrap();
        let bytes = &out[1..];
        let mut cursor = std::io::Cursor::new(bytes);
        let moof = Moof::decode(&mut cursor).unwrap();
        let moof_size = cursor.position() as usize;
        let mdat = Mdat::decode(&mut cursor).unwrap();
        assert_eq!(mdat.data, [1, 2, 3, 4, 5]);
        assert_eq!(cursor.position() as usize, bytes.len());

        assert_eq!(moof.mfhd.sequence_number, 7);
        let traf = &moof.traf[0];
        assert!(traf.tfhd.default_base_is_moof);
        assert_eq!(traf.tfdt.as_ref().unwrap().base_media_decode_time, 1 << 33);
        let trun = &traf.trun[0];
        let offset = trun.data_offset.unwrap() as usize;
        assert_eq!(offset, moof_size + 8);
        assert_eq!(&bytes[offset..offset + 3], &[1, 2, 3]);
        let entries: Vec<_> = trun.samples.iter().collect();
        assert_eq!(entries[0].flags, Some(SYNC_SAMPLE_FLAGS));
        assert_eq!(entries[1].flags, Some(NON_SYNC_SAMPLE_FLAGS));
        assert_eq!(entries[1].cts, Some(-3000));
        assert_eq!(entries[1].duration, Some(3000));
        assert_eq!(entries[1].size, Some(2));
        // trun version 1 (signed offsets): the version byte follows the box header.
        let trun_at = bytes.windows(4).position(|w| w == b"trun").unwrap();
        assert_eq!(bytes[trun_at + 4], 1);
    }

    #[test]
    fn audio_fragment_has_no_composition_offsets() {
        let samples = [FragmentSample {
            duration: 1024,
            size: 1,
            sync: true,
            composition_offset: 0,
        }];
        let header = FragmentHeader {
            track_id: 2,
            sequence_number: 1,
            base_decode_time: 0,
            composition_offsets: false,
        };
        let mut out = Vec::new();
        write_fragment(&header, &samples, &[[9]], &mut out).unwrap();
        let moof = Moof::decode(&mut std::io::Cursor::new(&out)).unwrap();
        let entry = moof.traf[0].trun[0].samples.get(0).unwrap();
        assert_eq!(entry.cts, None);
        assert_eq!(*out.last().unwrap(), 9);
    }
}
