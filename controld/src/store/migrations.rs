//! Versioned schemas, one list per backend; append new steps (to both lists), never edit
//! released ones.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use super::StoreError;

const V1: &str = "
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL
);
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created TEXT NOT NULL
);
CREATE TABLE live_inputs (
    uid TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    meta TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    delete_recording_after_days INTEGER,
    default_creator TEXT,
    recording_mode TEXT NOT NULL,
    timeout_seconds INTEGER NOT NULL,
    require_signed_urls INTEGER NOT NULL,
    allowed_origins TEXT,
    hide_live_viewer_count INTEGER NOT NULL,
    stream_key TEXT NOT NULL UNIQUE,
    keys_rotated_at TEXT
);
CREATE INDEX live_inputs_by_account ON live_inputs(account_id, created);
CREATE TABLE live_input_status (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    input_uid TEXT NOT NULL REFERENCES live_inputs(uid) ON DELETE CASCADE,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    ingest_protocol TEXT,
    entered_at TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT
);
CREATE INDEX live_input_status_by_input ON live_input_status(input_uid, id);
-- Videos outlive their live input (Cloudflare keeps recordings when an input is deleted).
CREATE TABLE videos (
    uid TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    live_input TEXT NOT NULL,
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    state TEXT NOT NULL,
    ready_to_stream_at TEXT,
    duration REAL NOT NULL,
    meta TEXT NOT NULL,
    creator TEXT,
    require_signed_urls INTEGER NOT NULL,
    allowed_origins TEXT
);
CREATE INDEX videos_by_account ON videos(account_id, created);
CREATE INDEX videos_by_input ON videos(live_input, created);
CREATE INDEX videos_by_state ON videos(state);
";

/// Signing keys for signed URLs (customer keys: public half only; one server-held key per
/// account with its private half) and videos' scheduled deletion (retention).
const V_ACCESS_RETENTION: &str = "
CREATE TABLE signing_keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created TEXT NOT NULL,
    public_pem TEXT NOT NULL,
    private_pem TEXT
);
CREATE INDEX signing_keys_by_account ON signing_keys(account_id, created);
CREATE UNIQUE INDEX one_server_key_per_account ON signing_keys(account_id)
    WHERE private_pem IS NOT NULL;
ALTER TABLE videos ADD COLUMN scheduled_deletion TEXT;
CREATE INDEX videos_by_scheduled_deletion ON videos(scheduled_deletion)
    WHERE scheduled_deletion IS NOT NULL;
";

/// Webhook subscriptions and their delivery outbox; simulcast outputs of live inputs.
const V_WEBHOOKS_OUTPUTS: &str = "
CREATE TABLE webhooks (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    notification_url TEXT NOT NULL,
    secret TEXT NOT NULL,
    modified TEXT NOT NULL
);
CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error TEXT
);
CREATE INDEX webhook_outbox_by_account ON webhook_outbox(account_id, id);
CREATE TABLE live_input_outputs (
    uid TEXT PRIMARY KEY,
    input_uid TEXT NOT NULL REFERENCES live_inputs(uid) ON DELETE CASCADE,
    created TEXT NOT NULL,
    url TEXT NOT NULL,
    stream_key TEXT NOT NULL,
    enabled INTEGER NOT NULL
);
CREATE INDEX live_input_outputs_by_input ON live_input_outputs(input_uid, created);
";

/// What `POST /stream/{uid}` (edit a video) stores beyond the recorder's columns.
const V_VIDEO_EDIT: &str = "
ALTER TABLE videos ADD COLUMN thumbnail_timestamp_pct REAL NOT NULL DEFAULT 0;
ALTER TABLE videos ADD COLUMN max_duration_seconds INTEGER;
ALTER TABLE videos ADD COLUMN public_details TEXT;
CREATE INDEX videos_by_creator ON videos(account_id, creator);
";

/// Every live input's SRT passphrase (Cloudflare's `srt.passphrase`, rotated with the stream
/// key); inputs made before SRT get one now.
const V_SRT: &str = "
ALTER TABLE live_inputs ADD COLUMN srt_passphrase TEXT NOT NULL DEFAULT '';
UPDATE live_inputs SET srt_passphrase = lower(hex(randomblob(16))) || 'k' || uid;
";

