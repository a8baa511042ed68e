//! How the ingest sources' `create()` (`cfrtmpsrc`, `cfsrtsrc`) waits and is woken: for the next
//! item of its registration on the runtime, or in a live connection's sleep between two reads
//! (an [`Interrupt`]), until the idle timeout or `unlock()`.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::net::socket::Interrupt;
use crate::runtime::RUNTIME;

/// What a wait for the next item ended with.
pub enum Waited<T> {
    Item(T),
    IdleTimeout,
    Flushing,
}

/// The flushing state of a source and what wakes its streaming thread.
#[derive(Default)]
pub struct Wakeup {
    flushing: AtomicBool,
    unlock: Notify,
    /// Wakes a read of a live connection out of its sleep.
    interrupt: OnceLock<Interrupt>,
}

impl Wakeup {
    /// Makes the interrupt (once per element, at its first start).
    pub fn prepare(&self) -> io::Result<()> {
        if self.interrupt.get().is_none() {
            let _ = self.interrupt.set(Interrupt::new()?);
        }
        Ok(())
    }

    pub fn interrupt(&self) -> Option<&Interrupt> {
        self.interrupt.get()
    }

    pub fn is_flushing(&self) -> bool {
        self.flushing.load(Ordering::Acquire)
    }

    /// `BaseSrc::unlock`.
    pub fn unlock(&self) {
        self.flushing.store(true, Ordering::Release);
        self.unlock.notify_waiters();
        if let Some(interrupt) = self.interrupt.get() {
            interrupt.raise();
        }
    }

    /// `BaseSrc::unlock_stop`.
    pub fn unlock_stop(&self) {
        self.flushing.store(false, Ordering::Release);
        if let Some(interrupt) = self.interrupt.get() {
            interrupt.clear();
        }
    }

    /// Blocks on the runtime until `next` yields (`None`: the registration is gone, taken as
    /// the idle timeout), `idle_deadline` passes or `unlock()` is called.
    pub fn wait<T>(
        &self,
        idle_deadline: Option<Instant>,
        next: impl Future<Output = Option<T>>,
    ) -> Waited<T> {
        RUNTIME.block_on(async {
            let mut unlocked = pin!(self.unlock.notified());
            unlocked.as_mut().enable();
            if self.is_flushing() {
                return Waited::Flushing;
            }
            let idle = async {
                match idle_deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = unlocked => Waited::Flushing,
                item = next => item.map_or(Waited::IdleTimeout, Waited::Item),
                _ = idle => Waited::IdleTimeout,
            }
        })
    }
}

/// When the idle timeout of `idle_timeout` seconds (0: none) ends, counted from `idle_since`.
pub fn idle_deadline(idle_since: Option<Instant>, idle_timeout: u32) -> Option<Instant> {
    idle_since
        .filter(|_| idle_timeout > 0)
        .map(|since| since + std::time::Duration::from_secs(idle_timeout.into()))
}
