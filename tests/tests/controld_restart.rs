//! controld killed mid-broadcast (kill -9) or stopped (SIGTERM): nothing is lost, recordings
//! are closed and playable, publishers can come back.

use std::time::Duration;

use cfstream_e2e::playback::{
    IndexLog, media_playlist_url, segments_with_init, standalone_file, standalone_segment,
};
use cfstream_e2e::{Controld, Encoding, Publisher, decode_all, http_get, wait_for};
use serde_json::{Value, json};

/// Seconds of media listed in a playlist.
fn listed_seconds(playlist: &str) -> f64 {
    playlist
        .lines()
        .filter_map(|l| {
            l.strip_prefix("#EXTINF:")?
                .split(',')
                .next()?
                .parse::<f64>()
                .ok()
        })
        .sum()
}

/// A recorded live input with a 40 s publisher on it: `(input uid, stream key, publisher)`.
fn start_broadcast(controld: &Controld) -> (String, String, Publisher) {
    let input = controld
        .api()
        .create_input(json!({"recording": {"mode": "automatic", "timeoutSeconds": 30}}));
    let uid = input["uid"].as_str().unwrap().to_owned();
    let key = input["rtmp"]["streamKey"].as_str().unwrap().to_owned();
    let publisher = Publisher::start(
        &controld.rtmp_url(&key),
        Encoding {
            keyint: 120,
            seconds: 40,
        },
    );
    (uid, key, publisher)
}

/// Waits until the input's current recording lists at least `seconds` of media; returns its uid.
fn await_recorded(controld: &Controld, input: &str, seconds: f64) -> String {
    let base = controld.base_url();
    wait_for(
        &format!("{seconds} s recorded"),
        Duration::from_secs(45),
        || {
            let (_, _, body) = http_get(&format!("{base}/{input}/lifecycle"));
            let lifecycle: Value = serde_json::from_slice(&body).ok()?;
            let video = lifecycle["videoUID"].as_str()?.to_owned();
            let media = media_playlist_url(&format!("{base}/{video}/manifest/video.m3u8"))?;
            let (status, _, body) = http_get(&media);
            let listed = listed_seconds(&String::from_utf8_lossy(&body));
            (status == 200 && listed >= seconds).then_some(video)
        },
    )
}

/// Every segment listed in the finished recording playlist decodes on its own.
fn assert_recording_closed_and_playable(controld: &Controld, video: &str) {
    let base = controld.base_url();
    let multivariant = format!("{base}/{video}/manifest/video.m3u8");
    let url = media_playlist_url(&multivariant).expect("a video playlist");
    let (status, _, body) = http_get(&url);
    assert_eq!(status, 200);
    let playlist = String::from_utf8(body).unwrap();
    assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    assert!(
        listed_seconds(&playlist) >= 8.0,
        "what was listed before the kill stays: {playlist}"
    );
    for (init, segment) in segments_with_init(&playlist) {
        let file = standalone_segment(&url, &init, &segment);
        decode_all(file.path().to_str().unwrap())
            .unwrap_or_else(|e| panic!("{segment} does not decode: {e}"));
    }
}

#[test]
fn kill_9_mid_broadcast_then_restart() {
    let controld = Controld::start();
    let (uid, key, publisher) = start_broadcast(&controld);
    let video = await_recorded(&controld, &uid, 8.0);

    let controld = controld.kill9_and_restart();
    publisher.kill();
    let api = controld.api();

    let after = api.input(&uid);
    assert_eq!(
        after["rtmp"]["streamKey"],
        key.as_str(),
        "same input, same key"
    );
    assert_eq!(after["status"]["current"]["state"], "disconnected");
    let videos = api.videos_of(&uid);
    assert_eq!(videos.len(), 1);
    assert_eq!(videos[0]["uid"], video.as_str());
    assert_eq!(videos[0]["status"]["state"], "ready");
    assert_recording_closed_and_playable(&controld, &video);

    // The same key publishes again on the new process (its RTMP port is new).
    let again = Publisher::start(
        &controld.rtmp_url(&key),
        Encoding {
            keyint: 120,
            seconds: 30,
        },
    );
    api.await_status(&uid, "connected after restart", |c| {
        c["state"] == "connected"
    });
    again.kill();
}

#[test]
fn sigterm_finishes_live_recordings() {
    let controld = Controld::start();
    let (uid, _key, publisher) = start_broadcast(&controld);
    let video = await_recorded(&controld, &uid, 4.0);
    let relative = std::path::Path::new("media").join(&uid).join(&video);

    let (status, data_dir) = controld.terminate();
    assert!(
        status.success(),
        "controld exits cleanly on SIGTERM: {status:?}"
    );
    publisher.kill();
    let dir = data_dir.path().join(relative);
    let index = IndexLog::read(&dir);
    assert!(index.ended, "{index:?}");
    assert!(index.video_seconds() >= 4.0, "{index:?}");
    for (init, segment) in index.files("v").into_iter().chain(index.files("a")) {
        let file = standalone_file(&dir, &init, &segment);
        decode_all(file.path().to_str().unwrap()).unwrap_or_else(|e| panic!("{segment}: {e}"));
    }
}
