//! The CMAF files manifests name: init segments and media segments, whole or as one byte range
//! (LL-HLS parts are byte ranges of their segment file). A segment is written one part at a
//! time, so a range that starts where the file ends (an LL-HLS preload hint) is held until the
//! next part is written, at most three target durations.

use std::io::SeekFrom;
use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cfstream_proto::index::{Progress, TrackKind};
use cfstream_proto::render::blocking::max_hold_ms;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::time::Instant;

use super::access::{Target, not_found};
use super::recording::{Recording, View};
use super::source::Source;
use super::viewers;
use crate::AppState;
use crate::api::envelope::{ApiError, codes};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A `Range` header's one range, inclusive ends as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b` (`b` absent: to the end).
    From { start: u64, end: Option<u64> },
    /// `bytes=-n`: the last `n` bytes.
    Last(u64),
}

/// Reads a `Range` header's value, or says what is wrong with it (only one range of bytes is
/// served).
pub fn parse_range(value: &str) -> Result<ByteRange, String> {
    let spec = value
        .trim()
        .strip_prefix("bytes=")
        .ok_or_else(|| format!("Range {value:?}: only bytes= ranges are served"))?;
    if spec.contains(',') {
        return Err(format!("Range {value:?}: only one range is served"));
    }
    let (start, end) = spec
        .split_once('-')
        .ok_or_else(|| format!("Range {value:?}: expected first-last"))?;
    let number = |text: &str| {
        text.trim()
            .parse::<u64>()
            .map_err(|_| format!("Range {value:?}: {text:?} is not a byte position"))
    };
    match (start.trim().is_empty(), end.trim().is_empty()) {
        (true, false) => Ok(ByteRange::Last(number(end)?)),
        (false, true) => Ok(ByteRange::From {
            start: number(start)?,
            end: None,
        }),
        (false, false) => {
            let (start, end) = (number(start)?, number(end)?);
            if end < start {
                return Err(format!("Range {value:?}: last before first"));
            }
            Ok(ByteRange::From {
                start,
                end: Some(end),
            })
        }
        (true, true) => Err(format!("Range {value:?}: expected first-last")),
    }
}

impl ByteRange {
    /// The (offset, length) of this range in a file of `len` bytes, or `None` when it is not
    /// satisfiable.
    pub fn resolve(self, len: u64) -> Option<(u64, u64)> {
        match self {
            ByteRange::Last(0) => None,
            ByteRange::Last(n) => Some((len.saturating_sub(n), n.min(len))),
            ByteRange::From { start, .. } if start >= len => None,
            ByteRange::From { start, end } => {
                let last = end.map_or(len - 1, |e| e.min(len - 1));
                Some((start, last - start + 1))
            }
        }
    }
}

/// `media` is what `parse_media_name` read from `name`: (track, is init, number).
pub async fn serve(
    state: &AppState,
    target: &Target,
    view: &View,
    name: &str,
    media: (TrackKind, bool, u64),
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let recording = Recording::locate(state, target, view)?.ok_or_else(|| not_found("segment"))?;
    let range =
        match headers.get(header::RANGE) {
            None => None,
            Some(value) => {
                let text = value.to_str().unwrap_or_default();
                Some(parse_range(text).map_err(|m| {
                    ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, m)
                })?)
            }
        };
    let (kind, init, sequence) = media;
    let path = recording.dir.join(name);
    let source = Source::open(&recording.dir, recording.live).await?;
    let complete = init
        || source
            .as_ref()
            .is_none_or(|s| segment_listed(s, kind, sequence));
    if let (Some(ByteRange::From { start, .. }), Some(source), false) = (range, &source, complete) {
        await_bytes(source, kind, &path, start).await;
    }
    let content_type = if init {
        "video/mp4"
    } else {
        "video/iso.segment"
    };
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found("segment")),
        Err(e) => return Err(ApiError::internal(format!("{}: {e}", path.display()))),
    };
    viewers::seen(&recording, &view.viewer);
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?
        .len();
    let Some(range) = range else {
        // A segment still being written is served as far as it is: not cacheable.
        let cache = if complete { IMMUTABLE } else { "no-cache" };
        let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
        return Ok(file_response(
            StatusCode::OK,
            content_type,
            cache,
            len,
            body,
        ));
    };
    let Some((offset, length)) = range.resolve(len) else {
        let total = if complete {
            len.to_string()
        } else {
            "*".into()
        };
        return Ok((
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{total}"))],
        )
            .into_response());
    };
    file.seek(SeekFrom::Start(offset))
        .await
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file.take(length)));
    let mut response = file_response(
        StatusCode::PARTIAL_CONTENT,
        content_type,
        // Bytes once written never change.
        IMMUTABLE,
        length,
        body,
    );
    let total = if complete {
        len.to_string()
    } else {
        "*".into()
    };
    let content_range = format!("bytes {offset}-{}/{total}", offset + length - 1);
    if let Ok(value) = HeaderValue::from_str(&content_range) {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    Ok(response)
}

fn file_response(
    status: StatusCode,
    content_type: &'static str,
    cache: &'static str,
    len: u64,
    body: Body,
) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
            (header::CONTENT_LENGTH, HeaderValue::from(len)),
        ],
        body,
    )
        .into_response()
}

/// Whether segment `sequence` is complete (listed, or the recording is over).
fn segment_listed(source: &Source, kind: TrackKind, sequence: u64) -> bool {
    source.read(|index| {
        index.track(kind).is_none_or(|t| {
            t.progress == Progress::Finished || t.segments.iter().any(|s| s.sequence == sequence)
        })
    })
}

/// Holds until the segment file is longer than `start` or the segment is complete, at most
/// three target durations (then the range is answered as it stands).
async fn await_bytes(source: &Source, kind: TrackKind, path: &Path, start: u64) {
    let Some(mut changes) = source.subscribe() else {
        return;
    };
    let hold = source.read(|index| index.track(kind).map_or(0, max_hold_ms));
    let deadline = Instant::now() + Duration::from_millis(hold);
    loop {
        let len = tokio::fs::metadata(path).await.map_or(0, |m| m.len());
        if len > start {
            return;
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_within_the_file() {
        let from = |start, end| ByteRange::From { start, end };
        assert_eq!(parse_range("bytes=0-99"), Ok(from(0, Some(99))));
        assert_eq!(parse_range("bytes=100-"), Ok(from(100, None)));
        assert_eq!(parse_range("bytes=-10"), Ok(ByteRange::Last(10)));
        for bad in [
            "bytes=5-1",
            "bytes=a-",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=-",
        ] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
        assert_eq!(from(0, Some(99)).resolve(50), Some((0, 50)));
        assert_eq!(from(10, None).resolve(50), Some((10, 40)));
        assert_eq!(from(50, None).resolve(50), None);
        assert_eq!(ByteRange::Last(10).resolve(50), Some((40, 10)));
        assert_eq!(ByteRange::Last(99).resolve(50), Some((0, 50)));
        assert_eq!(ByteRange::Last(0).resolve(50), None);
    }
}
