//! Connection status history of live inputs: the latest entry is `status.current`.

use std::collections::BTreeMap;

use super::sql::{self, Conn, Row};
use crate::params;
use serde::Serialize;

/// Entries kept per input, so that a flapping encoder cannot grow the database without bound.
const KEPT_ENTRIES: u32 = 20;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusEntry {
    pub state: String,
    pub reason: String,
    pub ingest_protocol: Option<String>,
    pub status_entered_at: String,
    pub status_last_seen: String,
    /// Error code of a failed attempt (`ERR_GOP_OUT_OF_RANGE`, …); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

fn from_row(r: &Row) -> sql::Result<StatusEntry> {
    Ok(StatusEntry {
        state: r.get(0)?,
        reason: r.get(1)?,
        ingest_protocol: r.get(2)?,
        status_entered_at: r.get(3)?,
        status_last_seen: r.get(4)?,
        error_code: r.get(5)?,
        error_message: r.get(6)?,
    })
}

pub fn push(conn: &Conn, input_uid: &str, e: &StatusEntry) -> sql::Result<()> {
    let inserted = conn.execute("INSERT INTO live_input_status (input_uid, state, reason, ingest_protocol, entered_at, \
         last_seen, error_code, error_message) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE EXISTS (SELECT 1 FROM live_inputs WHERE uid = ?1)", params![
            input_uid,
            e.state,
            e.reason,
            e.ingest_protocol,
            e.status_entered_at,
            e.status_last_seen,
            e.error_code,
            e.error_message
        ])?;
    if inserted == 1 {
        conn.execute(
            "DELETE FROM live_input_status WHERE input_uid = ?1 AND id NOT IN \
             (SELECT id FROM live_input_status WHERE input_uid = ?1 ORDER BY id DESC LIMIT ?2)",
            params![input_uid, KEPT_ENTRIES],
        )?;
    }
    Ok(())
}

/// Marks the current status as still observed at `now`.
pub fn touch(conn: &Conn, input_uid: &str, now: &str) -> sql::Result<()> {
    conn.execute(
        "UPDATE live_input_status SET last_seen = ?2 WHERE id = \
         (SELECT MAX(id) FROM live_input_status WHERE input_uid = ?1)",
        params![input_uid, now],
    )?;
    Ok(())
}

/// Newest first; empty before the first connection.
pub fn history(conn: &Conn, input_uid: &str) -> sql::Result<Vec<StatusEntry>> {
    conn.query_map(
        "SELECT state, reason, ingest_protocol, entered_at, last_seen, error_code, error_message \
         FROM live_input_status WHERE input_uid = ?1 ORDER BY id DESC",
        params![input_uid],
        from_row,
    )
}

/// After a restart, inputs whose status still says a publisher is there are marked
/// disconnected (the publisher was cut by the crash), but those live on another node (holding
/// their lease at `now_ms`).
pub fn close_open(conn: &Conn, now: &str, node: &str, now_ms: i64) -> sql::Result<()> {
    conn.execute("INSERT INTO live_input_status (input_uid, state, reason, ingest_protocol, entered_at, last_seen) \
         SELECT input_uid, 'disconnected', 'server_restart', ingest_protocol, ?1, ?1 \
         FROM live_input_status s \
         WHERE id = (SELECT MAX(id) FROM live_input_status WHERE input_uid = s.input_uid) \
         AND state IN ('connected', 'reconnected', 'reconnecting') \
         AND input_uid NOT IN (SELECT input_uid FROM live_input_leases \
         WHERE node_id <> ?2 AND expires_ms > ?3)", params![now, node, now_ms])?;
    Ok(())
}

/// Count of inputs by the state of their latest status entry (`idle` without one).
pub fn count_by_state(conn: &Conn) -> sql::Result<BTreeMap<String, u64>> {
    conn.query_map(
        "SELECT COALESCE((SELECT state FROM live_input_status s WHERE s.input_uid = i.uid \
         ORDER BY s.id DESC LIMIT 1), 'idle') AS state, COUNT(*) \
         FROM live_inputs i GROUP BY state",
        &[],
        |r| Ok((r.get(0)?, r.get::<u64>(1)?)),
    )
    .map(|rows| rows.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::live_inputs;
    use crate::store::{Store, accounts};

    fn entry(state: &str, at: &str) -> StatusEntry {
        StatusEntry {
            state: state.into(),
            reason: state.into(),
            ingest_protocol: Some("rtmp".into()),
            status_entered_at: at.into(),
            status_last_seen: at.into(),
            error_code: None,
            error_message: None,
        }
    }

    #[test]
    fn history_is_bounded_newest_first_and_survives_updates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        store
            .write_blocking(|c| {
                accounts::ensure(c, "a")?;
                live_inputs::save(c, &live_inputs::sample("i1"))?;
                for n in 0..25 {
                    push(c, "i1", &entry("connected", &format!("{n:02}")))?;
                }
                // An update of the input (e.g. rotate_keys) keeps its history.
                let mut updated = live_inputs::sample("i1");
                updated.stream_key = "rotated".into();
                live_inputs::save(c, &updated)?;
                // Entries for an input that no longer exists are dropped, not stored.
                push(c, "gone", &entry("connected", "99"))
            })
            .unwrap();
        let kept = store.read(|c| history(c, "i1")).unwrap();
        assert_eq!(kept.len(), KEPT_ENTRIES as usize);
        assert_eq!(kept[0].status_entered_at, "24");
        assert_eq!(kept[19].status_entered_at, "05");
        assert!(store.read(|c| history(c, "gone")).unwrap().is_empty());
        let key = store
            .read(|c| live_inputs::get(c, "a", "i1"))
            .unwrap()
            .unwrap()
            .stream_key;
        assert_eq!(key, "rotated");
    }
}
