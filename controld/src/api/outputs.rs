//! `/stream/live_inputs/{uid}/outputs`: simulcast destinations. Changes reach a live pipeline
//! within seconds (`PipelineManager::outputs_changed`).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, put};
use serde::Deserialize;

use super::auth::Account;
use super::body::JsonBody;
use super::envelope::{ApiError, codes, ok};
use super::live_inputs::{InputPath, load as load_input};
use super::openapi::Envelope;
use crate::pipeline::output_location as location;
use crate::store::outputs::{self as rows, Output};
use crate::{AppState, ids, timefmt};

/// Outputs per live input, as on Cloudflare.
const MAX_PER_INPUT: usize = 50;
const MAX_TEXT: usize = 2048;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/live_inputs/{uid}/outputs", get(list).post(create))
        .route(
            "/live_inputs/{uid}/outputs/{output_uid}",
            put(update).delete(delete),
        )
}

#[derive(Deserialize)]
pub struct OutputPath {
    uid: String,
    output_uid: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateOutput {
    /// `rtmp://` or `rtmps://` URL of the destination (host, port, application).
    url: Option<String>,
    /// Appended to the URL as its last path component.
    stream_key: Option<String>,
    /// Default true.
    enabled: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct UpdateOutput {
    enabled: Option<bool>,
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::OUTPUT_NOT_FOUND,
        "output not found",
    )
}

fn validate(body: CreateOutput) -> Result<(String, String, bool), ApiError> {
    let url = body
        .url
        .ok_or_else(|| ApiError::invalid_field("url", "is required"))?;
    let stream_key = body
        .stream_key
        .ok_or_else(|| ApiError::invalid_field("streamKey", "is required"))?;
    for (field, value) in [("url", &url), ("streamKey", &stream_key)] {
        if value.len() > MAX_TEXT {
            return Err(ApiError::invalid_field(
                field,
                format!("longer than {MAX_TEXT} bytes"),
            ));
        }
    }
    let parsed = reqwest::Url::parse(&url)
        .map_err(|e| ApiError::invalid_field("url", format!("{url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "rtmp" | "rtmps") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::invalid_field(
            "url",
            format!("{url:?} must be an rtmp:// or rtmps:// URL with a host"),
        ));
    }
    if stream_key
        .bytes()
        .any(|b| b.is_ascii_control() || b == b'/' || b == b' ')
    {
        return Err(ApiError::invalid_field(
            "streamKey",
            "must not contain '/', spaces or control characters",
        ));
    }
    // rtmp2sink must be able to parse what it will be given.
    if reqwest::Url::parse(&location(&url, &stream_key)).is_err() {
        return Err(ApiError::invalid_field(
            "streamKey",
            "does not form a valid URL with url",
        ));
    }
    Ok((url, stream_key, body.enabled.unwrap_or(true)))
}

#[utoipa::path(
    operation_id = "outputs_list",
    get,
    path = "/client/v4/accounts/{account_id}/stream/live_inputs/{uid}/outputs",
    tag = "outputs",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Live input uid")),
    responses(
        (status = 200, description = "The input's outputs, oldest first", body = Envelope<Vec<Output>>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
) -> Result<Response, ApiError> {
    let input = load_input(&state, &account, &p.uid)?;
    Ok(ok(state.store.read(|c| rows::list(c, &input.uid))?))
}

#[utoipa::path(
    operation_id = "outputs_create",
    post,
    path = "/client/v4/accounts/{account_id}/stream/live_inputs/{uid}/outputs",
    tag = "outputs",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Live input uid")),
    request_body(content = CreateOutput, content_type = "application/json"),
    responses(
        (status = 200, description = "The new output (409 beyond 50 per input)", body = Envelope<Output>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
    JsonBody(body): JsonBody<CreateOutput>,
) -> Result<Response, ApiError> {
    let input = load_input(&state, &account, &p.uid)?;
    let (url, stream_key, enabled) = validate(body)?;
    let output = Output {
        uid: ids::new_uid(),
        url,
        stream_key,
        enabled,
    };
    let row = output.clone();
    let input_uid = input.uid.clone();
    let now = timefmt::now();
    let inserted = state
        .store
        .write(move |c| rows::insert(c, &input_uid, &row, &now, MAX_PER_INPUT))
        .await?;
    if !inserted {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            codes::CONFLICT,
            format!("a live input has at most {MAX_PER_INPUT} outputs"),
        ));
    }
    state.pipelines.outputs_changed(&input.uid);
    Ok(ok(output))
}

#[utoipa::path(
    operation_id = "outputs_update",
    put,
    path = "/client/v4/accounts/{account_id}/stream/live_inputs/{uid}/outputs/{output_uid}",
    tag = "outputs",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Live input uid"), ("output_uid" = String, Path, description = "Output uid")),
    request_body(content = UpdateOutput, content_type = "application/json"),
    responses(
        (status = 200, description = "The updated output; a live relay follows within seconds", body = Envelope<Output>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<OutputPath>,
    JsonBody(body): JsonBody<UpdateOutput>,
) -> Result<Response, ApiError> {
    let input = load_input(&state, &account, &p.uid)?;
    let enabled = body
        .enabled
        .ok_or_else(|| ApiError::invalid_field("enabled", "is required (true or false)"))?;
    if !ids::is_uid(&p.output_uid) {
        return Err(not_found());
    }
    let (input_uid, uid) = (input.uid.clone(), p.output_uid.clone());
    let updated = state
        .store
        .write(move |c| {
            rows::set_enabled(c, &input_uid, &uid, enabled)?
                .then(|| rows::get(c, &input_uid, &uid))
                .transpose()
                .map(Option::flatten)
        })
        .await?
        .ok_or_else(not_found)?;
    state.pipelines.outputs_changed(&input.uid);
    Ok(ok(updated))
}

#[utoipa::path(
    operation_id = "outputs_delete",
    delete,
    path = "/client/v4/accounts/{account_id}/stream/live_inputs/{uid}/outputs/{output_uid}",
    tag = "outputs",
    params(("account_id" = String, Path, description = "Account id"), ("uid" = String, Path, description = "Live input uid"), ("output_uid" = String, Path, description = "Output uid")),
    responses(
        (status = 200, description = "Deleted; a live relay stops within seconds", body = Envelope<Option<String>>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<OutputPath>,
) -> Result<Response, ApiError> {
    let input = load_input(&state, &account, &p.uid)?;
    if !ids::is_uid(&p.output_uid) {
        return Err(not_found());
    }
    let (input_uid, uid) = (input.uid.clone(), p.output_uid);
    if !state
        .store
        .write(move |c| rows::delete(c, &input_uid, &uid))
        .await?
    {
        return Err(not_found());
    }
    state.pipelines.outputs_changed(&input.uid);
    Ok(ok(serde_json::Value::Null))
}
