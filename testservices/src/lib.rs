//! Services cfstream's tests run against, started by the project's own scripts (never mocks).

mod postgres_database;

pub use postgres_database::{ScratchDatabase, test_database_url};
