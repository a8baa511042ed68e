//! What the ingest sources (`cfrtmpsrc`, `cfsrtsrc`) count about their publishers for their
//! `stats` property: totals, the current publisher's bitrate, address and arrival time.

use std::time::{Duration, Instant};

/// The bitrate is measured over windows of at least this length.
const BITRATE_WINDOW: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct IngestStats {
    pub bytes: u64,
    pub frames: u64,
    /// Bits a second of the current publisher over the last window.
    pub bitrate: u64,
    window_start: Option<Instant>,
    window_bytes: u64,
    /// `ip:port` of the current publisher; empty without one.
    pub publisher_address: String,
    /// RFC 3339 time the current publisher arrived; empty without one.
    pub connected_since: String,
}

impl IngestStats {
    pub fn count(&mut self, bytes: usize, frames: u64) {
        let now = Instant::now();
        self.bytes += bytes as u64;
        self.frames += frames;
        self.window_bytes += bytes as u64;
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now - start;
        if elapsed >= BITRATE_WINDOW {
            self.bitrate = (self.window_bytes as f64 * 8.0 / elapsed.as_secs_f64()) as u64;
            self.window_start = Some(now);
            self.window_bytes = 0;
        }
    }

    /// A publisher arrived from `remote`.
    pub fn connected(&mut self, remote: &str) {
        self.publisher_address = remote.to_owned();
        self.connected_since = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
    }

    /// The publisher left: totals stay, the rest is of no one.
    pub fn disconnected(&mut self) {
        self.publisher_address.clear();
        self.connected_since.clear();
        self.bitrate = 0;
        self.window_start = None;
        self.window_bytes = 0;
    }
}
