//! The segment index of a recording: what HLS media playlists, LL-HLS parts and DASH
//! SegmentTimelines are rendered from, in one model shared by the writer (cfhlssink) and the
//! server (controld).
//!
//! A recording has one CMAF track per media type ([`TrackKind`]): an init segment per
//! discontinuity run and media segments of one GOP each, made of parts (CMAF fragments: `moof` +
//! `mdat`). Video and audio are cut at the same media times and share media sequence numbers,
//! so segment `n` of either track covers the same interval. A segment file grows by one part at
//! a time; a part is addressed as a byte range of its segment file, complete on storage before it
//! is listed, and a segment is listed once its last part is written.
//!
//! Times are in the track's timescale (`TrackIndex::timescale` ticks per second). Within a track
//! the decode timeline is continuous over the whole recording: a segment starts where the previous
//! one ended, across discontinuities too (the time a publisher was away is not on the media
//! timeline; `program_date_time_ms` keeps the wall clock). Nothing here does I/O or reads a clock.

pub mod excerpt;
pub mod log;

use std::collections::VecDeque;

/// The two CMAF tracks a recording can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Video,
    Audio,
}

impl TrackKind {
    /// The short name used in file names: `v` or `a`.
    pub fn code(self) -> &'static str {
        match self {
            TrackKind::Video => "v",
            TrackKind::Audio => "a",
        }
    }
}

/// The name of segment `sequence` of a track: `seg-NNNNNNNN.v.m4s` / `seg-NNNNNNNN.a.m4s`
/// (the media sequence number, zero-padded to at least eight digits).
pub fn segment_name(track: TrackKind, sequence: u64) -> String {
    format!("seg-{sequence:08}.{}.m4s", track.code())
}

/// The name of the init segment of discontinuity run `discontinuity` of a track:
/// `init-NNNNNNNN.v.mp4` / `init-NNNNNNNN.a.mp4`.
pub fn init_name(track: TrackKind, discontinuity: u64) -> String {
    format!("init-{discontinuity:08}.{}.mp4", track.code())
}

/// Recognises the names of [`segment_name`] and [`init_name`]: `Some((kind, is_init, number))`.
/// Anything else (playlists, temporary files, other paths) is `None`, so a name that passes
/// cannot leave its directory.
pub fn parse_media_name(name: &str) -> Option<(TrackKind, bool, u64)> {
    let (stem, init) = if let Some(stem) = name.strip_prefix("seg-") {
        (stem, false)
    } else {
        (name.strip_prefix("init-")?, true)
    };
    let (digits, rest) = stem.split_once('.')?;
    let kind = match (rest, init) {
        ("v.m4s", false) | ("v.mp4", true) => TrackKind::Video,
        ("a.m4s", false) | ("a.mp4", true) => TrackKind::Audio,
        _ => return None,
    };
    if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((kind, init, digits.parse().ok()?))
}

/// A part (CMAF fragment) of a segment: a byte range of the segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// Ticks of the track's timescale.
    pub duration: u64,
    /// Starts with a random access point (for video: a keyframe; audio parts always are).
    pub independent: bool,
    /// Byte offset in the segment file.
    pub offset: u64,
    pub length: u64,
}

/// A listed (complete) media segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub sequence: u64,
    /// Decode time of its first sample (the `tfdt`), in ticks.
    pub decode_time: u64,
    /// Ticks.
    pub duration: u64,
    /// Wall clock of its first frame (`EXT-X-PROGRAM-DATE-TIME`), milliseconds since the epoch.
    pub program_date_time_ms: i64,
    /// The first segment after a publisher came back (`EXT-X-DISCONTINUITY`, a new DASH Period).
    pub discontinuity: bool,
    /// Discontinuity sequence number of the run this segment belongs to (its init segment is
    /// `init_name(kind, discontinuity_number)`).
    pub discontinuity_number: u64,
    /// Size of the segment file in bytes.
    pub size: u64,
    /// Its parts, kept only for the last few segments of a live recording (LL-HLS lists parts of
    /// the segments within three target durations of the end); empty otherwise.
    pub parts: Vec<Part>,
}

impl Segment {
    /// Decode time just after its last sample, ticks: where the next segment starts.
    pub fn end_time(&self) -> u64 {
        self.decode_time.saturating_add(self.duration)
    }

    /// Bits per second of this segment (its file size over its duration); 0 when it lasts 0.
    pub fn bandwidth(&self, timescale: u32) -> u64 {
        bits_per_second(self.size, self.duration, timescale)
    }
}

fn bits_per_second(bytes: u64, ticks: u64, timescale: u32) -> u64 {
    if ticks == 0 {
        return 0;
    }
    let bits = u128::from(bytes) * 8 * u128::from(timescale) / u128::from(ticks);
    u64::try_from(bits).unwrap_or(u64::MAX)
}

/// The segment being written: the parts listed so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenSegment {
    pub sequence: u64,
    pub decode_time: u64,
    pub program_date_time_ms: i64,
    pub discontinuity: bool,
    pub discontinuity_number: u64,
    pub parts: Vec<Part>,
}

impl OpenSegment {
    /// Ticks of the parts listed so far.
    pub fn parts_duration(&self) -> u64 {
        (self.parts.iter()).fold(0, |sum, p| sum.saturating_add(p.duration))
    }

    /// Byte offset in the segment file where the next part will start.
    pub fn next_part_offset(&self) -> u64 {
        self.parts
            .last()
            .map_or(0, |p| p.offset.saturating_add(p.length))
    }
}

