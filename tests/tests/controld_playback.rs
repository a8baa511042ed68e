//! Playback egress with real players: ffmpeg and GStreamer (`rtmp2src`, `srtsrc`) pull a live
//! input's `rtmpPlayback`, `rtmpsPlayback` and `srtPlayback` from controld while ffmpeg publishes
//! it, and decode frames. Many players share one input; a stalled one is dropped without
//! disturbing the others or the recording; wrong keys are refused. Each test runs its own
//! controld on OS-chosen loopback ports.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::BytesMut;
use cfstream_e2e::{Api, ChildGuard, Controld, Encoding, Publisher, wait_for};
use cfstream_proto::rtmp::chunk::ChunkWriter;
use cfstream_proto::rtmp::client::{StatusReader, play_commands};
use cfstream_proto::rtmp::handshake;
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

/// Players of one input besides the stalled one.
const PLAYERS: usize = 19;
/// Video frames each of them must get (30 fps: 10 s).
const PLAYER_FRAMES: u32 = 300;
const PUBLISH_SECONDS: u32 = 40;

/// An RTMP player that plays `key` and, once playing, never reads again. Its receive buffer is
/// fixed at a common size (loopback would autotune it to megabytes, minutes of this stream).
fn stalled_player(addr: SocketAddr, key: &str) -> TcpStream {
    let mut socket = TcpStream::connect(addr).unwrap();
    set_receive_buffer(&socket, 128 * 1024);
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    socket.write_all(&handshake::client_c0c1(7)).unwrap();
    let mut s0s1s2 = vec![0; 1 + 2 * 1536];
    socket.read_exact(&mut s0s1s2).unwrap();
    socket
        .write_all(&handshake::client_c2(&s0s1s2).unwrap())
        .unwrap();
    socket
        .write_all(&play_commands(&ChunkWriter::default(), "live", key))
        .unwrap();
    let (mut input, mut statuses) = (BytesMut::new(), StatusReader::default());
    let mut buffer = [0; 4096];
    loop {
        let n = socket.read(&mut buffer).expect("reading the play replies");
        assert!(n > 0, "closed before NetStream.Play.Start");
        input.extend_from_slice(&buffer[..n]);
        let codes = statuses.read(&mut input).unwrap();
        if codes.iter().any(|s| s.code == "NetStream.Play.Start") {
            return socket;
        }
    }
}

fn set_receive_buffer(socket: &TcpStream, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt on an open socket with a live c_int of the size passed.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&raw const bytes).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(result, 0, "SO_RCVBUF");
}

/// An ffmpeg player copying `PLAYER_FRAMES` video packets of `url` into a framecrc file.
fn copying_player(url: &str, out: &Path) -> ChildGuard {
    ChildGuard::spawn(
        Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-nostdin",
                "-v",
                "error",
                "-rw_timeout",
                "20000000",
            ])
            .args(["-i", url, "-map", "0:v", "-c", "copy"])
            .args(["-frames:v", &PLAYER_FRAMES.to_string(), "-f", "framecrc"])
            .arg(out)
            .stdout(Stdio::null()),
    )
}

/// `cfstream_players` of controld's /metrics.
fn players_in_metrics(controld: &Controld) -> u32 {
    let (_, _, body) = cfstream_e2e::http_get(&format!("{}/metrics", controld.base_url()));
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix("cfstream_players ")?.parse().ok())
        .unwrap_or(0)
}

fn frames_in(framecrc: &Path) -> u32 {
    std::fs::read_to_string(framecrc)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count() as u32
}