/// Every live input's playback credentials (`rtmpPlayback.streamKey`, `srtPlayback.passphrase`),
/// distinct from its ingest ones and rotated with them.
const V_PLAYBACK: &str = "
ALTER TABLE live_inputs ADD COLUMN playback_key TEXT NOT NULL DEFAULT '';
ALTER TABLE live_inputs ADD COLUMN srt_playback_passphrase TEXT NOT NULL DEFAULT '';
UPDATE live_inputs SET playback_key = lower(hex(randomblob(16))) || 'k' || uid,
    srt_playback_passphrase = lower(hex(randomblob(16))) || 'k' || uid;
";

/// Live inputs' `preferLowLatency` (LL-HLS by default on their manifests); off for inputs made
/// before it.
const V_LOW_LATENCY: &str = "
ALTER TABLE live_inputs ADD COLUMN prefer_low_latency INTEGER NOT NULL DEFAULT 0;
";

/// A finished recording's frame size and bytes on disk (video objects' `input` and `size`),
/// written when it becomes ready; unknown (NULL) for recordings finished before.
const V_RECORDED_MEDIA: &str = "
ALTER TABLE videos ADD COLUMN width INTEGER;
ALTER TABLE videos ADD COLUMN height INTEGER;
ALTER TABLE videos ADD COLUMN size INTEGER;
";

/// Which node owns a live input while it is live (`store::leases`).
const V_LEASES: &str = "
CREATE TABLE live_input_leases (
    input_uid TEXT PRIMARY KEY REFERENCES live_inputs(uid) ON DELETE CASCADE,
    node_id TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
";

const PG_V2_LEASES: &str = "
CREATE TABLE live_input_leases (
    input_uid TEXT PRIMARY KEY REFERENCES live_inputs(uid) ON DELETE CASCADE,
    node_id TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
";

/// Which node is sending an outbox event (`store::webhooks::claim`).
const V_WEBHOOK_CLAIMS: &str = "
ALTER TABLE webhook_outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE webhook_outbox ADD COLUMN claimed_until_ms INTEGER;
";

const PG_V3_WEBHOOK_CLAIMS: &str = "
ALTER TABLE webhook_outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE webhook_outbox ADD COLUMN claimed_until_ms BIGINT;
";

/// The nodes sharing the database (`store::nodes`) and the node each video was recorded on.
const V_NODES: &str = "
CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY,
    http_url TEXT NOT NULL,
    seen_ms INTEGER NOT NULL
);
ALTER TABLE videos ADD COLUMN node_id TEXT;
";

const PG_V4_NODES: &str = "
CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY,
    http_url TEXT NOT NULL,
    seen_ms BIGINT NOT NULL
);
ALTER TABLE videos ADD COLUMN node_id TEXT;
";

pub fn sqlite(conn: &mut Connection) -> Result<(), StoreError> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V_WEBHOOKS_OUTPUTS),
        M::up(V_ACCESS_RETENTION),
        M::up(V_VIDEO_EDIT),
        M::up(V_SRT),
        M::up(V_PLAYBACK),
        M::up(V_LOW_LATENCY),
        M::up(V_RECORDED_MEDIA),
        M::up(V_LEASES),
        M::up(V_WEBHOOK_CLAIMS),
        M::up(V_NODES),
    ])
    .to_latest(conn)
    .map_err(|e| StoreError::Migration(e.to_string()))
}

