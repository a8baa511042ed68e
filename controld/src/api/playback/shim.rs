//! TEMPORARY stand-in for the writer helper's contract modules (docs: /work/notes/cmaf-contract.md
//! §2, §3, §3b), so that playback builds and its in-process tests run before they land: the live
//! registry as the contract describes it, and a `Replay` that refuses every `index.log`. Delete
//! this file and import `gstcfstream::hls::live` / `cfstream_proto::index::log::Replay` instead
//! once the writer's branch is merged.
pub mod live {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, LazyLock, Mutex, RwLock};

    use cfstream_proto::index::RecordingIndex;
    use tokio::sync::watch;

    pub struct LiveRecording {
        index: RwLock<RecordingIndex>,
        changes: watch::Sender<u64>,
    }
    impl LiveRecording {
        pub fn read<R>(&self, f: impl FnOnce(&RecordingIndex) -> R) -> R {
            f(&self.index.read().unwrap())
        }
        pub fn subscribe(&self) -> watch::Receiver<u64> {
            self.changes.subscribe()
        }
    }
    static LIVE: LazyLock<Mutex<HashMap<PathBuf, Arc<LiveRecording>>>> =
        LazyLock::new(Default::default);
    pub fn lookup(dir: &Path) -> Option<Arc<LiveRecording>> {
        LIVE.lock().unwrap().get(dir).cloned()
    }
    pub struct LiveHandle {
        dir: PathBuf,
        recording: Arc<LiveRecording>,
    }
    pub fn register(dir: &Path, index: RecordingIndex) -> LiveHandle {
        let recording = Arc::new(LiveRecording {
            index: RwLock::new(index),
            changes: watch::Sender::new(0),
        });
        LIVE.lock()
            .unwrap()
            .insert(dir.to_path_buf(), recording.clone());
        LiveHandle {
            dir: dir.to_path_buf(),
            recording,
        }
    }
    impl LiveHandle {
        pub fn recording(&self) -> &Arc<LiveRecording> {
            &self.recording
        }
        pub fn update(&self, f: impl FnOnce(&mut RecordingIndex)) {
            f(&mut self.recording.index.write().unwrap());
            self.recording.changes.send_modify(|v| *v += 1);
        }
    }
    impl Drop for LiveHandle {
        fn drop(&mut self) {
            LIVE.lock().unwrap().remove(&self.dir);
        }
    }
}
pub mod log {
    use cfstream_proto::index::RecordingIndex;
    #[derive(Default)]
    pub struct Replay;
    impl Replay {
        pub fn new() -> Self {
            Replay
        }
        pub fn feed(&mut self, _: &[u8]) -> Result<usize, String> {
            Err("index.log is not readable before the writer's Replay lands".into())
        }
        pub fn into_index(self) -> RecordingIndex {
            unreachable!()
        }
    }
}
