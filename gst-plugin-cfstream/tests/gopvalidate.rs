//! `gopvalidate`: hand-built H.264 access units through a `gst_check::Harness` around every
//! boundary, then real x264/ffmpeg encodes through `flvdemux ! gopvalidate` as the daemon links
//! them (avc access units straight from the demuxer) and through `flvdemux ! h264parse !
//! gopvalidate`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Media, generate_media};
use gst::prelude::*;
use gstcfstream::contract::codes::{
    ERR_GOP_OUT_OF_RANGE, ERR_UNSUPPORTED_AUDIO_CODEC, ERR_UNSUPPORTED_VIDEO_CODEC,
};
use gstcfstream::contract::event::PublisherReconnected;
use gstcfstream::contract::gopvalidate::{ErrorDetails, Stats, Violation};

const SECOND: u64 = 1_000_000_000;
const TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Synthetic H.264

/// Bit string writer for slice headers.
#[derive(Default)]
struct Bits(String);

impl Bits {
    fn ue(mut self, value: u32) -> Self {
        let code = format!("{:b}", u64::from(value) + 1);
        self.0 += &"0".repeat(code.len() - 1);
        self.0 += &code;
        self
    }

    /// Packs the bits, stop bit and zero padding included.
    fn rbsp(mut self) -> Vec<u8> {
        self.0.push('1');
        while !self.0.len().is_multiple_of(8) {
            self.0.push('0');
        }
        (0..self.0.len() / 8)
            .map(|i| u8::from_str_radix(&self.0[i * 8..i * 8 + 8], 2).unwrap())
            .collect()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Picture {
    Idr,
    /// Non-IDR I picture with a recovery-point SEI: x264's open-GOP keyframe.
    OpenGopI,
    /// Plain non-IDR I picture without SEI (x264 scene cut inside a closed GOP).
    I,
    P,
    B,
}

/// One byte-stream access unit: AUD, SPS/PPS and SEI for keyframes, one slice with a proper
/// slice header (first_mb_in_slice, slice_type, pic_parameter_set_id) and some slice data.
fn access_unit(picture: Picture) -> Vec<u8> {
    let mut au = vec![0, 0, 0, 1, 0x09, 0xf0];
    if matches!(picture, Picture::Idr | Picture::OpenGopI) {
        au.extend([
            0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x0d, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40,
        ]);
        au.extend([0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
    }
    if picture == Picture::OpenGopI {
        // recovery_point: recovery_frame_cnt ue(0), exact_match 1, broken_link 0, changing 00.
        au.extend([0, 0, 0, 1, 0x06, 6, 1, 0b1100_0000, 0x80]);
    }
    let (header, slice_type) = match picture {
        Picture::Idr => (0x65, 7),
        Picture::OpenGopI | Picture::I => (0x61, 7),
        Picture::P => (0x41, 5),
        Picture::B => (0x01, 6),
    };
    au.extend([0, 0, 0, 1, header]);
    au.extend(Bits::default().ue(0).ue(slice_type).ue(0).rbsp());
    au.extend([0x9a; 64]);
    au
}

fn frame(picture: Picture, pts: u64, duration: u64) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_mut_slice(access_unit(picture));
    let b = buffer.get_mut().unwrap();
    b.set_pts(gst::ClockTime::from_nseconds(pts));
    b.set_duration(gst::ClockTime::from_nseconds(duration));
    if matches!(picture, Picture::P | Picture::B) {
        b.set_flags(gst::BufferFlags::DELTA_UNIT);
    }
    buffer
}

const H264_CAPS_30: &str =
    "video/x-h264, stream-format=byte-stream, alignment=au, width=320, height=240, framerate=30/1";

/// A harness around `gopvalidate` with a bus to collect its messages.
struct Validator {
    harness: gst_check::Harness,
    bus: gst::Bus,
    fps: (u64, u64),
    /// Frames pushed so far; PTS = index / fps.
    index: u64,
}

impl Validator {
    fn new(caps: &str, props: &[(&str, &str)]) -> Self {
        common::init();
        let mut harness = gst_check::Harness::new("gopvalidate");
        let element = harness.element().unwrap();
        for (name, value) in props {
            element.set_property_from_str(name, value);
        }
        let bus = gst::Bus::new();
        element.set_bus(Some(&bus));
        harness.set_src_caps_str(caps);
        Validator {
            harness,
            bus,
            fps: (30, 1),
            index: 0,
        }
    }

    fn ntsc(mut self) -> Self {
        self.fps = (30000, 1001);
        self
    }

    fn pts(&self, index: u64) -> u64 {
        index * SECOND * self.fps.1 / self.fps.0
    }

    /// Pushes the next frame; returns the flow result.
    fn push(&mut self, picture: Picture) -> Result<gst::FlowSuccess, gst::FlowError> {
        let pts = self.pts(self.index);
        let duration = self.pts(self.index + 1) - pts;
        self.index += 1;
        self.harness.push(frame(picture, pts, duration))
    }

    /// Pushes a GOP of `frames` frames (keyframe first); returns the index of the first frame
    /// whose push failed.
    fn push_gop(&mut self, keyframe: Picture, frames: u64) -> Option<u64> {
        (0..frames).find_map(|i| {
            let index = self.index;
            let picture = if i == 0 { keyframe } else { Picture::P };
            self.push(picture).is_err().then_some(index)
        })
    }

    fn messages(&self) -> Vec<gst::Message> {
        std::iter::from_fn(|| self.bus.pop()).collect()
    }

    fn violations(&self) -> Vec<Violation> {
        violations(&self.messages())
    }

    fn stats(&self) -> Stats {
        let element = self.harness.element().unwrap();
        Stats::from_structure(&element.property::<gst::Structure>("stats"))
    }
}

fn violations(messages: &[gst::Message]) -> Vec<Violation> {
    messages
        .iter()
        .filter_map(|m| match m.view() {
            gst::MessageView::Element(e) => e
                .structure()
                .filter(|s| s.name() == Violation::NAME)
                .map(Violation::from_structure),
            _ => None,
        })
        .collect()
}

/// The details of the first error (`Error`) or warning (`Warning`) message, and their name.
fn details(messages: &[gst::Message], want_error: bool) -> Option<(String, ErrorDetails)> {
    messages.iter().find_map(|m| {
        let details = match m.view() {
            gst::MessageView::Error(e) if want_error => e.details(),
            gst::MessageView::Warning(w) if !want_error => w.details(),
            _ => None,
        }?;
        Some((
            details.name().to_string(),
            ErrorDetails::from_structure(details)?,
        ))
    })
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// First GOP of `frames` frames at 30 fps, then a keyframe and one more second.
fn first_gop(frames: u64) -> (Option<u64>, Vec<Violation>, Vec<gst::Message>) {
    let mut v = Validator::new(H264_CAPS_30, &[]);
    let failed = v
        .push_gop(Picture::Idr, frames)
        .or_else(|| v.push_gop(Picture::Idr, 30));
    let messages = v.messages();
    (failed, violations(&messages), messages)
}

#[test]
fn gop_of_3_9_s_fails_below_minimum() {
    let (failed, violations, messages) = first_gop(117);
    assert_eq!(failed, Some(117), "the keyframe ending the 3.9 s GOP fails");
    assert_eq!(violations.len(), 1, "{violations:?}");
    let v = &violations[0];
    assert_eq!(v.code, ERR_GOP_OUT_OF_RANGE);
    assert_eq!(v.reason, "keyframe interval 3.9 s is below 4.0 s");
    assert!((v.interval.unwrap() - 3.9).abs() < 1e-6);
    assert!((seconds(v.stream_time) - 3.9).abs() < 1e-6);
    let (name, details) = details(&messages, true).expect("error with details");
    assert_eq!(name, ErrorDetails::NAME);
    assert_eq!(
        details,
        ErrorDetails {
            code: ERR_GOP_OUT_OF_RANGE.into(),
            reason: "keyframe interval 3.9 s is below 4.0 s".into()
        }
    );
}

#[test]
fn plain_i_pictures_inside_a_gop_are_not_keyframes() {
    // h264parse clears DELTA_UNIT on them, as on the I picture pushed here; x264 codes scene cuts
    // that way. They must neither end the 4 s GOP early nor count as open-GOP keyframes.
    let mut v = Validator::new(H264_CAPS_30, &[]);
    for _ in 0..2 {
        assert_eq!(v.push(Picture::Idr), Ok(gst::FlowSuccess::Ok));
        for i in 1..120 {
            let picture = if i == 45 { Picture::I } else { Picture::P };
            assert_eq!(v.push(picture), Ok(gst::FlowSuccess::Ok));
        }
    }
    assert_eq!(v.push(Picture::Idr), Ok(gst::FlowSuccess::Ok));
    assert_eq!(v.violations(), Vec::<Violation>::new());
    assert_eq!(v.stats().gops, 3);
}

#[test]
fn gops_of_4_0_and_10_0_s_pass() {
    let mut v = Validator::new(H264_CAPS_30, &[]);
    for frames in [120, 300, 120, 300] {
        assert_eq!(v.push_gop(Picture::Idr, frames), None);
    }
    assert_eq!(v.push(Picture::Idr), Ok(gst::FlowSuccess::Ok));
    assert_eq!(v.violations(), Vec::<Violation>::new());
    let stats = v.stats();
    assert_eq!((stats.gops, stats.idr_count), (5, 5));
    assert!((stats.min_interval - 4.0).abs() < 1e-6);
    assert!((stats.max_interval - 10.0).abs() < 1e-6);
}

#[test]
fn gop_of_10_1_s_fails_as_soon_as_it_passes_the_maximum() {
    let (failed, violations, _) = first_gop(303);
    // 10.0 s plus one frame of tolerance is frame 301; frame 302 (10.067 s) is past it.
    assert_eq!(failed, Some(302));
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(
        violations[0].reason,
        "no keyframe for 10.067 s: keyframe interval exceeds 10.0 s"
    );
}

#[test]
fn ntsc_with_4_s_keyframes_passes() {
    // 29.97 fps: 119 frames are 3.971 s and 300 frames 10.01 s, both within one frame.
    let mut v = Validator::new(
        "video/x-h264, stream-format=byte-stream, alignment=au, framerate=30000/1001",
        &[],
    )
    .ntsc();
    // The last GOP, 118 frames or 3.937 s, is more than a frame short.
    for frames in [119, 120, 300, 119, 118] {
        assert_eq!(v.push_gop(Picture::Idr, frames), None);
    }
    assert_eq!(v.violations(), Vec::<Violation>::new());
    assert_eq!(v.push(Picture::Idr), Err(gst::FlowError::Error));
}

#[test]
fn single_keyframe_then_11_s_of_delta_frames_fails_at_10_s() {
    let mut v = Validator::new(H264_CAPS_30, &[]);
    let failed = v.push_gop(Picture::Idr, 330);
    assert_eq!(failed, Some(302));
    let violations = v.violations();
    assert_eq!(violations.len(), 1);
    assert!((seconds(violations[0].stream_time) - 10.0667).abs() < 1e-3);
    assert!((violations[0].interval.unwrap() - 10.0667).abs() < 1e-3);
    // The flow stays stopped, without another report.
    assert_eq!(v.push(Picture::P), Err(gst::FlowError::Error));
    assert_eq!(v.violations(), Vec::<Violation>::new());
}

/// 3 s of a GOP, then `gap` (which must restart the measurement), then a keyframe: a 3 s
/// interval if measured. Then 8 s without a keyframe after the restart (11 s since the first
/// keyframe if measured across) and 4 s GOPs.
fn assert_gap_restarts(gap: impl Fn(&mut Validator), disconts: bool) {
    let mut v = Validator::new(H264_CAPS_30, &[]);
    assert_eq!(v.push_gop(Picture::Idr, 90), None);
    gap(&mut v);
    let mut keyframe = frame(Picture::Idr, v.pts(v.index), SECOND / 30);
    if disconts {
        keyframe.make_mut().set_flags(gst::BufferFlags::DISCONT);
    }
    v.index += 1;
    assert_eq!(v.harness.push(keyframe), Ok(gst::FlowSuccess::Ok));
    assert_eq!(v.push_gop(Picture::P, 119), None);
    assert_eq!(v.violations(), Vec::<Violation>::new());

    let mut v2 = Validator::new(H264_CAPS_30, &[]);
    assert_eq!(v2.push_gop(Picture::Idr, 90), None);
    gap(&mut v2);
    let mut delta = frame(Picture::P, v2.pts(v2.index), SECOND / 30);
    if disconts {
        delta
            .make_mut()
            .set_flags(gst::BufferFlags::DISCONT | gst::BufferFlags::DELTA_UNIT);
    }
    v2.index += 1;
    assert_eq!(v2.harness.push(delta), Ok(gst::FlowSuccess::Ok));
    assert_eq!(v2.push_gop(Picture::P, 240), None, "8 s after the gap");
    for _ in 0..3 {
        assert_eq!(v2.push_gop(Picture::Idr, 120), None);
    }
    assert_eq!(v2.violations(), Vec::<Violation>::new());
}

#[test]
fn caps_change_restarts_measurement() {
    assert_gap_restarts(
        |v| {
            v.harness.set_src_caps_str(
                "video/x-h264, stream-format=byte-stream, alignment=au, width=640, height=480, \
                 framerate=30/1",
            )
        },
        false,
    );
}

#[test]
fn discont_restarts_measurement() {
    assert_gap_restarts(|_| {}, true);
}

#[test]
fn reconnect_event_restarts_measurement() {
    assert_gap_restarts(
        |v| {
            let event = PublisherReconnected {
                gap: gst::ClockTime::from_seconds(2),
                remote_address: "127.0.0.1:50000".into(),
            };
            assert!(v.harness.push_event(event.to_event()));
        },
        false,
    );
}

#[test]
fn without_a_gap_the_same_streams_fail() {
    // Control for the three tests above: the same sequence with nothing in between.
    let mut v = Validator::new(H264_CAPS_30, &[]);
    assert_eq!(v.push_gop(Picture::Idr, 90), None);
    assert_eq!(v.push(Picture::Idr), Err(gst::FlowError::Error));
    let mut v = Validator::new(H264_CAPS_30, &[]);
    assert_eq!(v.push_gop(Picture::Idr, 90), None);
    assert_eq!(v.push_gop(Picture::P, 241), Some(302));
}

#[test]
fn open_gop_keyframe_fails_unless_allowed() {
    let mut v = Validator::new(H264_CAPS_30, &[]);
    assert_eq!(v.push_gop(Picture::Idr, 240), None);
    assert_eq!(v.push_gop(Picture::OpenGopI, 1), Some(240));
    let violations = v.violations();
    assert_eq!(
        violations[0].reason,
        "keyframe at 8.0 s is not IDR: open GOP"
    );
    assert_eq!(violations[0].interval, None);

    let mut v = Validator::new(H264_CAPS_30, &[("require-closed-gop", "false")]);
    for keyframe in [Picture::Idr, Picture::OpenGopI, Picture::OpenGopI] {
        assert_eq!(v.push_gop(keyframe, 120), None);
    }
    assert_eq!(v.violations(), Vec::<Violation>::new());
    let stats = v.stats();
    assert_eq!((stats.gops, stats.idr_count), (3, 1));
}

#[test]
fn b_frames_are_counted_in_decode_order() {
    let mut v = Validator::new(H264_CAPS_30, &[]);
    // I0 P2 B1 P4 B3 …: PTS go back and forth, intervals still come from keyframe PTS.
    let frame_ns = SECOND / 30;
    for gop in 0..3u64 {
        let base = gop * 120;
        assert!(
            v.harness
                .push(frame(Picture::Idr, base * frame_ns, frame_ns))
                .is_ok()
        );
        for pair in 0..59u64 {
            let p = base + 2 * pair + 2;
            assert!(
                v.harness
                    .push(frame(Picture::P, p * frame_ns, frame_ns))
                    .is_ok()
            );
            assert!(
                v.harness
                    .push(frame(Picture::B, (p - 1) * frame_ns, frame_ns))
                    .is_ok()
            );
        }
        assert!(
            v.harness
                .push(frame(Picture::B, (base + 119) * frame_ns, frame_ns))
                .is_ok()
        );
    }
    assert_eq!(v.violations(), Vec::<Violation>::new());
    let stats = v.stats();
    assert_eq!((stats.b_frames, stats.gops), (3 * 60, 3));
}

#[test]
fn warn_passes_data_through_unchanged() {
    let mut v = Validator::new(H264_CAPS_30, &[("action", "warn")]);
    let mut pushed = Vec::new();
    // 3.9 s GOP, an open GOP keyframe, then 11 s without keyframes.
    for (keyframe, frames) in [
        (Picture::Idr, 117),
        (Picture::OpenGopI, 1),
        (Picture::Idr, 330),
    ] {
        for i in 0..frames {
            let picture = if i == 0 { keyframe } else { Picture::P };
            let pts = v.pts(v.index);
            v.index += 1;
            let buffer = frame(picture, pts, SECOND / 30);
            pushed.push(buffer.clone());
            assert_eq!(v.harness.push(buffer), Ok(gst::FlowSuccess::Ok));
        }
    }
    for expected in &pushed {
        let out = v.harness.pull().unwrap();
        assert_eq!(out.pts(), expected.pts());
        assert_eq!(out.flags(), expected.flags());
        assert_eq!(
            out.map_readable().unwrap().as_slice(),
            expected.map_readable().unwrap().as_slice()
        );
    }
    let messages = v.messages();
    let reasons: Vec<String> = violations(&messages)
        .into_iter()
        .map(|v| v.reason)
        .collect();
    assert_eq!(
        reasons,
        [
            "keyframe interval 3.9 s is below 4.0 s",
            "keyframe at 3.9 s is not IDR: open GOP",
            "keyframe interval 0.033 s is below 4.0 s",
            "no keyframe for 10.067 s: keyframe interval exceeds 10.0 s",
        ]
    );
    assert!(
        messages
            .iter()
            .all(|m| !matches!(m.view(), gst::MessageView::Error(_)))
    );
    assert_eq!(
        details(&messages, false).unwrap().1.code,
        ERR_GOP_OUT_OF_RANGE
    );
}

#[test]
fn unsupported_video_caps_fail_negotiation() {
    let mut v = Validator::new("video/x-h265, stream-format=hvc1, alignment=au", &[]);
    assert_eq!(
        v.harness.push(gst::Buffer::from_slice([0u8; 16])),
        Err(gst::FlowError::NotNegotiated)
    );
    let messages = v.messages();
    let violations = violations(&messages);
    assert_eq!(violations.len(), 1, "reported once");
    assert_eq!(violations[0].code, ERR_UNSUPPORTED_VIDEO_CODEC);
    assert_eq!(
        violations[0].reason,
        "video codec video/x-h265, stream-format=hvc1 is not supported: send H.264"
    );
    assert!(details(&messages, true).is_some());
}

#[test]
fn broken_avcc_fails_negotiation_with_a_clear_error() {
    let mut v = Validator::new(
        "video/x-h264, stream-format=avc, alignment=au, codec_data=(buffer)02640028ff",
        &[],
    );
    assert_eq!(
        v.harness.push(gst::Buffer::from_slice([0u8; 16])),
        Err(gst::FlowError::NotNegotiated)
    );
    let errors: Vec<String> = v
        .messages()
        .iter()
        .filter_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        errors,
        ["codec_data is not an avcC record: configurationVersion 2 is not 1"]
    );
}

#[test]
fn malformed_access_units_warn_and_pass() {
    let mut v = Validator::new(H264_CAPS_30, &[]);
    assert_eq!(v.push(Picture::Idr), Ok(gst::FlowSuccess::Ok));
    let garbage = [
        &[0xffu8; 32][..],
        &[0, 0, 1, 0x65][..],
        &[0, 0, 1, 0x06, 5, 200, 1][..],
        &[0, 0, 1, 0x65, 0, 0, 3, 0, 0, 3, 0, 0, 3, 0, 0, 3, 0][..],
    ];
    for bytes in garbage {
        let mut buffer = gst::Buffer::from_slice(bytes.to_vec());
        buffer
            .make_mut()
            .set_pts(gst::ClockTime::from_nseconds(v.pts(1)));
        assert_eq!(v.harness.push(buffer), Ok(gst::FlowSuccess::Ok));
    }
    let messages = v.messages();
    let warnings: Vec<String> = messages
        .iter()
        .filter_map(|m| match m.view() {
            gst::MessageView::Warning(w) => Some(w.error().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "reported once per GOP: {warnings:?}");
    assert!(warnings[0].contains("no start code"), "{warnings:?}");
    assert_eq!(violations(&messages), Vec::<Violation>::new());
}

// ---------------------------------------------------------------------------------------------
// Real encodes

struct Outcome {
    eos: bool,
    messages: Vec<gst::Message>,
    /// `stats` of the element named `v`, if any, read at the end.
    stats: Option<Stats>,
}

impl Outcome {
    fn first_error_src(&self) -> Option<String> {
        self.messages.iter().find_map(|m| match m.view() {
            gst::MessageView::Error(e) => e.src().map(|s| s.name().to_string()),
            _ => None,
        })
    }

    fn violations(&self) -> Vec<Violation> {
        violations(&self.messages)
    }

    fn warnings_with_code(&self, code: &str) -> usize {
        self.messages
            .iter()
            .filter(|m| match m.view() {
                gst::MessageView::Warning(w) => w
                    .details()
                    .and_then(ErrorDetails::from_structure)
                    .is_some_and(|d| d.code == code),
                _ => false,
            })
            .count()
    }
}

/// Runs `description` until EOS or the first error.
fn run(description: &str) -> Outcome {
    common::init();
    let pipeline = gst::parse::launch(description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let mut messages = Vec::new();
    let mut eos = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no EOS or error within {TIMEOUT:?}: {description}"
        );
        let Some(message) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64))
        else {
            continue;
        };
        let done = match message.view() {
            gst::MessageView::Eos(_) => {
                eos = true;
                true
            }
            gst::MessageView::Error(_) => true,
            _ => false,
        };
        messages.push(message);
        if done {
            break;
        }
    }
    let stats = pipeline
        .by_name("v")
        .map(|v| Stats::from_structure(&v.property::<gst::Structure>("stats")));
    pipeline.set_state(gst::State::Null).unwrap();
    Outcome {
        eos,
        messages,
        stats,
    }
}

fn encode(media: Media) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = generate_media(&dir.path().join("media.flv"), &media);
    (dir, path.to_str().unwrap().to_string())
}

/// How flvdemux's video reaches gopvalidate.
#[derive(Clone, Copy, Debug)]
enum Framing {
    /// As the daemon links it: flvdemux's `stream-format=avc` access units, no parser.
    Demuxed,
    /// Through `h264parse`, which passes avc through and sets its own buffer flags.
    Parsed,
}

const FRAMINGS: [Framing; 2] = [Framing::Demuxed, Framing::Parsed];

fn video_pipeline(path: &str, action: &str, framing: Framing) -> String {
    let parser = match framing {
        Framing::Demuxed => "",
        Framing::Parsed => "queue ! h264parse ! ",
    };
    format!(
        "filesrc location={path} ! flvdemux name=d d.video ! {parser}\
         gopvalidate name=v action={action} ! fakesink sync=false"
    )
}

/// Runs `video_pipeline` with `action=error`, which gopvalidate must stop with an error.
fn failed_at_gopvalidate(path: &str, framing: Framing) -> Outcome {
    let outcome = run(&video_pipeline(path, "error", framing));
    let source = outcome.first_error_src();
    assert_eq!(source.as_deref(), Some("v"), "{framing:?}");
    outcome
}

fn video_only(seconds: f64, keyint_seconds: f64, x264_params: &'static str) -> Media {
    Media {
        seconds,
        keyint_seconds,
        x264_params,
        audio: &[],
        ..Media::default()
    }
}

#[test]
fn x264_keyint_4_s_closed_with_b_frames_passes() {
    let (_dir, path) = encode(Media {
        seconds: 13.0,
        ..Media::default()
    });
    // Straight from flvdemux (avc, raw AAC) as in the daemon's pipeline; then through the
    // parsers, which pass avc through or convert it to byte-stream.
    let branches = [
        "d.video ! queue ! gopvalidate name=v ! fakesink sync=false \
         d.audio ! queue ! gopvalidate name=a ! fakesink sync=false",
        "d.video ! queue ! h264parse ! gopvalidate name=v ! fakesink sync=false \
         d.audio ! queue ! aacparse ! gopvalidate name=a ! fakesink sync=false",
        "d.video ! queue ! h264parse ! video/x-h264,stream-format=byte-stream,alignment=au \
         ! gopvalidate name=v ! fakesink sync=false \
         d.audio ! queue ! aacparse ! gopvalidate name=a ! fakesink sync=false",
    ];
    for branches in branches {
        let outcome = run(&format!(
            "filesrc location={path} ! flvdemux name=d {branches}"
        ));
        assert!(outcome.eos, "{:?}", outcome.messages);
        assert_eq!(outcome.violations(), Vec::<Violation>::new());
        let stats = outcome.stats.unwrap();
        // Keyframes at 0, 4, 8 and 12 s.
        assert_eq!((stats.gops, stats.idr_count), (4, 4), "{stats:?}");
        assert!(stats.b_frames > 0, "{stats:?}");
        assert!((stats.min_interval - 4.0).abs() < 0.05, "{stats:?}");
        assert!((stats.max_interval - 4.0).abs() < 0.05, "{stats:?}");
    }
}

#[test]
fn x264_keyint_2_s_fails_and_passes_with_warn() {
    let (_dir, path) = encode(video_only(10.0, 2.0, ""));
    for framing in FRAMINGS {
        let outcome = failed_at_gopvalidate(&path, framing);
        let violations = outcome.violations();
        assert_eq!(violations[0].code, ERR_GOP_OUT_OF_RANGE);
        assert_eq!(
            violations[0].reason,
            "keyframe interval 2.0 s is below 4.0 s"
        );

        let outcome = run(&video_pipeline(&path, "warn", framing));
        assert!(outcome.eos, "{framing:?}: {:?}", outcome.messages);
        // Keyframes at 2, 4, 6 and 8 s each end a short GOP.
        assert_eq!(outcome.violations().len(), 4, "{framing:?}");
        assert_eq!(outcome.warnings_with_code(ERR_GOP_OUT_OF_RANGE), 4);
        assert_eq!(outcome.stats.unwrap().gops, 5);
    }
}

#[test]
fn x264_keyint_12_s_fails_at_10_s_of_stream_time() {
    let (_dir, path) = encode(video_only(13.0, 12.0, ""));
    for framing in FRAMINGS {
        let outcome = failed_at_gopvalidate(&path, framing);
        let violations = outcome.violations();
        assert_eq!(violations.len(), 1, "{framing:?}");
        let stream_time = seconds(violations[0].stream_time);
        assert!(
            (10.0..10.5).contains(&stream_time),
            "{framing:?}: failed at {stream_time} s"
        );
        assert!(violations[0].reason.starts_with("no keyframe for 10."));

        let outcome = run(&video_pipeline(&path, "warn", framing));
        assert!(outcome.eos, "{framing:?}: {:?}", outcome.messages);
        assert_eq!(outcome.violations().len(), 1, "{framing:?}: once per GOP");
        let stats = outcome.stats.unwrap();
        assert!(
            (stats.max_interval - 12.0).abs() < 0.05,
            "{framing:?}: {stats:?}"
        );
    }
}

#[test]
fn x264_open_gop_fails() {
    let (_dir, path) = encode(video_only(10.0, 4.0, "open-gop=1"));
    for framing in FRAMINGS {
        let outcome = failed_at_gopvalidate(&path, framing);
        let reason = &outcome.violations()[0].reason;
        assert!(
            reason.ends_with("is not IDR: open GOP"),
            "{framing:?}: {reason}"
        );
        assert!(
            reason.starts_with("keyframe at 4."),
            "{framing:?}: {reason}"
        );

        let outcome = run(&video_pipeline(&path, "warn", framing));
        assert!(outcome.eos, "{framing:?}: {:?}", outcome.messages);
        // Keyframes at 4 and 8 s.
        assert_eq!(
            outcome.warnings_with_code(ERR_GOP_OUT_OF_RANGE),
            2,
            "{framing:?}"
        );
    }
}

#[test]
fn mp3_audio_fails_with_unsupported_audio_codec() {
    let (_dir, path) = encode(Media {
        seconds: 2.0,
        audio: &["-c:a", "libmp3lame", "-b:a", "64k", "-ar", "44100"],
        ..Media::default()
    });
    for action in ["error", "warn"] {
        let outcome = run(&format!(
            "filesrc location={path} ! flvdemux name=d \
             d.video ! queue ! fakesink sync=false \
             d.audio ! queue ! gopvalidate name=a action={action} ! fakesink sync=false"
        ));
        let violations = outcome.violations();
        assert_eq!(violations.len(), 1, "{:?}", outcome.messages);
        assert_eq!(violations[0].code, ERR_UNSUPPORTED_AUDIO_CODEC);
        let reason = &violations[0].reason;
        assert!(
            reason.starts_with("audio codec audio/mpeg, mpegversion=1"),
            "{reason}"
        );
        if action == "error" {
            assert_eq!(outcome.first_error_src().as_deref(), Some("a"));
        } else {
            assert!(outcome.eos, "{:?}", outcome.messages);
            assert_eq!(outcome.warnings_with_code(ERR_UNSUPPORTED_AUDIO_CODEC), 1);
        }
    }
}

#[test]
fn h263_video_fails_with_unsupported_video_codec() {
    let (_dir, path) = encode(Media {
        seconds: 2.0,
        audio: &[],
        video_override: &["-c:v", "flv1"],
        ..Media::default()
    });
    for action in ["error", "warn"] {
        let outcome = run(&format!(
            "filesrc location={path} ! flvdemux ! gopvalidate name=v action={action} \
             ! fakesink sync=false"
        ));
        let violations = outcome.violations();
        assert_eq!(violations.len(), 1, "{:?}", outcome.messages);
        assert_eq!(violations[0].code, ERR_UNSUPPORTED_VIDEO_CODEC);
        let reason = &violations[0].reason;
        assert!(
            reason.starts_with("video codec video/x-flash-video"),
            "{reason}"
        );
        if action == "error" {
            assert_eq!(outcome.first_error_src().as_deref(), Some("v"));
        } else {
            assert!(outcome.eos, "{:?}", outcome.messages);
        }
    }
}

#[test]
fn avenc_flv_video_fails_with_unsupported_video_codec() {
    let outcome = run(
        "videotestsrc num-buffers=10 ! video/x-raw,width=320,height=240 ! avenc_flv \
         ! gopvalidate name=v ! fakesink sync=false",
    );
    assert_eq!(outcome.first_error_src().as_deref(), Some("v"));
    assert_eq!(outcome.violations()[0].code, ERR_UNSUPPORTED_VIDEO_CODEC);
}

#[test]
fn gst_inspect_documents_every_property() {
    common::init();
    let plugin_dir = common::plugin_dir();
    let registry = tempfile::tempdir().unwrap();
    let output = Command::new("gst-inspect-1.0")
        .arg("gopvalidate")
        .env("GST_PLUGIN_PATH", plugin_dir)
        .env("GST_REGISTRY", registry.path().join("registry.bin"))
        .output()
        .expect("run gst-inspect-1.0");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let element = gst::ElementFactory::make("gopvalidate").build().unwrap();
    for pspec in element.list_properties() {
        if pspec.owner_type() != element.type_() {
            continue;
        }
        let blurb = pspec.blurb().unwrap();
        // gst-inspect wraps long blurbs; compare the first words.
        let start: String = blurb
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            text.contains(pspec.name()),
            "{} missing:\n{text}",
            pspec.name()
        );
        assert!(
            text.contains(&start),
            "blurb of {} missing:\n{text}",
            pspec.name()
        );
    }
    // The action enum's values are listed with their descriptions.
    assert!(
        text.contains("(0): error") && text.contains("(1): warn"),
        "{text}"
    );
}
