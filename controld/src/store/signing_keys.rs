//! The `signing_keys` table: customer keys (public half only) and each account's server-held
//! key (with its private half), see `access::signing_keys`.

use super::sql::{self, Conn, Row};
use crate::params;

/// A key as stored: the public half, and the private half only for the server-held key.
pub struct StoredKey {
    pub id: String,
    pub account_id: String,
    pub created: String,
    pub public_pem: String,
    pub private_pem: Option<String>,
}

fn from_row(r: &Row) -> sql::Result<StoredKey> {
    Ok(StoredKey {
        id: r.get(0)?,
        account_id: r.get(1)?,
        created: r.get(2)?,
        public_pem: r.get(3)?,
        private_pem: r.get(4)?,
    })
}

const COLUMNS: &str = "id, account_id, created, public_pem, private_pem";

/// Stores a customer key (public half only).
pub fn insert_customer_key(
    conn: &Conn,
    account_id: &str,
    id: &str,
    public_pem: &str,
    created: &str,
) -> sql::Result<()> {
    conn.execute(
        "INSERT INTO signing_keys (id, account_id, created, public_pem, private_pem) \
         VALUES (?1, ?2, ?3, ?4, NULL)",
        params![id, account_id, created, public_pem],
    )?;
    Ok(())
}

/// Customer keys of the account, oldest first (the server-held key is not listed).
pub fn list_customer_keys(conn: &Conn, account_id: &str) -> sql::Result<Vec<StoredKey>> {
    conn.query_map(
        &format!(
            "SELECT {COLUMNS} FROM signing_keys WHERE account_id = ?1 AND private_pem IS NULL \
         ORDER BY created, id"
        ),
        params![account_id],
        from_row,
    )
}

/// Deletes a customer key: tokens signed with it stop working at once. Returns whether it
/// existed.
pub fn revoke_customer_key(conn: &Conn, account_id: &str, id: &str) -> sql::Result<bool> {
    let n = conn.execute(
        "DELETE FROM signing_keys WHERE id = ?1 AND account_id = ?2 AND private_pem IS NULL",
        params![id, account_id],
    )?;
    Ok(n == 1)
}

/// Any key (customer or server-held) by id: token verification.
pub fn get(conn: &Conn, id: &str) -> sql::Result<Option<StoredKey>> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM signing_keys WHERE id = ?1"),
        params![id],
        from_row,
    )
}

/// The account's server-held key, if it has one yet.
pub fn server_key(conn: &Conn, account_id: &str) -> sql::Result<Option<StoredKey>> {
    conn.query_opt(
        &format!(
            "SELECT {COLUMNS} FROM signing_keys WHERE account_id = ?1 AND private_pem IS NOT NULL"
        ),
        params![account_id],
        from_row,
    )
}

/// Stores `key` as the account's server-held key unless another request stored one first;
/// returns the key in effect.
pub fn install_server_key(
    conn: &Conn,
    account_id: &str,
    key: &StoredKey,
) -> sql::Result<StoredKey> {
    conn.execute(
        "INSERT INTO signing_keys (id, account_id, created, public_pem, private_pem) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        params![
            key.id,
            account_id,
            key.created,
            key.public_pem,
            key.private_pem
        ],
    )?;
    server_key(conn, account_id)?.ok_or(sql::Error::NoRow)
}
