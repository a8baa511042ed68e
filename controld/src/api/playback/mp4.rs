//! MP4 files of a recording, remuxed on request from its CMAF files by
//! `cfstream_proto::mp4file` (no re-encoding, no temporary copy): a clip
//! (`GET /{video uid}/clip.mp4?time=&duration=&filename=`, whole segments as its manifest) and
//! the download of a whole finished recording (`GET /{video uid}/downloads/default.mp4`, once
//! `POST …/downloads` created it). The `moov` is built from the segment files' `moof`s (read
//! without their `mdat`s), then the file is streamed from the segment files; a `Range` is
//! answered from the same layout, kept for the next requests (`LAYOUTS`).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cfstream_proto::index::excerpt::main_track;
use cfstream_proto::index::{RecordingIndex, TrackKind, init_name, segment_name};
use cfstream_proto::mp4file::{Mp4File, Mp4Writer, box_header};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::access::{ClientAddr, Target, authorize, authorize_download, not_found};
use super::excerpt::{Excerpt, clip_range};
use super::files::parse_range;
use super::recording::{Recording, View};
use super::source::Source;
use crate::AppState;
use crate::api::envelope::{ApiError, codes};

/// The file in a recording's directory that says its download was created (`POST
/// …/downloads`); retention removes it with the directory.
pub const DOWNLOAD_MARKER: &str = "download.default";
/// The longest recording a download is made of, as on Cloudflare.
pub const MAX_DOWNLOAD_SECONDS: f64 = 4.0 * 3600.0;
/// Bytes read from a segment file per body frame.
const READ_SIZE: u64 = 256 * 1024;
/// A `moof` larger than this is not one cfhlssink wrote.
const MAX_MOOF: u64 = 4 * 1024 * 1024;

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, message)
}

/// `filename=`: letters, digits, `.`, `_`, `-`, at most 128 (it goes into a header).
fn parse_filename(query: &str) -> Result<Option<String>, ApiError> {
    let value = query
        .split('&')
        .filter_map(|p| p.strip_prefix("filename="))
        .next_back();
    let Some(value) = value else {
        return Ok(None);
    };
    let fits = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
    if value.is_empty() || value.len() > 128 || !value.bytes().all(fits) {
        return Err(bad_request(format!(
            "query parameter filename={value:?}: expected 1 to 128 letters, digits, '.', '_' or '-'"
        )));
    }
    Ok(Some(value.to_owned()))
}

fn video_only(target: &Target) -> Result<(), ApiError> {
    match target {
        Target::Video(_) => Ok(()),
        Target::Input(_) => Err(bad_request(
            "an MP4 names a video uid (the recording), not a live input",
        )),
    }
}

#[utoipa::path(
    get,
    operation_id = "playback_clip_mp4",
    path = "/{id}/clip.mp4",
    tag = "playback",
    params(
        ("id" = String, Path, description = "Video uid, or a signed-URL token naming one"),
        ("time" = String, Query, description = "Start, seconds (`600s`) or minutes (`10m`) from the recording's start; the clip starts at the keyframe at or before it"),
        ("duration" = String, Query, description = "Length, `1s` to `60s` (or `1m`)"),
        ("filename" = Option<String>, Query, description = "The attachment's file name (letters, digits, `._-`); default `clip.mp4`"),
        ("Range" = Option<String>, Header, description = "One byte range"),
    ),
    responses(
        (status = 200, description = "The clip: one progressive MP4 (video and audio), an attachment", content_type = "video/mp4"),
        (status = 206, description = "A byte range of it"),
        (status = "4XX", description = "Bad time, duration or filename, or time past the recording's end (400), refused (401, 403), not found (404), unsatisfiable range (416)", body = crate::api::openapi::Envelope<Option<String>>),
    ),
    security(()),
)]
pub(in crate::api) async fn clip_mp4(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    ClientAddr(client): ClientAddr,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (target, cors) = authorize(&state, &id, client, &headers)?;
    video_only(&target)?;
    let query = query.unwrap_or_default();
    let view = View::parse(&query)?;
    let Some(Excerpt::Clip { time, seconds }) = view.excerpt else {
        return Err(bad_request(
            "clip.mp4 needs the query parameters time and duration (e.g. time=600s&duration=30s)",
        ));
    };
    let filename = parse_filename(&query)?.unwrap_or_else(|| "clip.mp4".into());
    let (recording, source) = open(&state, &target, &view).await?;
    let sequences = source.read(|index| clip_range(index, time, seconds))?;
    let mut response = respond(&recording, &source, sequences, &filename, &headers).await?;
    response.headers_mut().extend(cors.headers());
    Ok(response)
}

