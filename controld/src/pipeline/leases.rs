//! This node's leases on the inputs it runs pipelines for (`store::leases`): taken when a
//! publisher is accepted, renewed while the pipeline runs, given up when it ends. With one
//! node they always succeed; with several on one PostgreSQL they make a key that is live on
//! one node refused on the others, and let another node take the input over once a dead
//! node's lease lapses.

use std::sync::Weak;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Inner, StopReason, lock};
use crate::store::{leases, nodes};

/// A node that has not announced itself for this long is taken for gone (its address is not
/// used to forward playback).
pub const NODE_SEEN_WITHIN: Duration = LEASE_TTL;

/// How long a lease lasts without renewal: how soon another node may take over the inputs of
/// a node that died (a publisher's reconnect within `timeoutSeconds` finds it free).
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often the owner renews: a few renewals may fail (a slow database) before a lease lapses.
const RENEW_EVERY: Duration = Duration::from_secs(1);

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn ttl_ms() -> i64 {
    LEASE_TTL.as_millis() as i64
}

/// Takes the input's lease for this node; the refusal names why.
pub(super) fn take(inner: &Inner, input_uid: &str) -> Result<(), String> {
    let node = inner.node_id.as_str();
    let taken = inner
        .store
        .write_blocking(|c| leases::acquire(c, input_uid, node, now_ms(), ttl_ms()));
    match taken {
        Ok(true) => Ok(()),
        Ok(false) => {
            let owner = inner
                .store
                .read(|c| leases::owner(c, input_uid, now_ms()))
                .ok()
                .flatten()
                .unwrap_or_else(|| "another node".into());
            Err(format!(
                "stream key in use: the input is live on node {owner}"
            ))
        }
        Err(e) => {
            tracing::error!(input = input_uid, "taking the input's lease: {e}");
            Err("the server's state is unavailable; retry in a few seconds".into())
        }
    }
}

/// Gives the lease up (the pipeline ended or never started); a failure only delays another
/// node's takeover until the lease lapses.
pub(super) fn give_up(inner: &Inner, input_uid: &str) {
    let node = inner.node_id.as_str();
    if let Err(e) = inner
        .store
        .write_blocking(|c| leases::release(c, input_uid, node))
    {
        tracing::warn!(input = input_uid, "giving the input's lease up: {e}");
    }
}

/// Renews the leases of the inputs with a pipeline here until the manager goes (and announces
/// the node's HTTP address, `store::nodes`); a pipeline whose lease another node took
/// meanwhile (this node was cut off longer than the lease) is stopped, so that an input never
/// records on two nodes at once.
pub(super) async fn renew(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if let Some(url) = inner.node_url.get().cloned() {
            let node = inner.node_id.clone();
            let announced = inner
                .store
                .write(move |c| nodes::announce(c, &node, &url, now_ms()))
                .await;
            if let Err(e) = announced {
                tracing::warn!("announcing this node: {e}");
            }
        }
        let uids: Vec<String> = lock(&inner.sessions).keys().cloned().collect();
        if uids.is_empty() {
            continue;
        }
        let node = inner.node_id.clone();
        let renewed = inner
            .store
            .write(move |c| leases::renew(c, &node, &uids, now_ms(), ttl_ms()))
            .await;
        match renewed {
            Ok(lost) => {
                for uid in lost {
                    tracing::error!(input = uid, "lease lost to another node: stopping");
                    super::stop_session(&inner, &uid, StopReason::LeaseLost);
                }
            }
            Err(e) => tracing::warn!("renewing input leases: {e}"),
        }
    }
}
