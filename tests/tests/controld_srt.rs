//! controld's SRT ingest with real callers (ffmpeg with libsrt): every live input is reachable on
//! the one SRT port with its `srt.streamId` and `srt.passphrase`, and gets what RTMP publishers
//! get (status, reconnects behind one discontinuity, codec rules, refusals). Each test runs its
//! own controld on OS-chosen loopback ports.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use cfstream_e2e::playback::{media_playlist_url, segment_uris};
use cfstream_e2e::{
    AAC_64K, Api, Controld, Encoding, MP3_64K, Media, Publisher, decode_all, ffprobe_streams,
    http_get, proc_status_bytes, wait_for,
};
use serde_json::{Value, json};

const FFMPEG_TIMEOUT: Duration = Duration::from_secs(60);

fn create(api: &Api, timeout_seconds: u32) -> Value {
    api.create_input(json!({
        "meta": {"name": "srt"},
        "recording": {"mode": "automatic", "timeoutSeconds": timeout_seconds}
    }))
}

fn uid(input: &Value) -> String {
    input["uid"].as_str().unwrap().to_owned()
}

fn state_is(state: &'static str) -> impl Fn(&Value) -> bool {
    move |current| current["state"] == state
}

fn publish(controld: &Controld, input: &Value, seconds: u32) -> Publisher {
    Publisher::start_media(
        &controld.srt_url(input),
        &Encoding::good(seconds).mpegts(AAC_64K),
    )
}

/// An ffmpeg caller that is refused ends with an error quickly.
fn assert_refused(url: &str) {
    let media = Encoding::good(5).mpegts(AAC_64K);
    let (status, stderr) = Publisher::start_media(url, &media).wait(FFMPEG_TIMEOUT);
    assert!(!status.success(), "the caller was accepted: {stderr}");
}

