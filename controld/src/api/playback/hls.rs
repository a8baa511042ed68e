//! HLS: the multivariant playlist and the media playlists (plain, LL-HLS with blocking reload,
//! delta updates), rendered from the recording's index on each request.
//!
//! Which segments a media playlist shows: a live input's URL slides (`Window::Live`, at least
//! three target durations, RFC 8216 §6.2.2), or with `dvrEnabled=true` shows the whole recording
//! as EVENT; a video's own URL always shows the whole recording (EVENT while live, VOD once
//! finished), so that its media sequence never goes back between reloads. A preview or a
//! clip (`excerpt`) shows a part of it: see there.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use cfstream_proto::index::excerpt::clip_index;
use cfstream_proto::index::{Progress, RecordingIndex, TrackKind};
use cfstream_proto::render::SegmentUris;
use cfstream_proto::render::blocking::{PlaylistRequest, Readiness, decide, max_hold_ms};
use cfstream_proto::render::hls::{
    LowLatency, MIN_SKIP_UNTIL_TARGET_DURATIONS, MediaPlaylistOptions, render_media_playlist,
    render_multivariant,
};
use cfstream_proto::render::window::Window;
use tokio::time::Instant;

use super::access::{Target, not_found};
use super::excerpt::{Excerpt, clip_range, preview_first_sequence, preview_headers};
use super::recording::{Recording, View, has_media};
use super::source::Source;
use super::viewers;
use super::{manifest, no_content};
use crate::AppState;
use crate::api::envelope::{ApiError, codes};

pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";

/// The recording and its index (its viewer noted), or the answer for "nothing to play yet":
/// 204 for a live input (its URL is static), 404 for a video whose first segment is not
/// written yet.
pub async fn open(
    state: &AppState,
    target: &Target,
    view: &View,
) -> Result<Result<(Recording, Source), Response>, ApiError> {
    let not_ready = || match target {
        Target::Input(_) => Ok(Err(no_content())),
        Target::Video(_) => Err(not_found("playback file")),
    };
    let Some(recording) = Recording::locate(state, target, view)? else {
        return not_ready();
    };
    let Some(source) = Source::open(&recording.dir, recording.live).await? else {
        return not_ready();
    };
    if !source.read(has_media) {
        return not_ready();
    }
    viewers::seen(&recording, &view.viewer);
    Ok(Ok((recording, source)))
}

pub async fn multivariant(
    state: &AppState,
    target: &Target,
    view: &View,
) -> Result<Response, ApiError> {
    let (recording, source) = match open(state, target, view).await? {
        Ok(found) => found,
        Err(answer) => return Ok(answer),
    };
    let query = view.propagated(&recording);
    let media_uri = |kind: TrackKind| {
        let name = format!("media-{}.m3u8", kind.code());
        if query.is_empty() {
            name
        } else {
            format!("{name}?{query}")
        }
    };
    let rendered = source.read(|index| -> Result<_, ApiError> {
        let clip;
        let index = match view.excerpt {
            Some(Excerpt::Clip { time, seconds }) => {
                clip = clip_index(index, &clip_range(index, time, seconds)?);
                &clip
            }
            _ => index,
        };
        let finished = index
            .tracks
            .iter()
            .all(|t| t.progress == Progress::Finished);
        let preview = preview_of(index, view, &recording);
        Ok((render_multivariant(index, &media_uri), finished, preview))
    });
    let (text, finished, preview) = rendered?;
    // An input's URL names a different broadcast tomorrow: never cached long.
    let mut response = manifest(text, PLAYLIST_TYPE, finished && !recording.of_input);
    response.headers_mut().extend(preview.into_iter().flatten());
    Ok(response)
}

/// A clip's multivariant playlist (`clip.m3u8`): a video's recording, `time` and `duration`
/// required.
pub async fn clip(state: &AppState, target: &Target, view: &View) -> Result<Response, ApiError> {
    if !matches!(target, Target::Video(_)) {
        return Err(bad_request(
            "a clip names a video uid (the recording), not a live input".into(),
        ));
    }
    if !matches!(view.excerpt, Some(Excerpt::Clip { .. })) {
        return Err(bad_request(
            "clip.m3u8 needs the query parameters time and duration (e.g. time=600s&duration=30s)"
                .into(),
        ));
    }
    multivariant(state, target, view).await
}

