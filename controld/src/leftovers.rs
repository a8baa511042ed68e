//! Files in the media directory that nothing will serve again, removed by the retention sweep:
//! segment files a finished recording's `video.m3u8` does not list (cfhlssink deletes them
//! itself after its grace, unless the process exits first), and what an input deleted while
//! files remained left behind besides its recordings (those are videos, kept until deleted).
//!
//! Only what has been left untouched for [`GRACE`] is removed: longer than any live window a
//! client may still be playing, and than the pause of a recording between reconnects.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use gstcfstream::hls::{self, DirectoryState, RECORDING_PLAYLIST};

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
                removed += remove_unlisted_segments(&path, cutoff)?;
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

/// In a recording finished before `cutoff`, the segment files `video.m3u8` does not list.
fn remove_unlisted_segments(dir: &Path, cutoff: SystemTime) -> io::Result<usize> {
    let playlist = dir.join(RECORDING_PLAYLIST);
    if hls::directory_state(dir)? != DirectoryState::Finished || !changed_before(&playlist, cutoff)
    {
        return Ok(0);
    }
    let text = fs::read_to_string(&playlist)?;
    let listed: HashSet<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let mut removed = 0;
    for entry in fs::read_dir(dir)?.flatten() {
        let name = file_name(&entry.path());
        if hls::segment_sequence(&name).is_some() && !listed.contains(name.as_str()) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
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

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    const FINISHED: &str = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:5\n#EXTINF:4.000,\nseg-00000005.ts\n\
                            #EXTINF:4.000,\nseg-00000006.ts\n#EXT-X-ENDLIST\n";

    #[test]
    fn leftovers_go_after_the_grace_and_recordings_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let media = tmp.path();
        // A finished recording trimmed by max-duration, with files it no longer lists.
        let trimmed = media.join("input").join("video");
        write(&trimmed.join(RECORDING_PLAYLIST), FINISHED);
        for n in [3, 4, 5, 6] {
            write(&trimmed.join(hls::segment_uri(n)), "ts");
        }
        write(&trimmed.join("live.m3u8"), "#EXTM3U\n");
        // A directory of an existing input that no row names: not ours to judge.
        write(
            &media.join("input").join("other").join("seg-00000000.ts"),
            "ts",
        );
        // A deleted input: its recording (a video) stays, the rest goes.
        let kept = media.join("deleted").join("kept-video");
        write(&kept.join(RECORDING_PLAYLIST), FINISHED);
        write(&kept.join(hls::segment_uri(5)), "ts");
        write(
            &media.join("deleted").join("orphan").join("seg-00000000.ts"),
            "ts",
        );
        write(&media.join("deleted").join("stray"), "x");
        write(
            &media.join("gone").join("orphan").join("seg-00000000.ts"),
            "ts",
        );
        let owners = Owners {
            inputs: ["input".to_string()].into(),
            videos: ["video".to_string(), "kept-video".to_string()].into(),
        };

        // Within the grace nothing goes.
        let an_hour = Duration::from_secs(3600);
        let recently = SystemTime::now() - an_hour;
        assert_eq!(remove(media, &owners, recently).unwrap(), 0);
        assert!(trimmed.join(hls::segment_uri(3)).exists());

        let later = SystemTime::now() + an_hour;
        assert_eq!(remove(media, &owners, later).unwrap(), 2 + 2 + 2);
        let left = |n| trimmed.join(hls::segment_uri(n)).exists();
        assert_eq!([3, 4, 5, 6].map(left), [false, false, true, true]);
        assert!(trimmed.join("live.m3u8").exists());
        assert!(media.join("input").join("other").exists());
        assert!(kept.join(hls::segment_uri(5)).exists());
        assert!(!media.join("deleted").join("orphan").exists());
        assert!(!media.join("deleted").join("stray").exists());
        assert!(
            !media.join("gone").exists(),
            "an emptied input directory goes"
        );
        assert_eq!(remove(media, &owners, later).unwrap(), 0);
    }
}
