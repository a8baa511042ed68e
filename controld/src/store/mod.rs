//! State: SQLite (`<data-dir>/controld.sqlite3`, the embedded default) or PostgreSQL
//! (`--database-url postgres://…`, for several nodes), behind one small typed layer.
//!
//! The table modules are written once against [`sql::Conn`], in the SQL both engines share
//! (`sql.rs` says why that layer and not an ORM). Each backend keeps its own migrations.
//!
//! SQLite: reads are single-row or small indexed queries (tens of microseconds) on a read-only
//! connection, which WAL lets proceed while a write is in progress; writes go through one writer
//! connection. PostgreSQL: a pool of connections, each query one round trip to the server.
//! `Store::write` runs on tokio's blocking pool, so a slow disk or server never stalls the HTTP
//! workers; GStreamer threads, which may block, use `Store::write_blocking`.

pub mod accounts;
pub mod leases;
pub mod live_inputs;
mod migrations;
pub mod nodes;
pub mod outputs;
mod postgres_pool;
pub mod signing_keys;
pub mod sql;
pub mod status;
pub mod videos;
pub mod webhooks;

use std::cell::RefCell;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

pub use sql::Conn;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] sql::Error),
    #[error("database migration: {0}")]
    Migration(String),
    #[error("database connection: {0}")]
    Pool(String),
    #[error("database task failed: {0}")]
    Task(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sql(e.into())
    }
}

#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
}

#[allow(clippy::large_enum_variant, reason = "one per process, behind an Arc")]
enum Backend {
    Sqlite {
        writer: Mutex<Connection>,
        reader: Mutex<Connection>,
    },
    Postgres(postgres_pool::Pool),
}

impl Store {
    /// Opens (creating if needed) the SQLite database and brings its schema to the latest
    /// version.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut writer = Connection::open(path)?;
        // WAL lets readers and `controld token create` work while the daemon writes; the busy
        // timeout makes writers wait for each other instead of failing.
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        writer.pragma_update(None, "foreign_keys", "ON")?;
        writer.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations::sqlite(&mut writer)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Store {
            backend: Arc::new(Backend::Sqlite {
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
            }),
        })
    }

    /// Connects to PostgreSQL (`postgres://user@host/db`, or `?host=/run/postgresql` for a
    /// socket) and brings its schema to the latest version; nodes starting together migrate
    /// one at a time.
    pub fn connect(url: &str) -> Result<Store, StoreError> {
        let pool = postgres_pool::Pool::new(url)?;
        outside_runtime(|| pool.with(|c| migrations::postgres(c.client())))??;
        Ok(Store {
            backend: Arc::new(Backend::Postgres(pool)),
        })
    }

    /// `open` for a SQLite path, `connect` for a `postgres://` or `postgresql://` URL.
    pub fn open_url(url: &str) -> Result<Store, StoreError> {
        if is_postgres_url(url) {
            Store::connect(url)
        } else {
            Store::open(Path::new(url.strip_prefix("sqlite://").unwrap_or(url)))
        }
    }

    /// Runs a small read-only query inline.
    pub fn read<R: Send>(
        &self,
        f: impl FnOnce(&Conn) -> sql::Result<R> + Send,
    ) -> Result<R, StoreError> {
        match &*self.backend {
            Backend::Sqlite { reader, .. } => Ok(f(&Conn::Sqlite(&lock(reader)))?),
            Backend::Postgres(pool) => self.on_postgres(pool, f),
        }
    }

    /// Runs `f` on the blocking pool with the connection that writes.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Conn) -> sql::Result<R> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.write_blocking(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` with the connection that writes, on the calling thread (startup, GStreamer
    /// threads).
    pub fn write_blocking<R: Send>(
        &self,
        f: impl FnOnce(&Conn) -> sql::Result<R> + Send,
    ) -> Result<R, StoreError> {
        match &*self.backend {
            Backend::Sqlite { writer, .. } => Ok(f(&Conn::Sqlite(&lock(writer)))?),
            Backend::Postgres(pool) => self.on_postgres(pool, f),
        }
    }

    /// Which engine holds the state (`sqlite` or `postgresql`), for status and metrics.
    pub fn engine(&self) -> &'static str {
        match &*self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres(_) => "postgresql",
        }
    }

    fn on_postgres<R: Send>(
        &self,
        pool: &postgres_pool::Pool,
        f: impl FnOnce(&Conn) -> sql::Result<R> + Send,
    ) -> Result<R, StoreError> {
        outside_runtime(|| pool.with(|c| f(&Conn::Postgres(RefCell::new(c)))))?
            .map_err(StoreError::from)
    }
}

pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The synchronous PostgreSQL client drives its own runtime, which cannot start on a thread
/// that belongs to tokio's: there the call gets a scoped thread of its own (tens of
/// microseconds, beside a round trip to the server). `block_in_place` would be cheaper, but a
/// task that used it and then awaits a timer panics when the runtime shuts down.
pub(crate) fn outside_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
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
