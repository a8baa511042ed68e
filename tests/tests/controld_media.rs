//! controld with real media: ffmpeg publishes over RTMP, ffprobe/ffmpeg play the HLS URLs.
//! Each test runs its own controld on OS-chosen loopback ports, so they run in parallel.

use std::time::Duration;

use cfstream_e2e::playback::{
    audio_playlist_url, media_playlist_url, resolve, segments_with_init, standalone_segment,
};
use cfstream_e2e::{
    Api, Controld, Encoding, Media, Publisher, decode_all, ffprobe_streams, http_get, wait_for,
};
use serde_json::{Value, json};

const FFMPEG_TIMEOUT: Duration = Duration::from_secs(60);

fn create(api: &Api, timeout_seconds: u32) -> (String, String) {
    let input = api.create_input(json!({
        "meta": {"name": "e2e"},
        "recording": {"mode": "automatic", "timeoutSeconds": timeout_seconds}
    }));
    (
        input["uid"].as_str().unwrap().to_owned(),
        input["rtmp"]["streamKey"].as_str().unwrap().to_owned(),
    )
}

fn state_is(state: &'static str) -> impl Fn(&Value) -> bool {
    move |current| current["state"] == state
}

/// Videos of the input once all are `ready`, expecting `count` of them.
fn await_ready_videos(api: &Api, uid: &str, count: usize) -> Vec<Value> {
    wait_for(
        &format!("{count} ready video(s)"),
        Duration::from_secs(45),
        || {
            let videos = api.videos_of(uid);
            (videos.len() == count && videos.iter().all(|v| v["status"]["state"] == "ready"))
                .then_some(videos)
        },
    )
}

fn text(url: &str) -> String {
    let (status, _, body) = http_get(url);
    assert_eq!(status, 200, "{url}");
    String::from_utf8(body).unwrap()
}