#[test]
fn twenty_players_one_stalled_the_others_and_the_recording_unaffected() {
    let controld = Controld::start();
    let api = controld.api();
    let (input, publisher) = live_input(&controld, &api, PUBLISH_SECONDS);
    let uid = input["uid"].as_str().unwrap().to_owned();
    let playback_key = input["rtmpPlayback"]["streamKey"].as_str().unwrap();
    let url = rtmp_playback_url(&input, "rtmpPlayback");

    let mut stalled = stalled_player(controld.rtmp, playback_key);
    let dir = tempfile::tempdir().unwrap();
    let outputs: Vec<_> = (0..PLAYERS)
        .map(|i| dir.path().join(format!("player-{i}.framecrc")))
        .collect();
    let mut players: Vec<ChildGuard> = outputs.iter().map(|o| copying_player(&url, o)).collect();

    // While they play: wrong keys are refused, and the playback key cannot publish.
    let wrong = format!("rtmp://{}/live/{}", controld.rtmp, "0".repeat(65));
    let refused = ffmpeg_pull(&wrong).expect_err("a wrong key plays");
    assert!(refused.contains("unknown playback key"), "{refused}");
    let ingest_key = input["rtmp"]["streamKey"].as_str().unwrap();
    let ingest = format!("rtmp://{}/live/{ingest_key}", controld.rtmp);
    ffmpeg_pull(&ingest).expect_err("the ingest key plays");
    let (status, stderr) =
        Publisher::start(&controld.rtmp_url(playback_key), Encoding::good(5)).wait(PLAYER_TIMEOUT);
    assert!(!status.success(), "the playback key publishes: {stderr}");

    assert!(players_in_metrics(&controld) >= 1, "no players in /metrics");
    for (player, output) in players.iter_mut().zip(&outputs) {
        let (status, stderr) = player.wait_timeout(PLAYER_TIMEOUT);
        assert!(status.success(), "player: {stderr}");
        assert_eq!(frames_in(output), PLAYER_FRAMES, "{stderr}");
    }

    // The stalled player was cut while the broadcast goes on: draining its socket reaches the
    // end (a live viewer would keep receiving until the broadcast ends, 20 s later).
    let mut rest = Vec::new();
    let drained = stalled.read_to_end(&mut rest);
    assert!(
        !matches!(&drained, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "the stalled player is still connected: {drained:?}"
    );
    let current = &api.input(&uid)["status"]["current"];
    assert_eq!(current["state"], "connected", "{current}");

    let (status, stderr) = publisher.wait(PLAYER_TIMEOUT);
    assert!(status.success(), "publisher: {stderr}");
    let videos = wait_for("the ready recording", Duration::from_secs(45), || {
        let videos = api.videos_of(&uid);
        (videos.len() == 1 && videos[0]["status"]["state"] == "ready").then_some(videos)
    });
    let duration = videos[0]["duration"].as_f64().unwrap();
    let expected = f64::from(PUBLISH_SECONDS);
    assert!(
        (expected - 2.0..expected + 2.0).contains(&duration),
        "recorded {duration} s of {expected} s"
    );
}

#[test]
fn signed_url_inputs_take_a_token_as_the_playback_key_and_not_live_inputs_refuse_players() {
    let controld = Controld::start();
    let api = controld.api();
    let input = api.create_input(json!({
        "recording": {"mode": "automatic", "requireSignedURLs": true}
    }));
    let uid = input["uid"].as_str().unwrap().to_owned();
    assert!(input["srtPlayback"].is_null(), "{input}");
    let token = |body: Value| -> String {
        api.ok("POST", &format!("/{uid}/token"), Some(body))["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let play = |token: &str| format!("rtmp://{}/live/{token}", controld.rtmp);
    let refused = ffmpeg_pull(&play(&token(json!({})))).expect_err("an input not live plays");
    assert!(refused.contains("not live"), "{refused}");

    let key = input["rtmp"]["streamKey"].as_str().unwrap();
    let _publisher = Publisher::start(&controld.rtmp_url(key), Encoding::good(60));
    api.await_status(&uid, "connected", |c| c["state"] == "connected");
    let refused = ffmpeg_pull(&rtmp_playback_url(&input, "rtmpPlayback"))
        .expect_err("the static playback key plays a signed-URL input");
    assert!(refused.contains("requires signed URLs"), "{refused}");
    let blocked = token(json!({"accessRules": [{"type": "any", "action": "block"}]}));
    ffmpeg_pull(&play(&blocked)).expect_err("a token whose rules block everyone plays");
    let (frames, log) = ffmpeg_pull(&play(&token(json!({})))).expect("a signed token plays");
    assert_eq!(frames, FRAMES, "{log}");
}

#[test]
fn an_srt_published_input_is_pulled_over_srt_and_refuses_rtmp_players() {
    let controld = Controld::start();
    let api = controld.api();
    let input = api.create_input(json!({"recording": {"mode": "automatic"}}));
    let uid = input["uid"].as_str().unwrap().to_owned();
    let media = Encoding::good(60).mpegts(cfstream_e2e::AAC_64K);
    let _publisher = Publisher::start_media(&controld.srt_url(&input), &media);
    api.await_status(&uid, "connected", |c| c["state"] == "connected");

    let (frames, log) = ffmpeg_pull(&srt_playback_url(&controld, &input))
        .expect("ffmpeg plays the SRT input's srtPlayback");
    assert_eq!(frames, FRAMES, "{log}");
    let refused = ffmpeg_pull(&rtmp_playback_url(&input, "rtmpPlayback"))
        .expect_err("an SRT input plays over RTMP");
    assert!(refused.contains("srtPlayback"), "{refused}");
}

#[test]
fn rotating_keys_cuts_players_and_renews_the_playback_credentials() {
    let controld = Controld::start();
    let api = controld.api();
    let (input, _publisher) = live_input(&controld, &api, 60);
    let uid = input["uid"].as_str().unwrap().to_owned();
    let old_url = rtmp_playback_url(&input, "rtmpPlayback");
    // Longer than the broadcast: only the rotation can end it early.
    let mut player = ChildGuard::spawn(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error", "-i", &old_url])
            .args(["-c", "copy", "-t", "120", "-f", "null", "-"])
            .stdout(Stdio::null()),
    );
    wait_for("the player in /metrics", PLAYER_TIMEOUT, || {
        (players_in_metrics(&controld) >= 1).then_some(())
    });
    let rotated = api.ok("POST", &format!("/live_inputs/{uid}/rotate_keys"), None);
    for field in ["rtmpPlayback", "srtPlayback"] {
        let key = if field == "srtPlayback" {
            "passphrase"
        } else {
            "streamKey"
        };
        assert_ne!(
            rotated[field][key], input[field][key],
            "{field} was not renewed"
        );
    }
    player.wait_timeout(PLAYER_TIMEOUT);
    let refused = ffmpeg_pull(&old_url).expect_err("the old playback key plays");
    assert!(refused.contains("unknown playback key"), "{refused}");
}
