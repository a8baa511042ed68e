//! The one thread that copies recordings to the bucket: a queue of recording directories, each
//! queued once however often it is asked for (a new segment asks again), copied oldest first;
//! a copy that fails is retried behind the others after a pause that doubles. The bucket's
//! calls are blocking (see `cfstream_storage::S3Storage`), so they stay off the async threads.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cfstream_storage::S3Storage;
use tokio::sync::oneshot;

use super::copy::{Copied, Target};

/// Pauses before retrying a copy that failed: from this…
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// …doubling up to this.
const LAST_RETRY: Duration = Duration::from_secs(30);
/// Recordings being written whose copy state is remembered between passes, at most; beyond it
/// the oldest is forgotten (its next pass lists the bucket again).
const MAX_REMEMBERED: usize = 4096;

/// Figures for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub queued: AtomicU64,
    pub objects: AtomicU64,
    pub bytes: AtomicU64,
    pub failures: AtomicU64,
}

struct Job {
    finished: bool,
    not_before: Instant,
    pause: Duration,
    /// Told when a pass of a finished recording has copied it all.
    waiters: Vec<oneshot::Sender<()>>,
}

#[derive(Default)]
struct Queue {
    order: VecDeque<String>,
    jobs: HashMap<String, Job>,
}

pub struct Copier {
    queue: Mutex<Queue>,
    wake: Condvar,
    pub counters: Counters,
}

impl Copier {
    /// Starts the thread copying `media_dir/<prefix>` to `storage` at `<prefix>`.
    pub fn start(storage: Arc<S3Storage>, media_dir: PathBuf) -> std::io::Result<Arc<Copier>> {
        let copier = Arc::new(Copier {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            counters: Counters::default(),
        });
        let worker = Arc::clone(&copier);
        std::thread::Builder::new()
            .name("cfstream-copy".into())
            .spawn(move || worker.run(&storage, &media_dir))?;
        Ok(copier)
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a pass over the recording at `prefix` (`input/video`); `finished`: its last.
    pub fn request(&self, prefix: &str, finished: bool, waiter: Option<oneshot::Sender<()>>) {
        let mut queue = self.queue();
        let job = match queue.jobs.get_mut(prefix) {
            Some(job) => job,
            None => {
                queue.order.push_back(prefix.to_owned());
                self.counters
                    .queued
                    .store(queue.order.len() as u64, Ordering::Relaxed);
                let job = Job {
                    finished: false,
                    not_before: Instant::now(),
                    pause: FIRST_RETRY,
                    waiters: Vec::new(),
                };
                queue.jobs.entry(prefix.to_owned()).or_insert(job)
            }
        };
        job.finished |= finished;
        job.waiters.extend(waiter);
        self.wake.notify_one();
    }

    /// The next job that is due, waiting for one.
    fn next(&self) -> (String, Job) {
        let mut queue = self.queue();
        loop {
            let now = Instant::now();
            let due = queue
                .order
                .iter()
                .position(|p| queue.jobs[p].not_before <= now);
            let prefix = due.and_then(|i| queue.order.remove(i));
            if let Some(job) = prefix.as_ref().and_then(|p| queue.jobs.remove(p)) {
                return (prefix.unwrap_or_default(), job);
            }
            let soonest = queue.jobs.values().map(|j| j.not_before).min();
            queue = match soonest {
                Some(at) => {
                    let wait = at.saturating_duration_since(now);
                    self.wake
                        .wait_timeout(queue, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                None => self.wake.wait(queue).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }

    fn run(&self, storage: &S3Storage, media_dir: &std::path::Path) {
        let mut remembered: HashMap<String, Copied> = HashMap::new();
        loop {
            let (prefix, job) = self.next();
            // The one being copied counts as queued until it is done.
            let waiting = self.queue().order.len() as u64;
            self.counters.queued.store(waiting + 1, Ordering::Relaxed);
            let target = Target {
                storage,
                prefix: &prefix,
            };
            let dir = media_dir.join(&prefix);
            let result = match remembered.remove(&prefix) {
                Some(copied) => Ok(copied),
                None => target.listed(),
            }
            .and_then(|mut copied| {
                let pass = target.copy(&dir, &mut copied, job.finished)?;
                Ok((copied, pass))
            });
            match result {
                Ok((copied, pass)) => {
                    self.counters
                        .objects
                        .fetch_add(pass.objects, Ordering::Relaxed);
                    self.counters.bytes.fetch_add(pass.bytes, Ordering::Relaxed);
                    if job.finished {
                        for waiter in job.waiters {
                            let _ = waiter.send(());
                        }
                    } else {
                        if remembered.len() >= MAX_REMEMBERED {
                            remembered.clear();
                        }
                        remembered.insert(prefix, copied);
                    }
                }
                Err(e) => {
                    self.counters.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(recording = prefix, "copying to the bucket: {e}");
                    self.retry(prefix, job);
                }
            }
            self.counters
                .queued
                .store(self.queue().order.len() as u64, Ordering::Relaxed);
        }
    }

    /// Puts a failed job back, behind its pause (merged with any request made meanwhile).
    fn retry(&self, prefix: String, mut job: Job) {
        let mut queue = self.queue();
        job.not_before = Instant::now() + job.pause;
        job.pause = (job.pause * 2).min(LAST_RETRY);
        if let Some(newer) = queue.jobs.remove(&prefix) {
            job.finished |= newer.finished;
            job.waiters.extend(newer.waiters);
        } else {
            queue.order.push_back(prefix.clone());
        }
        queue.jobs.insert(prefix, job);
    }
}
