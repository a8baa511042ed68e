//! `cfrtmpsrc` with real publishers (ffmpeg, GStreamer's rtmp2sink, a hand-made client) on
//! loopback ports chosen by the OS.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cfstream_proto::flv::{self, StreamHeader};
use cfstream_proto::rtmp::chunk::{ChunkWriter, message_type};
use cfstream_proto::rtmp::client::{self, Status, StatusReader};
use cfstream_proto::rtmp::handshake;
use common::{ChildGuard, Media, publish_live};
use gst::prelude::*;
use gstcfstream::contract::DisconnectReason;
use gstcfstream::contract::cfrtmpsrc::{
    PublisherConnected, PublisherDisconnected, PublisherRejected, Stats,
};
use gstcfstream::contract::codes::{
    ERR_STREAM_KEY_IN_USE, ERR_UNSUPPORTED_AUDIO_CODEC, ERR_UNSUPPORTED_VIDEO_CODEC,
};
use gstcfstream::contract::event;
use gstcfstream::rtmp::TAKEOVER_SILENCE;

const TIMEOUT: Duration = Duration::from_secs(60);

/// What a pad probe saw pass.
#[derive(Debug, Clone)]
enum Seen {
    Buffer {
        pts: Option<gst::ClockTime>,
        dts: Option<gst::ClockTime>,
        discont: bool,
    },
    Caps(gst::Caps),
    /// A custom downstream event.
    Custom(gst::Event),
}

impl Seen {
    /// DTS, or PTS where there is no DTS (audio).
    fn time(&self) -> Option<gst::ClockTime> {
        match self {
            Seen::Buffer { pts, dts, .. } => dts.or(*pts),
            _ => None,
        }
    }
}

