//! How many thumbnails are decoded at once (`--thumbnail-concurrency`) and how many requests
//! may wait for a turn: a burst beyond that is answered 503 at once rather than queued without
//! bound (each waiting request holds a connection and, later, a decode).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests that may wait per decode slot.
pub const WAITING_PER_SLOT: usize = 8;

pub struct Limiter {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// Every slot is taken and the wait queue is full.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

/// Counts a request as waiting while it lives (a dropped request stops waiting).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Limiter {
    pub fn new(slots: usize) -> Limiter {
        let slots = slots.max(1);
        Limiter {
            slots: Arc::new(Semaphore::new(slots)),
            waiting: AtomicUsize::new(0),
            max_waiting: slots * WAITING_PER_SLOT,
        }
    }

    /// A decode slot, held until the permit is dropped.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, Busy> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        let _waiting = Waiting(&self.waiting);
        // The semaphore is never closed.
        self.slots.clone().acquire_owned().await.map_err(|_| Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_is_refused_and_a_freed_slot_is_handed_on() {
        let limiter = Arc::new(Limiter::new(1));
        let held = limiter.acquire().await.unwrap();
        let mut waiters = Vec::new();
        for _ in 0..WAITING_PER_SLOT {
            let limiter = limiter.clone();
            waiters.push(tokio::spawn(
                async move { limiter.acquire().await.map(drop) },
            ));
        }
        // Every waiter is queued once the count says so.
        while limiter.waiting.load(Ordering::SeqCst) < WAITING_PER_SLOT {
            tokio::task::yield_now().await;
        }
        assert_eq!(limiter.acquire().await.unwrap_err(), Busy);
        drop(held);
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), Ok(()));
        }
        assert_eq!(limiter.waiting.load(Ordering::SeqCst), 0);
        assert!(limiter.acquire().await.is_ok());
    }
}
