//! The media path as a GStreamer user builds it with gst-launch:
//! `cfrtmpsrc ! flvdemux ! h264parse/aacparse ! gopvalidate ! cfhlssink`, fed by real ffmpeg
//! publishers. A publisher that leaves and comes back within `idle-timeout` continues the same
//! recording behind exactly one discontinuity (a new run in its `index.log`); staying away ends it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cfstream_e2e::playback::IndexLog;
use cfstream_e2e::{Encoding, Publisher, decode_all};
use gst::prelude::*;
use gstcfstream::contract::cfhlssink::RecordingFinished;
use gstcfstream::contract::cfrtmpsrc::{PublisherConnected, PublisherDisconnected};
use gstcfstream::contract::gopvalidate::Violation;

const PUBLISH_SECONDS: u32 = 9;

fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstcfstream::plugin_register_static().expect("register cfstream plugin");
    });
}

/// Every message popped from the bus so far, so that later assertions can look back.
struct BusLog {
    bus: gst::Bus,
    seen: Vec<gst::Message>,
}

impl BusLog {
    /// Pops messages until one satisfies `pred`; panics on an ERROR message or after `timeout`.
    fn await_message(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&gst::Message) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out after {timeout:?} waiting for {what}"
            );
            let Some(msg) = self
                .bus
                .timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64))
            else {
                continue;
            };
            if let gst::MessageView::Error(err) = msg.view() {
                panic!(
                    "pipeline error while waiting for {what}: {} ({:?})",
                    err.error(),
                    err.debug()
                );
            }
            let found = pred(&msg);
            self.seen.push(msg);
            if found {
                return;
            }
        }
    }

    fn element_messages(&self, name: &str) -> Vec<gst::Structure> {
        self.seen
            .iter()
            .filter_map(|m| match m.view() {
                gst::MessageView::Element(e) => e
                    .structure()
                    .filter(|s| s.name() == name)
                    .map(|s| s.to_owned()),
                _ => None,
            })
            .collect()
    }
}

fn is_element_message(msg: &gst::Message, name: &str) -> bool {
    matches!(msg.view(), gst::MessageView::Element(e) if e.structure().is_some_and(|s| s.name() == name))
}

fn only_recording_dir(location: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(location)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "expected one recording directory, found {dirs:?}"
    );
    dirs.into_iter().next().unwrap()
}

#[test]
fn reconnect_within_idle_timeout_continues_the_recording_behind_one_discontinuity() {
    init();
    let media = tempfile::tempdir().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "cfrtmpsrc name=src location=rtmp://127.0.0.1:0/live stream-key=studio idle-timeout=3 \
         ! flvdemux name=d \
         d.video ! h264parse ! gopvalidate ! hls.video \
         d.audio ! aacparse ! gopvalidate ! hls.audio \
         cfhlssink name=hls location={}",
        media.path().display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let mut log = BusLog {
        bus: pipeline.bus().unwrap(),
        seen: Vec::new(),
    };
    pipeline.set_state(gst::State::Playing).unwrap();
    let port = pipeline
        .by_name("src")
        .unwrap()
        .property::<u32>("bound-port");
    assert_ne!(port, 0, "cfrtmpsrc did not report the port it listens on");
    let url = format!("rtmp://127.0.0.1:{port}/live/studio");
    let encoding = Encoding {
        keyint: 120,
        seconds: PUBLISH_SECONDS,
    };

    for round in 0..2 {
        let (status, stderr) = Publisher::start(&url, encoding).wait(Duration::from_secs(60));
        assert!(status.success(), "publisher {round} failed: {stderr}");
        log.await_message("publisher-disconnected", Duration::from_secs(30), |m| {
            is_element_message(m, PublisherDisconnected::NAME)
        });
    }
    // Nobody comes back within idle-timeout: cfrtmpsrc ends the stream, cfhlssink the recording.
    log.await_message("EOS", Duration::from_secs(30), |m| {
        matches!(m.view(), gst::MessageView::Eos(_))
    });
    pipeline.set_state(gst::State::Null).unwrap();

    let connected: Vec<_> = log
        .element_messages(PublisherConnected::NAME)
        .iter()
        .map(|s| PublisherConnected::from_structure(s))
        .collect();
    assert_eq!(connected.len(), 2, "{connected:?}");
    assert!(!connected[0].reconnect);
    assert!(connected[1].reconnect);
    let violations = log.element_messages(Violation::NAME);
    assert!(
        violations.is_empty(),
        "a 4 s closed-GOP stream was flagged: {violations:?}"
    );
    let finished = log.element_messages(RecordingFinished::NAME);
    assert_eq!(finished.len(), 1, "{finished:?}");

    let recording = only_recording_dir(media.path());
    let index = IndexLog::read(&recording);
    assert!(
        index.ended,
        "the finished recording's index.log lacks its end record"
    );
    let video: Vec<_> = index.segments.iter().filter(|s| s.0 == "v").collect();
    let runs: Vec<u64> = video.iter().map(|s| s.3).collect();
    let split = runs
        .iter()
        .position(|&dn| dn != runs[0])
        .expect("a discontinuity");
    assert!(
        runs[split..].iter().all(|&dn| dn == runs[split]),
        "expected exactly one discontinuity: {runs:?}"
    );
    let (before, after) = video.split_at(split);
    for (part, segments) in [("first", before), ("second", after)] {
        let total: f64 = segments.iter().map(|s| s.2).sum();
        assert!(
            (total - f64::from(PUBLISH_SECONDS)).abs() < 1.0,
            "{part} publisher's segments last {total:.2} s, expected about {PUBLISH_SECONDS} s: {video:?}"
        );
    }
    // Each run of each track decodes as one fragmented MP4: its init segment, then its segments.
    for kind in ["v", "a"] {
        let files = index.files(kind);
        assert!(!files.is_empty(), "no {kind} segments");
        for run in files.chunk_by(|a, b| a.0 == b.0) {
            let mut bytes = std::fs::read(recording.join(&run[0].0)).unwrap();
            for (_, segment) in run {
                let path = recording.join(segment);
                bytes.extend(std::fs::read(&path).unwrap_or_else(|e| panic!("{segment}: {e}")));
            }
            let joined = tempfile::Builder::new().suffix(".mp4").tempfile().unwrap();
            std::fs::write(joined.path(), bytes).unwrap();
            decode_all(joined.path().to_str().unwrap())
                .unwrap_or_else(|e| panic!("{} ({kind}) does not decode: {e}", run[0].0));
        }
    }
}
