//! Watches where the connections' segments are listed, on the load generator's single thread
//! (no thread, no polling of media playlists), and logs when each segment is first listed.
//!
//! Connection n's entry (a line of `--playlists`) is either a playback URL (`http://…`: a live
//! input's multivariant playlist on controld, followed over HTTP by [`crate::follow`]) or a
//! playlist file on disk (`….m3u8`, as nginx-rtmp writes them), watched with one inotify
//! instance: missing directories are waited for (the nearest existing ancestor is watched until
//! they appear); playlists are written by renaming a temporary file over them (`IN_MOVED_TO`)
//! or in place (`IN_CLOSE_WRITE`), both count as an update; a playlist that already existed at
//! the start counts only from its next update.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::StreamExt;
use inotify::{EventMask, EventStream, Inotify, WatchDescriptor, WatchMask, Watches};
use reqwest::Url;
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::task::JoinSet;
use tokio::time::sleep_until;

use crate::follow::{self, Event, Pace};
use crate::latency::{self, SegmentLog};
use crate::parts::PartLog;

/// Where one connection's segments are listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A live input's multivariant playlist URL.
    Playback(Url),
    /// A media playlist file.
    File(PathBuf),
}

impl Entry {
    /// `http(s)://…` is a playback URL, a path ending in `.m3u8` a playlist file.
    pub fn parse(text: &str) -> Result<Entry, String> {
        if text.starts_with("http://") || text.starts_with("https://") {
            return Url::parse(text)
                .map(Entry::Playback)
                .map_err(|e| format!("{text:?}: {e}"));
        }
        let path = PathBuf::from(text);
        if text.contains("://") || !is_playlist_file(&path) {
            return Err(format!(
                "{text:?} is neither a playback URL (http://host/<input uid>/manifest/video.m3u8) \
                 nor a playlist file (….m3u8)"
            ));
        }
        Ok(Entry::File(path))
    }
}

const MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::CLOSE_WRITE);

pub struct Watcher {
    events: EventStream<Vec<u8>>,
    watches: Watches,
    dirs: HashMap<WatchDescriptor, PathBuf>,
    watched: HashSet<PathBuf>,
    /// Connection of each playlist file entry.
    files: HashMap<PathBuf, usize>,
    /// Proper ancestors of the file entries: watched on the way to them.
    on_the_way: HashSet<PathBuf>,
    /// The followers of the playback URL entries, and what they report.
    followers: JoinSet<()>,
    followed: UnboundedReceiver<Event>,
    /// Per connection: the segment log of each playlist seen (a file, or a recording's media
    /// playlist URL).
    pub logs: Vec<BTreeMap<String, SegmentLog>>,
    /// Per connection: the part log of each recording followed part by part ([`Pace::Parts`]).
    pub part_logs: Vec<BTreeMap<String, PartLog>>,
    /// Media playlist responses read.
    pub responses: u64,
    /// Blocking reloads answered `503`.
    pub unavailable: u64,
    pub pace: Pace,
    pub overflows: u64,
    /// Playback requests that failed (each is tried again).
    pub request_errors: u64,
    pub last_request_error: Option<String>,
    /// Errors after the start that stop the watching (a watch that could not be added, a failed
    /// read of the events).
    pub errors: Vec<String>,
}

impl Watcher {
    /// Watches `entries` (connection n = entry n), following playback URLs at `pace`; relative
    /// paths are taken from the current directory. Must run inside the tokio runtime.
    pub fn new(entries: &[Entry], pace: Pace) -> io::Result<Watcher> {
        let cwd = std::env::current_dir()?;
        let events = Inotify::init()?.into_event_stream(vec![0; 64 * 1024])?;
        let watches = events.watches();
        let (report, followed) = mpsc::unbounded_channel();
        let mut watcher = Watcher {
            events,
            watches,
            dirs: HashMap::new(),
            watched: HashSet::new(),
            files: HashMap::new(),
            on_the_way: HashSet::new(),
            followers: JoinSet::new(),
            followed,
            logs: vec![BTreeMap::new(); entries.len()],
            part_logs: vec![BTreeMap::new(); entries.len()],
            responses: 0,
            unavailable: 0,
            pace,
            overflows: 0,
            request_errors: 0,
            last_request_error: None,
            errors: vec![],
        };
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(io::Error::other)?;
        for (n, entry) in entries.iter().enumerate() {
            match entry {
                Entry::Playback(url) => {
                    let follower =
                        follow::follow(client.clone(), n, url.clone(), pace, report.clone());
                    watcher.followers.spawn(follower);
                }
                Entry::File(path) => watcher.add_file_entry(n, cwd.join(path))?,
            }
        }
        Ok(watcher)
    }

    fn add_file_entry(&mut self, n: usize, file: PathBuf) -> io::Result<()> {
        if self.files.insert(file.clone(), n).is_some() {
            return Err(io::Error::other(format!(
                "{} is listed for two connections",
                file.display()
            )));
        }
        self.on_the_way
            .extend(file.ancestors().skip(1).map(Path::to_path_buf));
        let existing = (file.ancestors().skip(1))
            .find(|dir| dir.is_dir())
            .ok_or_else(|| io::Error::other(format!("{}: no directory", file.display())))?;
        self.add_dir(existing.to_path_buf(), false, Instant::now())
    }

