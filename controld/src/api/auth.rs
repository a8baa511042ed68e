//! Bearer-token authentication: a token grants exactly one account.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::envelope::{ApiError, codes};
use crate::AppState;
use crate::store::accounts;

/// The account named in the path, after checking that the request's token grants it.
pub struct Account(pub String);

impl FromRequestParts<AppState> for Account {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthenticated = |why: &str| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                codes::AUTHENTICATION,
                format!("Authentication error: {why}"),
            )
        };
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| unauthenticated("missing or malformed Authorization: Bearer header"))?
            .to_owned();
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    codes::INVALID_REQUEST,
                    e.to_string(),
                )
            })?;
        let wanted = params.get("account_id").cloned().unwrap_or_default();
        let granted = state
            .store
            .read(|c| accounts::account_for_token(c, &token))?
            .ok_or_else(|| unauthenticated("invalid API token"))?;
        if granted != wanted {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                codes::FORBIDDEN,
                "Forbidden: this token does not grant access to this account",
            ));
        }
        Ok(Account(granted))
    }
}
