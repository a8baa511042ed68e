//! The `webhooks` (one subscription per account) and `webhook_outbox` tables (`api::webhooks`,
//! delivered by the `webhooks` task).

use super::sql::{self, Conn};
use crate::params;

/// An account's subscription, as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub notification_url: String,
    pub modified: String,
    /// Key of the `Webhook-Signature` HMAC.
    pub secret: String,
}

pub fn get(conn: &Conn, account_id: &str) -> sql::Result<Option<Subscription>> {
    conn.query_opt(
        "SELECT notification_url, modified, secret FROM webhooks WHERE account_id = ?1",
        params![account_id],
        |r| {
            Ok(Subscription {
                notification_url: r.get(0)?,
                modified: r.get(1)?,
                secret: r.get(2)?,
            })
        },
    )
}

/// Creates or updates the subscription; an existing secret is kept so that receivers keep
/// verifying across URL changes.
pub fn put(
    conn: &Conn,
    account_id: &str,
    url: &str,
    new_secret: &str,
    now: &str,
) -> sql::Result<Subscription> {
    conn.execute(
        "INSERT INTO webhooks (account_id, notification_url, secret, modified) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT(account_id) DO UPDATE SET \
         notification_url = ?2, modified = ?4",
        params![account_id, url, new_secret, now],
    )?;
    get(conn, account_id)?.ok_or(sql::Error::NoRow)
}

/// Removes the subscription and the events still waiting for it; returns whether it existed.
pub fn delete(conn: &Conn, account_id: &str) -> sql::Result<bool> {
    conn.execute(
        "DELETE FROM webhook_outbox WHERE account_id = ?1",
        params![account_id],
    )?;
    Ok(conn.execute(
        "DELETE FROM webhooks WHERE account_id = ?1",
        params![account_id],
    )? == 1)
}

/// Queues an event if the account has a subscription; evicts the account's oldest events
/// beyond `cap`. Returns how many were evicted.
pub fn enqueue(
    conn: &Conn,
    account_id: &str,
    event_type: &str,
    body: &str,
    now_ms: i64,
    cap: u32,
) -> sql::Result<usize> {
    let queued = conn.execute("INSERT INTO webhook_outbox (account_id, event_type, body, next_attempt_ms) \
         SELECT ?1, ?2, ?3, CAST(?4 AS BIGINT) WHERE EXISTS (SELECT 1 FROM webhooks WHERE account_id = ?1)", params![account_id, event_type, body, now_ms])?;
    if queued == 0 {
        return Ok(0);
    }
    conn.execute(
        "DELETE FROM webhook_outbox WHERE account_id = ?1 AND id NOT IN \
         (SELECT id FROM webhook_outbox WHERE account_id = ?1 ORDER BY id DESC LIMIT ?2)",
        params![account_id, cap],
    )
}

/// The oldest queued event of an account, with where and how to send it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: i64,
    pub account_id: String,
    pub event_type: String,
    pub body: String,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub url: String,
    pub secret: String,
}

/// Each account's oldest event: events of an account go out in order, one at a time.
pub fn heads(conn: &Conn) -> sql::Result<Vec<Pending>> {
    conn.query_map(
        "SELECT o.id, o.account_id, o.event_type, o.body, o.attempts, o.next_attempt_ms, \
         w.notification_url, w.secret FROM webhook_outbox o \
         JOIN webhooks w ON w.account_id = o.account_id \
         WHERE o.id IN (SELECT MIN(id) FROM webhook_outbox GROUP BY account_id)",
        &[],
        |r| {
            Ok(Pending {
                id: r.get(0)?,
                account_id: r.get(1)?,
                event_type: r.get(2)?,
                body: r.get(3)?,
                attempts: r.get(4)?,
                next_attempt_ms: r.get(5)?,
                url: r.get(6)?,
                secret: r.get(7)?,
            })
        },
    )
}

/// Takes event `id` for `node` until `until_ms`, unless another node's claim on it runs past
/// `now_ms`: one conditional update, so nodes sharing the outbox never both send an event.
pub fn claim(conn: &Conn, id: i64, node: &str, now_ms: i64, until_ms: i64) -> sql::Result<bool> {
    let n = conn.execute(
        "UPDATE webhook_outbox SET claimed_by = ?2, claimed_until_ms = ?4 WHERE id = ?1 \
         AND (claimed_by IS NULL OR claimed_by = ?2 OR claimed_until_ms <= ?3)",
        params![id, node, now_ms, until_ms],
    )?;
    Ok(n == 1)
}

/// Delivered, or given up on.
pub fn remove(conn: &Conn, id: i64) -> sql::Result<()> {
    conn.execute("DELETE FROM webhook_outbox WHERE id = ?1", params![id])?;
    Ok(())
}

pub fn reschedule(
    conn: &Conn,
    id: i64,
    attempts: u32,
    next_attempt_ms: i64,
    error: &str,
) -> sql::Result<()> {
    conn.execute(
        "UPDATE webhook_outbox SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4 \
         WHERE id = ?1",
        params![id, attempts, next_attempt_ms, error],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, accounts};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        store
            .write_blocking(|c| {
                accounts::ensure(c, "a")?;
                accounts::ensure(c, "b")
            })
            .unwrap();
        (dir, store)
    }

    #[test]
    fn events_queue_only_with_a_subscription_and_stay_bounded() {
        let (_dir, store) = store();
        let heads_now = || store.read(heads).unwrap();
        store
            .write_blocking(|c| {
                // No subscription yet: nothing is kept.
                assert_eq!(enqueue(c, "a", "e", "0", 0, 3)?, 0);
                put(c, "a", "http://x/", "s1", "t")?;
                let kept = put(c, "a", "http://y/", "s2", "t2")?;
                assert_eq!(
                    (kept.notification_url.as_str(), kept.secret.as_str()),
                    ("http://y/", "s1")
                );
                for n in 1..=5 {
                    enqueue(c, "a", "e", &n.to_string(), n, 3)?;
                }
                Ok(())
            })
            .unwrap();
        // Bounded to 3: the two oldest were evicted; the head is the oldest kept.
        let head = &heads_now()[0];
        assert_eq!((head.body.as_str(), head.url.as_str()), ("3", "http://y/"));
        store
            .write_blocking(|c| {
                put(c, "b", "http://b/", "sb", "t")?;
                enqueue(c, "b", "e", "b1", 9, 3)?;
                remove(c, head.id)?;
                reschedule(c, head.id + 1, 2, 99, "refused")
            })
            .unwrap();
        let mut h = heads_now();
        h.sort_by(|x, y| x.account_id.cmp(&y.account_id));
        assert_eq!(h.len(), 2, "one head per account");
        assert_eq!(
            (h[0].body.as_str(), h[0].attempts, h[0].next_attempt_ms),
            ("4", 2, 99)
        );
        assert_eq!(h[1].body, "b1");
        // One node's claim keeps the event from another until it lapses.
        let id = heads_now()[0].id;
        let claim_at = |node: &str, now: i64| {
            store
                .write_blocking(|c| claim(c, id, node, now, now + 10))
                .unwrap()
        };
        assert!(claim_at("A", 100));
        assert!(!claim_at("B", 105), "A's claim runs to 110");
        assert!(claim_at("A", 105), "A again");
        assert!(claim_at("B", 115), "A's claim lapsed at 115");
        // Deleting the subscription drops its queue.
        assert!(store.write_blocking(|c| delete(c, "a")).unwrap());
        assert_eq!(heads_now().len(), 1);
    }
}
