//! MP4 downloads of a finished recording: `POST/GET/DELETE /stream/{uid}/downloads`, answered
//! as Cloudflare does (`{default: {status, url, percentComplete}}`; `{}` before one is created;
//! `DELETE` answers `"ok"`).
//!
//! The file is not written anywhere: `{http}/{uid}/downloads/default.mp4` remuxes it from the
//! recording's CMAF files as it is sent (see `playback::mp4`), so a download is `ready` as soon
//! as it is created. Creating it leaves a marker file in the recording's directory, which
//! retention deletes with the recording. As on Cloudflare, a recording still live and one
//! longer than 4 hours are refused.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::auth::Account;
use super::envelope::{ApiError, codes, ok};
use super::live_inputs::InputPath;
use super::openapi::Envelope;
use super::playback::mp4::{DOWNLOAD_MARKER, MAX_DOWNLOAD_SECONDS};
use crate::store::videos::{self as rows, STATE_LIVE, Video};
use crate::{AppState, ids};

pub fn router() -> Router<AppState> {
    Router::new().route("/{uid}/downloads", get(list).post(create).delete(delete))
}

/// One download.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Download {
    /// `ready`: the file is served (it is remuxed as it is sent).
    status: &'static str,
    /// Where to fetch the MP4 (through playback access: a video that requires signed URLs
    /// needs a token with `downloadable: true` in the uid's place).
    url: String,
    percent_complete: f64,
}

/// The downloads of a video by type; `default` only when it has been created.
#[derive(Serialize, ToSchema)]
struct Downloads {
    #[serde(skip_serializing_if = "Option::is_none")]
    default: Option<Download>,
}

fn load(state: &AppState, account: &str, uid: &str) -> Result<Video, ApiError> {
    if !ids::is_uid(uid) {
        return Err(ApiError::video_not_found());
    }
    state
        .store
        .read(|c| rows::get(c, account, uid))?
        .ok_or_else(ApiError::video_not_found)
}

fn marker(state: &AppState, video: &Video) -> std::path::PathBuf {
    state
        .pipelines
        .recording_dir(&video.live_input, &video.uid)
        .join(DOWNLOAD_MARKER)
}

fn downloads(state: &AppState, video: &Video, created: bool) -> Downloads {
    Downloads {
        default: created.then(|| Download {
            status: "ready",
            url: format!("{}/{}/downloads/default.mp4", state.urls.http, video.uid),
            percent_complete: 100.0,
        }),
    }
}

fn refuse(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, message)
}

#[utoipa::path(
    operation_id = "downloads_create",
    post,
    path = "/client/v4/accounts/{account_id}/stream/{uid}/downloads",
    tag = "videos",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Video uid")),
    responses(
        (status = 200, description = "The download, ready at once", body = Envelope<Downloads>),
        (status = "4XX", description = "A recording still live or longer than 4 hours (400), not found (404)", body = Envelope<Option<String>>),
    ),
)]
async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
) -> Result<Response, ApiError> {
    let video = load(&state, &account, &p.uid)?;
    if video.state == STATE_LIVE {
        return Err(refuse(
            "the video is still being recorded: a download is made of a finished recording",
        ));
    }
    if video.duration > MAX_DOWNLOAD_SECONDS {
        return Err(refuse(
            "the recording is longer than 4 hours: downloads are made of recordings up to 4 hours",
        ));
    }
    let path = marker(&state, &video);
    if !tokio::fs::try_exists(path.with_file_name(crate::pipeline::INDEX_LOG))
        .await
        .unwrap_or(false)
    {
        return Err(ApiError::video_not_found());
    }
    tokio::fs::write(&path, b"")
        .await
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    Ok(ok(downloads(&state, &video, true)))
}

#[utoipa::path(
    operation_id = "downloads_list",
    get,
    path = "/client/v4/accounts/{account_id}/stream/{uid}/downloads",
    tag = "videos",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Video uid")),
    responses(
        (status = 200, description = "The downloads created (`{}` when none)", body = Envelope<Downloads>),
        (status = "4XX", description = "Not found", body = Envelope<Option<String>>),
    ),
)]
async fn list(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
) -> Result<Response, ApiError> {
    let video = load(&state, &account, &p.uid)?;
    let created = tokio::fs::try_exists(marker(&state, &video))
        .await
        .unwrap_or(false);
    Ok(ok(downloads(&state, &video, created)))
}

#[utoipa::path(
    operation_id = "downloads_delete",
    delete,
    path = "/client/v4/accounts/{account_id}/stream/{uid}/downloads",
    tag = "videos",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Video uid")),
    responses(
        (status = 200, description = "Deleted (`result: \"ok\"`); its URL answers 404 again", body = Envelope<String>),
        (status = "4XX", description = "Not found", body = Envelope<Option<String>>),
    ),
)]
async fn delete(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
) -> Result<Response, ApiError> {
    let video = load(&state, &account, &p.uid)?;
    let path = marker(&state, &video);
    match tokio::fs::remove_file(&path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ApiError::internal(format!("{}: {e}", path.display()))),
    }
    Ok(ok(json!("ok")))
}
