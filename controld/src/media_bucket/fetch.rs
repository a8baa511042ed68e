//! Fetching a recording's copy from the bucket onto the local disk: into a hidden directory
//! beside where it goes, then renamed into place at once, so that a reader (or a crash) never
//! sees part of it, and a fetch cut short is started again.

use std::io;
use std::path::Path;

use cfstream_storage::StorageRead;

use super::INDEX_LOG;

/// The recording is on this disk (a copy fetched before, or recorded here).
pub fn is_local(dir: &Path) -> bool {
    dir.join(INDEX_LOG).is_file()
}

/// Downloads every object of `prefix` (`input/video`) into `dir`, unless it is there.
pub fn fetch_missing(storage: &dyn StorageRead, prefix: &str, dir: &Path) -> io::Result<()> {
    if is_local(dir) {
        return Ok(());
    }
    let inside = format!("{prefix}/");
    let names = storage.list_prefix(&inside)?;
    if !names
        .iter()
        .any(|n| n.strip_prefix(&inside) == Some(INDEX_LOG))
    {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("the bucket has no copy of recording {prefix}"),
        ));
    }
    let (parent, video) = match (dir.parent(), dir.file_name()) {
        (Some(parent), Some(video)) => (parent, video.to_string_lossy()),
        _ => {
            return Err(io::Error::other(format!(
                "{} is not a recording",
                dir.display()
            )));
        }
    };
    let partial = parent.join(format!(".{video}.fetching"));
    match std::fs::remove_dir_all(&partial) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => std::fs::create_dir_all(&partial)?,
    }
    for name in &names {
        let Some(file) = name.strip_prefix(&inside) else {
            continue;
        };
        let data = storage.read(name)?;
        std::fs::write(partial.join(file), data)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", partial.display())))?;
    }
    std::fs::rename(&partial, dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("moving {} into place: {e}", partial.display()),
        )
    })
}
