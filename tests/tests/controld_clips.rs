//! Live instant clipping and downloads against a real broadcast (ffmpeg publishing over RTMP to
//! the controld binary): preview manifests (`?duration=`) live and finished, clip manifests
//! (`clip.m3u8?time=&duration=`) and clip MP4s that ffprobe and ffmpeg read, byte ranges of an
//! MP4, the downloads API and its MP4 holding every frame of the recording, and the 400s / 404s
//! of bad requests.

use std::process::Command;
use std::time::Duration;

use cfstream_e2e::playback::{is_ended, media_playlist_url, segment_seconds, text};
use cfstream_e2e::*;
use cfstream_proto::render::check::check_text;
use serde_json::{Value, json};

const FFMPEG_TIMEOUT: Duration = Duration::from_secs(90);
const LIVE_TIMEOUT: Duration = Duration::from_secs(45);
/// The publisher's keyframe interval (seconds, the shortest controld takes): a segment each.
const GOP: f64 = 4.0;
const SECONDS: u32 = 28;

/// A GET answered whatever its status, with its headers.
fn get(url: &str, range: Option<&str>) -> ureq::Response {
    let mut request = ureq::get(url).timeout(Duration::from_secs(60));
    if let Some(range) = range {
        request = request.set("Range", range);
    }
    match request.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    }
}

fn body(response: ureq::Response) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut out).expect("body");
    out
}

fn status(url: &str) -> u16 {
    get(url, None).status()
}

/// `ffprobe` of one entry (`format=duration`, `stream=nb_read_frames` …) of `url`.
fn probe(url: &str, args: &[&str]) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-rw_timeout", "20000000"])
        .args(args)
        .args(["-of", "csv=p=0", url])
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn duration_of(url: &str) -> f64 {
    probe(url, &["-show_entries", "format=duration"])
        .parse()
        .expect("a duration")
}

/// Video frames ffprobe decodes from `url`.
fn video_frames(url: &str) -> u64 {
    let frames = probe(
        url,
        &[
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
        ],
    );
    // HLS lists the stream once per program it is in: the first line.
    let first = frames.lines().next().unwrap_or_default();
    first
        .parse()
        .unwrap_or_else(|_| panic!("{url}: frames {frames:?}"))
}

fn preview_start(response: &ureq::Response) -> f64 {
    let value = response
        .header("preview-start-seconds")
        .expect("preview-start-seconds");
    value
        .parse()
        .unwrap_or_else(|_| panic!("preview-start-seconds {value:?}"))
}

