//! Playback, without API authentication as on Cloudflare's customer domain, under
//! `/{id}/manifest/` where `id` is a live input (its current broadcast), a video, or a
//! signed-URL token naming one (`sub`): `video.m3u8` (HLS multivariant), `media-v.m3u8` /
//! `media-a.m3u8` (media playlists, LL-HLS), `video.mpd` (DASH), and the CMAF files
//! `init-*.mp4` / `seg-*.m4s` they name; `GET /{id}/lifecycle`; `GET /time` (the clock DASH
//! players synchronise with); `GET /{id}/thumbnails/thumbnail.jpg` (a frame as JPEG,
//! `thumbnail`). Every manifest is rendered from the recording's index
//! (`source`); `access::authorize` applies `requireSignedURLs`, the token's access rules and
//! `allowedOrigins` to every request, media files included.
//!
//! Query parameters: `protocol=llhls` (LL-HLS, also the input's `preferLowLatency`),
//! `dvrEnabled=true` (a live input's whole recording as an EVENT playlist), `rec=<video uid>`
//! (which broadcast of a live input: put into media URIs so that a viewer keeps the broadcast it
//! started on and sees it end with `EXT-X-ENDLIST`), `vid=<viewer id>` (minted for an entry
//! manifest fetched without one and put into every URI it names, so that viewers are counted
//! apart), LL-HLS's `_HLS_msn`, `_HLS_part`, `_HLS_skip`; `duration` (a preview) and `time`
//! with `duration` (a clip, also `clip.m3u8`), see `excerpt`. `GET /{video uid}/clip.mp4` and
//! `/{video uid}/downloads/default.mp4` serve MP4s remuxed from the recording (`mp4`).

mod access;
pub(super) mod clock;
mod dash;
pub(super) mod embed;
mod excerpt;
mod files;
pub(crate) mod forward;
mod hls;
pub(super) mod mp4;
mod recording;
mod source;
mod thumbnail;
mod viewers;
pub(super) mod views;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cfstream_proto::index::{TrackKind, parse_media_name};
use serde_json::json;

use self::access::{ClientAddr, Target, authorize, not_found};
use self::recording::View;
use self::viewers::Viewer;
use super::envelope::{ApiError, codes};
use super::openapi::Envelope;
use crate::AppState;
use crate::store::videos::STATE_LIVE;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{id}/manifest/{file}", get(manifest_file))
        .route("/{id}/lifecycle", get(lifecycle))
        .route("/{id}/views", get(views::views))
        .route("/{id}/iframe", get(embed::iframe))
        .route("/{id}/watch", get(embed::watch))
        .route("/{id}/thumbnails/thumbnail.jpg", get(thumbnail_jpg))
        .route("/{id}/clip.mp4", get(mp4::clip_mp4))
        .route("/{id}/downloads/default.mp4", get(mp4::download_mp4))
        .route("/time", get(clock::now))
}

/// Manifests of a live recording change at every segment (every part with LL-HLS).
const LIVE_MANIFEST_CACHE: &str = "no-cache";
/// A finished recording's manifests never change.
const FINISHED_MANIFEST_CACHE: &str = "public, max-age=3600";

/// 204: a live input that is not live (its URL is static; between broadcasts there is nothing
/// to play).
fn no_content() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
    )
        .into_response()
}

/// A rendered manifest.
fn manifest(text: String, content_type: &'static str, finished: bool) -> Response {
    let cache = if finished {
        FINISHED_MANIFEST_CACHE
    } else {
        LIVE_MANIFEST_CACHE
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        text,
    )
        .into_response()
}

/// Previews and clips are HLS playlists (as on Cloudflare).
fn hls_only() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        codes::INVALID_REQUEST,
        "time and duration (previews, clips) apply to HLS playlists only",
    )
}

