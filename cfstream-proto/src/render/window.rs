//! Which listed segments a playlist or an MPD shows.
//!
//! A live (non-DVR) playlist slides: RFC 8216 §6.2.2 lets the server remove the oldest segment
//! only while the playlist without it still lasts at least three target durations. The window
//! here is the shortest that rule allows (or longer, by the caller's minimum): it starts at the
//! newest segment from which the listed segments to the end last at least the threshold. Adding
//! a segment at the end can only move that start forward, and trimming the head removes
//! segments older than it, so the first media sequence number shown never goes back.

use crate::index::TrackIndex;

/// The listed segments a manifest shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// All of them: a DVR (`EVENT`) or finished (`VOD`) playlist, a static MPD.
    Whole,
    /// A sliding live window lasting at least `min_duration_ms` and at least three target
    /// durations (whichever is longer), when that many segments are listed.
    Live { min_duration_ms: u64 },
    /// From the segment of this media sequence number (or the first after it) to the end: a
    /// window chosen on one track and shown on every track alike (a preview).
    FromSequence(u64),
}

impl Window {
    /// Index in `track.segments` of the first segment shown.
    pub fn first_index(self, track: &TrackIndex) -> usize {
        match self {
            Window::Whole => 0,
            Window::Live { min_duration_ms } => live_window_start(track, min_duration_ms),
            Window::FromSequence(sequence) => {
                track.segments.partition_point(|s| s.sequence < sequence)
            }
        }
    }
}

/// Index in `track.segments` of the first segment of the live window: the last index from
/// which the listed segments last at least `max(3 × target duration, min_duration_ms)`, or 0
/// when all of them last less than that.
pub fn live_window_start(track: &TrackIndex, min_duration_ms: u64) -> usize {
    let threshold = live_window_threshold(track, min_duration_ms);
    let mut suffix = 0u64;
    for (i, segment) in track.segments.iter().enumerate().rev() {
        suffix = suffix.saturating_add(segment.duration);
        if suffix >= threshold {
            return i;
        }
    }
    0
}

/// The duration in ticks a live window must reach before its oldest segment may go.
pub fn live_window_threshold(track: &TrackIndex, min_duration_ms: u64) -> u64 {
    let rfc = track.target_duration_ticks().saturating_mul(3);
    let min = (u128::from(min_duration_ms) * u128::from(track.timescale) / 1000) as u64;
    rfc.max(min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::{track_with_durations, video_track};

    #[test]
    fn keeps_the_shortest_window_rfc_8216_allows() {
        // Target 4 s, segments of 4 s: three of them last exactly 12 s.
        let track = track_with_durations(&[4.0; 10], 4);
        assert_eq!(live_window_start(&track, 0), 7);
        // A 20 s minimum needs five.
        assert_eq!(live_window_start(&track, 20_000), 5);
        // Shorter segments: 3.5 s ones need four to reach 12 s (3 × 3.5 = 10.5 < 12).
        let track = track_with_durations(&[3.5; 10], 4);
        assert_eq!(live_window_start(&track, 0), 6);
        // Fewer than the threshold: everything.
        let track = track_with_durations(&[4.0; 2], 4);
        assert_eq!(live_window_start(&track, 0), 0);
        assert_eq!(live_window_start(&video_track(0, 4), 0), 0);
    }

    #[test]
    fn from_sequence_starts_at_that_segment_or_the_first_after_it() {
        let mut track = track_with_durations(&[4.0; 6], 4);
        track.segments.pop_front();
        assert_eq!(Window::FromSequence(3).first_index(&track), 2);
        assert_eq!(Window::FromSequence(0).first_index(&track), 0);
        assert_eq!(Window::FromSequence(99).first_index(&track), 5);
    }

    #[test]
    fn the_window_never_drops_a_segment_too_early_and_only_slides_forward() {
        let durations = [4.0, 1.5, 4.0, 2.0, 3.9, 4.0, 0.5, 4.0, 4.0, 1.0, 3.0, 4.0];
        let mut previous_first = 0;
        for n in 1..=durations.len() {
            let track = track_with_durations(&durations[..n], 4);
            let start = live_window_start(&track, 0);
            let first = track.segments[start].sequence;
            assert!(first >= previous_first, "media sequence went back at {n}");
            previous_first = first;
            let shown: u64 = track.segments.iter().skip(start).map(|s| s.duration).sum();
            let without_oldest = shown - track.segments[start].duration;
            assert!(
                without_oldest < 12 * 90_000,
                "the oldest shown could have gone at {n}"
            );
            if start > 0 {
                assert!(shown >= 12 * 90_000, "a segment went too early at {n}");
            }
        }
    }
}
