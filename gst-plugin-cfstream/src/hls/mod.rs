//! Recording directories (CMAF segments written by [`recording::Recording`], listed by
//! `index.log`), the in-process live index the server reads, and the MPEG-TS muxer that
//! outputs (SRT) still use.
//!
//! A recording directory holds `init-NNNNNNNN.{v,a}.mp4` (one init segment per track and
//! discontinuity run), `seg-NNNNNNNN.{v,a}.m4s` (media segment N of each track, one GOP, growing
//! part by part) and `index.log` ([`cfstream_proto::index::log`]). There are no playlists on
//! disk: the server renders HLS and DASH from the index.

pub mod adts;
pub mod live;
pub mod recording;
pub mod ts;

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use cfstream_proto::index::log::{self, Record, Replay};
use cfstream_proto::index::{RecordingIndex, parse_media_name};
use time::OffsetDateTime;
use time::macros::format_description;

pub use recording::{Frame, Notice, Recording, RecordingConfig, SegmentAdded};

/// The file a recording's index is appended to.
pub const INDEX_LOG: &str = "index.log";
/// The recording playlist of the MPEG-TS recordings of earlier versions: a directory holding
/// it is never written to.
pub const LEGACY_PLAYLIST: &str = "video.m3u8";

/// What a finished recording holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingSummary {
    /// Segments listed (of the main track: video, or audio alone).
    pub segments: u64,
    /// Their total duration.
    pub duration: Duration,
    /// Media sequence number of the first listed segment (above 0 once `max-duration` trimmed).
    pub media_sequence: u64,
}

/// The state of a would-be recording directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectoryState {
    /// No recording there.
    Absent,
    /// `index.log` without `end`: left by a crash, can be resumed.
    Unfinished,
    /// `index.log` ends with `end` (or an MPEG-TS recording of an earlier version).
    Finished,
}

/// Reads the end of `dir/index.log` to tell whether the recording there is finished.
pub fn directory_state(dir: &Path) -> io::Result<DirectoryState> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match std::fs::File::open(dir.join(INDEX_LOG)) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(if dir.join(LEGACY_PLAYLIST).exists() {
                DirectoryState::Finished
            } else {
                DirectoryState::Absent
            });
        }
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(16)))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    Ok(if tail.ends_with(b"\nend\n") {
        DirectoryState::Finished
    } else {
        DirectoryState::Unfinished
    })
}

/// Closes a recording left unfinished (e.g. by a crash): a torn last record is cut off, `end`
/// appended, media files the index does not list deleted. Finishing a finished recording
/// changes nothing; a directory without `index.log` has nothing to finish.
pub fn finish_recording_dir(dir: &Path) -> io::Result<RecordingSummary> {
    let path = dir.join(INDEX_LOG);
    let named = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(summary(&Replay::new().into_index()));
        }
        Err(e) => return Err(io::Error::new(e.kind(), named(&e))),
    };
    let mut replay = Replay::new();
    let consumed =
        (replay.feed(&bytes)).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, named(&e)))?;
    if !replay.finished() {
        let mut text = String::from_utf8_lossy(&bytes[..consumed]).into_owned();
        if consumed == 0 {
            log::encode(&Record::Header, &mut text);
        }
        log::encode(&Record::End, &mut text);
        let temp = dir.join(format!(".{INDEX_LOG}.tmp"));
        std::fs::write(&temp, text).map_err(|e| io::Error::new(e.kind(), named(&e)))?;
        std::fs::rename(&temp, &path).map_err(|e| io::Error::new(e.kind(), named(&e)))?;
        let _ = replay.apply(Record::End);
    }
    let index = replay.into_index();
    remove_unlisted_segments(dir, &index)?;
    Ok(summary(&index))
}

