//! Faults against the real controld: publishers SIGKILLed at random moments, controld SIGKILLed
//! under load, hostile RTMP clients, a full disk. ffmpeg publishes (lavfi, x264 + AAC, 320x240),
//! ffmpeg decodes what is served; every test runs its own controld on OS-chosen ports, so the
//! tests of this file run in parallel.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cfstream_e2e::playback::{IndexLog, media_playlist_url, standalone_segment};
use cfstream_e2e::{
    ACCOUNT_ID, API_TOKEN, Api, Controld, Encoding, Publisher, controld_binary, decode_all,
    http_get, open_fds, open_files_limits, proc_status_bytes, progress_out_time,
    raise_open_files_limit, wait_for,
};
use cfstream_proto::rtmp::chunk::ChunkWriter;
use cfstream_proto::rtmp::{client, handshake};
use serde_json::{Value, json};

const FFMPEG_TIMEOUT: Duration = Duration::from_secs(60);

fn create(api: &Api, timeout_seconds: u32) -> (String, String) {
    let input = api.create_input(json!({
        "meta": {"name": "faults"},
        "recording": {"mode": "automatic", "timeoutSeconds": timeout_seconds}
    }));
    (
        input["uid"].as_str().unwrap().to_owned(),
        input["rtmp"]["streamKey"].as_str().unwrap().to_owned(),
    )
}

fn state_is(state: &'static str) -> impl Fn(&Value) -> bool {
    move |current| current["state"] == state
}

/// The video the input is recording now (`/{uid}/lifecycle`).
fn current_video(controld: &Controld, input: &str) -> Option<String> {
    let (_, _, body) = http_get(&format!("{}/{input}/lifecycle", controld.base_url()));
    let lifecycle: Value = serde_json::from_slice(&body).ok()?;
    lifecycle["videoUID"].as_str().map(str::to_owned)
}

/// Videos of the input once there are `count` and all are `ready`.
fn await_ready_videos(api: &Api, uid: &str, count: usize) -> Vec<Value> {
    wait_for(
        &format!("{count} ready video(s)"),
        Duration::from_secs(60),
        || {
            let videos = api.videos_of(uid);
            (videos.len() == count && videos.iter().all(|v| v["status"]["state"] == "ready"))
                .then_some(videos)
        },
    )
}

#[derive(Clone, Debug, PartialEq)]
struct Segment {
    uri: String,
    /// Its init segment (`EXT-X-MAP`).
    init: String,
    seconds: f64,
    /// Preceded by `EXT-X-DISCONTINUITY`.
    discontinuity: bool,
}

#[derive(Debug)]
struct Playlist {
    media_sequence: u64,
    discontinuity_sequence: u64,
    segments: Vec<Segment>,
    ended: bool,
}

impl Playlist {
    /// Parses a media playlist; a last line without its newline (a file being appended to) is
    /// not taken.
    fn parse(text: &str) -> Playlist {
        let complete = match text.rfind('\n') {
            Some(end) => &text[..=end],
            None => "",
        };
        let mut playlist = Playlist {
            media_sequence: 0,
            discontinuity_sequence: 0,
            segments: vec![],
            ended: false,
        };
        let (mut seconds, mut discontinuity, mut init) = (None, false, String::new());
        for line in complete.lines().map(str::trim) {
            if let Some(v) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
                init = v.split('"').next().unwrap_or_default().to_owned();
            } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                playlist.media_sequence = v.parse().unwrap();
            } else if let Some(v) = line.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:") {
                playlist.discontinuity_sequence = v.parse().unwrap();
            } else if line == "#EXT-X-DISCONTINUITY" {
                discontinuity = true;
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                seconds = v.split(',').next().and_then(|s| s.parse::<f64>().ok());
            } else if line == "#EXT-X-ENDLIST" {
                playlist.ended = true;
            } else if !line.is_empty() && !line.starts_with('#') {
                playlist.segments.push(Segment {
                    uri: line.to_owned(),
                    init: init.clone(),
                    seconds: seconds
                        .take()
                        .unwrap_or_else(|| panic!("no EXTINF: {text}")),
                    discontinuity: std::mem::take(&mut discontinuity),
                });
            }
        }
        playlist
    }

    fn seconds(&self) -> f64 {
        self.segments.iter().map(|s| s.seconds).sum()
    }

    /// Segment names follow the media sequence without a hole.
    fn assert_contiguous(&self) {
        for (n, segment) in self.segments.iter().enumerate() {
            let expected = format!("seg-{:08}.v.m4s", self.media_sequence + n as u64);
            let name = segment.uri.split('?').next().unwrap_or_default();
            assert_eq!(name, expected, "a segment is missing: {self:?}");
        }
    }

    /// Seconds listed between discontinuities (the first epoch included).
    fn epochs(&self) -> Vec<f64> {
        let mut epochs = vec![];
        for (n, segment) in self.segments.iter().enumerate() {
            if n == 0 || segment.discontinuity {
                epochs.push(0.0);
            }
            *epochs.last_mut().unwrap() += segment.seconds;
        }
        epochs
    }
}