#[test]
fn publish_plays_live_and_becomes_a_ready_video() {
    let controld = Controld::start();
    let api = controld.api();
    let (uid, key) = create(&api, 3);
    let base = controld.base_url();
    let publisher = Publisher::start(
        &controld.rtmp_url(&key),
        Encoding {
            keyint: 120,
            seconds: 14,
        },
    );

    let current = api.await_status(&uid, "connected", state_is("connected"));
    assert_eq!(current["ingestProtocol"], "rtmp");

    // The input's static URL plays the current broadcast once its first segment exists.
    let manifest = format!("{base}/{uid}/manifest/video.m3u8");
    wait_for("a live playlist", Duration::from_secs(30), || {
        (http_get(&manifest).0 == 200).then_some(())
    });
    let (_, content_type, _) = http_get(&manifest);
    assert_eq!(content_type, "application/vnd.apple.mpegurl");
    let streams = ffprobe_streams(&manifest).expect("ffprobe plays the live input URL");
    assert!(streams.contains(&"h264".to_owned()), "{streams:?}");
    assert!(streams.contains(&"aac".to_owned()), "{streams:?}");

    let lifecycle: Value =
        serde_json::from_slice(&http_get(&format!("{base}/{uid}/lifecycle")).2).unwrap();
    assert_eq!(lifecycle["isInput"], true);
    assert_eq!(lifecycle["live"], true);
    let video_uid = lifecycle["videoUID"]
        .as_str()
        .expect("videoUID while live")
        .to_owned();
    let video = api.ok("GET", &format!("/{video_uid}"), None);
    assert_eq!(video["status"]["state"], "live-inprogress");
    assert_eq!(video["liveInput"], uid.as_str());

    let (status, err) = publisher.wait(FFMPEG_TIMEOUT);
    assert!(status.success(), "ffmpeg: {err}");
    let videos = await_ready_videos(&api, &uid, 1);
    assert_eq!(videos[0]["uid"], video_uid.as_str());
    let duration = videos[0]["duration"].as_f64().unwrap();
    assert!((10.0..16.0).contains(&duration), "duration {duration}");
    let current = api.await_status(&uid, "disconnected", state_is("disconnected"));
    assert_eq!(current["reason"], "client_disconnect");
    let history: Vec<Value> = api.input(&uid)["status"]["history"]
        .as_array()
        .unwrap()
        .clone();
    let states: Vec<&str> = history.iter().filter_map(|h| h["state"].as_str()).collect();
    assert_eq!(
        states,
        ["reconnecting", "connected"],
        "newest first: {history:?}"
    );
    let listed = api.ok("GET", &format!("?live_input_id={uid}"), None);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["uid"], video_uid.as_str());

    // After the broadcast: the input has nothing live, the video plays its whole recording.
    let (status, _, body) = http_get(&manifest);
    assert_eq!((status, body.len()), (204, 0));
    let recording_url = videos[0]["playback"]["hls"].as_str().unwrap().to_owned();
    assert_eq!(
        recording_url,
        format!("{base}/{video_uid}/manifest/video.m3u8")
    );
    decode_all(&recording_url).expect("the recording decodes");
    let video_url = media_playlist_url(&recording_url).expect("a video playlist");
    let playlist = text(&video_url);
    assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    let (init, segment) = segments_with_init(&playlist)
        .into_iter()
        .next()
        .expect("a segment");
    let (status, content_type, _) = http_get(&resolve(&video_url, &segment));
    assert_eq!((status, content_type.as_str()), (200, "video/iso.segment"));
    let (status, content_type, _) = http_get(&resolve(&video_url, &init));
    assert_eq!((status, content_type.as_str()), (200, "video/mp4"));
    // The first segment has audio too, although flvdemux adds its audio pad after the first
    // video frame went into cfhlssink: the audio track's segment 0 covers the same interval.
    let audio_url = audio_playlist_url(&recording_url).expect("an audio playlist");
    let audio = text(&audio_url);
    let (audio_init, audio_segment) = segments_with_init(&audio)
        .into_iter()
        .next()
        .expect("an audio segment");
    assert_eq!(
        (segment.split('.').next(), audio_segment.split('.').next()),
        (Some("seg-00000000"), Some("seg-00000000")),
        "{playlist}\n{audio}"
    );
    let file = standalone_segment(&audio_url, &audio_init, &audio_segment);
    let streams =
        ffprobe_streams(file.path().to_str().unwrap()).expect("ffprobe the first audio segment");
    assert!(streams.contains(&"aac".to_owned()), "{streams:?}");
    let file = standalone_segment(&video_url, &init, &segment);
    let streams =
        ffprobe_streams(file.path().to_str().unwrap()).expect("ffprobe the first segment");
    assert!(streams.contains(&"h264".to_owned()), "{streams:?}");

    // DELETE removes the row and the files.
    let dir = controld
        .data_dir
        .path()
        .join("media")
        .join(&uid)
        .join(&video_uid);
    assert!(dir.exists());
    assert!(api.ok("DELETE", &format!("/{video_uid}"), None).is_null());
    assert!(!dir.exists(), "recording files deleted");
    assert_eq!(http_get(&recording_url).0, 404);
}

#[test]
fn reconnect_within_timeout_continues_the_video_with_a_discontinuity() {
    let controld = Controld::start();
    let api = controld.api();
    let (uid, key) = create(&api, 15);
    let first = Publisher::start(
        &controld.rtmp_url(&key),
        Encoding {
            keyint: 120,
            seconds: 9,
        },
    );
    api.await_status(&uid, "connected", state_is("connected"));
    let (status, err) = first.wait(FFMPEG_TIMEOUT);
    assert!(status.success(), "ffmpeg: {err}");
    api.await_status(&uid, "reconnecting", state_is("reconnecting"));

    let second = Publisher::start(
        &controld.rtmp_url(&key),
        Encoding {
            keyint: 120,
            seconds: 9,
        },
    );
    api.await_status(&uid, "reconnected", state_is("reconnected"));
    let (status, err) = second.wait(FFMPEG_TIMEOUT);
    assert!(status.success(), "ffmpeg: {err}");
    // Disable ends the reconnect window now instead of after 15 s.
    api.ok("POST", &format!("/live_inputs/{uid}/disable"), None);

    let videos = await_ready_videos(&api, &uid, 1);
    let multivariant = videos[0]["playback"]["hls"].as_str().unwrap();
    let playlist = text(&media_playlist_url(multivariant).expect("a video playlist"));
    assert_eq!(
        playlist.matches("#EXT-X-DISCONTINUITY\n").count(),
        1,
        "{playlist}"
    );
    assert!(playlist.contains("#EXT-X-ENDLIST"));
    decode_all(videos[0]["playback"]["hls"].as_str().unwrap()).expect("decodes across the gap");
}

