//! Watches the live playlists the connections' streams produce, with one inotify instance on the
//! load generator's single thread (no thread, no polling), and logs when each segment is first
//! listed.
//!
//! Connection n's entry (a line of `--playlists`) is either a playlist file (`….m3u8`) or a
//! directory: then every `live.m3u8` that appears in it or in a subdirectory created after the
//! start belongs to connection n (controld: `<data-dir>/media/<input uid>`, under which
//! cfhlssink makes one directory per broadcast). Missing directories are waited for: the nearest
//! existing ancestor is watched until they appear. Playlists are written by renaming a temporary
//! file over them (`IN_MOVED_TO`) or in place (`IN_CLOSE_WRITE`); both count as an update.
//! Playlists that already existed at the start count only from their next update.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::StreamExt;
use inotify::{EventMask, EventStream, Inotify, WatchDescriptor, WatchMask, Watches};
use tokio::time::sleep_until;

use crate::latency::{self, SegmentLog};

/// The playlist file name looked for under a directory entry (cfhlssink's live window).
pub const LIVE_PLAYLIST: &str = "live.m3u8";

const MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::CLOSE_WRITE);

pub struct Watcher {
    events: EventStream<Vec<u8>>,
    watches: Watches,
    dirs: HashMap<WatchDescriptor, PathBuf>,
    watched: HashSet<PathBuf>,
    /// Connection of each entry: a playlist file or a directory.
    roots: HashMap<PathBuf, usize>,
    /// Proper ancestors of the entries: watched on the way to them.
    on_the_way: HashSet<PathBuf>,
    /// Per connection: the segment log of each playlist file seen.
    pub logs: Vec<BTreeMap<PathBuf, SegmentLog>>,
    pub overflows: u64,
    /// Errors after the start (a watch that could not be added, a failed read of the events).
    pub errors: Vec<String>,
}

impl Watcher {
    /// Watches `entries` (connection n = entry n); relative paths are taken from the current
    /// directory. Must run inside the tokio runtime.
    pub fn new(entries: &[PathBuf]) -> io::Result<Watcher> {
        let cwd = std::env::current_dir()?;
        let events = Inotify::init()?.into_event_stream(vec![0; 64 * 1024])?;
        let watches = events.watches();
        let mut watcher = Watcher {
            events,
            watches,
            dirs: HashMap::new(),
            watched: HashSet::new(),
            roots: HashMap::new(),
            on_the_way: HashSet::new(),
            logs: vec![BTreeMap::new(); entries.len()],
            overflows: 0,
            errors: vec![],
        };
        let entries: Vec<PathBuf> = entries.iter().map(|e| cwd.join(e)).collect();
        for (n, entry) in entries.iter().enumerate() {
            if watcher.roots.insert(entry.clone(), n).is_some() {
                return Err(io::Error::other(format!(
                    "{} is listed for two connections",
                    entry.display()
                )));
            }
            watcher
                .on_the_way
                .extend(entry.ancestors().skip(1).map(Path::to_path_buf));
        }
        for entry in &entries {
            let start = if is_playlist_file(entry) {
                entry.parent().unwrap_or(entry)
            } else {
                entry
            };
            let existing = start
                .ancestors()
                .find(|dir| dir.is_dir())
                .ok_or_else(|| io::Error::other(format!("{}: no directory", entry.display())))?;
            watcher.add_dir(existing.to_path_buf(), false, Instant::now())?;
        }
        Ok(watcher)
    }

    /// Handles events until `until` completes; returns its output.
    pub async fn watch_until<F: Future>(&mut self, until: F) -> F::Output {
        tokio::pin!(until);
        loop {
            tokio::select! {
                output = &mut until => return output,
                event = self.events.next(), if self.errors.is_empty() => self.handle(event),
            }
        }
    }

    /// Handles events until `deadline`, or until `done` says the logs are complete (checked
    /// after each event).
    pub async fn watch_while(
        &mut self,
        deadline: tokio::time::Instant,
        done: impl Fn(&[BTreeMap<PathBuf, SegmentLog>]) -> bool,
    ) {
        while !done(&self.logs) && self.errors.is_empty() {
            tokio::select! {
                () = sleep_until(deadline) => return,
                event = self.events.next() => self.handle(event),
            }
        }
    }

    /// The largest target duration of the playlists read, if any.
    pub fn target_duration_s(&self) -> Option<u64> {
        self.logs
            .iter()
            .flat_map(|logs| logs.values())
            .map(|log| log.target_duration_s)
            .max()
    }

    fn handle(&mut self, event: Option<io::Result<inotify::EventOwned>>) {
        let now = Instant::now();
        let event = match event {
            Some(Ok(event)) => event,
            Some(Err(error)) => return self.errors.push(format!("reading inotify: {error}")),
            None => return self.errors.push("inotify: end of events".into()),
        };
        if event.mask.contains(EventMask::Q_OVERFLOW) {
            self.overflows += 1;
            return self.catch_up(now);
        }
        let (Some(dir), Some(name)) = (self.dirs.get(&event.wd), event.name) else {
            return;
        };
        let path = dir.join(name);
        if event.mask.contains(EventMask::ISDIR) {
            if self.wanted_dir(&path)
                && let Err(error) = self.add_dir(path, true, now)
            {
                self.errors.push(error.to_string());
            }
        } else if event
            .mask
            .intersects(EventMask::MOVED_TO | EventMask::CLOSE_WRITE)
        {
            self.playlist_changed(&path, now);
        }
    }

