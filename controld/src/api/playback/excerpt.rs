//! Live instant clipping's query parameters: `duration` alone asks for a preview (the last
//! `duration` of the broadcast or recording, at most 5 minutes), `time` with `duration` for a
//! clip (at most 60 s, from `time` seconds after the recording's start). Both are written as
//! on Cloudflare (`30s`, `3m`; also `1m30s` or plain seconds, as thumbnails' `time`); a fraction
//! of a second is dropped.
//!
//! A preview is a window of the recording's own playlists: while live it slides (no
//! `EXT-X-PLAYLIST-TYPE`, like a live input's URL; an EVENT playlist may never drop a segment,
//! and the last minutes of a broadcast do), once finished it ends with `EXT-X-ENDLIST`. Its
//! first segment is chosen on the main track and both tracks start at that segment. A clip is
//! the whole segments covering its interval, shown as a VOD of their own: it starts at the
//! keyframe at or before `time` (every segment starts with one).

use axum::http::{HeaderName, HeaderValue, StatusCode};
use cfstream_proto::index::excerpt::{ClipError, clip_sequences, main_track};
use cfstream_proto::index::{RecordingIndex, TrackIndex};
use cfstream_proto::render::window::Window;

use crate::api::envelope::{ApiError, codes};

/// The longest preview.
pub const MAX_PREVIEW_SECONDS: u64 = 5 * 60;
/// The longest clip.
pub const MAX_CLIP_SECONDS: u64 = 60;

/// `preview-start-seconds`: where a preview starts, seconds from the recording's start.
pub static PREVIEW_START_SECONDS: HeaderName = HeaderName::from_static("preview-start-seconds");
/// `stream-media-id`: the video uid of the recording a preview shows.
pub static STREAM_MEDIA_ID: HeaderName = HeaderName::from_static("stream-media-id");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Excerpt {
    Preview { seconds: u64 },
    Clip { time: u64, seconds: u64 },
}

fn bad(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, message)
}

/// `30s`, `3m`, `1m30s` (`crate::timefmt::parse_offset`): whole seconds (a fraction is
/// dropped: clips and previews are cut at segment boundaries anyway).
pub fn parse_seconds(key: &str, value: &str) -> Result<u64, ApiError> {
    crate::timefmt::parse_offset(value)
        .map(|offset| offset.as_secs())
        .ok_or_else(|| {
            bad(format!(
                "query parameter {key}={value:?}: expected a time like 30s, 3m or 1m30s"
            ))
        })
}

impl Excerpt {
    /// What `time` and `duration` (seconds, as parsed) ask for; `None` when neither is given.
    pub fn from_parameters(
        time: Option<u64>,
        duration: Option<u64>,
    ) -> Result<Option<Excerpt>, ApiError> {
        match (time, duration) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(bad("query parameter time needs a duration too".into())),
            (None, Some(seconds)) if seconds == 0 || seconds > MAX_PREVIEW_SECONDS => Err(bad(
                format!("query parameter duration={seconds}s: a preview lasts 1 s to 5 minutes"),
            )),
            (None, Some(seconds)) => Ok(Some(Excerpt::Preview { seconds })),
            (Some(_), Some(seconds)) if seconds == 0 || seconds > MAX_CLIP_SECONDS => Err(bad(
                format!("query parameter duration={seconds}s: a clip lasts 1 to 60 s"),
            )),
            (Some(time), Some(seconds)) => Ok(Some(Excerpt::Clip { time, seconds })),
        }
    }

    /// The query string that asks for this excerpt again.
    pub fn query(self) -> String {
        match self {
            Excerpt::Preview { seconds } => format!("duration={seconds}s"),
            Excerpt::Clip { time, seconds } => format!("time={time}s&duration={seconds}s"),
        }
    }
}

/// Media sequence number of the first segment of a preview lasting `seconds` (the window of
/// the main track that lasts at least that long, cut at segment boundaries).
pub fn preview_first_sequence(index: &RecordingIndex, seconds: u64) -> Option<u64> {
    let track = main_track(index)?;
    let window = Window::Live {
        min_duration_ms: seconds * 1000,
    };
    let first = window.first_index(track);
    track.segments.get(first).map(|s| s.sequence)
}

/// Index in `track.segments` of segment `sequence` (or of the first after it).
pub fn index_of_sequence(track: &TrackIndex, sequence: u64) -> usize {
    track.segments.partition_point(|s| s.sequence < sequence)
}

/// `preview-start-seconds` of a preview starting at segment `sequence`.
pub fn preview_headers(
    index: &RecordingIndex,
    sequence: u64,
    video_uid: &str,
) -> [(HeaderName, HeaderValue); 2] {
    let start = main_track(index).map_or(0.0, |track| {
        let i = index_of_sequence(track, sequence);
        cfstream_proto::index::excerpt::start_seconds(track, i)
    });
    let start =
        HeaderValue::from_str(&format!("{start:.3}")).unwrap_or(HeaderValue::from_static("0"));
    let uid = HeaderValue::from_str(video_uid).unwrap_or(HeaderValue::from_static(""));
    [
        (PREVIEW_START_SECONDS.clone(), start),
        (STREAM_MEDIA_ID.clone(), uid),
    ]
}

/// The segments of a clip, by media sequence number: 400 when its time is past the end of
/// what is recorded, 404 while nothing is.
pub fn clip_range(
    index: &RecordingIndex,
    time: u64,
    seconds: u64,
) -> Result<std::ops::RangeInclusive<u64>, ApiError> {
    let track = main_track(index).ok_or_else(|| super::access::not_found("recording"))?;
    clip_sequences(track, time * 1000, seconds * 1000).map_err(|e| match e {
        ClipError::Empty => super::access::not_found("recording"),
        past @ ClipError::PastTheEnd { .. } => bad(format!("query parameter time={time}s: {past}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_seconds_or_minutes_within_their_limits() {
        assert_eq!(parse_seconds("duration", "30s").unwrap(), 30);
        assert_eq!(parse_seconds("duration", "3m").unwrap(), 180);
        assert_eq!(parse_seconds("time", "1m30.5s").unwrap(), 90);
        for bad in ["", "s", "-3s", "30 s", "8x", "9999999999h"] {
            assert!(parse_seconds("duration", bad).is_err(), "{bad}");
        }
        let ok = |t, d| Excerpt::from_parameters(t, d).unwrap();
        assert_eq!(ok(None, None), None);
        assert_eq!(ok(None, Some(300)), Some(Excerpt::Preview { seconds: 300 }));
        assert_eq!(
            ok(Some(600), Some(60)),
            Some(Excerpt::Clip {
                time: 600,
                seconds: 60
            })
        );
        for (t, d) in [
            (None, Some(301)),
            (Some(0), Some(61)),
            (Some(5), None),
            (None, Some(0)),
        ] {
            let message = Excerpt::from_parameters(t, d).unwrap_err().message;
            assert!(
                message.contains("time") || message.contains("duration"),
                "{message}"
            );
        }
        assert_eq!(
            Excerpt::Clip {
                time: 600,
                seconds: 30
            }
            .query(),
            "time=600s&duration=30s"
        );
    }
}
