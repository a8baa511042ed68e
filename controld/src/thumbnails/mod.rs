//! Thumbnails (`GET /{id}/thumbnails/thumbnail.jpg`): one frame of a recording decoded on demand
//! from the GOP holding it and encoded as JPEG.
//!
//! The cost is bounded so that thumbnails cannot take CPU from live inputs: at most
//! `--thumbnail-concurrency` decodes run at once (`limiter`; a few requests wait, more are
//! answered 503), each on its own thread [`DECODE_NICE_STEPS`] nicer than controld (GStreamer runs the whole
//! decode in that thread, `decode`), and encoded thumbnails are kept (`cache`) so that asking
//! again is free.

pub mod cache;
pub mod decode;
pub mod frame;
pub mod geometry;
pub mod limiter;
pub mod request;

use std::path::PathBuf;
use std::sync::Mutex;

use axum::body::Bytes;

use self::cache::{JpegCache, Key};
use self::decode::Job;
use self::limiter::{Busy, Limiter};

/// `--thumbnail-concurrency` when not given: one decode at a time.
pub const DEFAULT_CONCURRENCY: usize = 1;

/// Bytes of JPEG kept in memory (about a thousand 640×360 thumbnails).
pub const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// How much nicer than controld the decode threads are: at 10 steps the scheduler gives live
/// inputs about ten times the CPU of a decode when both want it, and a decode still progresses.
pub const DECODE_NICE_STEPS: i32 = 10;

/// The highest nice value (the lowest priority) Linux has.
const LOWEST_PRIORITY: i32 = 19;

/// Why there is no thumbnail.
#[derive(Debug)]
pub enum Refused {
    /// Every decode slot is taken and enough requests wait already.
    Busy,
    /// Reading the segment or decoding it failed.
    Failed(String),
}

/// The files one thumbnail is made from.
pub struct Source {
    pub init: PathBuf,
    pub segment: PathBuf,
}

pub struct Thumbnails {
    cache: Mutex<JpegCache>,
    limiter: Limiter,
}

impl Thumbnails {
    pub fn new(concurrency: usize) -> Thumbnails {
        Thumbnails {
            cache: Mutex::new(JpegCache::new(CACHE_BYTES)),
            limiter: Limiter::new(concurrency),
        }
    }

    fn cached(&self, key: &Key) -> Option<Bytes> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
    }

    /// The JPEG for `key`: from the cache, else decoded from `source` at `offset` into the
    /// segment when a decode slot is free.
    pub async fn render(
        &self,
        key: Key,
        source: Source,
        offset: std::time::Duration,
    ) -> Result<Bytes, Refused> {
        if let Some(jpeg) = self.cached(&key) {
            return Ok(jpeg);
        }
        let slot = self.limiter.acquire().await.map_err(|Busy| Refused::Busy)?;
        // Another request may have made it while this one waited.
        if let Some(jpeg) = self.cached(&key) {
            return Ok(jpeg);
        }
        let (done, result) = tokio::sync::oneshot::channel();
        let geometry = key.geometry;
        std::thread::Builder::new()
            .name("thumbnail".into())
            .spawn(move || {
                lower_priority();
                let decoded = read(&source).and_then(|media| {
                    decode::decode(Job {
                        media,
                        offset,
                        geometry,
                    })
                });
                // The slot is free once the decode is over, whether or not anyone waits.
                drop(slot);
                let _ = done.send(decoded);
            })
            .map_err(|e| Refused::Failed(format!("spawning a thumbnail thread: {e}")))?;
        let decoded = result
            .await
            .map_err(|_| Refused::Failed("thumbnail thread ended without an answer".into()))?
            .map_err(Refused::Failed)?;
        tracing::debug!(
            frames = decoded.frames,
            bytes = decoded.jpeg.len(),
            "thumbnail decoded"
        );
        let jpeg = Bytes::from(decoded.jpeg);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(key, jpeg.clone());
        Ok(jpeg)
    }
}

fn read(source: &Source) -> Result<Vec<u8>, String> {
    let read = |path: &PathBuf| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    let mut media = read(&source.init)?;
    media.extend(read(&source.segment)?);
    Ok(media)
}

/// Lowers this thread's priority by [`DECODE_NICE_STEPS`] (to at most nice 19, the lowest):
/// on Linux the nice value is per thread, and threads this one creates inherit it. Relative, so
/// that a controld started at a low priority never has its thumbnails raised above itself.
fn lower_priority() {
    // SAFETY: gettid, getpriority and setpriority only read their arguments.
    let set = unsafe {
        let thread = libc::gettid() as libc::id_t;
        let current = libc::getpriority(libc::PRIO_PROCESS, thread);
        libc::setpriority(
            libc::PRIO_PROCESS,
            thread,
            (current + DECODE_NICE_STEPS).min(LOWEST_PRIORITY),
        )
    };
    if set != 0 {
        tracing::warn!(
            "lowering the thumbnail thread's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}
