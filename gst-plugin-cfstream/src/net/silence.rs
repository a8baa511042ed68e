//! How long a live publisher has been silent, counting only the time we spent waiting for its
//! bytes: a publisher we stopped reading (its consumer is behind, our own back-pressure) is not
//! silent, whatever it looks like from here. The registries take a key or stream id over from a
//! publisher silent for long enough.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Silence {
    /// When the publisher was last heard from (or read again after being held back), on the
    /// [`elapsed_ms`] clock.
    last_heard_ms: AtomicU64,
    /// The publisher is not being read: its consumer has not taken what it sent yet.
    held_back: AtomicBool,
}

impl Silence {
    /// The publisher sent something now.
    pub fn heard(&self) {
        self.last_heard_ms.store(elapsed_ms(), Ordering::Release);
    }

    /// The publisher is not read until [`Silence::resume`]: its silence does not count.
    pub fn hold_back(&self) {
        self.held_back.store(true, Ordering::Release);
    }

    /// The publisher is read again (or newly accepted): its silence counts from now.
    pub fn resume(&self) {
        self.heard();
        self.held_back.store(false, Ordering::Release);
    }

    /// Whether the publisher, read all along, has sent nothing for `at_least`.
    pub fn is_silent_for(&self, at_least: Duration) -> bool {
        if self.held_back.load(Ordering::Acquire) {
            return false;
        }
        let heard = self.last_heard_ms.load(Ordering::Acquire);
        elapsed_ms().saturating_sub(heard) >= at_least.as_millis() as u64
    }
}

/// Milliseconds on a process-wide monotonic clock.
fn elapsed_ms() -> u64 {
    static ORIGIN: LazyLock<std::time::Instant> = LazyLock::new(std::time::Instant::now);
    ORIGIN.elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_back_is_never_silent() {
        let silence = Silence::default();
        silence.resume();
        assert!(!silence.is_silent_for(Duration::from_secs(60)));
        assert!(silence.is_silent_for(Duration::ZERO));
        silence.hold_back();
        assert!(!silence.is_silent_for(Duration::ZERO));
        silence.resume();
        assert!(silence.is_silent_for(Duration::ZERO));
    }
}
