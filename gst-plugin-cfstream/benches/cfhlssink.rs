//! cfhlssink's segment path, on the plain-Rust `hls::Recording` the element drives:
//!
//! 1. `segment_close`: time from the arrival of the keyframe that closes a segment to the rename
//!    of the updated playlists (the segment file is closed, `video.m3u8` appended to,
//!    `live.m3u8` renamed, the next segment opened with PAT/PMT and the keyframe written), with
//!    4 s GOPs of 30 fps H.264-sized frames plus AAC, in a directory on disk. Prints p50/p99.
//! 2. `append_at`: the same for a recording that already lists N = 10 and N = 150,000 segments
//!    (a synthetic week-long recording resumed from disk): the cost must not depend on N.
//!
//! 3. `mux`: CPU cost of one frame through the TS muxer (the per-buffer path, no I/O).
//!
//! Run: `cargo bench -p gst-plugin-cfstream --bench cfhlssink`

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gstcfstream::hls::playlist::{Entry, Header, PlaylistType};
use gstcfstream::hls::ts::TsMuxer;
use gstcfstream::hls::{Frame, Recording, RecordingConfig, SegmentAdded, Streams, segment_uri};

const FRAME_NS: i64 = 33_333_333;
const AUDIO_FRAME_NS: i64 = 23_219_955;

fn config(dir: &Path) -> RecordingConfig {
    RecordingConfig {
        directory: dir.to_path_buf(),
        playlist_length: 6,
        target_duration: 10,
        record: true,
        max_duration_ns: 604_800 * 1_000_000_000,
        streams: Streams {
            video: true,
            audio: true,
        },
    }
}

/// Annex B access unit of `size` bytes: a slice NAL of type `nal_type`.
fn access_unit(nal_type: u8, size: usize) -> Vec<u8> {
    let mut au = vec![0, 0, 0, 1, 0x60 | nal_type];
    au.resize(size, 0xA5);
    au
}

/// Feeds one GOP minus its closing keyframe (untimed); returns the PTS of the next keyframe.
struct Feeder {
    pts: i64,
    audio_pts: i64,
    keyframe: Vec<u8>,
    delta: Vec<u8>,
    audio: Vec<u8>,
    frames_per_gop: usize,
}

impl Feeder {
    fn new(keyframe_size: usize, delta_size: usize, frames_per_gop: usize) -> Self {
        let mut keyframe = access_unit(7, 20); // SPS
        keyframe.extend(access_unit(8, 8)); // PPS
        keyframe.extend(access_unit(5, keyframe_size));
        Feeder {
            pts: 0,
            audio_pts: 0,
            keyframe,
            delta: access_unit(1, delta_size),
            audio: vec![0xFF; 200],
            frames_per_gop,
        }
    }

    fn push_keyframe(&mut self, recording: &mut Recording) -> Option<SegmentAdded> {
        let frame = Frame {
            data: &self.keyframe,
            pts: self.pts,
            dts: self.pts,
            duration: Some(FRAME_NS as u64),
            keyframe: true,
        };
        let added = recording.push_video(frame, 0).expect("keyframe");
        self.pts += FRAME_NS;
        black_box(added)
    }

    fn push_rest_of_gop(&mut self, recording: &mut Recording) {
        for _ in 1..self.frames_per_gop {
            let frame = Frame {
                data: &self.delta,
                pts: self.pts,
                dts: self.pts,
                duration: Some(FRAME_NS as u64),
                keyframe: false,
            };
            recording.push_video(frame, 0).expect("frame");
            while self.audio_pts < self.pts + FRAME_NS {
                let audio = Frame {
                    data: &self.audio,
                    pts: self.audio_pts,
                    dts: self.audio_pts,
                    duration: Some(AUDIO_FRAME_NS as u64),
                    keyframe: true,
                };
                recording.push_audio(audio, 0).expect("audio");
                self.audio_pts += AUDIO_FRAME_NS;
            }
            self.pts += FRAME_NS;
        }
    }

