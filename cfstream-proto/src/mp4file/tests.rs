use mp4_atom::{
    Co64, Ctts, CttsEntry, Decode, Ftyp, Header, Moov, Stsc, StscEntry, Stss, Stsz, StszSamples,
    Stts, SttsEntry,
};

use super::*;
use crate::cmaf::test_configs::{PPS, SPS_320X240_30FPS};
use crate::cmaf::{
    AudioConfig, FragmentHeader, FragmentSample, TrackConfig, VideoConfig, init_segment,
    write_fragment,
};

fn video_init() -> Vec<u8> {
    let video = VideoConfig::from_parameter_sets(SPS_320X240_30FPS, PPS).unwrap();
    init_segment(&TrackConfig::Video(video)).unwrap()
}

fn audio_init(asc: &[u8]) -> Vec<u8> {
    let audio = AudioConfig::from_audio_specific_config(asc).unwrap();
    init_segment(&TrackConfig::Audio(audio)).unwrap()
}

fn sample(duration: u32, size: u32, sync: bool, composition_offset: i32) -> FragmentSample {
    FragmentSample {
        duration,
        size,
        sync,
        composition_offset,
    }
}

/// A segment file of one fragment per entry of `parts`; sample data is the byte `fill`.
fn segment(track_id: u32, video: bool, parts: &[&[FragmentSample]], fill: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, samples) in parts.iter().enumerate() {
        let header = FragmentHeader {
            track_id,
            sequence_number: i as u32 + 1,
            base_decode_time: 0,
            composition_offsets: video,
        };
        let len: u32 = samples.iter().map(|s| s.size).sum();
        write_fragment(&header, samples, &[vec![fill; len as usize]], &mut out).unwrap();
    }
    out
}

/// The moofs of a file: (offset, bytes), found with `box_header` as a server would.
fn moofs(file: &[u8]) -> Vec<(u64, &[u8])> {
    let mut found = Vec::new();
    let mut at = 0usize;
    while at < file.len() {
        let header = box_header(&file[at..], (file.len() - at) as u64).unwrap();
        if &header.kind == b"moof" {
            found.push((at as u64, &file[at..at + header.size as usize]));
        }
        at += header.size as usize;
    }
    found
}

fn add_file(writer: &mut Mp4Writer, track: usize, description: u32, number: usize, file: &[u8]) {
    for (offset, moof) in moofs(file) {
        (writer.add_fragment(track, description, number, offset, moof)).unwrap();
    }
}

/// The file's bytes: header, then each chunk read from `files`.
fn assemble(mp4: &Mp4File, files: &[&[u8]]) -> Vec<u8> {
    let mut out = mp4.header.clone();
    for chunk in &mp4.chunks {
        let (from, to) = (chunk.offset as usize, (chunk.offset + chunk.len) as usize);
        out.extend_from_slice(&files[chunk.file][from..to]);
    }
    assert_eq!(out.len() as u64, mp4.size);
    out
}

