//! `POST /stream/{uid}/token`: a signed-URL token for a video or live input of the account.
//!
//! With `id` and `pem` (a key from `POST /stream/keys`) the token is signed with that key;
//! without them controld signs with the account's server-held key, created on first use.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::auth::Account;
use super::body::JsonBody;
use super::envelope::{ApiError, codes, ok};
use super::live_inputs::InputPath;
use super::openapi::Envelope;
use crate::access::rules::{self, AccessRule};
use crate::access::signed_urls::{self as tokens, Claims};
use crate::access::signing_keys::{self as keys, GeneratedKey};
use crate::store::signing_keys::{self as key_rows, StoredKey};
use crate::store::{live_inputs, videos};
use crate::{AppState, ids, timefmt};

pub fn router() -> Router<AppState> {
    Router::new().route("/{uid}/token", post(create))
}

const DEFAULT_LIFETIME_SECS: i64 = 3600;
const MAX_LIFETIME_SECS: i64 = 24 * 3600;
/// Default `nbf` is this far in the past, so that a viewer's slightly late clock is no issue.
const DEFAULT_NBF_BACKDATE_SECS: i64 = 3600;

/// All fields optional.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct TokenRequest {
    /// Signing key id (from `POST /stream/keys`); needs `pem`.
    id: Option<String>,
    /// Base64 of the key's private PEM, as `POST /stream/keys` returned it; needs `id`.
    pem: Option<String>,
    /// Expiry, Unix seconds; default now + 1 h, at most now + 24 h.
    exp: Option<i64>,
    /// Not before, Unix seconds; default now − 1 h.
    nbf: Option<i64>,
    downloadable: Option<bool>,
    /// At most 5; first match wins; no match allows.
    access_rules: Option<Vec<AccessRule>>,
    /// controld's own field: a token for the account owner's preview (the dashboard), which
    /// plays whatever `allowedOrigins` says. Lives at most 1 h from `nbf` (defaults: nbf now −
    /// 1 min, exp now + 59 min).
    owner_preview: Option<bool>,
}

/// An owner preview token's default `nbf` backdate (its life is capped at 1 h from `nbf`).
const OWNER_PREVIEW_BACKDATE_SECS: i64 = 60;

#[derive(Serialize, ToSchema)]
pub(super) struct TokenResponse {
    token: String,
}

#[utoipa::path(
    operation_id = "token_create",
    post,
    path = "/client/v4/accounts/{account_id}/stream/{uid}/token",
    tag = "signed URLs",
    params(
        ("account_id" = String, Path, description = "Account id"),
        ("uid" = String, Path, description = "Video or live input uid"),
    ),
    request_body(content = TokenRequest, description = "All fields optional", content_type = "application/json"),
    responses(
        (status = 200, description = "Token to use in place of the uid in playback URLs", body = Envelope<TokenResponse>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<InputPath>,
    JsonBody(body): JsonBody<TokenRequest>,
) -> Result<Response, ApiError> {
    let exists = ids::is_uid(&p.uid)
        && state.store.read(|c| {
            Ok(live_inputs::get(c, &account, &p.uid)?.is_some()
                || videos::get(c, &account, &p.uid)?.is_some())
        })?;
    if !exists {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            codes::VIDEO_NOT_FOUND,
            "no video or live input with this uid",
        ));
    }
    let claims = claims_for(p.uid, &body)?;
    let (kid, private_pem) = match (body.id, body.pem) {
        (Some(id), Some(pem)) => customer_key(&state, &account, id, &pem)?,
        (None, None) => {
            let key = server_key(&state, &account).await?;
            let pem = key.private_pem.unwrap_or_default().into_bytes();
            (key.id, pem)
        }
        (Some(_), None) => return Err(ApiError::invalid_field("pem", "required with id")),
        (None, Some(_)) => return Err(ApiError::invalid_field("id", "required with pem")),
    };
    let token = tokens::sign(&claims, &kid, &private_pem).map_err(ApiError::internal)?;
    Ok(ok(TokenResponse { token }))
}

fn claims_for(sub: String, body: &TokenRequest) -> Result<Claims, ApiError> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let owner_preview = body.owner_preview.unwrap_or(false);
    let backdate = if owner_preview {
        OWNER_PREVIEW_BACKDATE_SECS
    } else {
        DEFAULT_NBF_BACKDATE_SECS
    };
    let default_exp = if owner_preview {
        now - backdate + tokens::MAX_OWNER_PREVIEW_SECS
    } else {
        now + DEFAULT_LIFETIME_SECS
    };
    let exp = body.exp.unwrap_or(default_exp);
    if exp <= now {
        return Err(ApiError::invalid_field("exp", "must be in the future"));
    }
    if exp > now + MAX_LIFETIME_SECS {
        return Err(ApiError::invalid_field(
            "exp",
            "must be at most 24 hours from now",
        ));
    }
    let nbf = body.nbf.unwrap_or(now - backdate);
    if nbf >= exp {
        return Err(ApiError::invalid_field("nbf", "must be before exp"));
    }
    if owner_preview && exp - nbf > tokens::MAX_OWNER_PREVIEW_SECS {
        return Err(ApiError::invalid_field(
            "exp",
            "an ownerPreview token lives at most 1 hour from nbf",
        ));
    }
    let access_rules = body.access_rules.clone().unwrap_or_default();
    rules::validate(&access_rules).map_err(|(field, why)| ApiError::invalid_field(&field, why))?;
    Ok(Claims {
        sub,
        kid: None,
        exp,
        nbf: Some(nbf),
        downloadable: body.downloadable.unwrap_or(false),
        access_rules,
        owner_preview,
    })
}

/// The customer key `id` of the account, after checking that `pem` is its private half.
fn customer_key(
    state: &AppState,
    account: &str,
    id: String,
    pem: &str,
) -> Result<(String, Vec<u8>), ApiError> {
    let stored = state
        .store
        .read(|c| key_rows::get(c, &id))?
        .filter(|k| k.account_id == account && k.private_pem.is_none())
        .ok_or_else(super::signing_keys::key_not_found)?;
    let private = keys::decode_private_pem(pem).ok_or_else(|| {
        ApiError::invalid_field("pem", "not a base64-encoded RSA private key PEM")
    })?;
    if !keys::is_pair(&private, &stored.public_pem) {
        return Err(ApiError::invalid_field(
            "pem",
            format!("is not the private key of signing key {id}"),
        ));
    }
    Ok((id, private))
}

/// The account's server-held key, generated on first use.
async fn server_key(state: &AppState, account: &str) -> Result<StoredKey, ApiError> {
    if let Some(key) = state.store.read(|c| key_rows::server_key(c, account))? {
        return Ok(key);
    }
    let generated = tokio::task::spawn_blocking(GeneratedKey::generate)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let key = StoredKey {
        id: generated.id.clone(),
        account_id: account.to_owned(),
        created: timefmt::now(),
        public_pem: generated.public_pem().map_err(ApiError::internal)?,
        private_pem: Some(generated.private_pem().map_err(ApiError::internal)?),
    };
    let account = account.to_owned();
    Ok(state
        .store
        .write(move |c| key_rows::install_server_key(c, &account, &key))
        .await?)
}
