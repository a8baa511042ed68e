//! Manifests rendered from a [`RecordingIndex`](crate::index::RecordingIndex): the HLS
//! multivariant playlist, media playlists (plain, LL-HLS, delta updates), the DASH MPD, the
//! answer to an LL-HLS blocking request, and a checker of the playlist rules that reloads of one
//! URL must keep.
//!
//! Everything here is a pure function of the index and of what the caller passes in: URIs
//! (names of segments stay those of [`segment_name`](crate::index::segment_name) and
//! [`init_name`](crate::index::init_name); the caller adds a prefix and the query string it
//! wants propagated), "now" for the MPD's `publishTime`, and the window to show.
//!
//! - [`hls`]: multivariant and media playlists (RFC 8216, draft-pantos-hls-rfc8216bis for
//!   LL-HLS and delta updates).
//! - [`window`]: which listed segments a live playlist or MPD shows (RFC 8216 §6.2.2).
//! - [`blocking`]: `_HLS_msn` / `_HLS_part` / `_HLS_skip` parsing and the hold-or-answer
//!   decision.
//! - [`dash`]: the MPD (ISO/IEC 23009-1), dynamic while live, static once finished.
//! - [`check`]: the rules a media playlist and two successive reloads of it must obey.

pub mod blocking;
pub mod check;
pub mod dash;
pub mod hls;
mod text;
pub mod time;
pub mod window;

pub use text::SegmentUris;

/// Small indexes the renderers' tests share.
#[cfg(test)]
pub(crate) mod tests {
    use std::collections::VecDeque;

    use crate::index::{
        OpenSegment, Part, Progress, RecordingIndex, Segment, StreamInfo, TrackIndex, TrackKind,
    };

    /// 2026-12-02T15:00:00.000Z.
    pub const T0_MS: i64 = 1_796_223_600_000;
    pub const VIDEO_RATE: u32 = 90_000;
    pub const AUDIO_RATE: u32 = 48_000;

    /// A live video track (90 kHz) of segments lasting `seconds`, one discontinuity run,
    /// 100 kB per second, no parts.
    pub fn track_with_durations(seconds: &[f64], target_duration: u32) -> TrackIndex {
        let mut track = empty_track(TrackKind::Video, VIDEO_RATE, target_duration);
        for &s in seconds {
            push_segment(
                &mut track,
                (s * f64::from(VIDEO_RATE)).round() as u64,
                false,
            );
        }
        track
    }

    /// `n` segments of 4 s, target duration `target_duration`.
    pub fn video_track(n: usize, target_duration: u32) -> TrackIndex {
        track_with_durations(&vec![4.0; n], target_duration)
    }

    pub fn empty_track(kind: TrackKind, timescale: u32, target_duration: u32) -> TrackIndex {
        TrackIndex {
            kind,
            timescale,
            target_duration,
            part_target: u64::from(timescale),
            discontinuity_sequence: 0,
            segments: VecDeque::new(),
            open: None,
            progress: Progress::Live,
            trimmed: false,
        }
    }

    /// Appends a segment of `duration` ticks after the last one (a new run when
    /// `discontinuity`; its wall clock then jumps 10 s ahead, as after a reconnect).
    pub fn push_segment(track: &mut TrackIndex, duration: u64, discontinuity: bool) {
        let (sequence, decode_time, pdt, run) = next_position(track, discontinuity);
        track.segments.push_back(Segment {
            sequence,
            decode_time,
            duration,
            program_date_time_ms: pdt,
            discontinuity,
            discontinuity_number: run,
            size: duration * 100_000 / u64::from(track.timescale),
            parts: Vec::new(),
        });
    }

    /// Where the next segment starts: (sequence, decode time, wall clock, run).
    fn next_position(track: &TrackIndex, discontinuity: bool) -> (u64, u64, i64, u64) {
        match track.segments.back() {
            None => (0, 0, T0_MS, 0),
            Some(last) => {
                let ms = (last.duration * 1000 / u64::from(track.timescale)) as i64;
                let gap = if discontinuity { 10_000 } else { 0 };
                let run = last.discontinuity_number + u64::from(discontinuity);
                (
                    last.sequence + 1,
                    last.end_time(),
                    last.program_date_time_ms + ms + gap,
                    run,
                )
            }
        }
    }

    /// Parts of `part` ticks (the last one shorter) covering `duration` ticks, laid out from
    /// byte 0 at 100 kB per second; the first is independent.
    pub fn parts_of(duration: u64, part: u64, timescale: u32) -> Vec<Part> {
        let mut parts = Vec::new();
        let (mut at, mut offset) = (0, 0);
        while at < duration {
            let d = part.min(duration - at);
            let length = d * 100_000 / u64::from(timescale);
            parts.push(Part {
                duration: d,
                independent: at == 0,
                offset,
                length,
            });
            at += d;
            offset += length;
        }
        parts
    }

