//! A database of its own for one test, on the server `CONTROLD_TEST_DATABASE_URL` names (an
//! admin URL: scripts/setup-postgres.sh prints one); dropped with the test.

/// The PostgreSQL server every test that needs one uses (scripts/test.sh sets it to what
/// scripts/setup-postgres.sh prints).
pub const SERVER_ENV: &str = "CFSTREAM_TEST_POSTGRES";

/// The admin URL the tests run PostgreSQL cases against, if set.
pub fn test_database_url() -> Option<String> {
    std::env::var("CONTROLD_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// A database made for one test on the server of an admin URL, dropped with it.
pub struct ScratchDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl ScratchDatabase {
    /// A new database when `CONTROLD_TEST_DATABASE_URL` is set.
    pub fn from_env() -> Option<ScratchDatabase> {
        test_database_url().map(|admin| ScratchDatabase::create(&admin))
    }

    /// A new database on the `CFSTREAM_TEST_POSTGRES` server, for tests that are about
    /// PostgreSQL (several nodes on one database) whatever the run's default store.
    pub fn on_test_server() -> ScratchDatabase {
        let admin = std::env::var(SERVER_ENV).unwrap_or_else(|_| {
            panic!("{SERVER_ENV} is not set: run scripts/setup-postgres.sh and set it to the URL it prints")
        });
        ScratchDatabase::create(&admin)
    }

    pub fn create(admin: &str) -> ScratchDatabase {
        let name = format!("controld_test_{:016x}", rand::random::<u64>());
        run_admin(admin, &format!("CREATE DATABASE {name}"));
        let (base, query) = admin.split_once('?').unwrap_or((admin, ""));
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        let url = match query {
            "" => format!("{server}/{name}"),
            q => format!("{server}/{name}?{q}"),
        };
        ScratchDatabase {
            admin: admin.to_owned(),
            name,
            url,
        }
    }
}

impl ScratchDatabase {
    /// The URL, leaving the database on the server (for state that outlives one process).
    pub fn keep(self) -> String {
        let url = self.url.clone();
        std::mem::forget(self);
        url
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        run_admin(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// The synchronous client cannot run on a thread that drives a tokio runtime.
fn run_admin(admin: &str, statement: &str) {
    let (admin, statement) = (admin.to_owned(), statement.to_owned());
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connecting to {admin}: {e}"));
        client
            .batch_execute(&statement)
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    })
    .join()
    .unwrap();
}
