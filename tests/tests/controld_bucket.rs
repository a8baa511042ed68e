//! Recordings copied to a real S3 server (Garage) by nodes sharing one PostgreSQL: the node
//! that records copies each recording to the bucket; once that node is gone another node serves
//! the recording from the bucket's copy, the same playlists and every segment; and a broadcast
//! whose node dies goes on in the same video on the node its publisher reconnects to.

use std::time::Duration;

use cfstream_e2e::garage::{Garage, REGION};
use cfstream_e2e::{
    Controld, Encoding, Publisher, decode_all, ffprobe_streams, http_get, wait_for,
};
use cfstream_storage::{S3Storage, StorageRead};
use cfstream_testservices::ScratchDatabase;
use serde_json::json;

const PREFIX: &str = "recordings";

#[test]
fn a_recording_outlives_its_node_in_the_bucket() {
    let garage = Garage::start();
    let database = ScratchDatabase::on_test_server().keep();
    let a = node(&database, "node-a", &garage);
    let b = node(&database, "node-b", &garage);
    let (uid, key) = recorded_input(&a, 1);

    // Recorded on B: three 4 s GOPs, then the publisher leaves and the video becomes ready,
    // which it does only once its copy is complete.
    let (status, stderr) =
        Publisher::start(&b.rtmp_url(&key), Encoding::good(12)).wait(Duration::from_secs(60));
    assert!(status.success(), "publisher: {stderr}");
    let video = wait_for("B's recording to be ready", Duration::from_secs(60), || {
        let videos = a.api().videos_of(&uid);
        let ready = videos.len() == 1 && videos[0]["status"]["state"] == "ready";
        ready.then(|| videos[0]["uid"].as_str().unwrap().to_owned())
    });
    let metrics = metrics_of(&b);
    assert!(
        metric(&metrics, "cfstream_bucket_copied_bytes_total") > 0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "cfstream_bucket_copy_failures_total"),
        0,
        "{metrics}"
    );

    // The bucket holds the recording's log and its segments, under <input>/<video>/.
    let copy = S3Storage::open(&garage.config(PREFIX)).unwrap();
    let objects = copy.list_prefix(&format!("{uid}/{video}/")).unwrap();
    let named = |suffix: &str| objects.iter().filter(|o| o.ends_with(suffix)).count();
    assert_eq!(named("/index.log"), 1, "{objects:?}");
    assert!(named(".v.m4s") >= 3 && named(".a.m4s") >= 3, "{objects:?}");

    // The media playlists (the multivariant one and the MPD mint a viewer id each time).
    let playlists = ["media-v.m3u8", "media-a.m3u8"].map(|n| format!("/{video}/manifest/{n}"));
    let on_b: Vec<String> = playlists.iter().map(|p| text(&body_of(&b, p))).collect();

    // B dies; A serves the recording from the bucket's copy, as B served it.
    drop(b);
    let first = wait_for("A to serve B's recording", Duration::from_secs(60), || {
        let (status, _, body) = http_get(&format!("{}{}", a.base_url(), playlists[0]));
        (status == 200).then(|| text(&body))
    });
    assert_eq!(first, on_b[0]);
    assert!(first.contains("#EXT-X-ENDLIST"), "{first}");
    assert_eq!(text(&body_of(&a, &playlists[1])), on_b[1]);
    let on_a = format!("{}/{video}/manifest/video.m3u8", a.base_url());
    assert_eq!(ffprobe_streams(&on_a).unwrap(), ["aac", "h264"]);
    decode_all(&on_a).unwrap_or_else(|e| panic!("{on_a}: {e}"));
    assert!(metric(&metrics_of(&a), "cfstream_bucket_copy_failures_total") == 0);
}

