//! Rendering cost of a long DVR playlist: the whole 7-day recording (about 151,000 segments of
//! 4 s) against the LL-HLS delta update a player reloads it with, a live window, and the MPD.
//!
//! `cargo bench -p cfstream-proto --bench render`

use std::collections::VecDeque;
use std::hint::black_box;

use cfstream_proto::index::{OpenSegment, Part, Progress, Segment, TrackIndex, TrackKind};
use cfstream_proto::render::SegmentUris;
use cfstream_proto::render::dash::{MpdOptions, render_mpd};
use cfstream_proto::render::hls::{LowLatency, MediaPlaylistOptions, render_media_playlist};
use cfstream_proto::render::window::Window;
use criterion::{Criterion, criterion_group, criterion_main};

const RATE: u64 = 90_000;
const SEGMENT: u64 = 4 * RATE;
const DAYS: u64 = 7;
/// 2026-12-02T15:00:00Z.
const T0_MS: i64 = 1_796_223_600_000;

fn parts(sequence_bytes: u64) -> Vec<Part> {
    (0..4)
        .map(|i| Part {
            duration: RATE,
            independent: i == 0,
            offset: i * sequence_bytes / 4,
            length: sequence_bytes / 4,
        })
        .collect()
}

/// A live video track of `DAYS` days, a reconnect every six hours, parts on the last three
/// segments and two parts of the open one.
fn dvr_track() -> TrackIndex {
    let count = DAYS * 86_400 * RATE / SEGMENT;
    let mut segments = VecDeque::with_capacity(count as usize);
    let mut pdt = T0_MS;
    let mut run = 0;
    for sequence in 0..count {
        let discontinuity = sequence > 0 && sequence % 5400 == 0;
        if discontinuity {
            run += 1;
            pdt += 10_000;
        }
        segments.push_back(Segment {
            sequence,
            decode_time: sequence * SEGMENT,
            duration: SEGMENT,
            program_date_time_ms: pdt,
            discontinuity,
            discontinuity_number: run,
            size: 1_500_000,
            parts: if sequence + 3 >= count {
                parts(1_500_000)
            } else {
                Vec::new()
            },
        });
        pdt += 4000;
    }
    let mut open_parts = parts(1_500_000);
    open_parts.truncate(2);
    TrackIndex {
        kind: TrackKind::Video,
        timescale: RATE as u32,
        target_duration: 4,
        part_target: RATE,
        discontinuity_sequence: 0,
        segments,
        open: Some(OpenSegment {
            sequence: count,
            decode_time: count * SEGMENT,
            program_date_time_ms: pdt,
            discontinuity: false,
            discontinuity_number: run,
            parts: open_parts,
        }),
        progress: Progress::Live,
        trimmed: false,
    }
}

fn bench(c: &mut Criterion) {
    let track = dvr_track();
    let uris = SegmentUris {
        prefix: "",
        query: "token=0123456789abcdef",
    };
    let dvr = MediaPlaylistOptions {
        window: Window::Whole,
        uris,
        low_latency: Some(LowLatency::default()),
        delta_updates: Some(6),
        skip_requested: false,
    };
    let delta = MediaPlaylistOptions {
        skip_requested: true,
        ..dvr
    };
    let live = MediaPlaylistOptions {
        window: Window::Live { min_duration_ms: 0 },
        ..dvr
    };
    for (name, options) in [("full", &dvr), ("delta", &delta), ("live window", &live)] {
        let text = render_media_playlist(&track, options);
        println!(
            "{name}: {} segments listed, {} bytes",
            track.segments.len(),
            text.len()
        );
    }
    let index = cfstream_proto::index::RecordingIndex {
        stream: Default::default(),
        tracks: vec![track.clone()],
    };
    let mpd = MpdOptions {
        window: Window::Whole,
        uris,
        publish_time_ms: T0_MS,
        availability_start_ms: T0_MS,
        minimum_update_period_ms: 2000,
        suggested_presentation_delay_ms: 6000,
        utc_timing: None,
        location: None,
    };
    println!("mpd: {} bytes", render_mpd(&index, &mpd).len());

    let mut group = c.benchmark_group("7-day DVR playlist");
    group.sample_size(20);
    group.bench_function("full LL-HLS playlist", |b| {
        b.iter(|| render_media_playlist(black_box(&track), &dvr))
    });
    group.bench_function("delta update (_HLS_skip=YES)", |b| {
        b.iter(|| render_media_playlist(black_box(&track), &delta))
    });
    group.bench_function("live window (12 s)", |b| {
        b.iter(|| render_media_playlist(black_box(&track), &live))
    });
    group.bench_function("MPD, whole recording", |b| {
        b.iter(|| render_mpd(black_box(&index), &mpd))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
