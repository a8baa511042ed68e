//! The listener, the registry and a connection together, with a hand-made client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::contract::codes::ERR_STREAM_KEY_IN_USE;
use cfstream_proto::flv;
use cfstream_proto::rtmp::chunk::ChunkWriter;
use cfstream_proto::rtmp::client::{self, Status, StatusReader};
use cfstream_proto::rtmp::handshake;

const OPTIONS: StreamOptions = StreamOptions {
    enforce_codecs: true,
    read_timeout: Duration::from_secs(10),
    read_on_consumer_thread: false,
    read_interval: DEFAULT_READ_INTERVAL,
};
const PATIENCE: Duration = Duration::from_secs(30);

fn local_listener() -> ListenerHandle {
    listener(&ListenerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        tls: None,
    })
    .unwrap()
}

/// Publishes `key` and returns the connection with the first status the server sent.
async fn publish(addr: SocketAddr, key: &str) -> (TcpStream, Status) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&handshake::client_c0c1(9)).await.unwrap();
    let mut s0s1s2 = vec![0; 1 + 2 * handshake::HANDSHAKE_SIZE];
    stream.read_exact(&mut s0s1s2).await.unwrap();
    let c2 = handshake::client_c2(&s0s1s2).unwrap();
    stream.write_all(&c2).await.unwrap();
    let commands = client::publish_commands(&ChunkWriter::default(), "live", key);
    stream.write_all(&commands).await.unwrap();
    let mut statuses = StatusReader::default();
    let mut input = BytesMut::new();
    loop {
        let read = tokio::time::timeout(PATIENCE, stream.read_buf(&mut input));
        assert_ne!(read.await.unwrap().unwrap(), 0, "closed without status");
        if let Some(status) = statuses.read(&mut input).unwrap().into_iter().next() {
            return (stream, status);
        }
    }
}

#[tokio::test]
async fn unknown_key_without_handler_is_bad_name() {
    let listener = local_listener();
    let (_, status) = publish(listener.local_addr(), "nobody").await;
    assert_eq!(status.code, "NetStream.Publish.BadName");
    assert_eq!(status.description, "unknown stream key");
}

#[tokio::test]
async fn handler_rejection_text_reaches_the_publisher() {
    let listener = local_listener();
    let (seen, requests) = std::sync::mpsc::channel();
    listener.set_unknown_key_handler(Arc::new(move |request: &PublishRequest| {
        seen.send(request.clone()).unwrap();
        KeyDecision::Reject("input is disabled".into())
    }));
    let (_, status) = publish(listener.local_addr(), "k1").await;
    assert_eq!(status.code, "NetStream.Publish.BadName");
    assert_eq!(status.description, "input is disabled");
    let request = requests.try_recv().unwrap();
    assert_eq!(
        (request.app.as_str(), request.stream_key.as_str()),
        ("live", "k1")
    );
    assert!(!request.tls);
}

#[tokio::test]
async fn accepted_unknown_key_waits_for_its_registration() {
    let listener = local_listener();
    let (asked, requests) = tokio::sync::mpsc::unbounded_channel();
    listener.set_unknown_key_handler(Arc::new(move |request: &PublishRequest| {
        asked.send(request.stream_key.clone()).unwrap();
        KeyDecision::Accept
    }));
    let addr = listener.local_addr();
    let publisher = tokio::spawn(publish(addr, "late"));
    // Register only once the handler was consulted: the publisher must be waiting.
    let mut requests = requests;
    let key = requests.recv().await.unwrap();
    let mut registration = listener.register("live", &key, OPTIONS).unwrap();
    let (mut stream, status) = publisher.await.unwrap();
    assert_eq!(status.code, "NetStream.Publish.Start");
    let Some(IngestItem::PublisherConnected { app, encoder, .. }) = registration.recv().await
    else {
        panic!("expected the publisher")
    };
    assert_eq!(
        (app.as_str(), encoder.as_str()),
        ("live", "FMLE/3.0 (compatible; cfstream)")
    );
    let mut tag = BytesMut::new();
    ChunkWriter::default().write(&mut tag, 6, 40, flv::TAG_VIDEO, 1, &[0x17, 0, 0, 0, 0]);
    stream.write_all(&tag).await.unwrap();
    let Some(IngestItem::Media(media)) = registration.recv().await else {
        panic!("expected media")
    };
    let message = &media.messages[0];
    assert_eq!((message.tag_type, message.timestamp), (9, 40));
}

#[tokio::test]
async fn second_publisher_of_a_live_key_is_refused() {
    let listener = local_listener();
    let mut registration = listener.register("live", "k", OPTIONS).unwrap();
    assert!(listener.register("live", "k", OPTIONS).is_err());
    let (_live, first) = publish(listener.local_addr(), "k").await;
    assert_eq!(first.code, "NetStream.Publish.Start");
    let (_, second) = publish(listener.local_addr(), "k").await;
    assert_eq!(
        (second.code.as_str(), second.description.as_str()),
        ("NetStream.Publish.BadName", "stream key already in use")
    );
    assert!(matches!(
        registration.recv().await,
        Some(IngestItem::PublisherConnected { .. })
    ));
    assert!(matches!(
        registration.recv().await,
        Some(IngestItem::PublisherRejected {
            code: ERR_STREAM_KEY_IN_USE,
            ..
        })
    ));
}