#[utoipa::path(
    get,
    operation_id = "playback_download_mp4",
    path = "/{id}/downloads/default.mp4",
    tag = "playback",
    params(
        ("id" = String, Path, description = "Video uid, or a signed-URL token naming one (with `downloadable: true` when the video requires signed URLs)"),
        ("filename" = Option<String>, Query, description = "The attachment's file name; default `<uid>.mp4`"),
        ("Range" = Option<String>, Header, description = "One byte range"),
    ),
    responses(
        (status = 200, description = "The whole recording as one progressive MP4, an attachment", content_type = "video/mp4"),
        (status = 206, description = "A byte range of it"),
        (status = "4XX", description = "Refused (401, 403: a signed URL's token without `downloadable`), no download created (404), unsatisfiable range (416)", body = crate::api::openapi::Envelope<Option<String>>),
    ),
    security(()),
)]
pub(in crate::api) async fn download_mp4(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    ClientAddr(client): ClientAddr,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (target, cors) = authorize_download(&state, &id, client, &headers)?;
    video_only(&target)?;
    let view = View::default();
    let recording =
        Recording::locate(&state, &target, &view)?.ok_or_else(|| not_found("download"))?;
    let marker = tokio::fs::try_exists(recording.dir.join(DOWNLOAD_MARKER)).await;
    if recording.live || !marker.unwrap_or(false) {
        return Err(not_found("download"));
    }
    let filename = parse_filename(&query.unwrap_or_default())?
        .unwrap_or_else(|| format!("{}.mp4", recording.video_uid));
    let (recording, source) = open(&state, &target, &view).await?;
    let sequences = source
        .read(whole_recording)
        .ok_or_else(|| not_found("download"))?;
    let mut response = respond(&recording, &source, sequences, &filename, &headers).await?;
    response.headers_mut().extend(cors.headers());
    Ok(response)
}

/// Every listed segment of the main track.
fn whole_recording(index: &RecordingIndex) -> Option<RangeInclusive<u64>> {
    let track = main_track(index)?;
    Some(track.segments.front()?.sequence..=track.segments.back()?.sequence)
}

async fn open(
    state: &AppState,
    target: &Target,
    view: &View,
) -> Result<(Recording, Source), ApiError> {
    match super::hls::open(state, target, view).await? {
        Ok(found) => Ok(found),
        Err(_) => Err(not_found("recording")),
    }
}

/// Builds the file of segments `sequences` and answers with it (or the range asked for).
async fn respond(
    recording: &Recording,
    source: &Source,
    sequences: RangeInclusive<u64>,
    filename: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let range = match headers.get(header::RANGE) {
        None => None,
        Some(value) => Some(parse_range(value.to_str().unwrap_or_default()).map_err(bad_request)?),
    };
    let layout = layout(recording, source, sequences).await?;
    let size = layout.mp4.size;
    let (status, offset, length) = match range {
        None => (StatusCode::OK, 0, size),
        Some(range) => match range.resolve(size) {
            Some((offset, length)) => (StatusCode::PARTIAL_CONTENT, offset, length),
            None => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                )
                    .into_response());
            }
        },
    };
    let body = body(layout, offset, offset + length);
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("video/mp4")),
            (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
            (header::CONTENT_LENGTH, HeaderValue::from(length)),
        ],
        body,
    )
        .into_response();
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(value) =
            HeaderValue::from_str(&format!("bytes {offset}-{}/{size}", offset + length - 1))
    {
        h.insert(header::CONTENT_RANGE, value);
    }
    Ok(response)
}

