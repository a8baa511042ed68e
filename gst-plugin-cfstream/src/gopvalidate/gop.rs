//! Keyframe interval measurement on nanosecond presentation timestamps, without GStreamer.

use cfstream_proto::h264::PictureKind;

const NS_PER_SECOND: f64 = 1_000_000_000.0;

/// Allowed keyframe interval, nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub min: u64,
    pub max: u64,
}

impl Limits {
    pub fn from_seconds(min: f64, max: f64) -> Self {
        Limits {
            min: (min * NS_PER_SECOND).round() as u64,
            max: (max * NS_PER_SECOND).round() as u64,
        }
    }
}

/// What has been seen since the element started; intervals in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// GOPs started, i.e. keyframes.
    pub gops: u64,
    pub last_interval: Option<u64>,
    pub min_interval: Option<u64>,
    pub max_interval: Option<u64>,
    pub b_frames: u64,
    pub idr_count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntervalViolation {
    /// A GOP ended, at the next keyframe, shorter than the minimum.
    TooShort { interval: u64, min: u64 },
    /// The keyframe ending a GOP came later than the maximum, without frames in between that
    /// showed it earlier.
    TooLong { interval: u64, max: u64 },
    /// The current GOP has run past the maximum; its keyframe may never come.
    Overrun { running: u64, max: u64 },
    /// No keyframe at all since the measurement (re)started.
    NoKeyframe { waited: u64, max: u64 },
}

impl IntervalViolation {
    /// The measured time, nanoseconds.
    pub fn interval(&self) -> u64 {
        match *self {
            IntervalViolation::TooShort { interval, .. }
            | IntervalViolation::TooLong { interval, .. } => interval,
            IntervalViolation::Overrun { running, .. } => running,
            IntervalViolation::NoKeyframe { waited, .. } => waited,
        }
    }

    /// A sentence naming the measured value and the rule.
    pub fn reason(&self) -> String {
        match *self {
            IntervalViolation::TooShort { interval, min } => format!(
                "keyframe interval {} s is below {} s",
                seconds(interval),
                seconds(min)
            ),
            IntervalViolation::TooLong { interval, max } => format!(
                "keyframe interval {} s exceeds {} s",
                seconds(interval),
                seconds(max)
            ),
            IntervalViolation::Overrun { running, max } => format!(
                "no keyframe for {} s: keyframe interval exceeds {} s",
                seconds(running),
                seconds(max)
            ),
            IntervalViolation::NoKeyframe { waited, max } => format!(
                "no keyframe in the first {} s of the stream: keyframe interval exceeds {} s",
                seconds(waited),
                seconds(max)
            ),
        }
    }
}

/// Seconds with as many decimals as needed (up to milliseconds), at least one: "12.0", "10.067".
pub fn seconds(ns: u64) -> String {
    let text = format!("{:.3}", ns as f64 / NS_PER_SECOND);
    let trimmed = text.trim_end_matches('0');
    if trimmed.ends_with('.') {
        format!("{trimmed}0")
    } else {
        trimmed.to_string()
    }
}

#[derive(Clone, Copy, Debug)]
enum Since {
    /// PTS of the keyframe that started the current GOP.
    Keyframe(u64),
    /// PTS of the first frame after a (re)start, while no keyframe has come yet.
    Start(u64),
}

/// Measures keyframe intervals frame by frame.
#[derive(Debug, Default)]
pub struct GopTracker {
    since: Option<Since>,
    /// The current GOP has already been reported as too long.
    overrun_reported: bool,
    previous_pts: Option<u64>,
    /// Smallest positive PTS step seen: the frame duration when nothing else tells it.
    smallest_step: Option<u64>,
    stats: Stats,
}

impl GopTracker {
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Forgets the current GOP (caps change, reconnect, discontinuity): the next keyframe starts
    /// a new one and no interval is measured across the gap.
    pub fn restart(&mut self) {
        self.since = None;
        self.overrun_reported = false;
        self.previous_pts = None;
    }

