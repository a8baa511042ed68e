//! Simulcast outputs end to end: ffmpeg publishes to one live input of a real controld, whose
//! output relays it over RTMP (loopback) to a second input of the same controld.

use std::net::TcpListener;
use std::time::Duration;

use cfstream_e2e::{Api, Controld, Encoding, Publisher, ffprobe_streams, http_get, wait_for};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(45);

fn create_input(api: &Api, mode: &str) -> (String, String) {
    let input = api.create_input(json!({"recording": {"mode": mode, "timeoutSeconds": 2}}));
    (
        input["uid"].as_str().unwrap().to_owned(),
        input["rtmp"]["streamKey"].as_str().unwrap().to_owned(),
    )
}

fn add_output(api: &Api, input: &str, url: &str, key: &str) -> Value {
    api.ok(
        "POST",
        &format!("/live_inputs/{input}/outputs"),
        Some(json!({"url": url, "streamKey": key})),
    )
}

/// A counter or gauge sample from `/metrics` (`name` with its labels, as written).
fn metric(controld: &Controld, sample: &str) -> Option<u64> {
    let (status, _, body) = http_get(&format!("{}/metrics", controld.base_url()));
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap().lines().find_map(|l| {
        l.strip_prefix(sample)
            .and_then(|v| v.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

#[test]
fn outputs_are_validated_listed_updated_and_deleted() {
    let controld = Controld::start();
    let api = controld.api();
    let (uid, _) = create_input(&api, "automatic");
    let path = format!("/live_inputs/{uid}/outputs");

    for (body, field) in [
        (json!({"streamKey": "k"}), "url"),
        (
            json!({"url": "http://example.com/live", "streamKey": "k"}),
            "url",
        ),
        (json!({"url": "rtmp://", "streamKey": "k"}), "url"),
        (json!({"url": "rtmp://example.com/live"}), "streamKey"),
        (
            json!({"url": "rtmp://example.com/live", "streamKey": "a/b"}),
            "streamKey",
        ),
        (
            json!({"url": "rtmp://example.com/live", "streamKey": "k", "enabled": "yes"}),
            "enabled",
        ),
    ] {
        let (status, json) = api.call("POST", &path, Some(body.clone()));
        assert_eq!(status, 400, "{body} → {json}");
        let message = json["errors"][0]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{body}: {message}");
    }

    let created = add_output(&api, &uid, "rtmps://live.example.com:443/live", "secret");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["url"], "rtmps://live.example.com:443/live");
    assert_eq!(created["streamKey"], "secret");
    let out_uid = created["uid"].as_str().unwrap().to_owned();
    assert_eq!(api.ok("GET", &path, None), json!([created]));

    let one = format!("{path}/{out_uid}");
    let (status, json) = api.call("PUT", &one, Some(json!({})));
    assert_eq!(status, 400, "{json}");
    let updated = api.ok("PUT", &one, Some(json!({"enabled": false})));
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["uid"], out_uid.as_str());

    // At most 50 per input.
    for n in 1..50 {
        add_output(&api, &uid, "rtmp://example.com/live", &format!("k{n}"));
    }
    let (status, json) = api.call(
        "POST",
        &path,
        Some(json!({"url": "rtmp://example.com/live", "streamKey": "k51"})),
    );
    assert_eq!(status, 409, "{json}");

    api.ok("DELETE", &one, None);
    let (status, json) = api.call("DELETE", &one, None);
    assert_eq!(
        (status, json["errors"][0]["code"].clone()),
        (404, json!(10605))
    );
    assert_eq!(api.ok("GET", &path, None).as_array().unwrap().len(), 49);
    let (status, _) = api.call(
        "GET",
        "/live_inputs/00000000000000000000000000000000/outputs",
        None,
    );
    assert_eq!(status, 404);
}

#[test]
fn an_output_relays_the_stream_to_another_input() {
    let controld = Controld::start();
    let api = controld.api();
    // The relaying input is `mode: off`: relayed, not recorded.
    let (source, source_key) = create_input(&api, "off");
    let (target, target_key) = create_input(&api, "automatic");
    add_output(
        &api,
        &source,
        &format!("rtmp://{}/live", controld.rtmp),
        &target_key,
    );

    let _publisher = Publisher::start(&controld.rtmp_url(&source_key), Encoding::good(20));
    api.await_status(&source, "source connected", |c| c["state"] == "connected");
    api.await_status(&target, "target connected through the output", |c| {
        c["state"] == "connected"
    });
    let manifest = format!("{}/{target}/manifest/video.m3u8", controld.base_url());
    wait_for("the relayed stream's playlist", TIMEOUT, || {
        (http_get(&manifest).0 == 200).then_some(())
    });
    let streams = ffprobe_streams(&manifest).expect("ffprobe plays the relayed stream");
    assert!(streams.contains(&"h264".to_owned()), "{streams:?}");
    assert!(streams.contains(&"aac".to_owned()), "{streams:?}");
    assert_eq!(
        metric(&controld, "cfstream_outputs{state=\"relaying\"}"),
        Some(1)
    );
}

#[test]
fn failing_destinations_disturb_neither_the_input_nor_other_outputs() {
    let controld = Controld::start();
    let api = controld.api();
    let (uid, key) = create_input(&api, "automatic");
    let (target, target_key) = create_input(&api, "automatic");
    // Refuses connections.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    add_output(&api, &uid, &format!("rtmp://{dead}/live"), "nobody");
    // Accepts connections (in the kernel's backlog) and never answers: a stalled destination.
    let black_hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let stalled = black_hole.local_addr().unwrap();
    add_output(&api, &uid, &format!("rtmp://{stalled}/live"), "stuck");
    add_output(
        &api,
        &uid,
        &format!("rtmp://{}/live", controld.rtmp),
        &target_key,
    );

    let _publisher = Publisher::start(&controld.rtmp_url(&key), Encoding::good(40));
    api.await_status(&uid, "connected", |c| c["state"] == "connected");
    api.await_status(&target, "the good output's destination connected", |c| {
        c["state"] == "connected"
    });
    // The dead output fails, is retried and fails again while the input goes on.
    wait_for("two output failures", TIMEOUT, || {
        metric(&controld, "cfstream_output_failures_total").filter(|n| *n >= 2)
    });
    // Past rtmp2sink's 5 s connect timeout for the stalled one, both inputs still write.
    let segments = metric(&controld, "cfstream_segments_written_total").unwrap();
    wait_for("more segments of both inputs", TIMEOUT, || {
        metric(&controld, "cfstream_segments_written_total").filter(|n| *n >= segments + 4)
    });
    for input in [&uid, &target] {
        assert_eq!(api.input(input)["status"]["current"]["state"], "connected");
        let manifest = format!("{}/{input}/manifest/video.m3u8", controld.base_url());
        assert_eq!(http_get(&manifest).0, 200);
    }
    drop(black_hole);
}

/// How soon an output change made while live must show at the destination.
const APPLIED_WITHIN: Duration = Duration::from_secs(15);

fn state_of(api: &Api, uid: &str) -> String {
    api.input(uid)["status"]["current"]["state"]
        .as_str()
        .unwrap_or("none")
        .to_owned()
}

#[test]
fn outputs_changed_while_live_take_effect_within_seconds() {
    let controld = Controld::start();
    let api = controld.api();
    let (source, source_key) = create_input(&api, "automatic");
    let (target, target_key) = create_input(&api, "automatic");
    let source_manifest = format!("{}/{source}/manifest/video.m3u8", controld.base_url());
    let _publisher = Publisher::start(&controld.rtmp_url(&source_key), Encoding::good(60));
    wait_for("the source's first segment", TIMEOUT, || {
        (http_get(&source_manifest).0 == 200).then_some(())
    });

    // Added while live: the late branch starts with the stream headers from the caps.
    let output = add_output(
        &api,
        &source,
        &format!("rtmp://{}/live", controld.rtmp),
        &target_key,
    );
    let one = format!(
        "/live_inputs/{source}/outputs/{}",
        output["uid"].as_str().unwrap()
    );
    wait_for("the target connected", APPLIED_WITHIN, || {
        (state_of(&api, &target) == "connected").then_some(())
    });
    let target_manifest = format!("{}/{target}/manifest/video.m3u8", controld.base_url());
    wait_for("the relayed stream's playlist", TIMEOUT, || {
        (http_get(&target_manifest).0 == 200).then_some(())
    });
    let streams = ffprobe_streams(&target_manifest).expect("ffprobe plays the late relay");
    assert!(streams.contains(&"h264".to_owned()), "{streams:?}");
    assert!(streams.contains(&"aac".to_owned()), "{streams:?}");

    api.ok("PUT", &one, Some(json!({"enabled": false})));
    wait_for("the relay stopped", APPLIED_WITHIN, || {
        (state_of(&api, &target) != "connected").then_some(())
    });
    api.ok("PUT", &one, Some(json!({"enabled": true})));
    wait_for("the relay back", APPLIED_WITHIN, || {
        matches!(
            state_of(&api, &target).as_str(),
            "connected" | "reconnected"
        )
        .then_some(())
    });
    api.ok("DELETE", &one, None);
    wait_for("the relay gone", APPLIED_WITHIN, || {
        (state_of(&api, &target) != "connected" && state_of(&api, &target) != "reconnected")
            .then_some(())
    });
    assert_eq!(state_of(&api, &source), "connected");
    assert_eq!(
        metric(&controld, "cfstream_outputs{state=\"relaying\"}"),
        Some(0)
    );
}