/// Layouts built last, so that the range requests of one player (and several players of one
/// clip) read the segment files' `moof`s once. A segment once listed never changes, so a
/// layout stays right as long as its recording exists.
static LAYOUTS: LazyLock<Mutex<Layouts>> = LazyLock::new(|| Mutex::new(HashMap::new()));
/// Layouts kept at most (a 4 h download's is about 9 MB).
const LAYOUT_CAPACITY: usize = 4;

/// A recording's directory and the segments of the file.
type LayoutKey = (PathBuf, u64, u64);
/// Each layout with when it was last used.
type Layouts = HashMap<LayoutKey, (Arc<Layout>, Instant)>;

fn layouts() -> std::sync::MutexGuard<'static, Layouts> {
    LAYOUTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The layout of segments `sequences` of the recording, from the cache or built.
async fn layout(
    recording: &Recording,
    source: &Source,
    sequences: RangeInclusive<u64>,
) -> Result<Arc<Layout>, ApiError> {
    let key = (recording.dir.clone(), *sequences.start(), *sequences.end());
    if let Some((layout, used)) = layouts().get_mut(&key) {
        *used = Instant::now();
        return Ok(layout.clone());
    }
    let plan = source.read(|index| plan(index, &sequences));
    let dir = recording.dir.clone();
    let (mp4, files) = tokio::task::spawn_blocking(move || build(&dir, plan))
        .await
        .map_err(ApiError::internal)??;
    let layout = Arc::new(Layout::new(mp4, files));
    let mut cache = layouts();
    if cache.len() >= LAYOUT_CAPACITY
        && let Some(oldest) = (cache.iter())
            .min_by_key(|(_, (_, used))| *used)
            .map(|(k, _)| k.clone())
    {
        cache.remove(&oldest);
    }
    cache.insert(key, (layout.clone(), Instant::now()));
    Ok(layout)
}

/// One segment of a track in the file: its init and segment file names.
struct Piece {
    kind: TrackKind,
    run: u64,
    segment: String,
}

/// The segments of `sequences`, video then audio for each (the `mdat` interleaves them).
fn plan(index: &RecordingIndex, sequences: &RangeInclusive<u64>) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let tracks: Vec<_> = [TrackKind::Video, TrackKind::Audio]
        .into_iter()
        .filter_map(|kind| index.track(kind))
        .collect();
    let first = |t: &cfstream_proto::index::TrackIndex| {
        t.segments
            .partition_point(|s| s.sequence < *sequences.start())
    };
    let mut cursors: Vec<usize> = tracks.iter().map(|t| first(t)).collect();
    for sequence in sequences.clone() {
        for (track, cursor) in tracks.iter().zip(cursors.iter_mut()) {
            let Some(segment) = track
                .segments
                .get(*cursor)
                .filter(|s| s.sequence == sequence)
            else {
                continue;
            };
            *cursor += 1;
            pieces.push(Piece {
                kind: track.kind,
                run: segment.discontinuity_number,
                segment: segment_name(track.kind, sequence),
            });
        }
    }
    pieces
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("{}: {e}", path.display()))
}

/// Reads the inits and the `moof`s of `pieces` (blocking).
fn build(dir: &Path, pieces: Vec<Piece>) -> Result<(Mp4File, Vec<PathBuf>), ApiError> {
    let mut writer = Mp4Writer::new();
    let mut inits = HashMap::new();
    let mut files = Vec::with_capacity(pieces.len());
    for piece in pieces {
        let key = (piece.kind, piece.run);
        let (track, description) = match inits.get(&key) {
            Some(found) => *found,
            None => {
                let path = dir.join(init_name(piece.kind, piece.run));
                let bytes = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
                let found = writer.add_init(&bytes).map_err(|e| io_error(&path, e))?;
                *inits.entry(key).or_insert(found)
            }
        };
        let path = dir.join(&piece.segment);
        add_moofs(&mut writer, track, description, files.len(), &path)
            .map_err(|e| io_error(&path, e))?;
        files.push(path);
    }
    let mp4 = writer.finish().map_err(ApiError::internal)?;
    Ok((mp4, files))
}