fn recording_dir(controld: &Controld, input: &str, video: &str) -> PathBuf {
    controld
        .data_dir
        .path()
        .join("media")
        .join(input)
        .join(video)
}

/// The video track of a recording as its `index.log` on disk lists it (also while it is being
/// recorded), in the shape of its media playlist.
fn playlist_on_disk(dir: &Path) -> Playlist {
    let index = IndexLog::read(dir);
    let video: Vec<_> = index.segments.iter().filter(|s| s.0 == "v").collect();
    let first_run = video.first().map_or(0, |s| s.3);
    Playlist {
        media_sequence: video.first().map_or(0, |s| s.1),
        discontinuity_sequence: first_run,
        segments: video
            .iter()
            .scan(first_run, |run, s| {
                let discontinuity = s.3 != *run;
                *run = s.3;
                Some(Segment {
                    uri: format!("seg-{:08}.v.m4s", s.1),
                    init: format!("init-{:08}.v.mp4", s.3),
                    // As EXTINF shows it: milliseconds.
                    seconds: (s.2 * 1000.0).round() / 1000.0,
                    discontinuity,
                })
            })
            .collect(),
        ended: index.ended,
    }
}

/// The media playlist a multivariant playlist URL leads to, when it answers 200.
fn media_text(multivariant: &str) -> Option<String> {
    let (status, _, body) = http_get(&media_playlist_url(multivariant)?);
    (status == 200).then(|| String::from_utf8_lossy(&body).into_owned())
}

/// Every listed segment is served (200, `video/iso.segment`) and decodes on its own (with its
/// init segment).
fn assert_segments_play(base: &str, video: &str, playlist: &Playlist) {
    assert!(!playlist.segments.is_empty(), "nothing listed");
    let manifest = format!("{base}/{video}/manifest/video.m3u8");
    for segment in &playlist.segments {
        let url = format!("{base}/{video}/manifest/{}", segment.uri);
        let (status, content_type, body) = http_get(&url);
        assert_eq!(
            (status, content_type.as_str()),
            (200, "video/iso.segment"),
            "{url}"
        );
        assert!(!body.is_empty(), "{url} is empty");
        let file = standalone_segment(&manifest, &segment.init, &segment.uri);
        decode_all(file.path().to_str().unwrap())
            .unwrap_or_else(|e| panic!("{url} does not decode: {e}"));
    }
}

