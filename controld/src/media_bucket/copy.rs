//! Copying one recording directory to the bucket, in an order that keeps the bucket's copy
//! playable at every moment: the files a record of `index.log` names are uploaded before the
//! log bytes holding that record, so a node that fetches the copy mid-way (its writer died)
//! finds every listed segment. Only what the log lists is copied: a segment still being written
//! is not listed yet, and one that `max-duration` trimmed is no longer listed.

use std::collections::HashSet;
use std::io;
use std::path::Path;

use cfstream_proto::index::log::Replay;
use cfstream_proto::index::{RecordingIndex, init_name, segment_name};
use cfstream_storage::{Storage, StorageRead};

use super::INDEX_LOG;

/// What a recording's copy holds, as far as this process uploaded or listed it.
#[derive(Debug, Default)]
pub struct Copied {
    /// Media files in the bucket (names inside the recording).
    pub files: HashSet<String>,
    /// Bytes of `index.log` in the bucket.
    pub log_len: usize,
}

/// What one pass uploaded.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub objects: u64,
    pub bytes: u64,
}

/// The bucket side of a copy: the storage and the recording's prefix (`input/video`).
pub struct Target<'a, S: Storage + StorageRead + ?Sized> {
    pub storage: &'a S,
    pub prefix: &'a str,
}

impl<S: Storage + StorageRead + ?Sized> Target<'_, S> {
    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// What the bucket's copy lists already (a first pass in this process: an earlier one may
    /// have copied part of it). Files its log does not list do not count: a node that died
    /// between uploading a segment and the record naming it left a file that this recording,
    /// resumed, writes again with other bytes. The log is uploaded whole again.
    pub fn listed(&self) -> io::Result<Copied> {
        let log = match self.storage.read(&self.key(INDEX_LOG)) {
            Ok(log) => log,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Copied::default()),
            Err(e) => return Err(e),
        };
        let mut replay = Replay::new();
        replay
            .feed(&log)
            .map_err(|e| invalid(&self.key(INDEX_LOG), e))?;
        Ok(Copied {
            files: listed_files(replay.index()),
            log_len: 0,
        })
    }

    /// Uploads what `dir` lists and the bucket lacks, then the log. `finished`: the log is
    /// uploaded as one object (no chunks left for readers to join) and the copy's files that
    /// the log no longer lists are removed.
    pub fn copy(&self, dir: &Path, copied: &mut Copied, finished: bool) -> io::Result<Pass> {
        let mut pass = Pass::default();
        let log = match std::fs::read(dir.join(INDEX_LOG)) {
            Ok(log) => log,
            // Nothing listed yet, or a recording removed meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(pass),
            Err(e) => return Err(named(dir, INDEX_LOG, e)),
        };
        let mut replay = Replay::new();
        let complete = replay
            .feed(&log)
            .map_err(|e| invalid(&dir.join(INDEX_LOG).display().to_string(), e))?;
        let log = &log[..complete];
        let listed = listed_files(replay.index());
        for name in &listed {
            if copied.files.contains(name) {
                continue;
            }
            let data = std::fs::read(dir.join(name)).map_err(|e| named(dir, name, e))?;
            self.storage.replace(&self.key(name), &data)?;
            copied.files.insert(name.clone());
            pass.objects += 1;
            pass.bytes += data.len() as u64;
        }
        let key = self.key(INDEX_LOG);
        if finished || copied.log_len == 0 || copied.log_len > log.len() {
            self.storage.replace(&key, log)?;
            pass.bytes += log.len() as u64;
        } else if copied.log_len < log.len() {
            self.storage.append(&key, &log[copied.log_len..])?;
            self.storage.seal(&key)?;
            pass.bytes += (log.len() - copied.log_len) as u64;
        }
        pass.objects += u64::from(copied.log_len != log.len() || finished);
        copied.log_len = log.len();
        if finished {
            self.remove_unlisted(&listed)?;
            copied.files = listed;
        }
        Ok(pass)
    }

    /// Removes the copy's files that the finished log does not list: trimmed segments, and
    /// any a node that died left behind.
    fn remove_unlisted(&self, listed: &HashSet<String>) -> io::Result<()> {
        let inside = format!("{}/", self.prefix);
        for key in self.storage.list_prefix(&inside)? {
            let name = key.strip_prefix(&inside).unwrap_or(&key);
            if name != INDEX_LOG && !listed.contains(name) {
                self.storage.delete(&key)?;
            }
        }
        Ok(())
    }
}

/// The init and media segments the index lists.
fn listed_files(index: &RecordingIndex) -> HashSet<String> {
    let mut files = HashSet::new();
    for track in &index.tracks {
        for segment in &track.segments {
            files.insert(segment_name(track.kind, segment.sequence));
            files.insert(init_name(track.kind, segment.discontinuity_number));
        }
    }
    files
}

fn invalid(log: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{log}: {e}"))
}

