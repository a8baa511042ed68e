//! The HTTP API: Cloudflare's v4 API under `/client/v4/accounts/{account_id}/stream`, and
//! playback (`/{uid}/manifest/…`, `/{uid}/lifecycle`).

mod auth;
mod body;
pub mod envelope;
mod keys;
mod live_inputs;
pub mod openapi;
mod outputs;
mod playback;
mod tokens;
pub(crate) mod videos;
mod webhook;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::AppState;

/// Request bodies are small JSON documents; anything larger is refused before parsing.
const MAX_BODY: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    let stream = live_inputs::router()
        .merge(videos::router())
        .merge(keys::router())
        .merge(tokens::router())
        .merge(webhook::router())
        .merge(outputs::router());
    Router::new()
        .nest("/client/v4/accounts/{account_id}/stream", stream)
        .merge(playback::router())
        .merge(openapi::router())
        .merge(crate::metrics::router())
        .layer(DefaultBodyLimit::max(MAX_BODY))
}