/// `before` (a playlist read earlier) is still listed, unchanged, at the start of `after`.
fn assert_still_listed(before: &Playlist, after: &Playlist) {
    assert!(
        after.segments.len() >= before.segments.len()
            && after.segments[..before.segments.len()] == before.segments[..],
        "segments listed before were lost:\nbefore {before:?}\nafter {after:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Publishers killed at random moments

/// xorshift64*: pseudo-random kill moments, the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const KILL_SEED: u64 = 0x0c0f_fee5_eed5;
/// What a SIGKILL may cost: what ffmpeg had muxed after its last progress report (≤ 0.25 s
/// plus the poll interval) is not counted in `media_sent`; what was in flight is lost. The
/// unfinished GOP at the kill is kept (the open segment is closed at the gap), so a lost closed
/// segment (4 s) always exceeds this.
const KILL_SLACK_SECONDS: f64 = 1.0;

/// One publisher run: media ffmpeg reported sent before it was killed (or ended).
#[derive(Debug)]
struct Run {
    media_sent: f64,
    killed: bool,
}

/// Publishes to the input once per kill moment (media seconds), SIGKILLing ffmpeg when it has
/// sent that much, then once more to the end (8 s). Returns what every run sent.
fn broadcast_with_kills(
    controld: &Controld,
    uid: &str,
    key: &str,
    kill_at: &[f64],
    work: &Path,
) -> Vec<Run> {
    let api = controld.api();
    let url = controld.rtmp_url(key);
    let mut runs = vec![];
    for n in 0..=kill_at.len() {
        let progress = work.join(format!("{uid}-{n}.progress"));
        let last = n == kill_at.len();
        let seconds = if last { 8 } else { 120 };
        let publisher = Publisher::start_with_progress(&url, Encoding::good(seconds), &progress);
        let state = if n == 0 { "connected" } else { "reconnected" };
        api.await_status(uid, state, state_is(state));
        if last {
            let (status, err) = publisher.wait(FFMPEG_TIMEOUT);
            assert!(status.success(), "last ffmpeg of {uid}: {err}");
        } else {
            let at = kill_at[n];
            wait_for(
                &format!("{uid}: {at:.2} s of media sent"),
                FFMPEG_TIMEOUT,
                || progress_out_time(&progress).filter(|t| t.as_secs_f64() >= at),
            );
            publisher.kill(); // SIGKILL: no unpublish, the TCP connection just ends
        }
        let media_sent = progress_out_time(&progress)
            .expect("ffmpeg progress")
            .as_secs_f64();
        runs.push(Run {
            media_sent,
            killed: !last,
        });
        api.await_status(
            uid,
            "reconnecting (publisher gone)",
            state_is("reconnecting"),
        );
    }
    runs
}

#[test]
fn publishers_killed_at_random_reconnect_with_exact_discontinuities() {
    let controld = Controld::start();
    let api = controld.api();
    let base = controld.base_url();
    let work = tempfile::tempdir().unwrap();
    let mut rng = Rng(KILL_SEED);
    let plans: Vec<(String, String, Vec<f64>)> = (0..3)
        .map(|_| {
            let (uid, key) = create(&api, 30);
            let kills = 2 + (rng.next() % 2) as usize;
            let at = (0..kills).map(|_| rng.uniform(5.0, 12.0)).collect();
            (uid, key, at)
        })
        .collect();
    for (uid, _, at) in &plans {
        eprintln!("{uid}: SIGKILL after {at:.2?} s of media (seed {KILL_SEED:#x})");
    }

    let runs: Vec<Vec<Run>> = std::thread::scope(|s| {
        let threads: Vec<_> = plans
            .iter()
            .map(|(uid, key, at)| {
                let (controld, work) = (&controld, work.path());
                s.spawn(move || broadcast_with_kills(controld, uid, key, at, work))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });

    for ((uid, _, kill_at), runs) in plans.iter().zip(&runs) {
        // Ends the reconnect window now rather than after 30 s.
        api.ok("POST", &format!("/live_inputs/{uid}/disable"), None);
        let videos = await_ready_videos(&api, uid, 1);
        let video = videos[0]["uid"].as_str().unwrap();
        let url = format!("{base}/{video}/manifest/video.m3u8");
        let raw = media_text(&url).expect("a recorded playlist");
        let playlist = Playlist::parse(&raw);
        assert!(playlist.ended, "{raw}");
        assert_eq!(
            raw.lines().filter(|l| *l == "#EXT-X-DISCONTINUITY").count(),
            kill_at.len(),
            "one discontinuity per reconnect: {raw}"
        );
        playlist.assert_contiguous();
        let epochs = playlist.epochs();
        eprintln!("{uid}: runs {runs:?}, recorded epochs {epochs:?}");
        assert_eq!(epochs.len(), runs.len(), "{raw}");
        for (n, (recorded, run)) in epochs.iter().zip(runs).enumerate() {
            let lost = run.media_sent - recorded;
            assert!(
                lost <= KILL_SLACK_SECONDS,
                "{uid} run {n}: {:.3} s sent, {recorded:.3} s recorded: media lost\n{raw}",
                run.media_sent
            );
            // More than was sent would be duplicated or invented media.
            let extra = if run.killed { KILL_SLACK_SECONDS } else { 0.5 };
            assert!(
                -lost <= extra,
                "{uid} run {n}: {:.3} s sent, {recorded:.3} s recorded\n{raw}",
                run.media_sent
            );
        }
        let duration = videos[0]["duration"].as_f64().unwrap();
        assert!(
            (duration - playlist.seconds()).abs() < 0.05,
            "duration {duration} vs listed {}",
            playlist.seconds()
        );
        let history = api.input(uid)["status"]["history"].clone();
        let reconnects = history
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["state"] == "reconnected")
            .count();
        assert_eq!(reconnects, kill_at.len(), "{history}");
        assert_segments_play(&base, video, &playlist);
        decode_all(&url).expect("the recording decodes across its discontinuities");
    }
}

// ---------------------------------------------------------------------------------------------
// controld killed under load

#[test]
fn controld_killed_under_load_restarts_with_every_listed_segment_intact() {
    let controld = Controld::start();
    let api = controld.api();
    let inputs: Vec<(String, String)> = (0..4).map(|_| create(&api, 30)).collect();
    let publishers: Vec<Publisher> = inputs
        .iter()
        .map(|(_, key)| Publisher::start(&controld.rtmp_url(key), Encoding::good(120)))
        .collect();
    let videos: Vec<String> = inputs
        .iter()
        .map(|(uid, _)| {
            api.await_status(uid, "connected", state_is("connected"));
            wait_for("2 segments recorded", Duration::from_secs(60), || {
                let video = current_video(&controld, uid)?;
                let dir = recording_dir(&controld, uid, &video);
                (playlist_on_disk(&dir).segments.len() >= 2).then_some(video)
            })
        })
        .collect();
    let before: Vec<Playlist> = inputs
        .iter()
        .zip(&videos)
        .map(|((uid, _), video)| playlist_on_disk(&recording_dir(&controld, uid, video)))
        .collect();

    let controld = controld.kill9_and_restart();
    drop(publishers);
    let api = controld.api();
    let base = controld.base_url();

    for (((uid, _), video), before) in inputs.iter().zip(&videos).zip(&before) {
        let current = api.input(uid)["status"]["current"].clone();
        assert_eq!(
            (current["state"].as_str(), current["reason"].as_str()),
            (Some("disconnected"), Some("server_restart")),
            "{current}"
        );
        let listed = api.videos_of(uid);
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["uid"], video.as_str());
        assert_eq!(
            listed[0]["status"]["state"], "ready",
            "crashed recording closed"
        );
        let raw = media_text(&format!("{base}/{video}/manifest/video.m3u8"))
            .expect("a recorded playlist");
        let after = Playlist::parse(&raw);
        assert!(after.ended, "{raw}");
        assert_still_listed(before, &after);
        after.assert_contiguous();
        let duration = listed[0]["duration"].as_f64().unwrap();
        assert!(
            (duration - after.seconds()).abs() < 0.05,
            "{duration}: {raw}"
        );
        // Segments written but never listed are gone; every listed one is there and plays.
        let dir = recording_dir(&controld, uid, video);
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".v.m4s"))
            .collect();
        on_disk.sort();
        let listed_uris: Vec<&str> = after.segments.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(on_disk, listed_uris);
        assert_segments_play(&base, video, &after);
    }

    // Every input takes a new publisher on the new process and records again.
    let again: Vec<Publisher> = inputs
        .iter()
        .map(|(_, key)| Publisher::start(&controld.rtmp_url(key), Encoding::good(60)))
        .collect();
    for ((uid, _), old_video) in inputs.iter().zip(&videos) {
        api.await_status(uid, "connected after the restart", state_is("connected"));
        let (video, segment) = wait_for("a new segment", Duration::from_secs(60), || {
            let video = current_video(&controld, uid).filter(|v| v != old_video)?;
            let dir = recording_dir(&controld, uid, &video);
            let first = playlist_on_disk(&dir).segments.into_iter().next()?;
            Some((video, first))
        });
        let manifest = format!("{base}/{video}/manifest/video.m3u8");
        let file = standalone_segment(&manifest, &segment.init, &segment.uri);
        decode_all(file.path().to_str().unwrap())
            .unwrap_or_else(|e| panic!("new segment of {uid}: {e}"));
        assert_eq!(api.videos_of(uid).len(), 2);
    }
    drop(again);
}