#[utoipa::path(
    get,
    operation_id = "playback_manifest_file",
    path = "/{id}/manifest/{file}",
    tag = "playback",
    params(
        ("id" = String, Path, description = "Video or live input uid, or a signed-URL token naming one"),
        ("file" = String, Path, description = "`video.m3u8` (multivariant), `clip.m3u8` (a clip's multivariant: a video uid, `time` and `duration` required), `media-v.m3u8` / `media-a.m3u8` (media playlists), `video.mpd` (DASH), or a CMAF file `init-NNNNNNNN.v.mp4`, `seg-NNNNNNNN.v.m4s` (`.a.` for audio)"),
        ("protocol" = Option<String>, Query, description = "`llhls`: low-latency HLS (parts, blocking reload)"),
        ("dvrEnabled" = Option<bool>, Query, description = "`true`: a live input's whole recording so far (EVENT playlist)"),
        ("rec" = Option<String>, Query, description = "A live input's recording (video uid) to serve; set in the URIs of the input's manifests"),
        ("vid" = Option<String>, Query, description = "Viewer id (12 URL-safe characters), minted by `video.m3u8` / `video.mpd` when absent and set in the URIs they name; counts the viewer for `/{id}/views`"),
        ("duration" = Option<String>, Query, description = "Alone: a preview, the last `30s` / `3m` (at most 5 minutes) of the broadcast or recording, cut at segment boundaries (headers `preview-start-seconds`, `stream-media-id`); with `time`: a clip's length, at most 60 s"),
        ("time" = Option<String>, Query, description = "A clip's start (`600s`, `10m`) from the recording's start; it starts at the keyframe at or before it (whole segments)"),
        ("_HLS_msn" = Option<u64>, Query, description = "LL-HLS blocking reload: hold until this media sequence number is listed"),
        ("_HLS_part" = Option<u64>, Query, description = "LL-HLS blocking reload: and this part of it"),
        ("_HLS_skip" = Option<String>, Query, description = "`YES` or `v2`: a delta update (EXT-X-SKIP)"),
        ("Range" = Option<String>, Header, description = "Media files: one byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`)"),
        ("Origin" = Option<String>, Header, description = "Checked against allowedOrigins"),
    ),
    responses(
        (status = 200, description = "The manifest or file", content(
            (String = "application/vnd.apple.mpegurl"),
            (String = "application/dash+xml"),
            (String = "video/mp4"),
            (String = "video/iso.segment"),
        )),
        (status = 206, description = "A byte range of a media file"),
        (status = 204, description = "A live input that is not live"),
        (status = "4XX", description = "Refused (401 signed URL required or token invalid, 403 origin or access rule), malformed query (400: an `_HLS_*`, `time` or `duration` value, `_HLS_msn` too far ahead, a clip's time past the recording's end), not found (404), unsatisfiable range (416)", body = Envelope<Option<String>>),
        (status = 503, description = "A blocking reload waited three target durations for its part", body = Envelope<Option<String>>),
    ),
    security(()),
)]
async fn manifest_file(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    ClientAddr(client): ClientAddr,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (target, cors) = authorize(&state, &id, client, &headers)?;
    let query = query.unwrap_or_default();
    let mut view = View::parse(&query)?;
    let entry_manifest = matches!(file.as_str(), "video.m3u8" | "video.mpd");
    view.viewer = Viewer::identify(view.viewer, entry_manifest, client, &headers);
    let mut response = match file.as_str() {
        "video.m3u8" => hls::multivariant(&state, &target, &view).await?,
        "clip.m3u8" => hls::clip(&state, &target, &view).await?,
        "media-v.m3u8" => hls::media(&state, &target, &view, TrackKind::Video, &query).await?,
        "media-a.m3u8" => hls::media(&state, &target, &view, TrackKind::Audio, &query).await?,
        "video.mpd" if view.excerpt.is_some() => return Err(hls_only()),
        "video.mpd" => dash::mpd(&state, &target, &view).await?,
        name => match parse_media_name(name) {
            Some(media) => files::serve(&state, &target, &view, name, media, &headers).await?,
            None => return Err(not_found("playback file")),
        },
    };
    response.headers_mut().extend(cors.headers());
    Ok(response)
}

#[utoipa::path(
    get,
    operation_id = "playback_lifecycle",
    path = "/{id}/lifecycle",
    tag = "playback",
    params(("id" = String, Path, description = "Video or live input uid, or a signed-URL token naming one")),
    responses(
        (status = 200, description = "`{isInput, videoUID, live}`", body = Object),
        (status = "4XX", description = "Refused or not found", body = Envelope<Option<String>>),
    ),
    security(()),
)]
async fn lifecycle(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (target, cors) = authorize(&state, &id, client, &headers)?;
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
        cors.headers(),
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
        axum::Json(body),
    )
        .into_response())
}

#[utoipa::path(
    get,
    operation_id = "playback_thumbnail",
    path = "/{id}/thumbnails/thumbnail.jpg",
    tag = "playback",
    params(
        ("id" = String, Path, description = "Video or live input uid, or a signed-URL token naming one"),
        ("time" = Option<String>, Query, description = "Offset from the recording's start: `1.5s`, `68s`, `2m`, `5m2s`, `1h2m3s` or plain seconds. Default: a video's `thumbnailTimestampPct` of its duration; a live input (or a video still recording) its latest complete segment's keyframe"),
        ("width" = Option<u32>, Query, description = "Pixels, 1 to 2000. Only one of width and height: the other follows the frame's aspect ratio; neither: the frame fits 640×640"),
        ("height" = Option<u32>, Query, description = "Pixels, 1 to 2000"),
        ("fit" = Option<String>, Query, description = "With both width and height: `crop` (default: cover the box, cut what overflows), `clip` (the whole frame inside the box, the image smaller than the box), `scale` (stretched to the box), `fill` (the whole frame inside the box, the rest black)"),
        ("Origin" = Option<String>, Header, description = "Checked against allowedOrigins"),
    ),
    responses(
        (status = 200, description = "The frame", content((Vec<u8> = "image/jpeg"))),
        (status = "4XX", description = "Refused (401 signed URL required or token invalid, 403 origin or access rule), a bad query (400 naming the parameter: `time` past the end of the recording, a size outside 1–2000, an unknown `fit`), not found (404: unknown id, a live input not live, no video frame recorded yet)", body = Envelope<Option<String>>),
        (status = 503, description = "Too many thumbnails being made (`--thumbnail-concurrency`): try again after `Retry-After` seconds", body = Envelope<Option<String>>),
    ),
    security(()),
)]
async fn thumbnail_jpg(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientAddr(client): ClientAddr,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (target, cors) = authorize(&state, &id, client, &headers)?;
    let mut response = thumbnail::serve(&state, &target, &query.unwrap_or_default()).await?;
    response.headers_mut().extend(cors.headers());
    Ok(response)
}
