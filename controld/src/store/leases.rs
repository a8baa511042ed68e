//! Which node owns a live input while it is live: a lease row per input with an expiry, taken
//! in one statement (so two nodes racing for an input never both get it), renewed by the owner
//! while its pipeline runs and dropped when it ends. A node that dies stops renewing, and its
//! leases lapse after `ttl` for another node to take the publisher's reconnect.

use super::sql::{self, Conn};
use crate::params;

/// Takes the input's lease for `node` until `now_ms + ttl_ms` if it is free, lapsed or already
/// this node's. Returns whether `node` holds it now.
pub fn acquire(
    conn: &Conn,
    input_uid: &str,
    node: &str,
    now_ms: i64,
    ttl_ms: i64,
) -> sql::Result<bool> {
    let n = conn.execute(
        "INSERT INTO live_input_leases (input_uid, node_id, expires_ms) \
         SELECT ?1, ?2, CAST(?3 AS BIGINT) WHERE EXISTS (SELECT 1 FROM live_inputs WHERE uid = ?1) \
         ON CONFLICT (input_uid) DO UPDATE SET node_id = excluded.node_id, \
         expires_ms = excluded.expires_ms \
         WHERE live_input_leases.node_id = excluded.node_id \
         OR live_input_leases.expires_ms <= CAST(?4 AS BIGINT)",
        params![input_uid, node, now_ms + ttl_ms, now_ms],
    )?;
    Ok(n == 1)
}

/// Extends the node's leases on `inputs`; returns the inputs whose lease it no longer holds.
pub fn renew(
    conn: &Conn,
    node: &str,
    inputs: &[String],
    now_ms: i64,
    ttl_ms: i64,
) -> sql::Result<Vec<String>> {
    let mut lost = Vec::new();
    for uid in inputs {
        let n = conn.execute(
            "UPDATE live_input_leases SET expires_ms = ?3 WHERE input_uid = ?1 AND node_id = ?2",
            params![uid, node, now_ms + ttl_ms],
        )?;
        if n == 0 {
            lost.push(uid.clone());
        }
    }
    Ok(lost)
}

/// Gives the lease up (the pipeline ended).
pub fn release(conn: &Conn, input_uid: &str, node: &str) -> sql::Result<()> {
    conn.execute(
        "DELETE FROM live_input_leases WHERE input_uid = ?1 AND node_id = ?2",
        params![input_uid, node],
    )?;
    Ok(())
}

/// The node holding the input's lease at `now_ms`, if any.
pub fn owner(conn: &Conn, input_uid: &str, now_ms: i64) -> sql::Result<Option<String>> {
    conn.query_opt(
        "SELECT node_id FROM live_input_leases WHERE input_uid = ?1 AND expires_ms > ?2",
        params![input_uid, now_ms],
        |r| r.get(0),
    )
}

/// Inputs whose lease another node holds at `now_ms`: their recordings are that node's.
pub fn held_by_others(conn: &Conn, node: &str, now_ms: i64) -> sql::Result<Vec<String>> {
    conn.query_map(
        "SELECT input_uid FROM live_input_leases WHERE node_id <> ?1 AND expires_ms > ?2",
        params![node, now_ms],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, accounts, live_inputs};

    #[test]
    fn a_lease_is_one_nodes_until_it_lapses_or_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        store
            .write_blocking(|c| {
                accounts::ensure(c, "a")?;
                live_inputs::save(c, &live_inputs::sample("i1"))?;
                assert!(acquire(c, "i1", "A", 0, 5000)?);
                assert!(!acquire(c, "i1", "B", 1000, 5000)?, "held by A");
                assert!(acquire(c, "i1", "A", 1000, 5000)?, "A again: renewed");
                assert_eq!(owner(c, "i1", 5999)?.as_deref(), Some("A"));
                assert!(acquire(c, "i1", "B", 6000, 5000)?, "lapsed at 6000");
                assert_eq!(
                    renew(c, "A", &["i1".into()], 6000, 5000)?,
                    vec!["i1".to_owned()]
                );
                assert_eq!(held_by_others(c, "A", 6000)?, vec!["i1".to_owned()]);
                release(c, "i1", "B")?;
                assert_eq!(owner(c, "i1", 6000)?, None);
                assert!(!acquire(c, "unknown", "A", 0, 5000)?, "no such input");
                Ok(())
            })
            .unwrap();
    }
}
