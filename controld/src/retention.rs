//! Retention: deletes recordings whose `scheduledDeletion` has come (`deleteRecordingAfterDays`
//! of their live input, counted from the time they became ready), rows and files; then the
//! files nothing will serve again ([`crate::leftovers`]).
//!
//! The sweeper reads time from a [`Clock`] so that tests can move it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::leftovers::{self, Owners};
use crate::media_bucket::MediaBucket;
use crate::pipeline;
use crate::store::{Store, StoreError, live_inputs, videos};
use crate::timefmt;

/// Default interval between sweeps (`--retention-sweep-seconds`).
pub const DEFAULT_SWEEP_SECONDS: u64 = 60;
/// Videos deleted per database query; a sweep repeats until none are due.
const BATCH: u32 = 100;

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

pub struct Sweeper {
    store: Store,
    media_dir: PathBuf,
    clock: Arc<dyn Clock>,
    bucket: Option<MediaBucket>,
}

impl Sweeper {
    pub fn new(store: Store, media_dir: PathBuf, clock: Arc<dyn Clock>) -> Sweeper {
        Sweeper {
            store,
            media_dir,
            clock,
            bucket: None,
        }
    }

    /// Deletes the copies of due recordings from `bucket` too.
    pub fn with_bucket(mut self, bucket: Option<MediaBucket>) -> Sweeper {
        self.bucket = bucket;
        self
    }

