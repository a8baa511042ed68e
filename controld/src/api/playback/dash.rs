//! DASH: `video.mpd`, dynamic while the recording is live (its `availabilityStartTime` fixed for
//! the recording, `timeShiftBufferDepth` the live window, `UTCTiming` pointing at our `/time`),
//! static once finished. The same CMAF files as HLS. A dynamic MPD names its `Location`: the
//! request's URL with the propagated query (the viewer id among it).

use axum::response::Response;
use cfstream_proto::index::{Progress, RecordingIndex, TrackKind};
use cfstream_proto::render::SegmentUris;
use cfstream_proto::render::dash::{MpdOptions, UtcTiming, UtcTimingScheme, render_mpd};
use cfstream_proto::render::window::Window;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::access::Target;
use super::recording::View;
use super::{hls, manifest};
use crate::AppState;
use crate::api::envelope::ApiError;

pub const MPD_TYPE: &str = "application/dash+xml";

/// Players reload a dynamic MPD at most this often, and at least once per target duration.
const MAX_UPDATE_PERIOD_MS: u64 = 2000;

pub async fn mpd(state: &AppState, target: &Target, view: &View) -> Result<Response, ApiError> {
    let (recording, source) = match hls::open(state, target, view).await? {
        Ok(found) => found,
        Err(answer) => return Ok(answer),
    };
    let window = if recording.of_input && !view.dvr {
        Window::Live { min_duration_ms: 0 }
    } else {
        Window::Whole
    };
    let query = view.propagated(&recording);
    // Players reload the MPD from its Location: with `vid` (and `rec`) they stay the viewer
    // they were, on the broadcast they started.
    let location = format!("video.mpd?{query}");
    let clock = format!("{}/time", state.urls.http);
    let created_ms = recording.created.as_deref().and_then(rfc3339_ms);
    let (text, finished) = source.read(|index| {
        let target_ms = reference_target_ms(index);
        let options = MpdOptions {
            window,
            uris: SegmentUris {
                prefix: "",
                query: &query,
            },
            publish_time_ms: now_ms(),
            availability_start_ms: availability_start_ms(index, created_ms),
            minimum_update_period_ms: target_ms.clamp(1, MAX_UPDATE_PERIOD_MS),
            suggested_presentation_delay_ms: 3 * target_ms,
            utc_timing: Some(UtcTiming {
                scheme: UtcTimingScheme::HttpIso,
                url: &clock,
            }),
            location: Some(&location),
        };
        let finished = index
            .tracks
            .iter()
            .all(|t| t.progress == Progress::Finished);
        (render_mpd(index, &options), finished)
    });
    Ok(manifest(text, MPD_TYPE, finished && !recording.of_input))
}

fn reference_target_ms(index: &RecordingIndex) -> u64 {
    let track = index.track(TrackKind::Video).or(index.tracks.first());
    track.map_or(0, |t| u64::from(t.target_duration) * 1000)
}

/// A time no later than the recording's first frame that stays the same on every reload: when
/// the recording's row was created (the broadcast's start), or the first listed segment's wall
/// clock if that is earlier.
fn availability_start_ms(index: &RecordingIndex, created_ms: Option<i64>) -> i64 {
    let first_frame = index
        .tracks
        .iter()
        .filter_map(|t| t.segments.front().map(|s| s.program_date_time_ms))
        .min();
    match (created_ms, first_frame) {
        (Some(created), Some(first)) => created.min(first),
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => now_ms(),
    }
}

fn rfc3339_ms(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

pub fn now_ms() -> i64 {
    let t = OffsetDateTime::now_utc();
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
