//! An S3-compatible bucket (through `object_store`), for the same names as a local directory.
//!
//! A bucket has no append, so an object written with `create` and `append` is held in memory
//! (bounded) and uploaded as one object when it is sealed. An object appended to after its seal
//! (a log such as `index.log`) gets one more object per seal, a chunk, `name+/NNNNNNNN`
//! (numbered from 1), so that what was sealed is durable without uploading the log again;
//! reads concatenate the object and its chunks, listings show the name once. `+` is not
//! allowed in names, so chunks never collide with an object.
//!
//! Calls are synchronous: the storage owns a one-thread tokio runtime and waits for the
//! requests of a call, which it issues together where it can; each request is bounded by
//! `request_timeout` and not retried (the caller decides). Do not call it from async code.

mod config;
mod read;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectMeta, ObjectStore, RetryConfig};
use tokio::runtime::Runtime;

pub use config::S3Config;

use crate::{Storage, StorageRead, name};

/// Objects appended to and not sealed yet, at most (a recording has one segment per track and
/// its log open).
const MAX_PENDING: usize = 64;
/// Objects whose chunk count is remembered; when full, it is forgotten (and listed again).
const MAX_KNOWN_CHUNKS: usize = 1024;

pub struct S3Storage {
    store: Arc<AmazonS3>,
    /// The key prefix names are relative to, without a trailing `/` (empty: the bucket).
    root: String,
    /// `s3://bucket/prefix at endpoint`, for error messages.
    place: String,
    runtime: Runtime,
    max_buffered: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    pending: HashMap<String, Pending>,
    buffered: usize,
    /// How many chunks follow an object sealed or replaced here.
    chunks: HashMap<String, u32>,
}

/// Bytes to upload at the next seal: the object itself (chunk 0, after `create`) or a chunk.
struct Pending {
    chunk: u32,
    data: Vec<u8>,
}

impl S3Storage {
    pub fn open(config: &S3Config) -> io::Result<Self> {
        let (bucket, root) = config.bucket_and_prefix()?;
        let place = format!("{} at {}", config.url, config.endpoint);
        let client = ClientOptions::new()
            .with_timeout(config.request_timeout)
            .with_connect_timeout(config.request_timeout);
        let retry = RetryConfig {
            max_retries: 0,
            retry_timeout: config.request_timeout,
            ..RetryConfig::default()
        };
        let store = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(&config.endpoint)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_client_options(client)
            .with_allow_http(config.allow_http)
            .with_retry(retry)
            .build()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{place}: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cfstream-s3")
            .enable_all()
            .build()
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot start a runtime for {place}: {e}"))
            })?;
        Ok(S3Storage {
            store: Arc::new(store),
            root,
            place,
            runtime,
            max_buffered: config.max_buffered_bytes,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs requests on the storage's runtime and waits for them (from any thread).
    fn run<T: Send + 'static>(
        &self,
        requests: impl Future<Output = T> + Send + 'static,
    ) -> io::Result<T> {
        futures::executor::block_on(self.runtime.spawn(requests))
            .map_err(|e| io::Error::other(format!("request to {} failed: {e}", self.place)))
    }

    fn key(&self, name: &str) -> Path {
        match self.root.as_str() {
            "" => Path::from_iter(name.split('/')),
            root => Path::from_iter(root.split('/').chain(name.split('/'))),
        }
    }

    /// The name of a key below the root (`None` for a key elsewhere).
    fn name_of(&self, key: &Path) -> Option<String> {
        let key = key.as_ref();
        match self.root.as_str() {
            "" => Some(key.to_owned()),
            root => Some(key.strip_prefix(root)?.strip_prefix('/')?.to_owned()),
        }
    }

    /// An error naming what was done to which object where.
    fn error(&self, what: &str, name: &str, e: object_store::Error) -> io::Error {
        let kind = match e {
            object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, format!("cannot {what} {name} in {}: {e}", self.place))
    }

    /// Forgets what is pending for `name`.
    fn drop_pending(&self, name: &str) {
        let mut state = self.state();
        if let Some(old) = state.pending.remove(name) {
            state.buffered -= old.data.len();
        }
    }

    fn remember_chunks(&self, name: &str, chunks: u32) {
        let mut state = self.state();
        if state.chunks.len() >= MAX_KNOWN_CHUNKS {
            state.chunks.clear();
        }
        state.chunks.insert(name.to_owned(), chunks);
    }

    /// The chunk the next append to a sealed object starts (it must exist).
    fn next_chunk(&self, name: &str) -> io::Result<u32> {
        if let Some(&chunks) = self.state().chunks.get(name) {
            return Ok(chunks + 1);
        }
        let store = Arc::clone(&self.store);
        let key = self.key(name);
        let (head, chunks) =
            self.run(async move { futures::join!(store.head(&key), chunks_of(&store, &key)) })?;
        head.map_err(|e| self.error("append to", name, e))?;
        let chunks = chunks.map_err(|e| self.error("list the chunks of", name, e))?;
        Ok(chunks.len() as u32 + 1)
    }

    /// Adds bytes to what `name` uploads at its seal, within the bounds.
    fn buffer(&self, name: &str, chunk: Option<u32>, data: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        if state.buffered + data.len() > self.max_buffered {
            return Err(full(format!(
                "cannot append to {name} in {}: {} bytes are waiting for their seal already",
                self.place, state.buffered
            )));
        }
        if !state.pending.contains_key(name) && state.pending.len() >= MAX_PENDING {
            return Err(full(format!(
                "cannot append to {name} in {}: {MAX_PENDING} objects are being written already",
                self.place
            )));
        }
        let pending = state.pending.entry(name.to_owned());
        let pending = pending.or_insert_with(|| Pending {
            chunk: chunk.unwrap_or(0),
            data: Vec::new(),
        });
        pending.data.extend_from_slice(data);
        state.buffered += data.len();
        Ok(())
    }

    /// Uploads the object itself, its former chunks removed first (a reader meanwhile sees
    /// the old object without them: for a log, records it had).
    fn put_whole(&self, name: &str, data: Vec<u8>) -> io::Result<()> {
        let store = Arc::clone(&self.store);
        let key = self.key(name);
        let result = self.run(async move {
            delete_chunks(&store, &key).await?;
            store.put(&key, data.into()).await.map(drop)
        })?;
        result.map_err(|e| self.error("upload", name, e))?;
        self.remember_chunks(name, 0);
        Ok(())
    }

    fn put_chunk(&self, name: &str, chunk: u32, data: Vec<u8>) -> io::Result<()> {
        let store = Arc::clone(&self.store);
        let key = chunk_key(&self.key(name), chunk);
        let result = self.run(async move { store.put(&key, data.into()).await.map(drop) })?;
        result.map_err(|e| self.error(&format!("upload chunk {chunk} of"), name, e))?;
        self.remember_chunks(name, chunk);
        Ok(())
    }
}