#[test]
fn moov_tables_are_exact_for_two_tracks_two_runs_and_interleaved_chunks() {
    let video_init = video_init();
    // Two runs of audio: a new init (other AudioSpecificConfig, same 48 kHz timescale) in the
    // second one, and the same init again.
    let (audio_a, audio_b) = (audio_init(&[0x11, 0x90]), audio_init(&[0x11, 0x88]));
    let v0 = segment(
        1,
        true,
        &[
            &[sample(3000, 10, true, 6000), sample(3000, 4, false, -3000)],
            &[sample(3000, 5, false, 0)],
        ],
        0xA0,
    );
    let a0 = segment(2, false, &[&[sample(1024, 6, true, 0); 3]], 0xB0);
    let v1 = segment(
        1,
        true,
        &[&[sample(3000, 7, true, 3000), sample(1500, 2, false, 0)]],
        0xA1,
    );
    let a1 = segment(
        2,
        false,
        &[&[sample(1024, 3, true, 0), sample(512, 3, true, 0)]],
        0xB1,
    );
    let mut writer = Mp4Writer::new();
    let (video, v_desc) = writer.add_init(&video_init).unwrap();
    let (audio, a_desc) = writer.add_init(&audio_a).unwrap();
    assert_eq!((video, v_desc, audio, a_desc), (0, 1, 1, 1));
    add_file(&mut writer, video, v_desc, 0, &v0);
    add_file(&mut writer, audio, a_desc, 1, &a0);
    let (video_again, v_desc) = writer.add_init(&video_init).unwrap();
    let (audio_again, a_desc2) = writer.add_init(&audio_b).unwrap();
    assert_eq!((video_again, v_desc, audio_again, a_desc2), (0, 1, 1, 2));
    assert_eq!(
        writer.add_init(&audio_a).unwrap(),
        (1, 1),
        "a known init keeps its entry"
    );
    add_file(&mut writer, video, v_desc, 2, &v1);
    add_file(&mut writer, audio, a_desc2, 3, &a1);
    let mp4 = writer.finish().unwrap();

    let bytes = assemble(&mp4, &[&v0, &a0, &v1, &a1]);
    let mut cursor = std::io::Cursor::new(&bytes[..]);
    assert_eq!(
        Ftyp::decode(&mut cursor).unwrap().major_brand,
        b"isom".into()
    );
    let moov = Moov::decode(&mut cursor).unwrap();
    let mdat_header = Header::decode(&mut cursor).unwrap();
    let payload_start = cursor.position();
    assert_eq!(payload_start, mp4.header.len() as u64);
    assert_eq!(mdat_header.kind, b"mdat".into());
    assert_eq!(mdat_header.size, Some(bytes.len() - payload_start as usize));
    assert!(moov.mvex.is_none(), "not a fragmented file");
    assert_eq!(moov.mvhd.timescale, 1000);
    // Video: 5 samples, 3000 × 4 + 1500 ticks of 90 kHz = 150 ms (audio: 96 ms).
    assert_eq!(moov.mvhd.duration, 150);

    let v = &moov.trak[0];
    assert_eq!(
        (v.tkhd.track_id, v.tkhd.duration, v.mdia.mdhd.duration),
        (1, 150, 13_500)
    );
    let stbl = &v.mdia.minf.stbl;
    assert_eq!(stbl.stsd.codecs.len(), 1);
    let entry = |count, delta| SttsEntry {
        sample_count: count,
        sample_delta: delta,
    };
    assert_eq!(
        stbl.stts,
        Stts {
            entries: vec![entry(4, 3000), entry(1, 1500)]
        }
    );
    let offset = |count, offset| CttsEntry {
        sample_count: count,
        sample_offset: offset,
    };
    assert_eq!(
        stbl.ctts,
        Some(Ctts {
            entries: vec![
                offset(1, 6000),
                offset(1, -3000),
                offset(1, 0),
                offset(1, 3000),
                offset(1, 0)
            ]
        })
    );
    assert_eq!(
        stbl.stss,
        Some(Stss {
            entries: vec![1, 4]
        })
    );
    assert_eq!(
        stbl.stsz,
        Stsz {
            samples: StszSamples::Different {
                sizes: vec![10, 4, 5, 7, 2]
            }
        }
    );
    let chunk = |first, per, description| StscEntry {
        first_chunk: first,
        samples_per_chunk: per,
        sample_description_index: description,
    };
    assert_eq!(
        stbl.stsc,
        Stsc {
            entries: vec![chunk(1, 2, 1), chunk(2, 1, 1), chunk(3, 2, 1)]
        }
    );
    // Payload: v0 (14 + 5 bytes), a0 (18), v1 (9), a1 (6).
    let base = payload_start;
    assert_eq!(
        stbl.co64,
        Some(Co64 {
            entries: vec![base, base + 14, base + 37]
        })
    );

    let a = &moov.trak[1];
    assert_eq!((a.tkhd.track_id, a.mdia.mdhd.duration), (2, 1024 * 4 + 512));
    let stbl = &a.mdia.minf.stbl;
    assert_eq!(stbl.stsd.codecs.len(), 2, "one entry per distinct init");
    assert_eq!(
        stbl.stts,
        Stts {
            entries: vec![entry(4, 1024), entry(1, 512)]
        }
    );
    assert_eq!(stbl.ctts, None, "no composition offsets");
    assert_eq!(stbl.stss, None, "every sample is a sync sample");
    assert_eq!(
        stbl.stsc,
        Stsc {
            entries: vec![chunk(1, 3, 1), chunk(2, 2, 2)]
        }
    );
    assert_eq!(
        stbl.co64,
        Some(Co64 {
            entries: vec![base + 19, base + 46]
        })
    );

    // The samples are where the tables say.
    let at = |offset: u64| bytes[offset as usize];
    assert_eq!(
        (at(base), at(base + 13), at(base + 14), at(base + 18)),
        (0xA0, 0xA0, 0xA0, 0xA0)
    );
    assert_eq!(
        (at(base + 19), at(base + 36), at(base + 37), at(base + 46)),
        (0xB0, 0xB0, 0xA1, 0xB1)
    );
    assert_eq!(bytes.len() as u64, base + 52);
}

#[test]
fn a_fragment_of_another_track_or_garbage_is_an_error_not_a_panic() {
    let mut writer = Mp4Writer::new();
    let (video, desc) = writer.add_init(&video_init()).unwrap();
    let audio_segment = segment(2, false, &[&[sample(1024, 1, true, 0)]], 0);
    let (offset, moof) = moofs(&audio_segment)[0];
    assert!(writer.add_fragment(video, desc, 0, offset, moof).is_err());
    assert!(
        writer
            .add_fragment(video, desc, 0, 0, b"\0\0\0\x08moof")
            .is_err()
    );
    assert!(writer.add_fragment(7, desc, 0, offset, moof).is_err());
    assert!(writer.add_init(b"garbage").is_err());
    assert_eq!(
        box_header(b"\0\0\0\x04moof", 100),
        None,
        "size below its header"
    );
    assert_eq!(
        box_header(b"\0\0\0\x01mdat\0\0\0\0\0\0\0\x20", 100),
        Some(BoxHeader {
            kind: *b"mdat",
            header_len: 16,
            size: 32
        })
    );
}
