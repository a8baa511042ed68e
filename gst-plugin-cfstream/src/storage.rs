//! Where a recording's files go: a small interface (create, append, atomic replace, delete,
//! list) so that the writer does not know whether they land in a local directory or, later, in
//! object storage. Names are plain file names inside one recording; every error names the path.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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

/// One recording directory on the local file system.
#[derive(Clone, Debug)]
pub struct LocalDir {
    dir: PathBuf,
}

impl LocalDir {
    /// Creates the directory when it does not exist.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir).map_err(|e| named(dir, "create directory", e))?;
        Ok(LocalDir {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// An I/O error whose message names what was done to which path (disk full included).
fn named(path: &Path, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
}

impl Storage for LocalDir {
    fn create(&self, name: &str) -> io::Result<()> {
        let path = self.file(name);
        fs::File::create(&path).map_err(|e| named(&path, "create", e))?;
        Ok(())
    }

    fn append(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let path = self.file(name);
        let mut file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| named(&path, "open", e))?;
        file.write_all(data).map_err(|e| named(&path, "write", e))
    }

    fn replace(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let path = self.file(name);
        let temp = self.file(&format!(".{name}.tmp"));
        fs::write(&temp, data).map_err(|e| named(&temp, "write", e))?;
        fs::rename(&temp, &path).map_err(|e| named(&path, "replace", e))
    }

    fn delete(&self, name: &str) -> io::Result<()> {
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
        let e = dir.append("missing", b"x").unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
