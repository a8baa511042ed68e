//! Playback egress with real players: ffmpeg and GStreamer (`rtmp2src`, `srtsrc`) pull a live
//! input's `rtmpPlayback`, `rtmpsPlayback` and `srtPlayback` from controld while ffmpeg publishes
//! it, and decode frames. Many players share one input; a stalled one is dropped without
//! disturbing the others or the recording; wrong keys are refused. Each test runs its own
//! controld on OS-chosen loopback ports.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use cfstream_e2e::{Api, ChildGuard, Controld, Encoding, Publisher, wait_for};
use serde_json::{Value, json};

const PLAYER_TIMEOUT: Duration = Duration::from_secs(60);
/// Video frames each player decodes (30 fps: 2 s).
const FRAMES: u32 = 60;

fn live_input(controld: &Controld, api: &Api, seconds: u32) -> (Value, Publisher) {
    let input = api.create_input(json!({
        "meta": {"name": "playback"},
        "recording": {"mode": "automatic", "timeoutSeconds": 5}
    }));
    let uid = input["uid"].as_str().unwrap().to_owned();
    let key = input["rtmp"]["streamKey"].as_str().unwrap();
    let publisher = Publisher::start(&controld.rtmp_url(key), Encoding::good(seconds));
    api.await_status(&uid, "connected", |c| c["state"] == "connected");
    (input, publisher)
}

fn rtmp_playback_url(input: &Value, field: &str) -> String {
    let endpoint = &input[field];
    format!(
        "{}{}",
        endpoint["url"].as_str().unwrap(),
        endpoint["streamKey"].as_str().unwrap()
    )
}

fn srt_playback_url(controld: &Controld, input: &Value) -> String {
    let srt = &input["srtPlayback"];
    cfstream_testmedia::srt_url(
        controld.srt.unwrap(),
        srt["streamId"].as_str().unwrap(),
        srt["passphrase"].as_str(),
    )
}

/// ffmpeg decodes `FRAMES` video frames of `url`; returns the decoded frame count and the
/// codecs ffmpeg found, or its error output.
fn ffmpeg_pull(url: &str) -> Result<(u32, String), String> {
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "info",
            "-rw_timeout",
            "20000000",
        ])
        .args(["-i", url, "-map", "0:v", "-frames:v", &FRAMES.to_string()])
        .args(["-f", "framecrc", "-"])
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(stderr);
    }
    let frames = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count() as u32;
    Ok((frames, stderr))
}

/// A GStreamer pipeline that ends (exit 0) after `FRAMES` decoded video frames.
fn gst_pull(source: &[&str], demux: &str) -> Result<(), String> {
    let eos_after = format!("eos-after={FRAMES}");
    let mut args: Vec<&str> = vec!["-q"];
    args.extend_from_slice(source);
    args.extend(["!", demux, "!", "h264parse", "!", "avdec_h264", "!"]);
    args.extend(["identity", &eos_after, "!", "fakesink", "sync=false"]);
    let mut child = ChildGuard::spawn(
        Command::new("gst-launch-1.0")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let (status, stderr) = child.wait_timeout(PLAYER_TIMEOUT);
    if status.success() {
        Ok(())
    } else {
        Err(stderr)
    }
}

#[test]
fn ffmpeg_and_gstreamer_pull_rtmp_rtmps_and_srt_playback() {
    let controld = Controld::start();
    let api = controld.api();
    let (input, _publisher) = live_input(&controld, &api, 60);
    let uid = input["uid"].as_str().unwrap();
    assert_ne!(
        input["rtmpPlayback"]["streamKey"], input["rtmp"]["streamKey"],
        "the playback key must not be the ingest key"
    );
    assert_eq!(input["srtPlayback"]["streamId"], format!("play{uid}"));

    let rtmp = rtmp_playback_url(&input, "rtmpPlayback");
    let (frames, log) = ffmpeg_pull(&rtmp).expect("ffmpeg plays rtmpPlayback");
    assert_eq!(frames, FRAMES, "{log}");
    assert!(log.contains("h264") && log.contains("aac"), "{log}");

    let rtmps = rtmp_playback_url(&input, "rtmpsPlayback");
    assert!(rtmps.starts_with("rtmps://"), "{rtmps}");
    let (frames, log) = ffmpeg_pull(&rtmps).expect("ffmpeg plays rtmpsPlayback");
    assert_eq!(frames, FRAMES, "{log}");

    let srt = srt_playback_url(&controld, &input);
    let (frames, log) = ffmpeg_pull(&srt).expect("ffmpeg plays srtPlayback");
    assert_eq!(frames, FRAMES, "{log}");
    assert!(log.contains("mpegts") && log.contains("h264"), "{log}");

    let location = format!("location={rtmp}");
    gst_pull(&["rtmp2src", &location], "flvdemux").expect("rtmp2src plays rtmpPlayback");
    let location = format!("location={rtmps}");
    gst_pull(
        &["rtmp2src", &location, "tls-validation-flags=0"],
        "flvdemux",
    )
    .expect("rtmp2src plays rtmpsPlayback");
    let srt = &input["srtPlayback"];
    let uri = format!("uri=srt://{}", controld.srt.unwrap());
    let stream_id = format!("streamid={}", srt["streamId"].as_str().unwrap());
    let passphrase = format!("passphrase={}", srt["passphrase"].as_str().unwrap());
    gst_pull(&["srtsrc", &uri, &stream_id, &passphrase], "tsdemux")
        .expect("srtsrc plays srtPlayback");
}