fn probe(pad: &gst::Pad, sender: Sender<Seen>) {
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            let seen = match &info.data {
                Some(gst::PadProbeData::Buffer(buffer)) => Some(Seen::Buffer {
                    pts: buffer.pts(),
                    dts: buffer.dts(),
                    discont: buffer.flags().contains(gst::BufferFlags::DISCONT),
                }),
                Some(gst::PadProbeData::Event(event)) => match event.view() {
                    gst::EventView::Caps(caps) => Some(Seen::Caps(caps.caps_owned())),
                    gst::EventView::CustomDownstream(_) => Some(Seen::Custom(event.clone())),
                    _ => None,
                },
                _ => None,
            };
            if let Some(seen) = seen {
                let _ = sender.send(seen);
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// `flvdemux`'s pads through the parsers (what `rtmp2src ! flvdemux` users do).
const PARSED_BRANCHES: &str = "\
    demux.video ! queue ! h264parse ! video/x-h264,stream-format=avc,alignment=au \
      ! fakesink name=video sync=false async=false \
    demux.audio ! queue ! aacparse ! fakesink name=audio sync=false async=false";
/// `flvdemux`'s pads as the daemon links them: into `gopvalidate`, no parsers, no queues.
const DAEMON_BRANCHES: &str = "\
    demux.video ! gopvalidate ! fakesink name=video sync=false async=false \
    demux.audio ! gopvalidate ! fakesink name=audio sync=false async=false";

/// `cfrtmpsrc ! flvdemux` with a branch per stream ending in a fakesink, with probes before the
/// fakesinks and on the source's own output.
struct Ingest {
    pipeline: gst::Pipeline,
    src: gst::Element,
    video: Receiver<Seen>,
    audio: Receiver<Seen>,
    output: Receiver<Seen>,
    /// Element messages popped from the bus but not yet asked for.
    messages: Vec<gst::Structure>,
}

impl Ingest {
    /// `properties`: more `cfrtmpsrc` properties in gst-launch syntax.
    fn start(location: &str, key: &str, properties: &str) -> Ingest {
        Ingest::start_with(location, key, properties, PARSED_BRANCHES)
    }

    /// On a fresh loopback port, with the daemon's branches.
    fn linked_as_the_daemon(key: &str) -> Ingest {
        Ingest::start_with("rtmp://127.0.0.1:0/live", key, "", DAEMON_BRANCHES)
    }

    fn start_with(location: &str, key: &str, properties: &str, branches: &str) -> Ingest {
        common::init();
        let description = format!(
            "cfrtmpsrc name=src location={location} stream-key={key} {properties} \
             ! flvdemux name=demux {branches}"
        );
        let pipeline = gst::parse::launch(&description)
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        let pad =
            |element: &str, pad: &str| pipeline.by_name(element).unwrap().static_pad(pad).unwrap();
        let (video_sender, video) = channel();
        probe(&pad("video", "sink"), video_sender);
        let (audio_sender, audio) = channel();
        probe(&pad("audio", "sink"), audio_sender);
        let (output_sender, output) = channel();
        probe(&pad("src", "src"), output_sender);
        pipeline.set_state(gst::State::Playing).unwrap();
        let src = pipeline.by_name("src").unwrap();
        Ingest {
            pipeline,
            src,
            video,
            audio,
            output,
            messages: vec![],
        }
    }

    /// A fresh port on loopback.
    fn on_loopback(key: &str, properties: &str) -> Ingest {
        Ingest::start("rtmp://127.0.0.1:0/live", key, properties)
    }

    fn port(&self) -> u32 {
        let port = self.src.property::<u32>("bound-port");
        assert_ne!(port, 0);
        port
    }

    fn url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.port())
    }

    /// Waits for the element message `name`, keeping others for later calls.
    fn message(&mut self, name: &str) -> gst::Structure {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(i) = self.messages.iter().position(|s| s.name() == name) {
                return self.messages.remove(i);
            }
            let structure =
                self.pop_element_message(deadline.saturating_duration_since(Instant::now()));
            self.messages
                .push(structure.unwrap_or_else(|| panic!("no {name} message in time")));
        }
    }

    /// The next element message; with a zero timeout only one already posted.
    fn pop_element_message(&self, timeout: Duration) -> Option<gst::Structure> {
        let bus = self.pipeline.bus().unwrap();
        let types = [gst::MessageType::Element, gst::MessageType::Error];
        let message = if timeout.is_zero() {
            bus.pop_filtered(&types)?
        } else {
            bus.timed_pop_filtered(
                gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
                &types,
            )?
        };
        match message.view() {
            gst::MessageView::Error(error) => panic!("pipeline error: {error:?}"),
            _ => Some(message.structure().unwrap().to_owned()),
        }
    }

    fn connected(&mut self) -> PublisherConnected {
        PublisherConnected::from_structure(&self.message(PublisherConnected::NAME))
    }

    fn disconnected(&mut self) -> PublisherDisconnected {
        let message = self.message(PublisherDisconnected::NAME);
        PublisherDisconnected::from_structure(&message).expect("a reason the plugin writes")
    }

    fn rejected(&mut self) -> PublisherRejected {
        PublisherRejected::from_structure(&self.message(PublisherRejected::NAME))
    }

    /// Every element message posted so far (none waited for).
    fn pending_messages(&mut self) -> Vec<String> {
        while let Some(structure) = self.pop_element_message(Duration::ZERO) {
            self.messages.push(structure);
        }
        self.messages.iter().map(|s| s.name().to_string()).collect()
    }

    fn wait_eos(&self) {
        let bus = self.pipeline.bus().unwrap();
        let message = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(TIMEOUT.as_secs()),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .expect("no EOS in time");
        assert!(
            matches!(message.view(), gst::MessageView::Eos(_)),
            "{message:?}"
        );
    }

    fn stats(&self) -> Stats {
        Stats::from_structure(&self.src.property::<gst::Structure>("stats"))
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Everything seen until `buffers` buffers have passed.
fn collect(receiver: &Receiver<Seen>, buffers: usize) -> Vec<Seen> {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = vec![];
    let mut count = 0;
    while count < buffers {
        let item = receiver
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("only {count} of {buffers} buffers arrived"));
        count += usize::from(matches!(item, Seen::Buffer { .. }));
        seen.push(item);
    }
    seen
}

fn buffer_times(seen: &[Seen]) -> Vec<gst::ClockTime> {
    seen.iter().filter_map(Seen::time).collect()
}

fn assert_rising(times: &[gst::ClockTime]) {
    for pair in times.windows(2) {
        assert!(pair[0] < pair[1], "timestamps do not rise: {times:?}");
    }
}

fn caps_of(seen: &[Seen]) -> gst::Caps {
    seen.iter()
        .find_map(|s| match s {
            Seen::Caps(caps) => Some(caps.clone()),
            _ => None,
        })
        .expect("caps before buffers")
}

fn short_media(seconds: f64) -> Media {
    Media {
        seconds,
        keyint_seconds: 1.0,
        ..Media::default()
    }
}

fn assert_refused(publisher: &mut ChildGuard) -> String {
    let (status, stderr) = publisher.wait_timeout(TIMEOUT);
    assert!(!status.success(), "publisher was not refused: {stderr}");
    stderr
}

