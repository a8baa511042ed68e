//! Where a recording's files go: a small interface (create, append, atomic replace, delete,
//! list) so that the writer does not know whether they land in a local directory or, later, in
//! object storage. Names are plain file names inside one recording; every error names the path.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub trait Storage: Send + Sync {
    /// A new empty file (an existing one is truncated).
    fn create(&self, name: &str) -> io::Result<()>;
    fn append(&self, name: &str, data: &[u8]) -> io::Result<()>;
    /// Replaces the whole file at once: readers see the old or the new content, never a mix.
    fn replace(&self, name: &str, data: &[u8]) -> io::Result<()>;
    /// Removes a file; one that does not exist is not an error.
    fn delete(&self, name: &str) -> io::Result<()>;
    /// The names of the files there (hidden temporary files included).
    fn list(&self) -> io::Result<Vec<String>>;
}

/// Files kept open for appending at most: a recording appends to one segment per track and to
/// its `index.log`, a part at a time.
const OPEN_FOR_APPEND: usize = 4;

/// One recording directory on the local file system.
#[derive(Debug)]
pub struct LocalDir {
    dir: PathBuf,
    /// The files appended to last, open (most recent first): opening the file for every part
    /// was a third of the writer's file-system time (bench/RESULTS.md, CPU against nginx-rtmp
    /// on CMAF). A name leaves when the file is created, replaced or deleted, so that an
    /// append never goes to a file that is no longer there.
    appending: Mutex<Vec<(String, fs::File)>>,
}

impl LocalDir {
    /// Creates the directory when it does not exist.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir).map_err(|e| named(dir, "create directory", e))?;
        Ok(LocalDir {
            dir: dir.to_path_buf(),
            appending: Mutex::new(Vec::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn appending(&self) -> MutexGuard<'_, Vec<(String, fs::File)>> {
        self.appending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Closes `name` if it is open for appending.
    fn forget(&self, name: &str) {
        self.appending().retain(|(open, _)| open != name);
    }
}

/// An I/O error whose message names what was done to which path (disk full included).
fn named(path: &Path, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
}

impl Storage for LocalDir {
    fn create(&self, name: &str) -> io::Result<()> {
        self.forget(name);
        let path = self.file(name);
        fs::File::create(&path).map_err(|e| named(&path, "create", e))?;
        Ok(())
    }

    fn append(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let path = self.file(name);
        let mut appending = self.appending();
        match appending.iter().position(|(open, _)| open == name) {
            Some(i) => appending[..=i].rotate_right(1),
            None => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(|e| named(&path, "open", e))?;
                appending.insert(0, (name.to_owned(), file));
                appending.truncate(OPEN_FOR_APPEND);
            }
        }
        appending[0]
            .1
            .write_all(data)
            .map_err(|e| named(&path, "write", e))
    }

    fn replace(&self, name: &str, data: &[u8]) -> io::Result<()> {
        self.forget(name);
        let path = self.file(name);
        let temp = self.file(&format!(".{name}.tmp"));
        fs::write(&temp, data).map_err(|e| named(&temp, "write", e))?;
        fs::rename(&temp, &path).map_err(|e| named(&path, "replace", e))
    }

    fn delete(&self, name: &str) -> io::Result<()> {
        self.forget(name);
        let path = self.file(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(named(&path, "delete", e)),
            _ => Ok(()),
        }
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let entries = fs::read_dir(&self.dir).map_err(|e| named(&self.dir, "list", e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| named(&self.dir, "list", e))?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_dir_does_what_the_interface_says() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LocalDir::open(&tmp.path().join("rec")).unwrap();
        dir.create("seg-00000000.v.m4s").unwrap();
        dir.append("seg-00000000.v.m4s", b"ab").unwrap();
        dir.append("seg-00000000.v.m4s", b"cd").unwrap();
        dir.replace("index.log", b"one").unwrap();
        dir.replace("index.log", b"two").unwrap();
        assert_eq!(
            fs::read(dir.path().join("seg-00000000.v.m4s")).unwrap(),
            b"abcd"
        );
        assert_eq!(fs::read(dir.path().join("index.log")).unwrap(), b"two");
        assert_eq!(dir.list().unwrap(), ["index.log", "seg-00000000.v.m4s"]);
        dir.delete("index.log").unwrap();
        dir.delete("index.log").unwrap();
        // A file deleted and made again is appended to as the new file.
        dir.delete("seg-00000000.v.m4s").unwrap();
        dir.create("seg-00000000.v.m4s").unwrap();
        dir.append("seg-00000000.v.m4s", b"ef").unwrap();
        assert_eq!(
            fs::read(dir.path().join("seg-00000000.v.m4s")).unwrap(),
            b"ef"
        );
        // More files appended to than are kept open.
        for n in 1..=2 * OPEN_FOR_APPEND {
            let name = format!("seg-{n:08}.a.m4s");
            dir.create(&name).unwrap();
            dir.append(&name, b"1").unwrap();
            dir.append("seg-00000000.v.m4s", b"g").unwrap();
            dir.append(&name, b"2").unwrap();
            assert_eq!(fs::read(dir.path().join(&name)).unwrap(), b"12");
        }
        let e = dir.append("missing", b"x").unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
