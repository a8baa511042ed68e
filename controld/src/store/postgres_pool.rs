//! Pooled PostgreSQL connections (r2d2), each with its prepared statements.

use std::str::FromStr;
use std::time::Duration;

use super::StoreError;
use super::sql::PgConn;

/// Connections kept open per node: one per HTTP worker and blocking writer at once, well below
/// PostgreSQL's default of 100 for three nodes.
const MAX_CONNECTIONS: u32 = 16;

pub struct Pool(r2d2::Pool<Manager>);

impl Pool {
    pub fn new(url: &str) -> Result<Pool, StoreError> {
        let config = postgres::Config::from_str(url)
            .map_err(|e| StoreError::Pool(format!("database URL: {e}")))?;
        let manager = Manager { config };
        // Connecting happens on r2d2's own threads, outside any tokio runtime.
        r2d2::Pool::builder()
            .max_size(MAX_CONNECTIONS)
            .min_idle(Some(1))
            // A broken connection shows as closed (`has_broken`); a query per checkout would
            // double the round trips.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map(Pool)
            .map_err(|e| StoreError::Pool(e.to_string()))
    }

    /// Runs `f` with a connection of the pool (outside any tokio runtime).
    pub fn with<R>(&self, f: impl FnOnce(&mut PgConn) -> R) -> Result<R, StoreError> {
        let mut conn = self.0.get().map_err(|e| StoreError::Pool(e.to_string()))?;
        Ok(f(&mut conn))
    }
}

struct Manager {
    config: postgres::Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        Ok(PgConn::new(self.config.connect(postgres::NoTls)?))
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        conn.client().batch_execute("")
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client().is_closed()
    }
}