    /// Accounts one picture; `frame_duration` (from caps or buffer) is the tolerance, falling back
    /// to the smallest PTS step seen. Without a PTS only the counters move.
    pub fn frame(
        &mut self,
        pts: Option<u64>,
        kind: PictureKind,
        keyframe: bool,
        frame_duration: Option<u64>,
        limits: Limits,
    ) -> Option<IntervalViolation> {
        match kind {
            PictureKind::B => self.stats.b_frames += 1,
            PictureKind::Idr => self.stats.idr_count += 1,
            _ => {}
        }
        if keyframe {
            self.stats.gops += 1;
        }
        let pts = pts?;
        self.observe_step(pts);
        let tolerance = frame_duration.or(self.smallest_step).unwrap_or(0);
        let max = limits.max.saturating_add(tolerance);
        if keyframe {
            let previous = self.since.replace(Since::Keyframe(pts));
            let overrun_reported = std::mem::take(&mut self.overrun_reported);
            let Some(Since::Keyframe(start)) = previous else {
                return None;
            };
            let interval = pts.saturating_sub(start);
            self.record(interval);
            if interval.saturating_add(tolerance) < limits.min {
                return Some(IntervalViolation::TooShort {
                    interval,
                    min: limits.min,
                });
            }
            if interval > max && !overrun_reported {
                return Some(IntervalViolation::TooLong {
                    interval,
                    max: limits.max,
                });
            }
            return None;
        }
        let since = *self.since.get_or_insert(Since::Start(pts));
        let (Since::Keyframe(start) | Since::Start(start)) = since;
        let running = pts.saturating_sub(start);
        if running <= max || self.overrun_reported {
            return None;
        }
        self.overrun_reported = true;
        Some(match since {
            Since::Keyframe(_) => IntervalViolation::Overrun {
                running,
                max: limits.max,
            },
            Since::Start(_) => IntervalViolation::NoKeyframe {
                waited: running,
                max: limits.max,
            },
        })
    }

    fn observe_step(&mut self, pts: u64) {
        if let Some(previous) = self.previous_pts.replace(pts) {
            let step = pts.abs_diff(previous);
            if step > 0 && self.smallest_step.is_none_or(|smallest| step < smallest) {
                self.smallest_step = Some(step);
            }
        }
    }

