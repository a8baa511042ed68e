//! Which recording a playback request is about, and how the request wants it shown.

use std::path::PathBuf;

use axum::http::StatusCode;
use cfstream_proto::index::RecordingIndex;

use super::access::{Target, not_found};
use super::excerpt::{Excerpt, parse_seconds};
use super::viewers::Viewer;
use crate::AppState;
use crate::api::envelope::{ApiError, codes};
use crate::ids;
use crate::store::live_inputs;
use crate::store::videos::{self, STATE_LIVE};

/// The query parameters that choose what a manifest shows (the `_HLS_*` directives are read
/// by the media playlist handler), and who is watching.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// `protocol=llhls`.
    pub low_latency: bool,
    /// `dvrEnabled=true`.
    pub dvr: bool,
    /// `rec=<video uid>`: a live input's recording.
    pub recording: Option<String>,
    /// `vid=<viewer id>`, or who the request turned out to be (`Viewer::identify`).
    pub viewer: Viewer,
    /// `duration` (a preview) or `time` and `duration` (a clip).
    pub excerpt: Option<Excerpt>,
}

fn bad_parameter(name: &str, value: &str, expected: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        codes::INVALID_REQUEST,
        format!("query parameter {name}={value:?}: expected {expected}"),
    )
}

impl View {
    /// Reads the raw query string; unknown parameters are ignored, known ones with a value
    /// they cannot have are a 400 naming them.
    pub fn parse(query: &str) -> Result<View, ApiError> {
        let mut view = View::default();
        let (mut time, mut duration) = (None, None);
        let pairs = query.split('&').filter(|p| !p.is_empty());
        for (key, value) in pairs.map(|p| p.split_once('=').unwrap_or((p, ""))) {
            match key {
                "protocol" => match value {
                    "llhls" => view.low_latency = true,
                    "hls" | "" => view.low_latency = false,
                    _ => return Err(bad_parameter(key, value, "llhls or hls")),
                },
                "dvrEnabled" => match value {
                    "true" => view.dvr = true,
                    "false" | "" => view.dvr = false,
                    _ => return Err(bad_parameter(key, value, "true or false")),
                },
                "rec" if ids::is_uid(value) => view.recording = Some(value.to_owned()),
                "rec" => return Err(bad_parameter(key, value, "a video uid")),
                "vid" if ids::is_viewer_id(value) => view.viewer = Viewer::Id(value.to_owned()),
                "vid" => return Err(bad_parameter(key, value, "a viewer id")),
                "time" => time = Some(parse_seconds(key, value)?),
                "duration" => duration = Some(parse_seconds(key, value)?),
                _ => {}
            }
        }
        view.excerpt = Excerpt::from_parameters(time, duration)?;
        Ok(view)
    }

    /// The query string put on the URIs a manifest names (media playlists, segments), so that
    /// they show the same view of the same recording to the same viewer: `protocol`,
    /// `dvrEnabled`, the excerpt, for a live input `rec`, and `vid` (one minted for this request
    /// only while the recording is live: only a live recording's viewers are counted).
    pub fn propagated(&self, recording: &Recording) -> String {
        let mut pairs = Vec::new();
        if self.low_latency {
            pairs.push("protocol=llhls".to_owned());
        }
        if self.dvr {
            pairs.push("dvrEnabled=true".to_owned());
        }
        if let Some(excerpt) = self.excerpt {
            pairs.push(excerpt.query());
        }
        if recording.of_input {
            pairs.push(format!("rec={}", recording.video_uid));
        }
        if let Some(id) = self.viewer.handed_on(recording.live) {
            pairs.push(format!("vid={id}"));
        }
        pairs.join("&")
    }
}

/// A recording to play.
pub struct Recording {
    pub dir: PathBuf,
    pub video_uid: String,
    pub input_uid: String,
    /// The database says it is being recorded.
    pub live: bool,
    /// Requested through its live input's id (not its own video uid).
    pub of_input: bool,
    /// The video row's `created`, RFC 3339 (absent when the row is not written yet).
    pub created: Option<String>,
}

impl Recording {
    /// The recording `target` names: a video's own, or a live input's current broadcast (or
    /// the one `rec` names). `None`: a live input that is not live.
    pub fn locate(
        state: &AppState,
        target: &Target,
        view: &View,
    ) -> Result<Option<Recording>, ApiError> {
        let input = match target {
            Target::Video(v) => {
                return Ok(Some(Recording {
                    dir: state.pipelines.recording_dir(&v.live_input, &v.uid),
                    video_uid: v.uid.clone(),
                    input_uid: v.live_input.clone(),
                    live: v.state == STATE_LIVE,
                    of_input: false,
                    created: Some(v.created.clone()),
                }));
            }
            Target::Input(input) => input,
        };
        let current = state.pipelines.current_recording(&input.uid);
        let Some(video_uid) = view.recording.clone().or(current.clone()) else {
            return Ok(None);
        };
        let video = state.store.read(|c| videos::get_any(c, &video_uid))?;
        let video = match video {
            Some(v) if v.live_input == input.uid => Some(v),
            Some(_) => return Err(not_found("recording of this live input")),
            // The current broadcast's row may not be written yet; a `rec` must exist.
            None if current.as_deref() == Some(video_uid.as_str()) => None,
            None => return Err(not_found("recording of this live input")),
        };
        Ok(Some(Recording {
            dir: state.pipelines.recording_dir(&input.uid, &video_uid),
            live: video.as_ref().is_none_or(|v| v.state == STATE_LIVE),
            created: video.map(|v| v.created),
            video_uid,
            input_uid: input.uid.clone(),
            of_input: true,
        }))
    }

    /// The input's `preferLowLatency`.
    pub fn prefers_low_latency(&self, state: &AppState) -> Result<bool, ApiError> {
        Ok(state
            .store
            .read(|c| live_inputs::prefer_low_latency(c, &self.input_uid))?)
    }
}

/// Whether every track lists a complete segment: before that a DASH Period would be empty
/// (players refuse an MPD without one) and a plain HLS player would find nothing to start at.
pub fn has_media(index: &RecordingIndex) -> bool {
    !index.tracks.is_empty() && index.tracks.iter().all(|t| !t.segments.is_empty())
}
