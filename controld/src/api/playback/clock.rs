//! `GET /time`: the server's clock, for DASH players (`UTCTiming`
//! `urn:mpeg:dash:utc:http-iso:2014`) and latency measurements.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use cfstream_proto::render::time::iso8601_ms;

#[utoipa::path(
    get,
    operation_id = "playback_time",
    path = "/time",
    tag = "playback",
    responses((status = 200, description = "The server's UTC clock, ISO 8601 with milliseconds (`2026-12-02T15:00:00.123Z`)", content_type = "text/plain", body = String)),
    security(()),
)]
pub async fn now() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        iso8601_ms(super::dash::now_ms()),
    )
        .into_response()
}
