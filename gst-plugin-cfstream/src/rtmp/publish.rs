//! The publish phase of an accepted publisher on the runtime: its media is cut into batches and
//! handed to the key's consumer, read again on the batching grid once the socket is drained; or,
//! for a consumer that reads on its own thread, the connection is handed over as a
//! [`super::PublisherFeed`].

use std::pin::pin;

use super::batch::{BATCH_BYTES, Ending, refusal_description, take_batch};
use super::connection::{Connection, Handover, Patience, Read, Transport};
use super::queue::IngestItem;
use super::registry::{KeyEntry, LiveGuard};
use crate::contract::DisconnectReason;
use crate::net::grid;
use cfstream_proto::flv;

impl<S: Transport> Connection<S> {
    /// Accepts the publish of `guard`'s key and runs it until the publisher leaves.
    pub(super) async fn publish(mut self, guard: LiveGuard, app: String, encoder: String) {
        let entry = guard.0.clone();
        self.session.accept_publish();
        let connected = IngestItem::PublisherConnected {
            remote: self.remote,
            app,
            tls: self.tls,
            encoder,
        };
        if !entry.queue.send(connected).await {
            return;
        }
        if entry.options.read_on_consumer_thread {
            let remote = self.remote;
            let item = match S::hand_over(self, guard) {
                Handover::Feed(Ok(feed)) => IngestItem::Feed(feed),
                Handover::Feed(Err(_)) => IngestItem::PublisherDisconnected {
                    remote,
                    reason: DisconnectReason::Closed,
                },
                Handover::Kept(kept) => {
                    let (connection, guard) = *kept;
                    return connection.forward(&entry, guard).await;
                }
            };
            entry.queue.send(item).await;
            return;
        }
        self.forward(&entry, guard).await;
    }

    /// Forwards the publisher's media from this task until it leaves.
    async fn forward(mut self, entry: &KeyEntry, guard: LiveGuard) {
        let reason = self.forward_media(entry).await;
        entry
            .queue
            .send(IngestItem::PublisherDisconnected {
                remote: self.remote,
                reason,
            })
            .await;
        drop(guard);
    }

    /// Forwards media until the publisher leaves; returns why it did.
    async fn forward_media(&mut self, entry: &KeyEntry) -> DisconnectReason {
        let patience = Patience::PerOperation(entry.options.read_timeout);
        let generation = entry.generation();
        let mut drained = false;
        loop {
            let mut taken_over = pin!(entry.taken_over());
            taken_over.as_mut().enable();
            if entry.generation() != generation {
                return DisconnectReason::Replaced;
            }
            let (batch, batch_bytes, end) = take_batch(
                &mut self.session,
                &mut self.input,
                entry.options.enforce_codecs,
            );
            if let Err(reason) = self.flush(patience).await {
                return reason;
            }
            if !batch.is_empty() {
                entry.silence().heard();
                // A full queue holds the publisher back: that is not silence.
                entry.silence().hold_back();
                let handed = entry.queue.hand_over(batch, batch_bytes).await;
                entry.silence().resume();
                if !handed {
                    return DisconnectReason::Stopped;
                }
            }
            match end {
                Some(Ending::Left) => return DisconnectReason::Closed,
                Some(Ending::Reason(reason)) => return reason,
                Some(Ending::Violation(violation)) => {
                    self.reject(entry, violation).await;
                    return DisconnectReason::Rejected;
                }
                None if batch_bytes >= BATCH_BYTES => continue,
                None => {}
            }
            if drained {
                tokio::select! {
                    () = tokio::time::sleep_until(
                        grid::next_tick(entry.options.read_interval).into(),
                    ) => {}
                    () = &mut taken_over => return DisconnectReason::Replaced,
                }
            }
            let read = tokio::select! {
                read = self.read(patience, Some(&entry.queue)) => read,
                () = &mut taken_over => return DisconnectReason::Replaced,
            };
            match read {
                Ok(Read::Drained) => drained = true,
                Ok(Read::More) => drained = false,
                Ok(Read::Closed) => return DisconnectReason::Closed,
                Err(reason) => return reason,
            }
        }
    }

    /// Refuses the publisher for a codec rule and tells the consumer.
    async fn reject(&mut self, entry: &KeyEntry, violation: flv::CodecViolation) {
        self.session.reject_publish(
            "NetStream.Publish.Rejected",
            &refusal_description(&violation),
        );
        self.linger().await;
        entry
            .queue
            .send(IngestItem::PublisherRejected {
                remote: self.remote,
                code: violation.code,
                reason: violation.reason,
            })
            .await;
    }
}
