//! The SQL every table module speaks, on either backend.
//!
//! Queries are written once, in the SQL that SQLite and PostgreSQL share, with `?N`
//! placeholders (PostgreSQL gets them as `$N`). Values cross as [`Value`], which converts to
//! whatever type the server expects for a parameter (PostgreSQL is strict: a `BIGINT` column
//! takes no `i32`, a `BOOLEAN` no integer), so the table modules stay typed and backend-free.
//! Rows are read whole into memory: every query here returns a few rows of a few columns.
//!
//! Why this and not a library spanning both engines: sqlx's `Any` driver is async only, while
//! GStreamer's streaming threads write synchronously, and diesel's `MultiConnection` means a
//! query DSL in place of every statement; both bring SQLite drivers of their own that cannot
//! link beside rusqlite's. Here the SQL stays as it was, rusqlite and the `postgres` crate do
//! the protocol work, and the shared part is the value conversion below.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Postgres(#[from] postgres::Error),
    #[error("column {column}: expected {expected}, found {found}")]
    Type {
        column: usize,
        expected: &'static str,
        found: &'static str,
    },
    #[error("query returned no row")]
    NoRow,
}

pub type Result<T> = std::result::Result<T, Error>;

/// A parameter or column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bool(bool),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Bool(_) => "boolean",
        }
    }
}

/// What can be a query parameter.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                // Wider than i64 only above 2^63, which no count or size here reaches.
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_to_value!(i32, i64, u32, u64, usize);

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

/// `params![a, b]`: the parameters of a query, in `?1`, `?2` order.
#[macro_export]
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        &[$(&$p as &dyn $crate::store::sql::ToValue),*] as &[&dyn $crate::store::sql::ToValue]
    };
}

/// What a column can be read as.
pub trait FromValue: Sized {
    const EXPECTED: &'static str;
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for String {
    const EXPECTED: &'static str = "text";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromValue for bool {
    const EXPECTED: &'static str = "boolean";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
}

impl FromValue for f64 {
    const EXPECTED: &'static str = "real";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Real(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            const EXPECTED: &'static str = stringify!($t);
            fn from_value(v: &Value) -> Option<Self> {
                match v {
                    Value::Int(i) => <$t>::try_from(*i).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
int_from_value!(i64, u32, u64);

impl<T: FromValue> FromValue for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One result row.
pub struct Row(Vec<Value>);

impl Row {
    pub fn get<T: FromValue>(&self, column: usize) -> Result<T> {
        let v = self.0.get(column).unwrap_or(&Value::Null);
        T::from_value(v).ok_or(Error::Type {
            column,
            expected: T::EXPECTED,
            found: v.kind(),
        })
    }
}

/// A PostgreSQL connection with the statements it has prepared (one round trip per query
/// instead of two).
pub struct PgConn {
    /// Always `Some` but while dropping (see `Drop`).
    client: Option<postgres::Client>,
    statements: HashMap<String, postgres::Statement>,
}

impl PgConn {
    pub(super) fn new(client: postgres::Client) -> PgConn {
        PgConn {
            client: Some(client),
            statements: HashMap::new(),
        }
    }

    pub(super) fn client(&mut self) -> &mut postgres::Client {
        self.client
            .as_mut()
            .expect("a connection has its client until dropped")
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client().prepare(&dollar_placeholders(sql))?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

/// Closing a client blocks on its own runtime, which panics on a thread of tokio's (the last
/// `Store` may go with a task): the close happens outside.
impl Drop for PgConn {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            super::outside_runtime(move || drop(client));
        }
    }
}

/// A connection lent to a table function for one read or write.
pub enum Conn<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(RefCell<&'a mut PgConn>),
}

impl Conn<'_> {
    /// Runs a statement; returns the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn ToValue]) -> Result<usize> {
        let values: Vec<Value> = params.iter().map(|p| p.to_value()).collect();
        match self {
            Conn::Sqlite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(values))?),
            Conn::Postgres(c) => {
                let mut c = c.borrow_mut();
                let statement = c.statement(sql)?;
                let n = c.client().execute(&statement, &pg_params(&values))?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
    }

    pub fn query(&self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>> {
        let values: Vec<Value> = params.iter().map(|p| p.to_value()).collect();
        match self {
            Conn::Sqlite(c) => sqlite_query(c, sql, values),
            Conn::Postgres(c) => {
                let mut c = c.borrow_mut();
                let statement = c.statement(sql)?;
                c.client()
                    .query(&statement, &pg_params(&values))?
                    .iter()
                    .map(pg_row)
                    .collect()
            }
        }
    }

    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.query(sql, params)?.iter().map(f).collect()
    }

    /// The first row, if any.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        self.query(sql, params)?.first().map(f).transpose()
    }

