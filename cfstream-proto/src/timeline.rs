//! One output timeline for the tags of successive publishers of a stream.
//!
//! Every publisher's tag timestamps start wherever its encoder likes (0, or the wall clock) and
//! are 32-bit milliseconds that wrap. The output must keep rising across publishers: a
//! publisher's first tag lands at the output's current running time, after anything output
//! before (so the real gap between publishers is kept), and its later tags keep their distance
//! from that first one. The caller owns the clock: it passes the running time in when a
//! publisher's first tag needs it.

/// Where a publisher's tags land: its first tag's timestamp, and where that one went.
#[derive(Clone, Copy, Debug)]
struct Origin {
    first_tag_ms: u32,
    first_output_ms: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// The current publisher's origin, set by its first tag.
    origin: Option<Origin>,
    /// The latest output timestamp (of any publisher).
    last_output_ms: Option<u64>,
}

/// Where one tag goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    /// The tag's output timestamp, in milliseconds of running time.
    pub output_ms: u64,
    /// On the first tag of a publisher that follows earlier output: the milliseconds between
    /// the latest output and this tag, which is a discontinuity.
    pub gap_ms: Option<u64>,
}

impl Timeline {
    /// The next tag is a new publisher's first (one left, or another arrived).
    pub fn new_publisher(&mut self) {
        self.origin = None;
    }

    /// Whether anything was output: a publisher arriving now continues the stream.
    pub fn has_output(&self) -> bool {
        self.last_output_ms.is_some()
    }

    /// Places a tag of the current publisher; `running_time_ms` is asked only for a
    /// publisher's first tag.
    pub fn place(&mut self, tag_ms: u32, running_time_ms: impl FnOnce() -> u64) -> Placed {
        let mut gap_ms = None;
        let origin = match self.origin {
            Some(origin) => origin,
            None => {
                let mut first_output_ms = running_time_ms();
                if let Some(last) = self.last_output_ms {
                    first_output_ms = first_output_ms.max(last + 1);
                    gap_ms = Some(first_output_ms - last);
                }
                let origin = Origin {
                    first_tag_ms: tag_ms,
                    first_output_ms,
                };
                self.origin = Some(origin);
                origin
            }
        };
        // Signed: audio and video tags interleave slightly out of order; 32-bit wrap is kept.
        let delta = tag_ms.wrapping_sub(origin.first_tag_ms) as i32 as i64;
        let output_ms = (origin.first_output_ms as i64 + delta).max(0) as u64;
        self.last_output_ms = Some(self.last_output_ms.map_or(output_ms, |l| l.max(output_ms)));
        Placed { output_ms, gap_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> u64 {
        panic!("the running time is needed only for a publisher's first tag")
    }

    #[test]
    fn first_publisher_starts_at_the_running_time() {
        let mut timeline = Timeline::default();
        assert!(!timeline.has_output());
        let first = timeline.place(5_000, || 1_200);
        assert_eq!(
            first,
            Placed {
                output_ms: 1_200,
                gap_ms: None
            }
        );
        assert!(timeline.has_output());
        assert_eq!(timeline.place(5_040, never).output_ms, 1_240);
        // An audio tag slightly behind the video goes slightly behind it.
        assert_eq!(timeline.place(5_020, never).output_ms, 1_220);
        // Never before 0.
        assert_eq!(timeline.place(3_000, never).output_ms, 0);
    }

    #[test]
    fn timestamps_that_wrap_keep_rising() {
        let mut timeline = Timeline::default();
        timeline.place(u32::MAX - 10, || 100);
        assert_eq!(timeline.place(30, never).output_ms, 141);
    }

    #[test]
    fn a_returning_publisher_continues_after_the_gap() {
        let mut timeline = Timeline::default();
        timeline.place(0, || 1_000);
        timeline.place(2_000, never);
        timeline.new_publisher();
        // It arrives 5 s later by the running time, with timestamps from 0 again.
        let first = timeline.place(0, || 8_000);
        assert_eq!(
            first,
            Placed {
                output_ms: 8_000,
                gap_ms: Some(5_000)
            }
        );
        assert_eq!(timeline.place(40, never).output_ms, 8_040);
    }

    #[test]
    fn a_returning_publisher_never_goes_back_in_time() {
        let mut timeline = Timeline::default();
        timeline.place(0, || 0);
        // Output ran ahead of the running time (a publisher faster than real time).
        timeline.place(10_000, never);
        timeline.new_publisher();
        let first = timeline.place(123_456, || 4_000);
        assert_eq!(
            first,
            Placed {
                output_ms: 10_001,
                gap_ms: Some(1)
            }
        );
    }
}