#[test]
fn listeners_are_shared_by_address() {
    let first = local_listener();
    let again = listener(&ListenerConfig {
        addr: first.local_addr(),
        tls: None,
    })
    .unwrap();
    assert!(first.is_same_listener(&again));
    assert_ne!(local_listener().local_addr(), first.local_addr());
    let tls = listener(&ListenerConfig {
        addr: first.local_addr(),
        tls: Some(TlsFiles {
            certificate: "/nonexistent.pem".into(),
            private_key: "/nonexistent.key".into(),
        }),
    });
    assert!(tls.is_err());
}

#[tokio::test]
async fn media_that_arrives_with_the_end_of_the_stream_is_delivered() {
    // Everything after the handshake (commands, tags, the end) in one go: the server's read
    // meets the end right after the bytes, and must hand them over before it reports the end.
    let listener = local_listener();
    let mut registration = listener.register("live", "k", OPTIONS).unwrap();
    let mut stream = TcpStream::connect(listener.local_addr()).await.unwrap();
    stream.write_all(&handshake::client_c0c1(9)).await.unwrap();
    let mut s0s1s2 = vec![0; 1 + 2 * handshake::HANDSHAKE_SIZE];
    stream.read_exact(&mut s0s1s2).await.unwrap();
    let writer = ChunkWriter::default();
    let mut rest = BytesMut::from(&handshake::client_c2(&s0s1s2).unwrap()[..]);
    rest.extend_from_slice(&client::publish_commands(&writer, "live", "k"));
    const TAGS: u32 = 20;
    for i in 0..TAGS {
        writer.write(&mut rest, 6, 40 * i, flv::TAG_VIDEO, 1, &[0x17, 0, 0, 0, 0]);
    }
    stream.write_all(&rest).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut timestamps = Vec::new();
    loop {
        match tokio::time::timeout(PATIENCE, registration.recv())
            .await
            .unwrap()
        {
            Some(IngestItem::PublisherConnected { .. }) => {}
            Some(IngestItem::Media(media)) => {
                timestamps.extend(media.messages.iter().map(|m| m.timestamp))
            }
            Some(IngestItem::PublisherDisconnected { reason, .. }) => {
                assert_eq!(reason, crate::contract::DisconnectReason::Closed);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(timestamps, (0..TAGS).map(|i| 40 * i).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_publisher_held_back_by_its_consumer_is_not_taken_over() {
    let listener = local_listener();
    let mut registration = listener.register("live", "k", OPTIONS).unwrap();
    let (live, status) = publish(listener.local_addr(), "k").await;
    assert_eq!(status.code, "NetStream.Publish.Start");
    // More media than the consumer's queue holds (16 MiB), which nobody takes yet: the server
    // stops reading the publisher, which keeps sending (into full socket buffers).
    const TAGS: u32 = 24;
    let (_reader, mut writer) = live.into_split();
    let sender = tokio::spawn(async move {
        // Large chunks (a protocol control message), so that the server takes 16 MiB quickly.
        let mut chunks = ChunkWriter::default();
        let mut tag = BytesMut::new();
        let chunk_size: u32 = 1024 * 1024;
        chunks.write(&mut tag, 2, 0, 1, 0, &chunk_size.to_be_bytes());
        chunks.set_chunk_size(chunk_size);
        let mut body = vec![0; 1024 * 1024];
        body[..2].copy_from_slice(&[0x27, 1]);
        for i in 0..TAGS {
            chunks.write(&mut tag, 6, 40 * i, flv::TAG_VIDEO, 1, &body);
            writer.write_all(&tag.split()).await.unwrap();
        }
        writer
    });
    // Longer than the silence that lets a newcomer take over a key.
    tokio::time::sleep(TAKEOVER_SILENCE + Duration::from_secs(1)).await;
    let (_, second) = publish(listener.local_addr(), "k").await;
    assert_eq!(
        (second.code.as_str(), second.description.as_str()),
        ("NetStream.Publish.BadName", "stream key already in use")
    );
    // The held-back publisher goes on: all its media arrives, and it ends by closing.
    let mut tags = 0;
    let mut sender = Some(sender);
    loop {
        let item = tokio::time::timeout(PATIENCE, registration.recv()).await;
        match item.unwrap() {
            Some(IngestItem::PublisherConnected { .. } | IngestItem::PublisherRejected { .. }) => {}
            Some(IngestItem::Media(media)) => tags += media.messages.len() as u32,
            Some(IngestItem::PublisherDisconnected { reason, .. }) => {
                assert_eq!(reason, crate::contract::DisconnectReason::Closed);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
        if tags == TAGS
            && let Some(sender) = sender.take()
        {
            // Everything arrived: the publisher leaves.
            sender.await.unwrap().shutdown().await.unwrap();
        }
    }
    assert_eq!(tags, TAGS);
}
