//! The HTTP API: Cloudflare's v4 API under `/client/v4/accounts/{account_id}/stream`, and
//! playback (`/{uid}/manifest/…`, `/{uid}/lifecycle`, `/{uid}/clip.mp4`,
//! `/{uid}/downloads/default.mp4`).

mod auth;
mod body;
mod downloads;
pub mod envelope;
mod live_inputs;
pub mod openapi;
mod outputs;
pub(crate) mod playback;
mod signed_urls;
mod signing_keys;
pub(crate) mod videos;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::AppState;

/// Request bodies are small JSON documents; anything larger is refused before parsing.
const MAX_BODY: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    let stream = live_inputs::router()
        .merge(videos::router())
        .merge(downloads::router())
        .merge(signing_keys::router())
        .merge(signed_urls::router())
        .merge(webhooks::router())
        .merge(outputs::router());
    Router::new()
        .nest("/client/v4/accounts/{account_id}/stream", stream)
        .merge(playback::router())
        .merge(openapi::router())
        .merge(crate::metrics::router())
        .layer(DefaultBodyLimit::max(MAX_BODY))
}
