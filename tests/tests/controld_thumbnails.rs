//! Thumbnails (`/{id}/thumbnails/thumbnail.jpg`) of a real broadcast: ffmpeg publishes a picture
//! whose gray level says the second it was made at, controld decodes the asked frame, and
//! ffmpeg decodes the JPEG back: its size is the asked one and its luma the asked second's. The
//! live input's thumbnail follows the live edge; each fit has its size; bad queries are 400
//! naming the parameter, unknown ids 404, a burst beyond the decode slots 503, and
//! requireSignedURLs is honoured.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use cfstream_e2e::{AAC_64K, Api, Controld, Media, Publisher, wait_for};
use serde_json::{Value, json};

/// Each second a uniform gray: luma 30 × (second mod 8).
const PICTURE: &str = "nullsrc=s=320x180:r=30,geq=lum='mod(floor(T)*30,240)':cb=128:cr=128";
const SECONDS: f64 = 10.0;
/// JPEG and H.264 round trips of a flat picture stay this close.
const LUMA_TOLERANCE: f64 = 8.0;
/// Parallel requests of distinct thumbnails: far more than one decode slot and its 8 waiting.
const BURST: u32 = 100;

fn luma_of_second(second: u32) -> f64 {
    f64::from(second * 30 % 240)
}

/// GET without credentials: (status, Cache-Control, body).
fn get(url: &str) -> (u16, String, Vec<u8>) {
    let response = match ureq::get(url).timeout(Duration::from_secs(60)).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = response.status();
    let cache = response.header("cache-control").unwrap_or("").to_owned();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut body).expect("body");
    (status, cache, body)
}

/// A decoded JPEG: its size and luma plane.
struct Picture {
    width: usize,
    height: usize,
    luma: Vec<u8>,
}

impl Picture {
    /// Mean luma of rows `rows` (all columns).
    fn mean(&self, rows: std::ops::Range<usize>) -> f64 {
        let pixels = &self.luma[rows.start * self.width..rows.end * self.width];
        pixels.iter().map(|&y| f64::from(y)).sum::<f64>() / pixels.len() as f64
    }

    fn mean_all(&self) -> f64 {
        self.mean(0..self.height)
    }
}

/// ffprobe reads the JPEG's size, ffmpeg decodes it to its own planar YUV (no range or color
/// conversion): the luma plane comes first.
fn decode(jpeg: &[u8]) -> Picture {
    let run = |program: &str, args: &[&str]| -> Vec<u8> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        child.stdin.take().unwrap().write_all(jpeg).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let probed = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=width,height,codec_name",
            "-of",
            "json",
            "-i",
            "pipe:0",
        ],
    );
    let probed: Value = serde_json::from_slice(&probed).unwrap();
    let stream = &probed["streams"][0];
    assert_eq!(stream["codec_name"], "mjpeg", "{probed}");
    let width = stream["width"].as_u64().unwrap() as usize;
    let height = stream["height"].as_u64().unwrap() as usize;
    let raw = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-f",
            "image2pipe",
            "-i",
            "pipe:0",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuvj420p",
            "pipe:1",
        ],
    );
    assert!(raw.len() >= width * height, "{} bytes", raw.len());
    Picture {
        width,
        height,
        luma: raw[..width * height].to_vec(),
    }
}

fn thumbnail(controld: &Controld, id: &str, query: &str) -> (u16, String, Vec<u8>) {
    get(&format!(
        "{}/{id}/thumbnails/thumbnail.jpg?{query}",
        controld.base_url()
    ))
}

fn picture(controld: &Controld, id: &str, query: &str) -> Picture {
    let (status, _, body) = thumbnail(controld, id, query);
    assert_eq!(status, 200, "{query}: {}", String::from_utf8_lossy(&body));
    decode(&body)
}

fn assert_luma(picture: &Picture, second: u32, what: &str) {
    let luma = picture.mean_all();
    let expected = luma_of_second(second);
    assert!(
        (luma - expected).abs() <= LUMA_TOLERANCE,
        "{what}: luma {luma:.1}, second {second} is {expected}"
    );
}

fn publish(controld: &Controld, api: &Api) -> (String, Publisher) {
    let input = api.create_input(json!({
        "recording": {"mode": "automatic", "timeoutSeconds": 1}
    }));
    let uid = input["uid"].as_str().unwrap().to_owned();
    let key = input["rtmp"]["streamKey"].as_str().unwrap();
    let media = Media {
        picture: Some(PICTURE),
        size: "320x180",
        fps: "30",
        seconds: SECONDS,
        keyint_seconds: 4.0,
        audio: AAC_64K,
        ..Media::default()
    };
    let publisher = Publisher::start_media(&controld.rtmp_url(key), &media);
    api.await_status(&uid, "connected", |c| c["state"] == "connected");
    (uid, publisher)
}

