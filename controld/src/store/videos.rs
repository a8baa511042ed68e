//! Video rows: one per recorded broadcast.

use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::timefmt;

pub const STATE_LIVE: &str = "live-inprogress";
pub const STATE_READY: &str = "ready";

#[derive(Debug, Clone)]
pub struct Video {
    pub uid: String,
    pub account_id: String,
    pub live_input: String,
    pub created: String,
    pub modified: String,
    pub state: String,
    pub ready_to_stream_at: Option<String>,
    /// Seconds; -1 while unknown (live).
    pub duration: f64,
    pub meta: serde_json::Value,
    pub creator: Option<String>,
    pub require_signed_urls: bool,
    pub allowed_origins: Option<Vec<String>>,
}

const COLUMNS: &str = "uid, account_id, live_input, created, modified, state, \
    ready_to_stream_at, duration, meta, creator, require_signed_urls, allowed_origins";

fn from_row(r: &Row) -> rusqlite::Result<Video> {
    let origins: Option<String> = r.get(11)?;
    Ok(Video {
        uid: r.get(0)?,
        account_id: r.get(1)?,
        live_input: r.get(2)?,
        created: r.get(3)?,
        modified: r.get(4)?,
        state: r.get(5)?,
        ready_to_stream_at: r.get(6)?,
        duration: r.get(7)?,
        meta: super::json_column(r.get(8)?),
        creator: r.get(9)?,
        require_signed_urls: r.get(10)?,
        allowed_origins: origins.and_then(|o| serde_json::from_str(&o).ok()),
    })
}

pub fn insert(conn: &Connection, v: &Video) -> rusqlite::Result<()> {
    let origins = v
        .allowed_origins
        .as_ref()
        .map(|o| serde_json::to_string(o).unwrap_or_default());
    conn.execute(
        &format!(
            "INSERT INTO videos ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ),
        params![
            v.uid,
            v.account_id,
            v.live_input,
            v.created,
            v.modified,
            v.state,
            v.ready_to_stream_at,
            v.duration,
            v.meta.to_string(),
            v.creator,
            v.require_signed_urls,
            origins
        ],
    )?;
    Ok(())
}

/// Marks a recording finished and playable as VOD, and schedules its deletion when its live
/// input has `deleteRecordingAfterDays` (counted from now, the time it became ready).
pub fn mark_ready(conn: &Connection, uid: &str, duration: f64, now: &str) -> rusqlite::Result<()> {
    let days: Option<u32> = conn
        .query_row(
            "SELECT l.delete_recording_after_days FROM videos v \
             JOIN live_inputs l ON l.uid = v.live_input WHERE v.uid = ?1",
            [uid],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let scheduled = days.and_then(|days| {
        let ready = OffsetDateTime::parse(now, &Rfc3339).ok()?;
        Some(timefmt::format(ready + time::Duration::days(days.into())))
    });
    conn.execute(
        "UPDATE videos SET state = ?2, duration = ?3, ready_to_stream_at = ?4, modified = ?4, \
         scheduled_deletion = ?5 WHERE uid = ?1",
        params![uid, STATE_READY, duration, now, scheduled],
    )?;
    Ok(())
}

/// When the retention sweeper will delete the video (RFC 3339), if ever.
pub fn scheduled_deletion(conn: &Connection, uid: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT scheduled_deletion FROM videos WHERE uid = ?1")?
        .query_row([uid], |r| r.get(0))
        .optional()
        .map(Option::flatten)
}

/// Finished videos whose scheduled deletion is at or before `now` (RFC 3339 in the one format
/// `timefmt` writes, so text order is time order), oldest first.
pub fn due_for_deletion(conn: &Connection, now: &str, limit: u32) -> rusqlite::Result<Vec<Video>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM videos WHERE scheduled_deletion IS NOT NULL \
         AND scheduled_deletion <= ?1 AND state = ?2 ORDER BY scheduled_deletion LIMIT ?3"
    ))?
    .query_map(params![now, STATE_READY, limit], from_row)?
    .collect()
}

pub fn get(conn: &Connection, account_id: &str, uid: &str) -> rusqlite::Result<Option<Video>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM videos WHERE uid = ?1 AND account_id = ?2"
    ))?
    .query_row([uid, account_id], from_row)
    .optional()
}

/// Looks a video up by uid alone (playback, which has no account).
pub fn get_any(conn: &Connection, uid: &str) -> rusqlite::Result<Option<Video>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM videos WHERE uid = ?1"))?
        .query_row([uid], from_row)
        .optional()
}

pub struct ListFilter {
    pub live_input: Option<String>,
    pub state: Option<String>,
    pub ascending: bool,
    pub limit: u32,
}

pub fn list(conn: &Connection, account_id: &str, f: &ListFilter) -> rusqlite::Result<Vec<Video>> {
    let order = if f.ascending { "ASC" } else { "DESC" };
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM videos WHERE account_id = ?1 \
         AND (?2 IS NULL OR live_input = ?2) AND (?3 IS NULL OR state = ?3) \
         ORDER BY created {order}, uid LIMIT ?4"
    ))?
    .query_map(
        params![account_id, f.live_input, f.state, f.limit],
        from_row,
    )?
    .collect()
}

/// Recordings a crash left open (`live-inprogress` at startup).
pub fn unfinished(conn: &Connection) -> rusqlite::Result<Vec<Video>> {
    conn.prepare(&format!("SELECT {COLUMNS} FROM videos WHERE state = ?1"))?
        .query_map([STATE_LIVE], from_row)?
        .collect()
}

pub fn delete(conn: &Connection, account_id: &str, uid: &str) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "DELETE FROM videos WHERE uid = ?1 AND account_id = ?2",
        [uid, account_id],
    )?;
    Ok(n == 1)
}
