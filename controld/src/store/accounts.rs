//! Accounts and their API tokens (stored as SHA-256 hashes).

use super::sql::{self, Conn};
use crate::params;

use crate::{ids, timefmt};

/// Creates the account if it does not exist; returns whether it was created.
pub fn ensure(conn: &Conn, id: &str) -> sql::Result<bool> {
    let n = conn.execute(
        "INSERT INTO accounts (id, created) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        params![id, timefmt::now()],
    )?;
    Ok(n == 1)
}

pub fn first(conn: &Conn) -> sql::Result<Option<String>> {
    conn.query_opt(
        "SELECT id FROM accounts ORDER BY created LIMIT 1",
        &[],
        |r| r.get(0),
    )
}

pub fn has_tokens(conn: &Conn, account_id: &str) -> sql::Result<bool> {
    conn.query_one(
        "SELECT EXISTS(SELECT 1 FROM api_tokens WHERE account_id = ?1)",
        params![account_id],
        |r| r.get(0),
    )
}

/// Registers `token` for the account; a token already registered keeps its account.
pub fn add_token(conn: &Conn, account_id: &str, token: &str) -> sql::Result<()> {
    conn.execute(
        "INSERT INTO api_tokens (token_hash, account_id, created) VALUES (?1, ?2, ?3) \
         ON CONFLICT DO NOTHING",
        params![ids::token_hash(token), account_id, timefmt::now()],
    )?;
    Ok(())
}

/// The account a token belongs to.
pub fn account_for_token(conn: &Conn, token: &str) -> sql::Result<Option<String>> {
    conn.query_opt(
        "SELECT account_id FROM api_tokens WHERE token_hash = ?1",
        params![ids::token_hash(token)],
        |r| r.get(0),
    )
}
