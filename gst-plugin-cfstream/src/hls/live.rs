//! The index of each recording being written, shared in-process with the server (controld
//! links this crate): a part is listed to players the moment its bytes are on storage, and a
//! request held for a part (LL-HLS blocking reload) wakes when it is. Once a recording is
//! finished its entry goes away and readers fall back to `index.log`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use cfstream_proto::index::RecordingIndex;
use cfstream_proto::index::log::{Record, Replay};
use tokio::sync::watch;

/// One recording being written.
pub struct LiveRecording {
    /// The index and what replaying records into it needs.
    index: RwLock<Replay>,
    changes: watch::Sender<u64>,
}

impl LiveRecording {
    /// Reads the index under its lock (keep `f` short: the writer waits for it).
    pub fn read<R>(&self, f: impl FnOnce(&RecordingIndex) -> R) -> R {
        f(self.index.read().unwrap_or_else(|e| e.into_inner()).index())
    }

    /// Changes (a part, a segment, a trim, the end) bump the value: await `changed()`.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

static LIVE: LazyLock<Mutex<HashMap<PathBuf, Arc<LiveRecording>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn registry() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Arc<LiveRecording>>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The recording being written in `dir` (the path cfhlssink writes to), if any.
pub fn lookup(dir: &Path) -> Option<Arc<LiveRecording>> {
    registry().get(dir).cloned()
}

/// Registers `dir` with an initial index (replacing an earlier entry); dropping the handle
/// unregisters it.
pub fn register(dir: &Path, index: RecordingIndex) -> LiveHandle {
    let recording = Arc::new(LiveRecording {
        index: RwLock::new(Replay::from_index(index)),
        changes: watch::Sender::new(0),
    });
    registry().insert(dir.to_path_buf(), Arc::clone(&recording));
    LiveHandle {
        dir: dir.to_path_buf(),
        recording,
    }
}

/// The writer's side of a [`LiveRecording`].
pub struct LiveHandle {
    dir: PathBuf,
    recording: Arc<LiveRecording>,
}

impl LiveHandle {
    pub fn recording(&self) -> &Arc<LiveRecording> {
        &self.recording
    }

    /// Applies a change and wakes every subscriber.
    pub fn update(&self, f: impl FnOnce(&mut RecordingIndex)) {
        f(self.replay().index_mut());
        self.wake();
    }

    /// Applies a record, as replaying the log would, and wakes every subscriber.
    pub fn apply(&self, record: Record) -> Result<(), String> {
        let applied = self.replay().apply(record);
        self.wake();
        applied
    }

    fn replay(&self) -> std::sync::RwLockWriteGuard<'_, Replay> {
        (self.recording.index.write()).unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self) {
        self.recording
            .changes
            .send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Drop for LiveHandle {
    fn drop(&mut self) {
        let mut live = registry();
        // A later registration of the same directory replaced this one: leave it.
        if live
            .get(&self.dir)
            .is_some_and(|r| Arc::ptr_eq(r, &self.recording))
        {
            live.remove(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfstream_proto::index::StreamInfo;

    fn empty() -> RecordingIndex {
        RecordingIndex {
            stream: StreamInfo::default(),
            tracks: Vec::new(),
        }
    }

    #[test]
    fn updates_wake_subscribers_and_drop_unregisters() {
        let dir = Path::new("/nonexistent/live-test-a");
        let handle = register(dir, empty());
        let found = lookup(dir).expect("registered");
        let changes = found.subscribe();
        assert!(!changes.has_changed().unwrap());
        handle.update(|i| i.stream.width = 640);
        assert!(changes.has_changed().unwrap());
        assert_eq!(found.read(|i| i.stream.width), 640);
        drop(handle);
        assert!(lookup(dir).is_none());
    }

    #[test]
    fn a_replaced_registration_survives_the_old_handle() {
        let dir = Path::new("/nonexistent/live-test-b");
        let old = register(dir, empty());
        let new = register(dir, empty());
        drop(old);
        assert!(Arc::ptr_eq(&lookup(dir).unwrap(), new.recording()));
        drop(new);
        assert!(lookup(dir).is_none());
    }
}
