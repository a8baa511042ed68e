//! Encoded thumbnails kept in memory, least recently used evicted first, capped in bytes: a
//! page asking the same thumbnail again (or many viewers of one list) costs no decode.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::path::PathBuf;

use axum::body::Bytes;

use super::geometry::Geometry;

/// What makes two thumbnails the same picture.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub recording: PathBuf,
    pub sequence: u64,
    pub frame: u64,
    pub geometry: Geometry,
}

struct Entry {
    jpeg: Bytes,
    /// Its place in `JpegCache::by_use`.
    used: u64,
}

pub struct JpegCache {
    entries: HashMap<Key, Entry>,
    /// Use counter → key, oldest first.
    by_use: BTreeMap<u64, Key>,
    bytes: usize,
    capacity: usize,
    clock: u64,
}

impl JpegCache {
    /// Holds at most `capacity` bytes of JPEG.
    pub fn new(capacity: usize) -> JpegCache {
        JpegCache {
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
            bytes: 0,
            capacity,
            clock: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    pub fn get(&mut self, key: &Key) -> Option<Bytes> {
        let now = self.tick();
        let entry = self.entries.get_mut(key)?;
        self.by_use.remove(&entry.used);
        entry.used = now;
        self.by_use.insert(now, key.clone());
        Some(entry.jpeg.clone())
    }

    /// Keeps `jpeg` (unless it alone is over the capacity), evicting the least recently used.
    pub fn put(&mut self, key: Key, jpeg: Bytes) {
        if jpeg.len() > self.capacity {
            return;
        }
        self.remove(&key);
        while self.bytes + jpeg.len() > self.capacity {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            if let Some(entry) = self.entries.remove(&oldest) {
                self.bytes -= entry.jpeg.len();
            }
        }
        let used = self.tick();
        self.bytes += jpeg.len();
        self.by_use.insert(used, key.clone());
        self.entries.insert(key, Entry { jpeg, used });
    }

    fn remove(&mut self, key: &Key) {
        if let Some(entry) = self.entries.remove(key) {
            self.by_use.remove(&entry.used);
            self.bytes -= entry.jpeg.len();
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::super::geometry::{Sides, Size};
    use super::*;

    fn key(sequence: u64) -> Key {
        let size = Size {
            width: 16,
            height: 9,
        };
        Key {
            recording: PathBuf::from("/media/in/rec"),
            sequence,
            frame: 0,
            geometry: Geometry {
                scaled: size,
                crop: Sides::default(),
                pad: Sides::default(),
                output: size,
            },
        }
    }

    fn jpeg(len: usize) -> Bytes {
        Bytes::from(vec![0xff; len])
    }

    #[test]
    fn the_least_recently_used_goes_first_and_bytes_stay_capped() {
        let mut cache = JpegCache::new(300);
        cache.put(key(1), jpeg(100));
        cache.put(key(2), jpeg(100));
        cache.put(key(3), jpeg(100));
        assert!(cache.get(&key(1)).is_some(), "1 is now the most recent");
        cache.put(key(4), jpeg(100));
        assert!(
            cache.get(&key(2)).is_none(),
            "2 was the least recently used"
        );
        assert!(cache.get(&key(1)).is_some());
        assert!(cache.get(&key(3)).is_some());
        assert_eq!(cache.bytes(), 300);
        cache.put(key(5), jpeg(250));
        assert_eq!(cache.bytes(), 250, "as many evicted as needed");
        assert!(cache.get(&key(5)).is_some());
        cache.put(key(6), jpeg(301));
        assert!(cache.get(&key(6)).is_none(), "larger than the whole cache");
        cache.put(key(5), jpeg(50));
        assert_eq!(
            (cache.bytes(), cache.get(&key(5)).map(|j| j.len())),
            (50, Some(50))
        );
    }
}
