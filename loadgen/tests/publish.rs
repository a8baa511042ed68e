//! Runs the built load generator against an in-process RTMP(S) listener of the plugin and checks
//! that every connection's frames arrive, looping with rising timestamps.

use std::time::Duration;

use bytes::BytesMut;
use cfstream_proto::flv;
use gstcfstream::rtmp::{self, IngestItem, ListenerConfig, StreamOptions, TlsFiles};
use tokio::process::Command;

const OPTIONS: StreamOptions = StreamOptions {
    enforce_codecs: true,
    read_timeout: Duration::from_secs(10),
    read_on_consumer_thread: false,
    read_interval: rtmp::DEFAULT_READ_INTERVAL,
};
const PATIENCE: Duration = Duration::from_secs(30);

/// 400 ms of 25 fps H.264 (a keyframe, then frames) with AAC, preceded by both configs.
fn small_flv() -> BytesMut {
    let mut out = BytesMut::from(&flv::FILE_HEADER[..]);
    flv::write_tag(&mut out, flv::TAG_VIDEO, 0, &[0x17, 0, 0, 0, 0, 1, 0x64]);
    flv::write_tag(&mut out, flv::TAG_AUDIO, 0, &[0xaf, 0, 0x11, 0x90]);
    for frame in 0..10u32 {
        let first = if frame == 0 { 0x17 } else { 0x27 };
        flv::write_tag(
            &mut out,
            flv::TAG_VIDEO,
            frame * 40,
            &[first, 1, 0, 0, 0, 7],
        );
        flv::write_tag(&mut out, flv::TAG_AUDIO, frame * 40, &[0xaf, 1, 0x21]);
    }
    out
}

