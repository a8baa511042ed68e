//! The delivery task: sends each account's oldest due event, signs it, reschedules failures.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::task::JoinSet;

use super::{Inner, MAX_ATTEMPTS, MAX_BACKOFF, REQUEST_TIMEOUT};
use crate::metrics::Metrics;
use crate::store::webhooks::{self as store, Pending};

/// Accounts delivered to at the same time.
const MAX_CONCURRENT: usize = 16;
/// Longest idle sleep: also how soon a subscription (re)created by hand is noticed.
const MAX_IDLE: Duration = Duration::from_secs(30);

pub fn unix_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// `Webhook-Signature` value: `time=<unix>,sig1=<hex HMAC-SHA256(secret, "<time>.<body>")>`.
pub fn signature(secret: &str, unix_time: i64, body: &str) -> String {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{unix_time}.").as_bytes());
    mac.update(body.as_bytes());
    format!(
        "time={unix_time},sig1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

pub(super) async fn run(inner: Arc<Inner>) {
    let client = match reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT)
        // A redirect could point a signed event anywhere; receivers must answer themselves.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("cfstream-controld/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("webhooks disabled: building the HTTP client: {e}");
            return;
        }
    };
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut deliveries: JoinSet<String> = JoinSet::new();
    loop {
        let now = unix_ms();
        let heads = inner.store.read(store::heads).unwrap_or_else(|e| {
            tracing::error!("reading the webhook outbox: {e}");
            Vec::new()
        });
        let mut next_due: Option<i64> = None;
        for pending in heads {
            if in_flight.contains(&pending.account_id) {
                continue;
            }
            if pending.next_attempt_ms > now || in_flight.len() >= MAX_CONCURRENT {
                let due = pending.next_attempt_ms.max(now);
                next_due = Some(next_due.map_or(due, |d| d.min(due)));
                continue;
            }
            if !claim(&inner, &pending, now).await {
                // Another node is sending it; look again once its claim would have lapsed.
                let due = now + CLAIM.as_millis() as i64;
                next_due = Some(next_due.map_or(due, |d| d.min(due)));
                continue;
            }
            in_flight.insert(pending.account_id.clone());
            deliveries.spawn(deliver(inner.clone(), client.clone(), pending));
        }
        let idle = next_due
            .map(|d| Duration::from_millis((d - now).max(0) as u64))
            .unwrap_or(MAX_IDLE)
            .min(MAX_IDLE);
        tokio::select! {
            Some(done) = deliveries.join_next(), if !deliveries.is_empty() => {
                if let Ok(account) = done {
                    in_flight.remove(&account);
                } else {
                    // A panicked delivery: forget every in-flight mark rather than wedge an
                    // account; a duplicate is better than a lost event.
                    in_flight.clear();
                }
            }
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(idle) => {}
        }
    }
}

/// How long a node's claim on an event lasts: past one attempt's timeout, so that a node that
/// died mid-attempt leaves the event to another.
const CLAIM: Duration = Duration::from_secs(REQUEST_TIMEOUT.as_secs() * 2);

/// Claims the event for this node; false if another node holds it.
async fn claim(inner: &Inner, p: &Pending, now: i64) -> bool {
    let (id, node) = (p.id, inner.node_id.clone());
    let until = now + CLAIM.as_millis() as i64;
    match inner
        .store
        .write(move |c| store::claim(c, id, &node, now, until))
        .await
    {
        Ok(claimed) => claimed,
        Err(e) => {
            tracing::error!("claiming a webhook event: {e}");
            false
        }
    }
}

/// One attempt; returns the account so the loop can send its next event.
async fn deliver(inner: Arc<Inner>, client: reqwest::Client, p: Pending) -> String {
    let unix_time = unix_ms() / 1000;
    let result = client
        .post(&p.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            "Webhook-Signature",
            signature(&p.secret, unix_time, &p.body),
        )
        .body(p.body.clone())
        .send()
        .await;
    let failure = match result {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => Some(format!("receiver answered {}", r.status())),
        Err(e) => Some(describe(&e)),
    };
    let metrics = &inner.metrics;
    let id = p.id;
    let write = match failure {
        None => {
            tracing::debug!(
                account = p.account_id,
                event = p.event_type,
                "webhook delivered"
            );
            Metrics::add(&metrics.webhook_deliveries, 1);
            inner.store.write(move |c| store::remove(c, id)).await
        }
        Some(error) => {
            Metrics::add(&metrics.webhook_failures, 1);
            let attempts = p.attempts + 1;
            if attempts >= MAX_ATTEMPTS {
                tracing::warn!(
                    account = p.account_id,
                    event = p.event_type,
                    attempts,
                    "webhook dropped: {error}"
                );
                Metrics::add(&metrics.webhook_dropped, 1);
                inner.store.write(move |c| store::remove(c, id)).await
            } else {
                let delay = backoff(inner.retry_base, attempts);
                tracing::info!(
                    account = p.account_id,
                    event = p.event_type,
                    attempts,
                    retry_in = ?delay,
                    "webhook delivery failed: {error}"
                );
                let next = unix_ms() + delay.as_millis() as i64;
                inner
                    .store
                    .write(move |c| store::reschedule(c, id, attempts, next, &error))
                    .await
            }
        }
    };
    if let Err(e) = write {
        tracing::error!("updating the webhook outbox: {e}");
    }
    p.account_id
}

/// Delay after the `attempts`-th failure: `base × 2^(attempts−1)`, at most `MAX_BACKOFF`.
fn backoff(base: Duration, attempts: u32) -> Duration {
    base.saturating_mul(1 << (attempts - 1).min(20))
        .min(MAX_BACKOFF)
}

/// reqwest's `Display` omits the cause ("error sending request"); the log wants it.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_secs(2);
        assert_eq!(backoff(base, 1), Duration::from_secs(2));
        assert_eq!(backoff(base, 2), Duration::from_secs(4));
        assert_eq!(
            backoff(base, 10),
            Duration::from_secs(1024).min(MAX_BACKOFF)
        );
        assert_eq!(backoff(base, 40), MAX_BACKOFF);
    }
}
