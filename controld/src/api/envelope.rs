//! Cloudflare's v4 envelope `{result, success, errors, messages}` on every response, errors too.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// Error codes of this API (all ≥ 1000, stable: clients may match on them). Cloudflare's own
/// generic codes are used where they exist (10000, 10009).
pub mod codes {
    pub const AUTHENTICATION: u32 = 10000;
    pub const FORBIDDEN: u32 = 10009;
    pub const INVALID_REQUEST: u32 = 10400;
    pub const ROUTE_NOT_FOUND: u32 = 10404;
    pub const METHOD_NOT_ALLOWED: u32 = 10405;
    pub const PAYLOAD_TOO_LARGE: u32 = 10413;
    pub const CONFLICT: u32 = 10409;
    pub const INTERNAL: u32 = 10500;
    pub const LIVE_INPUT_NOT_FOUND: u32 = 10601;
    pub const VIDEO_NOT_FOUND: u32 = 10602;
    pub const PLAYBACK_NOT_FOUND: u32 = 10603;
    /// The account has no webhook subscription.
    pub const WEBHOOK_NOT_FOUND: u32 = 10604;
    pub const OUTPUT_NOT_FOUND: u32 = 10605;
    /// Playback needs a signed-URL token, or the token given is not valid (401).
    pub const SIGNED_URL_INVALID: u32 = 10401;
    /// Playback refused: origin not in `allowedOrigins`, a token access rule, or a token signed
    /// by another account's key (403).
    pub const PLAYBACK_FORBIDDEN: u32 = 10403;
    pub const SIGNING_KEY_NOT_FOUND: u32 = 10610;
}

/// Successful response with `result`.
pub fn ok<T: Serialize>(result: T) -> Response {
    Json(json!({"result": result, "success": true, "errors": [], "messages": []})).into_response()
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
    /// JSON pointer to the offending field of the request body, when there is one.
    pub pointer: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            pointer: None,
        }
    }

    /// 400 naming the field (`field` in API spelling, e.g. `recording.timeoutSeconds`).
    pub fn invalid_field(field: &str, message: impl std::fmt::Display) -> Self {
        ApiError {
            pointer: Some(format!("/{}", field.replace('.', "/"))),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                codes::INVALID_REQUEST,
                format!("{field}: {message}"),
            )
        }
    }

    pub fn live_input_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::LIVE_INPUT_NOT_FOUND,
            "live input not found",
        )
    }

    pub fn video_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::VIDEO_NOT_FOUND,
            "video not found",
        )
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        // The cause goes to the log, not to the client.
        tracing::error!("internal error: {err}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "internal error",
        )
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(pointer) = self.pointer {
            error["source"] = json!({ "pointer": pointer });
        }
        let body = json!({"result": null, "success": false, "errors": [error], "messages": []});
        (self.status, Json(body)).into_response()
    }
}

pub async fn route_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::ROUTE_NOT_FOUND,
        "no such route",
    )
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}
