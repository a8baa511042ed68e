//! Where a recording's files go: a small interface so that the writer does not know whether
//! they land in a local directory ([`LocalDir`]) or in an S3-compatible bucket ([`S3Storage`]).
//!
//! Names are relative to the storage's root (a directory, or a key prefix in a bucket) and use
//! `/` between levels: the writer uses plain file names inside one recording, the daemon
//! `recording/file`. Every error names the object and where it is.
//!
//! The write side ([`Storage`]) is what the recording writer needs; an object written with
//! `create` and `append` is complete once the writer says so with `seal` (a bucket has no
//! append, so that is when the bytes are uploaded). The read side ([`StorageRead`]) is what the
//! daemon needs to serve and remove recordings. Both are synchronous: the writer runs on
//! GStreamer streaming threads.

mod local;

mod name;
mod s3;

use std::io;
use std::ops::Range;

pub use local::LocalDir;

pub use s3::{S3Config, S3Storage};

pub trait Storage: Send + Sync {
    /// A new empty object (an existing one is truncated on a local disk, replaced once sealed
    /// in a bucket).
    fn create(&self, name: &str) -> io::Result<()>;
    /// Appends to an object being written, or to a sealed one (a log): the bytes appended
    /// since the last seal become visible in a bucket at the next seal.
    fn append(&self, name: &str, data: &[u8]) -> io::Result<()>;
    /// The bytes appended so far are complete (a segment that ended, records of a log that
    /// must be durable now). Sealing an object with nothing appended since does nothing.
    fn seal(&self, name: &str) -> io::Result<()>;
    /// Replaces the whole object at once: readers see the old or the new content, never a mix.
    fn replace(&self, name: &str, data: &[u8]) -> io::Result<()>;
    /// Removes an object; one that does not exist is not an error.
    fn delete(&self, name: &str) -> io::Result<()>;
    /// The names of all objects, sorted (on a local disk also hidden temporary files and
    /// objects not sealed yet).
    fn list(&self) -> io::Result<Vec<String>>;
}

/// The read side: sealed objects as a daemon serving recordings sees them.
pub trait StorageRead: Send + Sync {
    /// The whole object.
    fn read(&self, name: &str) -> io::Result<Vec<u8>>;
    /// Bytes `range` of the object; a range beyond its end is an `InvalidInput` error.
    fn read_range(&self, name: &str, range: Range<u64>) -> io::Result<Vec<u8>>;
    /// Its length in bytes.
    fn size(&self, name: &str) -> io::Result<u64>;
    /// The names starting with `prefix` (a plain string prefix, `rec/seg-` included), sorted.
    fn list_prefix(&self, prefix: &str) -> io::Result<Vec<String>>;
    /// Removes every object whose name starts with `prefix` (say a recording, `rec/`);
    /// returns how many there were.
    fn delete_prefix(&self, prefix: &str) -> io::Result<usize>;
}

/// The error for a range that does not lie within an object.
fn beyond_end(name: &str, range: &Range<u64>, size: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "range {}..{} of {name} lies beyond its end ({size} bytes)",
            range.start, range.end
        ),
    )
}