/// Whether a recording is still being written, and how its playlist is typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Segments are still added.
    Live,
    /// `EXT-X-ENDLIST`: nothing will be added.
    Finished,
}

/// One track of a recording: its listed segments (oldest first) and the one being written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackIndex {
    pub kind: TrackKind,
    /// Ticks per second: 90000 for video, the sampling rate for audio.
    pub timescale: u32,
    /// `EXT-X-TARGETDURATION`, seconds; fixed once the first segment is listed.
    pub target_duration: u32,
    /// `EXT-X-PART-INF:PART-TARGET`, in ticks; parts never exceed it.
    pub part_target: u64,
    /// Discontinuity sequence number of the first listed segment (`EXT-X-DISCONTINUITY-SEQUENCE`).
    pub discontinuity_sequence: u64,
    /// Listed segments, oldest first. Their sequence numbers are consecutive: the first is
    /// `EXT-X-MEDIA-SEQUENCE`. After `max-duration` trimmed the head it no longer starts at 0.
    pub segments: VecDeque<Segment>,
    /// The segment being written, once its first part is listed.
    pub open: Option<OpenSegment>,
    pub progress: Progress,
    /// The recording's head was trimmed (`max-duration`): the playlist can no longer be typed
    /// EVENT or VOD.
    pub trimmed: bool,
}

impl TrackIndex {
    /// Media sequence number of the first listed segment (or of the open one, when none is).
    pub fn media_sequence(&self) -> u64 {
        self.segments
            .front()
            .map(|s| s.sequence)
            .or(self.open.as_ref().map(|o| o.sequence))
            .unwrap_or(0)
    }

    /// The media sequence number the next listed segment will have.
    pub fn next_sequence(&self) -> u64 {
        self.open
            .as_ref()
            .map(|o| o.sequence)
            .or(self.segments.back().map(|s| s.sequence + 1))
            .unwrap_or(0)
    }

    /// Sum of listed segment durations, ticks.
    pub fn listed_duration(&self) -> u64 {
        self.segments.iter().map(|s| s.duration).sum()
    }

    /// The highest bits per second of a listed segment (a representation's `bandwidth`, a
    /// track's share of `BANDWIDTH`); 0 before the first segment is listed.
    pub fn peak_bandwidth(&self) -> u64 {
        // The densest segment found by cross-multiplying (one division, not one per segment).
        let densest = self
            .segments
            .iter()
            .filter(|s| s.duration > 0)
            .max_by(|a, b| {
                (u128::from(a.size) * u128::from(b.duration))
                    .cmp(&(u128::from(b.size) * u128::from(a.duration)))
            });
        densest.map_or(0, |s| s.bandwidth(self.timescale))
    }

    /// Bits per second over all listed segments together; 0 before the first is listed.
    pub fn average_bandwidth(&self) -> u64 {
        let (bytes, ticks) = self.segments.iter().fold((0u64, 0u64), |(b, t), s| {
            (b.saturating_add(s.size), t.saturating_add(s.duration))
        });
        bits_per_second(bytes, ticks, self.timescale)
    }

    /// `EXT-X-TARGETDURATION` in ticks.
    pub fn target_duration_ticks(&self) -> u64 {
        u64::from(self.target_duration) * u64::from(self.timescale)
    }
}

/// What the multivariant playlist and the MPD say about the stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamInfo {
    /// RFC 6381 codec string of the video track, e.g. `avc1.64001f` (from the SPS).
    pub video_codec: Option<String>,
    /// RFC 6381 codec string of the audio track, e.g. `mp4a.40.2` (from the
    /// AudioSpecificConfig).
    pub audio_codec: Option<String>,
    pub width: u32,
    pub height: u32,
    /// Frames per second as a fraction (numerator, denominator), when known.
    pub frame_rate: Option<(u32, u32)>,
    pub audio_sample_rate: u32,
    pub audio_channels: u32,
    /// Bits per second over the listed segments of both tracks: the highest segment's
    /// (`BANDWIDTH`) and the mean (`AVERAGE-BANDWIDTH`).
    pub peak_bandwidth: u64,
    pub average_bandwidth: u64,
}

/// A recording's whole index: the stream and its tracks (video first when both exist).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingIndex {
    pub stream: StreamInfo,
    pub tracks: Vec<TrackIndex>,
}

impl RecordingIndex {
    pub fn track(&self, kind: TrackKind) -> Option<&TrackIndex> {
        self.tracks.iter().find(|t| t.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_names_round_trip_and_refuse_anything_else() {
        assert_eq!(segment_name(TrackKind::Video, 7), "seg-00000007.v.m4s");
        assert_eq!(init_name(TrackKind::Audio, 2), "init-00000002.a.mp4");
        assert_eq!(
            parse_media_name("seg-123456789.a.m4s"),
            Some((TrackKind::Audio, false, 123_456_789))
        );
        assert_eq!(
            parse_media_name("init-00000000.v.mp4"),
            Some((TrackKind::Video, true, 0))
        );
        for bad in [
            "seg-7.v.m4s",
            "seg-00000007.v.mp4",
            "init-00000000.v.m4s",
            "seg-00000007.x.m4s",
            "../seg-00000007.v.m4s",
            "seg-0000000a.v.m4s",
            ".video.m3u8.tmp",
            "seg-00000007.ts",
        ] {
            assert_eq!(parse_media_name(bad), None, "{bad}");
        }
    }
}
