//! The read side of a bucket: an object is its own key and its chunks (see the module above).

use std::io;
use std::ops::Range;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};

use super::{S3Storage, chunks_of, delete_quietly};
use crate::{StorageRead, beyond_end, name};

/// A chunk key has a level ending in `+`.
fn is_chunk(name: &str) -> bool {
    name.contains("+/")
}

impl S3Storage {
    /// The keys an object is made of (itself, then its chunks) with their sizes.
    fn pieces(&self, name: &str) -> io::Result<Vec<(Path, u64)>> {
        let store = Arc::clone(&self.store);
        let key = self.key(name);
        let (head, chunks) =
            self.run(async move { futures::join!(store.head(&key), chunks_of(&store, &key)) })?;
        let head = head.map_err(|e| self.error("read", name, e))?;
        let chunks = chunks.map_err(|e| self.error("list the chunks of", name, e))?;
        Ok((std::iter::once(head).chain(chunks))
            .map(|meta| (meta.location, meta.size))
            .collect())
    }

    /// Every key below the directory part of `prefix` whose name starts with it.
    fn keys_with_prefix(&self, prefix: &str) -> io::Result<Vec<(String, Path)>> {
        name::check_prefix(prefix)?;
        let dir = prefix.rfind('/').map(|end| &prefix[..end]);
        let below = match (self.root.as_str(), dir) {
            ("", None) => None,
            (_, Some(dir)) => Some(self.key(dir)),
            (root, None) => Some(Path::from_iter(root.split('/'))),
        };
        let store = Arc::clone(&self.store);
        let listed: Vec<ObjectMeta> = self
            .run(async move { store.list(below.as_ref()).try_collect().await })?
            .map_err(|e| self.error("list", prefix, e))?;
        Ok((listed.into_iter())
            .filter_map(|meta| Some((self.name_of(&meta.location)?, meta.location)))
            .filter(|(name, _)| name.starts_with(prefix))
            .collect())
    }
}

impl StorageRead for S3Storage {
    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        let size = self.size(name)?;
        self.read_range(name, 0..size)
    }

    fn read_range(&self, name: &str, range: Range<u64>) -> io::Result<Vec<u8>> {
        name::check(name)?;
        let pieces = self.pieces(name)?;
        let size = pieces.iter().map(|(_, size)| size).sum();
        if range.start > range.end || range.end > size {
            return Err(beyond_end(name, &range, size));
        }
        // The part of each piece within the range, relative to the piece.
        let mut wanted = Vec::new();
        let mut start = 0;
        for (key, piece_size) in pieces {
            let end = start + piece_size;
            let (from, to) = (range.start.max(start), range.end.min(end));
            if from < to {
                wanted.push((key, from - start..to - start));
            }
            start = end;
        }
        let store = Arc::clone(&self.store);
        let parts = self.run(async move {
            let reads = wanted
                .iter()
                .map(|(key, r)| store.get_range(key, r.clone()));
            futures::future::try_join_all(reads).await
        })?;
        let parts = parts.map_err(|e| self.error("read", name, e))?;
        Ok(parts.concat())
    }

    fn size(&self, name: &str) -> io::Result<u64> {
        name::check(name)?;
        Ok(self.pieces(name)?.iter().map(|(_, size)| size).sum())
    }

    fn list_prefix(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = (self.keys_with_prefix(prefix)?.into_iter())
            .map(|(name, _)| name)
            .filter(|name| !is_chunk(name))
            .collect();
        names.sort();
        Ok(names)
    }

    fn delete_prefix(&self, prefix: &str) -> io::Result<usize> {
        let keys = self.keys_with_prefix(prefix)?;
        {
            let mut state = self.state();
            let gone: Vec<String> = (state.pending.keys())
                .filter(|name| name.starts_with(prefix))
                .cloned()
                .collect();
            for name in gone {
                if let Some(pending) = state.pending.remove(&name) {
                    state.buffered -= pending.data.len();
                }
            }
            state.chunks.retain(|name, _| !name.starts_with(prefix));
        }
        let objects = keys.iter().filter(|(name, _)| !is_chunk(name)).count();
        let store = Arc::clone(&self.store);
        let result = self.run(async move {
            let deletes = keys.iter().map(|(_, key)| delete_quietly(&store, key));
            futures::future::try_join_all(deletes).await
        })?;
        result.map_err(|e| self.error("delete", prefix, e))?;
        Ok(objects)
    }
}
