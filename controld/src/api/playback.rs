//! Playback, without API authentication as on Cloudflare's customer domain:
//! `GET /{uid}/manifest/video.m3u8`, its segments `GET /{uid}/manifest/{name}.ts`, and
//! `GET /{uid}/lifecycle`, where `uid` is a live input (its current broadcast) or a video, or
//! a signed-URL token naming one (`sub`). `authorize` applies `requireSignedURLs`, the token's
//! access rules and `allowedOrigins` to every one of these requests, segments included.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gstcfstream::hls;
use serde_json::json;

use super::envelope::{ApiError, codes};
use super::openapi::Envelope;
use crate::access::origins::{self, OriginCheck};
use crate::access::rules::{self, Verdict};
use crate::access::stored_tokens::{self, Refusal};
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

/// The peer's address (absent when the app is served without connect info, as in unit tests:
/// then no `ip.src` rule matches).
struct ClientAddr(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, codes::SIGNED_URL_INVALID, message)
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, codes::PLAYBACK_FORBIDDEN, message)
}

/// CORS headers for an authorized request.
struct Cors {
    allow_origin: Option<HeaderValue>,
    /// The answer depends on `Origin`/`Referer`: caches must key on them.
    varies: bool,
}

impl Cors {
    fn headers(self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(origin) = self.allow_origin {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        if self.varies {
            h.insert(header::VARY, HeaderValue::from_static("Origin, Referer"));
        }
        h
    }
}

/// The one place where playback access is decided. `id` is a uid or a signed-URL token.
/// Returns what it names and the CORS headers to answer with.
fn authorize(
    state: &AppState,
    id: &str,
    client: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<(Target, Cors), ApiError> {
    let (target, signed, owner_preview) = if ids::is_uid(id) {
        (resolve(state, id)?, false, false)
    } else if stored_tokens::looks_like_token(id) {
        let (target, owner_preview) = resolve_token(state, id, client)?;
        (target, true, owner_preview)
    } else {
        return Err(not_found("video or live input"));
    };
    let (require_signed, mut allowed) = match &target {
        Target::Input(i) => (
            i.recording.require_signed_urls,
            i.recording.allowed_origins.as_deref(),
        ),
        Target::Video(v) => (v.require_signed_urls, v.allowed_origins.as_deref()),
    };
    if require_signed && !signed {
        return Err(unauthorized(
            "this video requires a signed URL: play /{token}/manifest/video.m3u8 with a token \
             from POST /stream/{uid}/token",
        ));
    }
    // The account owner's preview token plays wherever it is used.
    if owner_preview {
        allowed = None;
    }
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let cors = match origins::check(allowed, header(header::ORIGIN), header(header::REFERER)) {
        OriginCheck::Unrestricted => Cors {
            allow_origin: Some(HeaderValue::from_static("*")),
            varies: false,
        },
        OriginCheck::Allowed(origin) => Cors {
            allow_origin: origin.and_then(|o| HeaderValue::from_str(&o).ok()),
            varies: true,
        },
        OriginCheck::Refused(what) => {
            return Err(forbidden(format!(
                "{what} is not in this video's allowedOrigins"
            )));
        }
    };
    Ok((target, cors))
}

/// Verifies a signed-URL token and returns what its `sub` names, which must belong to the
/// account of the key that signed it, and whether it is an owner preview token.
fn resolve_token(
    state: &AppState,
    token: &str,
    client: Option<IpAddr>,
) -> Result<(Target, bool), ApiError> {
    let verified = match stored_tokens::verify(&state.store, token) {
        Ok(verified) => verified,
        Err(Refusal::Token(e)) => return Err(unauthorized(e.to_string())),
        Err(Refusal::Store(e)) => return Err(e.into()),
    };
    let claims = verified.claims;
    let target = resolve(state, &claims.sub)?;
    let account = match &target {
        Target::Input(i) => &i.account_id,
        Target::Video(v) => &v.account_id,
    };
    if *account != verified.account_id {
        return Err(forbidden(
            "the token's sub is not a video or live input of the signing key's account",
        ));
    }
    match rules::evaluate(&claims.access_rules, client) {
        Verdict::Allowed => Ok((target, claims.owner_preview)),
        Verdict::Refused(why) => Err(forbidden(why)),
    }
}

/// Only names of the form cfhlssink writes (`seg-<digits>.ts`): no separators, no dots,
/// hence no way out of the recording directory.
fn is_segment_name(name: &str) -> bool {
    hls::segment_sequence(name).is_some()
}

fn no_content(cors: Cors) -> Response {
    (
        StatusCode::NO_CONTENT,
        cors.headers(),
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
    )
        .into_response()
}

#[utoipa::path(
    get,
    operation_id = "playback_manifest_file",
    path = "/{id}/manifest/{file}",
    tag = "playback",
    params(
        ("id" = String, Path, description = "Video or live input uid, or a signed-URL token naming one"),
        ("file" = String, Path, description = "`video.m3u8` or a segment `seg-NNNNNNNN.ts`"),
        ("Origin" = Option<String>, Header, description = "Checked against allowedOrigins"),
    ),
    responses(
        (status = 200, description = "The playlist or segment", content(
            (String = "application/vnd.apple.mpegurl"),
            (String = "video/mp2t"),
        )),
        (status = 204, description = "A live input that is not live"),
        (status = "4XX", description = "Refused (401 signed URL required or token invalid, 403 origin or access rule) or not found", body = Envelope<Option<String>>),
    ),
    security(()),
)]
async fn manifest_file(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (target, cors) = authorize(&state, &id, client, &headers)?;
    let (dir, live) = match &target {
        Target::Input(input) => match state.pipelines.current_recording(&input.uid) {
            Some(video) => (state.pipelines.recording_dir(&input.uid, &video), true),
            // An input's URL is static; between broadcasts there is nothing to play.
            None if file == PLAYLIST => return Ok(no_content(cors)),
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
                Ok(no_content(cors))
            } else {
                Err(not_found("playback file"))
            };
        }
        Err(e) => return Err(ApiError::internal(format!("{}: {e}", path.display()))),
    };
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file_handle));
    Ok((
        cors.headers(),
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (header::CONTENT_LENGTH, HeaderValue::from(len)),
        ],
        body,
    )
        .into_response())
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