// ---------------------------------------------------------------------------------------------
// Hostile clients

/// Connections that send half a handshake (C0 and part of C1) and wait.
const HALF_HANDSHAKES: usize = 1000;
/// controld's resident memory may grow by less than this during the attack: 1,000 idle
/// connections at a few KiB each, a publisher's pipeline, and allocator slack, with room to
/// spare; buffering one 16 MiB message (or 1,000 × 64 KiB) would show.
const RSS_GROWTH_BOUND: u64 = 64 << 20;
/// The handshake timeout of cfrtmpsrc (and of the shared listener before any element set it).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A new live segment is due every segment duration (4 s GOP); this much lateness is allowed
/// (playlist polling every 100 ms, a loaded 2-core machine).
const SEGMENT_SLACK: Duration = Duration::from_secs(2);
/// The largest message the 24-bit length field of a chunk header can announce (16 MiB − 1).
const HUGE_MESSAGE: usize = 0xff_ffff;

/// Reads until the server closes the connection (EOF or reset); false if it is still open at
/// `deadline`.
fn closed_by_server(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut discard = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut discard) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true, // reset
        }
    }
}

/// Garbage of every kind: HTTP, random bytes, and a well-formed handshake followed by random
/// chunk stream bytes.
fn garbage_clients(rtmp: SocketAddr, rng: &mut Rng) -> Vec<TcpStream> {
    let mut clients = vec![];
    let mut random = |n: usize| -> Vec<u8> { (0..n).map(|_| rng.next() as u8).collect() };
    for n in 0..30 {
        let mut stream = TcpStream::connect(rtmp).unwrap();
        let bytes = match n % 3 {
            0 => b"GET / HTTP/1.1\r\nHost: cfstream\r\n\r\n".to_vec(),
            1 => {
                let mut bytes = random(4096);
                bytes[0] = 0xff;
                bytes
            }
            _ => {
                let mut bytes = vec![handshake::RTMP_VERSION];
                bytes.extend(random(2 * handshake::HANDSHAKE_SIZE + 4096));
                bytes
            }
        };
        // The server may close before reading everything: a failed write is fine.
        let _ = stream.write_all(&bytes);
        clients.push(stream);
    }
    clients
}

