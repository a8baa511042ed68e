//! Video rows: one per recorded broadcast.

use super::sql::{self, Conn, Row};
use crate::params;
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
const COLUMN_COUNT: usize = 12;

fn from_row(r: &Row) -> sql::Result<Video> {
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

fn origins_column(origins: &Option<Vec<String>>) -> Option<String> {
    origins
        .as_ref()
        .map(|o| serde_json::to_string(o).unwrap_or_default())
}

pub fn insert(conn: &Conn, v: &Video) -> sql::Result<()> {
    let origins = origins_column(&v.allowed_origins);
    conn.execute(&format!(
            "INSERT INTO videos ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ), params![
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
        ])?;
    Ok(())
}

/// Marks a recording finished and playable as VOD, and schedules its deletion when its live
/// input has `deleteRecordingAfterDays` (counted from now, the time it became ready), unless an
/// edit (`POST /stream/{uid}`) already set `scheduledDeletion` while it was recording.
pub fn mark_ready(conn: &Conn, uid: &str, duration: f64, now: &str) -> sql::Result<()> {
    let days: Option<u32> = conn
        .query_opt(
            "SELECT l.delete_recording_after_days FROM videos v \
             JOIN live_inputs l ON l.uid = v.live_input WHERE v.uid = ?1",
            params![uid],
            |r| r.get(0),
        )?
        .flatten();
    let scheduled = days.and_then(|days| {
        let ready = OffsetDateTime::parse(now, &Rfc3339).ok()?;
        Some(timefmt::format(ready + time::Duration::days(days.into())))
    });
    conn.execute(
        "UPDATE videos SET state = ?2, duration = ?3, ready_to_stream_at = ?4, modified = ?4, \
         scheduled_deletion = COALESCE(scheduled_deletion, ?5) WHERE uid = ?1",
        params![uid, STATE_READY, duration, now, scheduled],
    )?;
    Ok(())
}

/// A finished recording's video frame size (0 × 0 without video) and bytes on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordedMedia {
    pub width: u32,
    pub height: u32,
    pub size: u64,
}

/// Stores what the finished recording holds (before `mark_ready`, so that the video webhook
/// shows it).
pub fn record_media(conn: &Conn, uid: &str, media: &RecordedMedia) -> sql::Result<()> {
    conn.execute(
        "UPDATE videos SET width = ?2, height = ?3, size = ?4 WHERE uid = ?1",
        params![uid, media.width, media.height, media.size],
    )?;
    Ok(())
}

/// What the API edits beyond the recorder's columns (`POST /stream/{uid}`), and what the
/// finished recording holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    /// When the retention sweeper deletes the video (RFC 3339 as `timefmt` writes it), if ever.
    pub scheduled_deletion: Option<String>,
    /// Thumbnail position as a fraction (0–1) of the duration.
    pub thumbnail_timestamp_pct: f64,
    /// Stored and shown; there are no uploads here for it to limit.
    pub max_duration_seconds: Option<i64>,
    /// `{title, share_link, channel_link, logo}` as given.
    pub public_details: Option<serde_json::Value>,
    /// Written when the recording finished (`record_media`); not by edits.
    pub media: Option<RecordedMedia>,
}

const DETAIL_COLUMNS: &str = "scheduled_deletion, thumbnail_timestamp_pct, max_duration_seconds, \
    public_details, width, height, size";

/// `Details` from the `DETAIL_COLUMNS` that start at column `at`.
fn details_from_row(r: &Row, at: usize) -> sql::Result<Details> {
    let public: Option<String> = r.get(at + 3)?;
    let (width, height, size): (Option<u32>, Option<u32>, Option<u64>) =
        (r.get(at + 4)?, r.get(at + 5)?, r.get(at + 6)?);
    let media = match (width, height, size) {
        (Some(width), Some(height), Some(size)) => Some(RecordedMedia {
            width,
            height,
            size,
        }),
        _ => None,
    };
    Ok(Details {
        scheduled_deletion: r.get(at)?,
        thumbnail_timestamp_pct: r.get(at + 1)?,
        max_duration_seconds: r.get(at + 2)?,
        public_details: public.map(|p| super::json_column(Some(p))),
        media,
    })
}

pub fn details(conn: &Conn, uid: &str) -> sql::Result<Option<Details>> {
    conn.query_opt(
        &format!("SELECT {DETAIL_COLUMNS} FROM videos WHERE uid = ?1"),
        params![uid],
        |r| details_from_row(r, 0),
    )
}

