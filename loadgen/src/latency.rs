//! Segment latency: from the instant a publisher wrote the keyframe that closes a segment to the
//! instant a live playlist listing that segment was seen. The pure part: live playlist parsing,
//! the log of the segments a recording's playlist listed over time, the mapping of each segment
//! to its closing keyframe, and the totals.
//!
//! A server that cuts at every keyframe (cfhlssink, nginx-rtmp with `hls_fragment` ≤ the GOP)
//! starts segment 0 at the first keyframe, and segment `s` ends at the keyframe that opens
//! segment `s + 1`. So the end of segment `s`, relative to the first keyframe, is the sum of the
//! `EXTINF` durations of segments `0..=s`: the closing keyframe is the one sent at that media
//! time (within [`TOLERANCE_MS`]). A composition offset common to all keyframes cancels out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::parts::PartTotals;

/// How far a segment's cumulative end may be from the timestamp of the keyframe it is mapped
/// to. `EXTINF` has millisecond precision and FLV timestamps are milliseconds, so sums are exact
/// in practice; this only absorbs rounding by other servers.
pub const TOLERANCE_MS: u64 = 100;

/// A video keyframe as a publisher wrote it.
#[derive(Clone, Copy, Debug)]
pub struct KeyframeSent {
    /// Its RTMP timestamp (ms since the publish started).
    pub timestamp_ms: u64,
    /// When the write that carried it returned (the whole tag was in the socket).
    pub sent: Instant,
}

/// What a live media playlist lists.
#[derive(Clone, Debug, PartialEq)]
pub struct Playlist {
    pub target_duration_s: u64,
    pub media_sequence: u64,
    /// `EXTINF` of each listed segment, in order, in milliseconds.
    pub durations_ms: Vec<u64>,
    pub ended: bool,
}

/// Parses the tags this tool needs; None when the text is not a media playlist (no
/// `#EXTM3U` or no target duration). An `EXTINF` whose URI line is missing (a torn write) is
/// left out.
pub fn parse_playlist(text: &str) -> Option<Playlist> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next()? != "#EXTM3U" {
        return None;
    }
    let mut playlist = Playlist {
        target_duration_s: 0,
        media_sequence: 0,
        durations_ms: vec![],
        ended: false,
    };
    let mut target = None;
    let mut pending = None;
    for line in lines {
        if let Some(value) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            target = Some(value.parse().ok()?);
        } else if let Some(value) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            playlist.media_sequence = value.parse().ok()?;
        } else if let Some(value) = line.strip_prefix("#EXTINF:") {
            let seconds = value.split(',').next().unwrap_or_default().trim();
            pending = Some(seconds_to_ms(seconds)?);
        } else if line == "#EXT-X-ENDLIST" {
            playlist.ended = true;
        } else if !line.starts_with('#')
            && let Some(duration) = pending.take()
        {
            playlist.durations_ms.push(duration);
        }
    }
    playlist.target_duration_s = target?;
    Some(playlist)
}

/// `4`, `4.000`, `3.9999` → milliseconds, rounded to the nearest.
fn seconds_to_ms(text: &str) -> Option<u64> {
    let seconds: f64 = text.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).round() as u64)
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct SeenSegment {
    duration_ms: u64,
    /// When the first playlist listing it was read.
    seen: Instant,
}

/// The segments one recording's live playlist listed over time, by media sequence number.
#[derive(Clone, Debug, Default)]
pub struct SegmentLog {
    /// The largest `EXT-X-TARGETDURATION` read.
    pub target_duration_s: u64,
    segments: BTreeMap<u64, SeenSegment>,
}

impl SegmentLog {
    /// Records the segments `playlist` lists for the first time as seen at `now`; returns how
    /// many were new.
    pub fn update(&mut self, playlist: &Playlist, now: Instant) -> usize {
        self.target_duration_s = self.target_duration_s.max(playlist.target_duration_s);
        let mut new = 0;
        for (sequence, &duration_ms) in (playlist.media_sequence..).zip(&playlist.durations_ms) {
            self.segments.entry(sequence).or_insert_with(|| {
                new += 1;
                SeenSegment {
                    duration_ms,
                    seen: now,
                }
            });
        }
        new
    }

    pub fn len(&self) -> usize {
        self.segments.len()
    }
}

