//! Files in the media directory that nothing will serve again, removed by the retention sweep:
//! media files (`init-*.mp4`, `seg-*.m4s`) a finished recording's `index.log` does not list
//! (cfhlssink deletes them itself, unless the process exits first), and what an input deleted
//! while files remained left behind besides its recordings (those are videos, kept until deleted).
//!
//! Only what has been left untouched for [`GRACE`] is removed: longer than any live window a
//! client may still be playing, and than the pause of a recording between reconnects.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use cfstream_proto::index::log::Replay;
use cfstream_proto::index::{RecordingIndex, init_name, parse_media_name, segment_name};

use crate::pipeline::INDEX_LOG;

/// How long files must have been left alone before they count as left over.
pub const GRACE: Duration = Duration::from_secs(10 * 60);

/// The rows that own directories: live input uids and video uids.
pub struct Owners {
    pub inputs: HashSet<String>,
    pub videos: HashSet<String>,
}

/// Removes the leftovers under `media_dir` (`<input>/<video>/…`) last changed before `cutoff`;
/// returns how many files and directories went.
pub fn remove(media_dir: &Path, owners: &Owners, cutoff: SystemTime) -> io::Result<usize> {
    let mut removed = 0;
    for input_dir in subdirectories(media_dir)? {
        let input_gone = !owners.inputs.contains(&file_name(&input_dir));
        for entry in fs::read_dir(&input_dir)?.flatten() {
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && owners.videos.contains(&file_name(&path)) {
                removed += remove_unlisted_media(&path, cutoff)?;
            } else if input_gone && changed_before(&path, cutoff) {
                match is_dir {
                    true => fs::remove_dir_all(&path)?,
                    false => fs::remove_file(&path)?,
                }
                removed += 1;
            }
        }
        // Only once empty: the recordings of a deleted input stay.
        if input_gone && fs::remove_dir(&input_dir).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// In a recording finished before `cutoff`, the media files its `index.log` does not list.
/// Whether it is finished is read from the same replay as what it lists (its `end` record),
/// so both answers come from one reading of a file that may still be appended to.
fn remove_unlisted_media(dir: &Path, cutoff: SystemTime) -> io::Result<usize> {
    let log = dir.join(INDEX_LOG);
    if !changed_before(&log, cutoff) {
        return Ok(0);
    }
    let bytes = match fs::read(&log) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        bytes => bytes?,
    };
    let mut replay = Replay::new();
    if let Err(e) = replay.feed(&bytes) {
        // What such a log lists is unknown: nothing is unlisted for sure.
        tracing::warn!("{}: {e}; its media files are kept", log.display());
        return Ok(0);
    }
    if !replay.finished() {
        return Ok(0);
    }
    let listed = listed_media(replay.index());
    let mut removed = 0;
    for entry in fs::read_dir(dir)?.flatten() {
        let name = file_name(&entry.path());
        if parse_media_name(&name).is_some() && !listed.contains(&name) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The file names of every segment an index lists and of the init segments they need.
fn listed_media(index: &RecordingIndex) -> HashSet<String> {
    let mut names = HashSet::new();
    for track in &index.tracks {
        for segment in &track.segments {
            names.insert(segment_name(track.kind, segment.sequence));
            names.insert(init_name(track.kind, segment.discontinuity_number));
        }
    }
    names
}

fn subdirectories(dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        entries => entries?,
    };
    let dirs = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()));
    Ok(dirs.map(|e| e.path()).collect())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether `path` (a directory: its entries too, one level) was last changed before `cutoff`.
fn changed_before(path: &Path, cutoff: SystemTime) -> bool {
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut times = vec![modified(path)];
    if path.is_dir() {
        let entries = fs::read_dir(path).into_iter().flatten().flatten();
        times.extend(entries.map(|e| modified(&e.path())));
    }
    times.into_iter().all(|t| t.is_some_and(|t| t < cutoff))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfstream_proto::index::log::{Record, encode};
    use cfstream_proto::index::{Segment, TrackKind};

    fn write(path: &Path, bytes: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    /// The `index.log` of a finished recording whose segments `first..=last` (4 s each, both
    /// tracks, one discontinuity run) were written and those before `trim` dropped.
    fn finished_log(first: u64, last: u64, trim: u64) -> String {
        let mut log = String::new();
        let segment = |sequence| Segment {
            sequence,
            decode_time: sequence * 360_000,
            duration: 360_000,
            program_date_time_ms: 1_796_223_600_000,
            discontinuity: false,
            discontinuity_number: 0,
            size: 1000,
            parts: Vec::new(),
        };
        let mut records = vec![Record::Header];
        for kind in [TrackKind::Video, TrackKind::Audio] {
            records.push(Record::Track {
                kind,
                timescale: 90_000,
                part_target: 90_000,
            });
            records.push(Record::Init {
                kind,
                discontinuity_number: 0,
            });
        }
        records.push(Record::Target { seconds: 4 });
        for sequence in first..=last {
            for kind in [TrackKind::Video, TrackKind::Audio] {
                let segment = segment(sequence);
                records.push(Record::Segment { kind, segment });
            }
        }
        records.push(Record::Trim {
            first_sequence: trim,
        });
        records.push(Record::End);
        for record in &records {
            encode(record, &mut log);
        }
        log
    }

    fn video(sequence: u64) -> String {
        segment_name(TrackKind::Video, sequence)
    }

    #[test]
    fn leftovers_go_after_the_grace_and_recordings_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let media = tmp.path();
        // A finished recording trimmed by max-duration, with files it no longer lists: the
        // trimmed head (3, 4), a segment past the last record (7) and the init segment of a
        // run no listed segment belongs to.
        let trimmed = media.join("input").join("video");
        write(&trimmed.join(INDEX_LOG), finished_log(3, 6, 5).as_bytes());
        for n in [3, 4, 5, 6, 7] {
            write(&trimmed.join(video(n)), b"m4s");
        }
        write(&trimmed.join(segment_name(TrackKind::Audio, 3)), b"m4s");
        write(&trimmed.join(segment_name(TrackKind::Audio, 5)), b"m4s");
        for init in [
            init_name(TrackKind::Video, 0),
            init_name(TrackKind::Video, 1),
        ] {
            write(&trimmed.join(init), b"mp4");
        }
        // Not a media file: not ours to judge.
        write(&trimmed.join("notes.txt"), b"x");
        // A directory of an existing input that no row names: not ours to judge.
        write(&media.join("input").join("other").join(video(0)), b"m4s");
        // A deleted input: its recording (a video) stays, the rest goes.
        let kept = media.join("deleted").join("kept-video");
        write(&kept.join(INDEX_LOG), finished_log(5, 5, 0).as_bytes());
        write(&kept.join(video(5)), b"m4s");
        write(&media.join("deleted").join("orphan").join(video(0)), b"m4s");
        write(&media.join("deleted").join("stray"), b"x");
        write(&media.join("gone").join("orphan").join(video(0)), b"m4s");
        let owners = Owners {
            inputs: ["input".to_string()].into(),
            videos: ["video".to_string(), "kept-video".to_string()].into(),
        };

        // Within the grace nothing goes.
        let an_hour = Duration::from_secs(3600);
        let recently = SystemTime::now() - an_hour;
        assert_eq!(remove(media, &owners, recently).unwrap(), 0);
        assert!(trimmed.join(video(3)).exists());

        let later = SystemTime::now() + an_hour;
        assert_eq!(remove(media, &owners, later).unwrap(), 5 + 2 + 2);
        let left = |n| trimmed.join(video(n)).exists();
        assert_eq!([3, 4, 5, 6, 7].map(left), [false, false, true, true, false]);
        assert!(!trimmed.join(segment_name(TrackKind::Audio, 3)).exists());
        assert!(trimmed.join(segment_name(TrackKind::Audio, 5)).exists());
        assert!(trimmed.join(init_name(TrackKind::Video, 0)).exists());
        assert!(!trimmed.join(init_name(TrackKind::Video, 1)).exists());
        assert!(trimmed.join("notes.txt").exists());
        assert!(trimmed.join(INDEX_LOG).exists());
        assert!(media.join("input").join("other").exists());
        assert!(kept.join(video(5)).exists());
        assert!(!media.join("deleted").join("orphan").exists());
        assert!(!media.join("deleted").join("stray").exists());
        assert!(
            !media.join("gone").exists(),
            "an emptied input directory goes"
        );
        assert_eq!(remove(media, &owners, later).unwrap(), 0);
    }

    #[test]
    fn unfinished_or_unreadable_recordings_keep_their_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("input").join("video");
        let finished = finished_log(0, 1, 0);
        let unfinished = finished.strip_suffix("end\n").unwrap();
        write(&dir.join(video(5)), b"m4s");
        let owners = Owners {
            inputs: ["input".to_string()].into(),
            videos: ["video".to_string()].into(),
        };
        let later = SystemTime::now() + Duration::from_secs(3600);
        for log in [unfinished, "not an index\n", ""] {
            write(&dir.join(INDEX_LOG), log.as_bytes());
            assert_eq!(remove(tmp.path(), &owners, later).unwrap(), 0, "{log:?}");
            assert!(dir.join(video(5)).exists());
        }
        // A torn `end` (no newline yet) does not finish it either.
        write(&dir.join(INDEX_LOG), format!("{unfinished}end").as_bytes());
        assert_eq!(remove(tmp.path(), &owners, later).unwrap(), 0);
        fs::remove_file(dir.join(INDEX_LOG)).unwrap();
        assert_eq!(remove(tmp.path(), &owners, later).unwrap(), 0);
        assert!(dir.join(video(5)).exists());
    }
}
