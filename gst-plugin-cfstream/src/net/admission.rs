//! Admission of new connections: a process-wide cap on open connections, and a cap per source
//! address on connections that have not presented a known stream key yet. A connection over a
//! cap is closed at accept and counted; nothing already admitted is ever disturbed, so a crowd
//! of strangers costs a refusal each and cannot push live inputs out.
//!
//! The counts are the process's, shared by every listener that asks for admission; the limits
//! too (the last one set wins).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};

/// Open connections the process admits until told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Connections from one address that may be setting up (TLS, handshake, connect, a publish
/// command with an unknown key) at once until told otherwise: setup takes milliseconds, so
/// even a crowd of encoders behind one NAT rarely has more than a few under way.
pub const DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS: usize = 32;

/// The caps; 0 means none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_unauthenticated_per_address: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_unauthenticated_per_address: DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS,
        }
    }
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The process holds `max_connections` already.
    Connections,
    /// Its address has `max_unauthenticated_per_address` connections setting up already.
    UnauthenticatedPerAddress,
}

/// What the process counts, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub open: usize,
    pub refused_connections: u64,
    pub refused_unauthenticated_per_address: u64,
}

/// Admissions and refusals of one process (see [`admission`]); a separate instance for tests.
pub struct Admission {
    max_connections: AtomicUsize,
    max_unauthenticated_per_address: AtomicUsize,
    open: AtomicUsize,
    unauthenticated: Mutex<HashMap<IpAddr, usize>>,
    refused_connections: AtomicU64,
    refused_per_address: AtomicU64,
}

/// The process's admission.
pub fn admission() -> &'static Admission {
    static ADMISSION: LazyLock<Admission> = LazyLock::new(|| Admission::new(Limits::default()));
    &ADMISSION
}

impl Admission {
    pub fn new(limits: Limits) -> Admission {
        let admission = Admission {
            max_connections: AtomicUsize::new(0),
            max_unauthenticated_per_address: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            unauthenticated: Mutex::default(),
            refused_connections: AtomicU64::new(0),
            refused_per_address: AtomicU64::new(0),
        };
        admission.set_limits(limits);
        admission
    }

    /// Applies to connections accepted from now on.
    pub fn set_limits(&self, limits: Limits) {
        let max = limits.max_connections;
        self.max_connections.store(max, Ordering::Relaxed);
        let max = limits.max_unauthenticated_per_address;
        self.max_unauthenticated_per_address
            .store(max, Ordering::Relaxed);
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections.load(Ordering::Relaxed),
            max_unauthenticated_per_address: self
                .max_unauthenticated_per_address
                .load(Ordering::Relaxed),
        }
    }

    /// Admits a connection from `remote` (counted as unauthenticated until
    /// [`Admitted::authenticated`]), or counts and returns the refusal.
    pub fn admit(&'static self, remote: IpAddr) -> Result<Admitted, Refusal> {
        let limits = self.limits();
        let remote = remote.to_canonical();
        let mut unauthenticated = lock(&self.unauthenticated);
        let from_remote = unauthenticated.get(&remote).copied().unwrap_or(0);
        let per_address = limits.max_unauthenticated_per_address;
        if per_address != 0 && from_remote >= per_address {
            self.refused_per_address.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::UnauthenticatedPerAddress);
        }
        let max = limits.max_connections;
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (max == 0 || open < max).then_some(open + 1)
            });
        if admitted.is_err() {
            self.refused_connections.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Connections);
        }
        unauthenticated.insert(remote, from_remote + 1);
        Ok(Admitted {
            admission: self,
            unauthenticated_from: Some(remote),
        })
    }

    pub fn counts(&self) -> Counts {
        Counts {
            open: self.open.load(Ordering::Relaxed),
            refused_connections: self.refused_connections.load(Ordering::Relaxed),
            refused_unauthenticated_per_address: self.refused_per_address.load(Ordering::Relaxed),
        }
    }

    fn leave_unauthenticated(&self, remote: IpAddr) {
        let mut unauthenticated = lock(&self.unauthenticated);
        if let Some(count) = unauthenticated.get_mut(&remote) {
            *count -= 1;
            if *count == 0 {
                unauthenticated.remove(&remote);
            }
        }
    }
}

/// An admitted connection; counted until dropped.
#[derive(Debug)]
pub struct Admitted {
    admission: &'static Admission,
    /// Its address while it counts as unauthenticated.
    unauthenticated_from: Option<IpAddr>,
}

impl Admitted {
    /// The connection presented a known stream key: it no longer counts against its address.
    pub fn authenticated(&mut self) {
        if let Some(remote) = self.unauthenticated_from.take() {
            self.admission.leave_unauthenticated(remote);
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.authenticated();
        self.admission.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("limits", &self.limits())
            .field("counts", &self.counts())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update is a single insert, decrement or remove: consistent across a panicking holder.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaked(limits: Limits) -> &'static Admission {
        Box::leak(Box::new(Admission::new(limits)))
    }

    #[test]
    fn unauthenticated_connections_are_capped_per_address() {
        let admission = leaked(Limits {
            max_connections: 0,
            max_unauthenticated_per_address: 2,
        });
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let mut first = admission.admit(one).unwrap();
        let second = admission.admit(one).unwrap();
        let refused = admission.admit(one).unwrap_err();
        assert_eq!(refused, Refusal::UnauthenticatedPerAddress);
        // The same address written as IPv4-mapped IPv6 is the same address.
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert!(admission.admit(mapped).is_err());
        assert!(
            admission.admit(other).is_ok(),
            "another address is not held up"
        );
        // Once one has published, there is room again; it stays counted as open.
        first.authenticated();
        let third = admission.admit(one).unwrap();
        assert!(admission.admit(one).is_err());
        drop((second, third));
        assert_eq!(
            admission.counts(),
            Counts {
                open: 1,
                refused_connections: 0,
                refused_unauthenticated_per_address: 3,
            }
        );
        drop(first);
        assert_eq!(admission.counts().open, 0);
    }

    #[test]
    fn open_connections_are_capped_for_the_process() {
        let admission = leaked(Limits {
            max_connections: 2,
            max_unauthenticated_per_address: 0,
        });
        let address = |i: u8| IpAddr::from([198, 51, 100, i]);
        let mut live = admission.admit(address(1)).unwrap();
        live.authenticated();
        let _setting_up = admission.admit(address(2)).unwrap();
        assert_eq!(
            admission.admit(address(3)).unwrap_err(),
            Refusal::Connections
        );
        drop(live);
        assert!(admission.admit(address(3)).is_ok());
        assert_eq!(admission.counts().refused_connections, 1);
        // A lower limit refuses new connections only; the admitted ones stay.
        admission.set_limits(Limits {
            max_connections: 1,
            max_unauthenticated_per_address: 0,
        });
        assert!(admission.admit(address(4)).is_err());
    }
}