/// Deletes the segment files of `dir` that `index` does not list.
fn remove_unlisted_segments(dir: &Path, index: &RecordingIndex) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some((kind, false, sequence)) = name.to_str().and_then(parse_media_name) else {
            continue;
        };
        let listed = index.track(kind).is_some_and(|t| {
            let first = t.segments.front().map_or(u64::MAX, |s| s.sequence);
            let last = t.segments.back().map_or(0, |s| s.sequence);
            (first..=last).contains(&sequence)
        });
        if !listed {
            match std::fs::remove_file(dir.join(&name)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

fn summary(index: &RecordingIndex) -> RecordingSummary {
    let Some(main) = index.tracks.iter().find(|t| !t.segments.is_empty()) else {
        return RecordingSummary {
            segments: 0,
            duration: Duration::ZERO,
            media_sequence: 0,
        };
    };
    let ticks = main.listed_duration();
    RecordingSummary {
        segments: main.segments.len() as u64,
        duration: Duration::from_nanos(
            (u128::from(ticks) * 1_000_000_000 / u128::from(main.timescale)) as u64,
        ),
        media_sequence: main.media_sequence(),
    }
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
    fn names() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(default_recording_name(t), "20231114T221320Z");
        assert_eq!(format_program_date_time(t), "2023-11-14T22:13:20.123Z");
        assert!(is_valid_recording_name("abc123"));
        for bad in ["", ".", "..", "a/b", ".hidden"] {
            assert!(!is_valid_recording_name(bad), "{bad:?}");
        }
    }

    fn recording_dir(log: &str, files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(INDEX_LOG), log).unwrap();
        for name in files {
            std::fs::write(dir.path().join(name), b"media").unwrap();
        }
        dir
    }

    const LOG: &str = "cfstream-index 1\n\
        track kind=v timescale=90000 part_target=45000\n\
        target seconds=4\n\
        init kind=v dn=0\n\
        seg kind=v seq=0 t=0 d=360000 pdt=1 disc=0 dn=0 size=5\n\
        seg kind=v seq=1 t=360000 d=180000 pdt=2 disc=0 dn=0 size=5\n\
        seg kind=v seq=2 t=540";

    #[test]
    fn finishing_cuts_the_torn_record_ends_the_log_and_deletes_unlisted_segments() {
        let files = [
            "init-00000000.v.mp4",
            "seg-00000000.v.m4s",
            "seg-00000001.v.m4s",
            "seg-00000002.v.m4s",
        ];
        let dir = recording_dir(LOG, &files);
        assert_eq!(
            directory_state(dir.path()).unwrap(),
            DirectoryState::Unfinished
        );
        let summary = finish_recording_dir(dir.path()).unwrap();
        assert_eq!(
            summary,
            RecordingSummary {
                segments: 2,
                duration: Duration::from_secs(6),
                media_sequence: 0
            }
        );
        assert_eq!(
            directory_state(dir.path()).unwrap(),
            DirectoryState::Finished
        );
        let log = std::fs::read_to_string(dir.path().join(INDEX_LOG)).unwrap();
        assert!(log.ends_with("size=5\nend\n"), "{log}");
        assert!(!dir.path().join("seg-00000002.v.m4s").exists());
        assert!(dir.path().join("seg-00000001.v.m4s").exists());
        // Idempotent.
        assert_eq!(finish_recording_dir(dir.path()).unwrap(), summary);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(INDEX_LOG)).unwrap(),
            log
        );
    }

    #[test]
    fn directory_states() {
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            directory_state(empty.path()).unwrap(),
            DirectoryState::Absent
        );
        std::fs::write(empty.path().join(LEGACY_PLAYLIST), "#EXTM3U\n").unwrap();
        assert_eq!(
            directory_state(empty.path()).unwrap(),
            DirectoryState::Finished
        );
        let garbage = recording_dir("not an index\n", &[]);
        let error = finish_recording_dir(garbage.path()).unwrap_err();
        assert!(error.to_string().contains("index.log"), "{error}");
    }
}