#[test]
fn ffmpeg_publishes_h264_and_aac() {
    let mut ingest = Ingest::on_loopback("key1", "");
    let mut publisher = publish_live(&short_media(3.0), &ingest.url("key1"));

    let video = collect(&ingest.video, 60);
    let audio = collect(&ingest.audio, 60);
    let video_caps = caps_of(&video);
    let s = video_caps.structure(0).unwrap();
    assert_eq!(s.name(), "video/x-h264");
    assert_eq!(
        (s.get::<i32>("width"), s.get::<i32>("height")),
        (Ok(320), Ok(240))
    );
    let audio_caps = caps_of(&audio);
    let s = audio_caps.structure(0).unwrap();
    assert_eq!(
        (s.name().as_str(), s.get::<i32>("mpegversion")),
        ("audio/mpeg", Ok(4))
    );
    assert_eq!(s.get::<i32>("rate"), Ok(44100));
    let video_times = buffer_times(&video);
    assert_rising(&video_times);
    assert_rising(&buffer_times(&audio));
    // Running time: the publisher arrived after the pipeline started, not in the future.
    let now = ingest.pipeline.current_running_time().unwrap();
    assert!(video_times[0] <= now, "{} > {now}", video_times[0]);

    let connected = ingest.connected();
    assert_eq!(connected.app, "live");
    assert!(!connected.tls);
    assert!(!connected.reconnect);
    assert!(connected.encoder.contains("Lavf"), "{connected:?}");
    assert!(connected.remote_address.starts_with("127.0.0.1:"));
    let stats = ingest.stats();
    assert!(stats.frames >= 60, "{stats:?}");
    assert!(stats.bytes > 10_000, "{stats:?}");
    assert!(stats.bitrate > 10_000, "{stats:?}");
    assert!(!stats.connected_since.is_empty());
    assert_eq!(stats.publisher_address, connected.remote_address);

    let (status, stderr) = publisher.wait_timeout(TIMEOUT);
    assert!(status.success(), "ffmpeg failed: {stderr}");
    assert_eq!(ingest.disconnected().reason, DisconnectReason::Closed);
}

#[test]
fn caps_announce_stream_headers_for_late_consumers() {
    let ingest = Ingest::on_loopback("key1", "");
    let mut publisher = publish_live(&short_media(2.0), &ingest.url("key1"));
    let seen = collect(&ingest.output, 30);
    let caps = seen
        .iter()
        .rev()
        .find_map(|s| match s {
            Seen::Caps(caps) => Some(caps.clone()),
            _ => None,
        })
        .unwrap();
    let headers = caps
        .structure(0)
        .unwrap()
        .get::<gst::Array>("streamheader")
        .unwrap_or_else(|e| panic!("no streamheader in {caps}: {e}"));
    let headers: Vec<Vec<u8>> = headers
        .iter()
        .map(|v| {
            let buffer = v.get::<gst::Buffer>().unwrap();
            assert!(buffer.flags().contains(gst::BufferFlags::HEADER));
            buffer.map_readable().unwrap().to_vec()
        })
        .collect();
    assert_eq!(
        headers.len(),
        4,
        "FLV header, onMetaData, AVC and AAC sequence headers"
    );
    assert_eq!(headers[0], flv::FILE_HEADER);
    let kinds: Vec<_> = headers[1..]
        .iter()
        .map(|h| {
            let (tag, _) = flv::parse_tag(h).expect("one whole tag");
            flv::stream_header(tag.tag_type, tag.body)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            Some(StreamHeader::Metadata),
            Some(StreamHeader::VideoConfig),
            Some(StreamHeader::AudioConfig)
        ]
    );
    let (status, stderr) = publisher.wait_timeout(TIMEOUT);
    assert!(status.success(), "ffmpeg failed: {stderr}");
}

#[test]
fn ffmpeg_publishes_over_rtmps() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let certificate = dir.path().join("cert.pem");
    let private_key = dir.path().join("key.pem");
    std::fs::write(&certificate, certified.cert.pem()).unwrap();
    std::fs::write(&private_key, certified.key_pair.serialize_pem()).unwrap();
    let properties = format!(
        "tls-certificate={} tls-private-key={}",
        certificate.display(),
        private_key.display()
    );
    let mut ingest = Ingest::start("rtmps://127.0.0.1:0/live", "secret", &properties);
    let url = format!("rtmps://127.0.0.1:{}/live/secret", ingest.port());
    let _publisher = publish_live(&short_media(3.0), &url);

    let video = collect(&ingest.video, 30);
    assert_eq!(caps_of(&video).structure(0).unwrap().name(), "video/x-h264");
    collect(&ingest.audio, 20);
    assert!(ingest.connected().tls);
}

