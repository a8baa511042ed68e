//! CMAF playback of a real broadcast (ffmpeg publishing over RTMP to the controld binary):
//! HLS and DASH decode clean with ffmpeg live and recorded and play in GStreamer's playbin3,
//! and the defects the MPEG-TS playlists had (issue 13) stay fixed, each in its own test: the
//! live window lasts at least three target durations, a video's URL never moves its media
//! sequence back, and a viewer watching when the publisher stops sees `EXT-X-ENDLIST` (only a
//! new request gets 204).

use std::time::Duration;

use cfstream_e2e::playback::{
    is_ended, media_playlist_url, media_sequence, segment_seconds, segment_uris, target_duration,
    text,
};
use cfstream_e2e::*;
use cfstream_proto::render::check::{check_reload_text, check_text};
use serde_json::{Value, json};

const FFMPEG_TIMEOUT: Duration = Duration::from_secs(90);
const LIVE_TIMEOUT: Duration = Duration::from_secs(45);

/// A live input recording automatically, and the publisher on it.
struct Broadcast {
    controld: Controld,
    input: String,
    publisher: Option<Publisher>,
}

fn broadcast(seconds: u32) -> Broadcast {
    let controld = Controld::start();
    let input = controld.api().create_input(json!({
        "recording": {"mode": "automatic", "timeoutSeconds": 1}
    }));
    let key = input["rtmp"]["streamKey"].as_str().unwrap();
    let publisher = Publisher::start(&controld.rtmp_url(key), Encoding::good(seconds));
    Broadcast {
        input: input["uid"].as_str().unwrap().to_owned(),
        publisher: Some(publisher),
        controld,
    }
}

impl Broadcast {
    fn manifest(&self, id: &str, file: &str) -> String {
        format!("{}/{id}/manifest/{file}", self.controld.base_url())
    }

    /// The input's media playlist URL (it names the broadcast with `rec=`) once it is live.
    fn live_media_url(&self) -> String {
        let multivariant = self.manifest(&self.input, "video.m3u8");
        wait_for("the input to be live", LIVE_TIMEOUT, || {
            media_playlist_url(&multivariant)
        })
    }

    /// The video being recorded.
    fn video(&self) -> String {
        let url = format!("{}/{}/lifecycle", self.controld.base_url(), self.input);
        let lifecycle: Value = serde_json::from_slice(&http_get(&url).2).unwrap();
        lifecycle["videoUID"]
            .as_str()
            .expect("a video while live")
            .to_owned()
    }

    fn publisher_ends(&mut self) {
        let publisher = self.publisher.take().expect("one publisher");
        let (status, err) = publisher.wait(FFMPEG_TIMEOUT);
        assert!(status.success(), "ffmpeg: {err}");
    }
}

/// Reloads `url` until `done` says the playlist is what the test waits for; every reload must
/// pass the checker against the previous one. Returns every reload.
fn reload_until(url: &str, what: &str, done: impl Fn(&str) -> bool) -> Vec<String> {
    let mut reloads: Vec<String> = Vec::new();
    wait_for(what, Duration::from_secs(60), || {
        let playlist = text(url);
        assert_eq!(check_text(&playlist), Ok(vec![]), "{url}:\n{playlist}");
        if let Some(previous) = reloads.last() {
            assert_eq!(
                check_reload_text(previous, &playlist),
                Ok(vec![]),
                "{url}:\n{previous}\n--- then ---\n{playlist}"
            );
        }
        let finished = done(&playlist);
        reloads.push(playlist);
        finished.then_some(())
    });
    reloads
}

