//! controld: Cloudflare Stream Live on your own machine.
//!
//! `app` is the whole HTTP surface: the v4 API and playback (`api`), and the dashboard.
//! `pipeline` owns GStreamer and the RTMP listeners; `store` holds every SQL statement.

pub mod access;
pub mod api;
pub mod bootstrap;
mod dashboard;
pub mod ids;
pub mod leftovers;
pub mod logging;
pub mod media_bucket;
pub mod metrics;
pub mod pipeline;
pub mod retention;
pub mod store;
pub mod thumbnails;
pub mod timefmt;
pub mod tls;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::pipeline::PipelineManager;
use crate::store::Store;

/// Base URLs handed out in API objects.
#[derive(Debug, Clone)]
pub struct PublicUrls {
    /// `http://host:port` (no trailing slash), base of playback URLs.
    pub http: String,
    /// `rtmp://host:port/live/`
    pub rtmp: String,
    /// `rtmps://host:port/live/` when an RTMPS listener is configured.
    pub rtmps: Option<String>,
    /// `srt://host:port` when an SRT listener is configured.
    pub srt: Option<String>,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub pipelines: PipelineManager,
    pub urls: Arc<PublicUrls>,
    /// `totalStorageMinutesLimit` of `GET /stream/storage-usage` (`--storage-minutes-limit`).
    pub storage_minutes_limit: Option<u64>,
    /// Decodes, limits and caches thumbnails (`--thumbnail-concurrency`).
    pub thumbnails: Arc<thumbnails::Thumbnails>,
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(api::router())
        .method_not_allowed_fallback(api::envelope::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::playback::forward::to_holder,
        ))
        .with_state(state)
        .merge(dashboard::router())
        .fallback(api::envelope::route_not_found)
        // A 5xx is not an error of the server by itself: a held LL-HLS reload answers 503 when
        // its part does not come (a publisher pausing); real faults are logged where they
        // happen (`ApiError::internal`).
        .layer(
            TraceLayer::new_for_http()
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
}