#[test]
fn reconnect_after_timeout_is_a_second_video() {
    let controld = Controld::start();
    let api = controld.api();
    let (uid, key) = create(&api, 2);
    for round in 1..=2 {
        let publisher = Publisher::start(
            &controld.rtmp_url(&key),
            Encoding {
                keyint: 120,
                seconds: 6,
            },
        );
        let (status, err) = publisher.wait(FFMPEG_TIMEOUT);
        assert!(status.success(), "ffmpeg round {round}: {err}");
        await_ready_videos(&api, &uid, round);
    }
    let current = api.input(&uid)["status"]["current"].clone();
    assert_eq!(current["state"], "disconnected");
}

#[test]
fn bad_gop_ends_with_err_gop_out_of_range_and_the_input_takes_the_next_attempt() {
    let controld = Controld::start();
    let api = controld.api();
    let (uid, key) = create(&api, 2);
    // Keyframes every 12 s: beyond the 10 s maximum.
    let bad = Publisher::start(
        &controld.rtmp_url(&key),
        Encoding {
            keyint: 360,
            seconds: 30,
        },
    );
    let current = api.await_status(&uid, "ERR_GOP_OUT_OF_RANGE", |c| !c["errorCode"].is_null());
    assert_eq!(current["errorCode"], "ERR_GOP_OUT_OF_RANGE", "{current}");
    assert_eq!(current["reason"], "errored");
    let (status, _) = bad.wait(FFMPEG_TIMEOUT);
    assert!(!status.success(), "the publisher was cut");

    let good = Publisher::start(
        &controld.rtmp_url(&key),
        Encoding {
            keyint: 120,
            seconds: 5,
        },
    );
    let current = api.await_status(&uid, "connected again", state_is("connected"));
    assert!(current.get("errorCode").is_none(), "{current}");
    let (status, err) = good.wait(FFMPEG_TIMEOUT);
    assert!(status.success(), "{err}");
}

#[test]
fn disabled_input_and_rotated_key_refuse_publishers() {
    let controld = Controld::start();
    let api = controld.api();
    let (uid, key) = create(&api, 2);

    api.ok("POST", &format!("/live_inputs/{uid}/disable"), None);
    let refused = Publisher::start(
        &controld.rtmp_url(&key),
        Encoding {
            keyint: 120,
            seconds: 5,
        },
    );
    let (status, _) = refused.wait(FFMPEG_TIMEOUT);
    assert!(!status.success(), "a disabled input accepted a publisher");
    assert!(
        api.input(&uid)["status"].is_null(),
        "no connection was recorded"
    );

    api.ok("POST", &format!("/live_inputs/{uid}/enable"), None);
    let live = Publisher::start(
        &controld.rtmp_url(&key),
        Encoding {
            keyint: 120,
            seconds: 40,
        },
    );
    api.await_status(&uid, "connected", state_is("connected"));

    // Rotating cuts the publisher on the old key at once.
    let rotated = api.ok("POST", &format!("/live_inputs/{uid}/rotate_keys"), None);
    let new_key = rotated["rtmp"]["streamKey"].as_str().unwrap().to_owned();
    let (status, _) = live.wait(Duration::from_secs(20));
    assert!(!status.success(), "the publisher on the old key was cut");
    let current = api.await_status(&uid, "keys_rotated", |c| c["reason"] == "keys_rotated");
    assert_eq!(current["state"], "disconnected");

    let old = Publisher::start(
        &controld.rtmp_url(&key),
        Encoding {
            keyint: 120,
            seconds: 5,
        },
    );
    let (status, _) = old.wait(FFMPEG_TIMEOUT);
    assert!(!status.success(), "the old key was accepted");

    let new = Publisher::start(
        &controld.rtmp_url(&new_key),
        Encoding {
            keyint: 120,
            seconds: 4,
        },
    );
    api.await_status(&uid, "connected with the new key", state_is("connected"));
    new.kill();
}

