//! Signing keys for signed URLs: `POST /stream/keys` (the private half is returned once),
//! `GET /stream/keys`, `DELETE /stream/keys/{id}` (tokens signed with it stop working at once).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Account;
use super::envelope::{ApiError, codes, ok};
use super::openapi::Envelope;
use crate::access::signing_keys::{self as keys, GeneratedKey};
use crate::store::signing_keys as rows;
use crate::{AppState, ids, timefmt};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/keys", get(list).post(create))
        .route("/keys/{id}", delete(revoke))
}

/// A new key: `pem` and `jwk` are base64 of the private key's PEM and JWK, shown only now.
#[derive(Serialize, ToSchema)]
pub(super) struct CreatedKey {
    id: String,
    pem: String,
    jwk: String,
    created: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct KeySummary {
    id: String,
    created: String,
}

#[derive(Deserialize)]
struct KeyPath {
    id: String,
}

#[utoipa::path(
    operation_id = "keys_create",
    post,
    path = "/client/v4/accounts/{account_id}/stream/keys",
    tag = "signed URLs",
    params(("account_id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "The new key pair; its private half is not stored", body = Envelope<CreatedKey>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn create(
    State(state): State<AppState>,
    Account(account): Account,
) -> Result<Response, ApiError> {
    let key = tokio::task::spawn_blocking(GeneratedKey::generate)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let created = timefmt::now();
    let public_pem = key.public_pem().map_err(ApiError::internal)?;
    let response = CreatedKey {
        id: key.id.clone(),
        pem: keys::base64_text(&key.private_pem().map_err(ApiError::internal)?),
        jwk: keys::base64_text(&key.private_jwk().map_err(ApiError::internal)?),
        created: created.clone(),
    };
    let id = key.id.clone();
    state
        .store
        .write(move |c| rows::insert_customer_key(c, &account, &id, &public_pem, &created))
        .await?;
    Ok(ok(response))
}

#[utoipa::path(
    operation_id = "keys_list",
    get,
    path = "/client/v4/accounts/{account_id}/stream/keys",
    tag = "signed URLs",
    params(("account_id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "The account's signing keys (ids only)", body = Envelope<Vec<KeySummary>>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn list(
    State(state): State<AppState>,
    Account(account): Account,
) -> Result<Response, ApiError> {
    let stored = state
        .store
        .read(|c| rows::list_customer_keys(c, &account))?;
    Ok(ok(stored
        .into_iter()
        .map(|k| KeySummary {
            id: k.id,
            created: k.created,
        })
        .collect::<Vec<_>>()))
}

#[utoipa::path(
    operation_id = "keys_revoke",
    delete,
    path = "/client/v4/accounts/{account_id}/stream/keys/{id}",
    tag = "signed URLs",
    params(
        ("account_id" = String, Path, description = "Account id"),
        ("id" = String, Path, description = "Signing key id"),
    ),
    responses(
        (status = 200, description = "`result: \"Revoked\"`", body = Envelope<String>),
        (status = "4XX", description = "Error", body = Envelope<Option<String>>),
    ),
)]
async fn revoke(
    State(state): State<AppState>,
    Account(account): Account,
    Path(p): Path<KeyPath>,
) -> Result<Response, ApiError> {
    if !ids::is_uid(&p.id) {
        return Err(key_not_found());
    }
    let revoked = state
        .store
        .write(move |c| rows::revoke_customer_key(c, &account, &p.id))
        .await?;
    if !revoked {
        return Err(key_not_found());
    }
    Ok(ok("Revoked"))
}

pub(super) fn key_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::SIGNING_KEY_NOT_FOUND,
        "signing key not found",
    )
}
