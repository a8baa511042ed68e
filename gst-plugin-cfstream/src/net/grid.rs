//! The batching grid: once a live publisher's socket is drained, it is read again only at the
//! next tick of a process-wide grid. An encoder sends 70–80 messages a second; handed over one
//! by one, each costs a wake-up of the runtime and one of the consumer's thread, which is most of
//! what a real-time stream costs. Batched, a stream costs one wake-up of each per tick, and every
//! connection due on a tick is served in the same turn. The grid is the same for every
//! connection with the same interval: the threads of many inputs wake together and run back to
//! back, which measured cheaper (~20 %) than grids out of phase, whose wake-ups each find an idle
//! processor (bench/RESULTS.md).

use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// The grid's default interval: at most this much is added to the time a message takes to reach
/// its consumer. 40 ms costs ~25 % less CPU than 20 ms at N = 50 and ~30 % less at N = 1, and
/// stays within the 50 ms a closing keyframe may take to reach the playlist (bench/RESULTS.md).
pub const DEFAULT_READ_INTERVAL: Duration = Duration::from_millis(40);

/// The next tick of the grid of `interval`.
pub fn next_tick(interval: Duration) -> Instant {
    static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);
    let interval = interval.as_nanos().max(1);
    let ticks = EPOCH.elapsed().as_nanos() / interval + 1;
    *EPOCH + Duration::from_nanos((ticks * interval) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_shared_multiples_of_the_interval() {
        let interval = Duration::from_millis(40);
        let before = Instant::now();
        let (first, second) = (next_tick(interval), next_tick(interval));
        let after = Instant::now();
        assert!(first > before && first <= after + interval);
        // Asked again, the same tick or one a whole number of intervals later.
        let step = (second - first).as_nanos();
        assert_eq!(step % interval.as_nanos(), 0, "{step} ns");
    }
}
