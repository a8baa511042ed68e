//! A broadcast that comes back to this node after the node recording it died: when its
//! publisher reconnects here within the input's `recording.timeoutSeconds`, the video that node
//! was recording goes on here, from the copy in the bucket, behind one discontinuity (cfhlssink
//! resumes an unfinished recording directory it is given). What the dead node had not copied
//! yet (about its last segment) is lost; everything its copy lists is kept.
//!
//! Only the lease holder's pipeline asks, so one node at a time; should two still race (a
//! lease taken over twice in quick succession), both may fetch it; one claims it in the database
//! (`nodes::claim_video`), the other removes its copy and starts a new video.

use std::path::Path;

use cfstream_proto::index::log::Replay;

use super::leases::now_ms;
use super::{DEFAULT_RECONNECT_TIMEOUT_SECS, INDEX_LOG};
use crate::media_bucket::MediaBucket;
use crate::store::live_inputs::LiveInput;
use crate::store::{Store, StoreError, nodes, videos};

/// The video of `input` that a dead node was recording and that this node (`node`) now
/// continues, fetched onto its disk; `None` when there is none to continue (a new video then).
/// Blocks: for the `recording-name` handler on the streaming thread.
pub fn continued_video(
    store: &Store,
    bucket: &MediaBucket,
    input: &LiveInput,
    node: &str,
) -> Option<String> {
    let (video, holder) = match orphan_of(store, &input.uid, node) {
        Ok(found) => found?,
        Err(e) => {
            tracing::warn!(
                input = input.uid,
                "looking for a recording to continue: {e}"
            );
            return None;
        }
    };
    let dir = match bucket.fetch_blocking(&input.uid, &video) {
        Ok(dir) => dir,
        Err(e) => {
            tracing::warn!(
                input = input.uid,
                video,
                "not continuing node {holder}'s video: {e}"
            );
            return None;
        }
    };
    let window = match input.recording.timeout_seconds {
        0 => DEFAULT_RECONNECT_TIMEOUT_SECS,
        t => t,
    };
    let claimed = recent(&dir, window)
        && store
            .write_blocking(|c| nodes::claim_video(c, &video, &holder, node))
            .unwrap_or(false);
    if !claimed {
        tracing::info!(
            input = input.uid,
            video,
            "not continuing node {holder}'s video"
        );
        // Too old to continue (its node's restart or recovery closes it), or taken by another
        // node: this copy is not ours to keep.
        let _ = std::fs::remove_dir_all(&dir);
        return None;
    }
    tracing::info!(
        input = input.uid,
        video,
        "continuing the video node {holder} was recording when it died"
    );
    Some(video)
}

/// The newest unfinished video of the input recorded on another node, and that node. This
/// node holds the input's lease (its pipeline is starting), so that node lost it: it died, or
/// was cut off longer than a lease.
fn orphan_of(
    store: &Store,
    input: &str,
    node: &str,
) -> Result<Option<(String, String)>, StoreError> {
    store.read(|c| {
        let mut newest: Option<(videos::Video, String)> = None;
        for video in videos::unfinished(c)? {
            if video.live_input != input {
                continue;
            }
            let Some(holder) = nodes::of_video(c, &video.uid)? else {
                continue;
            };
            if holder != node
                && newest
                    .as_ref()
                    .is_none_or(|(v, _)| video.created > v.created)
            {
                newest = Some((video, holder));
            }
        }
        Ok(newest.map(|(v, holder)| (v.uid, holder)))
    })
}

/// Whether the copy's last segment ended within the reconnect window, widened by one target
/// duration: the copy is up to a segment behind what its node had recorded.
fn recent(dir: &Path, window_seconds: u32) -> bool {
    let Ok(log) = std::fs::read(dir.join(INDEX_LOG)) else {
        return false;
    };
    let mut replay = Replay::new();
    if replay.feed(&log).is_err() {
        return false;
    }
    let index = replay.index();
    let ends = index.tracks.iter().filter_map(|t| {
        let last = t.segments.back()?;
        let ms = last.duration * 1000 / u64::from(t.timescale.max(1));
        Some((last.program_date_time_ms + ms as i64, t.target_duration))
    });
    let Some((end_ms, target)) = ends.max() else {
        return false;
    };
    let allowed_ms = i64::from(window_seconds + target) * 1000;
    now_ms() - end_ms <= allowed_ms
}
