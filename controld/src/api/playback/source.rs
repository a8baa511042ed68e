//! Where a recording's index comes from: the writer's in-memory index while cfhlssink writes
//! the recording (parts listed the moment they are written, with a watch to await), else its
//! `index.log` replayed from disk and cached (a finished recording never changes; one that is
//! not finished is re-read when the file's length changes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use cfstream_proto::index::log::Replay;
use cfstream_proto::index::{Progress, RecordingIndex};
use gstcfstream::hls::live::{self, LiveRecording};
use tokio::sync::watch;

use crate::api::envelope::ApiError;
use crate::pipeline::INDEX_LOG;

/// Replayed indexes kept at most (a viewer's reloads hit the cache; many recordings watched at
/// once evict the least recently used).
const CACHE_CAPACITY: usize = 64;

/// A recording's index, as one request sees it.
pub enum Source {
    Live(Arc<LiveRecording>),
    Stored(Arc<RecordingIndex>),
}

impl Source {
    /// The index in `dir`: live when it is being written, else replayed from `index.log`;
    /// `None` when there is no index (yet). `still_recording` says whether the database thinks
    /// the recording is live: a stored index without `end` is then served as live (the writer
    /// has not registered it yet, or just unregistered it), else as finished (a recording cut
    /// by a crash is over).
    pub async fn open(dir: &Path, still_recording: bool) -> Result<Option<Source>, ApiError> {
        if let Some(recording) = live::lookup(dir) {
            return Ok(Some(Source::Live(recording)));
        }
        let Some(Stored { index, finished }) = stored(dir).await? else {
            return Ok(None);
        };
        if finished || still_recording {
            return Ok(Some(Source::Stored(index)));
        }
        let mut ended = (*index).clone();
        for track in &mut ended.tracks {
            track.progress = Progress::Finished;
            track.open = None;
        }
        Ok(Some(Source::Stored(Arc::new(ended))))
    }

    pub fn read<R>(&self, f: impl FnOnce(&RecordingIndex) -> R) -> R {
        match self {
            Source::Live(recording) => recording.read(f),
            Source::Stored(index) => f(index),
        }
    }

    /// Wakes on every change of a live index; `None` for a stored one (it will not change
    /// while this request is held).
    pub fn subscribe(&self) -> Option<watch::Receiver<u64>> {
        match self {
            Source::Live(recording) => Some(recording.subscribe()),
            Source::Stored(_) => None,
        }
    }
}

/// A replayed `index.log`.
#[derive(Clone)]
struct Stored {
    index: Arc<RecordingIndex>,
    /// The log has its `end` record (not judged from the tracks: a log cut before its first
    /// `track` record has none, and is not finished for that).
    finished: bool,
}

struct Cached {
    /// Length of `index.log` when it was replayed.
    len: u64,
    stored: Stored,
    used: Instant,
}

static CACHE: LazyLock<Mutex<HashMap<PathBuf, Cached>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn cache() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Cached>> {
    CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The replayed `index.log` of `dir`, from the cache when the file has not changed length.
async fn stored(dir: &Path) -> Result<Option<Stored>, ApiError> {
    let path = dir.join(INDEX_LOG);
    let len = match tokio::fs::metadata(&path).await {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ApiError::internal(format!("{}: {e}", path.display()))),
    };
    if let Some(hit) = cache().get_mut(dir).filter(|c| c.len == len) {
        hit.used = Instant::now();
        return Ok(Some(hit.stored.clone()));
    }
    let replay_path = path.clone();
    let (len, stored) = tokio::task::spawn_blocking(move || replay(&replay_path))
        .await
        .map_err(|e| ApiError::internal(format!("replaying {}: {e}", path.display())))??;
    let mut cache = cache();
    if cache.len() >= CACHE_CAPACITY
        && let Some(oldest) = cache
            .iter()
            .min_by_key(|(_, c)| c.used)
            .map(|(k, _)| k.clone())
    {
        cache.remove(&oldest);
    }
    cache.insert(
        dir.to_path_buf(),
        Cached {
            len,
            stored: stored.clone(),
            used: Instant::now(),
        },
    );
    Ok(Some(stored))
}

/// Reads and replays the whole file: (bytes read, what it holds). A torn last line is left out
/// (the writer completes it; the length then changes and the next request replays again).
fn replay(path: &Path) -> Result<(u64, Stored), ApiError> {
    let bytes =
        std::fs::read(path).map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    let mut replay = Replay::new();
    replay
        .feed(&bytes)
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    let finished = replay.finished();
    let stored = Stored {
        index: Arc::new(replay.into_index()),
        finished,
    };
    Ok((bytes.len() as u64, stored))
}