/// The PostgreSQL schema started where SQLite's stood after `V_RECORDED_MEDIA`, in one step.
/// Booleans are `BOOLEAN` and integers `BIGINT`: `sql::Value` converts to what a column is.
const PG_V1: &str = "
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL
);
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created TEXT NOT NULL
);
CREATE TABLE live_inputs (
    uid TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    meta TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    delete_recording_after_days BIGINT,
    default_creator TEXT,
    recording_mode TEXT NOT NULL,
    timeout_seconds BIGINT NOT NULL,
    require_signed_urls BOOLEAN NOT NULL,
    allowed_origins TEXT,
    hide_live_viewer_count BOOLEAN NOT NULL,
    stream_key TEXT NOT NULL UNIQUE,
    keys_rotated_at TEXT,
    srt_passphrase TEXT NOT NULL,
    playback_key TEXT NOT NULL,
    srt_playback_passphrase TEXT NOT NULL,
    prefer_low_latency BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX live_inputs_by_account ON live_inputs(account_id, created);
CREATE TABLE live_input_status (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    input_uid TEXT NOT NULL REFERENCES live_inputs(uid) ON DELETE CASCADE,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    ingest_protocol TEXT,
    entered_at TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT
);
CREATE INDEX live_input_status_by_input ON live_input_status(input_uid, id);
CREATE TABLE videos (
    uid TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    live_input TEXT NOT NULL,
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    state TEXT NOT NULL,
    ready_to_stream_at TEXT,
    duration DOUBLE PRECISION NOT NULL,
    meta TEXT NOT NULL,
    creator TEXT,
    require_signed_urls BOOLEAN NOT NULL,
    allowed_origins TEXT,
    scheduled_deletion TEXT,
    thumbnail_timestamp_pct DOUBLE PRECISION NOT NULL DEFAULT 0,
    max_duration_seconds BIGINT,
    public_details TEXT,
    width BIGINT,
    height BIGINT,
    size BIGINT
);
CREATE INDEX videos_by_account ON videos(account_id, created);
CREATE INDEX videos_by_input ON videos(live_input, created);
CREATE INDEX videos_by_state ON videos(state);
CREATE INDEX videos_by_scheduled_deletion ON videos(scheduled_deletion)
    WHERE scheduled_deletion IS NOT NULL;
CREATE INDEX videos_by_creator ON videos(account_id, creator);
CREATE TABLE signing_keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created TEXT NOT NULL,
    public_pem TEXT NOT NULL,
    private_pem TEXT
);
CREATE INDEX signing_keys_by_account ON signing_keys(account_id, created);
CREATE UNIQUE INDEX one_server_key_per_account ON signing_keys(account_id)
    WHERE private_pem IS NOT NULL;
CREATE TABLE webhooks (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    notification_url TEXT NOT NULL,
    secret TEXT NOT NULL,
    modified TEXT NOT NULL
);
CREATE TABLE webhook_outbox (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX webhook_outbox_by_account ON webhook_outbox(account_id, id);
CREATE TABLE live_input_outputs (
    uid TEXT PRIMARY KEY,
    input_uid TEXT NOT NULL REFERENCES live_inputs(uid) ON DELETE CASCADE,
    created TEXT NOT NULL,
    url TEXT NOT NULL,
    stream_key TEXT NOT NULL,
    enabled BOOLEAN NOT NULL
);
CREATE INDEX live_input_outputs_by_input ON live_input_outputs(input_uid, created);
";

/// Any constant both sides agree on: the session-level advisory lock nodes migrate under.
const MIGRATION_LOCK: i64 = 0x6366_7374_7265_616d; // "cfstream"

pub fn postgres(client: &mut postgres::Client) -> Result<(), StoreError> {
    let failed = |e: &dyn std::fmt::Display| StoreError::Migration(e.to_string());
    let steps = [
        ("V1__initial", PG_V1),
        ("V2__leases", PG_V2_LEASES),
        ("V3__webhook_claims", PG_V3_WEBHOOK_CLAIMS),
        ("V4__nodes", PG_V4_NODES),
    ]
    .into_iter()
    .map(|(name, sql)| refinery::Migration::unapplied(name, sql).map_err(|e| failed(&e)))
    .collect::<Result<Vec<_>, _>>()?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| failed(&e))?;
    let ran = refinery::Runner::new(&steps)
        .set_migration_table_name("controld_schema_history")
        .run(client);
    // Unlocking is also what closing the connection does, should this fail.
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    ran.map(drop).map_err(|e| failed(&e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::sqlite(&mut conn).unwrap();
    }
}
