//! Closing recordings that were not finished by their pipeline (crash, or a sink that failed).

use std::path::{Path, PathBuf};

use crate::store::{Store, StoreError, status, videos};
use crate::timefmt;
use crate::webhooks::Webhooks;

/// At startup: every video still `live-inprogress` was cut by a crash. Its directory is closed
/// (ENDLIST, only complete segments listed) and the video marked ready; statuses that still say
/// connected are closed too.
pub async fn close_unfinished(
    store: &Store,
    webhooks: &Webhooks,
    media_dir: &Path,
) -> Result<(), StoreError> {
    for video in store.read(videos::unfinished)? {
        tracing::info!(
            video = video.uid,
            "closing a recording interrupted by a restart"
        );
        let dir = super::recording_dir(media_dir, &video.live_input, &video.uid);
        close_recording(store, webhooks, dir, video.uid).await;
    }
    let now = timefmt::now();
    store.write(move |c| status::close_open(c, &now)).await?;
    Ok(())
}

/// Closes the directory, marks the video ready and sends the video webhook.
pub async fn close_recording(store: &Store, webhooks: &Webhooks, dir: PathBuf, video_uid: String) {
    let duration = tokio::task::spawn_blocking(move || {
        match gstcfstream::hls::finish_recording_dir(&dir) {
            Ok(summary) => summary.duration.as_secs_f64(),
            // Nothing was written before the cut: an empty recording.
            Err(e) => {
                tracing::warn!("closing recording {}: {e}", dir.display());
                0.0
            }
        }
    })
    .await
    .unwrap_or(0.0);
    let now = timefmt::now();
    let uid = video_uid.clone();
    match store
        .write(move |c| videos::mark_ready(c, &uid, duration, &now))
        .await
    {
        Ok(()) => webhooks.video_ready(&video_uid).await,
        Err(e) => tracing::error!("marking a closed recording ready: {e}"),
    }
}