/// Completes the handshake (and publishes to `publish_key` if given), sets the chunk size to
/// 2^31 − 1, announces a 16 MiB − 1 message in a single chunk and sends its bytes. Returns how
/// many payload bytes the kernel took before the server's reset, and how long after the
/// announcement the server closed the connection (`None`: still open 10 s later).
fn huge_message_client(rtmp: SocketAddr, publish_key: Option<&str>) -> (usize, Option<Duration>) {
    let mut stream = TcpStream::connect(rtmp).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(&handshake::client_c0c1(7)).unwrap();
    let mut s0s1s2 = vec![0; 1 + 2 * handshake::HANDSHAKE_SIZE];
    stream.read_exact(&mut s0s1s2).unwrap();
    stream
        .write_all(&handshake::client_c2(&s0s1s2).unwrap())
        .unwrap();
    let writer = ChunkWriter::default();
    let mut out = client::publish_commands(&writer, "live", publish_key.unwrap_or("-"));
    if publish_key.is_some() {
        stream.write_all(&out).unwrap();
        let mut statuses = client::StatusReader::default();
        let mut input = handshake::client_c0c1(0);
        input.clear();
        loop {
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).expect("server replies to publish");
            assert_ne!(n, 0, "closed before the publish was answered");
            input.extend_from_slice(&buf[..n]);
            if let Some(status) = statuses.read(&mut input).unwrap().into_iter().next() {
                assert_eq!(status.code, "NetStream.Publish.Start", "{status:?}");
                break;
            }
        }
    }
    out.clear();
    const SET_CHUNK_SIZE: u8 = 1;
    writer.write(
        &mut out,
        2,
        0,
        SET_CHUNK_SIZE,
        0,
        &0x7fff_ffffu32.to_be_bytes(),
    );
    // fmt 0 header on chunk stream 6: timestamp 0, length 2^24 − 1, then type and stream id.
    let (type_id, stream_id) = match publish_key {
        Some(_) => (9u8, client::PUBLISH_STREAM_ID), // video
        None => (20u8, 0),                           // AMF0 command
    };
    out.extend_from_slice(&[0x06, 0, 0, 0, 0xff, 0xff, 0xff, type_id]);
    out.extend_from_slice(&stream_id.to_le_bytes());
    stream.write_all(&out).unwrap();
    let announced = Instant::now();
    let body = vec![0x17u8; 64 * 1024];
    let mut sent = 0;
    while sent < HUGE_MESSAGE {
        match stream.write(&body[..body.len().min(HUGE_MESSAGE - sent)]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let closed = closed_by_server(&mut stream, announced + Duration::from_secs(10));
    (sent, closed.then(|| announced.elapsed()))
}

/// What the live playlist showed while watched.
#[derive(Debug, Default)]
struct LiveWatch {
    /// When each new segment first appeared.
    appeared: Vec<Instant>,
    /// An `EXT-X-DISCONTINUITY` (or a discontinuity sequence above 0) was seen.
    discontinuity: bool,
    longest_segment: f64,
    polls_failed: usize,
}

/// Polls the live playlist until `stop`; `appeared` counts the new segments as they come.
fn watch_live(url: &str, stop: &AtomicBool, appeared: &AtomicUsize) -> LiveWatch {
    let mut watch = LiveWatch::default();
    let mut newest = None;
    while !stop.load(Ordering::Relaxed) {
        if let Some(text) = media_text(url) {
            let playlist = Playlist::parse(&text);
            let last = playlist.media_sequence + playlist.segments.len() as u64;
            if newest.is_some_and(|n| last > n) {
                watch.appeared.push(Instant::now());
                appeared.fetch_add(1, Ordering::Relaxed);
            }
            newest = Some(last);
            watch.discontinuity |= playlist.discontinuity_sequence > 0
                || playlist.segments.iter().any(|s| s.discontinuity);
            for segment in &playlist.segments {
                watch.longest_segment = watch.longest_segment.max(segment.seconds);
            }
        } else {
            watch.polls_failed += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    watch
}

/// What the attack saw, for the assertions after the threads ended.
struct Attack {
    started: Instant,
    setup_sent: usize,
    setup_closed: Option<Duration>,
    publish_sent: usize,
    publish_closed: Option<Duration>,
    /// Status of the input the hostile publisher published to, once it was cut.
    victim: Value,
    garbage_closed: usize,
    half_closed: usize,
    slowest_close: Duration,
    all_closed: Duration,
    fds_after: usize,
}

#[test]
fn hostile_clients_leave_live_inputs_and_memory_alone() {
    let soft = raise_open_files_limit();
    assert!(
        soft as usize > HALF_HANDSHAKES + 200,
        "RLIMIT_NOFILE hard limit {soft} is too low for {HALF_HANDSHAKES} connections"
    );
    // The crowd comes from 127.0.0.1 here, as from many addresses: no per-address cap (that
    // cap's own test is controld_limits), so that every half handshake reaches the handshake.
    let controld = Controld::start_with_args(&["--max-unauthenticated-per-address", "0"]);
    let pid = controld.pid();
    let (controld_soft, _) = open_files_limits(pid).unwrap();
    assert!(
        controld_soft == "unlimited"
            || controld_soft.parse::<usize>().unwrap() > HALF_HANDSHAKES + 200,
        "controld may open {controld_soft} files"
    );
    let api = controld.api();
    let base = controld.base_url();
    let (uid, key) = create(&api, 30);
    let (victim_uid, victim_key) = create(&api, 30);
    let publisher = Publisher::start(&controld.rtmp_url(&key), Encoding::good(120));
    api.await_status(&uid, "connected", state_is("connected"));
    let live = format!("{base}/{uid}/manifest/video.m3u8");
    wait_for("2 live segments", Duration::from_secs(60), || {
        let text = media_text(&live)?;
        (Playlist::parse(&text).segments.len() >= 2).then_some(())
    });
    let entered_at = api.input(&uid)["status"]["current"]["statusEnteredAt"].clone();
    let video = current_video(&controld, &uid).expect("recording");
    let rss = || proc_status_bytes(pid, "VmRSS").expect("VmRSS of controld");
    let rss_before = rss();
    let fds_before = open_fds(pid);

    let stop = AtomicBool::new(false);
    let appeared = AtomicUsize::new(0);
    let rss_peak = AtomicU64::new(rss_before);
    let rtmp = controld.rtmp;
    // The watcher has seen `n` new segments appear (it polls every 100 ms).
    let segments_seen = |what: &str, n: usize| {
        let bound = Duration::from_secs(60);
        wait_for(what, bound, || {
            (appeared.load(Ordering::Relaxed) >= n).then_some(())
        });
    };
    let (watch, report) = std::thread::scope(|s| {
        let watcher = s.spawn(|| watch_live(&live, &stop, &appeared));
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                rss_peak.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let started = Instant::now();
        // The live input is watched producing before the attack: the gaps measured between
        // segments start from a segment seen to appear.
        segments_seen("a new live segment before the attack", 1);

        let c0c1 = handshake::client_c0c1(1);
        let mut half: Vec<(TcpStream, Instant)> = (0..HALF_HANDSHAKES)
            .map(|n| {
                let mut stream = TcpStream::connect_timeout(&rtmp, Duration::from_secs(10))
                    .unwrap_or_else(|e| panic!("connection {n}: {e}"));
                stream.write_all(&c0c1[..1 + 700]).unwrap();
                (stream, Instant::now())
            })
            .collect();
        let opened = Instant::now();
        let mut rng = Rng(KILL_SEED ^ 0xbad);
        let mut garbage = garbage_clients(rtmp, &mut rng);
        let (setup_sent, setup_closed) = huge_message_client(rtmp, None);
        let (publish_sent, publish_closed) = huge_message_client(rtmp, Some(&victim_key));
        let victim = api.await_status(&victim_uid, "hostile publisher cut", |c| {
            c["state"] == "reconnecting"
        });

        let garbage_closed = garbage
            .iter_mut()
            .map(|s| closed_by_server(s, opened + HANDSHAKE_TIMEOUT + Duration::from_secs(20)))
            .filter(|closed| *closed)
            .count();
        let mut half_closed = 0;
        let mut slowest_close = Duration::ZERO;
        for (stream, connected) in &mut half {
            if closed_by_server(
                stream,
                *connected + HANDSHAKE_TIMEOUT + Duration::from_secs(20),
            ) {
                half_closed += 1;
                slowest_close = slowest_close.max(connected.elapsed());
            }
        }
        let all_closed = opened.elapsed();
        drop(half);
        drop(garbage);
        let fds_after = wait_for("controld's sockets closed", Duration::from_secs(30), || {
            let fds = open_fds(pid);
            (fds <= fds_before + 16).then_some(fds)
        });
        // The live input goes on after the mass close: one more segment must appear (the gap
        // until it is measured with the others).
        let before_close = appeared.load(Ordering::Relaxed);
        segments_seen("a new live segment after the mass close", before_close + 1);
        stop.store(true, Ordering::Relaxed);
        let watch = watcher.join().unwrap();
        let report = Attack {
            started,
            setup_sent,
            setup_closed,
            publish_sent,
            publish_closed,
            victim,
            garbage_closed,
            half_closed,
            slowest_close,
            all_closed,
            fds_after,
        };
        (watch, report)
    });
    let ended = Instant::now();
    let Attack {
        started,
        setup_sent,
        setup_closed,
        publish_sent,
        publish_closed,
        victim,
        garbage_closed,
        half_closed,
        slowest_close,
        all_closed,
        fds_after,
    } = report;
    let growth = rss_peak.load(Ordering::Relaxed).saturating_sub(rss_before);
    let mut marks = vec![started];
    marks.extend(&watch.appeared);
    marks.push(ended);
    let worst_gap = marks.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    eprintln!(
        "hostile: RSS {} MiB + {:.1} MiB peak, fds {fds_before} → {fds_after}, \
         {half_closed}/{HALF_HANDSHAKES} half handshakes closed (slowest {slowest_close:?}, all by \
         {all_closed:?}), {garbage_closed} garbage closed; 16 MiB message before publish: {setup_sent} B written, \
         closed after {setup_closed:?}; while publishing: {publish_sent} B written, closed after \
         {publish_closed:?}; \
         live: {} new segments, worst gap {worst_gap:?}, longest segment {:.3} s",
        rss_before >> 20,
        growth as f64 / (1 << 20) as f64,
        watch.appeared.len(),
        watch.longest_segment,
    );

    assert!(
        growth < RSS_GROWTH_BOUND,
        "controld's RSS grew by {growth} bytes"
    );
    assert_eq!(half_closed, HALF_HANDSHAKES, "half handshakes left open");
    assert!(
        slowest_close <= HANDSHAKE_TIMEOUT + Duration::from_secs(5),
        "half handshakes closed only after {slowest_close:?}"
    );
    assert_eq!(garbage_closed, 30, "garbage connections left open");
    // Refused on its header (message size limits), not read, not left to the handshake timeout.
    for (what, sent, closed) in [
        ("command before publish", setup_sent, setup_closed),
        ("video while publishing", publish_sent, publish_closed),
    ] {
        assert!(
            closed.is_some_and(|after| after < HANDSHAKE_TIMEOUT / 2) && sent < HUGE_MESSAGE,
            "16 MiB {what}: {sent} bytes written, closed after {closed:?}"
        );
    }
    assert_eq!(victim["reason"], "protocol_error", "{victim}");

    // The live input did not notice.
    assert_eq!(watch.polls_failed, 0, "the live playlist was not served");
    assert!(!watch.discontinuity, "a discontinuity in the live playlist");
    let bound = Duration::from_secs_f64(watch.longest_segment) + SEGMENT_SLACK;
    assert!(
        worst_gap <= bound,
        "no new live segment for {worst_gap:?} (bound {bound:?}): {:?}",
        watch.appeared
    );
    assert!(watch.appeared.len() >= 4, "{watch:?}");
    let current = api.input(&uid)["status"]["current"].clone();
    assert_eq!(current["state"], "connected", "{current}");
    assert_eq!(current["statusEnteredAt"], entered_at, "{current}");
    assert_eq!(
        current_video(&controld, &uid).as_deref(),
        Some(video.as_str())
    );
    drop(publisher);
}

#[test]
fn controld_raises_its_soft_open_files_limit() {
    let data_dir = tempfile::tempdir().unwrap();
    // A shell lowers the soft limit, then becomes controld (same pid).
    let mut child = Command::new("sh")
        .args(["-c", "ulimit -S -n 256 && exec \"$0\" \"$@\""])
        .arg(controld_binary())
        .args([
            "--http",
            "127.0.0.1:0",
            "--rtmp",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir.path())
        .env("CONTROLD_ACCOUNT_ID", ACCOUNT_ID)
        .env("CONTROLD_API_TOKEN", API_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("controld: http=") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert_ne!(n, 0, "controld exited: {:?}", child.wait());
    }
    let limits = open_files_limits(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let (soft, hard) = limits.expect("controld's limits");
    assert_eq!(
        soft, hard,
        "controld keeps the soft open files limit it inherited"
    );
}

// ---------------------------------------------------------------------------------------------
// Full disk

/// A tmpfs mounted for the test; unmounted (lazily, should something still hold it) on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if out.status.success() {
            Ok(Tmpfs { dir })
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Writes `path` until the file system is full; the error must be ENOSPC.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0x5au8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&block) {
            Ok(n) => written += n as u64,
            Err(e) => {
                assert_eq!(
                    e.raw_os_error(),
                    Some(libc::ENOSPC),
                    "filling {path:?}: {e}"
                );
                return written;
            }
        }
    }
}

#[test]
fn disk_full_gives_a_clear_error_and_recovers_when_space_returns() {
    let media = match Tmpfs::mount("6m") {
        Ok(tmpfs) => tmpfs,
        Err(e)
            if unsafe { libc::geteuid() } != 0
                || e.contains("permission denied")
                || e.contains("Operation not permitted")
                || e.contains("must be superuser") =>
        {
            println!("skipped: needs root to mount tmpfs ({e})");
            return;
        }
        Err(e) => panic!("mount -t tmpfs: {e}"),
    };
    // The database stays on the real disk; only media/ is the small tmpfs.
    let data_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(media.path(), data_dir.path().join("media")).unwrap();
    let controld = Controld::start_in_dir(data_dir, &[]);
    let api = controld.api();
    let base = controld.base_url();
    let (uid, key) = create(&api, 30);
    let publisher = Publisher::start(&controld.rtmp_url(&key), Encoding::good(120));
    api.await_status(&uid, "connected", state_is("connected"));
    let video = wait_for("2 segments recorded", Duration::from_secs(60), || {
        let video = current_video(&controld, &uid)?;
        let dir = media.path().join(&uid).join(&video);
        (playlist_on_disk(&dir).segments.len() >= 2).then_some(video)
    });
    let dir = media.path().join(&uid).join(&video);
    let before = playlist_on_disk(&dir);

    let filler = media.path().join("filler");
    let filled = fill(&filler);
    let failed = api.await_status(&uid, "the broadcast stops on the full disk", |c| {
        c["state"] == "disconnected"
    });
    eprintln!("disk full after {filled} filler bytes: status {failed}");
    assert_eq!(failed["reason"], "errored", "{failed}");
    let message = failed["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("No space left on device") && message.contains(&uid),
        "the error names the cause and the file: {failed}"
    );
    // controld is still there, and what was listed before the disk filled is intact. The
    // recording cannot be closed on a full disk: it stays in progress until it can be.
    let videos = api.videos_of(&uid);
    assert_eq!(videos.len(), 1, "{videos:?}");
    assert_eq!(videos[0]["uid"], video.as_str());
    assert_eq!(
        videos[0]["status"]["state"], "live-inprogress",
        "{videos:?}"
    );
    let after = playlist_on_disk(&dir);
    eprintln!(
        "recording after the failure: {} segments listed, ENDLIST {}, duration {}",
        after.segments.len(),
        after.ended,
        videos[0]["duration"]
    );
    assert_still_listed(&before, &after);
    after.assert_contiguous();
    assert_segments_play(&base, &video, &after);
    drop(publisher);

    // Space returns: the cut recording is closed, and the same input records and plays again.
    std::fs::remove_file(&filler).unwrap();
    let closed = wait_for(
        "the cut recording closed once space returned",
        Duration::from_secs(90),
        || {
            let videos = api.videos_of(&uid);
            let closed = videos.into_iter().find(|v| v["uid"] == video.as_str())?;
            (closed["status"]["state"] == "ready").then_some(closed)
        },
    );
    let finished = playlist_on_disk(&dir);
    assert!(finished.ended, "{finished:?}");
    assert_still_listed(&before, &finished);
    let duration = closed["duration"].as_f64().unwrap_or_default();
    assert!(duration >= before.seconds() - 0.05, "{closed}");
    let again = Publisher::start(&controld.rtmp_url(&key), Encoding::good(10));
    api.await_status(&uid, "connected again", state_is("connected"));
    let (status, err) = again.wait(FFMPEG_TIMEOUT);
    assert!(status.success(), "ffmpeg: {err}");
    api.ok("POST", &format!("/live_inputs/{uid}/disable"), None);
    let videos = await_ready_videos(&api, &uid, 2);
    let new = videos
        .iter()
        .find(|v| v["uid"] != video.as_str())
        .expect("a new video");
    let url = new["playback"]["hls"].as_str().unwrap();
    let playlist = Playlist::parse(&media_text(url).expect("a recorded playlist"));
    assert!(playlist.ended && playlist.seconds() >= 8.0, "{playlist:?}");
    decode_all(url).expect("the new recording decodes");
    drop(controld);
}