/// [`small_flv`] in a temp dir (kept while the first value lives) and a plain RTMP listener.
fn small_flv_and_listener() -> (tempfile::TempDir, std::path::PathBuf, rtmp::ListenerHandle) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("small.flv");
    std::fs::write(&file, small_flv()).unwrap();
    let listener = rtmp::listener(&ListenerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        tls: None,
    })
    .unwrap();
    (dir, file, listener)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_of_every_connection_arrive_and_keep_rising_across_loops() {
    let (_dir, file, listener) = small_flv_and_listener();
    let mut registrations: Vec<_> = ["k1", "k2"]
        .iter()
        .map(|key| listener.register("live", key, OPTIONS).unwrap())
        .collect();

    let url = format!("rtmp://{}/live/k{{n}}", listener.local_addr());
    let loadgen = Command::new(env!("CARGO_BIN_EXE_cfstream-loadgen"))
        .args(["--file", file.to_str().unwrap(), "--url", &url])
        .args(["--connections", "2", "--ramp", "20", "--duration", "1.5"])
        .output();

    // Take in what each publisher sends while the load generator runs.
    let collect = async {
        let mut video_timestamps = vec![vec![]; registrations.len()];
        for (registration, timestamps) in registrations.iter_mut().zip(&mut video_timestamps) {
            while let Some(item) = registration.recv().await {
                match item {
                    IngestItem::Media(media) => timestamps.extend(
                        media
                            .messages
                            .iter()
                            .filter(|m| flv::is_video_frame(9, &m.body))
                            .map(|m| m.timestamp),
                    ),
                    IngestItem::PublisherDisconnected { .. } => break,
                    _ => {}
                }
            }
        }
        video_timestamps
    };
    let (output, video_timestamps) =
        tokio::time::timeout(PATIENCE, async { tokio::join!(loadgen, collect) })
            .await
            .expect("load generator and listener finish");
    let output = output.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("connections=2 "), "{stdout}");
    assert!(stdout.contains("errors=0 "), "{stdout}");
    for timestamps in video_timestamps {
        // 1.5 s of a 400 ms file: about 37 frames over four passes, timestamps never falling.
        assert!(timestamps.len() >= 30, "{timestamps:?}");
        assert!(timestamps.windows(2).all(|w| w[0] < w[1]), "{timestamps:?}");
        assert!(*timestamps.last().unwrap() >= 1200, "{timestamps:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_over_rtmps_with_insecure_and_refuses_an_unknown_certificate_without() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("small.flv");
    std::fs::write(&file, small_flv()).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let certificate = dir.path().join("cert.pem");
    let private_key = dir.path().join("key.pem");
    std::fs::write(&certificate, certified.cert.pem()).unwrap();
    std::fs::write(&private_key, certified.key_pair.serialize_pem()).unwrap();
    let listener = rtmp::listener(&ListenerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        tls: Some(TlsFiles {
            certificate,
            private_key,
        }),
    })
    .unwrap();
    let mut registration = listener.register("live", "k", OPTIONS).unwrap();
    let url = format!("rtmps://{}/live/k", listener.local_addr());
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cfstream-loadgen"))
            .args(["--file", file.to_str().unwrap(), "--url", &url])
            .args(["--duration", "1", "--retry-delay", "5"])
            .args(extra)
            .output()
    };

    // The self-signed certificate chains to no webpki root.
    let refused = tokio::time::timeout(PATIENCE, run(&[]))
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success(), "{stdout}");
    assert!(stdout.contains("certificate"), "{stdout}");

    let collect = async {
        let mut frames = 0;
        while let Some(item) = registration.recv().await {
            match item {
                IngestItem::Media(media) => {
                    frames += media
                        .messages
                        .iter()
                        .filter(|m| flv::is_video_frame(9, &m.body))
                        .count()
                }
                IngestItem::PublisherDisconnected { .. } => break,
                _ => {}
            }
        }
        frames
    };
    let (output, frames) = tokio::time::timeout(PATIENCE, async {
        tokio::join!(run(&["--insecure"]), collect)
    })
    .await
    .expect("load generator and listener finish");
    let output = output.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("errors=0 "), "{stdout}");
    // 1 s of 25 fps video.
    assert!(frames >= 20, "{frames} frames: {stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_ends_publishes_early_and_publishes_again() {
    let (_dir, file, listener) = small_flv_and_listener();
    let mut registration = listener.register("live", "churn", OPTIONS).unwrap();

    // Publishes of 0.15-0.45 s, all ended abruptly, 0-0.4 s apart, for 3 s.
    let url = format!("rtmp://{}/live/churn", listener.local_addr());
    let mut loadgen = Box::pin(
        Command::new(env!("CARGO_BIN_EXE_cfstream-loadgen"))
            .args(["--file", file.to_str().unwrap(), "--url", &url])
            .args([
                "--duration",
                "3",
                "--churn",
                "0.3",
                "--abort-percent",
                "100",
            ])
            .args(["--retry-delay", "0.2"])
            .output(),
    );
    let watch = async {
        let (mut connected, mut disconnected, mut output) = (0, 0, None);
        loop {
            tokio::select! {
                item = registration.recv() => match item {
                    Some(IngestItem::PublisherConnected { .. }) => connected += 1,
                    Some(IngestItem::PublisherDisconnected { .. }) => disconnected += 1,
                    Some(_) => {}
                    None => break,
                },
                done = &mut loadgen, if output.is_none() => output = Some(done.unwrap()),
            }
            if output.is_some() && connected == disconnected {
                break;
            }
        }
        (connected, output.unwrap())
    };
    let (connected, output) = tokio::time::timeout(PATIENCE, watch)
        .await
        .expect("load generator and listener finish");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let total = stdout.lines().find(|l| l.starts_with("total: ")).unwrap();
    let field = |name: &str| -> u64 {
        let prefix = format!("{name}=");
        let value = total
            .split(' ')
            .find_map(|f| f.strip_prefix(prefix.as_str()));
        value.unwrap().parse().unwrap()
    };
    // A reconnect that comes before the server noticed the cut is refused as a second
    // publisher of the key: an error, then the connection tries again. The last attempt either
    // ran until the end (`full` = 1) or was cut or refused too, with no time left for another.
    let (churned, errors) = (field("churned"), field("errors"));
    assert!(churned >= 3, "{total}");
    assert_eq!(field("aborted"), churned, "{total}");
    let full = (field("reconnects") + 1).checked_sub(churned + errors);
    assert!(matches!(full, Some(0 | 1)), "{total}");
    assert_eq!(connected, churned + full.unwrap(), "{stdout}");
}
