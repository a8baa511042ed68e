//! The nodes sharing a database and the HTTP address each is reached at by the others (a node
//! serves playback of what another node holds by forwarding the request there).

use super::sql::{self, Conn};
use crate::params;

/// Records that `node` is up and reached at `url`, at `now_ms`.
pub fn announce(conn: &Conn, node: &str, url: &str, now_ms: i64) -> sql::Result<()> {
    conn.execute(
        "INSERT INTO nodes (node_id, http_url, seen_ms) VALUES (?1, ?2, ?3) \
         ON CONFLICT (node_id) DO UPDATE SET http_url = excluded.http_url, \
         seen_ms = excluded.seen_ms",
        params![node, url, now_ms],
    )?;
    Ok(())
}

/// Where `node` is reached, if it announced itself since `since_ms`.
pub fn url_of(conn: &Conn, node: &str, since_ms: i64) -> sql::Result<Option<String>> {
    conn.query_opt(
        "SELECT http_url FROM nodes WHERE node_id = ?1 AND seen_ms >= ?2",
        params![node, since_ms],
        |r| r.get(0),
    )
}

/// The node a video was recorded on (absent for recordings made before nodes were named).
pub fn of_video(conn: &Conn, video_uid: &str) -> sql::Result<Option<String>> {
    Ok(conn
        .query_opt(
            "SELECT node_id FROM videos WHERE uid = ?1",
            params![video_uid],
            |r| r.get::<Option<String>>(0),
        )?
        .flatten())
}

/// Names the node recording a video.
pub fn set_of_video(conn: &Conn, video_uid: &str, node: &str) -> sql::Result<()> {
    conn.execute(
        "UPDATE videos SET node_id = ?2 WHERE uid = ?1",
        params![video_uid, node],
    )?;
    Ok(())
}

/// Moves a video from the node that was recording it to `to`, if `from` still has it: of nodes
/// racing to continue a dead node's recording, one gets it.
pub fn claim_video(conn: &Conn, video_uid: &str, from: &str, to: &str) -> sql::Result<bool> {
    let moved = conn.execute(
        "UPDATE videos SET node_id = ?3 WHERE uid = ?1 AND node_id = ?2",
        params![video_uid, from, to],
    )?;
    Ok(moved == 1)
}
