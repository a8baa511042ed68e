//! Live input rows.

use super::sql::{self, Conn, Row};
use crate::params;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecordingMode {
    Off,
    Automatic,
}

impl RecordingMode {
    fn as_str(self) -> &'static str {
        match self {
            RecordingMode::Off => "off",
            RecordingMode::Automatic => "automatic",
        }
    }
}

/// The `recording` object of a live input, serialized exactly as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingSettings {
    pub mode: RecordingMode,
    /// 0 means the platform default (`pipeline::DEFAULT_RECONNECT_TIMEOUT_SECS`).
    pub timeout_seconds: u32,
    #[serde(rename = "requireSignedURLs")]
    pub require_signed_urls: bool,
    pub allowed_origins: Option<Vec<String>>,
    pub hide_live_viewer_count: bool,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        RecordingSettings {
            mode: RecordingMode::Off,
            timeout_seconds: 0,
            require_signed_urls: false,
            allowed_origins: None,
            hide_live_viewer_count: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LiveInput {
    pub uid: String,
    pub account_id: String,
    pub created: String,
    pub modified: String,
    pub meta: serde_json::Value,
    pub enabled: bool,
    pub delete_recording_after_days: Option<u32>,
    pub default_creator: Option<String>,
    pub recording: RecordingSettings,
    pub stream_key: String,
    /// The SRT passphrase (`srt.passphrase`); the SRT stream id is the uid, as on Cloudflare.
    pub srt_passphrase: String,
    /// The RTMP(S) playback stream key (`rtmpPlayback.streamKey`); never an ingest key.
    pub playback_key: String,
    /// The SRT playback passphrase (`srtPlayback.passphrase`; its stream id is `play<uid>`).
    pub srt_playback_passphrase: String,
    pub keys_rotated_at: Option<String>,
}

const COLUMNS: &str = "uid, account_id, created, modified, meta, enabled, \
    delete_recording_after_days, default_creator, recording_mode, timeout_seconds, \
    require_signed_urls, allowed_origins, hide_live_viewer_count, stream_key, keys_rotated_at, \
    srt_passphrase, playback_key, srt_playback_passphrase";

fn from_row(r: &Row) -> sql::Result<LiveInput> {
    let mode: String = r.get(8)?;
    let origins: Option<String> = r.get(11)?;
    Ok(LiveInput {
        uid: r.get(0)?,
        account_id: r.get(1)?,
        created: r.get(2)?,
        modified: r.get(3)?,
        meta: super::json_column(r.get(4)?),
        enabled: r.get(5)?,
        delete_recording_after_days: r.get(6)?,
        default_creator: r.get(7)?,
        recording: RecordingSettings {
            mode: if mode == "automatic" {
                RecordingMode::Automatic
            } else {
                RecordingMode::Off
            },
            timeout_seconds: r.get(9)?,
            require_signed_urls: r.get(10)?,
            allowed_origins: origins.and_then(|o| serde_json::from_str(&o).ok()),
            hide_live_viewer_count: r.get(12)?,
        },
        stream_key: r.get(13)?,
        keys_rotated_at: r.get(14)?,
        srt_passphrase: r.get(15)?,
        playback_key: r.get(16)?,
        srt_playback_passphrase: r.get(17)?,
    })
}

/// Inserts a new row or updates every column of an existing one (in place: `INSERT OR
/// REPLACE` would delete the row and cascade to its status history).
pub fn save(conn: &Conn, input: &LiveInput) -> sql::Result<()> {
    let origins = input
        .recording
        .allowed_origins
        .as_ref()
        .map(|o| serde_json::to_string(o).unwrap_or_default());
    conn.execute(
        &format!(
            "INSERT INTO live_inputs ({COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
         ON CONFLICT(uid) DO UPDATE SET modified = ?4, meta = ?5, enabled = ?6, \
         delete_recording_after_days = ?7, default_creator = ?8, recording_mode = ?9, \
         timeout_seconds = ?10, require_signed_urls = ?11, allowed_origins = ?12, \
         hide_live_viewer_count = ?13, stream_key = ?14, keys_rotated_at = ?15, \
         srt_passphrase = ?16, playback_key = ?17, srt_playback_passphrase = ?18"
        ),
        params![
            input.uid,
            input.account_id,
            input.created,
            input.modified,
            input.meta.to_string(),
            input.enabled,
            input.delete_recording_after_days,
            input.default_creator,
            input.recording.mode.as_str(),
            input.recording.timeout_seconds,
            input.recording.require_signed_urls,
            origins,
            input.recording.hide_live_viewer_count,
            input.stream_key,
            input.keys_rotated_at,
            input.srt_passphrase,
            input.playback_key,
            input.srt_playback_passphrase,
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Conn, account_id: &str, uid: &str) -> sql::Result<Option<LiveInput>> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM live_inputs WHERE uid = ?1 AND account_id = ?2"),
        params![uid, account_id],
        from_row,
    )
}

/// Looks an input up by uid alone (playback, which has no account).
pub fn get_any(conn: &Conn, uid: &str) -> sql::Result<Option<LiveInput>> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM live_inputs WHERE uid = ?1"),
        params![uid],
        from_row,
    )
}

