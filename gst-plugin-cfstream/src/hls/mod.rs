//! MPEG-TS segment writing, HLS playlists and recording directories, without GStreamer.
//!
//! A recording directory holds `video.m3u8` (the recording), `live.m3u8` (the live window) and
//! segments named `seg-NNNNNNNN.ts`: the segment's media sequence number, zero-padded to at least
//! eight digits (pattern `seg-[0-9]{8,}\.ts`). Playlists are replaced by renaming hidden
//! temporary files (`.video.m3u8.tmp`, `.live.m3u8.tmp`), which are never served.

pub mod adts;
pub mod live;
pub mod playlist;
pub mod recording;
pub mod ts;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use time::macros::format_description;

pub use recording::{Frame, Recording, RecordingConfig, SegmentAdded};
pub use ts::Streams;

pub const RECORDING_PLAYLIST: &str = "video.m3u8";
pub const LIVE_PLAYLIST: &str = "live.m3u8";

/// The file name of the segment with media sequence number `sequence`.
pub fn segment_uri(sequence: u64) -> String {
    format!("seg-{sequence:08}.ts")
}

/// The media sequence number of a segment file name, if `name` matches the segment pattern.
pub fn segment_sequence(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".ts")?;
    if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What failed: opening/creating a file or directory, or writing/renaming/deleting one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Open,
    Write,
}

/// A file-system error, naming the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("cannot {} {}: {source}", match .access { Access::Open => "open", Access::Write => "write" }, .path.display())]
pub struct Error {
    pub access: Access,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl Error {
    pub fn new(access: Access, path: &Path, source: io::Error) -> Self {
        Error {
            access,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        io::Error::new(e.source.kind(), e.to_string())
    }
}

/// What a finished recording holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingSummary {
    /// Segments listed (with record=false: segments produced).
    pub segments: u64,
    /// Their total duration.
    pub duration: Duration,
    /// Media sequence number of the first listed segment (above 0 once `max-duration` trimmed).
    pub media_sequence: u64,
}

/// The state of a would-be recording directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectoryState {
    /// No recording playlist there.
    Absent,
    /// `video.m3u8` without `EXT-X-ENDLIST`: left by a crash, can be resumed.
    Unfinished,
    Finished,
}

/// Reads the end of `dir/video.m3u8` to tell whether it is finished.
pub fn directory_state(dir: &Path) -> io::Result<DirectoryState> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match fs::File::open(dir.join(RECORDING_PLAYLIST)) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DirectoryState::Absent),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(64)))?;
    let mut tail = String::new();
    file.read_to_string(&mut tail)?;
    Ok(if tail.trim_end().ends_with("#EXT-X-ENDLIST") {
        DirectoryState::Finished
    } else {
        DirectoryState::Unfinished
    })
}

/// Closes a recording left unfinished (e.g. by a crash): `video.m3u8` gets `EXT-X-ENDLIST` (and
/// type VOD unless `max-duration` trimmed it), `live.m3u8` gets `EXT-X-ENDLIST`, segment files
/// that were written but never listed are deleted. Finishing a finished recording changes
/// nothing. A directory without `video.m3u8` (record=false) only has its `live.m3u8` ended.
pub fn finish_recording_dir(dir: &Path) -> io::Result<RecordingSummary> {
    let finish = playlist::RewriteOptions {
        finish: true,
        ..Default::default()
    };
    let live = dir.join(LIVE_PLAYLIST);
    let recording = dir.join(RECORDING_PLAYLIST);
    let main = if recording.exists() {
        &recording
    } else {
        &live
    };
    let summary = recording::rewrite_in_place(main, finish)?;
    if main == &recording && live.exists() {
        recording::rewrite_in_place(&live, finish)?;
    }
    recording::remove_unlisted_segments(dir, summary.header.media_sequence + summary.kept)?;
    Ok(RecordingSummary {
        segments: summary.kept,
        duration: Duration::from_nanos(summary.kept_ns),
        media_sequence: summary.header.media_sequence,
    })
}

/// The default recording name: the UTC start time as `YYYYMMDDTHHMMSSZ`.
pub fn default_recording_name(start: SystemTime) -> String {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    OffsetDateTime::from(start)
        .format(&format)
        .unwrap_or_else(|_| "recording".into())
}

/// `EXT-X-PROGRAM-DATE-TIME` value: UTC with milliseconds.
pub fn format_program_date_time(time: SystemTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from(time)
        .format(&format)
        .unwrap_or_default()
}

/// Whether `name` can name a recording directory: one plain path component.
pub fn is_valid_recording_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_uri(7), "seg-00000007.ts");
        assert_eq!(segment_uri(123_456_789), "seg-123456789.ts");
        assert_eq!(segment_sequence("seg-00000007.ts"), Some(7));
        assert_eq!(segment_sequence("seg-123456789.ts"), Some(123_456_789));
        assert_eq!(segment_sequence("seg-7.ts"), None);
        assert_eq!(segment_sequence(".video.m3u8.tmp"), None);
    }

    #[test]
    fn names() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(default_recording_name(t), "20231114T221320Z");
        assert_eq!(format_program_date_time(t), "2023-11-14T22:13:20.123Z");
        assert!(is_valid_recording_name("abc123"));
        for bad in ["", ".", "..", "a/b", ".hidden"] {
            assert!(!is_valid_recording_name(bad), "{bad:?}");
        }
    }
}
