//! The prepared FLV file, parsed once and shared by every connection, and the schedule that
//! replays it in real time, looping with timestamps that keep rising.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use cfstream_proto::flv::{self, FlvError};
use cfstream_proto::rtmp::amf0;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a usable FLV file: {source}")]
    Parse { path: String, source: ParseError },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    #[error(transparent)]
    Header(#[from] FlvError),
    #[error("it holds no audio or video tag")]
    NoMedia,
}

/// One tag as it goes on the wire.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaTag {
    pub tag_type: u8,
    /// Milliseconds since the file's first tag.
    pub timestamp_ms: u64,
    /// The tag body; script data carries the `@setDataFrame` wrapper RTMP publishers send.
    pub body: Bytes,
    /// Metadata and codec sequence headers: sent on the first pass only, since every later pass
    /// continues the same stream with the same codec configuration.
    pub setup: bool,
    /// An AVC keyframe (a coded picture, not the sequence header): where segments are cut.
    pub keyframe: bool,
}

/// The whole file in memory.
#[derive(Debug)]
pub struct Media {
    pub tags: Vec<MediaTag>,
    /// Timestamp offset between two passes: the last frame of each track ends before it.
    pub loop_duration_ms: u64,
}

impl Media {
    pub fn load(path: &Path) -> Result<Media, MediaError> {
        let name = path.display().to_string();
        let data = std::fs::read(path).map_err(|source| MediaError::Read {
            path: name.clone(),
            source,
        })?;
        Media::parse(&data).map_err(|source| MediaError::Parse { path: name, source })
    }

    /// Parses an FLV file; a truncated last tag (an interrupted recording) is ignored.
    pub fn parse(data: &[u8]) -> Result<Media, ParseError> {
        let header = flv::parse_file_header(data)?;
        let mut rest = data.get(header..).unwrap_or_default();
        let mut tags = vec![];
        let mut first_timestamp = None;
        while let Some((tag, used)) = flv::parse_tag(rest) {
            rest = &rest[used..];
            let first = *first_timestamp.get_or_insert(tag.timestamp_ms);
            let timestamp_ms = u64::from(tag.timestamp_ms.saturating_sub(first));
            match tag.tag_type {
                flv::TAG_AUDIO | flv::TAG_VIDEO => tags.push(MediaTag {
                    tag_type: tag.tag_type,
                    timestamp_ms,
                    body: Bytes::copy_from_slice(tag.body),
                    setup: is_sequence_header(tag.tag_type, tag.body),
                    keyframe: is_keyframe(tag.tag_type, tag.body),
                }),
                flv::TAG_SCRIPT_DATA => {
                    let mut body = BytesMut::new();
                    amf0::encode(&mut body, &"@setDataFrame".into());
                    body.extend_from_slice(tag.body);
                    tags.push(MediaTag {
                        tag_type: tag.tag_type,
                        timestamp_ms,
                        body: body.freeze(),
                        setup: true,
                        keyframe: false,
                    });
                }
                _ => {}
            }
        }
        if !tags.iter().any(|t| t.tag_type != flv::TAG_SCRIPT_DATA) {
            return Err(ParseError::NoMedia);
        }
        let loop_duration_ms = [flv::TAG_AUDIO, flv::TAG_VIDEO]
            .into_iter()
            .filter_map(|kind| track_end(&tags, kind))
            .max()
            .unwrap_or(1)
            .max(1);
        Ok(Media {
            tags,
            loop_duration_ms,
        })
    }
}

/// AVC or AAC configuration (packet type 0), not a frame.
fn is_sequence_header(tag_type: u8, body: &[u8]) -> bool {
    let codec_with_packet_type = match tag_type {
        flv::TAG_VIDEO => body.first().is_some_and(|b| b & 0x0f == 7),
        flv::TAG_AUDIO => body.first().is_some_and(|b| b >> 4 == 10),
        _ => false,
    };
    codec_with_packet_type && body.get(1) == Some(&0)
}

/// An AVC coded picture (packet type 1) of frame type 1 (keyframe).
fn is_keyframe(tag_type: u8, body: &[u8]) -> bool {
    flv::is_video_frame(tag_type, body) && body[0] >> 4 == 1
}

/// Where a track's last frame ends: its last timestamp plus its mean frame spacing.
fn track_end(tags: &[MediaTag], tag_type: u8) -> Option<u64> {
    let mut frames = tags.iter().filter(|t| t.tag_type == tag_type && !t.setup);
    let first = frames.next()?.timestamp_ms;
    let (count, last) = frames.fold((1u64, first), |(n, _), t| (n + 1, t.timestamp_ms));
    let spacing = if count > 1 {
        (last - first).div_ceil(count - 1)
    } else {
        0
    };
    Some(last + spacing)
}

/// The tags of a connection in sending order, with their timestamps on the connection's clock.
#[derive(Debug)]
pub struct Schedule<'a> {
    media: &'a Media,
    pass: u64,
    index: usize,
}

impl<'a> Schedule<'a> {
    pub fn new(media: &'a Media) -> Self {
        Schedule {
            media,
            pass: 0,
            index: 0,
        }
    }

    /// The timestamp (ms since the connection's first tag) of the next tag, without taking it.
    pub fn next_timestamp(&mut self) -> u64 {
        self.skip_setup_after_first_pass();
        let tag = &self.media.tags[self.index];
        self.pass * self.media.loop_duration_ms + tag.timestamp_ms
    }

