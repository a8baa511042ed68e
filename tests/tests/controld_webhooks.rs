//! Webhooks end to end: a receiver in the test (plain std HTTP server on an OS-chosen port)
//! gets controld's signed events while ffmpeg publishes over RTMP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cfstream_e2e::{Api, Controld, Encoding, Publisher, http_get, wait_for};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const EVENT_TIMEOUT: Duration = Duration::from_secs(45);

/// One request the receiver got: its `Webhook-Signature` header and raw body.
struct Delivery {
    signature: String,
    body: String,
}

/// An HTTP server answering 200 to every request and handing each over on a channel.
struct Receiver {
    addr: SocketAddr,
    deliveries: mpsc::Receiver<Delivery>,
}

impl Receiver {
    fn start() -> Receiver {
        Self::bind(TcpListener::bind("127.0.0.1:0").expect("bind receiver"))
    }

    fn bind(listener: TcpListener) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let (tx, deliveries) = mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let tx = tx.clone();
                std::thread::spawn(move || serve(conn, tx));
            }
        });
        Receiver { addr, deliveries }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    /// The next event (live input events by `data.event_type`, videos as `video.ready`) whose
    /// kind is `kind`, after checking every signature on the way with `secret`. Events of
    /// other kinds are skipped.
    fn expect(&self, kind: &str, secret: &str) -> Value {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let d = self
                .deliveries
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {kind} webhook within {EVENT_TIMEOUT:?}"));
            verify_signature(&d, secret);
            let body: Value = serde_json::from_str(&d.body).expect("webhook body is JSON");
            let got = body["data"]["event_type"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| "video.ready".to_owned());
            if got == kind {
                return body;
            }
        }
    }
}

fn serve(conn: TcpStream, tx: mpsc::Sender<Delivery>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let (mut length, mut signature) = (0usize, String::new());
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "webhook-signature" => signature = value.trim().to_owned(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = String::from_utf8(body).expect("UTF-8 body");
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        if tx.send(Delivery { signature, body }).is_err() {
            return;
        }
    }
}

