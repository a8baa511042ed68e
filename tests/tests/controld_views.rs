//! Live viewer counts of a real broadcast (ffmpeg publishing over RTMP to the controld binary):
//! plain HTTP viewers that follow the manifests like players (HLS through the input's id, DASH
//! through the video's uid, following the MPD's `Location`), all from the same address and
//! client, are counted apart — two, then five — and drop to 0 once they have stopped for the
//! 30 s window. The video object shows the recording's frame size and bytes, live and finished.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cfstream_e2e::playback::{resolve, segment_uris, text};
use cfstream_e2e::*;
use serde_json::{Value, json};

const LIVE_TIMEOUT: Duration = Duration::from_secs(45);
/// How often a viewer reloads its manifest (a player's pace: about a part or an MPD update).
const RELOAD_EVERY: Duration = Duration::from_secs(1);
/// The server counts a viewer for 30 s after its last request.
const WINDOW: Duration = Duration::from_secs(30);

/// A viewer playing in its own thread until dropped.
struct Viewer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Viewer {
    fn start(follow: impl FnOnce(&AtomicBool) + Send + 'static) -> Viewer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        Viewer {
            stop,
            thread: Some(std::thread::spawn(move || follow(&flag))),
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
            && !std::thread::panicking()
        {
            panic!("a viewer failed (its panic is above)");
        }
    }
}

/// GETs `url` until it answers 200 (a live input answers 204 until it has media); the body.
fn await_entry(url: &str, stop: &AtomicBool) -> Option<String> {
    while !stop.load(Ordering::SeqCst) {
        let (status, _, body) = http_get(url);
        if status == 200 {
            return Some(String::from_utf8(body).expect("a UTF-8 manifest"));
        }
        std::thread::sleep(RELOAD_EVERY);
    }
    None
}

/// An HLS player: the multivariant playlist once, then its video media playlist and each new
/// segment it lists, through the URIs the manifests name (they carry the viewer's `vid`).
fn hls_viewer(entry: String) -> Viewer {
    Viewer::start(move |stop| {
        let Some(multivariant) = await_entry(&entry, stop) else {
            return;
        };
        let media = resolve(&entry, &segment_uris(&multivariant)[0]);
        assert!(media.contains("vid="), "{media}");
        let mut fetched = String::new();
        while !stop.load(Ordering::SeqCst) {
            let playlist = text(&media);
            let last = segment_uris(&playlist).pop().expect("a listed segment");
            if last != fetched {
                let (status, _, _) = http_get(&resolve(&media, &last));
                assert_eq!(status, 200, "{last}");
                fetched = last;
            }
            std::thread::sleep(RELOAD_EVERY);
        }
    })
}

/// A DASH player: the MPD, then reloads from its `Location` (which carries the viewer's `vid`).
fn dash_viewer(entry: String) -> Viewer {
    Viewer::start(move |stop| {
        let Some(mpd) = await_entry(&entry, stop) else {
            return;
        };
        let location = mpd
            .split("<Location>")
            .nth(1)
            .and_then(|l| l.split("</Location>").next())
            .unwrap_or_else(|| panic!("no Location in\n{mpd}"))
            .replace("&amp;", "&");
        let reload = resolve(&entry, &location);
        while !stop.load(Ordering::SeqCst) {
            assert!(text(&reload).contains("<MPD"), "{reload}");
            std::thread::sleep(RELOAD_EVERY);
        }
    })
}

fn live_viewers(controld: &Controld, input: &str) -> Value {
    let (status, _, body) = http_get(&format!("{}/{input}/views", controld.base_url()));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let json: Value = serde_json::from_slice(&body).unwrap();
    json["liveViewers"].clone()
}

fn await_viewers(controld: &Controld, input: &str, n: u64) {
    wait_for(&format!("{n} live viewers"), LIVE_TIMEOUT, || {
        (live_viewers(controld, input) == n).then_some(())
    });
}

/// Bytes of the files in `dir`.
fn bytes_in(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[test]
fn viewers_are_counted_apart_and_drop_to_zero_after_the_window() {
    let controld = Controld::start();
    let api = controld.api();
    let input = api.create_input(json!({
        "recording": {"mode": "automatic", "timeoutSeconds": 1}
    }));
    let uid = input["uid"].as_str().unwrap().to_owned();
    let key = input["rtmp"]["streamKey"].as_str().unwrap();
    let publisher = Publisher::start(&controld.rtmp_url(key), Encoding::good(180));
    let base = controld.base_url();
    let lifecycle = format!("{base}/{uid}/lifecycle");
    let video = wait_for("a recording", LIVE_TIMEOUT, || {
        let lifecycle: Value = serde_json::from_slice(&http_get(&lifecycle).2).unwrap();
        lifecycle["videoUID"].as_str().map(str::to_owned)
    });
    assert_eq!(live_viewers(&controld, &uid), 0);

    let hls = format!("{base}/{uid}/manifest/video.m3u8");
    let dash = format!("{base}/{video}/manifest/video.mpd");
    let mut viewers = vec![hls_viewer(hls.clone()), dash_viewer(dash.clone())];
    await_viewers(&controld, &uid, 2);

    // While live the video object shows the frame size and the media listed so far.
    let live = api.ok("GET", &format!("/{video}"), None);
    assert_eq!(
        live["input"],
        json!({"width": 320, "height": 240}),
        "{live}"
    );
    assert!(live["size"].as_u64().unwrap() > 0, "{live}");

    viewers.extend([hls_viewer(hls.clone()), hls_viewer(hls), dash_viewer(dash)]);
    await_viewers(&controld, &uid, 5);
    // Still five a few reloads later: nobody is counted twice.
    let steady = Instant::now() + 3 * RELOAD_EVERY;
    while Instant::now() < steady {
        assert_eq!(live_viewers(&controld, &uid), 5);
        std::thread::sleep(RELOAD_EVERY / 2);
    }

    drop(viewers);
    let stopped = Instant::now();
    wait_for("no live viewers", WINDOW + LIVE_TIMEOUT, || {
        (live_viewers(&controld, &uid) == 0).then_some(())
    });
    let gone = stopped.elapsed();
    assert!(
        gone >= WINDOW - 3 * RELOAD_EVERY,
        "viewers dropped after {gone:?}, before the 30 s window"
    );

    // Finished: the frame size and the bytes on disk are stored with the video.
    publisher.kill();
    let ready = wait_for("the video to be ready", LIVE_TIMEOUT, || {
        let v = api.ok("GET", &format!("/{video}"), None);
        (v["status"]["state"] == "ready").then_some(v)
    });
    let dir = controld
        .data_dir
        .path()
        .join("media")
        .join(&uid)
        .join(&video);
    assert_eq!(ready["input"], json!({"width": 320, "height": 240}));
    assert_eq!(ready["size"].as_u64(), Some(bytes_in(&dir)), "{ready}");
    assert_eq!(ready["preview"], format!("{base}/{video}/watch"));
}