    /// Feeds a GOP, then returns how long the closing keyframe took. Old segment files are
    /// removed afterwards (untimed) so that a long run does not fill the disk.
    fn time_segment(&mut self, recording: &mut Recording) -> Duration {
        self.push_rest_of_gop(recording);
        let start = Instant::now();
        let added = self.push_keyframe(recording);
        let took = start.elapsed();
        if let Some(old) = added.and_then(|a| a.sequence.checked_sub(8)) {
            let _ = std::fs::remove_file(recording.directory().join(segment_uri(old)));
        }
        took
    }
}

fn percentiles(name: &str, samples: &mut [Duration]) {
    if samples.is_empty() {
        return; // filtered out on the command line
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name}: {} segments, p50 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        at(0.5),
        at(0.99),
        samples[samples.len() - 1]
    );
}

fn segment_close(c: &mut Criterion) {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut recording = Recording::open(config(tmp.path())).unwrap();
    // 4 s GOPs at 30 fps: 30 KB keyframes, 3 KB frames (~ 800 kbit/s).
    let mut feeder = Feeder::new(30_000, 3_000, 120);
    feeder.push_keyframe(&mut recording);
    let mut samples = Vec::new();
    let mut group = c.benchmark_group("cfhlssink");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    group.bench_function("segment_close", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let took = feeder.time_segment(&mut recording);
                    samples.push(took);
                    took
                })
                .sum()
        })
    });
    group.finish();
    percentiles("keyframe arrival -> playlists renamed", &mut samples);
}

/// Writes an unfinished recording playlist listing `segments` 2-second segments.
fn synthetic_recording(dir: &Path, segments: u64) {
    let mut text = String::with_capacity(segments as usize * 96 + 256);
    Header {
        target_duration: 10,
        media_sequence: 0,
        discontinuity_sequence: 0,
        playlist_type: Some(PlaylistType::Event),
    }
    .format(&mut text);
    for sequence in 0..segments {
        let entry = Entry::new(
            &segment_uri(sequence),
            2_000_000_000,
            false,
            "2026-01-01T00:00:00.000Z",
        );
        text.push_str(&entry.text);
    }
    std::fs::write(dir.join("video.m3u8"), text).unwrap();
}

fn append_at(c: &mut Criterion) {
    let mut group = c.benchmark_group("cfhlssink_append");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for existing in [10u64, 150_000] {
        let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        synthetic_recording(tmp.path(), existing);
        let mut recording = Recording::open(config(tmp.path())).unwrap();
        let mut feeder = Feeder::new(1_000, 100, 2);
        feeder.push_keyframe(&mut recording);
        let mut samples = Vec::new();
        group.bench_function(format!("segment_{existing}"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let took = feeder.time_segment(&mut recording);
                        samples.push(took);
                        took
                    })
                    .sum()
            })
        });
        percentiles(
            &format!("append to a recording of {existing} segments"),
            &mut samples,
        );
    }
    group.finish();
}

/// CPU cost of muxing one frame into TS packets (no I/O): the per-buffer path.
fn mux_frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("cfhlssink_mux");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut muxer = TsMuxer::new(Streams {
        video: true,
        audio: true,
    });
    let mut out = Vec::with_capacity(64 * 1024);
    let delta = access_unit(1, 3_000);
    group.throughput(Throughput::Bytes(delta.len() as u64));
    group.bench_function("video_frame_3000B", |b| {
        b.iter(|| {
            out.clear();
            muxer.write_video(&mut out, black_box(&delta), 90_000, 90_000, false);
        })
    });
    let adts = vec![0xFFu8; 200];
    group.throughput(Throughput::Bytes(adts.len() as u64));
    group.bench_function("audio_frame_200B", |b| {
        b.iter(|| {
            out.clear();
            muxer.write_audio(&mut out, black_box(&adts), 90_000);
        })
    });
    group.finish();
}

criterion_group!(benches, segment_close, append_at, mux_frame);
criterion_main!(benches);