/// One recording's segments against one publish's keyframes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Closing keyframe sent → playlist listing the segment seen, per mapped segment.
    pub latencies: Vec<Duration>,
    /// Mapped segments whose latency exceeded the playlist's target duration.
    pub late: u64,
    /// Keyframes sent (but the first, which closes nothing) whose segment was never listed.
    pub missing: u64,
    /// Listed segments mapped to no keyframe sent, e.g. the last one, closed when the publisher
    /// left rather than by a keyframe.
    pub unmatched: u64,
}

/// Maps each segment of `log` to its closing keyframe among `keyframes` (in sending order).
/// While the log holds every segment from 0 on, a segment's closing keyframe is the one whose
/// timestamp is the cumulative duration after the first keyframe's; after a gap in the log (a
/// segment never seen), segment `s` is taken to close at keyframe `s + 1`.
pub fn evaluate(keyframes: &[KeyframeSent], log: &SegmentLog) -> Outcome {
    let mut outcome = Outcome::default();
    let Some(first) = keyframes.first() else {
        outcome.unmatched = log.segments.len() as u64;
        return outcome;
    };
    let relative: Vec<u64> = keyframes
        .iter()
        .map(|k| k.timestamp_ms.saturating_sub(first.timestamp_ms))
        .collect();
    let target = Duration::from_secs(log.target_duration_s);
    let mut matched = vec![false; keyframes.len()];
    let mut end_ms = Some(0);
    let mut next_sequence = 0;
    for (&sequence, segment) in &log.segments {
        end_ms = end_ms
            .filter(|_| sequence == next_sequence)
            .map(|end| end + segment.duration_ms);
        next_sequence = sequence + 1;
        let index = match end_ms {
            Some(end) => {
                nearest(&relative, end).filter(|&i| relative[i].abs_diff(end) <= TOLERANCE_MS)
            }
            None => usize::try_from(sequence + 1)
                .ok()
                .filter(|&i| i < keyframes.len()),
        };
        match index {
            Some(i) if i > 0 && !matched[i] => {
                matched[i] = true;
                let latency = segment.seen.saturating_duration_since(keyframes[i].sent);
                if latency > target {
                    outcome.late += 1;
                }
                outcome.latencies.push(latency);
            }
            _ => outcome.unmatched += 1,
        }
    }
    outcome.missing = matched.iter().skip(1).filter(|m| !**m).count() as u64;
    outcome
}

/// Index of the value of `sorted` closest to `value`.
fn nearest(sorted: &[u64], value: u64) -> Option<usize> {
    let after = sorted.partition_point(|&v| v < value);
    [
        after.checked_sub(1),
        (after < sorted.len()).then_some(after),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|&i| sorted[i].abs_diff(value))
}

/// The `q` quantile (0..=1) of `sorted` by nearest rank; None when empty.
pub fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// All connections together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    pub connections: usize,
    /// Connections with one publish and at most one recording, whose segments were mapped.
    pub tracked: usize,
    pub latencies: Vec<Duration>,
    pub late: u64,
    pub missing: u64,
    pub unmatched: u64,
    /// The largest target duration of the playlists read (0: none read).
    pub target_duration_s: u64,
    /// Times the kernel's inotify queue overflowed (updates may have been missed).
    pub overflows: u64,
    /// Playback requests that failed (and were tried again).
    pub request_errors: u64,
    /// Part latency, when the playlists were followed part by part.
    pub parts: Option<PartTotals>,
}

impl Totals {
    pub fn add(&mut self, outcome: Outcome) {
        self.tracked += 1;
        self.latencies.extend(outcome.latencies);
        self.late += outcome.late;
        self.missing += outcome.missing;
        self.unmatched += outcome.unmatched;
    }

