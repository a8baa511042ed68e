//! `GET /{input}/views`: how many viewers watch a live input now (`viewers`), as Cloudflare's
//! `{"liveViewers": n}`; `null` when the input's `recording.hideLiveViewerCount` hides it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::access::{ClientAddr, Target, authorize, not_found};
use super::viewers;
use crate::AppState;
use crate::api::envelope::ApiError;
use crate::api::openapi::Envelope;

#[utoipa::path(
    get,
    operation_id = "playback_views",
    path = "/{id}/views",
    tag = "playback",
    params(("id" = String, Path, description = "Live input uid, or a signed-URL token naming one")),
    responses(
        (status = 200, description = "`{liveViewers}`: distinct viewers that fetched a manifest or media file of the input's live recording in the last 30 s; `null` when `recording.hideLiveViewerCount`", body = Object),
        (status = "4XX", description = "Refused, or not a live input (404)", body = Envelope<Option<String>>),
    ),
    security(()),
)]
pub(super) async fn views(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (target, cors) = authorize(&state, &id, client, &headers)?;
    let Target::Input(input) = target else {
        return Err(not_found("live input"));
    };
    let shown = !input.recording.hide_live_viewer_count;
    let count = shown.then(|| viewers::live_count(&input.uid));
    Ok((
        cors.headers(),
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
        Json(json!({ "liveViewers": count })),
    )
        .into_response())
}
