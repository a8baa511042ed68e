//! Where a recording's files go: the interface and its backends live in `cfstream-storage`
//! (a local directory, an S3-compatible bucket); the writer reaches them through this path.

pub use cfstream_storage::{LocalDir, Storage};