fn segments_of(controld: &Controld, uid: &str) -> usize {
    let multivariant = format!("{}/{uid}/manifest/video.m3u8", controld.base_url());
    let Some(media) = media_playlist_url(&multivariant) else {
        return 0;
    };
    let (status, _, body) = http_get(&media);
    if status != 200 {
        return 0;
    }
    let playlist = String::from_utf8_lossy(&body).into_owned();
    let last = segment_uris(&playlist)
        .iter()
        .filter_map(|uri| {
            uri.strip_prefix("seg-")?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max();
    last.map_or(0, |n| n + 1)
}

#[test]
fn srt_caller_is_live_with_its_stream_id_and_passphrase_and_reconnects() {
    let controld = Controld::start();
    let api = controld.api();
    let input = create(&api, 15);
    let uid = uid(&input);
    let srt = &input["srt"];
    assert_eq!(srt["streamId"], uid.as_str());
    assert!(srt["url"].as_str().unwrap().starts_with("srt://"), "{srt}");
    assert_eq!(srt["passphrase"].as_str().unwrap().len(), 65, "{srt}");

    let first = publish(&controld, &input, 9);
    let current = api.await_status(&uid, "connected", state_is("connected"));
    assert_eq!(current["ingestProtocol"], "srt", "{current}");
    let manifest = format!("{}/{uid}/manifest/video.m3u8", controld.base_url());
    wait_for("a live playlist", Duration::from_secs(30), || {
        (http_get(&manifest).0 == 200).then_some(())
    });
    let streams = ffprobe_streams(&manifest).expect("ffprobe plays the live input");
    assert!(streams.contains(&"h264".to_owned()) && streams.contains(&"aac".to_owned()));
    let (status, err) = first.wait(FFMPEG_TIMEOUT);
    assert!(status.success(), "ffmpeg: {err}");
    api.await_status(&uid, "reconnecting", state_is("reconnecting"));

    let second = publish(&controld, &input, 9);
    let current = api.await_status(&uid, "reconnected", state_is("reconnected"));
    assert_eq!(current["ingestProtocol"], "srt");
    let (status, err) = second.wait(FFMPEG_TIMEOUT);
    assert!(status.success(), "ffmpeg: {err}");
    api.ok("POST", &format!("/live_inputs/{uid}/disable"), None);

    let videos = wait_for("one ready video", Duration::from_secs(45), || {
        let videos = api.videos_of(&uid);
        (videos.len() == 1 && videos[0]["status"]["state"] == "ready").then_some(videos)
    });
    let hls = videos[0]["playback"]["hls"].as_str().unwrap();
    let media = media_playlist_url(hls).expect("a video playlist");
    let playlist = String::from_utf8(http_get(&media).2).unwrap();
    assert_eq!(
        playlist.matches("#EXT-X-DISCONTINUITY\n").count(),
        1,
        "{playlist}"
    );
    assert!(playlist.contains("#EXT-X-ENDLIST"));
    decode_all(hls).expect("decodes across the gap");
}

#[test]
fn refused_callers_do_not_disturb_a_live_srt_input() {
    let controld = Controld::start();
    let api = controld.api();
    let live = create(&api, 10);
    let other = create(&api, 10);
    let live_uid = uid(&live);
    let publisher = publish(&controld, &live, 25);
    api.await_status(&live_uid, "connected", state_is("connected"));

    let addr = controld.srt.unwrap();
    let other_id = other["srt"]["streamId"].as_str().unwrap();
    let live_id = live["srt"]["streamId"].as_str().unwrap();
    let wrong = "0123456789abcdef0123";
    // A wrong passphrase, none at all, an unknown stream id, and a second caller of the live id.
    assert_refused(&cfstream_testmedia::srt_url(addr, other_id, Some(wrong)));
    assert_refused(&cfstream_testmedia::srt_url(addr, other_id, None));
    assert_refused(&cfstream_testmedia::srt_url(
        addr,
        "0000aaaa0000aaaa0000aaaa0000aaaa",
        Some(wrong),
    ));
    let disabled = api.ok(
        "POST",
        &format!("/live_inputs/{}/disable", uid(&other)),
        None,
    );
    assert_refused(&controld.srt_url(&disabled));
    let in_use =
        Publisher::start_media(&controld.srt_url(&live), &Encoding::good(4).mpegts(AAC_64K));
    let (status, _) = in_use.wait(FFMPEG_TIMEOUT);
    assert!(
        !status.success(),
        "a second caller of a live id was accepted"
    );
    assert!(
        api.input(&uid(&other))["status"].is_null(),
        "refusals left no status"
    );

    // The live input went on all along.
    let current = api.input(&live_uid)["status"]["current"].clone();
    assert_eq!(current["state"], "connected", "{current}");
    let before = segments_of(&controld, &live_uid);
    wait_for("another segment", Duration::from_secs(20), || {
        (segments_of(&controld, &live_uid) > before).then_some(())
    });
    let (status, err) = publisher.wait(FFMPEG_TIMEOUT);
    assert!(status.success(), "the live caller was disturbed: {err}");
    assert_eq!(live_id, live_uid);
}

#[test]
fn rotated_keys_refuse_the_old_passphrase() {
    let controld = Controld::start();
    let api = controld.api();
    let input = create(&api, 10);
    let uid = uid(&input);
    let publisher = publish(&controld, &input, 30);
    api.await_status(&uid, "connected", state_is("connected"));
    let rotated = api.ok("POST", &format!("/live_inputs/{uid}/rotate_keys"), None);
    assert_ne!(rotated["srt"]["passphrase"], input["srt"]["passphrase"]);
    assert_eq!(rotated["srt"]["streamId"], input["srt"]["streamId"]);
    api.await_status(&uid, "keys_rotated", |c| c["reason"] == "keys_rotated");
    publisher.kill();
    assert_refused(&controld.srt_url(&input));
    let fresh = publish(&controld, &rotated, 4);
    api.await_status(
        &uid,
        "connected with the new passphrase",
        state_is("connected"),
    );
    drop(fresh);
}

fn assert_codec_refused(media: &Media, code: &str) {
    let controld = Controld::start();
    let api = controld.api();
    let input = create(&api, 10);
    let uid = uid(&input);
    let caller = Publisher::start_media(&controld.srt_url(&input), media);
    let current = api.await_status(&uid, "a codec error", |c| !c["errorCode"].is_null());
    assert_eq!(current["errorCode"], code, "{current}");
    assert_eq!(current["ingestProtocol"], "srt", "{current}");
    drop(caller);
}

#[test]
fn hevc_over_srt_is_refused_with_cloudflare_s_code() {
    let hevc = Media {
        video_override: cfstream_testmedia::X265,
        ..Encoding::good(8).mpegts(AAC_64K)
    };
    assert_codec_refused(&hevc, "ERR_UNSUPPORTED_VIDEO_CODEC");
}

#[test]
fn mp3_over_srt_is_refused_with_cloudflare_s_code() {
    assert_codec_refused(
        &Encoding::good(8).mpegts(MP3_64K),
        "ERR_UNSUPPORTED_AUDIO_CODEC",
    );
}

/// An SRT handshake induction (HSv4 caller, as libsrt starts one): libsrt answers with a cookie,
/// and a caller that never concludes leaves a half handshake.
fn induction(socket_id: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let words: [u32; 8] = [4, 2, socket_id, 1500, 8192, 1, socket_id, 0];
    for word in words {
        packet.extend_from_slice(&word.to_be_bytes());
    }
    packet.extend_from_slice(&[127, 0, 0, 1]);
    packet.resize(16 + 48, 0);
    packet
}

#[test]
fn garbage_and_half_handshakes_leave_memory_bounded_and_live_inputs_undisturbed() {
    let controld = Controld::start();
    let api = controld.api();
    let input = create(&api, 10);
    let uid = uid(&input);
    let publisher = publish(&controld, &input, 25);
    api.await_status(&uid, "connected", state_is("connected"));
    let pid = controld.pid();
    let rss_before = proc_status_bytes(pid, "VmRSS").unwrap();

    // Loopback only, bounded in count and time: 2 senders of bursts of 100, ~20 000 datagrams
    // a second in all, for 5 s. (Flat out, the senders would starve the caller's encoder of the
    // machine's two cores, and that is not what is tested.)
    let target = controld.srt.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let sent: usize = std::thread::scope(|scope| {
        let senders: Vec<_> = (0..2u32)
            .map(|sender| {
                scope.spawn(move || {
                    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                    let mut n = 0usize;
                    while Instant::now() < deadline && n < 50_000 {
                        let id = sender << 24 | n as u32;
                        let garbage: Vec<u8> =
                            (0..(n % 1400) + 1).map(|i| (i * 31 + n) as u8).collect();
                        let packet = if n.is_multiple_of(2) {
                            induction(id)
                        } else {
                            garbage
                        };
                        let _ = socket.send_to(&packet, target);
                        n += 1;
                        if n.is_multiple_of(100) {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                    n
                })
            })
            .collect();
        senders.into_iter().map(|s| s.join().unwrap()).sum()
    });
    assert!(sent > 10_000, "only {sent} datagrams sent");

    let rss_after = proc_status_bytes(pid, "VmRSS").unwrap();
    let grown = rss_after.saturating_sub(rss_before);
    assert!(
        grown < 64 << 20,
        "RSS grew by {grown} bytes over {sent} datagrams"
    );
    let current = api.input(&uid)["status"]["current"].clone();
    assert_eq!(current["state"], "connected", "{current}");
    let before = segments_of(&controld, &uid);
    wait_for("another segment", Duration::from_secs(20), || {
        (segments_of(&controld, &uid) > before).then_some(())
    });
    let (status, err) = publisher.wait(FFMPEG_TIMEOUT);
    assert!(status.success(), "the live caller was disturbed: {err}");
}

#[test]
fn an_srt_input_s_output_relays_it_over_rtmp() {
    let controld = Controld::start();
    let api = controld.api();
    // The SRT input records too: its tee feeds the HLS branch and the remuxing output branch.
    let source = create(&api, 2);
    let target = create(&api, 2);
    let target_uid = uid(&target);
    api.ok(
        "POST",
        &format!("/live_inputs/{}/outputs", uid(&source)),
        Some(json!({
            "url": format!("rtmp://{}/live", controld.rtmp),
            "streamKey": target["rtmp"]["streamKey"],
        })),
    );
    let _caller = publish(&controld, &source, 20);
    api.await_status(&uid(&source), "source connected", state_is("connected"));
    let current = api.await_status(&target_uid, "target connected through the output", |c| {
        c["state"] == "connected"
    });
    assert_eq!(current["ingestProtocol"], "rtmp", "{current}");
    let manifest = format!("{}/{target_uid}/manifest/video.m3u8", controld.base_url());
    wait_for(
        "the relayed stream's playlist",
        Duration::from_secs(45),
        || (http_get(&manifest).0 == 200).then_some(()),
    );
    let streams = ffprobe_streams(&manifest).expect("ffprobe plays the relayed stream");
    assert!(streams.contains(&"h264".to_owned()) && streams.contains(&"aac".to_owned()));
}
