//! Videos (recordings of live inputs): `GET /stream?live_input_id=…`, `GET/POST/DELETE
//! /stream/{uid}` (`POST` edits), `GET /live_inputs/{uid}/videos`, `GET /stream/storage-usage`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use super::auth::Account;
use super::body::{self, JsonBody, present};
use super::envelope::{ApiError, codes, ok};
use super::live_inputs::InputPath;
use super::openapi::Envelope;
use crate::pipeline::recorded_media;
use crate::store::videos::{self as rows, Details, ListFilter, STATE_LIVE, STATE_READY, Video};
use crate::{AppState, ids, timefmt};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list))
        // A static segment: matched before `/{uid}`.
        .route("/storage-usage", get(storage_usage))
        .route("/{uid}", get(get_one).post(edit).delete(delete))
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
    /// The HLS multivariant playlist.
    hls: String,
    /// The DASH MPD.
    dash: String,
}

/// The recording's video frame size; -1 while unknown (no video, or a recording finished
/// before controld stored it).
#[derive(Serialize, ToSchema)]
struct InputSize {
    width: i64,
    height: i64,
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
    /// `{http}/{uid}/thumbnails/thumbnail.jpg`.
    thumbnail: String,
    /// The watch page, `{http}/{uid}/watch`.
    preview: String,
    input: InputSize,
    /// Bytes of the recording on disk; while live, of its media listed so far.
    size: u64,
    scheduled_deletion: Option<String>,
    thumbnail_timestamp_pct: f64,
    max_duration_seconds: Option<i64>,
    #[schema(value_type = Option<PublicDetails>)]
    public_details: Option<serde_json::Value>,
}

/// A live recording's media is read from its writer; a finished one's was stored when it
/// finished.
fn view(state: &AppState, v: Video, mut details: Details) -> VideoView {
    if v.state == STATE_LIVE && details.media.is_none() {
        details.media = recorded_media::live(&state.pipelines.recording_dir(&v.live_input, &v.uid));
    }
    VideoView::new(v, &state.urls.http, details)
}

impl VideoView {
    /// The video object as the API and the video webhook show it; `http_base` is the base of
    /// playback URLs.
    pub(crate) fn new(v: Video, http_base: &str, details: Details) -> Self {
        let ready = v.state == STATE_READY;
        let known = |n: u32| if n == 0 { -1 } else { i64::from(n) };
        let media = details.media.unwrap_or_default();
        VideoView {
            thumbnail: format!("{http_base}/{}/thumbnails/thumbnail.jpg", v.uid),
            preview: format!("{http_base}/{}/watch", v.uid),
            input: InputSize {
                width: known(media.width),
                height: known(media.height),
            },
            size: media.size,
            playback: Playback {
                hls: format!("{http_base}/{}/manifest/video.m3u8", v.uid),
                dash: format!("{http_base}/{}/manifest/video.mpd", v.uid),
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
            scheduled_deletion: details.scheduled_deletion,
            thumbnail_timestamp_pct: details.thumbnail_timestamp_pct,
            max_duration_seconds: details.max_duration_seconds,
            public_details: details.public_details,
        }
    }
}

/// A filter that matches nothing (`live_input_id` of no input of the account, say) gives an
/// empty list, as on Cloudflare.
fn parse_filter(q: &HashMap<String, String>) -> Result<ListFilter, ApiError> {
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
        live_input: q.get("live_input_id").cloned(),
        state: q.get("status").cloned(),
        creator: q.get("creator").cloned(),
        ascending,
        limit,
    })
}

fn list_with(state: &AppState, account: &str, filter: ListFilter) -> Result<Response, ApiError> {
    let videos = state.store.read(|c| rows::list(c, account, &filter))?;
    Ok(ok(videos
        .into_iter()
        .map(|(v, details)| view(state, v, details))
        .collect::<Vec<_>>()))
}

