//! Webhook bodies in Cloudflare's shapes.

use serde_json::{Value, json};

use crate::api::videos::VideoView;
use crate::store::videos::{Details, Video};

/// The live input events Cloudflare sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveInputEvent {
    Connected,
    Disconnected,
    Errored,
}

impl LiveInputEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveInputEvent::Connected => "live_input.connected",
            LiveInputEvent::Disconnected => "live_input.disconnected",
            LiveInputEvent::Errored => "live_input.errored",
        }
    }
}

/// The error an `errored` event carries.
#[derive(Debug, Clone)]
pub struct InputError {
    pub code: String,
    pub message: String,
}

const NOTIFICATION_NAME: &str = "Stream Live Input";

/// `{name, text, data: {notification_name, input_id, event_type, updated_at,
/// live_input_errored?}, ts}`; `name` is the input's `meta.name` (Cloudflare puts the
/// notification's name there; an input has no other).
pub fn live_input(
    input_uid: &str,
    input_name: Option<&str>,
    event: LiveInputEvent,
    error: Option<&InputError>,
    updated_at: &str,
    ts: i64,
) -> Value {
    let event_type = event.as_str();
    let mut data = json!({
        "notification_name": NOTIFICATION_NAME,
        "input_id": input_uid,
        "event_type": event_type,
        "updated_at": updated_at,
    });
    if let Some(e) = error {
        // Codec names are not known for every failure; Cloudflare sends "" then too.
        data["live_input_errored"] = json!({
            "error": {"code": e.code, "message": e.message},
            "video_codec": "",
            "audio_codec": "",
        });
    }
    json!({
        "name": input_name.unwrap_or(NOTIFICATION_NAME),
        "text": format!(
            "Notification type: {NOTIFICATION_NAME}\nInput ID: {input_uid}\n\
             Event type: {event_type}\nUpdated at: {updated_at}"
        ),
        "data": data,
        "ts": ts,
    })
}

/// The video webhook: the video object as `GET /stream/{uid}` shows it.
pub fn video(v: Video, http_base: &str, details: Details) -> Value {
    serde_json::to_value(VideoView::new(v, http_base, details)).expect("a video view serializes")
}