#[test]
fn codec_rules_apply_to_recorded_inputs_only() {
    let controld = Controld::start();
    let api = controld.api();
    let (recorded, recorded_key) = create(&api, 2);
    let relayed = api.create_input(json!({"recording": {"mode": "off"}}));
    let relayed_uid = relayed["uid"].as_str().unwrap();
    let relayed_key = relayed["rtmp"]["streamKey"].as_str().unwrap();
    let mp3 = Encoding::good(8);

    let refused = Publisher::start_with_mp3(&controld.rtmp_url(&recorded_key), mp3);
    let current = api.await_status(&recorded, "a codec error", |c| !c["errorCode"].is_null());
    assert_eq!(
        current["errorCode"], "ERR_UNSUPPORTED_AUDIO_CODEC",
        "{current}"
    );
    let (status, _) = refused.wait(FFMPEG_TIMEOUT);
    assert!(!status.success(), "MP3 audio was recorded");

    // `mode: off` only relays: the same stream is taken, reported, neither played nor recorded.
    let relay = Publisher::start_with_mp3(&controld.rtmp_url(relayed_key), mp3);
    api.await_status(relayed_uid, "relay connected", state_is("connected"));
    let (status, _, _) = http_get(&format!(
        "{}/{relayed_uid}/manifest/video.m3u8",
        controld.base_url()
    ));
    assert_eq!(status, 204);
    let (status, err) = relay.wait(FFMPEG_TIMEOUT);
    assert!(status.success(), "{err}");
    assert!(api.videos_of(relayed_uid).is_empty());
}

#[test]
fn rtmps_ingest_with_the_configured_certificate() {
    let tls = tempfile::tempdir().unwrap();
    let (cert, key) = (tls.path().join("cert.pem"), tls.path().join("key.pem"));
    let openssl = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("running openssl (scripts/setup.sh installs it)");
    assert!(openssl.status.success(), "{openssl:?}");
    let controld = Controld::start_with_args(&[
        "--rtmps",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let rtmps = controld.rtmps.expect("rtmps= in the ready line");
    let api = controld.api();
    let (uid, key) = create(&api, 2);
    let input = api.input(&uid);
    assert_eq!(
        input["rtmps"]["url"],
        format!("rtmps://127.0.0.1:{}/live/", rtmps.port())
    );
    assert_eq!(input["rtmps"]["streamKey"], key.as_str());

    // ffmpeg does not verify certificates by default, so the self-signed one is accepted.
    let publisher = Publisher::start(&format!("rtmps://{rtmps}/live/{key}"), Encoding::good(6));
    let current = api.await_status(&uid, "connected over RTMPS", state_is("connected"));
    assert_eq!(current["ingestProtocol"], "rtmps");
    let (status, err) = publisher.wait(FFMPEG_TIMEOUT);
    assert!(status.success(), "{err}");
    let videos = await_ready_videos(&api, &uid, 1);
    decode_all(videos[0]["playback"]["hls"].as_str().unwrap())
        .expect("the RTMPS recording decodes");
}

#[test]
fn first_segment_of_a_recording_has_audio() {
    // With x264's default preset (lookahead, B-frames), flvdemux adds its video pad and sends
    // the first keyframe before it adds its audio pad: the first segment must carry audio all
    // the same (cfhlssink holds the video back for the audio pad).
    let controld = Controld::start();
    let api = controld.api();
    let (uid, key) = create(&api, 1);
    let media = Media {
        seconds: 6.0,
        preset: None,
        tune: None,
        bframes: None,
        audio: &["-c:a", "aac"],
        tone: "sine",
        ..Media::default()
    };
    let ffmpeg = Publisher::start_media(&controld.rtmp_url(&key), &media);
    let (status, err) = ffmpeg.wait(FFMPEG_TIMEOUT);
    assert!(status.success(), "ffmpeg: {err}");
    let videos = await_ready_videos(&api, &uid, 1);
    let recording_url = videos[0]["playback"]["hls"].as_str().unwrap().to_owned();
    for (kind, url) in [
        (
            "h264",
            media_playlist_url(&recording_url).expect("a video playlist"),
        ),
        (
            "aac",
            audio_playlist_url(&recording_url).expect("an audio playlist"),
        ),
    ] {
        let playlist = text(&url);
        let segments = segments_with_init(&playlist);
        assert!(segments[0].1.starts_with("seg-00000000."), "{playlist}");
        for (init, segment) in segments {
            let file = standalone_segment(&url, &init, &segment);
            let streams =
                ffprobe_streams(file.path().to_str().unwrap()).expect("ffprobe a segment");
            assert!(streams.contains(&kind.to_owned()), "{segment}: {streams:?}");
        }
    }
}