#[test]
fn rtmp2sink_publishes() {
    let mut ingest = Ingest::on_loopback("gst", "");
    let publisher = gst::parse::launch(&format!(
        "videotestsrc is-live=true num-buffers=150 ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! h264parse ! queue \
         ! flvmux streamable=true name=mux ! rtmp2sink location={} \
         audiotestsrc is-live=true num-buffers=220 ! avenc_aac ! aacparse ! queue ! mux.",
        ingest.url("gst")
    ))
    .unwrap();
    publisher.set_state(gst::State::Playing).unwrap();

    let video = collect(&ingest.video, 30);
    assert_eq!(caps_of(&video).structure(0).unwrap().name(), "video/x-h264");
    assert_rising(&buffer_times(&video));
    collect(&ingest.audio, 20);
    ingest.connected();
    publisher.set_state(gst::State::Null).unwrap();
}

#[test]
fn wrong_key_is_refused() {
    let mut ingest = Ingest::on_loopback("right", "");
    let mut publisher = publish_live(&short_media(2.0), &ingest.url("wrong"));
    let stderr = assert_refused(&mut publisher);
    assert!(stderr.contains("unknown stream key"), "{stderr}");
    assert_eq!(ingest.pending_messages(), Vec::<String>::new());
    assert!(ingest.video.try_recv().is_err());
}

#[test]
fn two_keys_share_one_port() {
    let first = Ingest::on_loopback("one", "");
    let location = format!("rtmp://127.0.0.1:{}/live", first.port());
    let second = Ingest::start(&location, "two", "");
    assert_eq!(first.port(), second.port());
    let _one = publish_live(&short_media(3.0), &first.url("one"));
    let _two = publish_live(&short_media(3.0), &second.url("two"));
    collect(&first.video, 30);
    collect(&second.video, 30);
}

#[test]
fn second_publisher_of_a_live_key_is_refused() {
    let mut ingest = Ingest::on_loopback("busy", "");
    let _live = publish_live(&short_media(8.0), &ingest.url("busy"));
    collect(&ingest.video, 10);
    let mut intruder = publish_live(&short_media(2.0), &ingest.url("busy"));
    let stderr = assert_refused(&mut intruder);
    assert!(stderr.contains("stream key already in use"), "{stderr}");
    assert_eq!(ingest.rejected().code, ERR_STREAM_KEY_IN_USE);
    // The live publisher goes on.
    collect(&ingest.video, 30);
    assert!(
        !ingest
            .pending_messages()
            .iter()
            .any(|m| m.ends_with("disconnected"))
    );
}

/// What passed a pad around a reconnect: buffers before the reconnect event, the event's gap,
/// and the first buffer after it (nothing but events may come between).
struct AroundReconnect {
    before: Vec<Seen>,
    gap: u64,
    first_after: Seen,
}

fn around_reconnect(receiver: &Receiver<Seen>) -> AroundReconnect {
    let mut before = vec![];
    let gap = loop {
        match receiver.recv_timeout(TIMEOUT).expect("reconnect event") {
            Seen::Custom(custom) if event::PublisherReconnected::is(&custom) => {
                break event::PublisherReconnected::from_event(&custom)
                    .unwrap()
                    .gap
                    .nseconds();
            }
            item => before.push(item),
        }
    };
    let first_after = loop {
        let item = receiver
            .recv_timeout(TIMEOUT)
            .expect("buffer after reconnect");
        if matches!(item, Seen::Buffer { .. }) {
            break item;
        }
    };
    AroundReconnect {
        before,
        gap,
        first_after,
    }
}

#[test]
fn reconnect_within_idle_timeout_continues_the_stream() {
    let ingest = Ingest::on_loopback("again", "idle-timeout=30");
    assert_reconnect_continues(ingest, &short_media(2.0), &short_media(3.0));
}

#[test]
fn reconnect_continues_through_the_daemon_s_branches() {
    let ingest = Ingest::start_with(
        "rtmp://127.0.0.1:0/live",
        "again",
        "idle-timeout=30",
        DAEMON_BRANCHES,
    );
    // GOPs of 4 s, within gopvalidate's rules.
    let media = |seconds| Media {
        seconds,
        ..Media::default()
    };
    assert_reconnect_continues(ingest, &media(2.0), &media(3.0));
}

