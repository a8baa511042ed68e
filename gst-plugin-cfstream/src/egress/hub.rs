//! One input's fan-out to its viewers. The pipeline's streaming thread pushes every unit its
//! source produces; the hub keeps the stream headers (for viewers joining later) and hands each
//! viewer the media from its first keyframe on, without ever waiting for one: a viewer whose
//! queue is too far behind is dropped ([`super::queue`]).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use cfstream_proto::flv::{self, StreamHeader};

use super::queue::{Chunk, FlvTag, Queue, Viewer, ViewerEnd};
use super::remux::FlvToTs;

/// Viewers of one input at most: each costs a connection and a queue.
pub const MAX_VIEWERS: usize = 256;

/// What the input's source produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceFormat {
    /// `cfrtmpsrc`: the FLV header, then one tag per push.
    Flv,
    /// `cfsrtsrc`: whole TS packets.
    MpegTs,
}

/// What a viewer wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewerFormat {
    /// FLV tags (an RTMP player).
    Flv,
    /// MPEG-TS (an SRT caller).
    MpegTs,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    #[error("the live input's broadcast has ended")]
    Ended,
    #[error("the live input has {MAX_VIEWERS} viewers already")]
    TooManyViewers,
    #[error("this live input is published over SRT: play it over SRT (srtPlayback)")]
    Unsupported,
}

struct Subscriber {
    queue: Arc<Queue>,
    format: ViewerFormat,
    /// It has had its first keyframe (before that it gets nothing).
    started: bool,
}

#[derive(Default)]
struct Headers {
    metadata: Option<FlvTag>,
    video: Option<FlvTag>,
    audio: Option<FlvTag>,
}

impl Headers {
    fn tags(&self) -> impl Iterator<Item = &FlvTag> {
        [&self.metadata, &self.video, &self.audio]
            .into_iter()
            .flatten()
    }
}

struct State {
    subscribers: Vec<Subscriber>,
    headers: Headers,
    /// Present while the hub of an FLV source has TS viewers.
    remux: Option<FlvToTs>,
    ended: bool,
}

/// The fan-out of one live input; clones share it.
#[derive(Clone)]
pub struct Hub {
    source: SourceFormat,
    state: Arc<Mutex<State>>,
}

impl Hub {
    pub fn new(source: SourceFormat) -> Hub {
        Hub {
            source,
            state: Arc::new(Mutex::new(State {
                subscribers: Vec::new(),
                headers: Headers::default(),
                remux: None,
                ended: false,
            })),
        }
    }

    pub fn source(&self) -> SourceFormat {
        self.source
    }

    /// A new viewer: it receives the stream headers and the media from the next keyframe.
    pub fn subscribe(&self, format: ViewerFormat) -> Result<Viewer, SubscribeError> {
        if self.source == SourceFormat::MpegTs && format == ViewerFormat::Flv {
            return Err(SubscribeError::Unsupported);
        }
        let mut state = lock(&self.state);
        if state.ended {
            return Err(SubscribeError::Ended);
        }
        state.subscribers.retain(|s| !s.queue.has_ended());
        if state.subscribers.len() >= MAX_VIEWERS {
            return Err(SubscribeError::TooManyViewers);
        }
        let queue = Arc::new(Queue::default());
        state.subscribers.push(Subscriber {
            queue: queue.clone(),
            format,
            started: false,
        });
        Ok(Viewer { queue })
    }

    /// Viewers now (those dropped or gone since the last push may still count).
    pub fn viewers(&self) -> usize {
        lock(&self.state).subscribers.len()
    }

    /// The broadcast ended: viewers get what is queued, then their end. Later subscriptions are
    /// refused.
    pub fn end(&self) {
        let mut state = lock(&self.state);
        state.ended = true;
        for subscriber in state.subscribers.drain(..) {
            subscriber.queue.end(ViewerEnd::InputEnded);
        }
        state.remux = None;
    }

    /// One unit of an FLV source: the FLV header (ignored) or one tag with its PreviousTagSize.
    pub fn push_flv(&self, unit: &[u8]) {
        let Some((tag, _)) = flv::parse_tag(unit) else {
            return;
        };
        let header = flv::stream_header(tag.tag_type, tag.body);
        let mut state = lock(&self.state);
        if state.ended || (header.is_none() && state.subscribers.is_empty()) {
            return;
        }
        let tag = FlvTag {
            tag_type: tag.tag_type,
            timestamp_ms: tag.timestamp_ms,
            body: Bytes::copy_from_slice(tag.body),
        };
        let state = &mut *state;
        if let Some(header) = header {
            if let Some(remux) = &mut state.remux {
                remux.set_header(header, &tag.body);
            }
            let slot = match header {
                StreamHeader::Metadata => &mut state.headers.metadata,
                StreamHeader::VideoConfig => &mut state.headers.video,
                StreamHeader::AudioConfig => &mut state.headers.audio,
            };
            *slot = Some(tag.clone());
        }
        let keyframe = is_keyframe(&tag, state.headers.video.is_some());
        let now = Instant::now();
        let ts = state.remux_tag(&tag, keyframe);
        let headers = &state.headers;
        state.subscribers.retain_mut(|s| match s.format {
            ViewerFormat::Flv => push_flv(s, headers, &tag, keyframe, now),
            ViewerFormat::MpegTs => push_ts(s, ts.as_ref(), keyframe, now),
        });
        if !state
            .subscribers
            .iter()
            .any(|s| s.format == ViewerFormat::MpegTs)
        {
            state.remux = None;
        }
    }

