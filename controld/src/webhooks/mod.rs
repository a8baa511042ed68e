//! Webhooks: events are written to a SQLite outbox (`store::webhooks`, so they survive
//! restarts) by whoever observes them, and one delivery task sends them, signed, with retries.
//!
//! Bounds: at most `MAX_OUTBOX_PER_ACCOUNT` queued events per account (the oldest are evicted),
//! `MAX_ATTEMPTS` attempts per event, backoff `retry_base × 2^(attempt−1)` capped at
//! `MAX_BACKOFF` (defaults: 2 s, 4 s, … 512 s, then 15 min twice: about 47 minutes of trying),
//! `REQUEST_TIMEOUT` per request. Events of one account go out in order, one at a time;
//! accounts do not wait for each other.

mod delivery;
pub mod events;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::store::Store;
use events::{InputError, LiveInputEvent};

pub const MAX_OUTBOX_PER_ACCOUNT: u32 = 1000;
pub const MAX_ATTEMPTS: u32 = 12;
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

struct Inner {
    store: Store,
    metrics: Arc<Metrics>,
    retry_base: Duration,
    /// Claims outbox rows (`store::webhooks::claim`) so that nodes sharing a database send each
    /// event once.
    node_id: String,
    wake: Notify,
    /// Base of playback URLs in video bodies, known once the HTTP listener is bound.
    http_base: OnceLock<String>,
}

/// Queues events; cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

impl Webhooks {
    /// Starts the delivery task (inside the tokio runtime); events left by an earlier run go
    /// out first.
    pub fn start(
        store: Store,
        metrics: Arc<Metrics>,
        retry_base: Duration,
        node_id: &str,
    ) -> Webhooks {
        let inner = Arc::new(Inner {
            store,
            metrics,
            retry_base,
            node_id: node_id.to_owned(),
            wake: Notify::new(),
            http_base: OnceLock::new(),
        });
        tokio::spawn(delivery::run(inner.clone()));
        Webhooks { inner }
    }

    pub fn set_http_base(&self, base: &str) {
        let _ = self.inner.http_base.set(base.to_owned());
    }

    /// A live input event, for the input's account.
    pub async fn live_input(
        &self,
        account_id: &str,
        input_uid: &str,
        input_name: Option<&str>,
        event: LiveInputEvent,
        error: Option<&InputError>,
    ) {
        let now = time::OffsetDateTime::now_utc();
        let body = events::live_input(
            input_uid,
            input_name,
            event,
            error,
            &crate::timefmt::format(now),
            now.unix_timestamp(),
        );
        self.enqueue(account_id, event.as_str(), body).await;
    }

    /// The video webhook, once a recording is ready (read back from the store).
    pub async fn video_ready(&self, video_uid: &str) {
        let uid = video_uid.to_owned();
        let found = self.inner.store.read(|c| {
            let Some(video) = crate::store::videos::get_any(c, &uid)? else {
                return Ok(None);
            };
            let details = crate::store::videos::details(c, &uid)?.unwrap_or_default();
            Ok(Some((video, details)))
        });
        let (video, details) = match found {
            Ok(Some(found)) => found,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(video = video_uid, "video webhook: {e}");
                return;
            }
        };
        let base = self.inner.http_base.get().map_or("", String::as_str);
        let account_id = video.account_id.clone();
        let body = events::video(video, base, details);
        self.enqueue(&account_id, "video.ready", body).await;
    }

    async fn enqueue(&self, account_id: &str, event_type: &str, body: serde_json::Value) {
        let (account, kind, text) = (
            account_id.to_owned(),
            event_type.to_owned(),
            body.to_string(),
        );
        let now_ms = delivery::unix_ms();
        match self
            .inner
            .store
            .write(move |c| {
                crate::store::webhooks::enqueue(
                    c,
                    &account,
                    &kind,
                    &text,
                    now_ms,
                    MAX_OUTBOX_PER_ACCOUNT,
                )
            })
            .await
        {
            Ok(evicted) => {
                if evicted > 0 {
                    tracing::warn!(
                        account = account_id,
                        evicted,
                        "webhook outbox full: oldest events dropped"
                    );
                    Metrics::add(&self.inner.metrics.webhook_dropped, evicted as u64);
                }
                self.inner.wake.notify_one();
            }
            Err(e) => tracing::error!(account = account_id, event_type, "queueing webhook: {e}"),
        }
    }
}
