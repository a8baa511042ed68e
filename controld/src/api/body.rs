//! JSON request bodies whose errors name the offending field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::envelope::{ApiError, codes};

/// Like `axum::Json`, but errors are v4 envelopes naming the field (`recording.mode: unknown
/// variant …`), and an empty body reads as `{}` (every create/update field is optional).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::PAYLOAD_TOO_LARGE,
                format!("request body: {e}"),
            )
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de)
            .map(JsonBody)
            .map_err(|e| {
                let path = e.path().to_string();
                if path == "." || path.is_empty() {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        codes::INVALID_REQUEST,
                        format!("request body: {}", e.inner()),
                    )
                } else {
                    ApiError::invalid_field(&path, e.inner())
                }
            })
    }
}

/// Longest free text field (`creator`, `defaultCreator`, …).
pub const MAX_TEXT: usize = 1024;
const MAX_ALLOWED_ORIGINS: usize = 100;

/// A free text field of at most `MAX_TEXT` bytes.
pub fn check_text(field: &str, value: &str) -> Result<(), ApiError> {
    if value.len() > MAX_TEXT {
        return Err(ApiError::invalid_field(
            field,
            format!("longer than {MAX_TEXT} bytes"),
        ));
    }
    Ok(())
}

/// An `allowedOrigins` list (of a live input's recording settings or of a video): host names
/// with an optional `*.` prefix and `:port`, at most `MAX_ALLOWED_ORIGINS`.
pub fn check_origins(field: &str, origins: Option<&[String]>) -> Result<(), ApiError> {
    let origins = origins.unwrap_or_default();
    if origins.len() > MAX_ALLOWED_ORIGINS {
        return Err(ApiError::invalid_field(
            field,
            format!("at most {MAX_ALLOWED_ORIGINS} origins"),
        ));
    }
    for (i, o) in origins.iter().enumerate() {
        let valid = !o.is_empty()
            && o.len() <= 253
            && o.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.*:".contains(&b));
        if !valid {
            return Err(ApiError::invalid_field(
                &format!("{field}.{i}"),
                format!("{o:?} is not a host name (with optional *. prefix and :port)"),
            ));
        }
    }
    Ok(())
}

/// For optional fields where `null` (clear) differs from absent (unchanged).
pub fn present<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    T::deserialize(d).map(Some)
}
