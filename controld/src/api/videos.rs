//! Videos (recordings of live inputs): `GET /stream?live_input_id=…`, `GET/DELETE
//! /stream/{uid}`, `GET /live_inputs/{uid}/videos`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Account;
use super::envelope::{ApiError, codes, ok};
use super::live_inputs::InputPath;
use super::openapi::Envelope;
use crate::store::videos::{self as rows, ListFilter, STATE_LIVE, STATE_READY, Video};
use crate::{AppState, ids};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list))
        .route("/{uid}", get(get_one).delete(delete))
}

const MAX_LIST: u32 = 1000;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct VideoStatus {
    state: String,
    pct_complete: Option<String>,
    error_reason_code: String,
    error_reason_text: String,
}

#[derive(Serialize, ToSchema)]
struct Playback {
    hls: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VideoView {
    uid: String,
    live_input: String,
    created: String,
    modified: String,
    uploaded: String,
    status: VideoStatus,
    ready_to_stream: bool,
    ready_to_stream_at: Option<String>,
    duration: f64,
    meta: serde_json::Value,
    creator: Option<String>,
    #[serde(rename = "requireSignedURLs")]
    require_signed_urls: bool,
    allowed_origins: Vec<String>,
    playback: Playback,
    scheduled_deletion: Option<String>,
}

fn view(state: &AppState, v: Video, scheduled_deletion: Option<String>) -> VideoView {
    VideoView::new(v, &state.urls.http, scheduled_deletion)
}

impl VideoView {
    /// The video object as the API and the video webhook show it; `http_base` is the base of
    /// playback URLs.
    pub(crate) fn new(v: Video, http_base: &str, scheduled_deletion: Option<String>) -> Self {
        let ready = v.state == STATE_READY;
        VideoView {
            playback: Playback {
                hls: format!("{http_base}/{}/manifest/video.m3u8", v.uid),
            },
            status: VideoStatus {
                pct_complete: ready.then(|| "100.000000".to_owned()),
                state: v.state,
                error_reason_code: String::new(),
                error_reason_text: String::new(),
            },
            // A live recording is already watchable (its live window).
            ready_to_stream: true,
            ready_to_stream_at: v.ready_to_stream_at,
            uploaded: v.created.clone(),
            uid: v.uid,
            live_input: v.live_input,
            created: v.created,
            modified: v.modified,
            duration: v.duration,
            meta: v.meta,
            creator: v.creator,
            require_signed_urls: v.require_signed_urls,
            allowed_origins: v.allowed_origins.unwrap_or_default(),
            scheduled_deletion,
        }
    }
}

fn parse_filter(q: &HashMap<String, String>) -> Result<ListFilter, ApiError> {
    let live_input = q.get("live_input_id").cloned();
    if let Some(id) = &live_input
        && !ids::is_uid(id)
    {
        return Err(ApiError::invalid_field(
            "live_input_id",
            "must be a live input uid (32 hex characters)",
        ));
    }
    let limit = match q.get("limit") {
        None => MAX_LIST,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_LIST).contains(l))
            .ok_or_else(|| {
                ApiError::invalid_field("limit", format!("must be an integer 1..={MAX_LIST}"))
            })?,
    };
    let ascending = match q.get("asc").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid_field("asc", "must be true or false")),
    };
    Ok(ListFilter {
        live_input,
        state: q.get("status").cloned(),
        ascending,
        limit,
    })
}

fn list_with(state: &AppState, account: &str, filter: ListFilter) -> Result<Response, ApiError> {
    let videos = state.store.read(|c| {
        rows::list(c, account, &filter)?
            .into_iter()
            .map(|v| Ok((rows::scheduled_deletion(c, &v.uid)?, v)))
            .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    Ok(ok(videos
        .into_iter()
        .map(|(deletion, v)| view(state, v, deletion))
        .collect::<Vec<_>>()))
}

#[utoipa::path(
    operation_id = "videos_list",
    get,
    path = "/client/v4/accounts/{account_id}/stream",
    tag = "videos",
    params(("account_id" = String, Path, description = "Account id"), ("live_input_id" = Option<String>, Query, description = "Only videos of this live input"), ("limit" = Option<u32>, Query, description = "At most this many (1 to 1000)"), ("asc" = Option<bool>, Query, description = "Oldest first"), ("status" = Option<String>, Query, description = "Only videos in this state (live-inprogress, ready)")),
    responses(
        (status = 200, description = "Videos of the account, newest first", body = Envelope<Vec<VideoView>>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn list(
    State(state): State<AppState>,
    Account(account): Account,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let filter = parse_filter(&q)?;
    list_with(&state, &account, filter)
}

#[utoipa::path(
    operation_id = "videos_list_for_input",
    get,
    path = "/client/v4/accounts/{account_id}/stream/live_inputs/{uid}/videos",
    tag = "videos",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Live input uid"), ("limit" = Option<u32>, Query, description = "At most this many (1 to 1000)"), ("asc" = Option<bool>, Query, description = "Oldest first"), ("status" = Option<String>, Query, description = "Only videos in this state")),
    responses(
        (status = 200, description = "Recordings of the live input", body = Envelope<Vec<VideoView>>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
pub async fn list_for_input(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let input = super::live_inputs::load(&state, &account, &p.uid)?;
    let filter = ListFilter {
        live_input: Some(input.uid),
        ..parse_filter(&q)?
    };
    list_with(&state, &account, filter)
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

#[utoipa::path(
    operation_id = "videos_get_one",
    get,
    path = "/client/v4/accounts/{account_id}/stream/{uid}",
    tag = "videos",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Video uid")),
    responses(
        (status = 200, description = "The video", body = Envelope<VideoView>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn get_one(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
) -> Result<Response, ApiError> {
    let video = load(&state, &account, &p.uid)?;
    let deletion = state
        .store
        .read(|c| rows::scheduled_deletion(c, &video.uid))?;
    Ok(ok(view(&state, video, deletion)))
}

/// Deletes the row and the recording's files. A recording still being written is refused:
/// its files are in use.
#[utoipa::path(
    operation_id = "videos_delete",
    delete,
    path = "/client/v4/accounts/{account_id}/stream/{uid}",
    tag = "videos",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Video uid")),
    responses(
        (status = 200, description = "Deleted with its files (`result: null`)", body = Envelope<Option<String>>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn delete(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
) -> Result<Response, ApiError> {
    let video = load(&state, &account, &p.uid)?;
    if video.state == STATE_LIVE {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            codes::CONFLICT,
            "video is still being recorded; end the broadcast (or disable its live input) first",
        ));
    }
    let dir = state.pipelines.recording_dir(&video.live_input, &video.uid);
    let uid = video.uid.clone();
    state
        .store
        .write(move |c| rows::delete(c, &account, &uid))
        .await?;
    let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir))
        .await
        .map_err(ApiError::internal)?;
    match removed {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ApiError::internal(format!("removing recording: {e}"))),
    }
    Ok(ok(serde_json::Value::Null))
}