/// Writes what an edit may change: `meta`, `creator`, `requireSignedURLs`, `allowedOrigins`,
/// `modified` and the details. Returns whether the video exists.
pub fn update(conn: &Conn, v: &Video, d: &Details) -> sql::Result<bool> {
    let n = conn.execute(
        "UPDATE videos SET modified = ?3, meta = ?4, creator = ?5, require_signed_urls = ?6, \
         allowed_origins = ?7, scheduled_deletion = ?8, thumbnail_timestamp_pct = ?9, \
         max_duration_seconds = ?10, public_details = ?11 WHERE uid = ?1 AND account_id = ?2",
        params![
            v.uid,
            v.account_id,
            v.modified,
            v.meta.to_string(),
            v.creator,
            v.require_signed_urls,
            origins_column(&v.allowed_origins),
            d.scheduled_deletion,
            d.thumbnail_timestamp_pct,
            d.max_duration_seconds,
            d.public_details.as_ref().map(|p| p.to_string()),
        ],
    )?;
    Ok(n == 1)
}

/// Recorded media of an account's finished videos (seconds) and its video count, all states,
/// optionally of one creator.
pub fn usage(conn: &Conn, account_id: &str, creator: Option<&str>) -> sql::Result<(f64, u64)> {
    conn.query_one(
        "SELECT COALESCE(SUM(CASE WHEN duration > 0 THEN duration ELSE 0 END), 0), COUNT(*) \
         FROM videos WHERE account_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR creator = ?2)",
        params![account_id, creator],
        |r| Ok((r.get(0)?, r.get::<i64>(1)? as u64)),
    )
}

/// Finished videos whose scheduled deletion is at or before `now` (RFC 3339 in the one format
/// `timefmt` writes, so text order is time order), oldest first.
pub fn due_for_deletion(conn: &Conn, now: &str, limit: u32) -> sql::Result<Vec<Video>> {
    conn.query_map(
        &format!(
            "SELECT {COLUMNS} FROM videos WHERE scheduled_deletion IS NOT NULL \
         AND scheduled_deletion <= ?1 AND state = ?2 ORDER BY scheduled_deletion LIMIT ?3"
        ),
        params![now, STATE_READY, limit],
        from_row,
    )
}

pub fn get(conn: &Conn, account_id: &str, uid: &str) -> sql::Result<Option<Video>> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM videos WHERE uid = ?1 AND account_id = ?2"),
        params![uid, account_id],
        from_row,
    )
}

/// Looks a video up by uid alone (playback, which has no account).
pub fn get_any(conn: &Conn, uid: &str) -> sql::Result<Option<Video>> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM videos WHERE uid = ?1"),
        params![uid],
        from_row,
    )
}

/// `GET /stream` filters; `None` matches everything, a value that matches nothing lists nothing.
pub struct ListFilter {
    pub live_input: Option<String>,
    pub state: Option<String>,
    pub creator: Option<String>,
    pub ascending: bool,
    pub limit: u32,
}

pub fn list(conn: &Conn, account_id: &str, f: &ListFilter) -> sql::Result<Vec<(Video, Details)>> {
    let order = if f.ascending { "ASC" } else { "DESC" };
    conn.query_map(
        &format!(
            "SELECT {COLUMNS}, {DETAIL_COLUMNS} FROM videos WHERE account_id = ?1 \
         AND (CAST(?2 AS TEXT) IS NULL OR live_input = ?2) AND (CAST(?3 AS TEXT) IS NULL OR state = ?3) \
         AND (CAST(?4 AS TEXT) IS NULL OR creator = ?4) ORDER BY created {order}, uid LIMIT ?5"
        ),
        params![account_id, f.live_input, f.state, f.creator, f.limit],
        |r| Ok((from_row(r)?, details_from_row(r, COLUMN_COUNT)?)),
    )
}

/// Recordings a crash left open (`live-inprogress` at startup).
pub fn unfinished(conn: &Conn) -> sql::Result<Vec<Video>> {
    conn.query_map(
        &format!("SELECT {COLUMNS} FROM videos WHERE state = ?1"),
        params![STATE_LIVE],
        from_row,
    )
}

/// Every video's uid (the retention sweep's owners of recording directories).
pub fn all_uids(conn: &Conn) -> sql::Result<Vec<String>> {
    conn.query_map("SELECT uid FROM videos", &[], |r| r.get(0))
}

pub fn delete(conn: &Conn, account_id: &str, uid: &str) -> sql::Result<bool> {
    let n = conn.execute(
        "DELETE FROM videos WHERE uid = ?1 AND account_id = ?2",
        params![uid, account_id],
    )?;
    Ok(n == 1)
}