    /// Gives the last `n` listed segments their parts (of the track's part target).
    pub fn with_parts(mut track: TrackIndex, n: usize) -> TrackIndex {
        let len = track.segments.len();
        let (part, timescale) = (track.part_target, track.timescale);
        for segment in track.segments.iter_mut().skip(len.saturating_sub(n)) {
            segment.parts = parts_of(segment.duration, part, timescale);
        }
        track
    }

    /// Opens the next segment with `parts` parts of the part target.
    pub fn with_open(mut track: TrackIndex, parts: usize) -> TrackIndex {
        let (sequence, decode_time, pdt, run) = next_position(&track, false);
        let duration = parts as u64 * track.part_target;
        track.open = Some(OpenSegment {
            sequence,
            decode_time,
            program_date_time_ms: pdt,
            discontinuity: false,
            discontinuity_number: run,
            parts: parts_of(duration, track.part_target, track.timescale),
        });
        track
    }

    /// The audio track matching a video track segment for segment (48 kHz).
    pub fn audio_like(video: &TrackIndex) -> TrackIndex {
        let scale = |t: u64| t * u64::from(AUDIO_RATE) / u64::from(VIDEO_RATE);
        let mut audio = video.clone();
        audio.kind = TrackKind::Audio;
        audio.timescale = AUDIO_RATE;
        audio.part_target = scale(video.part_target);
        for s in audio.segments.iter_mut() {
            s.decode_time = scale(s.decode_time);
            s.duration = scale(s.duration);
            s.size /= 20;
        }
        audio
    }

    pub fn stream_info() -> StreamInfo {
        StreamInfo {
            video_codec: Some("avc1.64001f".into()),
            audio_codec: Some("mp4a.40.2".into()),
            width: 640,
            height: 360,
            frame_rate: Some((30_000, 1001)),
            audio_sample_rate: AUDIO_RATE,
            audio_channels: 2,
            peak_bandwidth: 1_250_000,
            average_bandwidth: 1_000_000,
        }
    }

    pub fn recording(video: TrackIndex) -> RecordingIndex {
        let audio = audio_like(&video);
        RecordingIndex {
            stream: stream_info(),
            tracks: vec![video, audio],
        }
    }

    /// An index no writer should produce (every number at its limit) renders every kind of
    /// manifest without a panic.
    #[test]
    fn absurd_numbers_render_without_panicking() {
        use crate::render::{dash, hls, window::Window};
        let mut track = empty_track(TrackKind::Video, u32::MAX, u32::MAX);
        track.part_target = u64::MAX;
        for sequence in [u64::MAX - 2, u64::MAX - 1] {
            track.segments.push_back(Segment {
                sequence,
                decode_time: u64::MAX,
                duration: u64::MAX,
                program_date_time_ms: if sequence % 2 == 0 {
                    i64::MIN
                } else {
                    i64::MAX
                },
                discontinuity: true,
                discontinuity_number: u64::MAX,
                size: u64::MAX,
                parts: vec![Part {
                    duration: u64::MAX,
                    independent: true,
                    offset: u64::MAX,
                    length: u64::MAX,
                }],
            });
        }
        track.open = Some(OpenSegment {
            sequence: u64::MAX,
            decode_time: u64::MAX,
            program_date_time_ms: i64::MAX,
            discontinuity: false,
            discontinuity_number: 0,
            parts: vec![
                Part {
                    duration: u64::MAX,
                    independent: false,
                    offset: u64::MAX,
                    length: u64::MAX
                };
                2
            ],
        });
        let mut index = RecordingIndex {
            stream: stream_info(),
            tracks: vec![track.clone(), audio_like(&video_track(1, 4))],
        };
        index.stream.frame_rate = Some((u32::MAX, 1));
        for progress in [Progress::Live, Progress::Finished] {
            index.tracks[0].progress = progress;
            for window in [
                Window::Whole,
                Window::Live {
                    min_duration_ms: u64::MAX,
                },
            ] {
                let options = hls::MediaPlaylistOptions {
                    window,
                    low_latency: Some(hls::LowLatency {
                        part_hold_back_parts: u32::MAX,
                    }),
                    delta_updates: Some(u32::MAX),
                    skip_requested: true,
                    ..Default::default()
                };
                let _ = hls::render_media_playlist(&index.tracks[0], &options);
                let mpd = dash::MpdOptions {
                    window,
                    uris: Default::default(),
                    publish_time_ms: i64::MIN,
                    availability_start_ms: i64::MAX,
                    minimum_update_period_ms: u64::MAX,
                    suggested_presentation_delay_ms: u64::MAX,
                    utc_timing: None,
                    location: Some("&<>\"x"),
                };
                let text = dash::render_mpd(&index, &mpd);
                roxmltree::Document::parse(&text).unwrap();
            }
            let _ = hls::render_multivariant(&index, &|_| String::new());
            let request = crate::render::blocking::PlaylistRequest {
                msn: Some(u64::MAX),
                part: Some(u64::MAX),
                skip: true,
            };
            let _ = crate::render::blocking::decide(&index.tracks[0], &request);
        }
    }
}
