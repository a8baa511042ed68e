//! Real players in Debian's Chromium against controld while ffmpeg publishes: hls.js (with and
//! without LL-HLS) and dash.js play a live input, its recording, a broadcast that ends while they
//! watch, and one that crosses a publisher's reconnect. Runs tests/players/play.mjs, which prints
//! what the player did as JSON.

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use cfstream_e2e::{Api, Controld, Encoding, Publisher};
use serde_json::{Value, json};

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(120);

/// Plays `url` with `player` (`hls` or `dash`) for up to `seconds`; with `until_ended`, stops
/// early once 'ended' fired. Returns play.mjs's report.
fn play(player: &str, url: &str, seconds: u32, until_ended: bool) -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("players");
    assert!(
        dir.join("node_modules/dashjs").is_dir() && Path::new("/usr/bin/chromium").exists(),
        "Chromium or dash.js is missing: run scripts/setup-dashboard.sh"
    );
    let mut command = Command::new("node");
    command.arg("play.mjs").current_dir(&dir);
    command.args(["--player", player, "--url", url]);
    command.args(["--seconds", &seconds.to_string()]);
    if until_ended {
        command.arg("--until-ended");
    }
    let out = command
        .output()
        .expect("running node (Node.js 20 or later)");
    assert!(
        out.status.success(),
        "play.mjs {player} {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("play.mjs prints one JSON report")
}

/// The report shows playback without a fatal error that advanced at least `min_seconds`.
fn assert_played(report: &Value, min_seconds: f64) {
    assert_eq!(report["fatal"], json!([]), "fatal player errors: {report}");
    assert_eq!(report["pageErrors"], json!([]), "page errors: {report}");
    assert_eq!(report["playing"], true, "never started playing: {report}");
    let advanced = report["advancedSeconds"].as_f64().unwrap_or(0.0);
    assert!(
        advanced >= min_seconds,
        "played {advanced:.1} s, expected at least {min_seconds} s: {report}"
    );
}

fn live_input(api: &Api, body: Value) -> (String, String) {
    let input = api.create_input(body);
    let uid = input["uid"].as_str().unwrap().to_owned();
    let key = input["rtmp"]["streamKey"].as_str().unwrap().to_owned();
    (uid, key)
}

/// Waits until the input's multivariant playlist answers 200 (its first segment is listed).
fn await_manifest(url: &str) {
    cfstream_e2e::wait_for("the first segment", PUBLISH_TIMEOUT, || {
        (cfstream_e2e::http_get(url).0 == 200).then_some(())
    });
}

#[test]
fn hls_js_and_dash_js_play_live_and_recorded() {
    let controld = Controld::start();
    let api = controld.api();
    let (uid, key) = live_input(
        &api,
        json!({"meta": {"name": "players"}, "recording": {"mode": "automatic"}}),
    );
    let publisher = Publisher::start(&controld.rtmp_url(&key), Encoding::good(45));
    let base = format!("{}/{uid}/manifest", controld.base_url());
    await_manifest(&format!("{base}/video.m3u8"));

    // Three players at once on the live input: plain HLS, LL-HLS and DASH.
    let urls = [
        ("hls", format!("{base}/video.m3u8")),
        ("hls", format!("{base}/video.m3u8?protocol=llhls")),
        ("dash", format!("{base}/video.mpd")),
    ];
    let players: Vec<_> = urls
        .into_iter()
        .map(|(player, url)| thread::spawn(move || play(player, &url, 25, false)))
        .collect();
    for player in players {
        assert_played(&player.join().unwrap(), 10.0);
    }
    let (status, log) = publisher.wait(PUBLISH_TIMEOUT);
    assert!(status.success(), "publisher: {log}");

    let recorded = cfstream_e2e::wait_for("the recording to finish", PUBLISH_TIMEOUT, || {
        let videos = api.videos_of(&uid);
        videos
            .first()
            .filter(|v| v["status"]["state"] == "ready")
            .cloned()
    });
    let hls = recorded["playback"]["hls"].as_str().unwrap().to_owned();
    let dash = recorded["playback"]["dash"].as_str().unwrap().to_owned();
    for (player, url) in [("hls", hls), ("dash", dash)] {
        let report = play(player, &url, 90, true);
        assert_played(&report, 40.0);
        // dash.js, on a loaded machine, was seen (2 of 3 full-suite runs, never alone) to stop
        // at the end of the recording without 'ended': it played the whole presentation.
        let ended = report["ended"] == true || (player == "dash" && report["atEnd"] == true);
        assert!(ended, "{player} did not play to the end: {report}");
    }
}

#[test]
fn a_viewer_watching_when_the_broadcast_ends_sees_it_end() {
    let controld = Controld::start();
    let api = controld.api();
    let (uid, key) = live_input(
        &api,
        json!({"recording": {"mode": "automatic", "timeoutSeconds": 30}}),
    );
    let publisher = Publisher::start(&controld.rtmp_url(&key), Encoding::good(20));
    let url = format!("{}/{uid}/manifest/video.m3u8", controld.base_url());
    await_manifest(&url);
    // Longer than the broadcast and the recording timeout together: 'ended' must come from the
    // playlist's ENDLIST, not from the player giving up.
    let report = play("hls", &url, 90, true);
    assert_played(&report, 5.0);
    assert_eq!(
        report["ended"], true,
        "hls.js did not see the end: {report}"
    );
    drop(publisher);
}

#[test]
fn hls_js_plays_through_a_publisher_reconnect() {
    let controld = Controld::start();
    let api = controld.api();
    let (uid, key) = live_input(
        &api,
        json!({"recording": {"mode": "automatic", "timeoutSeconds": 30}}),
    );
    let rtmp = controld.rtmp_url(&key);
    let first = Publisher::start(&rtmp, Encoding::good(14));
    let url = format!("{}/{uid}/manifest/video.m3u8", controld.base_url());
    await_manifest(&url);
    let viewer = thread::spawn(move || play("hls", &url, 45, false));
    let (status, log) = first.wait(PUBLISH_TIMEOUT);
    assert!(status.success(), "first publisher: {log}");
    let second = Publisher::start(&rtmp, Encoding::good(30));
    let report = viewer.join().unwrap();
    // It played on after the first publisher's 14 s: across the discontinuity.
    assert_played(&report, 20.0);
    assert_eq!(
        api.videos_of(&uid).len(),
        1,
        "one video across the reconnect"
    );
    drop(second);
}
