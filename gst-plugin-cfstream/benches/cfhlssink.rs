//! cfhlssink's segment path, through the element itself (a `gst_check::Harness` on each of its
//! video and audio pads) writing CMAF into a directory on disk:
//!
//! 1. `segment_close`: how long the push that closes a segment takes: the frame after the next
//!    keyframe (a frame is written once its successor gives its duration). When it returns, the
//!    segment's last part is in both tracks' `seg-*.m4s` and their `seg` records are appended
//!    to `index.log` (checked: the log grew). 4 s GOPs of 30 fps H.264-sized frames plus AAC.
//!    Prints p50/p99.
//! 2. `append_at`: the same in a recording resumed from an `index.log` that already lists
//!    N = 10 and N = 150,000 segments (a synthetic week-long recording): the cost must not
//!    depend on N.
//! 3. `frame`: the cost of one video frame and the audio frames up to it through the element,
//!    amortized over whole GOPs (samples appended to the open parts, a part written every
//!    part target, a segment closed every 120 frames).
//!
//! Run: `cargo bench -p gst-plugin-cfstream --bench cfhlssink`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cfstream_proto::index::log::{Record, encode};
use cfstream_proto::index::{Segment, StreamInfo, TrackKind, segment_name};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gst::prelude::*;

const FRAME_NS: u64 = 33_333_333;
/// 1024 samples at 44.1 kHz.
const AUDIO_FRAME_NS: u64 = 23_219_955;
const AUDIO_RATE: u32 = 44_100;
/// Segment files older than this many segments are deleted (untimed) so that long runs do not
/// fill the disk.
const KEEP_SEGMENTS: u64 = 8;

/// A complete SPS (baseline, 64x64, 30 fps) and PPS: what the init segment's avcC is built
/// from.
const SPS: &[u8] = &[
    0x67, 0x42, 0xC0, 0x0A, 0xDC, 0x42, 0x6C, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00,
    0x0F, 0x03, 0xC4, 0x89, 0xE0,
];
const PPS: &[u8] = &[0x68, 0xCE, 0x0F, 0x2C, 0x80];

/// Annex B NAL unit of `size` bytes: `header` (NAL header and the start of a slice header: an
/// I slice, first macroblock 0), then filler.
fn nal(header: &[u8], size: usize) -> Vec<u8> {
    let mut unit = [&[0, 0, 0, 1][..], header].concat();
    unit.resize(size.max(unit.len()), 0xA5);
    unit
}

/// An ADTS frame (AAC LC, 44.1 kHz, stereo) of `size` bytes, header included.
fn adts_frame(size: usize) -> Vec<u8> {
    let len = size as u16;
    let mut frame = vec![
        0xFF,
        0xF1,
        0x50,
        0x80 | ((len >> 11) & 0x3) as u8,
        (len >> 3) as u8,
        ((len & 0x7) << 5) as u8 | 0x1F,
        0xFC,
    ];
    frame.resize(size, 0x21);
    frame
}

/// cfhlssink with a harness on each pad, writing into `location`.
struct Sink {
    element: gst::Element,
    video: gst_check::Harness,
    audio: gst_check::Harness,
    dir: PathBuf,
}

impl Sink {
    /// Records `location/name` (resuming what is there).
    fn new(location: &Path, name: &'static str) -> Self {
        let element = gst::ElementFactory::make("cfhlssink")
            .property("location", location.to_str().unwrap())
            .build()
            .unwrap();
        element.connect("recording-name", false, move |_| {
            Some(Some(name).to_value())
        });
        let mut video = gst_check::Harness::with_element(&element, Some("video"), None);
        video.set_src_caps_str("video/x-h264,stream-format=byte-stream,alignment=au");
        let mut audio = gst_check::Harness::with_element(&element, Some("audio"), None);
        audio.set_src_caps_str("audio/mpeg,mpegversion=4,stream-format=adts");
        Sink {
            element,
            video,
            audio,
            dir: location.join(name),
        }
    }

    fn index_len(&self) -> u64 {
        std::fs::metadata(self.dir.join("index.log")).map_or(0, |m| m.len())
    }
}