/// The headers of a preview (`preview-start-seconds`, `stream-media-id`), when `view` asks
/// for one.
fn preview_of(
    index: &RecordingIndex,
    view: &View,
    recording: &Recording,
) -> Option<[(HeaderName, HeaderValue); 2]> {
    let Some(Excerpt::Preview { seconds }) = view.excerpt else {
        return None;
    };
    let first = preview_first_sequence(index, seconds)?;
    Some(preview_headers(index, first, &recording.video_uid))
}

pub async fn media(
    state: &AppState,
    target: &Target,
    view: &View,
    kind: TrackKind,
    query: &str,
) -> Result<Response, ApiError> {
    let request = PlaylistRequest::from_query(query).map_err(|e| bad_request(e.to_string()))?;
    let (recording, source) = match open(state, target, view).await? {
        Ok(found) => found,
        Err(answer) => return Ok(answer),
    };
    let low_latency = view.low_latency || recording.prefers_low_latency(state)?;
    hold_until_ready(&source, kind, &request).await?;
    let window = if recording.of_input && !view.dvr {
        Window::Live { min_duration_ms: 0 }
    } else {
        Window::Whole
    };
    let query = view.propagated(&recording);
    let rendered = source.read(|index| -> Result<_, ApiError> {
        let clip;
        let (index, window) = match view.excerpt {
            Some(Excerpt::Clip { time, seconds }) => {
                clip = clip_index(index, &clip_range(index, time, seconds)?);
                (&clip, Window::Whole)
            }
            Some(Excerpt::Preview { seconds }) => (
                index,
                preview_first_sequence(index, seconds).map_or(window, Window::FromSequence),
            ),
            None => (index, window),
        };
        let preview = preview_of(index, view, &recording);
        let Some(track) = index.track(kind) else {
            return Ok(None);
        };
        let live = track.progress == Progress::Live;
        let options = MediaPlaylistOptions {
            window,
            uris: SegmentUris {
                prefix: "",
                query: &query,
            },
            low_latency: (live && low_latency).then(LowLatency::default),
            delta_updates: live.then_some(MIN_SKIP_UNTIL_TARGET_DURATIONS),
            skip_requested: request.skip,
        };
        Ok(Some((
            render_media_playlist(track, &options),
            !live,
            preview,
        )))
    });
    let (text, finished, preview) = rendered?.ok_or_else(|| not_found("track"))?;
    // With `rec` an input's playlist names one recording, which never changes once finished.
    let mut response = manifest(text, PLAYLIST_TYPE, finished);
    response.headers_mut().extend(preview.into_iter().flatten());
    Ok(response)
}

fn bad_request(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, message)
}

/// LL-HLS blocking reload: returns once the track lists what `request` asks for (at once
/// without `_HLS_msn`), 400 when it asks too far ahead, 503 after holding it three target
/// durations. A stored index does not change while the request waits: it is answered now.
async fn hold_until_ready(
    source: &Source,
    kind: TrackKind,
    request: &PlaylistRequest,
) -> Result<(), ApiError> {
    // Subscribed before the first look, so that no change between the two is missed.
    let mut changes = source.subscribe();
    let mut deadline = None;
    loop {
        let decision = source.read(|index| {
            let track = index.track(kind)?;
            Some((decide(track, request), max_hold_ms(track)))
        });
        let (readiness, hold_ms) = decision.ok_or_else(|| not_found("track"))?;
        match readiness {
            Readiness::Ready => return Ok(()),
            Readiness::TooFarAhead => {
                return Err(bad_request(format!(
                    "_HLS_msn={} _HLS_part={}: further ahead than the playlist allows \
                     (at most two segments, or three parts, past the last listed)",
                    request.msn.unwrap_or_default(),
                    request.part.map_or("-".to_owned(), |p| p.to_string()),
                )));
            }
            Readiness::Wait => {}
        }
        let Some(changes) = changes.as_mut() else {
            return Ok(());
        };
        let deadline =
            *deadline.get_or_insert_with(|| Instant::now() + Duration::from_millis(hold_ms));
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {}
            // The writer is gone: answer with what is listed.
            Ok(Err(_)) => return Ok(()),
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    codes::INTERNAL,
                    format!("the part asked for was not listed within {hold_ms} ms"),
                ));
            }
        }
    }
}
