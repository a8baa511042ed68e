//! Cost of cfrtmpsrc's protocol work per second of a 3 Mbps 30 fps stream: the server session
//! (chunk stream reassembly, AMF0, events) over a publish of synthetic media as a real encoder
//! chunks it (4096-byte chunks), and FLV tag writing. The per-iteration time of one simulated
//! second is the CPU that second of video costs; 1 s / that time is the real-time factor of the
//! protocol layer alone. The whole element is measured by bench/cfrtmpsrc-ingest.sh.
//!
//! `cargo bench -p gst-plugin-cfstream --bench cfrtmpsrc`

use std::hint::black_box;

use bytes::{BufMut, BytesMut};
use cfstream_proto::flv;
use cfstream_proto::rtmp::chunk::{ChunkWriter, message_type};
use cfstream_proto::rtmp::client;
use cfstream_proto::rtmp::handshake;
use cfstream_proto::rtmp::session::{ServerSession, SessionEvent};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FPS: u32 = 30;
/// 3 Mbps of video in one second: a 60 KB keyframe and 29 frames sharing the rest.
const KEYFRAME_BYTES: usize = 60_000;
const FRAME_BYTES: usize = (3_000_000 / 8 - KEYFRAME_BYTES) / (FPS as usize - 1);
const AAC_FRAME_BYTES: usize = 370;
const AAC_FRAMES_PER_SECOND: u32 = 47;

/// Client bytes of a publish: handshake, commands, then one second of media.
fn publish_one_second() -> (BytesMut, usize) {
    let mut writer = ChunkWriter::default();
    let mut setup = handshake::client_c0c1(1);
    setup.extend_from_slice(&[0; handshake::HANDSHAKE_SIZE]);
    setup.extend_from_slice(&client::publish_commands(&writer, "live", "key"));
    writer.write(
        &mut setup,
        2,
        0,
        message_type::SET_CHUNK_SIZE,
        0,
        &4096u32.to_be_bytes(),
    );
    writer.set_chunk_size(4096);
    let setup_len = setup.len();
    let stream = client::PUBLISH_STREAM_ID;
    for frame in 0..FPS {
        let size = if frame == 0 {
            KEYFRAME_BYTES
        } else {
            FRAME_BYTES
        };
        let mut body = BytesMut::with_capacity(size);
        body.put_slice(&[if frame == 0 { 0x17 } else { 0x27 }, 1, 0, 0, 0]);
        body.resize(size, 0x55);
        writer.write(
            &mut setup,
            6,
            frame * 1000 / FPS,
            message_type::VIDEO,
            stream,
            &body,
        );
    }
    for frame in 0..AAC_FRAMES_PER_SECOND {
        let mut body = vec![0xaf, 1];
        body.resize(AAC_FRAME_BYTES, 0x21);
        let timestamp = frame * 1000 / AAC_FRAMES_PER_SECOND;
        writer.write(&mut setup, 4, timestamp, message_type::AUDIO, stream, &body);
    }
    (setup, setup_len)
}

fn session(c: &mut Criterion) {
    let (bytes, setup_len) = publish_one_second();
    let mut group = c.benchmark_group("cfrtmpsrc");
    group.throughput(Throughput::Bytes((bytes.len() - setup_len) as u64));
    group.bench_function("session: one second of 3 Mbps publish", |b| {
        b.iter(|| {
            let mut session = ServerSession::new(0);
            // Arrives in 64 KiB reads, as the connection task reads it.
            let mut input = BytesMut::new();
            let mut media = 0;
            for read in bytes.chunks(64 * 1024) {
                input.extend_from_slice(read);
                loop {
                    match session.process(&mut input).unwrap() {
                        Some(SessionEvent::PublishRequested { .. }) => session.accept_publish(),
                        Some(SessionEvent::Media(message)) => media += message.body.len(),
                        Some(_) => {}
                        None => break,
                    }
                }
            }
            black_box(media)
        })
    });
    group.bench_function("flv: tags of one second of 3 Mbps", |b| {
        let video = vec![0x27; FRAME_BYTES];
        let audio = vec![0xaf; AAC_FRAME_BYTES];
        b.iter(|| {
            for frame in 0..FPS {
                let mut tag = BytesMut::new();
                flv::write_tag(&mut tag, flv::TAG_VIDEO, frame, &video);
                black_box(tag);
            }
            for frame in 0..AAC_FRAMES_PER_SECOND {
                let mut tag = BytesMut::new();
                flv::write_tag(&mut tag, flv::TAG_AUDIO, frame, &audio);
                black_box(tag);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, session);
criterion_main!(benches);
