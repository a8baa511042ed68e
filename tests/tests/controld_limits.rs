//! Connection caps on the real controld: a crowd of idle connections from one address beyond
//! `--max-unauthenticated-per-address`, or beyond `--max-connections` for the process, is
//! closed at accept and counted in `/metrics`, while a live publisher streams on undisturbed
//! and its recording continues.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use cfstream_e2e::{Api, Controld, Encoding, Publisher, decode_all, http_get, wait_for};
use serde_json::{Value, json};

const IDLE_CONNECTIONS: usize = 24;

fn create(api: &Api) -> (String, String) {
    let input = api.create_input(json!({
        "recording": {"mode": "automatic", "timeoutSeconds": 1}
    }));
    (
        input["uid"].as_str().unwrap().to_owned(),
        input["rtmp"]["streamKey"].as_str().unwrap().to_owned(),
    )
}

/// A sample of `/metrics`, e.g. `cfstream_ingest_connections` or
/// `cfstream_ingest_connections_refused_total{limit="connections"}`.
fn metric(controld: &Controld, sample: &str) -> u64 {
    let (status, _, body) = http_get(&format!("{}/metrics", controld.base_url()));
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in {text}"))
}

/// Connections that send nothing, as a crowd of strangers would hold them.
fn idle_connections(addr: SocketAddr) -> Vec<TcpStream> {
    (0..IDLE_CONNECTIONS)
        .map(|_| {
            let stream = TcpStream::connect(addr).expect("the kernel completes the connect");
            stream.set_nonblocking(true).unwrap();
            stream
        })
        .collect()
}

/// Whether the server has closed the connection (it sends nothing before the client does).
fn closed_by_server(stream: &TcpStream) -> bool {
    match stream.peek(&mut [0]) {
        Ok(0) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Ok(_) | Err(_) => true,
    }
}

/// Waits until exactly `refused` of `idle` are closed by the server; the others stay open.
fn await_refused(idle: &[TcpStream], refused: usize) {
    let closed = || idle.iter().filter(|s| closed_by_server(s)).count();
    wait_for(
        "the connections over the cap to be closed",
        Duration::from_secs(20),
        || (closed() >= refused).then_some(()),
    );
    assert_eq!(closed(), refused, "connections within the cap stay open");
}

/// A live publisher (16 s), connected and recording.
fn live_publisher(controld: &Controld, api: &Api) -> (String, Publisher) {
    let (uid, key) = create(api);
    let publisher = Publisher::start(&controld.rtmp_url(&key), Encoding::good(16));
    let manifest = format!("{}/{uid}/manifest/video.m3u8", controld.base_url());
    wait_for(
        "the live input's first segment",
        Duration::from_secs(30),
        || (http_get(&manifest).0 == 200).then_some(()),
    );
    (uid, publisher)
}

/// The publisher streamed to its end without a break: one connect, a full recording that
/// decodes.
fn streamed_through(api: &Api, uid: &str, publisher: Publisher) {
    let (status, stderr) = publisher.wait(Duration::from_secs(60));
    assert!(
        status.success(),
        "the live publisher was disturbed: {stderr}"
    );
    let video = wait_for("the recording to be ready", Duration::from_secs(45), || {
        let videos = api.videos_of(uid);
        (videos.len() == 1 && videos[0]["status"]["state"] == "ready").then(|| videos[0].clone())
    });
    let duration = video["duration"].as_f64().unwrap();
    assert!(duration >= 15.0, "recording of {duration} s");
    let history: Vec<Value> = api.input(uid)["status"]["history"]
        .as_array()
        .unwrap()
        .clone();
    let connects = history.iter().filter(|h| h["state"] == "connected").count();
    assert_eq!(connects, 1, "{history:?}");
    decode_all(video["playback"]["hls"].as_str().unwrap()).expect("the recording decodes");
}

#[test]
fn idle_connections_beyond_the_per_address_cap_are_refused() {
    let controld = Controld::start_with_args(&["--max-unauthenticated-per-address", "4"]);
    let api = controld.api();
    let (uid, publisher) = live_publisher(&controld, &api);
    let idle = idle_connections(controld.rtmp);
    await_refused(&idle, IDLE_CONNECTIONS - 4);
    let refused =
        r#"cfstream_ingest_connections_refused_total{limit="unauthenticated_per_address"}"#;
    assert_eq!(metric(&controld, refused) as usize, IDLE_CONNECTIONS - 4);
    assert_eq!(metric(&controld, "cfstream_ingest_connections"), 1 + 4);
    assert_eq!(api.input(&uid)["status"]["current"]["state"], "connected");

    // Once the strangers leave, the address may connect again: a second input goes live.
    drop(idle);
    wait_for(
        "the idle connections to be gone",
        Duration::from_secs(20),
        || (metric(&controld, "cfstream_ingest_connections") == 1).then_some(()),
    );
    let (second_uid, second_key) = create(&api);
    let second = Publisher::start(&controld.rtmp_url(&second_key), Encoding::good(4));
    api.await_status(&second_uid, "the second input connected", |current| {
        current["state"] == "connected"
    });
    drop(second);
    streamed_through(&api, &uid, publisher);
}

#[test]
fn connections_beyond_the_process_cap_are_refused() {
    let controld = Controld::start_with_args(&[
        "--max-connections",
        "3",
        "--max-unauthenticated-per-address",
        "0",
    ]);
    let api = controld.api();
    let (uid, publisher) = live_publisher(&controld, &api);
    // The live publisher and two idle connections fill the cap.
    let idle = idle_connections(controld.rtmp);
    await_refused(&idle, IDLE_CONNECTIONS - 2);
    let refused = r#"cfstream_ingest_connections_refused_total{limit="connections"}"#;
    assert_eq!(metric(&controld, refused) as usize, IDLE_CONNECTIONS - 2);
    assert_eq!(metric(&controld, "cfstream_ingest_connections"), 3);
    streamed_through(&api, &uid, publisher);
}
