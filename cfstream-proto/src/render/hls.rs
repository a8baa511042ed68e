//! HLS playlists: the multivariant playlist and one media playlist per track (RFC 8216, with
//! LL-HLS parts, blocking reload and delta updates from draft-pantos-hls-rfc8216bis).
//!
//! Tag choices, in brief (why each is there):
//! - `EXT-X-VERSION:7` for plain playlists (fMP4 with `EXT-X-MAP` needs 6), 9 when LL-HLS or
//!   delta updates are on (`EXT-X-SKIP` needs 9); one URL keeps one version across reloads.
//! - `EXT-X-DISCONTINUITY-SEQUENCE` is the discontinuity number of the first segment of the
//!   window, skipped ones included, and `EXT-X-DISCONTINUITY` is written where the number
//!   changes, so every segment's number is the same in every reload that shows it.
//! - `EXT-X-MAP` opens every discontinuity run, and is repeated after `EXT-X-SKIP` so a delta
//!   update names the init segment of what it lists.
//! - Parts (`EXT-X-PART`) are listed for the open segment and for every listed segment that
//!   ends within three target durations of the playlist's end.

use std::fmt::Write;

use super::text::{EscapedUris, SegmentUris, push_hls_seconds, push_u64, push_uri};
use super::window::Window;
use crate::index::{OpenSegment, Part, Progress, RecordingIndex, Segment, TrackIndex, TrackKind};

/// LL-HLS settings of a media playlist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LowLatency {
    /// `PART-HOLD-BACK` in part targets. The draft requires at least 2 and recommends 3;
    /// values below 3 are raised to 3.
    pub part_hold_back_parts: u32,
}

impl Default for LowLatency {
    fn default() -> Self {
        LowLatency {
            part_hold_back_parts: 3,
        }
    }
}

/// How one media playlist is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaPlaylistOptions<'a> {
    pub window: Window,
    pub uris: SegmentUris<'a>,
    /// LL-HLS: parts, a preload hint, `CAN-BLOCK-RELOAD=YES`. `None`: a plain playlist.
    pub low_latency: Option<LowLatency>,
    /// Delta updates: `CAN-SKIP-UNTIL` in target durations (the draft's minimum, 6, when
    /// less). `None`: not offered, `_HLS_skip` is ignored.
    pub delta_updates: Option<u32>,
    /// The request asked for a delta update (`_HLS_skip=YES` or `v2`).
    pub skip_requested: bool,
}

impl Default for MediaPlaylistOptions<'_> {
    fn default() -> Self {
        MediaPlaylistOptions {
            window: Window::Whole,
            uris: SegmentUris::default(),
            low_latency: None,
            delta_updates: None,
            skip_requested: false,
        }
    }
}

/// The smallest `CAN-SKIP-UNTIL` the draft allows, in target durations.
pub const MIN_SKIP_UNTIL_TARGET_DURATIONS: u32 = 6;

/// The `GROUP-ID` of the audio rendition in the multivariant playlist.
pub const AUDIO_GROUP_ID: &str = "audio";

