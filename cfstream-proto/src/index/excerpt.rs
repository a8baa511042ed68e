//! Excerpts of a recording: the last minutes of it (preview manifests) and the whole segments
//! covering an interval (clip manifests and clip MP4s). A clip is an index of its own, finished,
//! holding only its segments, so that the renderers show it as they show any recording.
//!
//! Times are seconds from the recording's start, which is decode time 0 of the main track
//! (video when there is one): the segmenter starts every track's decode timeline there.

use std::ops::RangeInclusive;

use super::{Progress, RecordingIndex, TrackIndex, TrackKind};

/// Why an interval has no clip.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClipError {
    #[error("the recording has no segment yet")]
    Empty,
    #[error("time {time_ms} ms is past the end of the recording ({end_ms} ms recorded)")]
    PastTheEnd { time_ms: u64, end_ms: u64 },
}

/// The main track: video when there is one (segments of both tracks share sequence numbers).
pub fn main_track(index: &RecordingIndex) -> Option<&TrackIndex> {
    index
        .track(TrackKind::Video)
        .or_else(|| index.track(TrackKind::Audio))
}

fn ms_to_ticks(ms: u64, timescale: u32) -> u64 {
    (u128::from(ms) * u128::from(timescale) / 1000).min(u128::from(u64::MAX)) as u64
}

/// Media sequence numbers of the whole segments of `track` covering
/// `[time_ms, time_ms + duration_ms]`: from the one holding `time_ms` (a clip starts at the
/// keyframe at or before the time asked, every segment starting with one) to the last one
/// starting before the interval's end. An interval running past the listed end is cut there.
pub fn clip_sequences(
    track: &TrackIndex,
    time_ms: u64,
    duration_ms: u64,
) -> Result<RangeInclusive<u64>, ClipError> {
    let (first, last) = match (track.segments.front(), track.segments.back()) {
        (Some(first), Some(last)) => (first, last),
        _ => return Err(ClipError::Empty),
    };
    let from = ms_to_ticks(time_ms, track.timescale);
    let to = from.saturating_add(ms_to_ticks(duration_ms, track.timescale));
    if from >= last.end_time() {
        return Err(ClipError::PastTheEnd {
            time_ms,
            end_ms: last.end_time() * 1000 / u64::from(track.timescale.max(1)),
        });
    }
    let start = (track.segments.iter())
        .rfind(|s| s.decode_time <= from)
        .unwrap_or(first);
    let end = (track.segments.iter())
        .rfind(|s| s.decode_time < to)
        .unwrap_or(start);
    Ok(start.sequence..=end.sequence.max(start.sequence))
}

/// The index of a clip: every track keeping only the segments `sequences` names, finished (a
/// VOD playlist ending with `EXT-X-ENDLIST`), without parts or an open segment.
pub fn clip_index(index: &RecordingIndex, sequences: &RangeInclusive<u64>) -> RecordingIndex {
    let tracks = index.tracks.iter().map(|track| {
        let segments = (track.segments.iter())
            .filter(|s| sequences.contains(&s.sequence))
            .map(|s| super::Segment {
                parts: Vec::new(),
                ..s.clone()
            })
            .collect::<std::collections::VecDeque<_>>();
        TrackIndex {
            discontinuity_sequence: segments
                .front()
                .map_or(track.discontinuity_sequence, |s| s.discontinuity_number),
            segments,
            open: None,
            progress: Progress::Finished,
            trimmed: false,
            ..track.clone_header()
        }
    });
    RecordingIndex {
        stream: index.stream.clone(),
        tracks: tracks.collect(),
    }
}

/// Seconds from the recording's start to where segment `index` of `track` starts (the
/// `preview-start-seconds` of a preview beginning there).
pub fn start_seconds(track: &TrackIndex, index: usize) -> f64 {
    track.segments.get(index).map_or(0.0, |s| {
        s.decode_time as f64 / f64::from(track.timescale.max(1))
    })
}

impl TrackIndex {
    /// This track without segments (what an excerpt is built on).
    fn clone_header(&self) -> TrackIndex {
        TrackIndex {
            kind: self.kind,
            timescale: self.timescale,
            target_duration: self.target_duration,
            part_target: self.part_target,
            discontinuity_sequence: self.discontinuity_sequence,
            segments: Default::default(),
            open: None,
            progress: self.progress,
            trimmed: self.trimmed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::{push_segment, recording, track_with_durations};

    #[test]
    fn a_clip_starts_at_the_segment_holding_its_time_and_ends_with_its_interval() {
        // Segments of 4 s: [0,4) [4,8) [8,12) [12,16) [16,20).
        let track = track_with_durations(&[4.0; 5], 4);
        assert_eq!(clip_sequences(&track, 5_000, 4_000), Ok(1..=2));
        assert_eq!(clip_sequences(&track, 4_000, 4_000), Ok(1..=1));
        assert_eq!(clip_sequences(&track, 0, 60_000), Ok(0..=4));
        assert_eq!(clip_sequences(&track, 19_999, 0), Ok(4..=4));
        assert_eq!(
            clip_sequences(&track, 20_000, 1_000),
            Err(ClipError::PastTheEnd {
                time_ms: 20_000,
                end_ms: 20_000
            })
        );
        assert_eq!(
            clip_sequences(&track_with_durations(&[], 4), 0, 1),
            Err(ClipError::Empty)
        );
    }

    #[test]
    fn a_clip_index_is_finished_and_keeps_its_segments_numbers_and_runs() {
        let mut video = track_with_durations(&[4.0; 3], 4);
        push_segment(&mut video, 360_000, true);
        push_segment(&mut video, 360_000, false);
        let index = recording(video);
        let clip = clip_index(&index, &(3..=4));
        for track in &clip.tracks {
            let sequences: Vec<u64> = track.segments.iter().map(|s| s.sequence).collect();
            assert_eq!(sequences, [3, 4]);
            assert_eq!(track.progress, Progress::Finished);
            assert_eq!(track.discontinuity_sequence, 1);
            assert!(track.open.is_none());
        }
        assert_eq!(start_seconds(&clip.tracks[0], 0), 12.0);
        assert_eq!(start_seconds(&clip.tracks[1], 1), 16.0);
    }
}