#[test]
fn thumbnails_show_the_asked_frame_at_the_asked_size() {
    let controld = Controld::start();
    let api = controld.api();
    let (input, publisher) = publish(&controld, &api);

    // Live: the latest complete segment's keyframe, moving on with the broadcast (segments of
    // 4 s: the keyframes of seconds 0 and 4).
    let first = wait_for("a live thumbnail", Duration::from_secs(30), || {
        let (status, cache, body) = thumbnail(&controld, &input, "width=320");
        (status == 200).then(|| (cache, decode(&body)))
    });
    assert_eq!(
        first.0, "public, max-age=2",
        "a live thumbnail is cached briefly"
    );
    assert_eq!((first.1.width, first.1.height), (320, 180));
    let at_second_4 = |p: &Picture| (p.mean_all() - luma_of_second(4)).abs() <= LUMA_TOLERANCE;
    if !at_second_4(&first.1) {
        assert_luma(&first.1, 0, "the first live thumbnail");
        wait_for(
            "the live thumbnail of second 4",
            Duration::from_secs(20),
            || at_second_4(&picture(&controld, &input, "width=320")).then_some(()),
        );
    }

    let (status, stderr) = publisher.wait(Duration::from_secs(60));
    assert!(status.success(), "publisher: {stderr}");
    let video = wait_for("the ready recording", Duration::from_secs(45), || {
        let videos = api.videos_of(&input);
        (videos.len() == 1 && videos[0]["status"]["state"] == "ready")
            .then(|| videos[0]["uid"].as_str().unwrap().to_owned())
    });

    // The frame of the asked second, decoded from the keyframe before it (6 s is 2 s into the
    // second segment), at the asked size.
    for second in [1, 3, 6] {
        let query = format!("time={second}s&width=320&height=180");
        let shown = picture(&controld, &video, &query);
        assert_eq!((shown.width, shown.height), (320, 180), "{query}");
        assert_luma(&shown, second, &query);
    }
    let (_, cache, _) = thumbnail(&controld, &video, "time=1s");
    assert_eq!(
        cache, "public, max-age=86400",
        "a finished video's frame is final"
    );

    // No time: thumbnailTimestampPct of the duration (0 by default), 640 wide.
    let default = picture(&controld, &video, "");
    assert_eq!((default.width, default.height), (640, 360));
    assert_luma(&default, 0, "default thumbnail");
    api.ok(
        "POST",
        &format!("/{video}"),
        Some(json!({"thumbnailTimestampPct": 0.65})),
    );
    assert_luma(
        &picture(&controld, &video, "width=64"),
        6,
        "thumbnailTimestampPct 0.65",
    );

    // Each fit in a square box of a 16:9 frame.
    for (fit, size) in [
        ("crop", (160, 160)),
        ("clip", (160, 90)),
        ("scale", (160, 160)),
        ("fill", (160, 160)),
    ] {
        let shown = picture(
            &controld,
            &video,
            &format!("time=6s&width=160&height=160&fit={fit}"),
        );
        assert_eq!((shown.width, shown.height), size, "fit={fit}");
    }
    // fill keeps the whole frame: black bars above and below it.
    let filled = picture(&controld, &video, "time=6s&width=160&height=160&fit=fill");
    let (bar, middle) = (filled.mean(0..30), filled.mean(60..100));
    assert!(bar < 40.0, "fill's top bar has luma {bar:.1}");
    assert!(
        (middle - luma_of_second(6)).abs() <= LUMA_TOLERANCE,
        "fill's middle {middle:.1}"
    );

    // Bad queries name the parameter; unknown ids are 404.
    for (query, named) in [
        ("time=60s", "time"),
        ("time=soon", "time"),
        ("width=0", "width"),
        ("width=2001", "width"),
        ("height=tall", "height"),
        ("fit=stretch", "fit"),
    ] {
        let (status, _, body) = thumbnail(&controld, &video, query);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 400, "{query}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(named), "{query}: {message}");
    }
    // A burst of distinct thumbnails (none cached) beyond one decode slot and its wait queue:
    // the excess is refused at once with Retry-After, the rest are made.
    let base = controld.base_url();
    let burst: Vec<_> = (0..BURST)
        .map(|i| {
            let url = format!(
                "{base}/{video}/thumbnails/thumbnail.jpg?time=6s&width={}",
                100 + i
            );
            std::thread::spawn(move || {
                match ureq::get(&url).timeout(Duration::from_secs(60)).call() {
                    Ok(r) => (r.status(), None),
                    Err(ureq::Error::Status(status, r)) => {
                        (status, r.header("retry-after").map(str::to_owned))
                    }
                    Err(e) => panic!("GET {url}: {e}"),
                }
            })
        })
        .collect();
    let answers: Vec<_> = burst.into_iter().map(|t| t.join().unwrap()).collect();
    let made = answers.iter().filter(|a| a.0 == 200).count();
    let refused = answers.iter().filter(|a| a.0 == 503).count();
    assert!(made >= 1 && refused >= 1, "{answers:?}");
    assert_eq!(made + refused, BURST as usize, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|a| a.0 == 200 || a.1.as_deref() == Some("1"))
    );
    assert_luma(
        &picture(&controld, &video, "time=1s&width=99"),
        1,
        "after the burst",
    );

    let unknown = "0123456789abcdef0123456789abcdef";
    assert_eq!(thumbnail(&controld, unknown, "time=1s").0, 404);

    // requireSignedURLs: refused by uid, served with a token.
    api.ok(
        "POST",
        &format!("/{video}"),
        Some(json!({"requireSignedURLs": true})),
    );
    assert_eq!(thumbnail(&controld, &video, "time=1s").0, 401);
    let token = api.ok("POST", &format!("/{video}/token"), Some(json!({})))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_luma(
        &picture(&controld, &token, "time=3s&width=32"),
        3,
        "signed thumbnail",
    );
}
