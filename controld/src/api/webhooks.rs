//! `/stream/webhook`: the account's webhook subscription (`PUT` creates or updates it).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use rand::Rng;
use serde::Deserialize;

use super::auth::Account;
use super::body::JsonBody;
use super::envelope::{ApiError, codes, ok};
use super::openapi::Envelope;
use crate::store::webhooks::{self as rows, Subscription};
use crate::{AppState, timefmt};

const MAX_URL: usize = 2048;

pub fn router() -> Router<AppState> {
    Router::new().route("/webhook", get(get_one).put(put).delete(delete))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookBody {
    /// `http://` or `https://` URL that receives the events; the SDKs may send it as
    /// `notification_url`.
    #[serde(alias = "notification_url")]
    notification_url: Option<String>,
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::WEBHOOK_NOT_FOUND,
        "no webhook is configured for this account",
    )
}

/// The URL, or a 400 naming `notificationUrl` and what is wrong with it.
fn validate_url(url: Option<String>) -> Result<String, ApiError> {
    let field = "notificationUrl";
    let url = url.ok_or_else(|| ApiError::invalid_field(field, "is required"))?;
    if url.len() > MAX_URL {
        return Err(ApiError::invalid_field(
            field,
            format!("longer than {MAX_URL} bytes"),
        ));
    }
    let parsed = reqwest::Url::parse(&url)
        .map_err(|e| ApiError::invalid_field(field, format!("{url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::invalid_field(
            field,
            format!("{url:?} must be an http:// or https:// URL with a host"),
        ));
    }
    Ok(url)
}

#[utoipa::path(
    operation_id = "webhook_get",
    get,
    path = "/client/v4/accounts/{account_id}/stream/webhook",
    tag = "webhooks",
    params(("account_id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "The account's webhook (404 with code 10604 when none)", body = Envelope<Subscription>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
pub async fn get_one(
    State(state): State<AppState>,
    Account(account): Account,
) -> Result<Response, ApiError> {
    let sub = state
        .store
        .read(|c| rows::get(c, &account))?
        .ok_or_else(not_found)?;
    Ok(ok(sub))
}

#[utoipa::path(
    operation_id = "webhook_put",
    put,
    path = "/client/v4/accounts/{account_id}/stream/webhook",
    tag = "webhooks",
    params(("account_id" = String, Path, description = "Account id")),
    request_body(content = WebhookBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The webhook; the secret signs every delivery", body = Envelope<Subscription>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
pub async fn put(
    State(state): State<AppState>,
    Account(account): Account,
    JsonBody(body): JsonBody<WebhookBody>,
) -> Result<Response, ApiError> {
    let url = validate_url(body.notification_url)?;
    let secret = hex::encode(rand::rng().random::<[u8; 16]>());
    let now = timefmt::now();
    let sub = state
        .store
        .write(move |c| rows::put(c, &account, &url, &secret, &now))
        .await?;
    Ok(ok(sub))
}

#[utoipa::path(
    operation_id = "webhook_delete",
    delete,
    path = "/client/v4/accounts/{account_id}/stream/webhook",
    tag = "webhooks",
    params(("account_id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "Deleted (`result: \"ok\"`); events still queued are dropped", body = Envelope<String>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    Account(account): Account,
) -> Result<Response, ApiError> {
    if state
        .store
        .write(move |c| rows::delete(c, &account))
        .await?
    {
        // The SDKs type this result as a string.
        Ok(ok("ok"))
    } else {
        Err(not_found())
    }
}