/// Publishes `first`, then `second` to the key `again`: the second continues the stream.
fn assert_reconnect_continues(mut ingest: Ingest, first: &Media, second: &Media) {
    let mut first = publish_live(first, &ingest.url("again"));
    let (status, stderr) = first.wait_timeout(TIMEOUT);
    assert!(status.success(), "{stderr}");
    ingest.disconnected();
    let _second = publish_live(second, &ingest.url("again"));
    assert!(!ingest.connected().reconnect);
    assert!(ingest.connected().reconnect);

    // cfrtmpsrc itself: the event, then a DISCONT buffer.
    let output = around_reconnect(&ingest.output);
    assert!(output.gap >= 100_000_000, "gap of {} ns", output.gap);
    assert!(matches!(
        output.first_after,
        Seen::Buffer { discont: true, .. }
    ));
    assert_eq!(disconnects(&output.before), 1);
    let last_output = *buffer_times(&output.before).iter().max().unwrap();
    let first_output = output.first_after.time().unwrap();
    assert_eq!((first_output - last_output).nseconds(), output.gap);

    // Behind flvdemux and the parsers or gopvalidate the event still precedes the new
    // publisher's buffers, whose timestamps continue after the gap.
    for receiver in [&ingest.video, &ingest.audio] {
        let around = around_reconnect(receiver);
        // The first publisher's end came before it: behind the parsers only now, as they hold
        // serialized events until their next buffer.
        assert_eq!(disconnects(&around.before), 1);
        assert_eq!(around.gap, output.gap);
        let last = *buffer_times(&around.before).iter().max().unwrap();
        let first = around.first_after.time().unwrap();
        assert!(first > last, "{first} after {last}");
        let rest = collect(receiver, 20);
        assert_rising(&buffer_times(&rest));
    }
}

#[test]
fn a_leaving_publisher_is_announced_downstream_at_once() {
    // The event follows the publisher's last buffer through flvdemux and gopvalidate as the
    // daemon links them, so that a sink can close its segment now rather than at the next
    // publisher or at EOS (idle-timeout=0: there is none).
    let mut ingest = Ingest::linked_as_the_daemon("leaving");
    // GOPs of 4 s, within gopvalidate's rules.
    let media = Media {
        seconds: 5.0,
        ..Media::default()
    };
    let mut publisher = publish_live(&media, &ingest.url("leaving"));
    let (status, stderr) = publisher.wait_timeout(TIMEOUT);
    assert!(status.success(), "ffmpeg failed: {stderr}");
    let message = ingest.disconnected();
    assert_eq!(message.reason, DisconnectReason::Closed);
    let expected = event::PublisherDisconnected {
        remote_address: message.remote_address,
        reason: message.reason,
    };
    for (pad, receiver) in [
        ("cfrtmpsrc", &ingest.output),
        ("video", &ingest.video),
        ("audio", &ingest.audio),
    ] {
        let (buffers, left) = until_disconnected(receiver);
        assert!(
            buffers >= 20,
            "{pad}: only {buffers} buffers before the event"
        );
        assert_eq!(left, expected, "{pad}");
    }
}

#[test]
fn eos_after_idle_timeout_and_key_released() {
    let mut ingest = Ingest::on_loopback("brief", "idle-timeout=1");
    let publisher = publish_live(&short_media(10.0), &ingest.url("brief"));
    collect(&ingest.video, 5);
    // kill -9: the socket closes without an unpublish.
    drop(publisher);
    assert_eq!(ingest.disconnected().reason, DisconnectReason::Closed);
    ingest.wait_eos();
    // The key is no longer taken.
    let mut late = publish_live(&short_media(1.0), &ingest.url("brief"));
    assert_refused(&mut late);
}

fn assert_audio_refused(audio: &'static [&'static str], codec_name: &str) {
    let mut ingest = Ingest::on_loopback("sound", "");
    let media = Media {
        audio,
        ..short_media(3.0)
    };
    let mut publisher = publish_live(&media, &ingest.url("sound"));
    let rejected = ingest.rejected();
    assert_eq!(rejected.code, ERR_UNSUPPORTED_AUDIO_CODEC);
    assert!(rejected.reason.contains(codec_name), "{rejected:?}");
    let stderr = assert_refused(&mut publisher);
    assert!(stderr.contains(ERR_UNSUPPORTED_AUDIO_CODEC), "{stderr}");
    assert_eq!(ingest.disconnected().reason, DisconnectReason::Rejected);
    // Downstream, the refused publisher's end is an event too.
    let left = disconnected_event(&ingest.output);
    assert_eq!(left.reason, DisconnectReason::Rejected);
    // The element stays up for the next publisher.
    let _good = publish_live(&short_media(2.0), &ingest.url("sound"));
    collect(&ingest.video, 10);
}

#[test]
fn mp3_audio_is_refused() {
    assert_audio_refused(&["-c:a", "libmp3lame", "-ar", "44100"], "MP3");
}

#[test]
fn speex_audio_is_refused() {
    assert_audio_refused(&["-c:a", "libspeex", "-ar", "16000"], "Speex");
}

/// A connection that finished the RTMP handshake.
fn handshaken(port: u32) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(&handshake::client_c0c1(5)).unwrap();
    let mut s0s1s2 = vec![0; 1 + 2 * handshake::HANDSHAKE_SIZE];
    stream.read_exact(&mut s0s1s2).unwrap();
    stream
        .write_all(&handshake::client_c2(&s0s1s2).unwrap())
        .unwrap();
    stream
}