#[test]
fn hls_and_dash_decode_clean_live_and_recorded() {
    let mut b = broadcast(16);
    let live_hls = b.manifest(&b.input, "video.m3u8");
    b.live_media_url();
    let video = b.video();
    let live_decode = std::thread::spawn(move || decode_all(&live_hls));
    let live_mpd = b.manifest(&video, "video.mpd");
    let (status, content_type, _) = http_get(&live_mpd);
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/dash+xml")
    );
    let streams = ffprobe_streams(&live_mpd).expect("ffprobe reads the live MPD");
    assert!(streams.contains(&"h264".to_owned()), "{streams:?}");
    b.publisher_ends();
    live_decode
        .join()
        .unwrap()
        .expect("the live HLS stream decodes to its end");
    let recorded = b.manifest(&video, "video.m3u8");
    wait_for("the recording to end", LIVE_TIMEOUT, || {
        is_ended(&text(&media_playlist_url(&recorded)?)).then_some(())
    });
    decode_all(&recorded).expect("the recorded HLS decodes");
    decode_all(&b.manifest(&video, "video.mpd")).expect("the recorded DASH decodes");
    let streams = ffprobe_streams(&recorded).unwrap();
    assert!(streams.contains(&"aac".to_owned()), "{streams:?}");
    // GStreamer's own players (playbin3: hlsdemux2, dashdemux2) play both manifests through:
    // 16 s at 30 fps and AAC at 44.1 kHz (43 frames/s), allowing for coalesced notifications.
    for manifest in ["video.m3u8", "video.mpd"] {
        let (video, audio) = playbin_buffers(&b.manifest(&video, manifest));
        assert!(
            video >= 16 * 30 * 8 / 10,
            "{manifest}: {video} video buffers"
        );
        assert!(
            audio >= 16 * 43 * 7 / 10,
            "{manifest}: {audio} audio buffers"
        );
    }
}

/// Plays `url` to its end with `playbin3` into fake sinks as fast as it decodes; the buffers
/// each sink received (it must exit without an error).
fn playbin_buffers(url: &str) -> (usize, usize) {
    let out = std::process::Command::new("gst-launch-1.0")
        .args(["-v", "playbin3", &format!("uri={url}")])
        .arg("video-sink=fakesink name=v sync=false silent=false")
        .arg("audio-sink=fakesink name=a sync=false silent=false")
        .output()
        .expect("running gst-launch-1.0");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !stdout.contains("ERROR"),
        "playbin3 {url}: {}{}",
        stdout
            .lines()
            .filter(|l| l.contains("ERROR"))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |sink: &str| {
        let marker = format!("GstFakeSink:{sink}: last-message = chain");
        stdout.lines().filter(|l| l.contains(&marker)).count()
    };
    (count("v"), count("a"))
}

#[test]
fn the_live_window_lasts_three_target_durations() {
    let mut b = broadcast(28);
    let url = b.live_media_url();
    // Until the window slides, it shows everything; from then on at least 3 target durations.
    let reloads = reload_until(&url, "the window to slide", |p| media_sequence(p) > 0);
    let slid = reloads.last().unwrap();
    let shown: f64 = segment_seconds(slid).iter().sum();
    let target = target_duration(slid) as f64;
    assert!(
        shown >= 3.0 * target,
        "{shown} s shown with a {target} s target:\n{slid}"
    );
    assert!(
        target <= 6.0,
        "target duration fits 4 s GOPs, not a fixed 10:\n{slid}"
    );
    b.publisher_ends();
}

#[test]
fn a_video_url_grows_and_ends_without_its_media_sequence_going_back() {
    let mut b = broadcast(16);
    b.live_media_url();
    let url = media_playlist_url(&b.manifest(&b.video(), "video.m3u8")).unwrap();
    let live = text(&url);
    assert!(live.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{live}");
    b.publisher_ends();
    let reloads = reload_until(&url, "the recording to end", is_ended);
    for playlist in &reloads {
        assert_eq!(media_sequence(playlist), 0, "{playlist}");
    }
    assert!(reloads.last().unwrap().contains("#EXT-X-PLAYLIST-TYPE:VOD"));
}

#[test]
fn a_viewer_watching_when_the_publisher_stops_sees_the_end_and_a_new_one_gets_204() {
    let mut b = broadcast(12);
    let url = b.live_media_url();
    assert!(url.contains("rec="), "{url}");
    let before = text(&url);
    let listed_live = segment_uris(&before).len();
    b.publisher_ends();
    let reloads = reload_until(&url, "EXT-X-ENDLIST", is_ended);
    let ended = reloads.last().unwrap();
    assert!(
        segment_uris(ended).len() >= listed_live,
        "the last segment is offered:\n{ended}"
    );
    let multivariant = b.manifest(&b.input, "video.m3u8");
    wait_for("204 for a new viewer", LIVE_TIMEOUT, || {
        let (status, _, body) = http_get(&multivariant);
        (status == 204 && body.is_empty()).then_some(())
    });
    // The viewer's own URL still plays the broadcast to its end.
    assert!(is_ended(&text(&url)));
}