/// The multivariant playlist: one variant (the video media playlist with audio as a rendition
/// group, or the only track's playlist). `media_uri` gives each track's media playlist URI,
/// query string included; it is percent-encoded where it could break the playlist.
pub fn render_multivariant(
    index: &RecordingIndex,
    media_uri: &dyn Fn(TrackKind) -> String,
) -> String {
    let stream = &index.stream;
    let video = index.track(TrackKind::Video);
    let audio = index.track(TrackKind::Audio);
    let mut out = String::with_capacity(512);
    out.push_str("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let audio_group = video.is_some() && audio.is_some();
    if audio_group {
        out.push_str("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"");
        out.push_str(AUDIO_GROUP_ID);
        out.push_str("\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES");
        if stream.audio_channels > 0 {
            let _ = write!(out, ",CHANNELS=\"{}\"", stream.audio_channels);
        }
        out.push_str(",URI=\"");
        push_uri(&mut out, &media_uri(TrackKind::Audio));
        out.push_str("\"\n");
    }
    let (peak, average) = variant_bandwidth(index);
    let _ = write!(
        out,
        "#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average}"
    );
    let codecs: Vec<&str> = [&stream.video_codec, &stream.audio_codec]
        .into_iter()
        .zip([video.is_some(), audio.is_some()])
        .filter_map(|(codec, present)| codec.as_deref().filter(|_| present))
        .collect();
    if !codecs.is_empty() {
        out.push_str(",CODECS=\"");
        push_uri(&mut out, &codecs.join(","));
        out.push('"');
    }
    if video.is_some() && stream.width > 0 && stream.height > 0 {
        let _ = write!(out, ",RESOLUTION={}x{}", stream.width, stream.height);
    }
    if let (Some(_), Some((num, den))) = (video, stream.frame_rate)
        && den > 0
    {
        out.push_str(",FRAME-RATE=");
        push_hls_seconds(&mut out, u64::from(num), den);
    }
    if audio_group {
        let _ = write!(out, ",AUDIO=\"{AUDIO_GROUP_ID}\"");
    }
    out.push('\n');
    let main = if video.is_some() {
        TrackKind::Video
    } else {
        TrackKind::Audio
    };
    push_uri(&mut out, &media_uri(main));
    out.push('\n');
    out
}

/// `BANDWIDTH` and `AVERAGE-BANDWIDTH`: the stream's own figures, or the sum of its tracks'
/// when the stream has none yet.
fn variant_bandwidth(index: &RecordingIndex) -> (u64, u64) {
    let stream = &index.stream;
    if stream.peak_bandwidth > 0 {
        let average = if stream.average_bandwidth > 0 {
            stream.average_bandwidth
        } else {
            stream.peak_bandwidth
        };
        return (stream.peak_bandwidth, average);
    }
    let sum =
        |f: fn(&TrackIndex) -> u64| index.tracks.iter().map(f).fold(0u64, u64::saturating_add);
    (
        sum(TrackIndex::peak_bandwidth),
        sum(TrackIndex::average_bandwidth),
    )
}

/// `EXT-X-PLAYLIST-TYPE` of a playlist showing `window` of `track`: `EVENT` while the whole
/// recording is listed live (DVR), `VOD` once it is finished, none for a sliding window or a
/// trimmed recording.
pub fn playlist_type(track: &TrackIndex, window: Window) -> Option<&'static str> {
    if window != Window::Whole || track.trimmed {
        return None;
    }
    Some(match track.progress {
        Progress::Live => "EVENT",
        Progress::Finished => "VOD",
    })
}

/// The media playlist of one track.
pub fn render_media_playlist(track: &TrackIndex, options: &MediaPlaylistOptions) -> String {
    let first = options.window.first_index(track).min(track.segments.len());
    let shown = track.segments.range(first..);
    let live = track.progress == Progress::Live;
    let open = track
        .open
        .as_ref()
        .filter(|_| live && options.low_latency.is_some());
    let skipped = skipped_segments(track, first, options);
    let uris = options.uris.escaped();
    let mut out = String::with_capacity(1024 + (shown.len() - skipped) * 96);
    push_header(&mut out, track, first, options);
    if skipped > 0 {
        let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }
    let parts_from = if live && options.low_latency.is_some() {
        parts_listed_from(track, first, open)
    } else {
        usize::MAX
    };
    // The run of the segment before the next one written, and whether that one must repeat
    // its init segment (the first of the playlist, the first after a skip).
    let mut previous_run = None;
    let mut needs_map = true;
    if skipped > 0 {
        previous_run = Some(track.segments[first + skipped - 1].discontinuity_number);
    }
    let from = first + skipped;
    for (i, segment) in (from..).zip(track.segments.range(from..)) {
        let start = SegmentStart {
            run: segment.discontinuity_number,
            program_date_time_ms: segment.program_date_time_ms,
        };
        push_segment_start(&mut out, track.kind, &uris, previous_run, needs_map, start);
        previous_run = Some(segment.discontinuity_number);
        needs_map = false;
        if i >= parts_from {
            push_parts(&mut out, track, segment.sequence, &segment.parts, &uris);
        }
        push_extinf(&mut out, track, segment, &uris);
    }
    if let Some(open) = open {
        push_open_segment(&mut out, track, open, previous_run, needs_map, &uris);
    }
    if live && options.low_latency.is_some() {
        push_preload_hint(&mut out, track, open, &uris);
    }
    if !live {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

fn push_header(out: &mut String, track: &TrackIndex, first: usize, options: &MediaPlaylistOptions) {
    let version = if options.low_latency.is_some() || options.delta_updates.is_some() {
        9
    } else {
        7
    };
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{}\n",
        track.target_duration
    );
    push_server_control(out, track, options);
    if options.low_latency.is_some() {
        out.push_str("#EXT-X-PART-INF:PART-TARGET=");
        push_hls_seconds(out, track.part_target, track.timescale);
        out.push('\n');
    }
    let (sequence, run) = match (track.segments.get(first), &track.open) {
        (Some(s), _) => (s.sequence, s.discontinuity_number),
        (None, Some(o)) => (o.sequence, o.discontinuity_number),
        (None, None) => (track.next_sequence(), track.discontinuity_sequence),
    };
    let _ = write!(
        out,
        "#EXT-X-MEDIA-SEQUENCE:{sequence}\n#EXT-X-DISCONTINUITY-SEQUENCE:{run}\n"
    );
    if let Some(kind) = playlist_type(track, options.window) {
        let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:{kind}");
    }
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
}

fn push_server_control(out: &mut String, track: &TrackIndex, options: &MediaPlaylistOptions) {
    if options.low_latency.is_none() && options.delta_updates.is_none() {
        return;
    }
    out.push_str("#EXT-X-SERVER-CONTROL:");
    let mut separator = "";
    if options.low_latency.is_some() {
        out.push_str("CAN-BLOCK-RELOAD=YES");
        separator = ",";
    }
    if let Some(until) = skip_until_ticks(track, options) {
        out.push_str(separator);
        out.push_str("CAN-SKIP-UNTIL=");
        push_hls_seconds(out, until, track.timescale);
        separator = ",";
    }
    if let Some(ll) = options.low_latency {
        out.push_str(separator);
        out.push_str("PART-HOLD-BACK=");
        let parts = u64::from(ll.part_hold_back_parts.max(3));
        push_hls_seconds(
            out,
            parts.saturating_mul(track.part_target),
            track.timescale,
        );
    }
    out.push('\n');
}

/// `CAN-SKIP-UNTIL` in ticks, when delta updates are offered.
fn skip_until_ticks(track: &TrackIndex, options: &MediaPlaylistOptions) -> Option<u64> {
    let durations = options.delta_updates?.max(MIN_SKIP_UNTIL_TARGET_DURATIONS);
    Some(u64::from(durations).saturating_mul(track.target_duration_ticks()))
}

/// How many segments at the head of the window a delta update replaces with `EXT-X-SKIP`:
/// those that end at least `CAN-SKIP-UNTIL` before the end of the listed segments. 0 unless a
/// delta update was asked for and is offered, or when the playlist is too short to have any.
pub fn skipped_segments(track: &TrackIndex, first: usize, options: &MediaPlaylistOptions) -> usize {
    let Some(until) = skip_until_ticks(track, options).filter(|_| options.skip_requested) else {
        return 0;
    };
    // Segment i is skipped when the segments after it last at least CAN-SKIP-UNTIL. Counting
    // from the end reads only the last few segments of a long DVR window.
    let mut after = 0u64;
    for (i, segment) in track.segments.iter().enumerate().skip(first).rev() {
        if after >= until {
            return i + 1 - first;
        }
        after = after.saturating_add(segment.duration);
    }
    0
}

/// Index of the first listed segment whose parts are listed: the first that ends within three
/// target durations of the playlist's end (the open segment's last part, or the last segment).
fn parts_listed_from(track: &TrackIndex, first: usize, open: Option<&OpenSegment>) -> usize {
    let horizon = track.target_duration_ticks().saturating_mul(3);
    let mut after = open.map_or(0, OpenSegment::parts_duration);
    let mut from = track.segments.len();
    for (i, segment) in track.segments.iter().enumerate().skip(first).rev() {
        if after >= horizon {
            break;
        }
        from = i;
        after = after.saturating_add(segment.duration);
    }
    from
}

/// What opens a segment's lines: its run (for `EXT-X-DISCONTINUITY` and `EXT-X-MAP`) and its
/// wall clock.
#[derive(Clone, Copy)]
struct SegmentStart {
    run: u64,
    program_date_time_ms: i64,
}

fn push_segment_start(
    out: &mut String,
    kind: TrackKind,
    uris: &EscapedUris,
    previous_run: Option<u64>,
    needs_map: bool,
    start: SegmentStart,
) {
    let new_run = previous_run.is_some_and(|run| run != start.run);
    if new_run {
        out.push_str("#EXT-X-DISCONTINUITY\n");
    }
    if new_run || needs_map {
        out.push_str("#EXT-X-MAP:URI=\"");
        uris.push_init(out, kind, start.run);
        out.push_str("\"\n");
    }
    out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
    super::time::push_iso8601_ms(out, start.program_date_time_ms);
    out.push('\n');
}

fn push_extinf(out: &mut String, track: &TrackIndex, segment: &Segment, uris: &EscapedUris) {
    out.push_str("#EXTINF:");
    push_hls_seconds(out, segment.duration, track.timescale);
    out.push_str(",\n");
    uris.push_segment(out, track.kind, segment.sequence);
    out.push('\n');
}

fn push_parts(
    out: &mut String,
    track: &TrackIndex,
    sequence: u64,
    parts: &[Part],
    uris: &EscapedUris,
) {
    for part in parts {
        out.push_str("#EXT-X-PART:DURATION=");
        push_hls_seconds(out, part.duration, track.timescale);
        out.push_str(",URI=\"");
        uris.push_segment(out, track.kind, sequence);
        out.push_str("\",BYTERANGE=\"");
        push_u64(out, part.length);
        out.push('@');
        push_u64(out, part.offset);
        out.push('"');
        if part.independent {
            out.push_str(",INDEPENDENT=YES");
        }
        out.push('\n');
    }
}

fn push_open_segment(
    out: &mut String,
    track: &TrackIndex,
    open: &OpenSegment,
    previous_run: Option<u64>,
    needs_map: bool,
    uris: &EscapedUris,
) {
    let start = SegmentStart {
        run: open.discontinuity_number,
        program_date_time_ms: open.program_date_time_ms,
    };
    push_segment_start(out, track.kind, uris, previous_run, needs_map, start);
    push_parts(out, track, open.sequence, &open.parts, uris);
}

/// `EXT-X-PRELOAD-HINT` for the next part: the rest of the open segment's file from where its
/// last part ended, or the start of the next segment's file between segments.
fn push_preload_hint(
    out: &mut String,
    track: &TrackIndex,
    open: Option<&OpenSegment>,
    uris: &EscapedUris,
) {
    let (sequence, start) = match open {
        Some(open) => (open.sequence, open.next_part_offset()),
        None => (track.next_sequence(), 0),
    };
    out.push_str("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"");
    uris.push_segment(out, track.kind, sequence);
    let _ = writeln!(out, "\",BYTERANGE-START={start}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::*;

    const LIVE: Window = Window::Live { min_duration_ms: 0 };

    fn plain(window: Window) -> MediaPlaylistOptions<'static> {
        MediaPlaylistOptions {
            window,
            ..Default::default()
        }
    }

    /// Parses with m3u8-rs (an independent reader) and checks what every playlist must hold.
    fn parse(text: &str) -> m3u8_rs::MediaPlaylist {
        let playlist = m3u8_rs::parse_media_playlist_res(text.as_bytes())
            .unwrap_or_else(|e| panic!("m3u8-rs refused:\n{text}\n{e:?}"));
        let mut last_pdt = None;
        for segment in &playlist.segments {
            assert!(
                (segment.duration.round() as u64) <= playlist.target_duration,
                "EXTINF over target:\n{text}"
            );
            let pdt = segment.program_date_time.expect("a PDT per segment");
            assert!(
                last_pdt.is_none_or(|l| l < pdt),
                "PDT not increasing:\n{text}"
            );
            last_pdt = Some(pdt);
        }
        let violations = crate::render::check::check_text(text);
        assert_eq!(violations, Ok(vec![]), "{text}");
        playlist
    }

    #[test]
    fn a_live_window_of_three_target_durations() {
        let track = video_track(5, 4);
        let text = render_media_playlist(&track, &plain(LIVE));
        assert_eq!(
            text,
            "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:2
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init-00000000.v.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:08.000Z
#EXTINF:4.000,
seg-00000002.v.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:12.000Z
#EXTINF:4.000,
seg-00000003.v.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:16.000Z
#EXTINF:4.000,
seg-00000004.v.m4s
"
        );
        let parsed = parse(&text);
        assert_eq!(parsed.media_sequence, 2);
        assert_eq!(parsed.segments.len(), 3);
        assert!(!parsed.end_list);
        assert_eq!(parsed.playlist_type, None);
    }

    #[test]
    fn a_live_ll_hls_playlist_with_an_open_segment() {
        let track = with_open(with_parts(video_track(4, 4), 2), 2);
        let options = MediaPlaylistOptions {
            window: LIVE,
            uris: SegmentUris {
                prefix: "",
                query: "token=abc",
            },
            low_latency: Some(LowLatency::default()),
            delta_updates: Some(6),
            skip_requested: false,
        };
        let text = render_media_playlist(&track, &options);
        assert_eq!(
            text,
            "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:4
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=24.000,PART-HOLD-BACK=3.000
#EXT-X-PART-INF:PART-TARGET=1.000
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init-00000000.v.mp4?token=abc\"
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:04.000Z
#EXTINF:4.000,
seg-00000001.v.m4s?token=abc
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:08.000Z
#EXT-X-PART:DURATION=1.000,URI=\"seg-00000002.v.m4s?token=abc\",BYTERANGE=\"100000@0\",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.000,URI=\"seg-00000002.v.m4s?token=abc\",BYTERANGE=\"100000@100000\"
#EXT-X-PART:DURATION=1.000,URI=\"seg-00000002.v.m4s?token=abc\",BYTERANGE=\"100000@200000\"
#EXT-X-PART:DURATION=1.000,URI=\"seg-00000002.v.m4s?token=abc\",BYTERANGE=\"100000@300000\"
#EXTINF:4.000,
seg-00000002.v.m4s?token=abc
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:12.000Z
#EXT-X-PART:DURATION=1.000,URI=\"seg-00000003.v.m4s?token=abc\",BYTERANGE=\"100000@0\",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.000,URI=\"seg-00000003.v.m4s?token=abc\",BYTERANGE=\"100000@100000\"
#EXT-X-PART:DURATION=1.000,URI=\"seg-00000003.v.m4s?token=abc\",BYTERANGE=\"100000@200000\"
#EXT-X-PART:DURATION=1.000,URI=\"seg-00000003.v.m4s?token=abc\",BYTERANGE=\"100000@300000\"
#EXTINF:4.000,
seg-00000003.v.m4s?token=abc
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:16.000Z
#EXT-X-PART:DURATION=1.000,URI=\"seg-00000004.v.m4s?token=abc\",BYTERANGE=\"100000@0\",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.000,URI=\"seg-00000004.v.m4s?token=abc\",BYTERANGE=\"100000@100000\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg-00000004.v.m4s?token=abc\",BYTERANGE-START=200000
"
        );
        let parsed = parse(&text);
        assert_eq!(parsed.media_sequence, 1);
        assert_eq!(parsed.segments.len(), 3);
        let parts =
            |s: &m3u8_rs::MediaSegment| s.unknown_tags.iter().filter(|t| t.tag == "X-PART").count();
        assert_eq!(parts(&parsed.segments[1]), 4);
        assert_eq!(parts(&parsed.segments[2]), 4);
    }

    #[test]
    fn between_segments_the_hint_names_the_next_file() {
        let track = with_parts(video_track(3, 4), 1);
        let options = MediaPlaylistOptions {
            low_latency: Some(LowLatency {
                part_hold_back_parts: 1,
            }),
            ..plain(LIVE)
        };
        let text = render_media_playlist(&track, &options);
        assert!(
            text.contains("PART-HOLD-BACK=3.000\n"),
            "raised to 3 parts:\n{text}"
        );
        assert!(
            text.ends_with(
                "seg-00000002.v.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg-00000003.v.m4s\",BYTERANGE-START=0\n"
            ),
            "{text}"
        );
        parse(&text);
    }

    #[test]
    fn a_dvr_playlist_is_an_event_and_a_finished_one_vod() {
        let mut track = video_track(2, 4);
        let text = render_media_playlist(&track, &plain(Window::Whole));
        assert_eq!(
            text,
            "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:EVENT
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init-00000000.v.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:00.000Z
#EXTINF:4.000,
seg-00000000.v.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:04.000Z
#EXTINF:4.000,
seg-00000001.v.m4s
"
        );
        assert_eq!(
            parse(&text).playlist_type,
            Some(m3u8_rs::MediaPlaylistType::Event)
        );
        track.progress = Progress::Finished;
        track.open = None;
        let finished = render_media_playlist(&track, &plain(Window::Whole));
        assert_eq!(
            finished,
            text.replace("EVENT", "VOD") + "#EXT-X-ENDLIST\n",
            "the same lines, typed VOD and ended"
        );
        let parsed = parse(&finished);
        assert!(parsed.end_list);
        assert_eq!(parsed.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
    }

    #[test]
    fn a_finished_live_window_keeps_sliding_and_ends() {
        let mut track = with_open(with_parts(video_track(5, 4), 3), 1);
        track.progress = Progress::Finished;
        let options = MediaPlaylistOptions {
            low_latency: Some(LowLatency::default()),
            ..plain(LIVE)
        };
        let text = render_media_playlist(&track, &options);
        assert!(
            !text.contains("#EXT-X-PART:") && !text.contains("PRELOAD-HINT"),
            "{text}"
        );
        assert!(
            text.ends_with("seg-00000004.v.m4s\n#EXT-X-ENDLIST\n"),
            "{text}"
        );
        let parsed = parse(&text);
        assert_eq!(
            parsed.media_sequence, 2,
            "the window did not jump back to 0"
        );
        assert_eq!(parsed.playlist_type, None);
    }

    #[test]
    fn a_discontinuity_opens_a_run_with_its_own_init_segment() {
        let mut track = video_track(1, 4);
        push_segment(&mut track, 3 * 90_000, true);
        let text = render_media_playlist(&track, &plain(Window::Whole));
        assert!(
            text.ends_with(
                "seg-00000000.v.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init-00000001.v.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:14.000Z
#EXTINF:3.000,
seg-00000001.v.m4s
"
            ),
            "{text}"
        );
        let parsed = parse(&text);
        assert!(parsed.segments[1].discontinuity);
        assert_eq!(
            parsed.segments[1].map.as_ref().map(|m| m.uri.as_str()),
            Some("init-00000001.v.mp4")
        );
    }

    #[test]
    fn a_trimmed_head_is_neither_event_nor_vod_and_counts_from_where_it_starts() {
        let mut track = video_track(2, 4);
        push_segment(&mut track, 4 * 90_000, true);
        push_segment(&mut track, 4 * 90_000, false);
        track.segments.drain(..2);
        track.trimmed = true;
        track.discontinuity_sequence = 1;
        track.progress = Progress::Finished;
        let text = render_media_playlist(&track, &plain(Window::Whole));
        assert_eq!(
            text,
            "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:2
#EXT-X-DISCONTINUITY-SEQUENCE:1
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init-00000001.v.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:18.000Z
#EXTINF:4.000,
seg-00000002.v.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:22.000Z
#EXTINF:4.000,
seg-00000003.v.m4s
#EXT-X-ENDLIST
"
        );
        let parsed = parse(&text);
        assert_eq!(parsed.discontinuity_sequence, 1);
        assert!(!parsed.segments[0].discontinuity);
    }

    fn delta(skip_requested: bool) -> MediaPlaylistOptions<'static> {
        MediaPlaylistOptions {
            delta_updates: Some(1), // raised to 6
            skip_requested,
            ..plain(Window::Whole)
        }
    }

    #[test]
    fn a_delta_update_skips_what_ends_before_the_skip_boundary() {
        let mut track = video_track(18, 4);
        push_segment(&mut track, 4 * 90_000, true);
        push_segment(&mut track, 4 * 90_000, false);
        // 80 s listed, CAN-SKIP-UNTIL 24 s: the 14 segments ending by 56 s go.
        let full = render_media_playlist(&track, &delta(false));
        let text = render_media_playlist(&track, &delta(true));
        assert!(
            full.contains("#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=24.000\n"),
            "{full}"
        );
        assert!(!full.contains("EXT-X-SKIP"));
        let head = "#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SKIP:SKIPPED-SEGMENTS=14
#EXT-X-MAP:URI=\"init-00000000.v.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:56.000Z
#EXTINF:4.000,
seg-00000014.v.m4s
";
        assert!(text.contains(head), "{text}");
        let tail_of = |t: &str| t[t.find("seg-00000015.v.m4s").unwrap()..].to_string();
        assert_eq!(
            tail_of(&text),
            tail_of(&full),
            "the same segments after the skip"
        );
        assert!(text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-00000001.v.mp4\""));
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n"));
        parse(&full);
        // m3u8-rs keeps EXT-X-SKIP as an unknown tag; the checker counts it.
        assert_eq!(parse(&text).segments.len(), 6);
    }

    #[test]
    fn a_playlist_shorter_than_the_skip_boundary_is_sent_whole() {
        let track = video_track(6, 4); // exactly 24 s: nothing ends before the boundary
        assert_eq!(
            render_media_playlist(&track, &delta(true)),
            render_media_playlist(&track, &delta(false))
        );
        let plain_request = MediaPlaylistOptions {
            delta_updates: None,
            ..delta(true)
        };
        let long = video_track(40, 4);
        assert!(!render_media_playlist(&long, &plain_request).contains("SKIP"));
    }

    #[test]
    fn the_multivariant_playlist_names_codecs_and_the_audio_rendition() {
        let index = recording(video_track(3, 4));
        let uri = |kind: TrackKind| match kind {
            TrackKind::Video => "video.m3u8?protocol=llhls&t=a\"b".to_string(),
            TrackKind::Audio => "audio.m3u8?protocol=llhls".to_string(),
        };
        let text = render_multivariant(&index, &uri);
        assert_eq!(
            text,
            "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio.m3u8?protocol=llhls\"
#EXT-X-STREAM-INF:BANDWIDTH=1250000,AVERAGE-BANDWIDTH=1000000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=29.970,AUDIO=\"audio\"
video.m3u8?protocol=llhls&t=a%22b
"
        );
        let parsed = m3u8_rs::parse_master_playlist_res(text.as_bytes()).unwrap();
        let variant = &parsed.variants[0];
        assert_eq!(variant.bandwidth, 1_250_000);
        assert_eq!(variant.average_bandwidth, Some(1_000_000));
        assert_eq!(variant.codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
        assert_eq!(variant.audio.as_deref(), Some("audio"));
        assert_eq!(parsed.alternatives.len(), 1);
        assert!(parsed.independent_segments);
    }

    #[test]
    fn an_audio_only_stream_is_its_own_variant_and_bandwidth_falls_back_to_the_tracks() {
        let mut index = recording(video_track(3, 4));
        index.tracks.remove(0);
        index.stream.peak_bandwidth = 0;
        index.stream.average_bandwidth = 0;
        let text = render_multivariant(&index, &|_| "a.m3u8".into());
        assert_eq!(
            text,
            "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=40000,AVERAGE-BANDWIDTH=40000,CODECS=\"mp4a.40.2\"
a.m3u8
"
        );
        m3u8_rs::parse_master_playlist_res(text.as_bytes()).unwrap();
    }

    /// One step of a live recording: a part more in the open segment; the fourth closes it
    /// (every fifth segment after a reconnect). Parts are kept for the last three segments.
    fn grow(track: &mut TrackIndex) {
        let Some(open) = track.open.as_mut() else {
            *track = with_open(track.clone(), 1);
            if track.segments.len() % 5 == 4 {
                let open = track.open.as_mut().unwrap();
                open.discontinuity = true;
                open.discontinuity_number += 1;
                open.program_date_time_ms += 10_000;
            }
            return;
        };
        let next = parts_of(
            u64::from(track.timescale) * 4,
            track.part_target,
            track.timescale,
        )[open.parts.len()];
        open.parts.push(next);
        if open.parts.len() == 4 {
            let open = track.open.take().unwrap();
            track.segments.push_back(Segment {
                sequence: open.sequence,
                decode_time: open.decode_time,
                duration: open.parts_duration(),
                program_date_time_ms: open.program_date_time_ms,
                discontinuity: open.discontinuity,
                discontinuity_number: open.discontinuity_number,
                size: open.next_part_offset(),
                parts: open.parts,
            });
            let keep_from = track.segments.len().saturating_sub(3);
            for old in track.segments.range_mut(..keep_from) {
                old.parts.clear();
            }
        }
    }

    #[test]
    fn successive_reloads_of_every_kind_of_playlist_obey_the_rules() {
        let ll = Some(LowLatency::default());
        let kinds = [
            plain(LIVE),
            MediaPlaylistOptions {
                low_latency: ll,
                ..plain(LIVE)
            },
            MediaPlaylistOptions {
                low_latency: ll,
                delta_updates: Some(6),
                ..plain(Window::Whole)
            },
            MediaPlaylistOptions {
                delta_updates: Some(6),
                skip_requested: true,
                ..plain(Window::Whole)
            },
            MediaPlaylistOptions {
                low_latency: ll,
                delta_updates: Some(6),
                skip_requested: true,
                ..plain(LIVE)
            },
        ];
        let mut track = video_track(0, 4);
        let mut previous: Vec<Option<String>> = vec![None; kinds.len()];
        let mut skipped_some = false;
        for step in 0..=240 {
            if step < 240 {
                grow(&mut track);
            } else {
                track.progress = Progress::Finished;
            }
            for (kind, options) in kinds.iter().enumerate() {
                let text = render_media_playlist(&track, options);
                skipped_some |= text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=");
                let found = match &previous[kind] {
                    Some(before) => crate::render::check::check_reload_text(before, &text),
                    None => crate::render::check::check_text(&text),
                };
                assert_eq!(found, Ok(vec![]), "step {step}, kind {kind}:\n{text}");
                if !text.contains("EXT-X-SKIP") && track.segments.len() > 1 {
                    parse(&text);
                }
                previous[kind] = Some(text);
            }
        }
        assert!(skipped_some, "the delta updates were exercised");
        assert!(track.segments.iter().any(|s| s.discontinuity));
    }
}
