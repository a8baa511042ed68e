//! The CMAF segmenter on real media: x264 + AAC from ffmpeg in FLV, demuxed with the crate's
//! FLV reader, segmented, written as init + segment files, and decoded by ffmpeg per track.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use cfstream_proto::cmaf::{
    AudioConfig, Event, Frame, Segmenter, SegmenterConfig, TrackConfig, VideoConfig,
};
use cfstream_proto::flv::{self, TAG_AUDIO, TAG_VIDEO};
use cfstream_proto::index::{TrackKind, init_name, parse_media_name, segment_name};
use cfstream_testmedia::{Media, generate_media};

const MS: i64 = 1_000_000;

/// The frames and decoder configurations of an FLV file.
struct Demuxed {
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    frames: Vec<Frame>,
}

/// `seconds` of testmedia's default picture and tone in FLV, with 1 s GOPs.
fn media_flv(dir: &Path, seconds: f64) -> Vec<u8> {
    let media = Media {
        seconds,
        keyint_seconds: 1.0,
        ..Media::default()
    };
    std::fs::read(generate_media(&dir.join("in.flv"), &media)).unwrap()
}

fn demux(data: &[u8]) -> Demuxed {
    let mut pos = flv::parse_file_header(data).unwrap();
    let mut out = Demuxed {
        video: None,
        audio: None,
        frames: Vec::new(),
    };
    while let Some((tag, used)) = flv::parse_tag(&data[pos..]) {
        pos += used;
        let dts_ns = i64::from(tag.timestamp_ms) * MS;
        let body = tag.body;
        match (tag.tag_type, body.get(1)) {
            (TAG_VIDEO, Some(0)) => out.video = Some(VideoConfig::from_avcc(&body[5..]).unwrap()),
            (TAG_VIDEO, Some(1)) => {
                // Composition time: signed 24 bits, milliseconds.
                let cts = i32::from_be_bytes([body[2], body[3], body[4], 0]) >> 8;
                out.frames.push(Frame {
                    track: TrackKind::Video,
                    dts_ns,
                    pts_ns: dts_ns + i64::from(cts) * MS,
                    duration_ns: None,
                    keyframe: body[0] >> 4 == 1,
                    data: Bytes::copy_from_slice(&body[5..]),
                    wall_clock_ms: 1_700_000_000_000 + dts_ns / MS,
                });
            }
            (TAG_AUDIO, Some(0)) => {
                out.audio = Some(AudioConfig::from_audio_specific_config(&body[2..]).unwrap())
            }
            (TAG_AUDIO, Some(1)) => out.frames.push(Frame {
                track: TrackKind::Audio,
                dts_ns,
                pts_ns: dts_ns,
                duration_ns: None,
                keyframe: true,
                data: Bytes::copy_from_slice(&body[2..]),
                wall_clock_ms: 1_700_000_000_000 + dts_ns / MS,
            }),
            _ => {}
        }
    }
    out
}

