//! The end of a broadcast reaches the recording: a publisher that sends a file's frames and
//! closes leaves a recording with every one of them, over RTMP and RTMPS, from ffmpeg and from
//! GStreamer's `rtmp2sink`. The last frames, the unpublish commands and the close (a TLS
//! close_notify, then the TCP end) arrive together; the server must take the frames before it
//! acts on the close.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cfstream_e2e::{AAC_64K, Api, ChildGuard, Controld, Encoding, wait_for};
use serde_json::{Value, json};

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// `(video, audio)` frames ffprobe decodes in a file or an HLS URL.
fn count_frames(url: &str) -> (u64, u64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .args(["stream=codec_type,nb_read_frames", "-of", "json", url])
        .output()
        .expect("running ffprobe");
    assert!(out.status.success(), "ffprobe {url}: {out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let frames = |kind: &str| -> u64 {
        json["streams"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["codec_type"] == kind)
            .filter_map(|s| s["nb_read_frames"].as_str()?.parse::<u64>().ok())
            .sum()
    };
    (frames("video"), frames("audio"))
}

/// 10 s of media (300 video frames) in an FLV file that every publisher sends as it is.
fn source(dir: &Path) -> PathBuf {
    let media = Encoding::good(10).media(AAC_64K);
    cfstream_testmedia::generate_media(&dir.join("source.flv"), &media)
}

/// ffmpeg sending `file` in real time, without re-encoding.
fn ffmpeg(file: &Path, url: &str) -> ChildGuard {
    ChildGuard::spawn(
        Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-nostdin",
                "-re",
                "-i",
            ])
            .arg(file)
            .args(["-c", "copy", "-f", "flv", url]),
    )
}

/// GStreamer's `rtmp2sink` sending `file` in real time (the sink syncs on the clock), without
/// re-encoding; it does not verify our self-signed certificate.
fn rtmp2sink(file: &Path, url: &str) -> ChildGuard {
    let pipeline = format!(
        "filesrc location={} ! flvdemux name=demux \
         flvmux name=mux streamable=true ! rtmp2sink location={url} tls-validation-flags=0 \
         demux.video ! queue ! h264parse ! mux.video \
         demux.audio ! queue ! aacparse ! mux.audio",
        file.display()
    );
    ChildGuard::spawn(
        Command::new("gst-launch-1.0")
            .arg("-q")
            .args(pipeline.split(' ')),
    )
}

/// The HLS URL of the input's one recording once it is ready.
fn finished_recording(api: &Api, uid: &str) -> String {
    let video = wait_for("the recording to be ready", Duration::from_secs(45), || {
        let videos = api.videos_of(uid);
        (videos.len() == 1 && videos[0]["status"]["state"] == "ready").then(|| videos[0].clone())
    });
    video["playback"]["hls"].as_str().unwrap().to_owned()
}

enum Scheme {
    Rtmp,
    Rtmps,
}

/// Publishes the source with `publisher` over `scheme` and compares the frames recorded with
/// the frames sent.
fn every_frame_is_recorded(scheme: Scheme, publisher: fn(&Path, &str) -> ChildGuard) {
    let dir = tempfile::tempdir().unwrap();
    let file = source(dir.path());
    let sent = count_frames(file.to_str().unwrap());
    assert_eq!(sent.0, 300, "the source's video frames");
    let controld = Controld::start();
    let api = controld.api();
    let input = api.create_input(json!({
        "recording": {"mode": "automatic", "timeoutSeconds": 1}
    }));
    let uid = input["uid"].as_str().unwrap();
    let key = input["rtmp"]["streamKey"].as_str().unwrap();
    let url = match scheme {
        Scheme::Rtmp => controld.rtmp_url(key),
        Scheme::Rtmps => format!("rtmps://{}/live/{key}", controld.rtmps.expect("rtmps")),
    };
    let (status, stderr) = publisher(&file, &url).wait_timeout(PUBLISH_TIMEOUT);
    assert!(status.success(), "publisher: {stderr}");
    let recorded = count_frames(&finished_recording(&api, uid));
    assert_eq!(recorded, sent, "(video, audio) frames recorded vs sent");
}

#[test]
fn ffmpeg_over_rtmp_keeps_every_frame() {
    every_frame_is_recorded(Scheme::Rtmp, ffmpeg);
}

#[test]
fn ffmpeg_over_rtmps_keeps_every_frame() {
    every_frame_is_recorded(Scheme::Rtmps, ffmpeg);
}

#[test]
fn rtmp2sink_over_rtmp_keeps_every_frame() {
    every_frame_is_recorded(Scheme::Rtmp, rtmp2sink);
}

#[test]
fn rtmp2sink_over_rtmps_keeps_every_frame() {
    every_frame_is_recorded(Scheme::Rtmps, rtmp2sink);
}