/// `time=<unix>,sig1=<hex HMAC-SHA256(secret, "<time>.<body>")>`, recent.
fn verify_signature(d: &Delivery, secret: &str) {
    let mut time = None;
    let mut sig = None;
    for part in d.signature.split(',') {
        match part.split_once('=') {
            Some(("time", t)) => time = Some(t.to_owned()),
            Some(("sig1", s)) => sig = Some(s.to_owned()),
            _ => {}
        }
    }
    let (time, sig) = (
        time.expect("signature has time="),
        sig.expect("signature has sig1="),
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{time}.{}", d.body).as_bytes());
    mac.verify_slice(&hex::decode(&sig).expect("hex sig1"))
        .unwrap_or_else(|_| panic!("bad signature {:?} for body {}", d.signature, d.body));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let time: i64 = time.parse().expect("numeric time");
    assert!(
        (now - time).abs() < 300,
        "signature time {time} vs now {now}"
    );
}

fn subscribe(api: &Api, url: &str) -> String {
    let sub = api.ok("PUT", "/webhook", Some(json!({"notificationUrl": url})));
    assert_eq!(sub["notificationUrl"], url);
    sub["secret"].as_str().expect("secret").to_owned()
}

fn create_input(api: &Api) -> (String, String) {
    let input = api.create_input(json!({
        "meta": {"name": "hooked"},
        "recording": {"mode": "automatic", "timeoutSeconds": 1}
    }));
    (
        input["uid"].as_str().unwrap().to_owned(),
        input["rtmp"]["streamKey"].as_str().unwrap().to_owned(),
    )
}

fn assert_live_event(body: &Value, uid: &str, kind: &str) {
    assert_eq!(body["data"]["notification_name"], "Stream Live Input");
    assert_eq!(body["data"]["input_id"], uid);
    assert_eq!(body["data"]["event_type"], kind);
    assert_eq!(body["name"], "hooked");
    assert!(body["data"]["updated_at"].as_str().unwrap().ends_with('Z'));
    assert!(body["ts"].as_i64().unwrap() > 1_600_000_000);
    assert!(body["text"].as_str().unwrap().contains(uid));
}

#[test]
fn webhook_settings_are_validated_and_kept() {
    let controld = Controld::start();
    let api = controld.api();
    let (status, json) = api.call("GET", "/webhook", None);
    assert_eq!(status, 404, "{json}");
    assert_eq!(json["errors"][0]["code"], 10604);

    for bad in [
        json!({}),
        json!({"notificationUrl": "ftp://example.com/x"}),
        json!({"notificationUrl": "not a url"}),
        json!({"notificationUrl": 7}),
    ] {
        let (status, json) = api.call("PUT", "/webhook", Some(bad.clone()));
        assert_eq!(status, 400, "{bad} → {json}");
        let message = json["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("notificationUrl"), "{message}");
    }

    let secret = subscribe(&api, "https://hooks.example.com/a");
    assert_eq!(secret.len(), 32);
    let got = api.ok("GET", "/webhook", None);
    assert_eq!(got["secret"], secret.as_str());
    assert!(got["modified"].as_str().unwrap().ends_with('Z'));
    // A new URL keeps the secret, so receivers keep verifying.
    assert_eq!(subscribe(&api, "http://127.0.0.1:9/b"), secret);

    api.ok("DELETE", "/webhook", None);
    assert_eq!(api.call("GET", "/webhook", None).0, 404);
    assert_eq!(api.call("DELETE", "/webhook", None).0, 404);
}

#[test]
fn broadcast_sends_signed_connected_disconnected_and_video_ready() {
    let controld = Controld::start();
    let api = controld.api();
    let receiver = Receiver::start();
    let secret = subscribe(&api, &receiver.url());
    let (uid, key) = create_input(&api);

    let publisher = Publisher::start(&controld.rtmp_url(&key), Encoding::good(6));
    let connected = receiver.expect("live_input.connected", &secret);
    assert_live_event(&connected, &uid, "live_input.connected");
    assert!(connected["data"].get("live_input_errored").is_none());

    let (status, stderr) = publisher.wait(Duration::from_secs(60));
    assert!(status.success(), "ffmpeg: {stderr}");
    let disconnected = receiver.expect("live_input.disconnected", &secret);
    assert_live_event(&disconnected, &uid, "live_input.disconnected");

    let video = receiver.expect("video.ready", &secret);
    assert_eq!(video["liveInput"], uid.as_str());
    assert_eq!(video["status"]["state"], "ready");
    assert!(video["duration"].as_f64().unwrap() > 3.0, "{video}");
    let hls = video["playback"]["hls"].as_str().unwrap();
    assert!(hls.starts_with(&controld.base_url()), "{hls}");
    assert_eq!(http_get(hls).0, 200);
}

#[test]
fn keyframe_interval_of_12_s_sends_errored_with_the_code() {
    let controld = Controld::start();
    let api = controld.api();
    let receiver = Receiver::start();
    let secret = subscribe(&api, &receiver.url());
    let (uid, key) = create_input(&api);

    let _publisher = Publisher::start(
        &controld.rtmp_url(&key),
        Encoding {
            keyint: 360,
            seconds: 16,
        },
    );
    receiver.expect("live_input.connected", &secret);
    let errored = receiver.expect("live_input.errored", &secret);
    assert_live_event(&errored, &uid, "live_input.errored");
    let error = &errored["data"]["live_input_errored"]["error"];
    assert_eq!(error["code"], "ERR_GOP_OUT_OF_RANGE", "{errored}");
    assert!(!error["message"].as_str().unwrap().is_empty());
    // The broadcast is over: the connected event is closed too.
    receiver.expect("live_input.disconnected", &secret);
}

#[test]
fn events_wait_in_the_outbox_while_the_receiver_is_down_across_a_restart() {
    let controld = Controld::start_with_args(&["--webhook-retry-base-ms", "200"]);
    let api = controld.api();
    let metrics_url = format!("{}/metrics", controld.base_url());
    // A port that refuses connections now and is listened on later.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let secret = subscribe(&api, &format!("http://{addr}/hooks"));
    let (uid, key) = create_input(&api);

    let publisher = Publisher::start(&controld.rtmp_url(&key), Encoding::good(4));
    let (status, stderr) = publisher.wait(Duration::from_secs(60));
    assert!(status.success(), "ffmpeg: {stderr}");
    // Both events exist and at least two attempts failed before the receiver comes up.
    wait_for("failed webhook attempts", EVENT_TIMEOUT, || {
        (webhook_counter(&metrics_url, "failures")? >= 2).then_some(())
    });
    // The broadcast is over (its events are queued); the outbox survives a crash.
    api.await_status(&uid, "disconnected", |c| c["state"] == "disconnected");
    let controld = controld.kill9_and_restart();
    let receiver = Receiver::bind(TcpListener::bind(addr).expect("rebinding the receiver port"));
    let connected = receiver.expect("live_input.connected", &secret);
    assert_live_event(&connected, &uid, "live_input.connected");
    let disconnected = receiver.expect("live_input.disconnected", &secret);
    assert_live_event(&disconnected, &uid, "live_input.disconnected");
    // Delivered by the new process, from the outbox the old one left (counted once the
    // receiver's answer is in, so after the receiver saw it).
    let metrics_url = format!("{}/metrics", controld.base_url());
    wait_for("two deliveries counted", EVENT_TIMEOUT, || {
        (webhook_counter(&metrics_url, "deliveries")? >= 2).then_some(())
    });
}

/// `cfstream_webhook_<name>_total` from `/metrics`.
fn webhook_counter(metrics_url: &str, name: &str) -> Option<u64> {
    let (_, _, body) = http_get(metrics_url);
    let prefix = format!("cfstream_webhook_{name}_total ");
    String::from_utf8(body)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
}