    /// The machine-readable `latency:` line.
    pub fn line(&self) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let ms = |q: f64| {
            percentile(&sorted, q)
                .map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0))
                .unwrap_or_else(|| "none".into())
        };
        let parts = (self.parts.as_ref())
            .map(|parts| format!(" {}", parts.fields()))
            .unwrap_or_default();
        format!(
            "latency: connections={} tracked={} segments={} p50_ms={} p90_ms={} p99_ms={} \
             max_ms={} late={} missing={} unmatched={} target_duration_s={} overflows={} \
             request_errors={}{parts}",
            self.connections,
            self.tracked,
            sorted.len(),
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(1.0),
            self.late,
            self.missing,
            self.unmatched,
            self.target_duration_s,
            self.overflows,
            self.request_errors,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfstream_proto::index::{OpenSegment, Part, Progress, Segment, TrackIndex, TrackKind};
    use cfstream_proto::render::SegmentUris;
    use cfstream_proto::render::hls::{MediaPlaylistOptions, render_media_playlist};
    use cfstream_proto::render::window::Window;

    /// A video track as controld's index holds it: segments 3 and 4 (4 s and 4.001 s, 10 s
    /// target) listed, the next one open with a part (which a plain playlist does not show).
    fn live_track() -> TrackIndex {
        let segment = |sequence: u64, decode_time: u64, duration: u64| Segment {
            sequence,
            decode_time,
            duration,
            program_date_time_ms: 1_796_223_600_000,
            discontinuity: false,
            discontinuity_number: 0,
            size: 1000,
            parts: Vec::new(),
        };
        TrackIndex {
            kind: TrackKind::Video,
            timescale: 90_000,
            target_duration: 10,
            part_target: 45_000,
            discontinuity_sequence: 0,
            segments: [segment(3, 0, 360_000), segment(4, 360_000, 360_090)].into(),
            open: Some(OpenSegment {
                sequence: 5,
                decode_time: 720_090,
                program_date_time_ms: 1_796_223_608_001,
                discontinuity: false,
                discontinuity_number: 0,
                parts: vec![Part {
                    duration: 45_000,
                    independent: true,
                    offset: 0,
                    length: 100,
                }],
            }),
            progress: Progress::Live,
            trimmed: false,
        }
    }

    /// The media playlist controld renders of `track` for a live input's viewer.
    fn rendered(track: &TrackIndex) -> String {
        let options = MediaPlaylistOptions {
            window: Window::Live { min_duration_ms: 0 },
            uris: SegmentUris {
                prefix: "",
                query: "rec=v1",
            },
            ..Default::default()
        };
        render_media_playlist(track, &options)
    }

    fn playlist(sequence: u64, durations_ms: &[u64]) -> Playlist {
        Playlist {
            target_duration_s: 10,
            media_sequence: sequence,
            durations_ms: durations_ms.to_vec(),
            ended: false,
        }
    }

    /// Keyframes every `gop_ms` from `first_ms`, sent at `base` + their timestamp.
    fn keyframes(base: Instant, first_ms: u64, gop_ms: u64, count: u64) -> Vec<KeyframeSent> {
        (0..count)
            .map(|i| KeyframeSent {
                timestamp_ms: first_ms + i * gop_ms,
                sent: base + Duration::from_millis(i * gop_ms),
            })
            .collect()
    }

    #[test]
    fn parses_controld_media_playlists() {
        let mut track = live_track();
        let live = rendered(&track);
        assert_eq!(
            parse_playlist(&live),
            Some(playlist(3, &[4000, 4001])),
            "{live}"
        );
        track.progress = Progress::Finished;
        track.open = None;
        let ended = rendered(&track);
        assert!(parse_playlist(&ended).unwrap().ended, "{ended}");
    }

    #[test]
    fn leaves_out_a_torn_entry_and_refuses_non_playlists() {
        let torn = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.000,\nseg-0.ts\n#EXTINF:4.0";
        assert_eq!(parse_playlist(torn).unwrap().durations_ms, [4000]);
        assert_eq!(parse_playlist(""), None);
        assert_eq!(parse_playlist("#EXTM3U\n#EXTINF:4,\na.ts\n"), None);
        assert_eq!(parse_playlist("hello\n#EXT-X-TARGETDURATION:4\n"), None);
    }

    #[test]
    fn log_keeps_the_first_sighting() {
        let start = Instant::now();
        let later = start + Duration::from_secs(4);
        let mut log = SegmentLog::default();
        assert_eq!(log.update(&playlist(0, &[4000]), start), 1);
        assert_eq!(log.update(&playlist(0, &[4000, 4000]), later), 1);
        assert_eq!(log.segments[&0].seen, start);
        assert_eq!(log.segments[&1].seen, later);
        assert_eq!((log.len(), log.target_duration_s), (2, 10));
    }

    #[test]
    fn maps_each_segment_to_the_keyframe_that_closed_it() {
        let base = Instant::now();
        // Keyframes at 0, 4, 8, 12 s; segments 0..=2 closed by the keyframes at 4, 8, 12 s and
        // listed 30, 20 and 10 ms after each.
        let sent = keyframes(base, 0, 4000, 4);
        let mut log = SegmentLog::default();
        for (s, delay) in [(0u64, 30u64), (1, 20), (2, 10)] {
            let durations = vec![4000; s as usize + 1];
            let seen = base + Duration::from_millis((s + 1) * 4000 + delay);
            log.update(&playlist(0, &durations), seen);
        }
        let outcome = evaluate(&sent, &log);
        let ms: Vec<u128> = outcome.latencies.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [30, 20, 10]);
        assert_eq!(
            (outcome.late, outcome.missing, outcome.unmatched),
            (0, 0, 0)
        );
    }

    #[test]
    fn cumulative_durations_absorb_uneven_gops_and_a_first_timestamp() {
        let base = Instant::now();
        // Keyframes at 500, 4500, 6500, 12500 ms (GOPs 4, 2, 6 s).
        let sent: Vec<KeyframeSent> = [500u64, 4500, 6500, 12500]
            .iter()
            .map(|&t| KeyframeSent {
                timestamp_ms: t,
                sent: base + Duration::from_millis(t),
            })
            .collect();
        let mut log = SegmentLog::default();
        log.update(
            &playlist(0, &[4000, 2000, 6000]),
            base + Duration::from_millis(12_600),
        );
        let outcome = evaluate(&sent, &log);
        let ms: Vec<u128> = outcome.latencies.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [8100, 6100, 100]);
        assert_eq!(outcome.late, 0, "10 s target: none late");
    }

    #[test]
    fn counts_late_missing_and_unmatched() {
        let base = Instant::now();
        let sent = keyframes(base, 0, 4000, 5); // closes segments 0..=3
        let mut log = SegmentLog::default();
        // Segment 0 listed 11 s after its keyframe (late for a 10 s target); segment 1 never;
        // segment 2 on time; segment 3 never; segment 4 ends 2.5 s into the last GOP (the
        // publisher left): no keyframe closed it.
        log.update(&playlist(0, &[4000]), base + Duration::from_millis(15_000));
        log.update(&playlist(2, &[4000]), base + Duration::from_millis(12_005));
        log.update(&playlist(4, &[2500]), base + Duration::from_millis(20_000));
        let outcome = evaluate(&sent, &log);
        let ms: Vec<u128> = outcome.latencies.iter().map(|d| d.as_millis()).collect();
        // After the gap (segment 1 unseen), segment 2 maps by number to keyframe 3.
        assert_eq!(ms, [11_000, 5]);
        assert_eq!(
            (outcome.late, outcome.missing, outcome.unmatched),
            (1, 2, 1)
        );
    }

    #[test]
    fn last_segment_closed_by_the_publisher_leaving_is_unmatched_not_missing() {
        let base = Instant::now();
        let sent = keyframes(base, 0, 4000, 2);
        let mut log = SegmentLog::default();
        log.update(&playlist(0, &[4000, 1966]), base + Duration::from_secs(7));
        let outcome = evaluate(&sent, &log);
        assert_eq!(outcome.latencies, [Duration::from_secs(3)]);
        assert_eq!((outcome.missing, outcome.unmatched), (0, 1));
    }

    #[test]
    fn without_keyframes_every_segment_is_unmatched() {
        let mut log = SegmentLog::default();
        log.update(&playlist(0, &[4000]), Instant::now());
        let outcome = evaluate(&[], &log);
        assert_eq!((outcome.missing, outcome.unmatched), (0, 1));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let at = |q| percentile(&values, q).unwrap().as_millis();
        assert_eq!((at(0.5), at(0.9), at(0.99), at(1.0)), (50, 90, 99, 100));
        assert_eq!(
            percentile(&values[..1], 0.99),
            Some(Duration::from_millis(1))
        );
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn totals_line_is_machine_readable() {
        let mut totals = Totals {
            connections: 2,
            target_duration_s: 10,
            ..Totals::default()
        };
        totals.add(Outcome {
            latencies: vec![Duration::from_millis(12), Duration::from_millis(8)],
            late: 0,
            missing: 1,
            unmatched: 1,
        });
        assert_eq!(
            totals.line(),
            "latency: connections=2 tracked=1 segments=2 p50_ms=8.0 p90_ms=12.0 p99_ms=12.0 \
             max_ms=12.0 late=0 missing=1 unmatched=1 target_duration_s=10 overflows=0 request_errors=0"
        );
        assert!(Totals::default().line().contains(" p50_ms=none "));
        // Followed part by part: the part figures follow the segment ones.
        let parts = PartTotals::default();
        totals.parts = Some(parts.clone());
        let line = totals.line();
        assert!(
            line.ends_with(&format!(" request_errors=0 {}", parts.fields())),
            "{line}"
        );
    }
}
