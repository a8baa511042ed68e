//! Closing recordings that were not finished by their pipeline (crash, or a sink that failed).

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::recorded_media;
use crate::media_bucket::MediaBucket;
use crate::store::{Store, StoreError, leases, status, videos};
use crate::timefmt;
use crate::webhooks::Webhooks;

/// What closing a recording needs: the store to mark it ready, webhooks to tell, the bucket
/// to copy it to.
#[derive(Clone)]
pub struct Closing {
    pub store: Store,
    pub webhooks: Webhooks,
    pub bucket: Option<MediaBucket>,
}

/// At startup: every video still `live-inprogress` was cut by a crash, but those of inputs
/// another node holds the lease of (live there). One that is not on this disk (recorded by a
/// node that died) is fetched from the bucket's copy first, when there is a bucket. Its
/// directory is closed (`end` appended to its index.log, media files it does not list
/// deleted) and the video marked ready; statuses that still say connected are closed too.
pub async fn close_unfinished(
    closing: &Closing,
    media_dir: &Path,
    node: &str,
) -> Result<(), StoreError> {
    let store = &closing.store;
    let now_ms = super::leases::now_ms();
    let live_elsewhere: HashSet<String> = store
        .read(|c| leases::held_by_others(c, node, now_ms))?
        .into_iter()
        .collect();
    let unfinished = store.read(videos::unfinished)?;
    for video in unfinished {
        if live_elsewhere.contains(&video.live_input) {
            continue;
        }
        tracing::info!(
            video = video.uid,
            "closing a recording interrupted by a restart"
        );
        // A recording of another node that died is closed from its copy.
        if let Some(bucket) = &closing.bucket
            && let Err(e) = bucket.fetch(&video.live_input, &video.uid).await
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(video = video.uid, "fetching an interrupted recording: {e}");
        }
        let dir = super::recording_dir(media_dir, &video.live_input, &video.uid);
        close_recording(closing, dir, &video.live_input, video.uid).await;
    }
    let now = timefmt::now();
    let node = node.to_owned();
    store
        .write(move |c| status::close_open(c, &now, &node, now_ms))
        .await?;
    Ok(())
}

/// Closes the directory, copies it to the bucket, marks the video ready and sends the video
/// webhook. A directory that cannot be closed now (the disk is full, say) stays
/// `live-inprogress` and is retried in the background until it can be: marking it ready
/// without its `end` record would leave players waiting on it forever (its playlists would
/// never get `EXT-X-ENDLIST`).
pub async fn close_recording(closing: &Closing, dir: PathBuf, input: &str, video_uid: String) {
    match finish(dir.clone()).await {
        Ok(duration) => finished(closing, &dir, input, video_uid, duration).await,
        Err(e) => {
            tracing::warn!(
                "closing recording {}: {e}; retrying in the background",
                dir.display()
            );
            let (closing, input) = (closing.clone(), input.to_owned());
            tokio::spawn(async move {
                let mut pause = FIRST_RETRY;
                loop {
                    tokio::time::sleep(pause).await;
                    match finish(dir.clone()).await {
                        Ok(duration) => {
                            break finished(&closing, &dir, &input, video_uid, duration).await;
                        }
                        Err(e) => tracing::debug!("closing recording {}: {e}", dir.display()),
                    }
                    pause = (pause * 2).min(LAST_RETRY);
                }
            });
        }
    }
}

/// A recording whose `end` is written: its copy, then its video ready.
async fn finished(closing: &Closing, dir: &Path, input: &str, video: String, seconds: f64) {
    if let Some(bucket) = &closing.bucket {
        bucket.copy_finished(input, &video).await;
    }
    mark_ready(&closing.store, &closing.webhooks, dir, video, seconds).await;
}

/// Pauses between attempts to close a recording: from this…
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// …doubling up to this.
const LAST_RETRY: Duration = Duration::from_secs(60);

/// Finishes the recording directory; its duration in seconds. A directory with nothing in it
/// is an empty recording; any other error is worth another try.
async fn finish(dir: PathBuf) -> io::Result<f64> {
    let finished =
        tokio::task::spawn_blocking(move || gstcfstream::hls::finish_recording_dir(&dir))
            .await
            .map_err(io::Error::other)?;
    match finished {
        Ok(summary) => Ok(summary.duration.as_secs_f64()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0.0),
        Err(e) => Err(e),
    }
}

async fn mark_ready(
    store: &Store,
    webhooks: &Webhooks,
    dir: &Path,
    video_uid: String,
    duration: f64,
) {
    let media = recorded_media::measure_finished(dir.to_path_buf()).await;
    let now = timefmt::now();
    let uid = video_uid.clone();
    match store
        .write(move |c| {
            if let Some(media) = &media {
                videos::record_media(c, &uid, media)?;
            }
            videos::mark_ready(c, &uid, duration, &now)
        })
        .await
    {
        Ok(()) => webhooks.video_ready(&video_uid).await,
        Err(e) => tracing::error!("marking a closed recording ready: {e}"),
    }
}
