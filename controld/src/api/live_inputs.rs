//! `/stream/live_inputs…`: create, read, update, delete, enable/disable, rotate keys.
//!
//! Settings changed while an input is live apply to its next broadcast; disabling, deleting
//! and rotating keys (the RTMP stream key and the SRT passphrase) cut a live publisher at once.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Account;
use super::body::{self, JsonBody, present};
use super::envelope::{ApiError, ok};
use super::openapi::Envelope;
use crate::store::live_inputs::{self as rows, LiveInput, RecordingMode, RecordingSettings};
use crate::store::status::{self, StatusEntry};
use crate::{AppState, ids, timefmt};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/live_inputs", get(list).post(create))
        .route(
            "/live_inputs/{uid}",
            get(get_one).put(update).delete(delete),
        )
        .route("/live_inputs/{uid}/enable", post(enable))
        .route("/live_inputs/{uid}/disable", post(disable))
        .route("/live_inputs/{uid}/rotate_keys", post(rotate_keys))
        .route(
            "/live_inputs/{uid}/videos",
            get(super::videos::list_for_input),
        )
}

#[derive(Deserialize)]
pub struct InputPath {
    pub uid: String,
}

/// Body of create and update; absent fields keep their value (defaults on create).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct LiveInputBody {
    meta: Option<serde_json::Value>,
    enabled: Option<bool>,
    /// A JSON number (the SDKs type it as float): whole days.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>, minimum = 30, maximum = 1096)]
    delete_recording_after_days: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    default_creator: Option<Option<String>>,
    recording: Option<RecordingBody>,
    /// Serve low-latency HLS (parts, blocking reload) on the input's manifests by default, as
    /// `?protocol=llhls` does per request. Default false.
    prefer_low_latency: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RecordingBody {
    mode: Option<RecordingMode>,
    timeout_seconds: Option<u32>,
    #[serde(rename = "requireSignedURLs")]
    require_signed_urls: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    allowed_origins: Option<Option<Vec<String>>>,
    hide_live_viewer_count: Option<bool>,
}

impl LiveInputBody {
    fn apply_to(self, input: &mut LiveInput) -> Result<(), ApiError> {
        if let Some(meta) = self.meta {
            input.meta = meta;
        }
        if let Some(enabled) = self.enabled {
            input.enabled = enabled;
        }
        if let Some(days) = self.delete_recording_after_days {
            input.delete_recording_after_days = match days {
                None => None,
                Some(d) if d.fract() == 0.0 && (30.0..=1096.0).contains(&d) => Some(d as u32),
                Some(d) => {
                    return Err(ApiError::invalid_field(
                        "deleteRecordingAfterDays",
                        format!("must be a whole number of days from 30 to 1096, or null; got {d}"),
                    ));
                }
            };
        }
        if let Some(creator) = self.default_creator {
            if let Some(c) = &creator {
                body::check_text("defaultCreator", c)?;
            }
            input.default_creator = creator;
        }
        if let Some(r) = self.recording {
            let rec = &mut input.recording;
            rec.mode = r.mode.unwrap_or(rec.mode);
            rec.timeout_seconds = r.timeout_seconds.unwrap_or(rec.timeout_seconds);
            rec.require_signed_urls = r.require_signed_urls.unwrap_or(rec.require_signed_urls);
            rec.hide_live_viewer_count = r
                .hide_live_viewer_count
                .unwrap_or(rec.hide_live_viewer_count);
            if let Some(origins) = r.allowed_origins {
                body::check_origins("recording.allowedOrigins", origins.as_deref())?;
                rec.allowed_origins = origins;
            }
        }
        Ok(())
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    url: String,
    stream_key: String,
}

/// `srt {url, streamId, passphrase}`: the stream id is the input's uid, as on Cloudflare.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SrtEndpoint {
    url: String,
    stream_id: String,
    passphrase: String,
}