    /// The next tag and its timestamp; the schedule never ends.
    pub fn take(&mut self) -> (&'a MediaTag, u64) {
        let timestamp = self.next_timestamp();
        let tag = &self.media.tags[self.index];
        self.index += 1;
        if self.index == self.media.tags.len() {
            self.index = 0;
            self.pass += 1;
        }
        (tag, timestamp)
    }

    fn skip_setup_after_first_pass(&mut self) {
        // `parse` guarantees at least one non-setup tag, so this ends within one pass.
        while self.pass > 0 && self.media.tags[self.index].setup {
            self.index += 1;
            if self.index == self.media.tags.len() {
                self.index = 0;
                self.pass += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AVC_CONFIG: &[u8] = &[0x17, 0, 0, 0, 0, 1];
    const AVC_KEYFRAME: &[u8] = &[0x17, 1, 0, 0, 0, 9];
    const AVC_FRAME: &[u8] = &[0x27, 1, 0, 0, 0, 9];
    const AAC_CONFIG: &[u8] = &[0xaf, 0, 0x11, 0x90];
    const AAC_FRAME: &[u8] = &[0xaf, 1, 0x21];

    /// A file starting at 1000 ms: metadata, both configs, then video every 40 ms (3 frames) and
    /// audio every 25 ms (4 frames).
    fn file() -> Vec<u8> {
        let mut out = BytesMut::from(&flv::FILE_HEADER[..]);
        let meta = amf0::encode_all(&["onMetaData".into(), amf0::object(&[])]);
        flv::write_tag(&mut out, flv::TAG_SCRIPT_DATA, 1000, &meta);
        flv::write_tag(&mut out, flv::TAG_VIDEO, 1000, AVC_CONFIG);
        flv::write_tag(&mut out, flv::TAG_AUDIO, 1000, AAC_CONFIG);
        for (ts, kind, body) in [
            (1000, flv::TAG_VIDEO, AVC_KEYFRAME),
            (1000, flv::TAG_AUDIO, AAC_FRAME),
            (1025, flv::TAG_AUDIO, AAC_FRAME),
            (1040, flv::TAG_VIDEO, AVC_FRAME),
            (1050, flv::TAG_AUDIO, AAC_FRAME),
            (1075, flv::TAG_AUDIO, AAC_FRAME),
            (1080, flv::TAG_VIDEO, AVC_FRAME),
        ] {
            flv::write_tag(&mut out, kind, ts, body);
        }
        out.to_vec()
    }

    #[test]
    fn parses_tags_relative_to_the_first_and_marks_setup() {
        let media = Media::parse(&file()).unwrap();
        assert_eq!(media.tags.len(), 10);
        let setup: Vec<bool> = media.tags.iter().map(|t| t.setup).collect();
        assert_eq!(&setup[..4], &[true, true, true, false]);
        assert!(setup[4..].iter().all(|s| !s));
        let keyframes: Vec<usize> = (0..10).filter(|&i| media.tags[i].keyframe).collect();
        assert_eq!(keyframes, [3]);
        assert_eq!(media.tags[9].timestamp_ms, 80);
        let meta = amf0::decode_all(&media.tags[0].body).unwrap();
        assert_eq!(meta[0].as_str(), Some("@setDataFrame"));
        assert_eq!(meta[1].as_str(), Some("onMetaData"));
    }

    #[test]
    fn loop_duration_covers_the_longest_track() {
        // Video ends at 80 + 40, audio at 75 + 25: the next pass starts at 120.
        assert_eq!(Media::parse(&file()).unwrap().loop_duration_ms, 120);
    }

    #[test]
    fn loops_with_rising_timestamps_and_setup_only_once() {
        let media = Media::parse(&file()).unwrap();
        let mut schedule = Schedule::new(&media);
        let first_pass: Vec<u64> = (0..10).map(|_| schedule.take().1).collect();
        assert_eq!(first_pass, [0, 0, 0, 0, 0, 25, 40, 50, 75, 80]);
        assert_eq!(schedule.next_timestamp(), 120);
        let (tag, timestamp) = schedule.take();
        assert_eq!((tag.body.as_ref(), timestamp), (AVC_KEYFRAME, 120));
        let second_pass: Vec<u64> = (0..6).map(|_| schedule.take().1).collect();
        assert_eq!(second_pass, [120, 145, 160, 170, 195, 200]);
        assert_eq!(schedule.take().1, 240);
    }

    #[test]
    fn timestamps_never_fall_over_many_passes() {
        let media = Media::parse(&file()).unwrap();
        let mut schedule = Schedule::new(&media);
        let mut last = 0;
        for _ in 0..1000 {
            let (_, timestamp) = schedule.take();
            assert!(timestamp >= last);
            last = timestamp;
        }
    }

    #[test]
    fn refuses_non_flv_and_media_less_files() {
        assert!(matches!(
            Media::parse(b"GIF89a..."),
            Err(ParseError::Header(_))
        ));
        assert_eq!(
            Media::parse(&flv::FILE_HEADER).unwrap_err(),
            ParseError::NoMedia
        );
    }

    #[test]
    fn ignores_a_truncated_last_tag() {
        let mut data = file();
        data.truncate(data.len() - 3);
        assert_eq!(Media::parse(&data).unwrap().tags.len(), 9);
    }
}
