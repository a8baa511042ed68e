//! Playback in process: manifests rendered from a live recording registered with the writer's
//! live index (no GStreamer: the test plays the writer, listing segments and parts itself), and
//! the CMAF files they name. Playlists must pass `cfstream_proto::render::check`.

mod common;

use std::collections::VecDeque;
use std::io::Write;
use std::ops::Range;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use cfstream_proto::index::log::{Record, encode};
use cfstream_proto::index::{
    OpenSegment, Part, Progress, RecordingIndex, Segment, StreamInfo, TrackIndex, TrackKind,
    segment_name,
};
use cfstream_proto::render::check::{check_reload_text, check_text};
use cfstream_proto::render::time::parse_iso8601_ms;
use common::*;
use controld::store::videos;
use controld::{ids, timefmt};
use gstcfstream::hls::live::{self, LiveHandle};
use serde_json::json;
use tower::ServiceExt;

/// 2026-12-02T15:00:00.000Z.
const T0_MS: i64 = 1_796_223_600_000;
const TARGET_SECONDS: u32 = 4;
const PARTS_PER_SEGMENT: u64 = 4;
const PART_BYTES: u64 = 1000;

/// A track of `segments` closed segments of 4 s (parts of 1 s) and an open one of `open_parts`.
fn track(kind: TrackKind, segments: u64, open_parts: u64) -> TrackIndex {
    let timescale = match kind {
        TrackKind::Video => 90_000,
        TrackKind::Audio => 48_000,
    };
    let part = u64::from(timescale);
    let parts = |n: u64| -> Vec<Part> {
        (0..n)
            .map(|i| Part {
                duration: part,
                independent: i == 0 || kind == TrackKind::Audio,
                offset: i * PART_BYTES,
                length: PART_BYTES,
            })
            .collect()
    };
    let segment = |sequence: u64| Segment {
        sequence,
        decode_time: sequence * PARTS_PER_SEGMENT * part,
        duration: PARTS_PER_SEGMENT * part,
        program_date_time_ms: T0_MS + (sequence * PARTS_PER_SEGMENT * 1000) as i64,
        discontinuity: false,
        discontinuity_number: 0,
        size: PARTS_PER_SEGMENT * PART_BYTES,
        parts: parts(PARTS_PER_SEGMENT),
    };
    TrackIndex {
        kind,
        timescale,
        target_duration: TARGET_SECONDS,
        part_target: part,
        discontinuity_sequence: 0,
        segments: (0..segments).map(segment).collect::<VecDeque<_>>(),
        open: (open_parts > 0).then(|| OpenSegment {
            sequence: segments,
            decode_time: segments * PARTS_PER_SEGMENT * part,
            program_date_time_ms: T0_MS + (segments * PARTS_PER_SEGMENT * 1000) as i64,
            discontinuity: false,
            discontinuity_number: 0,
            parts: parts(open_parts),
        }),
        progress: Progress::Live,
        trimmed: false,
    }
}

fn index(segments: u64, open_parts: u64) -> RecordingIndex {
    RecordingIndex {
        stream: StreamInfo {
            video_codec: Some("avc1.64001f".into()),
            audio_codec: Some("mp4a.40.2".into()),
            width: 640,
            height: 360,
            frame_rate: Some((30, 1)),
            audio_sample_rate: 48_000,
            audio_channels: 2,
            peak_bandwidth: 0,
            average_bandwidth: 0,
        },
        tracks: vec![
            track(TrackKind::Video, segments, open_parts),
            track(TrackKind::Audio, segments, open_parts),
        ],
    }
}

