//! Recordings copied to a real S3 server (Garage) by two nodes sharing one PostgreSQL: the
//! node that records copies each recording to the bucket, and once that node is gone another
//! node serves the recording from the bucket's copy, the same playlists and every segment.

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
    let a = Controld::start_node(&database, "node-a", &bucket_args);
    let b = Controld::start_node(&database, "node-b", &bucket_args);
    let input = a.api().create_input(json!({
        "recording": {"mode": "automatic", "timeoutSeconds": 1}
    }));
    let uid = input["uid"].as_str().unwrap().to_owned();
    let key = input["rtmp"]["streamKey"].as_str().unwrap().to_owned();

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

fn body_of(node: &Controld, path: &str) -> Vec<u8> {
    let (status, _, body) = http_get(&format!("{}{path}", node.base_url()));
    assert_eq!(status, 200, "{path}: {}", text(&body));
    body
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
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