#[test]
fn a_broadcast_whose_node_dies_goes_on_in_the_same_video_elsewhere() {
    let garage = Garage::start();
    let database = ScratchDatabase::on_test_server().keep();
    let a = node(&database, "node-a", &garage);
    let b = node(&database, "node-b", &garage);
    let (uid, key) = recorded_input(&a, 30);

    // Live on B until B has copied two video segments, then B dies mid-broadcast.
    let on_b = Publisher::start(&b.rtmp_url(&key), Encoding::good(120));
    let video = first_video(&a, &uid);
    let copy = S3Storage::open(&garage.config(PREFIX)).unwrap();
    let log = format!("{uid}/{video}/index.log");
    let copied_segments = || {
        let log = String::from_utf8(copy.read(&log).ok()?).ok()?;
        Some(log.lines().filter(|l| l.starts_with("seg kind=v")).count())
    };
    wait_for("B to copy two segments", Duration::from_secs(60), || {
        copied_segments().filter(|&n| n >= 2)
    });
    drop(b);
    on_b.kill();

    // The encoder reconnects to A, refused until B's lease lapses, then accepted: the
    // broadcast goes on in B's video, behind one discontinuity.
    wait_for("A to take the broadcast", Duration::from_secs(90), || {
        let (status, _) =
            Publisher::start(&a.rtmp_url(&key), Encoding::good(12)).wait(Duration::from_secs(60));
        status.success().then_some(())
    });
    let ready = wait_for("the video to be ready", Duration::from_secs(60), || {
        let videos = a.api().videos_of(&uid);
        (videos.iter().all(|v| v["status"]["state"] == "ready")).then_some(videos)
    });
    let uids: Vec<&str> = ready.iter().filter_map(|v| v["uid"].as_str()).collect();
    assert_eq!(uids, [video.as_str()], "one video");
    let playlist = text(&body_of(&a, &format!("/{video}/manifest/media-v.m3u8")));
    let discontinuities = playlist.lines().filter(|l| *l == "#EXT-X-DISCONTINUITY");
    assert_eq!(discontinuities.count(), 1, "{playlist}");
    // The copy lists what the playlist does: B's copied segments (up to one dropped so that its
    // tracks resume together) and A's three.
    let listed = playlist
        .lines()
        .filter(|l| l.starts_with("#EXTINF"))
        .count();
    assert!(listed >= 4, "{playlist}");
    assert_eq!(copied_segments(), Some(listed));

    // Every segment it lists decodes from the bucket: a new node plays it once A is gone.
    let c = node(&database, "node-c", &garage);
    drop(a);
    let path = format!("/{video}/manifest/media-v.m3u8");
    let on_c = wait_for("C to serve the video", Duration::from_secs(60), || {
        let (status, _, body) = http_get(&format!("{}{path}", c.base_url()));
        (status == 200).then(|| text(&body))
    });
    assert_eq!(on_c, playlist);
    let url = format!("{}/{video}/manifest/video.m3u8", c.base_url());
    decode_all(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
}

/// A node on `database` copying its recordings to `garage`.
fn node(database: &str, name: &str, garage: &Garage) -> Controld {
    let media_url = garage.url(PREFIX);
    let bucket_args = [
        "--media-url",
        &media_url,
        "--s3-endpoint",
        &garage.endpoint,
        "--s3-region",
        REGION,
        "--s3-access-key-id",
        &garage.access_key_id,
        "--s3-secret-access-key",
        &garage.secret_access_key,
        "--s3-allow-http",
    ];
    Controld::start_node(database, name, &bucket_args)
}

fn body_of(node: &Controld, path: &str) -> Vec<u8> {
    let (status, _, body) = http_get(&format!("{}{path}", node.base_url()));
    assert_eq!(status, 200, "{path}: {}", text(&body));
    body
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// A new input recording automatically, reconnect window `timeout` s: its uid and key.
fn recorded_input(node: &Controld, timeout: u32) -> (String, String) {
    let input = node.api().create_input(json!({
        "recording": {"mode": "automatic", "timeoutSeconds": timeout}
    }));
    let field = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
    (field(&input["uid"]), field(&input["rtmp"]["streamKey"]))
}

/// The first video of an input, once its row exists.
fn first_video(node: &Controld, input: &str) -> String {
    wait_for("the input's video", Duration::from_secs(60), || {
        let videos = node.api().videos_of(input);
        Some(videos.first()?["uid"].as_str()?.to_owned())
    })
}

fn metrics_of(node: &Controld) -> String {
    text(&http_get(&format!("{}/metrics", node.base_url())).2)
}

/// The value of an unlabelled sample.
fn metric(metrics: &str, name: &str) -> u64 {
    let line = metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")));
    let value = line.unwrap_or_else(|| panic!("no {name} in {metrics}"));
    value.parse().unwrap()
}
