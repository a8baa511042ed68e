//! What one viewer receives, and its bounded queue between the pipeline's streaming thread (which
//! never waits for a viewer) and the viewer's connection task.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

/// A viewer further behind than this (the oldest media it has not taken was pushed this long
/// ago) is dropped: a player that cannot keep up with a live stream will not catch up.
pub const MAX_LAG: Duration = Duration::from_secs(5);
/// And one holding more than this (a stream far above the usual bitrates).
pub const MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;

/// One FLV tag as a player gets it (an RTMP media message).
#[derive(Clone, Debug, PartialEq)]
pub struct FlvTag {
    /// 8 audio, 9 video, 18 script data.
    pub tag_type: u8,
    /// The pipeline's running time in milliseconds.
    pub timestamp_ms: u32,
    pub body: Bytes,
}

/// What a viewer receives.
#[derive(Clone, Debug, PartialEq)]
pub enum Chunk {
    Flv(FlvTag),
    /// Whole 188-byte TS packets.
    Ts(Bytes),
}

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Chunk::Flv(tag) => tag.body.len() + 16,
            Chunk::Ts(bytes) => bytes.len(),
        }
    }
}

/// Why a viewer gets no more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewerEnd {
    /// The input's broadcast ended (its pipeline stopped).
    InputEnded,
    /// The viewer fell behind by more than [`MAX_LAG`] or [`MAX_QUEUED_BYTES`].
    TooSlow,
    /// The viewer's side went away (its [`Viewer`] was dropped).
    Left,
}

#[derive(Default)]
struct State {
    chunks: VecDeque<(Instant, Chunk)>,
    bytes: usize,
    end: Option<ViewerEnd>,
}

#[derive(Default)]
pub(super) struct Queue {
    state: Mutex<State>,
    changed: Notify,
}

impl Queue {
    /// Queues a chunk unless the viewer ended or is too far behind (then it ends as
    /// [`ViewerEnd::TooSlow`], its queue freed at once). `false`: the viewer is gone.
    pub(super) fn push(&self, chunk: Chunk, now: Instant) -> bool {
        let mut state = lock(&self.state);
        if state.end.is_some() {
            return false;
        }
        let behind = state
            .chunks
            .front()
            .is_some_and(|(pushed, _)| now.duration_since(*pushed) > MAX_LAG);
        if behind || state.bytes + chunk.len() > MAX_QUEUED_BYTES {
            state.end = Some(ViewerEnd::TooSlow);
            state.chunks = VecDeque::new();
            state.bytes = 0;
            drop(state);
            self.changed.notify_one();
            return false;
        }
        state.bytes += chunk.len();
        state.chunks.push_back((now, chunk));
        drop(state);
        self.changed.notify_one();
        true
    }

    /// Ends the viewer (unless it ended already); what is queued is still delivered.
    pub(super) fn end(&self, end: ViewerEnd) {
        let mut state = lock(&self.state);
        if state.end.is_none() {
            state.end = Some(end);
        }
        drop(state);
        self.changed.notify_one();
    }

    pub(super) fn has_ended(&self) -> bool {
        lock(&self.state).end.is_some()
    }
}

/// A viewer's end of its queue; dropping it leaves the hub.
pub struct Viewer {
    pub(super) queue: Arc<Queue>,
}

impl Viewer {
    /// The next chunk, waiting for one; `Err` once the viewer ended (after what was queued,
    /// except for [`ViewerEnd::TooSlow`], whose queue is dropped).
    pub async fn next(&self) -> Result<Chunk, ViewerEnd> {
        loop {
            {
                let mut state = lock(&self.queue.state);
                if let Some((_, chunk)) = state.chunks.pop_front() {
                    state.bytes -= chunk.len();
                    return Ok(chunk);
                }
                if let Some(end) = state.end {
                    return Err(end);
                }
            }
            self.queue.changed.notified().await;
        }
    }

    /// Resolves once the viewer was dropped for being too slow: a task blocked writing to a
    /// stalled peer races its write against this.
    pub async fn too_slow(&self) {
        loop {
            if lock(&self.queue.state).end == Some(ViewerEnd::TooSlow) {
                return;
            }
            self.queue.changed.notified().await;
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.queue.end(ViewerEnd::Left);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
