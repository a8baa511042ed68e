//! What the in-process test files share: `controld::app(state)` over a temporary store and
//! media directory, with the pipeline manager's listeners on OS-chosen loopback ports. The store
//! is SQLite, or a database of its own on the PostgreSQL server that
//! `CONTROLD_TEST_DATABASE_URL` names (scripts/test.sh runs these tests both ways).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use cfstream_testservices::ScratchDatabase;
use controld::pipeline::{IngestConfig, PipelineManager};
use controld::store::Store;
use controld::{AppState, PublicUrls, bootstrap};

pub const ACCOUNT: &str = "acct";
pub const TOKEN: &str = "token-of-acct";
#[allow(dead_code, reason = "each test file uses part of it")]
pub const OTHER_TOKEN: &str = "token-of-other";
#[allow(dead_code, reason = "each test file uses part of it")]
pub const STORAGE_LIMIT: u64 = 6000;

#[allow(dead_code, reason = "each test file uses part of it")]
pub struct TestApp {
    pub _dir: tempfile::TempDir,
    pub _database: Option<ScratchDatabase>,
    pub store: Store,
    pub router: Router,
    /// Where recordings are written: `<media>/<input uid>/<video uid>/`.
    pub media: PathBuf,
}

pub async fn test_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let (store, database) = test_store(&dir);
    bootstrap::ensure_credentials(&store, Some(ACCOUNT), Some(TOKEN)).unwrap();
    bootstrap::ensure_credentials(&store, Some("other"), Some(OTHER_TOKEN)).unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let pipelines = PipelineManager::start(
        store.clone(),
        media.clone(),
        IngestConfig {
            rtmp: "127.0.0.1:0".parse().unwrap(),
            rtmps: None,
            srt: Some("127.0.0.1:0".parse().unwrap()),
            read_interval_ms: 40,
            part_target_ms: 500,
            limits: Default::default(),
            node_id: "test-node".into(),
            bucket: None,
        },
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    let state = AppState {
        store: store.clone(),
        pipelines,
        urls: Arc::new(PublicUrls {
            http: "http://controld.test".into(),
            rtmp: "rtmp://controld.test:1935/live/".into(),
            rtmps: Some("rtmps://controld.test:1936/live/".into()),
            srt: Some("srt://controld.test:9000".into()),
        }),
        storage_minutes_limit: Some(STORAGE_LIMIT),
        thumbnails: Arc::new(controld::thumbnails::Thumbnails::new(1)),
    };
    TestApp {
        _dir: dir,
        _database: database,
        store,
        router: controld::app(state),
        media,
    }
}

/// The store a test runs on: see the module's comment.
pub fn test_store(dir: &tempfile::TempDir) -> (Store, Option<ScratchDatabase>) {
    match ScratchDatabase::from_env() {
        Some(database) => (Store::connect(&database.url).unwrap(), Some(database)),
        None => (
            Store::open(&dir.path().join("controld.sqlite3")).unwrap(),
            None,
        ),
    }
}