pub fn list(conn: &Conn, account_id: &str) -> sql::Result<Vec<LiveInput>> {
    conn.query_map(
        &format!("SELECT {COLUMNS} FROM live_inputs WHERE account_id = ?1 ORDER BY created DESC"),
        params![account_id],
        from_row,
    )
}

/// The input a stream key belongs to.
pub fn by_stream_key(conn: &Conn, key: &str) -> sql::Result<Option<LiveInput>> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM live_inputs WHERE stream_key = ?1"),
        params![key],
        from_row,
    )
}

/// Every input of every account: the pipeline manager's key index at startup.
pub fn all(conn: &Conn) -> sql::Result<Vec<LiveInput>> {
    conn.query_map(&format!("SELECT {COLUMNS} FROM live_inputs"), &[], from_row)
}

/// Whether the input asks for low-latency HLS (`preferLowLatency`); false for an unknown uid.
/// Kept out of [`LiveInput`] so that the many places building one need not know about it.
pub fn prefer_low_latency(conn: &Conn, uid: &str) -> sql::Result<bool> {
    conn.query_opt(
        "SELECT prefer_low_latency FROM live_inputs WHERE uid = ?1",
        params![uid],
        |r| r.get(0),
    )
    .map(|found| found.unwrap_or(false))
}

/// Sets `preferLowLatency` of a saved input.
pub fn set_prefer_low_latency(conn: &Conn, uid: &str, prefer: bool) -> sql::Result<()> {
    conn.execute(
        "UPDATE live_inputs SET prefer_low_latency = ?2 WHERE uid = ?1",
        params![uid, prefer],
    )?;
    Ok(())
}

/// Deletes the row; returns whether it existed.
pub fn delete(conn: &Conn, account_id: &str, uid: &str) -> sql::Result<bool> {
    let n = conn.execute(
        "DELETE FROM live_inputs WHERE uid = ?1 AND account_id = ?2",
        params![uid, account_id],
    )?;
    Ok(n == 1)
}

/// A live input of account `a` for tests.
#[cfg(test)]
pub fn sample(uid: &str) -> LiveInput {
    LiveInput {
        uid: uid.into(),
        account_id: "a".into(),
        created: "t".into(),
        modified: "t".into(),
        meta: serde_json::json!({}),
        enabled: true,
        delete_recording_after_days: None,
        default_creator: None,
        recording: RecordingSettings::default(),
        stream_key: format!("key-{uid}"),
        srt_passphrase: format!("passphrase-{uid}"),
        playback_key: "playback".into(),
        srt_playback_passphrase: "srt-playback".into(),
        keys_rotated_at: None,
    }
}
