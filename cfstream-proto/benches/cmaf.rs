//! Cost of CMAF muxing per frame: the segmenter with its init, part (moof + mdat) and segment
//! events, on 10 s of 720p-sized frames (3 Mbps video at 30 fps, 4 s GOPs, 128 kbps AAC at
//! 44.1 kHz), with 500 ms parts as LL-HLS uses. Prints ns per frame muxed.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cfstream_proto::cmaf::{
    AudioConfig, FragmentHeader, FragmentSample, Frame, Segmenter, SegmenterConfig, TrackConfig,
    VideoConfig, write_fragment,
};
use cfstream_proto::index::TrackKind;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// x264's SPS and PPS for 320x240 High (what is in them does not change the cost).
const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
    0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99, 0x60,
];
const PPS: &[u8] = &[0x68, 0xef, 0x8f, 0xcb];
const SECONDS: i64 = 10;

fn frames() -> Vec<Frame> {
    let keyframe = Bytes::from(vec![0x65; 60_000]);
    let delta = Bytes::from(vec![0x41; 11_000]);
    let aac = Bytes::from(vec![0x21; 370]);
    let mut frames = Vec::new();
    for i in 0..SECONDS * 30 {
        let dts_ns = i * 1_000_000_000 / 30;
        let key = i % 120 == 0;
        frames.push(Frame {
            track: TrackKind::Video,
            dts_ns,
            pts_ns: dts_ns + 66_000_000,
            duration_ns: None,
            keyframe: key,
            data: if key { keyframe.clone() } else { delta.clone() },
            wall_clock_ms: dts_ns / 1_000_000,
        });
    }
    let aac_frame_ns = 1024 * 1_000_000_000 / 44_100;
    for i in 0..SECONDS * 1_000_000_000 / aac_frame_ns {
        let dts_ns = i * aac_frame_ns;
        frames.push(Frame {
            track: TrackKind::Audio,
            dts_ns,
            pts_ns: dts_ns,
            duration_ns: None,
            keyframe: true,
            data: aac.clone(),
            wall_clock_ms: dts_ns / 1_000_000,
        });
    }
    frames.sort_by_key(|f| f.dts_ns);
    frames
}

/// Segments all frames, dropping the events' bytes as a writer would after writing them.
fn mux(frames: &[Frame]) -> usize {
    let mut segmenter = Segmenter::new(SegmenterConfig {
        part_target: Duration::from_millis(500),
        ..SegmenterConfig::default()
    });
    segmenter.set_track(TrackConfig::Video(
        VideoConfig::from_parameter_sets(SPS, PPS).unwrap(),
    ));
    let audio = AudioConfig::from_audio_specific_config(&[0x12, 0x10]).unwrap();
    segmenter.set_track(TrackConfig::Audio(audio));
    let mut events = 0;
    for frame in frames {
        segmenter.push(frame.clone()).unwrap();
        while segmenter.poll_event().is_some() {
            events += 1;
        }
    }
    segmenter.finish();
    while segmenter.poll_event().is_some() {
        events += 1;
    }
    events
}

fn bench(c: &mut Criterion) {
    let frames = frames();
    let mut group = c.benchmark_group("cmaf");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("segment 10 s of 720p + AAC, 500 ms parts", |b| {
        b.iter(|| mux(&frames))
    });
    // Box serialisation alone (mp4-atom): the moof + mdat of one 500 ms video part.
    let samples: Vec<FragmentSample> = (0..15)
        .map(|i| FragmentSample {
            duration: 3000,
            size: 11_000,
            sync: i == 0,
            composition_offset: 6000,
        })
        .collect();
    let payload = vec![0x41; 15 * 11_000];
    let header = FragmentHeader {
        track_id: 1,
        sequence_number: 1,
        base_decode_time: 1 << 32,
        composition_offsets: true,
    };
    group.throughput(Throughput::Elements(samples.len() as u64));
    group.bench_function("moof + mdat of a 15-frame part", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            write_fragment(&header, &samples, &[&payload[..]], &mut out).unwrap();
            out.len()
        })
    });
    group.finish();

    let runs = 20_000;
    let mut out = Vec::new();
    let start = Instant::now();
    for _ in 0..runs {
        out.clear();
        write_fragment(&header, &samples, &[&payload[..]], &mut out).unwrap();
        std::hint::black_box(out.len());
    }
    let per_part = start.elapsed().as_nanos() as f64 / runs as f64;
    println!("cmaf: {per_part:.0} ns per 15-frame video part serialised (moof + mdat, 165 kB)");
    // The boxes without the copy of the samples: 1-byte samples.
    let tiny: Vec<FragmentSample> = samples
        .iter()
        .map(|s| FragmentSample { size: 1, ..*s })
        .collect();
    let start = Instant::now();
    for _ in 0..runs {
        out.clear();
        write_fragment(&header, &tiny, &[&payload[..15]], &mut out).unwrap();
        std::hint::black_box(out.len());
    }
    let per_moof = start.elapsed().as_nanos() as f64 / runs as f64;
    println!("cmaf: {per_moof:.0} ns per 15-sample moof serialised (boxes only)");

    // The figure quoted in bench/RESULTS.md, measured over a fixed number of runs.
    let runs = 200;
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(mux(&frames));
    }
    let per_frame = start.elapsed().as_nanos() as f64 / (runs * frames.len()) as f64;
    println!(
        "cmaf: {per_frame:.0} ns per frame muxed ({} frames per run, {runs} runs)",
        frames.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
