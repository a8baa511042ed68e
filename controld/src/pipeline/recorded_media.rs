//! What a recording holds, for video objects (`input {width, height}`, `size`): the video's
//! frame size (the SPS's, as the index logs it) and its bytes. Measured once when the recording
//! is finished and stored with its video row, so that listing videos replays no index; a
//! recording being written is read from the writer's in-memory index (its listed media so far).

use std::io;
use std::path::{Path, PathBuf};

use cfstream_proto::index::RecordingIndex;
use cfstream_proto::index::log::Replay;
use gstcfstream::hls::live;

use super::INDEX_LOG;
use crate::store::videos::RecordedMedia;

/// A finished recording in `dir`: its index's frame size and the bytes of every file in it.
/// A directory without `index.log` is an empty recording.
pub fn measure(dir: &Path) -> io::Result<RecordedMedia> {
    let bytes = match std::fs::read(dir.join(INDEX_LOG)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(RecordedMedia::default()),
        Err(e) => return Err(e),
    };
    let mut replay = Replay::new();
    replay
        .feed(&bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let mut size = 0;
    for entry in std::fs::read_dir(dir)? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            size += meta.len();
        }
    }
    let stream = &replay.index().stream;
    Ok(RecordedMedia {
        width: stream.width,
        height: stream.height,
        size,
    })
}

/// `measure` off the async threads; `None` (logged) when the directory cannot be read.
pub async fn measure_finished(dir: PathBuf) -> Option<RecordedMedia> {
    let shown = dir.display().to_string();
    match tokio::task::spawn_blocking(move || measure(&dir)).await {
        Ok(Ok(media)) => Some(media),
        Ok(Err(e)) => {
            tracing::warn!("measuring recording {shown}: {e}");
            None
        }
        Err(e) => {
            tracing::warn!("measuring recording {shown}: {e}");
            None
        }
    }
}

/// A recording being written in `dir`, as far as it is listed; `None` when no writer has it.
pub fn live(dir: &Path) -> Option<RecordedMedia> {
    live::lookup(dir).map(|recording| recording.read(listed))
}

fn listed(index: &RecordingIndex) -> RecordedMedia {
    let segments = index.tracks.iter().flat_map(|t| t.segments.iter());
    let parts = index.tracks.iter().filter_map(|t| t.open.as_ref());
    RecordedMedia {
        width: index.stream.width,
        height: index.stream.height,
        size: segments.map(|s| s.size).sum::<u64>()
            + parts.map(|o| o.next_part_offset()).sum::<u64>(),
    }
}