/// Adds the open segment's next part; the fourth closes it (and opens none).
fn add_part(index: &mut RecordingIndex) {
    for t in &mut index.tracks {
        let next = t.next_sequence();
        let open = t.open.get_or_insert_with(|| OpenSegment {
            sequence: next,
            decode_time: next * PARTS_PER_SEGMENT * u64::from(t.timescale),
            program_date_time_ms: T0_MS + (next * PARTS_PER_SEGMENT * 1000) as i64,
            discontinuity: false,
            discontinuity_number: 0,
            parts: Vec::new(),
        });
        let offset = open.next_part_offset();
        open.parts.push(Part {
            duration: u64::from(t.timescale),
            independent: open.parts.is_empty(),
            offset,
            length: PART_BYTES,
        });
        if open.parts.len() as u64 == PARTS_PER_SEGMENT {
            let open = t.open.take().unwrap();
            t.segments.push_back(Segment {
                sequence: open.sequence,
                decode_time: open.decode_time,
                duration: open.parts_duration(),
                program_date_time_ms: open.program_date_time_ms,
                discontinuity: false,
                discontinuity_number: 0,
                size: open.next_part_offset(),
                parts: open.parts,
            });
        }
    }
}

fn finish(index: &mut RecordingIndex) {
    for t in &mut index.tracks {
        t.progress = Progress::Finished;
        t.open = None;
    }
}

/// `index` as cfhlssink logs it, with its `end` record when `finished`.
fn log_of(index: &RecordingIndex, finished: bool) -> String {
    let mut records = vec![Record::Header];
    for t in &index.tracks {
        records.push(Record::Track {
            kind: t.kind,
            timescale: t.timescale,
            part_target: t.part_target,
        });
    }
    records.push(Record::Stream(index.stream.clone()));
    records.push(Record::Target {
        seconds: TARGET_SECONDS,
    });
    for t in &index.tracks {
        records.push(Record::Init {
            kind: t.kind,
            discontinuity_number: 0,
        });
    }
    let mut log = String::new();
    for record in &records {
        encode(record, &mut log);
    }
    log += &segment_lines(index, 0..index.tracks[0].segments.len() as u64);
    if finished {
        encode(&Record::End, &mut log);
    }
    log
}

/// The `seg` records of segments `sequences` of every track of `index` (parts are not logged).
fn segment_lines(index: &RecordingIndex, sequences: Range<u64>) -> String {
    let mut log = String::new();
    for sequence in sequences {
        for t in &index.tracks {
            let mut segment = t.segments[sequence as usize].clone();
            segment.parts.clear();
            let kind = t.kind;
            encode(&Record::Segment { kind, segment }, &mut log);
        }
    }
    log
}

/// A live input and one recording of it, in the database and on disk; `writer` when it is
/// being written (registered with the live index).
struct Broadcast {
    app: TestApp,
    input: String,
    video: String,
    dir: PathBuf,
    writer: Option<LiveHandle>,
}

/// A recording being written: `segments` listed, `open_parts` parts of the next.
async fn broadcast(segments: u64, open_parts: u64) -> Broadcast {
    let mut b = recording(videos::STATE_LIVE).await;
    b.writer = Some(live::register(&b.dir, index(segments, open_parts)));
    b
}

/// A recording in `state` with nothing written (no writer registered, no index.log).
async fn recording(state: &str) -> Broadcast {
    let app = test_app().await;
    let input = create_input(&app).await;
    let video = ids::new_uid();
    let now = timefmt::now();
    let row = videos::Video {
        uid: video.clone(),
        account_id: ACCOUNT.into(),
        live_input: input.clone(),
        created: now.clone(),
        modified: now,
        state: state.into(),
        ready_to_stream_at: None,
        duration: -1.0,
        meta: json!({}),
        creator: None,
        require_signed_urls: false,
        allowed_origins: None,
    };
    app.store
        .write_blocking(|c| videos::insert(c, &row))
        .unwrap();
    let dir = app.media.join(&input).join(&video);
    std::fs::create_dir_all(&dir).unwrap();
    Broadcast {
        app,
        input,
        video,
        dir,
        writer: None,
    }
}

async fn create_input(app: &TestApp) -> String {
    let request = Request::post(format!("/client/v4/accounts/{ACCOUNT}/stream/live_inputs"))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let (_, body) = read(response).await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["result"]["uid"].as_str().unwrap().to_owned()
}

