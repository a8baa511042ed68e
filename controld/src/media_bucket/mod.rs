//! Recordings copied to an S3-compatible bucket (`--media-url`), so that any node can serve
//! them when the node that recorded them is gone.
//!
//! Recordings are written on the local disk of the node that holds their input, as without a
//! bucket (the live edge, parts and blocking reloads stay there; other nodes forward to it).
//! Each new segment queues a copy of its recording, behind by about a segment; a finished
//! recording is copied whole before its video is marked ready (bounded by [`FINISH_WAIT`]: a
//! bucket that is down does not hold recordings back, the copy goes on in the background).
//! A node asked for a recording it does not have, whose recorder is not reachable, fetches the
//! copy whole onto its own disk once and serves it from there ([`MediaBucket::fetch`]).
//!
//! The bucket holds `<input>/<video>/<file>`, as `media/` does.

mod copier;
mod copy;
mod fetch;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cfstream_storage::{S3Config, S3Storage, StorageRead};

use crate::pipeline::INDEX_LOG;
use copier::Copier;

/// How long marking a finished recording ready waits for its copy.
pub const FINISH_WAIT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct MediaBucket {
    storage: Arc<S3Storage>,
    copier: Arc<Copier>,
    media_dir: PathBuf,
    /// `s3://bucket/prefix`, for logs.
    url: String,
    /// One fetch at a time: a second request for the same recording waits for the first.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

/// Figures for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyStats {
    pub queued: u64,
    pub objects: u64,
    pub bytes: u64,
    pub failures: u64,
}

impl MediaBucket {
    /// Opens the bucket and starts copying; queues every recording on the local disk, so that
    /// copies interrupted by a restart (or a bucket that was down) are completed.
    pub fn open(config: &S3Config, media_dir: &Path) -> io::Result<MediaBucket> {
        let storage = Arc::new(S3Storage::open(config)?);
        let copier = Copier::start(Arc::clone(&storage), media_dir.to_owned())?;
        let bucket = MediaBucket {
            storage,
            copier,
            media_dir: media_dir.to_owned(),
            url: config.url.clone(),
            fetching: Arc::default(),
        };
        for prefix in local_recordings(media_dir)? {
            bucket.copier.request(&prefix, false, None);
        }
        Ok(bucket)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new segment in the recording of `input`'s `video`: copy what is new.
    pub fn copy(&self, input: &str, video: &str) {
        self.copier.request(&prefix(input, video), false, None);
    }

    /// The recording is finished: copies the rest, waiting for it up to [`FINISH_WAIT`].
    pub async fn copy_finished(&self, input: &str, video: &str) {
        let (done, copied) = tokio::sync::oneshot::channel();
        self.copier.request(&prefix(input, video), true, Some(done));
        if tokio::time::timeout(FINISH_WAIT, copied).await.is_err() {
            tracing::warn!(
                video,
                "the recording's copy to {} is not complete after {FINISH_WAIT:?}; \
                 it goes on in the background",
                self.url
            );
        }
    }

    /// Makes sure the recording is on the local disk, fetching the bucket's copy if not.
    pub async fn fetch(&self, input: &str, video: &str) -> io::Result<()> {
        let dir = self.media_dir.join(input).join(video);
        if fetch::is_local(&dir) {
            return Ok(());
        }
        let _one = self.fetching.lock().await;
        let (storage, prefix) = (Arc::clone(&self.storage), prefix(input, video));
        tokio::task::spawn_blocking(move || fetch::fetch_missing(&*storage, &prefix, &dir))
            .await
            .map_err(io::Error::other)?
    }

    /// As [`fetch`](Self::fetch), from a thread that may block (not the runtime's); returns
    /// the recording's directory.
    pub fn fetch_blocking(&self, input: &str, video: &str) -> io::Result<PathBuf> {
        let dir = self.media_dir.join(input).join(video);
        let _one = self.fetching.blocking_lock();
        fetch::fetch_missing(&*self.storage, &prefix(input, video), &dir)?;
        Ok(dir)
    }

    /// Removes the recording's copy (a deleted video).
    pub async fn delete(&self, input: &str, video: &str) -> io::Result<()> {
        let (storage, prefix) = (
            Arc::clone(&self.storage),
            format!("{}/", prefix(input, video)),
        );
        tokio::task::spawn_blocking(move || storage.delete_prefix(&prefix).map(drop))
            .await
            .map_err(io::Error::other)?
    }

    pub fn stats(&self) -> CopyStats {
        let c = &self.copier.counters;
        CopyStats {
            queued: c.queued.load(Ordering::Relaxed),
            objects: c.objects.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
        }
    }
}

fn prefix(input: &str, video: &str) -> String {
    format!("{input}/{video}")
}

/// `input/video` of every recording directory under `media_dir`.
fn local_recordings(media_dir: &Path) -> io::Result<Vec<String>> {
    let mut found = Vec::new();
    for input in subdirectories(media_dir)? {
        for video in subdirectories(&media_dir.join(&input))? {
            found.push(prefix(&input, &video));
        }
    }
    Ok(found)
}

/// Names of the visible subdirectories (hidden ones are fetches under way).
fn subdirectories(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}
