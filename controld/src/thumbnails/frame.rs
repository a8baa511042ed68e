//! Which frame a thumbnail shows, found in a recording's index: the segment holding it (one
//! GOP, starting with a keyframe) and how far into the segment it is. Times count from the
//! start of the first listed segment, as a player's timeline does.

use std::time::Duration;

use cfstream_proto::index::{Progress, RecordingIndex, TrackIndex, TrackKind};

/// Where a thumbnail's frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub sequence: u64,
    /// Discontinuity run of the segment: its init segment.
    pub discontinuity: u64,
    /// From the segment's first frame.
    pub offset: Duration,
    /// Frame number within the segment (at the stream's frame rate, else milliseconds): what
    /// the cache keys on, so that times within one frame share a thumbnail.
    pub frame_key: u64,
    /// The recording will not change any more.
    pub finished: bool,
}

/// Which frame when the request names no time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DefaultFrame {
    /// The latest listed segment's keyframe (live).
    LiveEdge,
    /// This fraction (0 to 1) of the recording's duration (`thumbnailTimestampPct`).
    Fraction(f64),
}

#[derive(Debug, PartialEq)]
pub enum NotThere {
    /// The recording has no video track, or none of its segments is complete yet.
    NoFrame,
    /// The time is past the end of what is recorded (the duration given).
    Beyond(Duration),
}

fn ticks(time: Duration, timescale: u32) -> u64 {
    let ticks = time.as_nanos() * u128::from(timescale) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

fn duration(ticks: u64, timescale: u32) -> Duration {
    Duration::from_nanos(
        u64::try_from(u128::from(ticks) * 1_000_000_000 / u128::from(timescale.max(1)))
            .unwrap_or(u64::MAX),
    )
}

/// The frame at `time` (or the default one) of the recording's video.
pub fn locate(
    index: &RecordingIndex,
    time: Option<Duration>,
    default: DefaultFrame,
) -> Result<Frame, NotThere> {
    let track = index.track(TrackKind::Video).ok_or(NotThere::NoFrame)?;
    let first = track.segments.front().ok_or(NotThere::NoFrame)?;
    let timescale = track.timescale.max(1);
    let listed = track.listed_duration();
    let target = match (time, default) {
        (Some(time), _) => {
            let at = ticks(time, timescale);
            if at > listed {
                return Err(NotThere::Beyond(duration(listed, timescale)));
            }
            at
        }
        (None, DefaultFrame::Fraction(fraction)) => {
            (listed as f64 * fraction.clamp(0.0, 1.0)).round() as u64
        }
        (None, DefaultFrame::LiveEdge) => {
            let last = track.segments.back().unwrap_or(first);
            last.decode_time - first.decode_time
        }
    };
    frame_at(index, track, first.decode_time + target).ok_or(NotThere::NoFrame)
}

/// The frame at decode time `at` (within the listed segments; the end of the last one is its
/// last frame).
fn frame_at(index: &RecordingIndex, track: &TrackIndex, at: u64) -> Option<Frame> {
    let segment = track
        .segments
        .iter()
        .find(|s| at < s.end_time())
        .or(track.segments.back())?;
    let within = at.saturating_sub(segment.decode_time).min(segment.duration);
    let offset = duration(within, track.timescale);
    let frame_key = match index.stream.frame_rate {
        Some((num, den)) if num > 0 && den > 0 => u64::try_from(
            u128::from(within) * u128::from(num) / (u128::from(den) * u128::from(track.timescale)),
        )
        .unwrap_or(u64::MAX),
        _ => offset.as_millis() as u64,
    };
    Some(Frame {
        sequence: segment.sequence,
        discontinuity: segment.discontinuity_number,
        offset,
        frame_key,
        finished: track.progress == Progress::Finished,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use cfstream_proto::index::{Segment, StreamInfo};

    use super::*;

    /// Three 4 s segments (sequence 5 onwards) at 90 kHz from decode time 9000, 30 fps.
    fn index(progress: Progress) -> RecordingIndex {
        let segments: VecDeque<Segment> = (0..3u64)
            .map(|i| Segment {
                sequence: 5 + i,
                decode_time: 9000 + i * 360_000,
                duration: 360_000,
                program_date_time_ms: 0,
                discontinuity: i == 2,
                discontinuity_number: u64::from(i == 2),
                size: 1000,
                parts: Vec::new(),
            })
            .collect();
        RecordingIndex {
            stream: StreamInfo {
                frame_rate: Some((30, 1)),
                width: 320,
                height: 180,
                ..StreamInfo::default()
            },
            tracks: vec![TrackIndex {
                kind: TrackKind::Video,
                timescale: 90_000,
                target_duration: 4,
                part_target: 45_000,
                discontinuity_sequence: 0,
                segments,
                open: None,
                progress,
                trimmed: false,
            }],
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_time_names_its_segment_and_frame() {
        let index = index(Progress::Finished);
        let at = |t| locate(&index, Some(secs(t)), DefaultFrame::LiveEdge).unwrap();
        assert_eq!((at(0.0).sequence, at(0.0).offset), (5, secs(0.0)));
        assert_eq!((at(3.0).sequence, at(3.0).offset), (5, secs(3.0)));
        assert_eq!((at(6.0).sequence, at(6.0).offset), (6, secs(2.0)));
        assert_eq!(at(6.0).frame_key, 60);
        assert_eq!(at(6.01).frame_key, 60, "within one frame: the same key");
        assert_eq!((at(9.0).sequence, at(9.0).discontinuity), (7, 1));
        assert!(at(1.0).finished);
        // The very end is the last segment's last frame; past it is refused.
        assert_eq!((at(12.0).sequence, at(12.0).offset), (7, secs(4.0)));
        assert_eq!(
            locate(&index, Some(secs(12.5)), DefaultFrame::LiveEdge),
            Err(NotThere::Beyond(secs(12.0)))
        );
    }

    #[test]
    fn defaults_are_the_fraction_or_the_live_edge() {
        let finished = index(Progress::Finished);
        let half = locate(&finished, None, DefaultFrame::Fraction(0.5)).unwrap();
        assert_eq!((half.sequence, half.offset), (6, secs(2.0)));
        let start = locate(&finished, None, DefaultFrame::Fraction(0.0)).unwrap();
        assert_eq!((start.sequence, start.offset), (5, secs(0.0)));
        let live = index(Progress::Live);
        let edge = locate(&live, None, DefaultFrame::LiveEdge).unwrap();
        assert_eq!(
            (edge.sequence, edge.offset, edge.finished),
            (7, secs(0.0), false)
        );
    }

    #[test]
    fn nothing_to_show_without_a_listed_video_segment() {
        let mut empty = index(Progress::Live);
        empty.tracks[0].segments.clear();
        assert_eq!(
            locate(&empty, None, DefaultFrame::LiveEdge),
            Err(NotThere::NoFrame)
        );
        let mut audio_only = index(Progress::Live);
        audio_only.tracks[0].kind = TrackKind::Audio;
        assert_eq!(
            locate(&audio_only, Some(secs(1.0)), DefaultFrame::LiveEdge),
            Err(NotThere::NoFrame)
        );
    }
}