/// What the events of a recording wrote, per track and discontinuity run.
#[derive(Default)]
struct Written {
    /// (track, run) → the run's init segment followed by its segments, as a player reads them.
    runs: BTreeMap<(&'static str, u64), Vec<u8>>,
    /// (track, run) → decode time where the run's last segment ends, ticks.
    ends: BTreeMap<(&'static str, u64), u64>,
}

/// Writes every init and segment file under its index name into `dir`, checking that parts
/// land at their offsets and segments have their sizes.
fn write_events(segmenter: &mut Segmenter, dir: &Path) -> Written {
    let mut written = Written::default();
    let mut run_of = BTreeMap::new();
    while let Some(event) = segmenter.poll_event() {
        match event {
            Event::Init {
                track,
                discontinuity_number,
                data,
            } => {
                std::fs::write(dir.join(init_name(track, discontinuity_number)), &data).unwrap();
                let run = written.runs.entry((track.code(), discontinuity_number));
                run.or_default().extend_from_slice(&data);
            }
            Event::SegmentStarted { track, segment } => {
                run_of.insert(
                    (track.code(), segment.sequence),
                    segment.discontinuity_number,
                );
            }
            Event::Part {
                track,
                sequence,
                part,
                data,
            } => {
                let path = dir.join(segment_name(track, sequence));
                let mut file = std::fs::read(&path).unwrap_or_default();
                assert_eq!(file.len() as u64, part.offset);
                file.extend_from_slice(&data);
                std::fs::write(&path, file).unwrap();
                let run = run_of[&(track.code(), sequence)];
                written
                    .runs
                    .get_mut(&(track.code(), run))
                    .unwrap()
                    .extend_from_slice(&data);
            }
            Event::SegmentClosed { track, segment } => {
                let path = dir.join(segment_name(track, segment.sequence));
                assert_eq!(std::fs::metadata(&path).unwrap().len(), segment.size);
                let end = segment.decode_time + segment.duration;
                written
                    .ends
                    .insert((track.code(), segment.discontinuity_number), end);
            }
            Event::Error { reason, .. } => panic!("{reason}"),
            _ => {}
        }
    }
    written
}

/// Writes a run's bytes to `dir/<track>-<run>.mp4`.
fn run_file(written: &Written, dir: &Path, track: TrackKind, run: u64) -> PathBuf {
    let path = dir.join(format!("{}-{run}.mp4", track.code()));
    std::fs::write(&path, &written.runs[&(track.code(), run)]).unwrap();
    path
}

/// Runs an ffmpeg tool at `-v error` on `path`; any message on stderr fails. Returns stdout.
fn run_quietly(program: &str, before: &[&str], path: &Path, after: &[&str]) -> String {
    let output = Command::new(program)
        .args(["-v", "error"])
        .args(before)
        .arg(path)
        .args(after)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{program} on {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn ffprobe(path: &Path, args: &[&str]) -> String {
    run_quietly("ffprobe", args, path, &[])
}

/// Decodes the file with ffmpeg.
fn decodes_cleanly(path: &Path) {
    run_quietly("ffmpeg", &["-nostdin", "-i"], path, &["-f", "null", "-"]);
}

/// Frames decoded and packet DTS in stream order.
fn probe_track(path: &Path) -> (u64, Vec<i64>) {
    let frames = ffprobe(
        path,
        &[
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ],
    );
    let dts = ffprobe(path, &["-show_entries", "packet=dts", "-of", "csv=p=0"]);
    (
        frames.trim().parse().unwrap(),
        dts.lines().map(|l| l.trim().parse().unwrap()).collect(),
    )
}

#[test]
fn segments_of_real_media_decode_with_every_frame_and_increasing_dts() {
    let dir = tempfile::tempdir().unwrap();
    let flv = media_flv(dir.path(), 3.0);
    let mut demuxed = demux(&flv);
    let video = demuxed.video.clone().expect("AVC sequence header");
    let codec_string = video.codec_string();
    assert_eq!((video.width, video.height), (320, 240));
    assert_eq!(video.frame_rate, Some((30, 1)));
    let count = |kind| demuxed.frames.iter().filter(|f| f.track == kind).count() as u64;
    let (video_frames, audio_frames) = (count(TrackKind::Video), count(TrackKind::Audio));
    assert_eq!(video_frames, 90);

    // A publisher repeating a DTS (as flvmux under load does): the output must not.
    let video_at: Vec<usize> = (0..demuxed.frames.len())
        .filter(|&i| demuxed.frames[i].track == TrackKind::Video)
        .collect();
    let (earlier, later) = (video_at[45], video_at[46]);
    demuxed.frames[later].dts_ns = demuxed.frames[earlier].dts_ns;
    let mut segmenter = Segmenter::new(SegmenterConfig {
        part_target: Duration::from_millis(500),
        ..SegmenterConfig::default()
    });
    segmenter.set_track(TrackConfig::Video(video));
    segmenter.set_track(TrackConfig::Audio(
        demuxed.audio.clone().expect("AAC header"),
    ));
    for frame in demuxed.frames {
        segmenter.push(frame).unwrap();
    }
    segmenter.finish();
    let written = write_events(&mut segmenter, dir.path());
    let video_path = run_file(&written, dir.path(), TrackKind::Video, 0);
    let audio_path = run_file(&written, dir.path(), TrackKind::Audio, 0);
    assert_eq!(segmenter.target_duration(), Some(1));
    assert_eq!(segmenter.stats().dts_corrected, 1);

    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| parse_media_name(e.unwrap().file_name().to_str()?))
        .collect();
    names.sort_by_key(|&(kind, init, n)| (kind.code(), !init, n));
    assert_eq!(names.len(), 2 * (1 + 3), "{names:?}");

    for (path, expected) in [(&video_path, video_frames), (&audio_path, audio_frames)] {
        decodes_cleanly(path);
        let (decoded, dts) = probe_track(path);
        assert_eq!(decoded, expected, "{}", path.display());
        assert!(
            dts.windows(2).all(|w| w[0] < w[1]),
            "{}: DTS not strictly increasing: {dts:?}",
            path.display()
        );
    }
    let probed = ffprobe(
        &video_path,
        &[
            "-show_entries",
            "stream=codec_name,profile,width,height,level",
            "-of",
            "csv=p=0",
        ],
    );
    // The codec string names what ffmpeg finds: testmedia's x264 with B-frames is Main, 1.3.
    assert_eq!(probed.trim(), "h264,Main,320,240,13");
    assert_eq!(codec_string, "avc1.4d400d");
    for (path, expected) in [(&video_path, video_frames), (&audio_path, audio_frames)] {
        assert_eq!(
            gstreamer_decoded_frames(path) as u64,
            expected,
            "{}",
            path.display()
        );
    }
}

/// Decodes the file with GStreamer's qtdemux and decodebin, a second player's demuxer; returns
/// the number of decoded buffers (fakesink reports each one).
fn gstreamer_decoded_frames(path: &Path) -> usize {
    let output = Command::new("gst-launch-1.0")
        .arg("-v")
        .arg("filesrc")
        .arg(format!("location={}", path.display()))
        .args([
            "!",
            "qtdemux",
            "!",
            "decodebin",
            "!",
            "fakesink",
            "silent=false",
        ])
        .output()
        .expect("run gst-launch-1.0");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "gst-launch-1.0 on {}: {stdout}{}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.lines().filter(|l| l.contains("chain")).count()
}

/// Packet DTS of a file, in its stream's timescale.
fn packet_dts(path: &Path) -> Vec<i64> {
    probe_track(path).1
}

#[test]
fn a_reconnect_starts_a_run_that_decodes_and_continues_the_decode_time() {
    let dir = tempfile::tempdir().unwrap();
    let flv = media_flv(dir.path(), 2.0);
    let demuxed = demux(&flv);
    let mut segmenter = Segmenter::new(SegmenterConfig::default());
    segmenter.set_track(TrackConfig::Video(demuxed.video.clone().unwrap()));
    segmenter.set_track(TrackConfig::Audio(demuxed.audio.clone().unwrap()));
    // The same publisher twice: its clock starts at 0 again after the reconnect.
    for frame in demuxed.frames.iter().cloned() {
        segmenter.push(frame).unwrap();
    }
    segmenter.discontinuity();
    for frame in demuxed.frames.iter().cloned() {
        segmenter.push(frame).unwrap();
    }
    segmenter.finish();
    let written = write_events(&mut segmenter, dir.path());
    for track in [TrackKind::Video, TrackKind::Audio] {
        let first = run_file(&written, dir.path(), track, 0);
        let second = run_file(&written, dir.path(), track, 1);
        decodes_cleanly(&first);
        decodes_cleanly(&second);
        // The second run's first packet is decoded where the first run's last one ended.
        let end = written.ends[&(track.code(), 0)];
        assert_eq!(packet_dts(&second)[0], end as i64, "{track:?}");
        assert!(
            packet_dts(&first)
                .last()
                .is_some_and(|&last| last < end as i64)
        );
    }
    assert_eq!(segmenter.stats().dts_corrected, 0);
}
