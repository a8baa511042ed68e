//! How much of a recording stays listed: `max-duration` of media (or, with record=false, the
//! live window), and when the segments that left the index may go from storage: once as much
//! media has passed again as the live window lasts, so that a player still holding a playlist
//! that lists them can finish fetching them.
//!
//! Counted on the main track (video, or audio alone): both tracks share sequence numbers, so a
//! trim point applies to both. Costs the same per segment whatever the recording's length.

use std::collections::VecDeque;

/// Live windows the server renders: three target durations (RFC 8216 §6.2.2 forbids less).
pub const WINDOW_TARGET_DURATIONS: u64 = 3;

pub struct Retention {
    /// Media kept listed, ns; `None`: the live window (record=false).
    max_ns: Option<u64>,
    /// Listed segments of the main track: (sequence, duration ns), oldest first.
    listed: VecDeque<(u64, u64)>,
    listed_ns: u64,
    /// Media written so far (ns): the clock of the deletion deadlines.
    clock_ns: u64,
    /// Sequence numbers out of the index, with the clock value at which they may be deleted.
    pending: VecDeque<(u64, u64)>,
}

impl Retention {
    pub fn new(max_ns: Option<u64>) -> Self {
        Retention {
            max_ns,
            listed: VecDeque::new(),
            listed_ns: 0,
            clock_ns: 0,
            pending: VecDeque::new(),
        }
    }

    /// A main-track segment was listed (or found listed on resume). Returns the new first
    /// listed sequence when the head must be trimmed.
    pub fn listed(&mut self, sequence: u64, duration_ns: u64, target_seconds: u32) -> Option<u64> {
        self.listed.push_back((sequence, duration_ns));
        self.listed_ns = self.listed_ns.saturating_add(duration_ns);
        self.clock_ns = self.clock_ns.saturating_add(duration_ns);
        let window_ns = window_ns(target_seconds);
        // Without a recording, keep one segment beyond the window: the window stays whole
        // while the newest segment is being written.
        let keep_ns = self
            .max_ns
            .unwrap_or(window_ns + u64::from(target_seconds) * 1_000_000_000);
        let mut trimmed = false;
        while self.listed.len() > 1 && self.listed_ns > keep_ns {
            let (first, duration) = self.listed[0];
            self.listed.pop_front();
            self.listed_ns -= duration;
            self.pending
                .push_back((first, self.clock_ns.saturating_add(window_ns)));
            trimmed = true;
        }
        trimmed.then(|| self.listed[0].0)
    }

    /// Sequence numbers whose deletion deadline has passed.
    pub fn expired(&mut self) -> Vec<u64> {
        let mut expired = Vec::new();
        while let Some(&(sequence, deadline)) = self.pending.front() {
            if deadline > self.clock_ns {
                break;
            }
            expired.push(sequence);
            self.pending.pop_front();
        }
        expired
    }

    /// What is still waiting at the end, with how much media time (ns) is left to each
    /// deadline (turned into wall-clock time: no more media passes).
    pub fn take_pending(&mut self) -> Vec<(u64, u64)> {
        let clock = self.clock_ns;
        (self.pending.drain(..))
            .map(|(sequence, deadline)| (sequence, deadline.saturating_sub(clock)))
            .collect()
    }

    pub fn listed_segments(&self) -> u64 {
        self.listed.len() as u64
    }

    pub fn listed_ns(&self) -> u64 {
        self.listed_ns
    }

    pub fn first_listed(&self) -> Option<u64> {
        self.listed.front().map(|&(sequence, _)| sequence)
    }
}

fn window_ns(target_seconds: u32) -> u64 {
    WINDOW_TARGET_DURATIONS * u64::from(target_seconds.max(1)) * 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn max_duration_trims_the_head_and_deletes_after_a_window() {
        let mut retention = Retention::new(Some(10 * S));
        assert_eq!(retention.listed(0, 4 * S, 4), None);
        assert_eq!(retention.listed(1, 4 * S, 4), None);
        assert_eq!(retention.listed(2, 4 * S, 4), Some(1)); // 12 s: 0 goes, 8 s stay
        assert_eq!(retention.listed_ns(), 8 * S);
        assert_eq!(retention.listed(3, 4 * S, 4), Some(2));
        assert!(retention.expired().is_empty());
        // The window is 12 s: segment 0 may go once 12 s more were written.
        for sequence in 4..5 {
            retention.listed(sequence, 4 * S, 4);
        }
        assert!(retention.expired().is_empty());
        retention.listed(5, 4 * S, 4);
        assert_eq!(retention.expired(), [0]);
        assert_eq!(retention.first_listed(), Some(4));
    }

    #[test]
    fn without_a_recording_the_window_and_one_segment_stay() {
        let mut retention = Retention::new(None);
        for sequence in 0..10 {
            retention.listed(sequence, 2 * S, 2);
        }
        // Window 6 s + one 2 s segment.
        assert_eq!(retention.listed_ns(), 8 * S);
        assert_eq!(retention.first_listed(), Some(6));
        let pending = retention.take_pending();
        assert_eq!(pending.last(), Some(&(5, 6 * S)));
        let mut uneven = Retention::new(Some(5 * S));
        for sequence in 0..4 {
            uneven.listed(sequence, 2 * S, 2);
        }
        assert_eq!(uneven.listed_ns(), 4 * S, "at most max-duration");
    }

    #[test]
    fn the_newest_segment_always_stays() {
        let mut retention = Retention::new(Some(S));
        retention.listed(0, 5 * S, 5);
        assert_eq!(retention.listed(1, 5 * S, 5), Some(1));
        assert_eq!(retention.listed_segments(), 1);
    }
}