    pub fn query_one<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        self.query_opt(sql, params, f)?.ok_or(Error::NoRow)
    }

    /// Runs `f` in a transaction: committed when it returns `Ok`, rolled back otherwise.
    pub fn transaction<R, E: From<Error>>(
        &self,
        f: impl FnOnce(&Self) -> std::result::Result<R, E>,
    ) -> std::result::Result<R, E> {
        self.batch("BEGIN")?;
        match f(self) {
            Ok(r) => {
                self.batch("COMMIT")?;
                Ok(r)
            }
            Err(e) => {
                // The error that made us roll back is the one worth reporting.
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn batch(&self, sql: &str) -> Result<()> {
        match self {
            Conn::Sqlite(c) => c.execute_batch(sql)?,
            Conn::Postgres(c) => c.borrow_mut().client().batch_execute(sql)?,
        }
        Ok(())
    }
}

fn sqlite_query(c: &rusqlite::Connection, sql: &str, values: Vec<Value>) -> Result<Vec<Row>> {
    let mut statement = c.prepare_cached(sql)?;
    let columns = statement.column_count();
    let mut rows = statement.query(rusqlite::params_from_iter(values))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let row = (0..columns)
            .map(|i| sqlite_value(r.get_ref(i)?))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(Row(row));
    }
    Ok(out)
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> rusqlite::Result<Value> {
    use rusqlite::types::ValueRef;
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(_) => {
            return Err(rusqlite::Error::InvalidColumnType(
                0,
                "blob".into(),
                rusqlite::types::Type::Blob,
            ));
        }
    })
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Bool(b) => ValueRef::Integer(i64::from(*b)),
        }))
    }
}

fn pg_params(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

fn pg_row(r: &postgres::Row) -> Result<Row> {
    (0..r.len())
        .map(|i| Ok(r.try_get::<_, Value>(i)?))
        .collect::<Result<Vec<_>>>()
        .map(Row)
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, BoxError> {
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (Value::Bool(b), &Type::BOOL) => b.to_sql(ty, out),
            (Value::Bool(b), &Type::INT8) => i64::from(*b).to_sql(ty, out),
            (Value::Text(s), _) if <&str as ToSql>::accepts(ty) => s.as_str().to_sql(ty, out),
            (v, ty) => Err(format!("a {} parameter where {ty} is expected", v.kind()).into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxError> {
        Ok(match *ty {
            Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            _ if <String as FromSql>::accepts(ty) => Value::Text(String::from_sql(ty, raw)?),
            _ => return Err(format!("column type {ty} is not read here").into()),
        })
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// `?N` → `$N` outside string literals.
fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut in_literal = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => in_literal = !in_literal,
            '?' if !in_literal && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('$');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_literals() {
        assert_eq!(
            dollar_placeholders("SELECT ?1, '?2', ?10 WHERE a = ?3"),
            "SELECT $1, '?2', $10 WHERE a = $3"
        );
    }

    #[test]
    fn sqlite_round_trips_every_value_kind() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let conn = Conn::Sqlite(&c);
        conn.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b INTEGER)", &[])
            .unwrap();
        let none: Option<String> = None;
        conn.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4), (?5, ?6, ?7, ?8)",
            params![7u32, 1.5, "x", true, 8i64, 2.0, none, false],
        )
        .unwrap();
        let rows = conn
            .query_map("SELECT i, r, s, b FROM t ORDER BY i", &[], |r| {
                Ok((
                    r.get::<u32>(0)?,
                    r.get::<f64>(1)?,
                    r.get::<Option<String>>(2)?,
                    r.get::<bool>(3)?,
                ))
            })
            .unwrap();
        assert_eq!(
            rows,
            vec![(7, 1.5, Some("x".into()), true), (8, 2.0, None, false)]
        );
        let wrong = conn.query_one("SELECT s FROM t WHERE i = 7", &[], |r| r.get::<i64>(0));
        assert!(
            matches!(wrong, Err(Error::Type { column: 0, .. })),
            "{wrong:?}"
        );
    }
}
