//! cfsrtsrc with real SRT callers (libsrt in ffmpeg, srt-live-transmit and GStreamer's srtsink):
//! the caller presenting the element's stream id and passphrase is received and demuxed; wrong
//! passphrases, unknown ids and refused codecs are turned away with the messages documented in
//! docs/DESIGN.md.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use cfstream_testmedia::srt_url;
use common::{ChildGuard, Media, init, publish_live};
use gst::prelude::*;
use gstcfstream::contract::ElementMessage;
use gstcfstream::contract::codes::ERR_UNSUPPORTED_VIDEO_CODEC;

const PASSPHRASE: &str = "correct-horse-battery";
const TIMEOUT: Duration = Duration::from_secs(30);

fn ts_media(seconds: f64) -> Media {
    Media {
        seconds,
        format: "mpegts",
        ..Media::default()
    }
}

/// `cfsrtsrc ! tsdemux`, H.264 access units counted at a fakesink; started.
struct Receiver {
    pipeline: gst::Pipeline,
    port: u32,
}

impl Receiver {
    fn start(stream_id: &str) -> Receiver {
        init();
        let pipeline = gst::parse::launch(&format!(
            "cfsrtsrc name=src location=srt://127.0.0.1:0 stream-id={stream_id} \
             passphrase={PASSPHRASE} idle-timeout=2 ! tsdemux name=d \
             d. ! queue ! h264parse ! fakesink name=video sync=false \
             d. ! queue ! aacparse ! fakesink sync=false"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let src = pipeline.by_name("src").unwrap();
        let port = src.property::<u32>("bound-port");
        assert_ne!(port, 0);
        Receiver { pipeline, port }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The element messages until EOS (the idle timeout after the caller left) or an error.
    fn messages_until_eos(&self) -> Vec<ElementMessage> {
        self.messages_until(|_| false)
    }

    /// The element messages until EOS or one that `last` accepts.
    fn messages_until(&self, last: impl Fn(&ElementMessage) -> bool) -> Vec<ElementMessage> {
        let bus = self.pipeline.bus().unwrap();
        let mut seen = Vec::new();
        while let Some(message) = bus.timed_pop(gst::ClockTime::from_seconds(TIMEOUT.as_secs())) {
            match message.view() {
                gst::MessageView::Element(e) => {
                    seen.extend(e.structure().and_then(ElementMessage::parse));
                    if seen.last().is_some_and(&last) {
                        return seen;
                    }
                }
                gst::MessageView::Eos(_) => return seen,
                gst::MessageView::Error(e) => panic!("pipeline error: {}", e.error()),
                _ => {}
            }
        }
        panic!("no EOS within {TIMEOUT:?}; messages {seen:?}");
    }

    fn video_frames(&self) -> u64 {
        let src = self.pipeline.by_name("src").unwrap();
        let stats = src.property::<gst::Structure>("stats");
        stats.get::<u64>("frames").unwrap()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn assert_received_one_caller(receiver: &Receiver, seconds: f64) {
    let messages = receiver.messages_until_eos();
    let connected = messages.iter().find_map(|m| match m {
        ElementMessage::SrtPublisherConnected(c) => Some(c.clone()),
        _ => None,
    });
    let connected = connected.unwrap_or_else(|| panic!("no connect in {messages:?}"));
    assert!(connected.encrypted && !connected.reconnect, "{connected:?}");
    assert!(
        messages
            .iter()
            .any(|m| matches!(m, ElementMessage::SrtPublisherDisconnected(_))),
        "{messages:?}"
    );
    // 30 fps for `seconds`, less what the caller's first packets before a keyframe held.
    let frames = receiver.video_frames();
    assert!(frames as f64 >= 30.0 * seconds * 0.8, "{frames} frames");
}

#[test]
fn ffmpeg_caller_is_received() {
    let receiver = Receiver::start("ffmpeg");
    let url = srt_url(receiver.addr(), "ffmpeg", Some(PASSPHRASE));
    let mut caller = publish_live(&ts_media(4.0), &url);
    assert_received_one_caller(&receiver, 4.0);
    let (status, stderr) = caller.wait_timeout(TIMEOUT);
    assert!(status.success(), "{stderr}");
}

#[test]
fn srt_live_transmit_caller_is_received() {
    let receiver = Receiver::start("slt");
    // ffmpeg sends MPEG-TS over UDP to srt-live-transmit, which calls over SRT.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    drop(udp);
    let target = format!(
        "srt://{}?streamid=slt&passphrase={PASSPHRASE}&pbkeylen=16",
        receiver.addr()
    );
    let _relay = ChildGuard::spawn(
        Command::new("srt-live-transmit")
            .args(["-q", &format!("udp://127.0.0.1:{udp_port}"), &target])
            .stdout(Stdio::null()),
    );
    let udp_url = format!("udp://127.0.0.1:{udp_port}?pkt_size=1316");
    // Until the relay listens on UDP, ffmpeg's first datagrams may be lost: send 6 s.
    let mut caller = publish_live(&ts_media(6.0), &udp_url);
    let (status, stderr) = caller.wait_timeout(TIMEOUT);
    assert!(status.success(), "{stderr}");
    drop(_relay);
    assert_received_one_caller(&receiver, 4.0);
}

#[test]
fn gstreamer_srtsink_caller_is_received() {
    let receiver = Receiver::start("gst");
    let sender = gst::parse::launch(&format!(
        "videotestsrc num-buffers=120 is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=120 ! h264parse \
         ! mpegtsmux name=mux alignment=7 ! srtsink uri=srt://{}?mode=caller \
         streamid=gst passphrase={PASSPHRASE} pbkeylen=16 \
         audiotestsrc num-buffers=172 is-live=true ! avenc_aac ! aacparse ! mux.",
        receiver.addr()
    ))
    .unwrap();
    sender.set_state(gst::State::Playing).unwrap();
    let bus = sender.bus().unwrap();
    let end = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(TIMEOUT.as_secs()),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    assert!(
        matches!(
            end.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ),
        "{end:?}"
    );
    sender.set_state(gst::State::Null).unwrap();
    assert_received_one_caller(&receiver, 3.0);
}

/// An ffmpeg caller of `url` is refused in the handshake: it fails at once.
fn assert_refused(url: &str) {
    let mut caller = publish_live(&ts_media(3.0), url);
    let (status, stderr) = caller.wait_timeout(TIMEOUT);
    assert!(!status.success(), "accepted: {stderr}");
}

#[test]
fn wrong_passphrase_and_unknown_stream_id_are_refused_while_a_caller_is_live() {
    let receiver = Receiver::start("live");
    let mut live = publish_live(
        &ts_media(8.0),
        &srt_url(receiver.addr(), "live", Some(PASSPHRASE)),
    );
    assert_refused(&srt_url(
        receiver.addr(),
        "live",
        Some("not-the-passphrase"),
    ));
    assert_refused(&srt_url(receiver.addr(), "live", None));
    assert_refused(&srt_url(receiver.addr(), "nobody", Some(PASSPHRASE)));
    let (status, stderr) = live.wait_timeout(TIMEOUT);
    assert!(status.success(), "the live caller was disturbed: {stderr}");
    assert_received_one_caller(&receiver, 8.0);
}

#[test]
fn hevc_caller_is_rejected_with_cloudflare_s_code() {
    let receiver = Receiver::start("hevc");
    let hevc = Media {
        video_override: cfstream_testmedia::X265,
        ..ts_media(3.0)
    };
    let _caller = publish_live(&hevc, &srt_url(receiver.addr(), "hevc", Some(PASSPHRASE)));
    // tsdemux made no pads for the refused stream: the EOS that follows goes nowhere.
    let messages =
        receiver.messages_until(|m| matches!(m, ElementMessage::SrtPublisherDisconnected(_)));
    let rejected = messages.iter().find_map(|m| match m {
        ElementMessage::SrtPublisherRejected(r) => Some(r.clone()),
        _ => None,
    });
    let rejected = rejected.unwrap_or_else(|| panic!("no rejection in {messages:?}"));
    assert_eq!(rejected.code, ERR_UNSUPPORTED_VIDEO_CODEC);
    assert!(rejected.reason.contains("HEVC"), "{}", rejected.reason);
    assert_eq!(receiver.video_frames(), 0);
}

#[test]
fn gst_inspect_documents_every_property() {
    let output = Command::new("gst-inspect-1.0")
        .arg("cfsrtsrc")
        .env("GST_PLUGIN_PATH", common::plugin_dir())
        .output()
        .expect("gst-inspect-1.0");
    let text = String::from_utf8_lossy(&output.stdout);
    for property in [
        "location",
        "stream-id",
        "passphrase",
        "latency",
        "idle-timeout",
        "enforce-codecs",
        "read-timeout",
        "read-interval",
        "stats",
        "bound-port",
    ] {
        assert!(
            text.contains(&format!("  {property}")),
            "{property} missing:\n{text}"
        );
    }
    assert!(text.contains("video/mpegts"), "{text}");
}