/// Reads statuses until one arrives.
fn next_status(stream: &mut TcpStream, reader: &mut StatusReader, input: &mut BytesMut) -> Status {
    loop {
        if let Some(status) = reader.read(input).unwrap().into_iter().next() {
            return status;
        }
        let mut buf = [0; 4096];
        let n = stream.read(&mut buf).unwrap();
        assert_ne!(n, 0, "closed before a status");
        input.extend_from_slice(&buf[..n]);
    }
}

/// Reads until the server closes the connection; returns how long that took.
fn time_until_closed(stream: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return start.elapsed(),
            Err(e) => panic!("connection not closed: {e}"),
        }
    }
}

#[test]
fn enhanced_rtmp_hevc_is_refused() {
    let mut ingest = Ingest::on_loopback("hevc", "");
    let mut stream = handshaken(ingest.port());
    let writer = ChunkWriter::default();
    stream
        .write_all(&client::publish_commands(&writer, "live", "hevc"))
        .unwrap();
    let mut reader = StatusReader::default();
    let mut input = BytesMut::new();
    let status = next_status(&mut stream, &mut reader, &mut input);
    assert_eq!(status.code, "NetStream.Publish.Start");

    // Enhanced RTMP: IsExHeader | key frame | PacketType SequenceStart, FourCC, then config.
    let mut tag = vec![0x80 | 0x10, b'h', b'v', b'c', b'1'];
    tag.extend_from_slice(&[
        1, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5a, 0xf0, 0, 0xfc,
    ]);
    let mut message = BytesMut::new();
    writer.write(
        &mut message,
        6,
        0,
        message_type::VIDEO,
        client::PUBLISH_STREAM_ID,
        &tag,
    );
    stream.write_all(&message).unwrap();

    let status = next_status(&mut stream, &mut reader, &mut input);
    assert_eq!(status.level, "error");
    assert!(
        status.description.contains(ERR_UNSUPPORTED_VIDEO_CODEC),
        "{status:?}"
    );
    assert!(status.description.contains("hvc1 (HEVC)"), "{status:?}");
    time_until_closed(&mut stream);
    let rejected = ingest.rejected();
    assert_eq!(rejected.code, ERR_UNSUPPORTED_VIDEO_CODEC);
    assert_eq!(
        rejected.reason,
        "video codec hvc1 (HEVC) is not supported: send H.264"
    );
    assert!(
        ingest.video.try_recv().is_err(),
        "HEVC reached the pipeline"
    );
}

#[test]
fn hostile_clients_do_not_disturb_a_live_input() {
    let mut ingest = Ingest::on_loopback("steady", "handshake-timeout=2");
    let port = ingest.port();
    let _live = publish_live(&short_media(12.0), &ingest.url("steady"));
    collect(&ingest.video, 10);

    let hostile = [
        std::thread::spawn(move || {
            // Not RTMP at all: dropped on the first byte.
            let mut stream = TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            time_until_closed(&mut stream)
        }),
        std::thread::spawn(move || {
            // Half a handshake, then silence: dropped at the handshake timeout.
            let mut stream = TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            stream.write_all(&handshake::client_c0c1(1)[..700]).unwrap();
            let waited = time_until_closed(&mut stream);
            assert!(waited >= Duration::from_millis(1500), "{waited:?}");
            waited
        }),
        std::thread::spawn(move || {
            // Set Chunk Size 2^31: a protocol error, nothing allocated.
            let mut stream = handshaken(port);
            let mut message = BytesMut::new();
            let size = 0x8000_0000u32.to_be_bytes();
            ChunkWriter::default().write(
                &mut message,
                2,
                0,
                message_type::SET_CHUNK_SIZE,
                0,
                &size,
            );
            stream.write_all(&message).unwrap();
            time_until_closed(&mut stream)
        }),
        std::thread::spawn(move || {
            // A 16 MiB − 1 command before any publish: refused from its header.
            let mut stream = handshaken(port);
            stream
                .write_all(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0])
                .unwrap();
            stream.write_all(&[0; 128]).unwrap();
            time_until_closed(&mut stream)
        }),
    ];
    for client in hostile {
        let waited = client.join().unwrap();
        assert!(waited < Duration::from_secs(10), "{waited:?}");
    }

    // Meanwhile and afterwards the live input receives frames, without interruption.
    collect(&ingest.video, 30);
    let messages = ingest.pending_messages();
    assert_eq!(messages, [PublisherConnected::NAME]);
}

