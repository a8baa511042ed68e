//! Playback of what another node holds, with several nodes on one database: a live input's
//! requests go to the node holding its lease (the live edge, parts and blocking reloads are
//! there), a video's to the node that recorded it (its files are there), answered as that
//! node answers them. A forwarded request is marked and always served where it lands, so a
//! request crosses at most one hop. With SQLite (one node) nothing is looked up.
//!
//! With a bucket (`--media-url`), a finished recording whose node is gone, or that is missing
//! from this node's disk, is fetched from the bucket's copy onto this node's disk (once) and
//! served from there. A recording still being written is not: its copy lags behind its live
//! edge, so only its node serves it.

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::AppState;
use crate::api::envelope::{ApiError, codes};
use crate::media_bucket::MediaBucket;
use crate::pipeline::leases::{NODE_SEEN_WITHIN, now_ms};
use crate::store::{leases, nodes, videos};

/// Marks a request one node forwarded to another.
const FORWARDED: HeaderName = HeaderName::from_static("x-cfstream-forwarded-by");

/// Headers that belong to one connection, not to the request or response.
const HOP_BY_HOP: [&str; 5] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// The middleware: forwards the playback requests of what another node holds.
pub async fn to_holder(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let bucket = state.pipelines.bucket().cloned();
    let shared = state.store.engine() == "postgresql";
    if !(shared || bucket.is_some()) || request.headers().contains_key(&FORWARDED) {
        return next.run(request).await;
    }
    let Some(id) = playback_id(request.uri().path()) else {
        return next.run(request).await;
    };
    let uid = uid_of(id);
    let rec = request.uri().query().and_then(rec_param).map(str::to_owned);
    let video = rec.as_deref().unwrap_or(&uid);
    let gone = match holder(&state, &uid, rec.as_deref()) {
        Ok(Some(Holder::At(url))) => return forward(&state, &url, request).await,
        Ok(Some(Holder::Gone(node))) => Some(node),
        Ok(None) => None,
        Err(e) => return e.into_response(),
    };
    let fetched = match &bucket {
        Some(bucket) => from_bucket(&state, bucket, video).await,
        None => Err("no bucket is configured (--media-url)".into()),
    };
    match (gone, fetched) {
        (None, Ok(_) | Err(_)) | (Some(_), Ok(true)) => next.run(request).await,
        (Some(node), Ok(false)) => unreachable(&node, "it is still being recorded"),
        (Some(node), Err(e)) => unreachable(&node, &e),
    }
}

fn unreachable(node: &str, why: &str) -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        codes::INTERNAL,
        format!("node {node}, which holds this recording, is not reachable ({why})"),
    )
    .into_response()
}

/// Makes sure a finished recording named `video_uid` is on this node's disk; `Ok(false)` for
/// a recording still being written (and for a uid that names no video: a live input's).
async fn from_bucket(
    state: &AppState,
    bucket: &MediaBucket,
    video_uid: &str,
) -> Result<bool, String> {
    let video = state.store.read(|c| videos::get_any(c, video_uid));
    let video = video.map_err(|e| e.to_string())?;
    let Some(video) = video.filter(|v| v.state == videos::STATE_READY) else {
        return Ok(false);
    };
    match bucket.fetch(&video.live_input, &video.uid).await {
        Ok(()) => Ok(true),
        Err(e) => {
            tracing::warn!(
                video = video.uid,
                "fetching a recording from the bucket: {e}"
            );
            Err(format!("fetching its copy from {}: {e}", bucket.url()))
        }
    }
}

/// The `{id}` of the playback paths that read media: manifests and media files, thumbnails,
/// MP4s and viewer counts.
fn playback_id(path: &str) -> Option<&str> {
    let (id, rest) = path.strip_prefix('/')?.split_once('/')?;
    let reads_media = rest.starts_with("manifest/")
        || rest.starts_with("thumbnails/")
        || rest.starts_with("downloads/")
        || rest == "clip.mp4"
        || rest == "views";
    reads_media.then_some(id)
}

/// A uid, or the `sub` of a signed-URL token (read unverified: the holder verifies it).
fn uid_of(id: &str) -> String {
    let mut parts = id.split('.');
    let (Some(_), Some(payload), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return id.to_owned();
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
        .and_then(|claims| claims["sub"].as_str().map(str::to_owned))
        .unwrap_or_else(|| id.to_owned())
}

fn rec_param(query: &str) -> Option<&str> {
    query.split('&').find_map(|kv| kv.strip_prefix("rec="))
}

enum Holder {
    At(String),
    Gone(String),
}

/// The other node holding what `uid` (and `rec`, a broadcast of a live input) names, if any.
fn holder(state: &AppState, uid: &str, rec: Option<&str>) -> Result<Option<Holder>, ApiError> {
    let me = state.pipelines.node_id();
    let now = now_ms();
    let seen_since = now - NODE_SEEN_WITHIN.as_millis() as i64;
    Ok(state.store.read(|c| {
        let node = match rec {
            Some(video) => nodes::of_video(c, video)?,
            None => match leases::owner(c, uid, now)? {
                Some(owner) => Some(owner),
                None => nodes::of_video(c, uid)?,
            },
        };
        let Some(node) = node.filter(|n| n != me) else {
            return Ok(None);
        };
        Ok(Some(match nodes::url_of(c, &node, seen_since)? {
            Some(url) => Holder::At(url),
            None => Holder::Gone(node),
        }))
    })?)
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            // The holder answers redirects itself; the player follows them.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client with default TLS settings")
    })
}

async fn forward(state: &AppState, base: &str, request: Request) -> Response {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut outgoing = client().request(request.method().clone(), &url);
    for (name, value) in request.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            outgoing = outgoing.header(name, value);
        }
    }
    let node = HeaderValue::from_str(state.pipelines.node_id())
        .unwrap_or(HeaderValue::from_static("node"));
    let answered = match outgoing.header(FORWARDED, node).send().await {
        Ok(answered) => answered,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_GATEWAY,
                codes::INTERNAL,
                format!("forwarding to the node holding this recording ({base}): {e}"),
            )
            .into_response();
        }
    };
    let mut response = Response::builder().status(answered.status());
    for (name, value) in answered.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(answered.bytes_stream()))
        .unwrap_or_else(|e| ApiError::internal(e).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_paths_name_their_id_and_tokens_their_sub() {
        assert_eq!(playback_id("/abc/manifest/video.m3u8"), Some("abc"));
        assert_eq!(playback_id("/abc/clip.mp4"), Some("abc"));
        assert_eq!(playback_id("/abc/lifecycle"), None);
        assert_eq!(playback_id("/client/v4/accounts/a/stream"), None);
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"sub":"u1"}"#);
        assert_eq!(uid_of(&format!("h.{payload}.s")), "u1");
        assert_eq!(uid_of("u2"), "u2");
        assert_eq!(rec_param("protocol=llhls&rec=v9"), Some("v9"));
    }
}