    fn record(&mut self, interval: u64) {
        let stats = &mut self.stats;
        stats.last_interval = Some(interval);
        stats.min_interval = Some(stats.min_interval.map_or(interval, |v| v.min(interval)));
        stats.max_interval = Some(stats.max_interval.map_or(interval, |v| v.max(interval)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME_30: u64 = 33_333_333;

    /// Feeds `gop_frames`-frame GOPs of P frames at 30 fps; returns the violations.
    fn run(gop_frames: &[u64], frame_duration: Option<u64>) -> Vec<IntervalViolation> {
        let mut tracker = GopTracker::default();
        let limits = Limits::from_seconds(4.0, 10.0);
        let mut violations = Vec::new();
        let mut frame = 0u64;
        for &frames in gop_frames {
            for i in 0..frames {
                let kind = if i == 0 {
                    PictureKind::Idr
                } else {
                    PictureKind::P
                };
                let pts = Some(frame * 1_000_000_000 / 30);
                violations.extend(tracker.frame(pts, kind, i == 0, frame_duration, limits));
                frame += 1;
            }
        }
        // One more keyframe closes the last GOP.
        let pts = Some(frame * 1_000_000_000 / 30);
        violations.extend(tracker.frame(pts, PictureKind::Idr, true, frame_duration, limits));
        violations
    }

    #[test]
    fn boundaries_at_30_fps() {
        assert_eq!(run(&[120, 120, 300], Some(FRAME_30)), []);
        assert!(matches!(
            run(&[117], Some(FRAME_30))[..],
            [IntervalViolation::TooShort { .. }]
        ));
        assert!(matches!(
            run(&[303], Some(FRAME_30))[..],
            [IntervalViolation::Overrun { .. }]
        ));
        // Tolerance from the PTS steps when no duration is known.
        assert_eq!(run(&[120, 300], None), []);
        assert!(matches!(
            run(&[116], None)[..],
            [IntervalViolation::TooShort { .. }]
        ));
    }

    #[test]
    fn overrun_is_reported_once_when_the_maximum_is_passed() {
        let violations = run(&[360], Some(FRAME_30));
        assert_eq!(violations.len(), 1);
        // First frame past 10.0 s + one frame: frame 302 at 10.067 s.
        assert_eq!(
            violations[0],
            IntervalViolation::Overrun {
                running: 302 * 1_000_000_000 / 30,
                max: 10_000_000_000
            }
        );
        assert_eq!(
            violations[0].reason(),
            "no keyframe for 10.067 s: keyframe interval exceeds 10.0 s"
        );
    }

    #[test]
    fn late_keyframe_without_frames_between_is_too_long() {
        let mut tracker = GopTracker::default();
        let limits = Limits::from_seconds(4.0, 10.0);
        let d = Some(FRAME_30);
        assert_eq!(
            tracker.frame(Some(0), PictureKind::Idr, true, d, limits),
            None
        );
        let violation = tracker
            .frame(Some(12_000_000_000), PictureKind::Idr, true, d, limits)
            .unwrap();
        assert_eq!(
            violation.reason(),
            "keyframe interval 12.0 s exceeds 10.0 s"
        );
        assert_eq!(violation.interval(), 12_000_000_000);
    }

    #[test]
    fn restart_measures_no_interval_across_the_gap() {
        let mut tracker = GopTracker::default();
        let limits = Limits::from_seconds(4.0, 10.0);
        let d = Some(FRAME_30);
        assert_eq!(
            tracker.frame(Some(0), PictureKind::Idr, true, d, limits),
            None
        );
        tracker.restart();
        // 1 s later (a short GOP if measured) and then 30 s later: neither is an interval.
        let second = 1_000_000_000;
        assert_eq!(
            tracker.frame(Some(second), PictureKind::Idr, true, d, limits),
            None
        );
        tracker.restart();
        assert_eq!(
            tracker.frame(Some(31 * second), PictureKind::Idr, true, d, limits),
            None
        );
        assert_eq!(tracker.stats().last_interval, None);
        assert_eq!(tracker.stats().gops, 3);
        assert_eq!(tracker.stats().idr_count, 3);
    }

    #[test]
    fn missing_first_keyframe_is_reported() {
        let mut tracker = GopTracker::default();
        let limits = Limits::from_seconds(4.0, 10.0);
        let violations: Vec<_> = (0..400u64)
            .filter_map(|i| {
                let pts = Some(i * FRAME_30);
                tracker.frame(pts, PictureKind::B, false, Some(FRAME_30), limits)
            })
            .collect();
        assert!(matches!(
            violations[..],
            [IntervalViolation::NoKeyframe { .. }]
        ));
        assert_eq!(tracker.stats().b_frames, 400);
    }

    #[test]
    fn stats_follow_intervals() {
        let mut tracker = GopTracker::default();
        let limits = Limits::from_seconds(0.0, 100.0);
        for (pts, keyframe) in [(0, true), (4, true), (10, true), (12, true)] {
            let pts = Some(pts * 1_000_000_000);
            tracker.frame(pts, PictureKind::Idr, keyframe, None, limits);
        }
        let stats = tracker.stats();
        assert_eq!(stats.gops, 4);
        assert_eq!(stats.last_interval, Some(2_000_000_000));
        assert_eq!(stats.min_interval, Some(2_000_000_000));
        assert_eq!(stats.max_interval, Some(6_000_000_000));
    }

    #[test]
    fn seconds_formatting() {
        assert_eq!(seconds(12_000_000_000), "12.0");
        assert_eq!(seconds(3_900_000_000), "3.9");
        assert_eq!(seconds(10_066_666_666), "10.067");
    }
}
