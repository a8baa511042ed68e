//! The `live_input_outputs` table: simulcast outputs of live inputs (`api::outputs`,
//! attached to running pipelines by `pipeline::outputs`).

use super::sql::{self, Conn, Row};
use crate::params;

/// An output as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub uid: String,
    pub url: String,
    pub stream_key: String,
    pub enabled: bool,
}

const COLUMNS: &str = "uid, url, stream_key, enabled";

fn from_row(r: &Row) -> sql::Result<Output> {
    Ok(Output {
        uid: r.get(0)?,
        url: r.get(1)?,
        stream_key: r.get(2)?,
        enabled: r.get(3)?,
    })
}

/// Oldest first.
pub fn list(conn: &Conn, input_uid: &str) -> sql::Result<Vec<Output>> {
    conn.query_map(
        &format!(
            "SELECT {COLUMNS} FROM live_input_outputs WHERE input_uid = ?1 ORDER BY created, uid"
        ),
        params![input_uid],
        from_row,
    )
}

pub fn get(conn: &Conn, input_uid: &str, uid: &str) -> sql::Result<Option<Output>> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM live_input_outputs WHERE input_uid = ?1 AND uid = ?2"),
        params![input_uid, uid],
        from_row,
    )
}

/// Inserts unless the input already has `max` outputs; returns whether it was inserted.
pub fn insert(
    conn: &Conn,
    input_uid: &str,
    o: &Output,
    created: &str,
    max: usize,
) -> sql::Result<bool> {
    let n = conn.execute(
        "INSERT INTO live_input_outputs (uid, input_uid, created, url, stream_key, enabled) \
         SELECT ?1, ?2, ?3, ?4, ?5, CAST(?6 AS BOOLEAN) \
         WHERE (SELECT COUNT(*) FROM live_input_outputs WHERE input_uid = ?2) < ?7",
        params![
            o.uid,
            input_uid,
            created,
            o.url,
            o.stream_key,
            o.enabled,
            max as i64
        ],
    )?;
    Ok(n == 1)
}

pub fn set_enabled(conn: &Conn, input_uid: &str, uid: &str, enabled: bool) -> sql::Result<bool> {
    let n = conn.execute(
        "UPDATE live_input_outputs SET enabled = ?3 WHERE input_uid = ?1 AND uid = ?2",
        params![input_uid, uid, enabled],
    )?;
    Ok(n == 1)
}

pub fn delete(conn: &Conn, input_uid: &str, uid: &str) -> sql::Result<bool> {
    let n = conn.execute(
        "DELETE FROM live_input_outputs WHERE input_uid = ?1 AND uid = ?2",
        params![input_uid, uid],
    )?;
    Ok(n == 1)
}
