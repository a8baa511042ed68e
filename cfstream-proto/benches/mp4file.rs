//! Cost and size of a download's `moov`: `mp4file::Mp4Writer` over 4 hours of fragments (the
//! longest recording a download is made of): 4 s segments of four 1 s parts, 30 fps video with
//! a composition offset changing every frame (B-frames: the worst case for `ctts`) and 48 kHz
//! AAC. Prints the header's size in bytes per sample.

use std::time::Duration;

use cfstream_proto::cmaf::{
    AudioConfig, FragmentHeader, FragmentSample, TrackConfig, VideoConfig, init_segment,
    write_fragment,
};
use cfstream_proto::mp4file::{Mp4File, Mp4Writer, box_header};
use criterion::{Criterion, criterion_group, criterion_main};

/// x264's SPS and PPS for 320x240 High (what is in them does not change the cost).
const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
    0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99, 0x60,
];
const PPS: &[u8] = &[0x68, 0xef, 0x8f, 0xcb];
const SEGMENTS: usize = 4 * 3600 / 4;
const PARTS: u64 = 4;
const VIDEO_PER_PART: usize = 30;
const AUDIO_PER_PART: usize = 47;

/// The `moof` of a part of `n` samples.
fn moof(track_id: u32, n: usize, duration: u32, video: bool) -> Vec<u8> {
    let samples: Vec<FragmentSample> = (0..n)
        .map(|i| FragmentSample {
            duration,
            size: 1000,
            sync: i == 0 || !video,
            composition_offset: if video { (i as i32 % 3) * 3000 } else { 0 },
        })
        .collect();
    let header = FragmentHeader {
        track_id,
        sequence_number: 1,
        base_decode_time: 0,
        composition_offsets: video,
    };
    let mut out = Vec::new();
    write_fragment(&header, &samples, &[vec![0u8; n * 1000]], &mut out).unwrap();
    let moof = box_header(&out, out.len() as u64).unwrap();
    out.truncate(moof.size as usize);
    out
}

fn four_hours(inits: &(Vec<u8>, Vec<u8>), moofs: &(Vec<u8>, Vec<u8>)) -> Mp4File {
    let mut writer = Mp4Writer::new();
    let (video, vd) = writer.add_init(&inits.0).unwrap();
    let (audio, ad) = writer.add_init(&inits.1).unwrap();
    for segment in 0..SEGMENTS {
        for part in 0..PARTS {
            let at = part * 40_000;
            (writer.add_fragment(video, vd, segment * 2, at, &moofs.0)).unwrap();
        }
        for part in 0..PARTS {
            let at = part * 50_000;
            (writer.add_fragment(audio, ad, segment * 2 + 1, at, &moofs.1)).unwrap();
        }
    }
    writer.finish().unwrap()
}

fn bench(c: &mut Criterion) {
    let video = VideoConfig::from_parameter_sets(SPS, PPS).unwrap();
    let audio = AudioConfig::from_audio_specific_config(&[0x11, 0x90]).unwrap();
    let inits = (
        init_segment(&TrackConfig::Video(video)).unwrap(),
        init_segment(&TrackConfig::Audio(audio)).unwrap(),
    );
    let moofs = (
        moof(1, VIDEO_PER_PART, 3000, true),
        moof(2, AUDIO_PER_PART, 1024, false),
    );
    let mp4 = four_hours(&inits, &moofs);
    let samples = SEGMENTS * PARTS as usize * (VIDEO_PER_PART + AUDIO_PER_PART);
    println!(
        "4 h download: header {} bytes for {samples} samples ({:.2} bytes per sample), {} chunks",
        mp4.header.len(),
        mp4.header.len() as f64 / samples as f64,
        mp4.chunks.len()
    );
    let mut group = c.benchmark_group("mp4file");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("moov of 4 h", |b| b.iter(|| four_hours(&inits, &moofs)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