#[test]
fn gst_inspect_documents_every_property() {
    common::init();
    let plugin_dir = common::plugin_dir();
    let output = Command::new("gst-inspect-1.0")
        .arg("cfrtmpsrc")
        .env("GST_PLUGIN_PATH", &plugin_dir)
        .env("GST_REGISTRY", plugin_dir.join("registry.bin"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    let element = gst::ElementFactory::make("cfrtmpsrc").build().unwrap();
    for pspec in element.list_properties() {
        if pspec.owner_type() != element.type_() {
            continue;
        }
        let blurb = pspec.blurb().unwrap();
        assert!(blurb.len() > 20, "{} has no real description", pspec.name());
        let line = format!("{:<20}: {}", pspec.name(), blurb);
        assert!(text.contains(&line), "gst-inspect lacks {line:?}:\n{text}");
    }
}

/// `cfrtmpsrc ! fakesink` for tests that send hand-made media flvdemux need not understand.
fn bare_source(properties: &str) -> (gst::Pipeline, gst::Element, Receiver<Seen>) {
    common::init();
    let pipeline = gst::parse::launch(&format!(
        "cfrtmpsrc name=src location=rtmp://127.0.0.1:0/live stream-key=raw {properties} \
         ! fakesink name=sink sync=false async=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let (sender, seen) = channel();
    probe(
        &pipeline
            .by_name("sink")
            .unwrap()
            .static_pad("sink")
            .unwrap(),
        sender,
    );
    let src = pipeline.by_name("src").unwrap();
    (pipeline, src, seen)
}

/// The reason of the next `cfrtmpsrc-publisher-disconnected` message.
fn disconnect_reason(pipeline: &gst::Pipeline) -> DisconnectReason {
    let bus = pipeline.bus().unwrap();
    loop {
        let message = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(TIMEOUT.as_secs()),
                &[gst::MessageType::Element],
            )
            .expect("a disconnect in time");
        let structure = message.structure().unwrap();
        if structure.name() == PublisherDisconnected::NAME {
            return PublisherDisconnected::from_structure(structure)
                .expect("a reason the plugin writes")
                .reason;
        }
    }
}

/// A hand-made client's publish of `key`, and the status it got.
fn publish_attempt(port: u32, key: &str) -> (TcpStream, Status) {
    let mut stream = handshaken(port);
    let writer = ChunkWriter::default();
    stream
        .write_all(&client::publish_commands(&writer, "live", key))
        .unwrap();
    let status = next_status(
        &mut stream,
        &mut StatusReader::default(),
        &mut BytesMut::new(),
    );
    (stream, status)
}

/// A publisher that completed `publish` with the hand-made client.
fn hand_made_publisher(port: u32, key: &str) -> TcpStream {
    let (stream, status) = publish_attempt(port, key);
    assert_eq!(status.code, "NetStream.Publish.Start");
    stream
}

/// How many `cfstream-publisher-disconnected` events `seen` holds.
fn disconnects(seen: &[Seen]) -> usize {
    seen.iter()
        .filter(|s| matches!(s, Seen::Custom(e) if event::PublisherDisconnected::is(e)))
        .count()
}

/// The next `cfstream-publisher-disconnected` event `receiver` sees.
fn disconnected_event(receiver: &Receiver<Seen>) -> event::PublisherDisconnected {
    until_disconnected(receiver).1
}

/// The buffers `receiver` sees before the next `cfstream-publisher-disconnected` event, and
/// the event.
fn until_disconnected(receiver: &Receiver<Seen>) -> (usize, event::PublisherDisconnected) {
    let mut buffers = 0;
    loop {
        match receiver.recv_timeout(TIMEOUT).expect("disconnect event") {
            Seen::Buffer { .. } => buffers += 1,
            Seen::Custom(custom) => {
                if let Some(left) = event::PublisherDisconnected::from_event(&custom) {
                    return (buffers, left);
                }
            }
            Seen::Caps(_) => {}
        }
    }
}

#[test]
fn silent_publisher_is_cut_at_read_timeout() {
    let (pipeline, src, seen) = bare_source("read-timeout=1");
    pipeline.set_state(gst::State::Playing).unwrap();
    let _silent = hand_made_publisher(src.property("bound-port"), "raw");
    let reason = disconnect_reason(&pipeline);
    assert_eq!(reason, DisconnectReason::ReadTimeout);
    assert_eq!(disconnected_event(&seen).reason, reason);
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn returning_publisher_takes_over_from_a_silent_connection() {
    // A network cut leaves the old connection open without traffic; read-timeout would notice
    // only after a minute here. The encoder's new connection must not wait for that: once the
    // old one has sent nothing for TAKEOVER_SILENCE, a new publisher of its key takes it over.
    let (pipeline, src, _seen) = bare_source("read-timeout=60");
    pipeline.set_state(gst::State::Playing).unwrap();
    let port = src.property("bound-port");
    let before_stale = Instant::now();
    let mut stale = hand_made_publisher(port, "raw");
    // Publishers retrying as encoders do: refused while the stale one may still be live.
    let deadline = Instant::now() + TIMEOUT;
    let mut refused = 0;
    let _returning = loop {
        let (stream, status) = publish_attempt(port, "raw");
        if status.code == "NetStream.Publish.Start" {
            // The stale publisher was accepted after `before_stale`: it cannot have been
            // silent for the whole window unless that much time has passed since.
            assert!(
                before_stale.elapsed() >= TAKEOVER_SILENCE,
                "taken over too early"
            );
            break stream;
        }
        assert_eq!(status.description, "stream key already in use");
        refused += 1;
        assert!(Instant::now() < deadline, "never taken over");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(refused > 0, "taken over without any silence");
    assert_eq!(disconnect_reason(&pipeline), DisconnectReason::Replaced);
    assert!(
        time_until_closed(&mut stale) < TIMEOUT,
        "the stale connection stays open"
    );
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn slow_consumer_holds_the_publisher_back() {
    let (pipeline, src, seen) = bare_source("");
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut stream = hand_made_publisher(src.property("bound-port"), "raw");
    // Paused, the live source outputs nothing: its publisher's socket stops being read.
    pipeline.set_state(gst::State::Paused).unwrap();
    let writer = ChunkWriter::default();
    let mut frame = vec![0x27, 1, 0, 0, 0];
    frame.resize(64 * 1024, 0x55);
    let mut message = BytesMut::new();
    writer.write(&mut message, 6, 0, message_type::VIDEO, 1, &frame);
    stream
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut written = 0usize;
    let blocked = loop {
        match stream.write_all(&message) {
            Ok(()) => written += message.len(),
            Err(e) => break e,
        }
        assert!(
            written < 256 << 20,
            "no back-pressure after {written} bytes"
        );
    };
    let kind = blocked.kind();
    assert!(
        matches!(
            kind,
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{blocked}"
    );
    // At most socket buffers + one message being assembled (+ the 16 MiB queue for TLS).
    assert!(written < 40 << 20, "{written} bytes taken while paused");

    // Playing again, every message written in full comes out.
    pipeline.set_state(gst::State::Playing).unwrap();
    collect(&seen, written / message.len());
    let start = Instant::now();
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn bad_settings_fail_start_with_a_clear_error() {
    common::init();
    let cases = [
        (
            "location=http://127.0.0.1:0/live stream-key=k",
            "must start with rtmp://",
        ),
        ("location=rtmp://127.0.0.1:0/live", "stream-key is required"),
        (
            "location=rtmp://127.0.0.1:0 stream-key=k",
            "names no application",
        ),
        (
            "location=rtmps://127.0.0.1:0/live stream-key=k",
            "needs tls-certificate and tls-private-key",
        ),
        (
            "location=rtmps://127.0.0.1:0/live stream-key=k \
             tls-certificate=/nonexistent/cert.pem tls-private-key=/nonexistent/key.pem",
            "/nonexistent/cert.pem",
        ),
    ];
    for (properties, expected) in cases {
        let pipeline = gst::parse::launch(&format!("cfrtmpsrc {properties} ! fakesink")).unwrap();
        assert!(
            pipeline.set_state(gst::State::Playing).is_err(),
            "{properties}"
        );
        let bus = pipeline.bus().unwrap();
        // A failed start posts its error before the state change returns.
        let message = bus
            .pop_filtered(&[gst::MessageType::Error])
            .expect("an error message");
        let gst::MessageView::Error(error) = message.view() else {
            unreachable!()
        };
        let text = error.error().to_string();
        assert!(text.contains(expected), "{properties}: {text}");
        pipeline.set_state(gst::State::Null).unwrap();
    }
}

#[test]
fn oversized_message_of_a_publisher_is_a_protocol_error() {
    let (pipeline, src, _seen) = bare_source("");
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut stream = hand_made_publisher(src.property("bound-port"), "raw");
    // A video message header declaring 16 MiB − 1 bytes: refused before any of it is buffered.
    stream
        .write_all(&[0x06, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0])
        .unwrap();
    stream.write_all(&[0x17; 4096]).unwrap();
    time_until_closed(&mut stream);
    let DisconnectReason::ProtocolError(detail) = disconnect_reason(&pipeline) else {
        panic!("not a protocol error")
    };
    assert!(
        detail.starts_with("message of 16777215 bytes is larger than the limit"),
        "{detail}"
    );
    pipeline.set_state(gst::State::Null).unwrap();
}
