//! Frames held before a run's tracks are known. Demuxers add their pads as the first frames of
//! each stream arrive (flvdemux in push mode: video first, audio a moment later, or the other way
//! round), and a track that joins after the first segment opened would miss that segment. So the
//! frames of the first moments wait until both tracks are configured, or until a grace period
//! of media shows that the stream has one track only.

use std::collections::VecDeque;

use cfstream_proto::index::TrackKind;

use super::Frame;

/// Media (from the first held frame) held while waiting for a track that has no pad yet.
const GRACE_NS: i64 = 1_000_000_000;
/// Media held at most while waiting for a pad's caps or first configuration (a track whose pad
/// exists but never configures must not hold the recording back for ever).
const MAX_HOLD_NS: i64 = 5_000_000_000;
/// Bytes held at most, whatever the timestamps say: the grace is media time, which a publisher
/// controls (timestamps that never advance must not make the hold grow without bound). 16 MiB
/// is about 1 s at 130 Mbit/s, far above what an input carries.
const MAX_HELD_BYTES: usize = 16 * 1024 * 1024;

/// A held frame with the wall clock of its arrival (`PROGRAM-DATE-TIME`).
pub struct Held {
    pub frame: Frame,
    pub wall_clock_ms: i64,
}

#[derive(Default)]
pub struct Startup {
    frames: VecDeque<Held>,
    bytes: usize,
    first_pts: Option<i64>,
    last_pts: Option<i64>,
}

impl Startup {
    pub fn hold(&mut self, frame: Frame, wall_clock_ms: i64) {
        self.first_pts.get_or_insert(frame.pts);
        self.last_pts = Some(self.last_pts.map_or(frame.pts, |p| p.max(frame.pts)));
        self.bytes = self
            .bytes
            .saturating_add(frame.data.len() + std::mem::size_of::<Held>());
        self.frames.push_back(Held {
            frame,
            wall_clock_ms,
        });
    }

    /// Whether the wait is over: both tracks are configured; or every track with a pad
    /// (`expected`) is, and a grace period showed no other pad coming; or the hold is too long.
    pub fn ready(
        &self,
        configured: impl Fn(TrackKind) -> bool,
        expected: impl Fn(TrackKind) -> bool,
    ) -> bool {
        let kinds = [TrackKind::Video, TrackKind::Audio];
        let both = kinds.iter().all(|&k| configured(k));
        let expected_configured = kinds.iter().all(|&k| !expected(k) || configured(k));
        let span = match (self.first_pts, self.last_pts) {
            (Some(first), Some(last)) => last.saturating_sub(first),
            _ => 0,
        };
        both || (expected_configured && span >= GRACE_NS)
            || span >= MAX_HOLD_NS
            || self.bytes > MAX_HELD_BYTES
    }

    pub fn into_frames(self) -> VecDeque<Held> {
        self.frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: TrackKind, pts_ms: i64, size: usize) -> Frame {
        Frame {
            kind,
            data: vec![0; size].into(),
            pts: pts_ms * 1_000_000,
            dts: pts_ms * 1_000_000,
            duration: None,
            keyframe: true,
        }
    }

    fn video(kind: TrackKind) -> bool {
        kind == TrackKind::Video
    }

    #[test]
    fn waits_for_both_tracks_or_a_second_of_media_without_another_pad() {
        let mut startup = Startup::default();
        startup.hold(frame(TrackKind::Video, 0, 10), 0);
        startup.hold(frame(TrackKind::Video, 999, 10), 0);
        assert!(!startup.ready(video, video));
        assert!(startup.ready(|_| true, |_| true));
        startup.hold(frame(TrackKind::Video, 1000, 10), 0);
        assert!(startup.ready(video, video));
        // An audio pad exists but has no configuration yet: wait, within bounds.
        assert!(!startup.ready(video, |_| true));
        startup.hold(frame(TrackKind::Video, 5000, 10), 0);
        assert!(startup.ready(video, |_| true));
    }

    #[test]
    fn holds_a_bounded_number_of_bytes() {
        let mut frozen = Startup::default();
        for _ in 0..17 {
            frozen.hold(frame(TrackKind::Video, 0, 1024 * 1024), 0);
        }
        assert!(frozen.ready(|_| false, |_| true));
        assert_eq!(frozen.into_frames().len(), 17);
    }
}
