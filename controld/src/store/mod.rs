//! Storage: one SQLite database (`<data-dir>/controld.sqlite3`) behind a small typed layer.
//!
//! Reads are single-row or small indexed queries (tens of microseconds): they run inline on a
//! read-only connection, which WAL lets proceed while a write is in progress. Writes go through
//! one writer connection on tokio's blocking pool (`Store::write`), so a slow disk or a
//! checkpoint never stalls the HTTP workers; GStreamer threads, which may block, use
//! `Store::write_blocking`.

pub mod accounts;
pub mod live_inputs;
mod migrations;
pub mod outputs;
pub mod signing_keys;
pub mod status;
pub mod videos;
pub mod webhooks;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("database task failed: {0}")]
    Task(String),
}

#[derive(Clone)]
pub struct Store {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens (creating if needed) the database and brings its schema to the latest version.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut writer = Connection::open(path)?;
        // WAL lets readers and `controld token create` work while the daemon writes; the busy
        // timeout makes writers wait for each other instead of failing.
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        writer.pragma_update(None, "foreign_keys", "ON")?;
        writer.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations::apply(&mut writer)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Store {
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// Runs a small read-only query inline.
    pub fn read<R>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R, StoreError> {
        Ok(f(&lock(&self.reader))?)
    }

    /// Runs `f` with the writer connection on the blocking pool.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.write_blocking(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` with the writer connection on the calling thread (startup, GStreamer threads).
    pub fn write_blocking<R>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R, StoreError> {
        Ok(f(&lock(&self.writer))?)
    }
}

/// A panic while holding a connection cannot leave SQLite inconsistent (transactions roll
/// back), so a poisoned lock is still usable.
fn lock(m: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// JSON stored in a TEXT column; unreadable JSON (never written by us) reads as null.
fn json_column(text: Option<String>) -> serde_json::Value {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null)
}