#[utoipa::path(
    operation_id = "videos_list",
    get,
    path = "/client/v4/accounts/{account_id}/stream",
    tag = "videos",
    params(("account_id" = String, Path, description = "Account id"), ("live_input_id" = Option<String>, Query, description = "Only videos of this live input"), ("limit" = Option<u32>, Query, description = "At most this many (1 to 1000)"), ("asc" = Option<bool>, Query, description = "Oldest first"), ("status" = Option<String>, Query, description = "Only videos in this state (live-inprogress, ready)"), ("creator" = Option<String>, Query, description = "Only videos of this creator")),
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
    let details = load_details(&state, &video.uid)?;
    Ok(ok(view(&state, video, details)))
}

fn load_details(state: &AppState, uid: &str) -> Result<Details, ApiError> {
    state
        .store
        .read(|c| rows::details(c, uid))?
        .ok_or_else(ApiError::video_not_found)
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
    if let Some(bucket) = state.pipelines.bucket() {
        let deleted = bucket.delete(&video.live_input, &video.uid).await;
        deleted.map_err(|e| ApiError::internal(format!("removing the recording's copy: {e}")))?;
    }
    Ok(ok(serde_json::Value::Null))
}

/// `publicDetails` of a video, as Cloudflare's edit takes it.
#[derive(Serialize, Deserialize, ToSchema)]
pub(super) struct PublicDetails {
    title: Option<String>,
    share_link: Option<String>,
    channel_link: Option<String>,
    logo: Option<String>,
}

/// Body of `POST /stream/{uid}`: the fields of Cloudflare's edit, all optional; absent fields
/// keep their value, `null` clears those that can be unset.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct VideoEdit {
    meta: Option<serde_json::Value>,
    #[serde(rename = "requireSignedURLs")]
    require_signed_urls: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    allowed_origins: Option<Option<Vec<String>>>,
    /// RFC 3339, at least 30 days after the video was created; `null` cancels it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    scheduled_deletion: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    creator: Option<Option<String>>,
    /// Fraction (0 to 1) of the duration where the thumbnail is taken.
    thumbnail_timestamp_pct: Option<f64>,
    /// Kept and shown; limits nothing (no uploads here). -1 or at least 1.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    max_duration_seconds: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<PublicDetails>)]
    public_details: Option<Option<PublicDetails>>,
    /// When given, must be the uid in the path.
    uid: Option<String>,
    /// Accepted (RFC 3339) and ignored: there are no direct uploads here.
    upload_expiry: Option<String>,
}

const MIN_SCHEDULED_DELETION_DAYS: i64 = 30;

impl VideoEdit {
    fn apply_to(self, v: &mut Video, d: &mut Details) -> Result<(), ApiError> {
        if self.uid.as_ref().is_some_and(|uid| *uid != v.uid) {
            return Err(ApiError::invalid_field(
                "uid",
                "is not the uid of the video in the path",
            ));
        }
        if let Some(expiry) = &self.upload_expiry {
            parse_time("uploadExpiry", expiry)?;
        }
        if let Some(meta) = self.meta {
            v.meta = meta;
        }
        if let Some(signed) = self.require_signed_urls {
            v.require_signed_urls = signed;
        }
        if let Some(origins) = self.allowed_origins {
            body::check_origins("allowedOrigins", origins.as_deref())?;
            v.allowed_origins = origins;
        }
        if let Some(creator) = self.creator {
            if let Some(c) = &creator {
                body::check_text("creator", c)?;
            }
            v.creator = creator;
        }
        if let Some(deletion) = self.scheduled_deletion {
            d.scheduled_deletion = deletion
                .map(|t| scheduled_deletion(&t, &v.created))
                .transpose()?;
        }
        if let Some(pct) = self.thumbnail_timestamp_pct {
            if !(0.0..=1.0).contains(&pct) {
                return Err(ApiError::invalid_field(
                    "thumbnailTimestampPct",
                    format!("must be from 0 to 1 (a fraction of the duration); got {pct}"),
                ));
            }
            d.thumbnail_timestamp_pct = pct;
        }
        if let Some(max) = self.max_duration_seconds {
            if max.is_some_and(|m| m != -1 && m < 1) {
                return Err(ApiError::invalid_field(
                    "maxDurationSeconds",
                    "must be -1 (unknown) or at least 1",
                ));
            }
            d.max_duration_seconds = max;
        }
        if let Some(public) = self.public_details {
            if let Some(p) = &public {
                let fields = [
                    ("title", &p.title),
                    ("share_link", &p.share_link),
                    ("channel_link", &p.channel_link),
                    ("logo", &p.logo),
                ];
                for (name, value) in fields {
                    if let Some(value) = value {
                        body::check_text(&format!("publicDetails.{name}"), value)?;
                    }
                }
            }
            d.public_details = public.map(|p| serde_json::to_value(p).unwrap_or_default());
        }
        Ok(())
    }
}