    /// After a queue overflow: adds the directories created meanwhile and re-reads every
    /// playlist known.
    fn catch_up(&mut self, now: Instant) {
        for dir in self.watched.clone() {
            if let Err(error) = self.scan(&dir, true, now) {
                self.errors.push(error.to_string());
            }
        }
        let known: Vec<PathBuf> = self.logs.iter().flat_map(|l| l.keys().cloned()).collect();
        for path in known {
            self.playlist_changed(&path, now);
        }
    }

    /// Watches `dir` and, through it, its wanted subdirectories; `new` (created after the start):
    /// the playlists found in it are read now.
    fn add_dir(&mut self, dir: PathBuf, new: bool, now: Instant) -> io::Result<()> {
        if self.watched.contains(&dir) {
            return Ok(());
        }
        let wd = match self.watches.add(&dir, MASK | WatchMask::ONLYDIR) {
            Ok(wd) => wd,
            // Gone again (or replaced by a file) before it could be watched.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Ok(());
            }
            Err(e) => return Err(io::Error::other(format!("watching {}: {e}", dir.display()))),
        };
        self.dirs.insert(wd, dir.clone());
        self.watched.insert(dir.clone());
        // What was created before the watch took effect.
        self.scan(&dir, new, now)
    }

    fn scan(&mut self, dir: &Path, new: bool, now: Instant) -> io::Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io::Error::other(format!("reading {}: {e}", dir.display()))),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if self.wanted_dir(&path) {
                    self.add_dir(path, new, now)?;
                }
            } else if new {
                self.playlist_changed(&path, now);
            }
        }
        Ok(())
    }

    /// On the way to an entry, an entry, or under a directory entry.
    fn wanted_dir(&self, dir: &Path) -> bool {
        self.on_the_way.contains(dir) || dir.ancestors().any(|a| self.roots.contains_key(a))
    }

    /// The connection a playlist file belongs to.
    fn connection_of(&self, file: &Path) -> Option<usize> {
        if let Some(&n) = self.roots.get(file) {
            return Some(n);
        }
        if file.file_name() != Some(OsStr::new(LIVE_PLAYLIST)) {
            return None;
        }
        file.ancestors()
            .skip(1)
            .find_map(|dir| self.roots.get(dir).copied())
    }

    fn playlist_changed(&mut self, path: &Path, now: Instant) {
        let Some(n) = self.connection_of(path) else {
            return;
        };
        // Gone already (a rename raced us) or not a playlist: the next update will tell.
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        if let Some(playlist) = latency::parse_playlist(&text) {
            self.logs[n]
                .entry(path.to_path_buf())
                .or_default()
                .update(&playlist, now);
        }
    }
}

fn is_playlist_file(path: &Path) -> bool {
    path.extension() == Some(OsStr::new("m3u8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const PLAYLIST: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n\
        #EXTINF:4.000,\nseg-00000000.ts\n";

    fn write_atomically(path: &Path, text: &str) {
        let tmp = path.with_file_name(".live.m3u8.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, path).unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn finds_playlists_in_directories_made_after_the_start() {
        let root = tempfile::tempdir().unwrap();
        let media = root.path().join("media");
        std::fs::create_dir(&media).unwrap();
        // An old broadcast of input a: ignored until it changes.
        std::fs::create_dir_all(media.join("a/old")).unwrap();
        std::fs::write(media.join("a/old").join(LIVE_PLAYLIST), PLAYLIST).unwrap();
        let entries = [
            media.join("a"),
            media.join("b"),
            root.path().join("c/x/live.m3u8"),
        ];
        let mut watcher = Watcher::new(&entries).unwrap();

        let video_b = media.join("b/video1");
        let file_c = root.path().join("c/x/live.m3u8");
        let make = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            std::fs::create_dir_all(&video_b).unwrap();
            // Written before the tool can have watched the new directory: found by its scan.
            write_atomically(&video_b.join(LIVE_PLAYLIST), PLAYLIST);
            std::fs::create_dir_all(file_c.parent().unwrap()).unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            std::fs::write(file_c.with_file_name("other.m3u8"), PLAYLIST).unwrap();
            write_atomically(&file_c, PLAYLIST);
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        watcher.watch_until(make).await;
        assert!(watcher.errors.is_empty(), "{:?}", watcher.errors);
        assert!(watcher.logs[0].is_empty());
        let b: Vec<&PathBuf> = watcher.logs[1].keys().collect();
        assert_eq!(b, [&video_b.join(LIVE_PLAYLIST)]);
        assert_eq!(watcher.logs[1].values().next().unwrap().len(), 1);
        let c: Vec<&PathBuf> = watcher.logs[2].keys().collect();
        assert_eq!(c, [&file_c]);
        assert_eq!(watcher.target_duration_s(), Some(4));

        // An update of the old playlist counts from then on.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        write_atomically(&media.join("a/old").join(LIVE_PLAYLIST), PLAYLIST);
        watcher
            .watch_while(deadline, |logs| !logs[0].is_empty())
            .await;
        assert_eq!(watcher.logs[0].len(), 1);
    }
}