/// Hands every `moof` of the segment file at `path` to the writer, skipping the `mdat`s.
fn add_moofs(
    writer: &mut Mp4Writer,
    track: usize,
    description: u32,
    number: usize,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut at = 0;
    while at < len {
        let mut head = [0u8; 16];
        let n = (len - at).min(16) as usize;
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(&mut head[..n])?;
        let header = box_header(&head[..n], len - at).ok_or("a torn box")?;
        if &header.kind == b"moof" {
            if header.size > MAX_MOOF {
                return Err("a moof larger than any part's".into());
            }
            let mut moof = vec![0; header.size as usize];
            file.seek(SeekFrom::Start(at))?;
            file.read_exact(&mut moof)?;
            writer.add_fragment(track, description, number, at, &moof)?;
        }
        at += header.size;
    }
    Ok(())
}

/// A built file and where its chunks start in it.
struct Layout {
    mp4: Mp4File,
    files: Vec<PathBuf>,
    /// Byte position in the file of each chunk.
    starts: Vec<u64>,
}

impl Layout {
    fn new(mp4: Mp4File, files: Vec<PathBuf>) -> Layout {
        let mut at = mp4.header.len() as u64;
        let starts = (mp4.chunks.iter())
            .map(|c| {
                let start = at;
                at += c.len;
                start
            })
            .collect();
        Layout { mp4, files, starts }
    }
}

/// Bytes `[from, to)` of the file, read as the body is sent.
fn body(layout: Arc<Layout>, from: u64, to: u64) -> Body {
    let state = (layout, from, None::<(usize, tokio::fs::File)>);
    let stream = futures_util::stream::unfold(state, move |(layout, at, open)| async move {
        if at >= to {
            return None;
        }
        let read = next_bytes(&layout, at, to, open).await;
        match read {
            Ok((bytes, open)) => {
                let next = at + bytes.len() as u64;
                Some((Ok(bytes), (layout, next, open)))
            }
            Err(e) => Some((Err(e), (layout, to, None))),
        }
    });
    Body::from_stream(stream)
}

/// The bytes from `at` on (up to `to`, at most one chunk's, at most `READ_SIZE`), reusing the
/// open segment file when it is the same.
async fn next_bytes(
    layout: &Layout,
    at: u64,
    to: u64,
    open: Option<(usize, tokio::fs::File)>,
) -> std::io::Result<(Bytes, Option<(usize, tokio::fs::File)>)> {
    let header = &layout.mp4.header;
    if at < header.len() as u64 {
        let end = to.min(header.len() as u64) as usize;
        return Ok((Bytes::copy_from_slice(&header[at as usize..end]), open));
    }
    let i = layout.starts.partition_point(|&s| s <= at) - 1;
    let chunk = layout.mp4.chunks[i];
    let within = at - layout.starts[i];
    let n = (chunk.len - within).min(to - at).min(READ_SIZE);
    let mut file = match open {
        Some((number, file)) if number == chunk.file => file,
        _ => tokio::fs::File::open(&layout.files[chunk.file]).await?,
    };
    file.seek(SeekFrom::Start(chunk.offset + within)).await?;
    let mut buf = vec![0; n as usize];
    file.read_exact(&mut buf).await?;
    Ok((Bytes::from(buf), Some((chunk.file, file))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_plain_names() {
        assert_eq!(parse_filename("time=1s").unwrap(), None);
        assert_eq!(
            parse_filename("a=1&filename=goal-2.mp4")
                .unwrap()
                .as_deref(),
            Some("goal-2.mp4")
        );
        for bad in [
            "filename=",
            "filename=a%22b",
            "filename=../x",
            "filename=a b",
        ] {
            assert!(parse_filename(bad).is_err(), "{bad}");
        }
    }
}