/// Feeds 30 fps video with AAC interleaved ahead of it, one GOP at a time.
struct Feeder {
    pts: u64,
    audio_pts: u64,
    keyframe: Vec<u8>,
    delta: Vec<u8>,
    audio: Vec<u8>,
    frames_per_gop: usize,
    /// Sequence number of the segment the next keyframe closes.
    closing: u64,
}

impl Feeder {
    /// `first_sequence`: the sequence number of the first segment this feeder opens.
    fn new(
        keyframe_size: usize,
        delta_size: usize,
        frames_per_gop: usize,
        first_sequence: u64,
    ) -> Self {
        let mut keyframe = nal(SPS, 0);
        keyframe.extend(nal(PPS, 0));
        keyframe.extend(nal(&[0x65, 0x88, 0x84], keyframe_size));
        Feeder {
            pts: 0,
            audio_pts: 0,
            keyframe,
            delta: nal(&[0x41, 0x9A], delta_size),
            audio: adts_frame(200),
            frames_per_gop,
            closing: first_sequence,
        }
    }

    fn buffer(data: &[u8], pts: u64, duration: u64, delta: bool) -> gst::Buffer {
        let mut buffer = gst::Buffer::from_slice(data.to_vec());
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(pts));
        b.set_dts(gst::ClockTime::from_nseconds(pts));
        b.set_duration(gst::ClockTime::from_nseconds(duration));
        if delta {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        buffer
    }

    /// Audio frames up to the end of the next video frame: audio runs ahead, as a muxed source
    /// interleaves it, so a segment never waits for audio to close.
    fn push_audio(&mut self, sink: &mut Sink) {
        while self.audio_pts < self.pts + FRAME_NS {
            let audio = Self::buffer(&self.audio, self.audio_pts, AUDIO_FRAME_NS, false);
            sink.audio.push(audio).expect("audio");
            self.audio_pts += AUDIO_FRAME_NS;
        }
    }

    /// Audio up to the end of the next video frame, then that frame.
    fn push_frame(&mut self, sink: &mut Sink, keyframe: bool) {
        self.push_audio(sink);
        let data = if keyframe {
            &self.keyframe
        } else {
            &self.delta
        };
        let frame = Self::buffer(data, self.pts, FRAME_NS, !keyframe);
        sink.video.push(frame).expect("video");
        self.pts += FRAME_NS;
    }

    /// The first GOP, untimed.
    fn start(&mut self, sink: &mut Sink) {
        self.push_frame(sink, true);
        for _ in 1..self.frames_per_gop {
            self.push_frame(sink, false);
        }
    }

    /// Feeds a GOP from its keyframe and returns how long the push that closed the previous
    /// segment took: the one after which `index.log` lists it (the frame after the keyframe,
    /// since a frame is written once its successor gives its duration).
    fn time_segment(&mut self, sink: &mut Sink) -> Duration {
        let logged = sink.index_len();
        let mut pushed = 0;
        let took = loop {
            let start = Instant::now();
            self.push_frame(sink, pushed == 0);
            let took = start.elapsed();
            pushed += 1;
            if sink.index_len() > logged {
                break took;
            }
            assert!(
                pushed < self.frames_per_gop,
                "segment {} not in index.log a GOP after its end",
                self.closing
            );
        };
        for _ in pushed..self.frames_per_gop {
            self.push_frame(sink, false);
        }
        self.segment_closed(sink);
        took
    }

    /// Deletes the files of the segment `KEEP_SEGMENTS` before the one just closed.
    fn segment_closed(&mut self, sink: &Sink) {
        if let Some(old) = self.closing.checked_sub(KEEP_SEGMENTS) {
            for kind in [TrackKind::Video, TrackKind::Audio] {
                let _ = std::fs::remove_file(sink.dir.join(segment_name(kind, old)));
            }
        }
        self.closing += 1;
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

fn init() {
    gst::init().unwrap();
    gstcfstream::plugin_register_static().unwrap();
}

fn segment_close(c: &mut Criterion) {
    init();
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut sink = Sink::new(tmp.path(), "bench");
    // 4 s GOPs at 30 fps: 30 KB keyframes, 3 KB frames (~ 800 kbit/s).
    let mut feeder = Feeder::new(30_000, 3_000, 120, 0);
    feeder.start(&mut sink);
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
                    let took = feeder.time_segment(&mut sink);
                    samples.push(took);
                    took
                })
                .sum()
        })
    });
    group.finish();
    percentiles(
        "keyframe arrival -> segment closed and logged",
        &mut samples,
    );
}

