//! Frames held before a run's tracks are known. Demuxers add their pads as the first frames of
//! each stream arrive (flvdemux in push mode: video first, audio a moment later, or the other way
//! round), and a track that joins after the first segment opened would miss that segment. So the
//! frames of the first moments wait until both tracks are configured, or until a grace period
//! of media shows that the stream has one track only.

use std::collections::VecDeque;

use cfstream_proto::index::TrackKind;

use super::Frame;

/// Media (from the first held frame) held at most while waiting for the other track.
const GRACE_NS: i64 = 1_000_000_000;
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

    /// Whether the wait is over: every track is configured, or the grace ran out.
    pub fn ready(&self, configured: impl Fn(TrackKind) -> bool) -> bool {
        let both = configured(TrackKind::Video) && configured(TrackKind::Audio);
        let span = match (self.first_pts, self.last_pts) {
            (Some(first), Some(last)) => last.saturating_sub(first),
            _ => 0,
        };
        both || span >= GRACE_NS || self.bytes > MAX_HELD_BYTES
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

    #[test]
    fn waits_for_both_tracks_or_a_second_of_media_or_too_many_bytes() {
        let mut startup = Startup::default();
        startup.hold(frame(TrackKind::Video, 0, 10), 0);
        startup.hold(frame(TrackKind::Video, 999, 10), 0);
        assert!(!startup.ready(|k| k == TrackKind::Video));
        assert!(startup.ready(|_| true));
        startup.hold(frame(TrackKind::Video, 1000, 10), 0);
        assert!(startup.ready(|k| k == TrackKind::Video));

        let mut frozen = Startup::default();
        for _ in 0..17 {
            frozen.hold(frame(TrackKind::Video, 0, 1024 * 1024), 0);
        }
        assert!(frozen.ready(|_| false));
        assert_eq!(frozen.into_frames().len(), 17);
    }
}
