//! The embeddable player in Debian's Chromium against controld while ffmpeg publishes: a page on
//! another origin (a local HTTP server on a port of its own) embeds `<iframe src=…/iframe>` of
//! a live input. With `allowedOrigins` allowing that origin the video plays in the frame; with
//! `allowedOrigins` not allowing it the frame is refused — by the navigation's `Referer`
//! (403), and, when the embedding page sends no referrer, by the page's
//! `Content-Security-Policy: frame-ancestors`. Runs tests/players/embed.mjs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cfstream_e2e::{Controld, Encoding, Publisher, free_loopback_port, http_get, wait_for};
use serde_json::{Value, json};

const LIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// Embeds `url` on `http://127.0.0.1:{port}/` and watches the frame for up to `seconds`.
fn embed(url: &str, port: u16, seconds: u32, no_referrer: bool) -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("players");
    assert!(
        dir.join("node_modules/playwright-core").is_dir()
            && Path::new("/usr/bin/chromium").exists(),
        "Chromium or playwright-core is missing: run scripts/setup-dashboard.sh"
    );
    let mut command = Command::new("node");
    command.arg("embed.mjs").current_dir(&dir);
    command.args(["--url", url, "--port", &port.to_string()]);
    command.args(["--seconds", &seconds.to_string()]);
    if no_referrer {
        command.arg("--no-referrer");
    }
    let out = command
        .output()
        .expect("running node (Node.js 20 or later)");
    assert!(
        out.status.success(),
        "embed.mjs {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("embed.mjs prints one JSON report")
}

#[test]
fn the_player_plays_in_a_frame_where_allowed_origins_allows_it_and_is_refused_elsewhere() {
    let controld = Controld::start();
    let api = controld.api();
    let site = free_loopback_port().port();
    let input = api.create_input(json!({
        "recording": {"mode": "automatic", "allowedOrigins": [format!("127.0.0.1:{site}")]}
    }));
    let uid = input["uid"].as_str().unwrap().to_owned();
    let key = input["rtmp"]["streamKey"].as_str().unwrap();
    let _publisher = Publisher::start(&controld.rtmp_url(key), Encoding::good(120));
    let base = controld.base_url();
    wait_for("the first segment", LIVE_TIMEOUT, || {
        (http_get(&format!("{base}/{uid}/manifest/video.m3u8")).0 == 200).then_some(())
    });
    let iframe = format!("{base}/{uid}/iframe?autoplay=true&muted=true");

    let allowed = embed(&iframe, site, 45, false);
    assert_eq!(allowed["frameStatus"], 200, "{allowed}");
    assert_eq!(allowed["framed"], true, "{allowed}");
    assert_eq!(allowed["pageErrors"], json!([]), "{allowed}");
    let advanced = allowed["advancedSeconds"].as_f64().unwrap();
    assert!(
        advanced >= 3.0,
        "played {advanced:.1} s in the frame: {allowed}"
    );

    let elsewhere = free_loopback_port().port();
    let by_referer = embed(&iframe, elsewhere, 20, false);
    assert_eq!(by_referer["frameStatus"], 403, "{by_referer}");
    assert_eq!(by_referer["framed"], false, "{by_referer}");

    let by_policy = embed(&iframe, elsewhere, 20, true);
    assert_eq!(by_policy["framed"], false, "{by_policy}");
    let messages = by_policy["consoleMessages"].to_string();
    assert!(
        messages.contains("frame-ancestors"),
        "Chromium did not report the CSP refusing the frame: {by_policy}"
    );
}