/// Writes the `index.log` of an unfinished recording listing `segments` 2-second segments of
/// both tracks, as a crash would leave it.
fn synthetic_recording(dir: &Path, segments: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut log = String::with_capacity(segments as usize * 2 * 96 + 512);
    let tracks = [
        (TrackKind::Video, 90_000u32),
        (TrackKind::Audio, AUDIO_RATE),
    ];
    encode(&Record::Header, &mut log);
    for (kind, timescale) in tracks {
        let part_target = u64::from(timescale);
        encode(
            &Record::Track {
                kind,
                timescale,
                part_target,
            },
            &mut log,
        );
    }
    let stream = StreamInfo {
        video_codec: Some("avc1.42c00a".into()),
        audio_codec: Some("mp4a.40.2".into()),
        width: 64,
        height: 64,
        frame_rate: Some((30, 1)),
        audio_sample_rate: AUDIO_RATE,
        audio_channels: 2,
        ..Default::default()
    };
    encode(&Record::Stream(stream), &mut log);
    encode(&Record::Target { seconds: 2 }, &mut log);
    for (kind, _) in tracks {
        encode(
            &Record::Init {
                kind,
                discontinuity_number: 0,
            },
            &mut log,
        );
    }
    for sequence in 0..segments {
        for (kind, timescale) in tracks {
            let duration = 2 * u64::from(timescale);
            let segment = Segment {
                sequence,
                decode_time: sequence * duration,
                duration,
                program_date_time_ms: 1_767_225_600_000 + sequence as i64 * 2000,
                discontinuity: false,
                discontinuity_number: 0,
                size: 200_000,
                parts: Vec::new(),
            };
            encode(&Record::Segment { kind, segment }, &mut log);
        }
    }
    std::fs::write(dir.join("index.log"), log).unwrap();
}

fn append_at(c: &mut Criterion) {
    init();
    let mut group = c.benchmark_group("cfhlssink_append");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for existing in [10u64, 150_000] {
        let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        synthetic_recording(&tmp.path().join("resumed"), existing);
        let mut sink = Sink::new(tmp.path(), "resumed");
        // 2-frame GOPs: the closes, not the frames, dominate.
        let mut feeder = Feeder::new(1_000, 100, 2, existing);
        feeder.start(&mut sink);
        let mut samples = Vec::new();
        group.bench_function(format!("segment_{existing}"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let took = feeder.time_segment(&mut sink);
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
        drop(sink);
    }
    group.finish();
}

/// One video frame (and the audio before it) through the element, amortized over whole GOPs.
fn frame(c: &mut Criterion) {
    init();
    let mut group = c.benchmark_group("cfhlssink_frame");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut sink = Sink::new(tmp.path(), "frames");
    let mut feeder = Feeder::new(30_000, 3_000, 120, 0);
    feeder.push_frame(&mut sink, true);
    let mut in_gop = 1;
    group.throughput(Throughput::Elements(1));
    group.bench_function("video_frame_3000B_with_audio", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let keyframe = in_gop == feeder.frames_per_gop;
                let start = Instant::now();
                feeder.push_frame(&mut sink, keyframe);
                total += start.elapsed();
                in_gop = if keyframe { 1 } else { in_gop + 1 };
                if keyframe {
                    feeder.segment_closed(&sink);
                }
            }
            total
        })
    });
    group.finish();
    let stats = sink.element.property::<gst::Structure>("stats");
    println!("{stats}");
}

criterion_group!(benches, segment_close, append_at, frame);
criterion_main!(benches);