#[test]
fn previews_clips_clip_mp4s_and_downloads_of_a_broadcast() {
    let controld = Controld::start();
    let base = controld.base_url();
    let api = controld.api();
    let input = api.create_input(json!({"recording": {"mode": "automatic", "timeoutSeconds": 1}}));
    let key = input["rtmp"]["streamKey"].as_str().unwrap();
    let input = input["uid"].as_str().unwrap().to_owned();
    let encoding = Encoding {
        keyint: (GOP * 30.0) as u32,
        seconds: SECONDS,
    };
    let publisher = Publisher::start(&controld.rtmp_url(key), encoding);
    let manifest = |id: &str, file: &str| format!("{base}/{id}/manifest/{file}");

    // Live: the preview slides (no playlist type, no end) and names the broadcast.
    let input_preview = manifest(&input, "video.m3u8?duration=6s");
    let media = wait_for("a live preview with a segment", LIVE_TIMEOUT, || {
        let media = media_playlist_url(&input_preview)?;
        (!segment_seconds(&text(&media)).is_empty()).then_some(media)
    });
    assert!(media.contains("duration=6s"), "{media}");
    let lifecycle: Value =
        serde_json::from_slice(&http_get(&format!("{base}/{input}/lifecycle")).2).unwrap();
    let video = lifecycle["videoUID"]
        .as_str()
        .expect("a video while live")
        .to_owned();
    let response = get(&input_preview, None);
    assert_eq!(response.header("stream-media-id"), Some(video.as_str()));
    assert!(preview_start(&response) >= 0.0);
    let live = text(&media);
    assert_eq!(check_text(&live), Ok(vec![]), "{live}");
    assert!(
        !live.contains("EXT-X-PLAYLIST-TYPE") && !is_ended(&live),
        "{live}"
    );
    let (code, refused) = api.call("POST", &format!("/{video}/downloads"), None);
    assert_eq!(code, 400, "a live recording has no download: {refused}");

    let (exit, err) = publisher.wait(FFMPEG_TIMEOUT);
    assert!(exit.success(), "ffmpeg: {err}");
    let recorded = manifest(&video, "video.m3u8");
    wait_for("the recording to end", LIVE_TIMEOUT, || {
        is_ended(&text(&media_playlist_url(&recorded)?)).then_some(())
    });
    let total: f64 = segment_seconds(&text(&media_playlist_url(&recorded).unwrap()))
        .iter()
        .sum();

    // Finished: the preview is the last 16 s cut at segment boundaries, ending the recording.
    let preview = manifest(&video, "video.m3u8?duration=16s");
    let response = get(&preview, None);
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("stream-media-id"), Some(video.as_str()));
    let start = preview_start(&response);
    let playlist = text(&media_playlist_url(&preview).unwrap());
    assert_eq!(check_text(&playlist), Ok(vec![]), "{playlist}");
    assert!(is_ended(&playlist), "{playlist}");
    let shown = segment_seconds(&playlist);
    let length: f64 = shown.iter().sum();
    assert!(length >= 16.0 && length - shown[0] < 16.0, "{shown:?}");
    assert!(
        (start + length - total).abs() < 0.1,
        "starts at {start} s, lasts {length} of {total}"
    );

    // A clip: whole segments from the keyframe at or before 9 s, 6 s long ± a GOP.
    let clip = manifest(&video, "clip.m3u8?time=9s&duration=6s");
    let clip_media = media_playlist_url(&clip).expect("the clip's media playlist");
    let playlist = text(&clip_media);
    assert_eq!(check_text(&playlist), Ok(vec![]), "{playlist}");
    assert!(
        is_ended(&playlist) && playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD"),
        "{playlist}"
    );
    let clip_length = duration_of(&clip);
    assert!(
        (clip_length - 6.0).abs() <= GOP,
        "clip.m3u8 lasts {clip_length} s"
    );
    decode_all(&clip).expect("clip.m3u8 decodes");

    // The clip as one MP4, an attachment, with video and audio.
    let mp4_url = format!("{base}/{video}/clip.mp4?time=9s&duration=6s&filename=goal.mp4");
    let response = get(&mp4_url, None);
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("content-type"), Some("video/mp4"));
    assert_eq!(
        response.header("content-disposition"),
        Some("attachment; filename=\"goal.mp4\"")
    );
    let length: usize = response.header("content-length").unwrap().parse().unwrap();
    let whole = body(response);
    assert_eq!(whole.len(), length);
    assert_eq!(&whole[4..8], b"ftyp");
    let moov = whole.windows(4).position(|w| w == b"moov").unwrap();
    let mdat = whole.windows(4).position(|w| w == b"mdat").unwrap();
    assert!(moov < mdat, "progressive: moov before mdat");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("goal.mp4");
    std::fs::write(&file, &whole).unwrap();
    let file = file.to_str().unwrap();
    let streams = ffprobe_streams(file).unwrap();
    assert_eq!(streams, ["h264", "aac"], "{streams:?}");
    let mp4_length = duration_of(file);
    assert!(
        (mp4_length - 6.0).abs() <= GOP,
        "clip.mp4 lasts {mp4_length} s"
    );
    decode_all(file).expect("clip.mp4 decodes");
    decode_all(&mp4_url).expect("clip.mp4 decodes over HTTP");
    let response = get(&mp4_url, Some("bytes=100-1099"));
    assert_eq!(response.status(), 206);
    let range = format!("bytes 100-1099/{length}");
    assert_eq!(response.header("content-range"), Some(range.as_str()));
    assert_eq!(body(response), &whole[100..1100]);
    let response = get(&mp4_url, Some(&format!("bytes=-{}", length - mdat)));
    assert_eq!(
        body(response),
        &whole[mdat..],
        "a range within the segment files"
    );
    assert_eq!(
        get(&mp4_url, Some(&format!("bytes={length}-"))).status(),
        416
    );

    // Downloads: none, created (ready at once), every frame of the recording, deleted.
    let downloads = format!("/{video}/downloads");
    assert_eq!(api.ok("GET", &downloads, None), json!({}));
    let created = api.ok("POST", &downloads, None);
    assert_eq!(created["default"]["status"], "ready", "{created}");
    assert_eq!(created["default"]["percentComplete"], 100.0, "{created}");
    assert_eq!(api.ok("GET", &downloads, None), created);
    let url = created["default"]["url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("{base}/{video}/downloads/default.mp4"));
    let response = get(&url, None);
    assert_eq!(response.status(), 200);
    let disposition = format!("attachment; filename=\"{video}.mp4\"");
    assert_eq!(
        response.header("content-disposition"),
        Some(disposition.as_str())
    );
    decode_all(&url).expect("the download decodes");
    assert_eq!(
        video_frames(&url),
        video_frames(&recorded),
        "every frame of the recording"
    );
    // Signed URLs: the token must say downloadable.
    api.ok(
        "POST",
        &format!("/{video}"),
        Some(json!({"requireSignedURLs": true})),
    );
    assert_eq!(status(&url), 401);
    let token = |body: Value| {
        let created = api.ok("POST", &format!("/{video}/token"), Some(body));
        created["token"].as_str().unwrap().to_owned()
    };
    let plain = token(json!({}));
    assert_eq!(
        status(&format!("{base}/{plain}/downloads/default.mp4")),
        403
    );
    let downloadable = token(json!({"downloadable": true}));
    let signed = format!("{base}/{downloadable}/downloads/default.mp4");
    assert_eq!(get(&signed, Some("bytes=0-7")).status(), 206);
    assert_eq!(
        status(&manifest(&plain, "clip.m3u8?time=9s&duration=6s")),
        200
    );
    api.ok(
        "POST",
        &format!("/{video}"),
        Some(json!({"requireSignedURLs": false})),
    );
    assert_eq!(api.ok("DELETE", &downloads, None), json!("ok"));
    assert_eq!(api.ok("GET", &downloads, None), json!({}));
    assert_eq!(status(&url), 404);

    // Bad requests.
    for query in [
        "clip.m3u8?time=8s",
        "clip.m3u8?duration=6s",
        "clip.m3u8?time=8s&duration=61s",
        "clip.m3u8?time=8x&duration=6s",
        "clip.m3u8?time=999s&duration=6s",
        "video.m3u8?duration=6m",
        "video.mpd?duration=30s",
    ] {
        assert_eq!(status(&manifest(&video, query)), 400, "{query}");
    }
    assert_eq!(
        status(&manifest(&input, "clip.m3u8?time=8s&duration=6s")),
        400
    );
    for query in [
        "time=8s",
        "time=999s&duration=6s",
        "time=8s&duration=6s&filename=a%20b",
    ] {
        assert_eq!(
            status(&format!("{base}/{video}/clip.mp4?{query}")),
            400,
            "{query}"
        );
    }
    let unknown = "0123456789abcdef0123456789abcdef";
    assert_eq!(
        status(&format!("{base}/{unknown}/clip.mp4?time=8s&duration=6s")),
        404
    );
    assert_eq!(
        status(&manifest(unknown, "clip.m3u8?time=8s&duration=6s")),
        404
    );
    assert_eq!(
        api.call("POST", &format!("/{unknown}/downloads"), None).0,
        404
    );
}
