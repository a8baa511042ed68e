//! What a registered consumer receives, and the queue it travels in: bounded in items and in
//! bytes. When it is full the connection task stops reading the socket, so a slow consumer slows
//! the publisher down through TCP instead of growing memory.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::feed::PublisherFeed;
use crate::contract::DisconnectReason;
use cfstream_proto::rtmp::session::MediaMessage;

/// Batches of media messages the queue holds at most…
const QUEUE_ITEMS: usize = 1024;
/// …and their bytes (at least one maximal message, see `session::PUBLISH_LIMITS`).
const QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// What a registered consumer receives, in order.
#[derive(Debug)]
pub enum IngestItem {
    PublisherConnected {
        remote: SocketAddr,
        app: String,
        tls: bool,
        /// The client's connect `flashVer` (e.g. `FMLE/3.0 (compatible; Lavf61.1.100)`).
        encoder: String,
    },
    Media(MediaItem),
    /// The publisher's connection itself, after `PublisherConnected`, for a consumer that
    /// asked to read it on its own thread (plain TCP only): from here on the feed reports the
    /// media and the end, and no `PublisherDisconnected` follows.
    Feed(Box<PublisherFeed>),
    PublisherDisconnected {
        remote: SocketAddr,
        reason: DisconnectReason,
    },
    PublisherRejected {
        remote: SocketAddr,
        code: &'static str,
        reason: String,
    },
}

/// Media messages in the order received; their bytes count against the queue until the batch
/// is dropped.
#[derive(Debug)]
pub struct MediaItem {
    pub messages: VecDeque<MediaMessage>,
    /// None for a batch read on the consumer's thread: it never waits in the queue.
    _budget: Option<OwnedSemaphorePermit>,
}

impl MediaItem {
    pub(super) fn unqueued(messages: VecDeque<MediaMessage>) -> MediaItem {
        MediaItem {
            messages,
            _budget: None,
        }
    }
}

/// The sending side, held by the key's registry entry.
pub(super) struct ConsumerQueue {
    items: mpsc::Sender<IngestItem>,
    budget: Arc<Semaphore>,
}

impl ConsumerQueue {
    pub(super) fn new() -> (ConsumerQueue, mpsc::Receiver<IngestItem>) {
        let (items, receiver) = mpsc::channel(QUEUE_ITEMS);
        let budget = Arc::new(Semaphore::new(QUEUE_BYTES));
        (ConsumerQueue { items, budget }, receiver)
    }

    /// `false`: the consumer is gone.
    pub(super) async fn send(&self, item: IngestItem) -> bool {
        self.items.send(item).await.is_ok()
    }

    /// Queues `item` if there is room now.
    pub(super) fn try_send(&self, item: IngestItem) {
        let _ = self.items.try_send(item);
    }

    /// Queues a batch once the byte budget allows; `false`: the consumer is gone.
    pub(super) async fn hand_over(&self, messages: VecDeque<MediaMessage>, bytes: usize) -> bool {
        let permits = bytes.min(QUEUE_BYTES) as u32;
        let Ok(budget) = self.budget.clone().acquire_many_owned(permits).await else {
            return false;
        };
        let item = IngestItem::Media(MediaItem {
            messages,
            _budget: Some(budget),
        });
        self.send(item).await
    }

    /// Resolves once the consumer is gone.
    pub(super) async fn closed(&self) {
        self.items.closed().await
    }

    /// Called when the consumer unregisters: a batch waiting for room gives up.
    pub(super) fn close(&self) {
        self.budget.close();
    }
}