async fn read(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

impl Broadcast {
    fn writer(&self) -> &LiveHandle {
        self.writer.as_ref().expect("a recording being written")
    }

    /// Appends `text` to the recording's index.log, as cfhlssink does.
    fn append_log(&self, text: &str) {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("index.log"))
            .unwrap();
        log.write_all(text.as_bytes()).unwrap();
    }

    async fn get_response(&self, path: &str, range: Option<&str>) -> Response {
        let mut request = Request::get(path);
        if let Some(range) = range {
            request = request.header(header::RANGE, range);
        }
        let request = request.body(Body::empty()).unwrap();
        self.app.router.clone().oneshot(request).await.unwrap()
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        read(self.get_response(path, None).await).await
    }

    /// A playlist that must be 200 and pass the checker.
    async fn playlist(&self, path: &str) -> String {
        let (status, text) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        assert_eq!(check_text(&text), Ok(vec![]), "{path}:\n{text}");
        text
    }
}

fn media_sequence(text: &str) -> u64 {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .expect("a media sequence");
    line.parse().unwrap()
}

fn extinf_seconds(text: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn the_multivariant_playlist_names_codecs_and_both_media_playlists() {
    let b = broadcast(3, 1).await;
    let (status, text) = b.get(&format!("/{}/manifest/video.m3u8", b.video)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    for expected in [
        "#EXT-X-INDEPENDENT-SEGMENTS",
        "CODECS=\"avc1.64001f,mp4a.40.2\"",
        "RESOLUTION=640x360",
        "URI=\"media-a.m3u8?vid=",
        "\nmedia-v.m3u8?vid=",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    // An input's multivariant playlist pins the broadcast in its media URIs.
    let (status, text) = b
        .get(&format!(
            "/{}/manifest/video.m3u8?protocol=llhls&rec={}",
            b.input, b.video
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let query = format!("media-v.m3u8?protocol=llhls&rec={}&vid=", b.video);
    assert!(text.contains(&query), "{text}");
}

#[tokio::test]
async fn a_video_playlist_grows_as_event_then_ends_as_vod_without_going_back() {
    let b = broadcast(12, 0).await;
    let path = format!("/{}/manifest/media-v.m3u8", b.video);
    let live = b.playlist(&path).await;
    assert!(live.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{live}");
    assert_eq!(media_sequence(&live), 0);
    assert!(!live.contains("#EXT-X-ENDLIST"));
    b.writer().update(finish);
    let ended = b.playlist(&path).await;
    assert!(ended.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{ended}");
    assert!(ended.contains("#EXT-X-ENDLIST"), "{ended}");
    assert_eq!(check_reload_text(&live, &ended), Ok(vec![]));
}

#[tokio::test]
async fn an_input_window_lasts_three_target_durations_and_ends_with_endlist() {
    let b = broadcast(12, 0).await;
    let path = format!("/{}/manifest/media-v.m3u8?rec={}", b.input, b.video);
    let first = b.playlist(&path).await;
    assert!(
        !first.contains("#EXT-X-PLAYLIST-TYPE"),
        "a sliding window:\n{first}"
    );
    let shown = extinf_seconds(&first);
    assert!(
        shown >= f64::from(3 * TARGET_SECONDS),
        "{shown} s shown:\n{first}"
    );
    assert!(media_sequence(&first) > 0, "the window slides:\n{first}");
    for _ in 0..PARTS_PER_SEGMENT {
        b.writer().update(add_part);
    }
    let slid = b.playlist(&path).await;
    assert_eq!(check_reload_text(&first, &slid), Ok(vec![]));
    // The publisher stops: the viewer holding `rec` sees the end, not a 204.
    b.writer().update(finish);
    let ended = b.playlist(&path).await;
    assert!(ended.contains("#EXT-X-ENDLIST"), "{ended}");
    assert_eq!(check_reload_text(&slid, &ended), Ok(vec![]));
    // A new request for the input, which is not live (no publisher here), gets 204.
    let (status, body) = b.get(&format!("/{}/manifest/video.m3u8", b.input)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(body, "");
}

#[tokio::test]
async fn dvr_shows_the_whole_recording_as_an_event() {
    let b = broadcast(12, 0).await;
    let path = format!(
        "/{}/manifest/media-v.m3u8?dvrEnabled=true&rec={}",
        b.input, b.video
    );
    let text = b.playlist(&path).await;
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{text}");
    assert_eq!(media_sequence(&text), 0);
    assert!(
        text.contains("seg-00000000.v.m4s?dvrEnabled=true&rec="),
        "{text}"
    );
}

#[tokio::test]
async fn low_latency_lists_parts_and_a_preload_hint() {
    let b = broadcast(4, 2).await;
    let path = format!("/{}/manifest/media-v.m3u8?protocol=llhls", b.video);
    let text = b.playlist(&path).await;
    for expected in [
        "#EXT-X-PART-INF:PART-TARGET=",
        "CAN-BLOCK-RELOAD=YES",
        "#EXT-X-PART:DURATION=",
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg-00000004.v.m4s?protocol=llhls\"",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    // The input's preferLowLatency does the same without the query parameter.
    let plain = b
        .playlist(&format!("/{}/manifest/media-v.m3u8", b.video))
        .await;
    assert!(!plain.contains("#EXT-X-PART"), "{plain}");
    b.app
        .store
        .write_blocking(|c| controld::store::live_inputs::set_prefer_low_latency(c, &b.input, true))
        .unwrap();
    let preferred = b
        .playlist(&format!("/{}/manifest/media-v.m3u8", b.video))
        .await;
    assert!(preferred.contains("#EXT-X-PART:"), "{preferred}");
}

#[tokio::test]
async fn a_blocking_reload_returns_when_its_part_is_listed() {
    let b = broadcast(4, 2).await;
    let path = format!(
        "/{}/manifest/media-v.m3u8?protocol=llhls&_HLS_msn=4&_HLS_part=2",
        b.video
    );
    let request = Request::get(&path).body(Body::empty()).unwrap();
    let held = tokio::spawn(b.app.router.clone().oneshot(request));
    // Let the request reach its wait before the part comes.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(
        !held.is_finished(),
        "answered before part 2 of segment 4 existed"
    );
    b.writer().update(add_part);
    let (status, text) = read(held.await.unwrap().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(check_text(&text), Ok(vec![]), "{text}");
    let open_parts = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-PART:") && l.contains("seg-00000004.v.m4s"))
        .count();
    assert_eq!(open_parts, 3, "parts 0..=2 of segment 4:\n{text}");
    // Already listed: at once.
    let ready = format!(
        "/{}/manifest/media-v.m3u8?protocol=llhls&_HLS_msn=2&_HLS_part=9",
        b.video
    );
    b.playlist(&ready).await;
}

#[tokio::test]
async fn far_future_and_malformed_directives_are_400_naming_them() {
    let b = broadcast(4, 2).await;
    let base = format!("/{}/manifest/media-v.m3u8?protocol=llhls", b.video);
    for (query, named) in [
        ("&_HLS_msn=99", "_HLS_msn=99"),
        ("&_HLS_msn=4&_HLS_part=9", "_HLS_part=9"),
        ("&_HLS_msn=abc", "_HLS_msn"),
        ("&_HLS_msn=-1", "_HLS_msn"),
        ("&_HLS_part=1", "_HLS_part"),
        ("&_HLS_msn=4&_HLS_part=x", "_HLS_part"),
        ("&_HLS_skip=no", "_HLS_skip"),
        ("&protocol=dash", "protocol"),
        ("&rec=nope", "rec"),
    ] {
        let (status, body) = b.get(&format!("{base}{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body.contains(named), "{query}: {body}");
    }
}

#[tokio::test]
async fn a_delta_update_skips_the_old_segments() {
    let b = broadcast(40, 0).await;
    let path = format!("/{}/manifest/media-v.m3u8", b.video);
    let whole = b.playlist(&path).await;
    let delta = b.playlist(&format!("{path}?_HLS_skip=YES")).await;
    assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS="), "{delta}");
    assert!(delta.len() < whole.len() / 2, "{delta}");
}

#[tokio::test]
async fn unknown_ids_files_and_tracks_are_404() {
    let b = broadcast(3, 0).await;
    for path in [
        "/0123456789abcdef0123456789abcdef/manifest/video.m3u8".to_owned(),
        format!("/{}/manifest/media-x.m3u8", b.video),
        format!("/{}/manifest/seg-00000001.ts", b.video),
        format!("/{}/manifest/..%2Findex.log", b.video),
        format!("/{}/manifest/seg-00000001.v.m4s", b.video),
        format!("/{}/manifest/media-v.m3u8?rec={}", b.input, ids::new_uid()),
    ] {
        let (status, body) = b.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
}

#[tokio::test]
async fn segments_are_served_whole_or_as_a_byte_range() {
    let b = broadcast(3, 0).await;
    let name = segment_name(TrackKind::Video, 1);
    let bytes: Vec<u8> = (0..=255u8).cycle().take(4000).collect();
    std::fs::write(b.dir.join(&name), &bytes).unwrap();
    let path = format!("/{}/manifest/{name}", b.video);
    let whole = b.get_response(&path, None).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()[header::CONTENT_TYPE], "video/iso.segment");
    assert!(
        whole.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let part = b.get_response(&path, Some("bytes=1000-1999")).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()[header::CONTENT_RANGE],
        "bytes 1000-1999/4000"
    );
    let body = axum::body::to_bytes(part.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(&body[..], &bytes[1000..2000]);
    let past = b.get_response(&path, Some("bytes=4000-")).await;
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(past.headers()[header::CONTENT_RANGE], "bytes */4000");
    let bad = b.get_response(&path, Some("bytes=9-1")).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn dash_is_dynamic_while_live_and_static_once_finished() {
    let b = broadcast(6, 0).await;
    let path = format!("/{}/manifest/video.mpd", b.video);
    let (status, live) = b.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{live}");
    for expected in [
        "type=\"dynamic\"",
        "availabilityStartTime=",
        "minimumUpdatePeriod=",
        "urn:mpeg:dash:utc:http-iso:2014\" value=\"http://controld.test/time\"",
    ] {
        assert!(live.contains(expected), "{expected} missing:\n{live}");
    }
    let input_path = format!("/{}/manifest/video.mpd?rec={}", b.input, b.video);
    let (_, window) = b.get(&input_path).await;
    assert!(window.contains("timeShiftBufferDepth="), "{window}");
    b.writer().update(finish);
    let (status, ended) = b.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ended.contains("type=\"static\""), "{ended}");
    assert!(ended.contains("mediaPresentationDuration="), "{ended}");
}

#[tokio::test]
async fn the_clock_answers_iso_8601_with_milliseconds() {
    let b = broadcast(1, 0).await;
    let (status, text) = b.get("/time").await;
    assert_eq!(status, StatusCode::OK);
    let ms = parse_iso8601_ms(&text).unwrap_or_else(|| panic!("{text:?}"));
    assert!(ms > T0_MS - 86_400_000 * 365, "{text}");
    assert!(text.ends_with('Z') && text.contains('.'), "{text}");
}

#[tokio::test]
async fn a_finished_recording_is_served_from_its_index_log() {
    let b = recording(videos::STATE_READY).await;
    b.append_log(&log_of(&index(3, 0), true));
    let (status, text) = b.get(&format!("/{}/manifest/video.m3u8", b.video)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("CODECS=\"avc1.64001f,mp4a.40.2\""), "{text}");
    let media = b
        .playlist(&format!("/{}/manifest/media-v.m3u8", b.video))
        .await;
    assert!(media.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{media}");
    assert!(media.contains("#EXT-X-ENDLIST"), "{media}");
    assert_eq!(media_sequence(&media), 0);
    assert_eq!(extinf_seconds(&media), f64::from(3 * TARGET_SECONDS));
    assert!(media.contains("seg-00000002.v.m4s"), "{media}");
    let (status, mpd) = b.get(&format!("/{}/manifest/video.mpd", b.video)).await;
    assert_eq!(status, StatusCode::OK, "{mpd}");
    assert!(mpd.contains("type=\"static\""), "{mpd}");
}

#[tokio::test]
async fn a_recording_without_its_writer_follows_its_index_log_as_it_grows() {
    let b = recording(videos::STATE_LIVE).await;
    let grown = index(13, 0);
    b.append_log(&log_of(&index(12, 0), false));
    let path = format!("/{}/manifest/media-v.m3u8", b.video);
    let first = b.playlist(&path).await;
    assert!(first.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{first}");
    assert!(!first.contains("#EXT-X-ENDLIST"), "{first}");
    b.append_log(&segment_lines(&grown, 12..13));
    let second = b.playlist(&path).await;
    assert!(second.contains("seg-00000012.v.m4s"), "{second}");
    assert_eq!(check_reload_text(&first, &second), Ok(vec![]));
    // A torn last line (the writer is appending it) is not read.
    b.append_log("end");
    assert_eq!(b.playlist(&path).await, second);
    b.append_log("\n");
    let ended = b.playlist(&path).await;
    assert!(ended.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{ended}");
    assert!(ended.contains("#EXT-X-ENDLIST"), "{ended}");
    assert_eq!(check_reload_text(&second, &ended), Ok(vec![]));
}

#[tokio::test]
async fn a_log_a_crash_cut_plays_as_finished_once_its_video_is_ready() {
    let b = recording(videos::STATE_READY).await;
    b.append_log(&log_of(&index(3, 0), false));
    let media = b
        .playlist(&format!("/{}/manifest/media-v.m3u8", b.video))
        .await;
    assert!(media.contains("#EXT-X-ENDLIST"), "{media}");
    // Before its first track record a log lists nothing: a video with no media yet (404, as
    // before its index.log exists), not an error.
    let b = recording(videos::STATE_LIVE).await;
    b.append_log("cfstream-index 1\n");
    let (status, body) = b.get(&format!("/{}/manifest/media-v.m3u8", b.video)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// The details go to the daemon's log, not to viewers.
#[tokio::test]
async fn a_log_that_is_not_an_index_is_an_internal_error() {
    let b = recording(videos::STATE_READY).await;
    b.append_log("cfstream-index 1\nsomething else\n");
    let (status, body) = b.get(&format!("/{}/manifest/media-v.m3u8", b.video)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(!body.contains("something"), "{body}");
}

/// The `vid` a manifest hands on in its URIs.
fn viewer_id(text: &str) -> String {
    let at = text
        .find("vid=")
        .unwrap_or_else(|| panic!("no vid in:\n{text}"))
        + 4;
    text[at..at + 12].to_owned()
}

impl Broadcast {
    async fn live_viewers(&self) -> serde_json::Value {
        let response = self
            .get_response(&format!("/{}/views", self.input), None)
            .await;
        assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let (status, body) = read(response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        json["liveViewers"].clone()
    }

    async fn get_as(&self, path: &str, user_agent: &str) -> StatusCode {
        let request = Request::get(path)
            .header(header::USER_AGENT, user_agent)
            .body(Body::empty())
            .unwrap();
        self.app
            .router
            .clone()
            .oneshot(request)
            .await
            .unwrap()
            .status()
    }
}

#[tokio::test]
async fn viewers_are_told_apart_by_the_vid_their_manifest_hands_on_or_by_browser() {
    let b = broadcast(3, 1).await;
    assert_eq!(b.live_viewers().await, 0);
    let entry = format!("/{}/manifest/video.m3u8?rec={}", b.input, b.video);
    let (_, first) = b.get(&entry).await;
    let vid = viewer_id(&first);
    assert_eq!(b.live_viewers().await, 1);
    // Its media playlist hands the same vid on to every segment and part.
    let media = b
        .playlist(&format!(
            "/{}/manifest/media-v.m3u8?protocol=llhls&rec={}&vid={vid}",
            b.input, b.video
        ))
        .await;
    assert!(
        media.contains(&format!(
            "seg-00000002.v.m4s?protocol=llhls&rec={}&vid={vid}",
            b.video
        )),
        "{media}"
    );
    let segment = format!("/{}/manifest/init-00000000.v.mp4?vid={vid}", b.video);
    std::fs::write(b.dir.join("init-00000000.v.mp4"), b"init").unwrap();
    assert_eq!(b.get(&segment).await.0, StatusCode::OK);
    assert_eq!(b.live_viewers().await, 1, "the same viewer");
    // Another player behind the same address and browser gets its own vid.
    let (_, second) = b.get(&entry).await;
    assert_ne!(viewer_id(&second), vid);
    // Through the video's own uid and DASH: the MPD's Location carries the vid.
    let (_, mpd) = b.get(&format!("/{}/manifest/video.mpd", b.video)).await;
    let location = mpd.split("<Location>").nth(1).expect("a Location");
    assert!(location.starts_with("video.mpd?vid="), "{mpd}");
    assert_eq!(b.live_viewers().await, 3);
    // Without a vid: by address and User-Agent.
    let bare = format!("/{}/manifest/init-00000000.v.mp4", b.video);
    assert_eq!(b.get_as(&bare, "player a").await, StatusCode::OK);
    assert_eq!(b.get_as(&bare, "player a").await, StatusCode::OK);
    assert_eq!(b.live_viewers().await, 4);
    assert_eq!(b.get_as(&bare, "player b").await, StatusCode::OK);
    assert_eq!(b.live_viewers().await, 5);
}

#[tokio::test]
async fn a_finished_recording_has_no_live_viewers_and_its_manifests_no_vid() {
    let b = recording(videos::STATE_READY).await;
    b.append_log(&log_of(&index(3, 0), true));
    let (status, text) = b.get(&format!("/{}/manifest/video.m3u8", b.video)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(!text.contains("vid="), "{text}");
    let (_, mpd) = b.get(&format!("/{}/manifest/video.mpd", b.video)).await;
    assert!(!mpd.contains("Location"), "{mpd}");
    assert_eq!(b.live_viewers().await, 0);
}

#[tokio::test]
async fn hide_live_viewer_count_answers_null_and_bad_ids_are_refused() {
    let b = broadcast(3, 0).await;
    let (_, text) = b.get(&format!("/{}/manifest/video.m3u8", b.video)).await;
    viewer_id(&text);
    assert_eq!(b.live_viewers().await, 1);
    let request = Request::put(format!(
        "/client/v4/accounts/{ACCOUNT}/stream/live_inputs/{}",
        b.input
    ))
    .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
    .header(header::CONTENT_TYPE, "application/json")
    .body(Body::from(
        r#"{"recording": {"hideLiveViewerCount": true}}"#,
    ))
    .unwrap();
    let (status, body) = read(b.app.router.clone().oneshot(request).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(b.live_viewers().await, serde_json::Value::Null);
    let (status, body) = b
        .get(&format!("/{}/manifest/video.m3u8?vid=a%26b", b.video))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("vid"), "{body}");
    let (status, body) = b.get(&format!("/{}/views", b.video)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a video has no live viewer count: {body}"
    );
}

impl Broadcast {
    /// PUTs `body` on the broadcast's live input.
    async fn update_input(&self, body: serde_json::Value) {
        let request = Request::put(format!(
            "/client/v4/accounts/{ACCOUNT}/stream/live_inputs/{}",
            self.input
        ))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
        let (status, body) = read(self.app.router.clone().oneshot(request).await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn page(&self, path: &str, referer: Option<&str>) -> Response {
        let mut request = Request::get(path);
        if let Some(referer) = referer {
            request = request.header(header::REFERER, referer);
        }
        let request = request.body(Body::empty()).unwrap();
        self.app.router.clone().oneshot(request).await.unwrap()
    }
}

#[tokio::test]
async fn the_player_page_plays_its_own_manifest_and_may_be_framed_only_where_allowed() {
    let b = broadcast(3, 0).await;
    let iframe = format!("/{}/iframe?autoplay=true&muted=true", b.input);
    let open = b.page(&iframe, None).await;
    assert_eq!(open.status(), StatusCode::OK);
    let csp = open.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.ends_with("; frame-ancestors *"), "{csp}");
    assert_eq!(open.headers()[header::REFERRER_POLICY], "no-referrer");
    let (_, html) = read(open).await;
    for expected in [
        "<script src=\"/assets/hls.min.js\"></script>",
        "<script src=\"/assets/embed.js\"></script>",
        " autoplay muted controls ",
        "data-manifest=\"manifest/video.m3u8?vid=",
    ] {
        assert!(html.contains(expected), "{expected} missing:\n{html}");
    }

    b.update_input(
        json!({"recording": {"allowedOrigins": ["customer.example", "*.customer.example"]}}),
    )
    .await;
    for page in ["iframe", "watch"] {
        let path = format!("/{}/{page}", b.input);
        let allowed = b.page(&path, Some("https://customer.example/post")).await;
        assert_eq!(allowed.status(), StatusCode::OK, "{page}");
        let csp = allowed.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            csp.ends_with("; frame-ancestors customer.example *.customer.example"),
            "{csp}"
        );
        // Embedded elsewhere: the navigation's Referer is refused, and the CSP would refuse
        // the framing of a page loaded without one.
        let refused = b.page(&path, Some("https://elsewhere.example/")).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{page}");
    }
    let (status, body) = b.get(&format!("/{}/iframe?startTime=soon", b.input)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("startTime"), "{body}");
}

#[tokio::test]
async fn the_player_page_of_a_signed_input_needs_its_token() {
    let b = broadcast(3, 0).await;
    b.update_input(json!({"recording": {"requireSignedURLs": true}}))
        .await;
    let (status, _) = b.get(&format!("/{}/iframe", b.input)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let request = Request::post(format!(
        "/client/v4/accounts/{ACCOUNT}/stream/{}/token",
        b.input
    ))
    .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
    .body(Body::empty())
    .unwrap();
    let (status, body) = read(b.app.router.clone().oneshot(request).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = json["result"]["token"].as_str().unwrap();
    let (status, html) = b.get(&format!("/{token}/iframe")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    // The manifest URL is relative: the token in the page's path plays.
    assert!(
        html.contains("data-manifest=\"manifest/video.m3u8?vid="),
        "{html}"
    );
    let (status, _) = b
        .get(&format!("/{token}/manifest/video.m3u8?rec={}", b.video))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_playlist_url_with_a_vid_keeps_it_in_its_uris_once_the_recording_is_ready() {
    let b = broadcast(3, 0).await;
    let path = format!("/{}/manifest/media-v.m3u8?vid=abcdefghijkl", b.video);
    let live = b.playlist(&path).await;
    assert!(
        live.contains("seg-00000000.v.m4s?vid=abcdefghijkl"),
        "{live}"
    );
    b.writer().update(finish);
    let video = b.video.clone();
    b.app
        .store
        .write_blocking(move |c| videos::mark_ready(c, &video, 12.0, &timefmt::now()))
        .unwrap();
    let ended = b.playlist(&path).await;
    assert!(ended.contains("#EXT-X-ENDLIST"), "{ended}");
    assert_eq!(check_reload_text(&live, &ended), Ok(vec![]));
    // A new viewer of the finished video gets manifests without one.
    let (_, entry) = b.get(&format!("/{}/manifest/video.m3u8", b.video)).await;
    assert!(!entry.contains("vid="), "{entry}");
}