    /// Sweeps every `interval` (the first right away) until the runtime shuts down.
    pub fn spawn(self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match self.sweep().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!("retention: deleted {n} recording(s)"),
                    Err(e) => tracing::error!("retention sweep: {e}"),
                }
            }
        })
    }

    /// Deletes every due video, then the leftovers; returns how many videos were deleted.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let deleted = self.delete_due().await?;
        self.remove_leftovers().await?;
        Ok(deleted)
    }

    /// Removes the leftovers last changed a [`leftovers::GRACE`] ago or more.
    async fn remove_leftovers(&self) -> Result<(), StoreError> {
        let owners = self.store.read(|c| {
            Ok(Owners {
                inputs: live_inputs::all(c)?.into_iter().map(|i| i.uid).collect(),
                videos: videos::all_uids(c)?.into_iter().collect(),
            })
        })?;
        let cutoff = std::time::SystemTime::from(self.clock.now()) - leftovers::GRACE;
        let media_dir = self.media_dir.clone();
        let removed =
            tokio::task::spawn_blocking(move || leftovers::remove(&media_dir, &owners, cutoff))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?;
        match removed {
            Ok(0) => {}
            Ok(n) => tracing::info!("retention: removed {n} leftover file(s) or directories"),
            Err(e) => tracing::error!("retention: removing leftovers: {e}"),
        }
        Ok(())
    }

    /// Deletes every due video: files first, then the row, so that a failure or a crash in
    /// between leaves a row that the next sweep retries. Returns how many were deleted.
    async fn delete_due(&self) -> Result<usize, StoreError> {
        let now = timefmt::format(self.clock.now());
        let mut deleted = 0;
        loop {
            let due_now = now.clone();
            let due = self
                .store
                .read(|c| videos::due_for_deletion(c, &due_now, BATCH))?;
            if due.is_empty() {
                return Ok(deleted);
            }
            let mut progressed = false;
            for video in due {
                let dir = pipeline::recording_dir(&self.media_dir, &video.live_input, &video.uid);
                let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir))
                    .await
                    .map_err(|e| StoreError::Task(e.to_string()))?;
                match removed {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::error!(video = video.uid, "retention: removing files: {e}");
                        continue;
                    }
                }
                if let Some(bucket) = &self.bucket
                    && let Err(e) = bucket.delete(&video.live_input, &video.uid).await
                {
                    tracing::error!(video = video.uid, "retention: removing the copy: {e}");
                    continue;
                }
                let (account, uid) = (video.account_id, video.uid);
                tracing::info!(video = uid, "retention: deleting recording");
                self.store
                    .write(move |c| videos::delete(c, &account, &uid))
                    .await?;
                deleted += 1;
                progressed = true;
            }
            // Only undeletable files are left: retry on the next sweep.
            if !progressed {
                return Ok(deleted);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::store::live_inputs::{self, LiveInput, RecordingSettings};
    use crate::store::{accounts, videos::Video};
    use cfstream_proto::index::{TrackKind, segment_name};

    struct FakeClock(Mutex<OffsetDateTime>);

    impl Clock for FakeClock {
        fn now(&self) -> OffsetDateTime {
            *self.0.lock().unwrap()
        }
    }

    fn input(uid: &str, days: Option<u32>) -> LiveInput {
        LiveInput {
            uid: uid.into(),
            account_id: "acct".into(),
            created: timefmt::now(),
            modified: timefmt::now(),
            meta: serde_json::json!({}),
            enabled: true,
            delete_recording_after_days: days,
            default_creator: None,
            recording: RecordingSettings::default(),
            stream_key: crate::ids::new_stream_key(uid),
            srt_passphrase: crate::ids::new_stream_key(uid),
            playback_key: "playback".into(),
            srt_playback_passphrase: "srt-playback".into(),
            keys_rotated_at: None,
        }
    }

    fn recording(
        store: &Store,
        media: &std::path::Path,
        input: &str,
        ready: OffsetDateTime,
    ) -> (String, PathBuf) {
        let uid = crate::ids::new_uid();
        let video = Video {
            uid: uid.clone(),
            account_id: "acct".into(),
            live_input: input.into(),
            created: timefmt::format(ready),
            modified: timefmt::format(ready),
            state: videos::STATE_LIVE.into(),
            ready_to_stream_at: None,
            duration: -1.0,
            meta: serde_json::json!({}),
            creator: None,
            require_signed_urls: false,
            allowed_origins: None,
        };
        store
            .write_blocking(|c| {
                videos::insert(c, &video)?;
                videos::mark_ready(c, &uid, 10.0, &timefmt::format(ready))
            })
            .unwrap();
        let dir = pipeline::recording_dir(media, input, &uid);
        std::fs::create_dir_all(&dir).unwrap();
        let segment = segment_name(TrackKind::Video, 0);
        std::fs::write(dir.join(segment), b"x").unwrap();
        (uid, dir)
    }

    #[tokio::test]
    async fn due_recordings_are_deleted_when_the_clock_reaches_them() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("db")).unwrap();
        let media = tmp.path().join("media");
        let (kept_uid, keep_uid) = (crate::ids::new_uid(), crate::ids::new_uid());
        store
            .write_blocking(|c| {
                accounts::ensure(c, "acct")?;
                live_inputs::save(c, &input(&kept_uid, Some(30)))?;
                live_inputs::save(c, &input(&keep_uid, None))
            })
            .unwrap();
        let t0 = OffsetDateTime::now_utc();
        let (first, first_dir) = recording(&store, &media, &kept_uid, t0);
        let (second, second_dir) =
            recording(&store, &media, &kept_uid, t0 + time::Duration::days(1));
        let (forever, forever_dir) = recording(&store, &media, &keep_uid, t0);

        let scheduled = store
            .read(|c| videos::details(c, &first))
            .unwrap()
            .and_then(|d| d.scheduled_deletion);
        assert_eq!(
            scheduled,
            Some(timefmt::format(t0 + time::Duration::days(30)))
        );
        assert_eq!(
            store
                .read(|c| videos::details(c, &forever))
                .unwrap()
                .and_then(|d| d.scheduled_deletion),
            None
        );

        let clock = Arc::new(FakeClock(Mutex::new(t0)));
        let sweeper = Sweeper::new(store.clone(), media.clone(), clock.clone());
        let exists = |uid: &str| {
            store
                .read(|c| videos::get(c, "acct", uid))
                .unwrap()
                .is_some()
        };

        *clock.0.lock().unwrap() = t0 + time::Duration::days(30) - time::Duration::SECOND;
        assert_eq!(sweeper.sweep().await.unwrap(), 0);
        assert!(exists(&first) && first_dir.exists());

        *clock.0.lock().unwrap() = t0 + time::Duration::days(30);
        assert_eq!(sweeper.sweep().await.unwrap(), 1);
        assert!(!exists(&first) && !first_dir.exists());
        assert!(exists(&second) && second_dir.exists());

        *clock.0.lock().unwrap() = t0 + time::Duration::days(2000);
        assert_eq!(sweeper.sweep().await.unwrap(), 1);
        assert!(!exists(&second) && !second_dir.exists());
        assert!(
            exists(&forever) && forever_dir.exists(),
            "no deleteRecordingAfterDays: kept"
        );
        assert_eq!(sweeper.sweep().await.unwrap(), 0);
    }
}