    /// Whole TS packets of an MPEG-TS source; viewers start at the next buffer holding a PAT.
    pub fn push_ts(&self, packets: &[u8]) {
        let mut state = lock(&self.state);
        if state.ended || state.subscribers.is_empty() {
            return;
        }
        let chunk = Bytes::copy_from_slice(packets);
        let starts = holds_pat(packets);
        let now = Instant::now();
        state
            .subscribers
            .retain_mut(|s| push_ts(s, Some(&chunk), starts, now));
    }
}

impl State {
    /// The tag as MPEG-TS, if the hub has TS viewers (the converter starts with the first).
    fn remux_tag(&mut self, tag: &FlvTag, keyframe: bool) -> Option<Bytes> {
        if !self
            .subscribers
            .iter()
            .any(|s| s.format == ViewerFormat::MpegTs)
        {
            return None;
        }
        let headers = &self.headers;
        let remux = self.remux.get_or_insert_with(|| {
            let mut remux = FlvToTs::default();
            for header in headers.tags() {
                if let Some(kind) = flv::stream_header(header.tag_type, &header.body) {
                    remux.set_header(kind, &header.body);
                }
            }
            remux
        });
        let mut out = Vec::new();
        remux.convert(tag, keyframe, &mut out);
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

/// Hands a tag to a viewer that has started (stream headers too: they change in-band when a
/// publisher returns), or starts it at a keyframe with the headers in front. `false`: it is gone.
fn push_flv(
    s: &mut Subscriber,
    headers: &Headers,
    tag: &FlvTag,
    keyframe: bool,
    now: Instant,
) -> bool {
    if s.started {
        return s.queue.push(Chunk::Flv(tag.clone()), now);
    }
    if !keyframe {
        return !s.queue.has_ended();
    }
    s.started = true;
    headers
        .tags()
        .all(|header| s.queue.push(Chunk::Flv(header.clone()), now))
        && s.queue.push(Chunk::Flv(tag.clone()), now)
}

/// Hands TS to a viewer that has started, or starts it at `starts`. `false`: it is gone.
fn push_ts(s: &mut Subscriber, ts: Option<&Bytes>, starts: bool, now: Instant) -> bool {
    let Some(ts) = ts else {
        return !s.queue.has_ended();
    };
    if !s.started && !starts {
        return !s.queue.has_ended();
    }
    s.started = true;
    s.queue.push(Chunk::Ts(ts.clone()), now)
}

/// A video keyframe, or any audio frame of a stream without video (nothing to wait for).
fn is_keyframe(tag: &FlvTag, has_video: bool) -> bool {
    match tag.tag_type {
        flv::TAG_VIDEO => flv::is_video_frame(tag.tag_type, &tag.body) && tag.body[0] >> 4 == 1,
        flv::TAG_AUDIO => !has_video && tag.body.get(1) == Some(&1),
        _ => false,
    }
}

/// Whether a TS packet of PID 0 (the PAT) starts a section in `packets`.
fn holds_pat(packets: &[u8]) -> bool {
    packets.chunks_exact(188).any(|p| {
        p[0] == 0x47 && p[1] & 0x40 != 0 && (u16::from(p[1] & 0x1f) << 8 | u16::from(p[2])) == 0
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    const METADATA: &[u8] = b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00";
    /// avcC: version 1, High, level 3.0, 4-byte lengths, one SPS, one PPS.
    const VIDEO_CONFIG: &[u8] = &[
        0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1e, 1, 0, 2, 0x68,
        0xce,
    ];
    /// AudioSpecificConfig: AAC LC, 44.1 kHz, stereo.
    const AUDIO_CONFIG: &[u8] = &[0xaf, 0, 0x12, 0x10];

    fn tag(tag_type: u8, timestamp_ms: u32, body: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        flv::write_tag(&mut out, tag_type, timestamp_ms, body);
        out.to_vec()
    }

    /// A video frame of one IDR (or non-IDR) slice NAL unit of `size` bytes.
    fn frame(key: bool, size: usize) -> Vec<u8> {
        let mut body = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        body.extend_from_slice(&(size as u32).to_be_bytes());
        body.push(if key { 0x65 } else { 0x41 });
        body.resize(body.len() + size - 1, 0x80);
        body
    }

    fn push_headers(hub: &Hub) {
        hub.push_flv(&flv::FILE_HEADER);
        hub.push_flv(&tag(flv::TAG_SCRIPT_DATA, 0, METADATA));
        hub.push_flv(&tag(flv::TAG_VIDEO, 0, VIDEO_CONFIG));
        hub.push_flv(&tag(flv::TAG_AUDIO, 0, AUDIO_CONFIG));
    }

    /// Everything queued for the viewer now, and how it ended if it did.
    fn drain(viewer: &Viewer) -> (Vec<Chunk>, Option<ViewerEnd>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut chunks = Vec::new();
        loop {
            let next = runtime.block_on(async {
                tokio::time::timeout(std::time::Duration::from_millis(20), viewer.next()).await
            });
            match next {
                Ok(Ok(chunk)) => chunks.push(chunk),
                Ok(Err(end)) => return (chunks, Some(end)),
                Err(_) => return (chunks, None),
            }
        }
    }

    fn tag_types(chunks: &[Chunk]) -> Vec<(u8, u32)> {
        chunks
            .iter()
            .map(|c| match c {
                Chunk::Flv(tag) => (tag.tag_type, tag.timestamp_ms),
                Chunk::Ts(_) => (0, 0),
            })
            .collect()
    }

    #[test]
    fn a_viewer_gets_the_headers_then_media_from_the_next_keyframe() {
        let hub = Hub::new(SourceFormat::Flv);
        push_headers(&hub);
        hub.push_flv(&tag(flv::TAG_VIDEO, 900, &frame(true, 100)));
        let viewer = hub.subscribe(ViewerFormat::Flv).unwrap();
        hub.push_flv(&tag(flv::TAG_VIDEO, 1000, &frame(false, 50)));
        hub.push_flv(&tag(flv::TAG_AUDIO, 1010, &[0xaf, 1, 0x21]));
        hub.push_flv(&tag(flv::TAG_VIDEO, 1033, &frame(true, 100)));
        hub.push_flv(&tag(flv::TAG_AUDIO, 1040, &[0xaf, 1, 0x21]));
        let (chunks, end) = drain(&viewer);
        assert_eq!(
            tag_types(&chunks),
            [(18, 0), (9, 0), (8, 0), (9, 1033), (8, 1040)]
        );
        assert_eq!(end, None);
        hub.end();
        assert_eq!(drain(&viewer), (vec![], Some(ViewerEnd::InputEnded)));
        assert_eq!(
            hub.subscribe(ViewerFormat::Flv).err(),
            Some(SubscribeError::Ended)
        );
    }

    #[test]
    fn a_viewer_that_falls_behind_is_dropped_and_the_others_are_not() {
        let hub = Hub::new(SourceFormat::Flv);
        push_headers(&hub);
        let (reader, stalled) = (
            hub.subscribe(ViewerFormat::Flv).unwrap(),
            hub.subscribe(ViewerFormat::Flv).unwrap(),
        );
        let mut received = 0;
        for i in 0..20 {
            hub.push_flv(&tag(flv::TAG_VIDEO, i * 40, &frame(i == 0, 1024 * 1024)));
            received += drain(&reader).0.len();
        }
        assert_eq!(received, 3 + 20);
        assert_eq!(drain(&stalled), (vec![], Some(ViewerEnd::TooSlow)));
        assert_eq!(hub.viewers(), 1);
    }

    #[test]
    fn ts_viewers_of_an_flv_input_start_with_the_program_tables_at_a_keyframe() {
        let hub = Hub::new(SourceFormat::Flv);
        push_headers(&hub);
        let viewer = hub.subscribe(ViewerFormat::MpegTs).unwrap();
        hub.push_flv(&tag(flv::TAG_AUDIO, 10, &[0xaf, 1, 0x21]));
        hub.push_flv(&tag(flv::TAG_VIDEO, 40, &frame(true, 100)));
        let (chunks, _) = drain(&viewer);
        let Some(Chunk::Ts(first)) = chunks.first() else {
            panic!("no TS for the keyframe: {chunks:?}")
        };
        assert_eq!(first.len() % 188, 0);
        // PAT (PID 0, payload unit start) first.
        assert_eq!(&first[..3], &[0x47, 0x40, 0x00]);
        assert_eq!(
            Hub::new(SourceFormat::MpegTs)
                .subscribe(ViewerFormat::Flv)
                .err(),
            Some(SubscribeError::Unsupported)
        );
    }
}
