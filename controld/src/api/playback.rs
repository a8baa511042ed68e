//! Playback, without authentication as on Cloudflare's customer domain:
//! `GET /{uid}/manifest/video.m3u8`, its segments `GET /{uid}/manifest/{name}.ts`, and
//! `GET /{uid}/lifecycle`, where `uid` is a live input (its current broadcast) or a video.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gstcfstream::hls;
use serde_json::json;

use super::envelope::{ApiError, codes};
use crate::store::live_inputs::{self, LiveInput};
use crate::store::videos::{self, STATE_LIVE, Video};
use crate::{AppState, ids};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{id}/manifest/{file}", get(manifest_file))
        .route("/{id}/lifecycle", get(lifecycle))
}

const PLAYLIST: &str = hls::RECORDING_PLAYLIST;
const LIVE_PLAYLIST_CACHE: &str = "public, max-age=1";
const VOD_PLAYLIST_CACHE: &str = "public, max-age=3600";
const SEGMENT_CACHE: &str = "public, max-age=31536000, immutable";

/// What a playback id names.
enum Target {
    Input(LiveInput),
    Video(Video),
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::PLAYBACK_NOT_FOUND,
        format!("{what} not found"),
    )
}

fn resolve(state: &AppState, id: &str) -> Result<Target, ApiError> {
    if !ids::is_uid(id) {
        return Err(not_found("video or live input"));
    }
    let found = state.store.read(|c| {
        if let Some(input) = live_inputs::get_any(c, id)? {
            return Ok(Some(Target::Input(input)));
        }
        Ok(videos::get_any(c, id)?.map(Target::Video))
    })?;
    found.ok_or_else(|| not_found("video or live input"))
}

/// The one place where playback access is decided: signed URLs and `allowedOrigins` (a later
/// issue) plug in here. Returns the `Access-Control-Allow-Origin` value to answer with.
fn authorize(_target: &Target, _headers: &HeaderMap) -> Result<HeaderValue, ApiError> {
    Ok(HeaderValue::from_static("*"))
}

/// Only names of the form cfhlssink writes (`seg-<digits>.ts`): no separators, no dots,
/// hence no way out of the recording directory.
fn is_segment_name(name: &str) -> bool {
    hls::segment_sequence(name).is_some()
}

fn no_content(allow_origin: HeaderValue) -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
    )
        .into_response()
}

async fn manifest_file(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = resolve(&state, &id)?;
    let allow_origin = authorize(&target, &headers)?;
    let (dir, live) = match &target {
        Target::Input(input) => match state.pipelines.current_recording(&input.uid) {
            Some(video) => (state.pipelines.recording_dir(&input.uid, &video), true),
            // An input's URL is static; between broadcasts there is nothing to play.
            None if file == PLAYLIST => return Ok(no_content(allow_origin)),
            None => return Err(not_found("segment")),
        },
        Target::Video(v) => (
            state.pipelines.recording_dir(&v.live_input, &v.uid),
            v.state == STATE_LIVE,
        ),
    };
    let (path, content_type, cache) = if file == PLAYLIST {
        if live {
            (
                dir.join(hls::LIVE_PLAYLIST),
                "application/vnd.apple.mpegurl",
                LIVE_PLAYLIST_CACHE,
            )
        } else {
            (
                dir.join(PLAYLIST),
                "application/vnd.apple.mpegurl",
                VOD_PLAYLIST_CACHE,
            )
        }
    } else if is_segment_name(&file) {
        (dir.join(&file), "video/mp2t", SEGMENT_CACHE)
    } else {
        return Err(not_found("playback file"));
    };
    let opened = match tokio::fs::File::open(&path).await {
        Ok(f) => f.metadata().await.map(|m| (f, m.len())),
        Err(e) => Err(e),
    };
    let (file_handle, len) = match opened {
        Ok(opened) => opened,
        // A broadcast whose first segment is not written yet is "not live yet".
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return if file == PLAYLIST && matches!(target, Target::Input(_)) {
                Ok(no_content(allow_origin))
            } else {
                Err(not_found("playback file"))
            };
        }
        Err(e) => return Err(ApiError::internal(format!("{}: {e}", path.display()))),
    };
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file_handle));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (header::CONTENT_LENGTH, HeaderValue::from(len)),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin),
        ],
        body,
    )
        .into_response())
}

async fn lifecycle(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = resolve(&state, &id)?;
    let allow_origin = authorize(&target, &headers)?;
    let body = match &target {
        Target::Input(input) => json!({
            "isInput": true,
            "videoUID": state.pipelines.current_recording(&input.uid),
            "live": state.pipelines.is_publishing(&input.uid),
        }),
        Target::Video(v) => json!({
            "isInput": false,
            "videoUID": v.uid,
            "live": v.state == STATE_LIVE,
        }),
    };
    Ok((
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        axum::Json(body),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn segment_names_cannot_escape() {
        assert!(super::is_segment_name("seg-00000001.ts"));
        for bad in [
            "../seg-00000001.ts",
            "seg-00000001.ts/",
            "seg-../0000001.ts",
            ".ts",
            "x.m3u8",
        ] {
            assert!(!super::is_segment_name(bad), "{bad}");
        }
    }
}
