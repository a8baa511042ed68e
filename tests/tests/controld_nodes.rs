//! Several controld nodes on one PostgreSQL database: any node's API answers for every input,
//! a node takes a publisher for an input another node made, a key live on one node is refused
//! on the others, and when the owning node dies its lease lapses and another node takes the
//! publisher's reconnect.

use std::time::{Duration, Instant};

use cfstream_e2e::{Controld, Encoding, Publisher, ffprobe_streams, http_get, wait_for};
use cfstream_testservices::ScratchDatabase;
use serde_json::{Value, json};

#[test]
fn a_live_key_belongs_to_one_node_until_that_node_dies() {
    // Kept on the server: the nodes' state outlives the node this test kills.
    let database = ScratchDatabase::on_test_server().keep();
    let a = Controld::start_node(&database, "node-a", &[]);
    let b = Controld::start_node(&database, "node-b", &[]);
    for (node, name) in [(&a, "node-a"), (&b, "node-b")] {
        let (_, _, metrics) = http_get(&format!("{}/metrics", node.base_url()));
        let metrics = String::from_utf8(metrics).unwrap();
        let info = format!("cfstream_node_info{{node=\"{name}\"}} 1");
        assert!(metrics.contains(&info), "no {info} in {metrics}");
    }
    let input = a.api().create_input(json!({
        "recording": {"mode": "automatic", "timeoutSeconds": 30}
    }));
    let uid = input["uid"].as_str().unwrap().to_owned();
    let key = input["rtmp"]["streamKey"].as_str().unwrap().to_owned();

    // Made on A, published to B, seen from A's API and played from B.
    let on_b = Publisher::start(&b.rtmp_url(&key), Encoding::good(120));
    a.api().await_status(&uid, "B's publisher connected", |s| {
        s["state"] == "connected"
    });
    let manifest = format!("{}/{uid}/manifest/video.m3u8", b.base_url());
    wait_for("B's first segment", Duration::from_secs(30), || {
        (http_get(&manifest).0 == 200).then_some(())
    });

    // Played from A too: A forwards the input's playback to B, which holds the live edge.
    for query in ["", "?protocol=llhls"] {
        let on_a = format!("{}/{uid}/manifest/video.m3u8{query}", a.base_url());
        let streams = ffprobe_streams(&on_a).unwrap_or_else(|e| panic!("{on_a}: {e}"));
        assert_eq!(streams, ["aac", "h264"], "{on_a}");
    }

    // A second publisher of the key on A is refused while B holds the input.
    let (status, stderr) =
        Publisher::start(&a.rtmp_url(&key), Encoding::good(5)).wait(Duration::from_secs(30));
    assert!(!status.success(), "A accepted a key live on B: {stderr}");
    assert_eq!(
        b.api().input(&uid)["status"]["current"]["state"],
        "connected",
        "B's publisher is undisturbed"
    );

    // B dies; the encoder reconnects to A, which takes the input once B's lease lapses.
    let b_entered = a.api().input(&uid)["status"]["current"]["statusEnteredAt"].clone();
    let died = Instant::now();
    drop(b);
    on_b.kill();
    let taken_over = wait_for("A to take the input over", Duration::from_secs(60), || {
        let publisher = Publisher::start(&a.rtmp_url(&key), Encoding::good(20));
        let connected = connected_anew(&a, &uid, &b_entered, Duration::from_secs(3));
        connected.then_some(publisher)
    });
    let after = died.elapsed();
    assert!(
        after < Duration::from_secs(20),
        "the dead node's lease lapsed after {after:?}"
    );

    // B's recording (the older video) is on B's disk: A says where it is rather than
    // pretending it does not exist.
    // A's row is made with its first segment, a moment after its publisher connected.
    let videos = wait_for("B's recording and A's", Duration::from_secs(30), || {
        let videos = a.api().videos_of(&uid);
        (videos.len() == 2).then_some(videos)
    });
    drop(taken_over);
    let b_video = videos[1]["uid"].as_str().unwrap();
    let manifest = format!("{}/{b_video}/manifest/video.m3u8", a.base_url());
    let body = wait_for("A to see B gone", Duration::from_secs(20), || {
        let (status, _, body) = http_get(&manifest);
        (status == 503).then(|| String::from_utf8_lossy(&body).into_owned())
    });
    assert!(body.contains("node node-b"), "{body}");
}

/// Whether the input's status says connected within `timeout`, entered later than `before`.
fn connected_anew(node: &Controld, uid: &str, before: &Value, timeout: Duration) -> bool {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        let current = node.api().input(uid)["status"]["current"].clone();
        if current["state"] == "connected" && current["statusEnteredAt"] != *before {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}