fn parse_time(field: &str, text: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        ApiError::invalid_field(field, format!("{text:?} is not an RFC 3339 time: {e}"))
    })
}

/// `scheduledDeletion` in the one format the retention sweeper compares as text.
fn scheduled_deletion(text: &str, created: &str) -> Result<String, ApiError> {
    let when = parse_time("scheduledDeletion", text)?;
    let earliest = OffsetDateTime::parse(created, &Rfc3339)
        .map_err(ApiError::internal)?
        .saturating_add(time::Duration::days(MIN_SCHEDULED_DELETION_DAYS));
    if when < earliest {
        return Err(ApiError::invalid_field(
            "scheduledDeletion",
            format!(
                "must be at least {MIN_SCHEDULED_DELETION_DAYS} days after the video was created \
                 ({}), or null",
                timefmt::format(earliest)
            ),
        ));
    }
    Ok(timefmt::format(when))
}

#[utoipa::path(
    operation_id = "videos_edit",
    post,
    path = "/client/v4/accounts/{account_id}/stream/{uid}",
    tag = "videos",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Video uid")),
    request_body(content = VideoEdit, description = "All fields optional", content_type = "application/json"),
    responses(
        (status = 200, description = "The updated video", body = Envelope<VideoView>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn edit(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
    JsonBody(body): JsonBody<VideoEdit>,
) -> Result<Response, ApiError> {
    let mut video = load(&state, &account, &p.uid)?;
    let mut details = load_details(&state, &video.uid)?;
    body.apply_to(&mut video, &mut details)?;
    video.modified = timefmt::now();
    let (row, written) = (video.clone(), details.clone());
    let found = state
        .store
        .write(move |c| rows::update(c, &row, &written))
        .await?;
    if !found {
        return Err(ApiError::video_not_found());
    }
    Ok(ok(view(&state, video, details)))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct StorageUsage {
    /// The `creator` asked for, or null for the whole account.
    creator: Option<String>,
    /// Recorded media of the finished videos, in minutes.
    total_storage_minutes: f64,
    /// `--storage-minutes-limit`; null without one.
    total_storage_minutes_limit: Option<u64>,
    /// Videos, live recordings included.
    video_count: u64,
}

#[utoipa::path(
    operation_id = "videos_storage_usage",
    get,
    path = "/client/v4/accounts/{account_id}/stream/storage-usage",
    tag = "videos",
    params(("account_id" = String, Path, description = "Account id"), ("creator" = Option<String>, Query, description = "Only the videos of this creator")),
    responses(
        (status = 200, description = "Minutes of recorded media and video count", body = Envelope<StorageUsage>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn storage_usage(
    State(state): State<AppState>,
    Account(account): Account,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let creator = q.get("creator").cloned();
    let (seconds, video_count) = state
        .store
        .read(|c| rows::usage(c, &account, creator.as_deref()))?;
    Ok(ok(StorageUsage {
        creator,
        total_storage_minutes: seconds / 60.0,
        total_storage_minutes_limit: state.storage_minutes_limit,
        video_count,
    }))
}