fn named(dir: &Path, name: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", dir.join(name).display()))
}

#[cfg(test)]
mod tests {
    use cfstream_storage::LocalDir;

    use super::*;

    const HEAD: &str = "cfstream-index 1\ntrack kind=v timescale=90000 part_target=45000\n\
                        target seconds=4\ninit kind=v dn=0\n";

    const MEDIA: [&str; 3] = [
        "init-00000000.v.mp4",
        "seg-00000000.v.m4s",
        "seg-00000001.v.m4s",
    ];

    /// A recording directory and a directory standing in for the bucket (the same interface).
    struct Fixture {
        recording: tempfile::TempDir,
        bucket: LocalDir,
        _bucket_dir: tempfile::TempDir,
    }

    impl Fixture {
        /// With the init segment and segments 0 and 1 holding `media`.
        fn new(media: &str) -> Fixture {
            let bucket_dir = tempfile::tempdir().unwrap();
            let fixture = Fixture {
                recording: tempfile::tempdir().unwrap(),
                bucket: LocalDir::open(bucket_dir.path()).unwrap(),
                _bucket_dir: bucket_dir,
            };
            for name in MEDIA {
                fixture.write(name, media);
            }
            fixture
        }

        fn target(&self) -> Target<'_, LocalDir> {
            Target {
                storage: &self.bucket,
                prefix: "in/vid",
            }
        }

        fn write(&self, name: &str, data: &str) {
            std::fs::write(self.recording.path().join(name), data).unwrap();
        }
    }

    fn seg(seq: u64) -> String {
        let t = seq * 360_000;
        format!("seg kind=v seq={seq} t={t} d=360000 pdt=1764705000123 disc=0 dn=0 size=4\n")
    }

    #[test]
    fn copies_what_the_log_lists_before_the_log_and_tidies_up_when_finished() {
        let fixture = Fixture::new("data");
        let (target, bucket, dir) = (fixture.target(), &fixture.bucket, fixture.recording.path());
        // Segment 1 is being written (not listed), and the last record is torn.
        let log = format!("{HEAD}{}seg kind=v seq=1", seg(0));
        fixture.write(INDEX_LOG, &log);
        let mut copied = target.listed().unwrap();
        let pass = target.copy(dir, &mut copied, false).unwrap();
        let whole = format!("{HEAD}{}", seg(0));
        assert_eq!(pass.objects, 3);
        assert_eq!(
            bucket.list().unwrap(),
            [
                "in/vid/index.log",
                "in/vid/init-00000000.v.mp4",
                "in/vid/seg-00000000.v.m4s"
            ]
        );
        assert_eq!(bucket.read("in/vid/index.log").unwrap(), whole.as_bytes());

        // Nothing new: nothing uploaded.
        let pass = target.copy(dir, &mut copied, false).unwrap();
        assert_eq!(pass, Pass::default());

        // Segment 1 listed, segment 0 trimmed, then the end: the log is appended to, and once
        // finished uploaded whole, and segment 0's copy removed.
        let log = format!("{whole}{}trim seq=1\n", seg(1));
        fixture.write(INDEX_LOG, &log);
        target.copy(dir, &mut copied, false).unwrap();
        assert_eq!(bucket.read("in/vid/index.log").unwrap(), log.as_bytes());
        let log = format!("{log}end\n");
        fixture.write(INDEX_LOG, &log);
        target.copy(dir, &mut copied, true).unwrap();
        assert_eq!(
            bucket.list().unwrap(),
            [
                "in/vid/index.log",
                "in/vid/init-00000000.v.mp4",
                "in/vid/seg-00000001.v.m4s"
            ]
        );
        assert_eq!(bucket.read("in/vid/index.log").unwrap(), log.as_bytes());

        // A process that starts again lists the copy and uploads only the log.
        let mut copied = target.listed().unwrap();
        let pass = target.copy(dir, &mut copied, true).unwrap();
        assert_eq!(pass.objects, 1);
    }

    #[test]
    fn a_file_the_copy_does_not_list_is_uploaded_again() {
        let fixture = Fixture::new("anew");
        let (target, bucket, dir) = (fixture.target(), &fixture.bucket, fixture.recording.path());
        // A node died after uploading segment 1 and before the record naming it.
        bucket
            .replace("in/vid/index.log", format!("{HEAD}{}", seg(0)).as_bytes())
            .unwrap();
        bucket
            .replace("in/vid/seg-00000001.v.m4s", b"stale")
            .unwrap();
        fixture.write(INDEX_LOG, &format!("{HEAD}{}{}", seg(0), seg(1)));
        let mut copied = target.listed().unwrap();
        assert_eq!(copied.files.len(), 2, "{:?}", copied.files);
        target.copy(dir, &mut copied, false).unwrap();
        assert_eq!(bucket.read("in/vid/seg-00000001.v.m4s").unwrap(), b"anew");
    }
}