fn full(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::OutOfMemory, message)
}

/// Chunk `n` of the object at `key`.
fn chunk_key(key: &Path, n: u32) -> Path {
    Path::from(format!("{key}+/{n:08}"))
}

/// The chunks of the object at `key`, in order.
async fn chunks_of(store: &AmazonS3, key: &Path) -> object_store::Result<Vec<ObjectMeta>> {
    let prefix = Path::from(format!("{key}+"));
    let mut chunks: Vec<ObjectMeta> = store.list(Some(&prefix)).try_collect().await?;
    chunks.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(chunks)
}

async fn delete_chunks(store: &AmazonS3, key: &Path) -> object_store::Result<()> {
    for chunk in chunks_of(store, key).await? {
        delete_quietly(store, &chunk.location).await?;
    }
    Ok(())
}

/// Deletes an object; one that is not there is not an error.
async fn delete_quietly(store: &AmazonS3, key: &Path) -> object_store::Result<()> {
    match store.delete(key).await {
        Err(object_store::Error::NotFound { .. }) => Ok(()),
        result => result,
    }
}

impl Storage for S3Storage {
    /// Nothing is uploaded before the seal: until then the object is not there (or is still
    /// the old one).
    fn create(&self, name: &str) -> io::Result<()> {
        name::check(name)?;
        self.drop_pending(name);
        self.buffer(name, Some(0), &[])
    }

    fn append(&self, name: &str, data: &[u8]) -> io::Result<()> {
        name::check(name)?;
        if self.state().pending.contains_key(name) {
            return self.buffer(name, None, data);
        }
        let chunk = self.next_chunk(name)?;
        self.buffer(name, Some(chunk), data)
    }

    fn seal(&self, name: &str) -> io::Result<()> {
        name::check(name)?;
        let Some(pending) = self.state().pending.remove(name) else {
            return Ok(());
        };
        let size = pending.data.len();
        let uploaded = match pending.chunk {
            0 => self.put_whole(name, pending.data.clone()),
            chunk => self.put_chunk(name, chunk, pending.data.clone()),
        };
        let mut state = self.state();
        match uploaded {
            Ok(()) => state.buffered -= size,
            // Kept for the next seal, unless written anew meanwhile.
            Err(_) if !state.pending.contains_key(name) => {
                state.pending.insert(name.to_owned(), pending);
            }
            Err(_) => state.buffered -= size,
        }
        uploaded
    }

    fn replace(&self, name: &str, data: &[u8]) -> io::Result<()> {
        name::check(name)?;
        self.drop_pending(name);
        self.put_whole(name, data.to_vec())
    }

    fn delete(&self, name: &str) -> io::Result<()> {
        name::check(name)?;
        self.drop_pending(name);
        self.state().chunks.remove(name);
        let store = Arc::clone(&self.store);
        let key = self.key(name);
        let result = self.run(async move {
            delete_chunks(&store, &key).await?;
            delete_quietly(&store, &key).await
        })?;
        result.map_err(|e| self.error("delete", name, e))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        self.list_prefix("")
    }
}