#[derive(Serialize, ToSchema)]
struct StatusView {
    #[schema(value_type = Object)]
    current: StatusEntry,
    #[schema(value_type = Vec<Object>)]
    history: Vec<StatusEntry>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct LiveInputView {
    uid: String,
    created: String,
    modified: String,
    meta: serde_json::Value,
    enabled: bool,
    delete_recording_after_days: Option<u32>,
    default_creator: Option<String>,
    recording: RecordingSettings,
    /// LL-HLS by default on the input's manifests.
    prefer_low_latency: bool,
    rtmps: Option<Endpoint>,
    rtmp: Endpoint,
    /// `null` when controld runs with `--srt off`.
    srt: Option<SrtEndpoint>,
    /// Pull the live stream over RTMPS: `play` `<url><streamKey>` (`null` without `--rtmps`).
    /// With `recording.requireSignedURLs` the key is refused: play with a signed-URL token
    /// (`POST /stream/{uid}/token`) as the stream key instead.
    rtmps_playback: Option<Endpoint>,
    /// Pull the live stream over RTMP, as `rtmpsPlayback`.
    rtmp_playback: Endpoint,
    /// Pull the live stream over SRT as MPEG-TS: a caller with this stream id (`play<uid>`) and
    /// passphrase. `null` with `--srt off`, and for inputs with `recording.requireSignedURLs`
    /// (a signed-URL token does not fit SRT's 512-byte stream id).
    srt_playback: Option<SrtEndpoint>,
    status: Option<StatusView>,
    keys_rotated_at: Option<String>,
}

/// The list omits credentials and status, as Cloudflare's does.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct LiveInputSummary {
    uid: String,
    created: String,
    modified: String,
    meta: serde_json::Value,
    delete_recording_after_days: Option<u32>,
    enabled: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct LiveInputList {
    live_inputs: Vec<LiveInputSummary>,
    range: usize,
    total: usize,
}

fn view(state: &AppState, input: LiveInput) -> Result<Response, ApiError> {
    let uid = input.uid.clone();
    let (mut entries, prefer_low_latency) = state.store.read(|c| {
        Ok((
            status::history(c, &uid)?,
            rows::prefer_low_latency(c, &uid)?,
        ))
    })?;
    let status = (!entries.is_empty()).then(|| {
        let current = entries.remove(0);
        StatusView {
            current,
            history: entries,
        }
    });
    let urls = &state.urls;
    let signed = input.recording.require_signed_urls;
    Ok(ok(LiveInputView {
        rtmps_playback: urls.rtmps.as_ref().map(|url| Endpoint {
            url: url.clone(),
            stream_key: input.playback_key.clone(),
        }),
        rtmp_playback: Endpoint {
            url: urls.rtmp.clone(),
            stream_key: input.playback_key.clone(),
        },
        srt_playback: urls
            .srt
            .as_ref()
            .filter(|_| !signed)
            .map(|url| SrtEndpoint {
                url: url.clone(),
                stream_id: srt_play_stream_id(&input.uid),
                passphrase: input.srt_playback_passphrase.clone(),
            }),
        rtmps: urls.rtmps.as_ref().map(|url| Endpoint {
            url: url.clone(),
            stream_key: input.stream_key.clone(),
        }),
        rtmp: Endpoint {
            url: urls.rtmp.clone(),
            stream_key: input.stream_key,
        },
        srt: urls.srt.as_ref().map(|url| SrtEndpoint {
            url: url.clone(),
            stream_id: input.uid.clone(),
            passphrase: input.srt_passphrase,
        }),
        uid: input.uid,
        created: input.created,
        modified: input.modified,
        meta: input.meta,
        enabled: input.enabled,
        delete_recording_after_days: input.delete_recording_after_days,
        default_creator: input.default_creator,
        recording: input.recording,
        prefer_low_latency,
        status,
        keys_rotated_at: input.keys_rotated_at,
    }))
}

/// `srtPlayback.streamId`: the SRT listener's play prefix and the input's uid.
fn srt_play_stream_id(uid: &str) -> String {
    format!("{}{uid}", gstcfstream::srt::stream_id::PLAY_PREFIX)
}

/// The account's input `uid`, or 404.
pub fn load(state: &AppState, account: &str, uid: &str) -> Result<LiveInput, ApiError> {
    if !ids::is_uid(uid) {
        return Err(ApiError::live_input_not_found());
    }
    state
        .store
        .read(|c| rows::get(c, account, uid))?
        .ok_or_else(ApiError::live_input_not_found)
}

/// Persists the input (and `preferLowLatency` when given) and tells the pipeline manager (which
/// may cut a live publisher).
async fn save(
    state: &AppState,
    input: LiveInput,
    prefer_low_latency: Option<bool>,
) -> Result<Response, ApiError> {
    let row = input.clone();
    state
        .store
        .write(move |c| {
            rows::save(c, &row)?;
            match prefer_low_latency {
                Some(prefer) => rows::set_prefer_low_latency(c, &row.uid, prefer),
                None => Ok(()),
            }
        })
        .await?;
    state.pipelines.configure(&input);
    view(state, input)
}

#[utoipa::path(
    operation_id = "live_inputs_create",
    post,
    path = "/client/v4/accounts/{account_id}/stream/live_inputs",
    tag = "live inputs",
    params(("account_id" = String, Path, description = "Account id")),
    request_body(content = LiveInputBody, description = "All fields optional", content_type = "application/json"),
    responses(
        (status = 200, description = "The new live input", body = Envelope<LiveInputView>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    JsonBody(body): JsonBody<LiveInputBody>,
) -> Result<Response, ApiError> {
    let uid = ids::new_uid();
    let now = timefmt::now();
    let mut input = LiveInput {
        stream_key: ids::new_stream_key(&uid),
        srt_passphrase: ids::new_stream_key(&uid),
        playback_key: ids::new_stream_key(&uid),
        srt_playback_passphrase: ids::new_stream_key(&uid),
        uid,
        account_id: account,
        created: now.clone(),
        modified: now,
        meta: serde_json::json!({}),
        enabled: true,
        delete_recording_after_days: None,
        default_creator: None,
        recording: RecordingSettings::default(),
        keys_rotated_at: None,
    };
    let prefer_low_latency = body.prefer_low_latency;
    body.apply_to(&mut input)?;
    save(&state, input, prefer_low_latency).await
}

#[utoipa::path(
    operation_id = "live_inputs_list",
    get,
    path = "/client/v4/accounts/{account_id}/stream/live_inputs",
    tag = "live inputs",
    params(("account_id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "Live inputs of the account, without credentials", body = Envelope<LiveInputList>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn list(
    State(state): State<AppState>,
    Account(account): Account,
) -> Result<Response, ApiError> {
    let inputs = state.store.read(|c| rows::list(c, &account))?;
    let live_inputs: Vec<LiveInputSummary> = inputs
        .into_iter()
        .map(|i| LiveInputSummary {
            uid: i.uid,
            created: i.created,
            modified: i.modified,
            meta: i.meta,
            delete_recording_after_days: i.delete_recording_after_days,
            enabled: i.enabled,
        })
        .collect();
    let total = live_inputs.len();
    Ok(ok(LiveInputList {
        live_inputs,
        range: total,
        total,
    }))
}

#[utoipa::path(
    operation_id = "live_inputs_get_one",
    get,
    path = "/client/v4/accounts/{account_id}/stream/live_inputs/{uid}",
    tag = "live inputs",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Live input uid")),
    responses(
        (status = 200, description = "The live input", body = Envelope<LiveInputView>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn get_one(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
) -> Result<Response, ApiError> {
    let input = load(&state, &account, &p.uid)?;
    view(&state, input)
}

#[utoipa::path(
    operation_id = "live_inputs_update",
    put,
    path = "/client/v4/accounts/{account_id}/stream/live_inputs/{uid}",
    tag = "live inputs",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Live input uid")),
    request_body(content = LiveInputBody, description = "All fields optional", content_type = "application/json"),
    responses(
        (status = 200, description = "The updated live input", body = Envelope<LiveInputView>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn update(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
    JsonBody(body): JsonBody<LiveInputBody>,
) -> Result<Response, ApiError> {
    let mut input = load(&state, &account, &p.uid)?;
    let prefer_low_latency = body.prefer_low_latency;
    body.apply_to(&mut input)?;
    input.modified = timefmt::now();
    save(&state, input, prefer_low_latency).await
}

async fn set_enabled(
    state: AppState,
    account: String,
    uid: String,
    enabled: bool,
) -> Result<Response, ApiError> {
    let mut input = load(&state, &account, &uid)?;
    input.enabled = enabled;
    input.modified = timefmt::now();
    save(&state, input, None).await
}

#[utoipa::path(
    operation_id = "live_inputs_enable",
    post,
    path = "/client/v4/accounts/{account_id}/stream/live_inputs/{uid}/enable",
    tag = "live inputs",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Live input uid")),
    responses(
        (status = 200, description = "The enabled live input", body = Envelope<LiveInputView>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn enable(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
) -> Result<Response, ApiError> {
    set_enabled(state, account, p.uid, true).await
}

#[utoipa::path(
    operation_id = "live_inputs_disable",
    post,
    path = "/client/v4/accounts/{account_id}/stream/live_inputs/{uid}/disable",
    tag = "live inputs",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Live input uid")),
    responses(
        (status = 200, description = "The disabled live input", body = Envelope<LiveInputView>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn disable(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
) -> Result<Response, ApiError> {
    set_enabled(state, account, p.uid, false).await
}

#[utoipa::path(
    operation_id = "live_inputs_rotate_keys",
    post,
    path = "/client/v4/accounts/{account_id}/stream/live_inputs/{uid}/rotate_keys",
    tag = "live inputs",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Live input uid")),
    responses(
        (status = 200, description = "The live input with new credentials", body = Envelope<LiveInputView>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn rotate_keys(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
) -> Result<Response, ApiError> {
    let mut input = load(&state, &account, &p.uid)?;
    let now = timefmt::now();
    input.stream_key = ids::new_stream_key(&input.uid);
    input.srt_passphrase = ids::new_stream_key(&input.uid);
    input.playback_key = ids::new_stream_key(&input.uid);
    input.srt_playback_passphrase = ids::new_stream_key(&input.uid);
    input.keys_rotated_at = Some(now.clone());
    input.modified = now;
    save(&state, input, None).await
}

#[utoipa::path(
    operation_id = "live_inputs_delete",
    delete,
    path = "/client/v4/accounts/{account_id}/stream/live_inputs/{uid}",
    tag = "live inputs",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Live input uid")),
    responses(
        (status = 200, description = "Deleted (`result: null`)", body = Envelope<Option<String>>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn delete(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
) -> Result<Response, ApiError> {
    let input = load(&state, &account, &p.uid)?;
    let uid = input.uid.clone();
    state
        .store
        .write(move |c| rows::delete(c, &account, &uid))
        .await?;
    state.pipelines.remove(&input.uid);
    Ok(ok(serde_json::Value::Null))
}
