//! One directory on the local file system: a recording's, or the media root the daemon reads.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::{Storage, StorageRead, beyond_end, name};

/// Files kept open for appending at most: a recording appends to one segment per track and to
/// its `index.log`, a part at a time.
const OPEN_FOR_APPEND: usize = 4;

#[derive(Debug)]
pub struct LocalDir {
    dir: PathBuf,
    /// The files appended to last, open (most recent first): opening the file for every part
    /// was a third of the writer's file-system time (bench/RESULTS.md, CPU against nginx-rtmp
    /// on CMAF). A name leaves when the file is created, sealed, replaced or deleted, so that
    /// an append never goes to a file that is no longer there.
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

    fn file(&self, name: &str) -> io::Result<PathBuf> {
        name::check(name)?;
        Ok(self.dir.join(name))
    }

    /// The path of a file about to be written, its directory made when the name has levels.
    fn new_file(&self, name: &str) -> io::Result<PathBuf> {
        let path = self.file(name)?;
        if let Some(parent) = path.parent().filter(|_| name.contains('/')) {
            fs::create_dir_all(parent).map_err(|e| named(parent, "create directory", e))?;
        }
        Ok(path)
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

    /// Every file below `dir` (a directory inside the root), as names.
    fn walk(&self, dir: &Path, names: &mut Vec<String>) -> io::Result<()> {
        let entries = match fs::read_dir(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            entries => entries.map_err(|e| named(dir, "list", e))?,
        };
        for entry in entries {
            let entry = entry.map_err(|e| named(dir, "list", e))?;
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                self.walk(&path, names)?;
            } else if let Some(name) = self.name_of(&path) {
                names.push(name);
            }
        }
        Ok(())
    }

    fn name_of(&self, path: &Path) -> Option<String> {
        let relative = path.strip_prefix(&self.dir).ok()?;
        let levels: Option<Vec<&str>> = relative.iter().map(|level| level.to_str()).collect();
        Some(levels?.join("/"))
    }
}

/// An I/O error whose message names what was done to which path (disk full included).
fn named(path: &Path, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
}

impl Storage for LocalDir {
    fn create(&self, name: &str) -> io::Result<()> {
        self.forget(name);
        let path = self.new_file(name)?;
        fs::File::create(&path).map_err(|e| named(&path, "create", e))?;
        Ok(())
    }

    fn append(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let path = self.file(name)?;
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

    /// The file is complete as it is: only its open handle goes.
    fn seal(&self, name: &str) -> io::Result<()> {
        name::check(name)?;
        self.forget(name);
        Ok(())
    }

    fn replace(&self, name: &str, data: &[u8]) -> io::Result<()> {
        self.forget(name);
        let path = self.new_file(name)?;
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or(name);
        let temp = path.with_file_name(format!(".{file_name}.tmp"));
        fs::write(&temp, data).map_err(|e| named(&temp, "write", e))?;
        fs::rename(&temp, &path).map_err(|e| named(&path, "replace", e))
    }

    fn delete(&self, name: &str) -> io::Result<()> {
        self.forget(name);
        let path = self.file(name)?;
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(named(&path, "delete", e)),
            _ => Ok(()),
        }
    }

    fn list(&self) -> io::Result<Vec<String>> {
        self.list_prefix("")
    }
}

impl StorageRead for LocalDir {
    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        let path = self.file(name)?;
        fs::read(&path).map_err(|e| named(&path, "read", e))
    }

    fn read_range(&self, name: &str, range: Range<u64>) -> io::Result<Vec<u8>> {
        let path = self.file(name)?;
        let mut file = fs::File::open(&path).map_err(|e| named(&path, "open", e))?;
        let size = (file.metadata())
            .map_err(|e| named(&path, "read", e))?
            .len();
        if range.start > range.end || range.end > size {
            return Err(beyond_end(name, &range, size));
        }
        let mut data = vec![0; (range.end - range.start) as usize];
        (file.seek(SeekFrom::Start(range.start)))
            .and_then(|_| file.read_exact(&mut data))
            .map_err(|e| named(&path, "read", e))?;
        Ok(data)
    }

    fn size(&self, name: &str) -> io::Result<u64> {
        let path = self.file(name)?;
        let metadata = fs::metadata(&path).map_err(|e| named(&path, "read", e))?;
        Ok(metadata.len())
    }

    fn list_prefix(&self, prefix: &str) -> io::Result<Vec<String>> {
        name::check_prefix(prefix)?;
        // Only the directory the prefix names is walked.
        let dir = prefix.rfind('/').map_or("", |end| &prefix[..end]);
        let mut names = Vec::new();
        self.walk(&self.dir.join(dir), &mut names)?;
        names.retain(|name| name.starts_with(prefix));
        names.sort();
        Ok(names)
    }

    fn delete_prefix(&self, prefix: &str) -> io::Result<usize> {
        let names = self.list_prefix(prefix)?;
        for name in &names {
            self.delete(name)?;
        }
        if let Some(dir) = prefix.strip_suffix('/') {
            // The now empty directories of a recording go too.
            let path = self.dir.join(dir);
            match fs::remove_dir_all(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(named(&path, "delete", e));
                }
                _ => {}
            }
        }
        Ok(names.len())
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
