use std::time::Duration;

use bytes::Bytes;
use cfstream_proto::cmaf::{AudioConfig, TrackConfig, VideoConfig};
use cfstream_proto::index::log::replay;
use cfstream_proto::index::{RecordingIndex, TrackKind};

use super::*;
use crate::hls::{DirectoryState, directory_state};

/// x264's SPS for 320x240 High 4:2:0 level 1.3 at 30 fps, and its PPS.
const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
    0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99, 0x60,
];
const PPS: &[u8] = &[0x68, 0xef, 0x8f, 0xcb];
const MS: i64 = 1_000_000;

fn config(dir: &Path, record: bool, max_duration_s: u64) -> RecordingConfig {
    RecordingConfig {
        directory: dir.to_path_buf(),
        target_duration: None,
        record,
        max_duration_ns: max_duration_s * 1_000_000_000,
        part_target: Some(Duration::from_millis(500)),
    }
}

fn open(config: RecordingConfig) -> Recording {
    let mut recording = Recording::open(config).unwrap();
    let video = VideoConfig::from_parameter_sets(SPS, PPS).unwrap();
    recording.set_config(TrackConfig::Video(video)).unwrap();
    let audio = AudioConfig::from_audio_specific_config(&[0x12, 0x10]).unwrap();
    recording.set_config(TrackConfig::Audio(audio)).unwrap();
    recording
}

/// `seconds` of 30 fps video with a keyframe every second and 44.1 kHz AAC from `start_ms`.
fn feed(recording: &mut Recording, start_ms: i64, seconds: i64) {
    let mut frames: Vec<Frame> = (0..seconds * 30)
        .map(|i| {
            frame(
                TrackKind::Video,
                start_ms * MS + i * 1000 * MS / 30,
                i % 30 == 0,
            )
        })
        .collect();
    let aac_ns = 1024 * 1_000_000_000 / 44_100;
    let audio = (0..seconds * 1_000_000_000 / aac_ns)
        .map(|i| frame(TrackKind::Audio, start_ms * MS + i * aac_ns, true));
    frames.extend(audio);
    frames.sort_by_key(|f| f.dts);
    for frame in frames {
        recording.push(frame, recording.epoch()).unwrap();
    }
}

fn frame(kind: TrackKind, ns: i64, keyframe: bool) -> Frame {
    Frame {
        kind,
        data: Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
        pts: ns,
        dts: ns,
        duration: None,
        keyframe,
    }
}

fn index(dir: &Path) -> RecordingIndex {
    replay(&std::fs::read(dir.join(INDEX_LOG)).unwrap())
        .unwrap()
        .into_index()
}

fn sequences(index: &RecordingIndex, kind: TrackKind) -> Vec<u64> {
    let track = index.track(kind).unwrap();
    track.segments.iter().map(|s| s.sequence).collect()
}

#[test]
fn a_crashed_recording_resumes_behind_a_discontinuity() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = open(config(dir.path(), true, 3600));
    feed(&mut first, 0, 3);
    // A crash: the open segment (2) was being written, never listed.
    assert!(dir.path().join("seg-00000002.v.m4s").exists());
    drop(first);
    assert_eq!(sequences(&index(dir.path()), TrackKind::Video), [0, 1]);

    let mut second = open(config(dir.path(), true, 3600));
    assert!(second.resumed());
    // The unlisted file is gone before anything new is written.
    assert_eq!(
        second
            .live
            .recording()
            .read(|i| i.track(TrackKind::Video).unwrap().open.clone()),
        None
    );
    feed(&mut second, 50_000, 2);
    let (summary, _) = second.finish().unwrap();
    let index = index(dir.path());
    assert_eq!(sequences(&index, TrackKind::Video), [0, 1, 2, 3]);
    assert_eq!(sequences(&index, TrackKind::Audio), [0, 1, 2, 3]);
    for kind in [TrackKind::Video, TrackKind::Audio] {
        let segments = &index.track(kind).unwrap().segments;
        assert!(segments[2].discontinuity && segments[2].discontinuity_number == 1);
        assert_eq!(segments[2].decode_time, segments[1].end_time(), "{kind:?}");
    }
    assert!(dir.path().join("init-00000001.v.mp4").exists());
    assert_eq!(summary.segments, 4);
    assert_eq!(
        directory_state(dir.path()).unwrap(),
        DirectoryState::Finished
    );
    let again = Recording::open(config(dir.path(), true, 3600))
        .err()
        .unwrap();
    assert!(again.to_string().contains("never overwritten"), "{again}");
}

#[test]
fn a_crash_between_the_tracks_of_a_segment_resumes_every_track_at_one_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = open(config(dir.path(), true, 3600));
    feed(&mut first, 0, 3);
    drop(first);
    // The crash came after video segment 1's record and before audio's.
    let log = std::fs::read_to_string(dir.path().join(INDEX_LOG)).unwrap();
    let cut: String = (log.split_inclusive('\n'))
        .filter(|l| !l.starts_with("seg kind=a seq=1 "))
        .collect();
    assert_ne!(cut, log);
    std::fs::write(dir.path().join(INDEX_LOG), cut).unwrap();

    let mut second = open(config(dir.path(), true, 3600));
    assert!(second.resumed());
    assert_eq!(sequences(&index(dir.path()), TrackKind::Video), [0]);
    assert!(!dir.path().join("seg-00000001.v.m4s").exists());
    feed(&mut second, 50_000, 2);
    second.finish().unwrap();
    let index = index(dir.path());
    assert_eq!(sequences(&index, TrackKind::Video), [0, 1, 2]);
    assert_eq!(sequences(&index, TrackKind::Audio), [0, 1, 2]);
}

#[test]
fn max_duration_trims_the_index_and_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut recording = open(config(dir.path(), true, 3));
    feed(&mut recording, 0, 12);
    let (summary, _) = recording.finish().unwrap();
    let index = index(dir.path());
    let listed = sequences(&index, TrackKind::Video);
    assert_eq!(listed, [9, 10, 11]);
    assert!(index.track(TrackKind::Video).unwrap().trimmed);
    assert_eq!(summary.media_sequence, 9);
    // Trimmed three target durations (3 s) of media ago: gone; the rest waits for its timer.
    assert!(!dir.path().join("seg-00000003.v.m4s").exists());
    assert!(!dir.path().join("seg-00000003.a.m4s").exists());
    assert!(dir.path().join("seg-00000007.v.m4s").exists());
}

#[test]
fn parts_are_listed_live_as_they_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut recording = open(config(dir.path(), true, 3600));
    feed(&mut recording, 0, 2);
    let live = live::lookup(dir.path()).expect("registered while writing");
    let (open_parts, closed_parts) = live.read(|index| {
        let video = index.track(TrackKind::Video).unwrap();
        let open = video.open.as_ref().map_or(0, |o| o.parts.len());
        (open, video.segments[0].parts.len())
    });
    assert_eq!(closed_parts, 2, "1 s segments of 500 ms parts");
    assert!(open_parts >= 1);
    recording.finish().unwrap();
    assert!(live::lookup(dir.path()).is_none());
}