    /// Handles events until `until` completes; returns its output.
    pub async fn watch_until<F: Future>(&mut self, until: F) -> F::Output {
        tokio::pin!(until);
        loop {
            tokio::select! {
                output = &mut until => return output,
                event = self.events.next(), if self.errors.is_empty() => self.handle(event),
                Some(event) = self.followed.recv() => self.followed(event),
            }
        }
    }

    /// Handles events until `deadline`, or until `done` says the logs are complete (checked
    /// after each event).
    pub async fn watch_while(
        &mut self,
        deadline: tokio::time::Instant,
        done: impl Fn(&[BTreeMap<String, SegmentLog>]) -> bool,
    ) {
        while !done(&self.logs) && self.errors.is_empty() {
            tokio::select! {
                () = sleep_until(deadline) => return,
                event = self.events.next() => self.handle(event),
                Some(event) = self.followed.recv() => self.followed(event),
            }
        }
    }

    fn followed(&mut self, event: Event) {
        match event {
            Event::Listed {
                connection,
                recording,
                playlist,
                parts,
                parts_timed,
                seen,
                seen_wall,
            } => {
                self.responses += 1;
                if let Some(parts) = parts {
                    self.part_logs[connection]
                        .entry(recording.clone())
                        .or_default()
                        .update(&parts, seen_wall, parts_timed);
                }
                self.logs[connection]
                    .entry(recording)
                    .or_default()
                    .update(&playlist, seen);
            }
            Event::Failed(error) => {
                self.request_errors += 1;
                self.last_request_error = Some(error);
            }
            Event::Unavailable => self.unavailable += 1,
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
        for path in self.files.keys().cloned().collect::<Vec<_>>() {
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

    /// On the way to a file entry.
    fn wanted_dir(&self, dir: &Path) -> bool {
        self.on_the_way.contains(dir)
    }

    fn playlist_changed(&mut self, path: &Path, now: Instant) {
        let Some(&n) = self.files.get(path) else {
            return;
        };
        // Gone already (a rename raced us) or not a playlist: the next update will tell.
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        if let Some(playlist) = latency::parse_playlist(&text) {
            self.logs[n]
                .entry(path.display().to_string())
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
        #EXTINF:4.000,\nbench1-0.ts\n";

    fn write_atomically(path: &Path, text: &str) {
        let tmp = path.with_file_name(".playlist.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, path).unwrap();
    }

    #[test]
    fn entries_are_playback_urls_or_playlist_files() {
        let url = "http://127.0.0.1:8080/abc/manifest/video.m3u8";
        assert_eq!(
            Entry::parse(url),
            Ok(Entry::Playback(Url::parse(url).unwrap()))
        );
        assert_eq!(
            Entry::parse("hls/bench1-1.m3u8"),
            Ok(Entry::File("hls/bench1-1.m3u8".into()))
        );
        for bad in ["media/input", "http://", "ftp://x/y.m3u8"] {
            assert!(Entry::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn finds_playlist_files_in_directories_made_after_the_start() {
        let root = tempfile::tempdir().unwrap();
        // An old playlist: ignored until it changes.
        let old = root.path().join("a/old.m3u8");
        std::fs::create_dir_all(old.parent().unwrap()).unwrap();
        std::fs::write(&old, PLAYLIST).unwrap();
        let late = root.path().join("b/made/later.m3u8");
        let deep = root.path().join("c/x/live.m3u8");
        let entries = [&old, &late, &deep].map(|p| Entry::File(p.clone()));
        let mut watcher = Watcher::new(&entries, Pace::Segments).unwrap();

        let make = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            std::fs::create_dir_all(late.parent().unwrap()).unwrap();
            // Written before the tool can have watched the new directory: found by its scan.
            write_atomically(&late, PLAYLIST);
            std::fs::create_dir_all(deep.parent().unwrap()).unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            std::fs::write(deep.with_file_name("other.m3u8"), PLAYLIST).unwrap();
            write_atomically(&deep, PLAYLIST);
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        watcher.watch_until(make).await;
        assert!(watcher.errors.is_empty(), "{:?}", watcher.errors);
        assert!(watcher.logs[0].is_empty());
        let b: Vec<&String> = watcher.logs[1].keys().collect();
        assert_eq!(b, [&late.display().to_string()]);
        assert_eq!(watcher.logs[1].values().next().unwrap().len(), 1);
        let c: Vec<&String> = watcher.logs[2].keys().collect();
        assert_eq!(c, [&deep.display().to_string()]);
        assert_eq!(watcher.target_duration_s(), Some(4));

        // An update of the old playlist counts from then on.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        write_atomically(&old, PLAYLIST);
        watcher
            .watch_while(deadline, |logs| !logs[0].is_empty())
            .await;
        assert_eq!(watcher.logs[0].len(), 1);
    }
}
