//! `GET /{id}/thumbnails/thumbnail.jpg`: a frame of a video or of a live input's broadcast as
//! JPEG (`crate::thumbnails` decodes it). Without `time`: a video's `thumbnailTimestampPct` of
//! its duration, a live broadcast's latest complete segment (so the picture moves on at every
//! segment).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cfstream_proto::index::{TrackKind, init_name, segment_name};

use super::access::{Target, not_found};
use super::recording::{Recording, View};
use super::source::Source;
use crate::AppState;
use crate::api::envelope::{ApiError, codes};
use crate::store::videos;
use crate::thumbnails::cache::Key;
use crate::thumbnails::frame::{self, DefaultFrame, NotThere};
use crate::thumbnails::geometry::{self, Size};
use crate::thumbnails::request::Request;
use crate::thumbnails::{self, Refused};

/// A finished recording's frames never change.
const FINISHED_CACHE: &str = "public, max-age=86400";
/// A live broadcast's default thumbnail moves on at every segment.
const LIVE_CACHE: &str = "public, max-age=2";
/// Seconds a refused (busy) client is asked to wait.
const RETRY_AFTER_SECONDS: &str = "1";

fn bad_request(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, message)
}

/// The thumbnail `query` asks of `target`.
pub async fn serve(state: &AppState, target: &Target, query: &str) -> Result<Response, ApiError> {
    let request = Request::parse(query).map_err(bad_request)?;
    let recording = Recording::locate(state, target, &View::default())?
        .ok_or_else(|| not_found("live broadcast of this input"))?;
    let default = default_frame(state, target)?;
    let no_frame = || not_found("video frame of this recording (none recorded yet)");
    let source = Source::open(&recording.dir, recording.live)
        .await?
        .ok_or_else(no_frame)?;
    let (located, frame_size) = source.read(|index| {
        let size = Size {
            width: index.stream.width,
            height: index.stream.height,
        };
        (frame::locate(index, request.time, default), size)
    });
    let frame = located.map_err(|e| match e {
        NotThere::NoFrame => no_frame(),
        NotThere::Beyond(duration) => bad_request(format!(
            "query parameter time={:?}: past the end of the recording ({:.3}s)",
            request.time.unwrap_or_default(),
            duration.as_secs_f64()
        )),
    })?;
    if frame_size.width == 0 || frame_size.height == 0 {
        return Err(no_frame());
    }
    let key = Key {
        recording: recording.dir.clone(),
        sequence: frame.sequence,
        frame: frame.frame_key,
        geometry: geometry::plan(frame_size, &request),
    };
    let files = thumbnails::Source {
        init: recording
            .dir
            .join(init_name(TrackKind::Video, frame.discontinuity)),
        segment: recording
            .dir
            .join(segment_name(TrackKind::Video, frame.sequence)),
    };
    let jpeg = match state.thumbnails.render(key, files, frame.offset).await {
        Ok(jpeg) => jpeg,
        Err(Refused::Busy) => return Ok(busy()),
        Err(Refused::Failed(why)) => return Err(ApiError::internal(why)),
    };
    let cache = if frame.finished {
        FINISHED_CACHE
    } else {
        LIVE_CACHE
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        jpeg,
    )
        .into_response())
}

/// Which frame when no `time` is asked: a finished video's `thumbnailTimestampPct`, else
/// (a live input, a video still recording) the live edge.
fn default_frame(state: &AppState, target: &Target) -> Result<DefaultFrame, ApiError> {
    let video = match target {
        Target::Video(v) if v.state != videos::STATE_LIVE => v,
        _ => return Ok(DefaultFrame::LiveEdge),
    };
    let details = state.store.read(|c| videos::details(c, &video.uid))?;
    Ok(DefaultFrame::Fraction(
        details.map_or(0.0, |d| d.thumbnail_timestamp_pct),
    ))
}

/// 503: every decode slot is taken and enough requests wait already.
fn busy() -> Response {
    let mut response = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        codes::INTERNAL,
        "too many thumbnails being made: try again shortly",
    )
    .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response
}
