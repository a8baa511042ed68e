//! Real players on rendered manifests: ffmpeg cuts a generated recording into CMAF segments
//! named as `index::segment_name` names them (one track per file set, as cfstream records),
//! the index is built from those files, and ffprobe reads every packet back through our
//! multivariant playlist and through our MPD, and ffmpeg decodes both without an error.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Command;

use cfstream_proto::index::{
    Progress, RecordingIndex, Segment, StreamInfo, TrackIndex, TrackKind, segment_name,
};
use cfstream_proto::render::dash::{MpdOptions, render_mpd};
use cfstream_proto::render::hls::{
    MediaPlaylistOptions, render_media_playlist, render_multivariant,
};
use cfstream_proto::render::window::Window;
use cfstream_testmedia::{Media, generate_media};

const SECONDS: f64 = 9.0;
const FPS: u32 = 30;

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .expect("run ffmpeg/ffprobe (scripts/setup.sh installs them)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{command:?} failed: {stderr}");
    assert!(stderr.trim().is_empty(), "{command:?} reported: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Cuts one track of `input` into fMP4 segments of 2 s in `dir`.
fn segment_track(input: &Path, dir: &Path, kind: TrackKind) {
    let map = match kind {
        TrackKind::Video => "0:v",
        TrackKind::Audio => "0:a",
    };
    let code = kind.code();
    run(Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(input)
        .args([
            "-map",
            map,
            "-c",
            "copy",
            "-f",
            "hls",
            "-hls_segment_type",
            "fmp4",
        ])
        .args(["-hls_time", "2", "-hls_playlist_type", "vod"])
        .args([
            "-hls_fmp4_init_filename",
            &format!("init-00000000.{code}.mp4"),
        ])
        .args(["-hls_segment_filename", &format!("seg-%08d.{code}.m4s")])
        .arg(format!("ffmpeg-{code}.m3u8")));
}

/// The finished index of the track ffmpeg wrote: durations from its playlist, sizes from the
/// files.
fn track_index(dir: &Path, kind: TrackKind, timescale: u32) -> TrackIndex {
    let text = std::fs::read(dir.join(format!("ffmpeg-{}.m3u8", kind.code()))).unwrap();
    let playlist = m3u8_rs::parse_media_playlist_res(&text).unwrap();
    let mut segments = VecDeque::new();
    let mut decode_time = 0;
    for (sequence, listed) in playlist.segments.iter().enumerate() {
        let sequence = sequence as u64;
        assert_eq!(listed.uri, segment_name(kind, sequence));
        let duration = (f64::from(listed.duration) * f64::from(timescale)).round() as u64;
        let size = std::fs::metadata(dir.join(&listed.uri)).unwrap().len();
        segments.push_back(Segment {
            sequence,
            decode_time,
            duration,
            program_date_time_ms: 1_796_223_600_000
                + (decode_time * 1000 / u64::from(timescale)) as i64,
            discontinuity: false,
            discontinuity_number: 0,
            size,
            parts: Vec::new(),
        });
        decode_time += duration;
    }
    TrackIndex {
        kind,
        timescale,
        target_duration: playlist.target_duration as u32,
        part_target: u64::from(timescale),
        discontinuity_sequence: 0,
        segments,
        open: None,
        progress: Progress::Finished,
        trimmed: false,
    }
}

fn recording(dir: &Path) -> RecordingIndex {
    let media = Media {
        seconds: SECONDS,
        keyint_seconds: 2.0,
        format: "mp4",
        bframes: None,
        ..Media::default()
    };
    let input = generate_media(&dir.join("in.mp4"), &media);
    segment_track(&input, dir, TrackKind::Video);
    segment_track(&input, dir, TrackKind::Audio);
    let tracks = vec![
        track_index(dir, TrackKind::Video, 90_000),
        track_index(dir, TrackKind::Audio, 44_100),
    ];
    RecordingIndex {
        stream: StreamInfo {
            video_codec: Some("avc1.640015".into()),
            audio_codec: Some("mp4a.40.2".into()),
            width: 320,
            height: 240,
            frame_rate: Some((FPS, 1)),
            audio_sample_rate: 44_100,
            audio_channels: 1,
            peak_bandwidth: tracks.iter().map(TrackIndex::peak_bandwidth).sum(),
            average_bandwidth: tracks.iter().map(TrackIndex::average_bandwidth).sum(),
        },
        tracks,
    }
}

/// Packets ffprobe reads from `manifest`: (video, audio).
fn packets(dir: &Path, manifest: &str) -> (u64, u64) {
    let count = |stream: &str| -> u64 {
        let out = run(Command::new("ffprobe")
            .current_dir(dir)
            .args(["-v", "error", "-select_streams", stream, "-count_packets"])
            .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
            .args(["-allowed_extensions", "ALL", manifest]));
        // HLS lists the stream under its program too: the same count twice.
        let first = out
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        first
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("ffprobe said {out:?}"))
    };
    (count("v:0"), count("a:0"))
}

#[test]
fn ffprobe_reads_every_packet_through_the_multivariant_playlist_and_the_mpd() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let index = recording(dir);
    let names = |kind: TrackKind| format!("{}.m3u8", kind.code());
    std::fs::write(dir.join("video.m3u8"), render_multivariant(&index, &names)).unwrap();
    for track in &index.tracks {
        let options = MediaPlaylistOptions {
            window: Window::Whole,
            ..Default::default()
        };
        let text = render_media_playlist(track, &options);
        let violations = cfstream_proto::render::check::check_text(&text).unwrap();
        assert_eq!(violations, vec![], "{text}");
        std::fs::write(dir.join(names(track.kind)), text).unwrap();
    }
    let mpd = MpdOptions {
        window: Window::Whole,
        uris: Default::default(),
        publish_time_ms: 0,
        availability_start_ms: 0,
        minimum_update_period_ms: 2000,
        suggested_presentation_delay_ms: 4000,
        utc_timing: None,
        location: None,
    };
    std::fs::write(dir.join("video.mpd"), render_mpd(&index, &mpd)).unwrap();

    let expected_video = (SECONDS as u64) * u64::from(FPS);
    let (video, audio) = packets(dir, "video.m3u8");
    assert_eq!(video, expected_video, "video packets through HLS");
    assert!(audio > 380, "audio packets through HLS: {audio}"); // 9 s of 1024-sample frames
    let (dash_video, dash_audio) = packets(dir, "video.mpd");
    assert_eq!(
        (dash_video, dash_audio),
        (video, audio),
        "DASH reads what HLS reads"
    );
    for manifest in ["video.m3u8", "video.mpd"] {
        // Decodes without a single error line (run() asserts an empty stderr).
        run(Command::new("ffmpeg")
            .current_dir(dir)
            .args([
                "-hide_banner",
                "-v",
                "error",
                "-allowed_extensions",
                "ALL",
                "-i",
                manifest,
            ])
            .args(["-f", "null", "-"]));
    }
}
