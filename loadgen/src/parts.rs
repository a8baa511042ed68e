//! Part latency (LL-HLS): from the arrival of a part's first frame at the server to the instant
//! a media playlist listing that part was read. The pure part: reading the parts and wall clocks
//! of an LL-HLS media playlist, the next part to ask for (draft-pantos-hls-rfc8216bis
//! §6.2.5.2), and the log of each recording's parts.
//!
//! A segment's `EXT-X-PROGRAM-DATE-TIME` is the server's wall clock when the segment's first
//! frame arrived (cfhlssink stamps it so), and media time runs at wall-clock speed for a live
//! publisher, so part `i`'s first frame arrived at that instant plus the durations of parts
//! `0..i`. The server and this tool share one machine, hence one clock.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cfstream_proto::render::time::parse_iso8601_ms;

use crate::latency::percentile;

/// The margin over the part target within which issue 13 wants a part listed (p99).
pub const BUDGET_OVER_PART_TARGET: Duration = Duration::from_millis(50);

/// One segment of an LL-HLS media playlist, as far as it is listed.
#[derive(Clone, Debug, PartialEq)]
pub struct ListedSegment {
    pub sequence: u64,
    /// `EXT-X-PROGRAM-DATE-TIME` in milliseconds since the epoch; None when the playlist gives
    /// the segment none (its parts cannot be timed).
    pub program_date_time_ms: Option<i64>,
    /// `EXT-X-PART` durations in microseconds (empty when its parts are no longer listed).
    pub parts_us: Vec<u64>,
    /// It has its `EXTINF` (closed); false for the open segment at the end.
    pub complete: bool,
}

/// What an LL-HLS media playlist lists, segment by segment.
#[derive(Clone, Debug, PartialEq)]
pub struct PartListing {
    /// `EXT-X-PART-INF:PART-TARGET` in microseconds (0 when absent: not an LL-HLS playlist).
    pub part_target_us: u64,
    pub segments: Vec<ListedSegment>,
    pub ended: bool,
}

/// The blocking reload to ask for after a listing: `(_HLS_msn, _HLS_part)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextPart {
    pub msn: u64,
    pub part: u64,
}

/// Parses the tags part latency needs; None when the text is not a media playlist (no
/// `#EXTM3U`, no target duration) or a value it needs is malformed. Segments skipped by a delta
/// update (`EXT-X-SKIP`) are counted in the sequence numbers but not listed.
pub fn parse_parts(text: &str) -> Option<PartListing> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next()? != "#EXTM3U" {
        return None;
    }
    let mut listing = PartListing {
        part_target_us: 0,
        segments: vec![],
        ended: false,
    };
    let mut target_seen = false;
    let mut sequence = 0;
    let mut current = Pending::default();
    for line in lines {
        if line.starts_with("#EXT-X-TARGETDURATION:") {
            target_seen = true;
        } else if let Some(value) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            sequence = value.parse().ok()?;
        } else if let Some(attributes) = line.strip_prefix("#EXT-X-PART-INF:") {
            listing.part_target_us = seconds_to_us(attribute(attributes, "PART-TARGET")?)?;
        } else if let Some(attributes) = line.strip_prefix("#EXT-X-SKIP:") {
            let skipped: u64 = attribute(attributes, "SKIPPED-SEGMENTS")?.parse().ok()?;
            sequence += skipped;
        } else if let Some(value) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            current.program_date_time_ms = Some(parse_iso8601_ms(value)?);
        } else if let Some(attributes) = line.strip_prefix("#EXT-X-PART:") {
            current
                .parts_us
                .push(seconds_to_us(attribute(attributes, "DURATION")?)?);
        } else if line.starts_with("#EXTINF:") {
            current.extinf = true;
        } else if line == "#EXT-X-ENDLIST" {
            listing.ended = true;
        } else if !line.starts_with('#') && current.extinf {
            listing.segments.push(current.take(sequence, true));
            sequence += 1;
        }
    }
    // Parts (or the wall clock) after the last URI: the open segment.
    if !current.parts_us.is_empty() || current.program_date_time_ms.is_some() {
        listing.segments.push(current.take(sequence, false));
    }
    target_seen.then_some(listing)
}

/// The tags read since the last segment's URI.
#[derive(Default)]
struct Pending {
    program_date_time_ms: Option<i64>,
    parts_us: Vec<u64>,
    extinf: bool,
}

impl Pending {
    fn take(&mut self, sequence: u64, complete: bool) -> ListedSegment {
        let pending = std::mem::take(self);
        ListedSegment {
            sequence,
            program_date_time_ms: pending.program_date_time_ms,
            parts_us: pending.parts_us,
            complete,
        }
    }
}

/// The value of `name` in an attribute list (`A=1,B="x,y"`), quotes removed.
fn attribute<'a>(attributes: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = attributes;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let (value, tail) = quoted.split_once('"')?;
                (value, tail.strip_prefix(',').unwrap_or(tail))
            }
            None => after.split_once(',').unwrap_or((after, "")),
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

/// `0.500`, `1` → microseconds, rounded to the nearest.
fn seconds_to_us(text: &str) -> Option<u64> {
    let seconds: f64 = text.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1e6).round() as u64)
}

impl PartListing {
    /// The part to wait for next: the next part of the open segment, or part 0 of the segment
    /// after the last complete one (§6.2.5.2). None when nothing is listed or it ended.
    pub fn next_part(&self) -> Option<NextPart> {
        if self.ended {
            return None;
        }
        let last = self.segments.last()?;
        Some(if last.complete {
            NextPart {
                msn: last.sequence + 1,
                part: 0,
            }
        } else {
            NextPart {
                msn: last.sequence,
                part: last.parts_us.len() as u64,
            }
        })
    }
}

/// A part timed: its segment, its index in it, when the response listing it was read, and
/// whether the follower had to catch up with it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimedPart {
    pub sequence: u64,
    pub index: usize,
    pub seen: SystemTime,
    pub caught_up: bool,
}

/// The parts one recording's media playlist listed over time.
#[derive(Clone, Debug, Default)]
pub struct PartLog {
    /// `(sequence, part index)` of every part listed so far.
    known: HashSet<(u64, usize)>,
    /// The largest part target read, in microseconds.
    pub part_target_us: u64,
    /// First frame arrived → listed, per part timed.
    pub latencies: Vec<Duration>,
    /// Which part each of `latencies` is and when it was read (same order), for `--part-log`.
    pub timed: Vec<TimedPart>,
    /// Parts newly listed in a response that also listed an earlier new part: the follower was
    /// not waiting for them, so their latency includes its own delay.
    pub caught_up: u64,
    /// Parts whose first frame is later than the response listing them (a clock or PDT
    /// error); counted with latency 0.
    pub early: u64,
}

impl PartLog {
    /// Records the parts `listing` shows for the first time as read at `seen`, timing them
    /// when `timed` (the request was held for them; else, as for a recording's first listing,
    /// they may have been listed before it was sent).
    pub fn update(&mut self, listing: &PartListing, seen: SystemTime, timed: bool) {
        self.part_target_us = self.part_target_us.max(listing.part_target_us);
        let mut new_in_response = 0;
        for segment in &listing.segments {
            let mut offset_us = 0;
            for (index, &duration_us) in segment.parts_us.iter().enumerate() {
                let start_us = offset_us;
                offset_us += duration_us;
                if !self.known.insert((segment.sequence, index)) || !timed {
                    continue;
                }
                let Some(pdt) = segment.program_date_time_ms else {
                    continue;
                };
                new_in_response += 1;
                let caught_up = new_in_response > 1;
                self.caught_up += u64::from(caught_up);
                let latency = self.latency(pdt, start_us, seen);
                self.latencies.push(latency);
                self.timed.push(TimedPart {
                    sequence: segment.sequence,
                    index,
                    seen,
                    caught_up,
                });
            }
        }
    }

    fn latency(&mut self, pdt_ms: i64, start_us: u64, seen: SystemTime) -> Duration {
        let first_frame = wall_clock(pdt_ms) + Duration::from_micros(start_us);
        seen.duration_since(first_frame).unwrap_or_else(|_| {
            self.early += 1;
            Duration::ZERO
        })
    }

    /// Latencies above the part target plus [`BUDGET_OVER_PART_TARGET`].
    pub fn late(&self) -> u64 {
        let budget = Duration::from_micros(self.part_target_us) + BUDGET_OVER_PART_TARGET;
        self.latencies.iter().filter(|&&l| l > budget).count() as u64
    }
}

/// The part latency of all recordings followed part by part.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PartTotals {
    /// Recordings with at least one part timed.
    pub recordings: usize,
    pub latencies: Vec<Duration>,
    /// Over the part target plus [`BUDGET_OVER_PART_TARGET`].
    pub late: u64,
    pub caught_up: u64,
    pub early: u64,
    /// Blocking reloads answered `503` (their next responses are not timed).
    pub unavailable: u64,
    /// The largest part target read, in microseconds.
    pub part_target_us: u64,
}

impl PartTotals {
    pub fn add(&mut self, log: &PartLog) {
        if !log.latencies.is_empty() {
            self.recordings += 1;
        }
        self.latencies.extend(&log.latencies);
        self.late += log.late();
        self.caught_up += log.caught_up;
        self.early += log.early;
        self.part_target_us = self.part_target_us.max(log.part_target_us);
    }

    /// The part figures of the `latency:` line, each name starting with `part`.
    pub fn fields(&self) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let ms = |q: f64| {
            percentile(&sorted, q)
                .map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0))
                .unwrap_or_else(|| "none".into())
        };
        format!(
            "parts={} part_recordings={} part_p50_ms={} part_p90_ms={} part_p99_ms={} \
             part_max_ms={} part_late={} part_caught_up={} part_early={} part_unavailable={} \
             part_target_ms={:.1}",
            sorted.len(),
            self.recordings,
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(1.0),
            self.late,
            self.caught_up,
            self.early,
            self.unavailable,
            self.part_target_us as f64 / 1000.0,
        )
    }
}

/// Milliseconds since the epoch (negative before it) as a wall-clock instant.
fn wall_clock(ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfstream_proto::index::{OpenSegment, Part, Progress, Segment, TrackIndex, TrackKind};
    use cfstream_proto::render::SegmentUris;
    use cfstream_proto::render::hls::{LowLatency, MediaPlaylistOptions, render_media_playlist};
    use cfstream_proto::render::window::Window;

    /// 2026-12-02T15:00:00.000Z.
    const T0_MS: i64 = 1_796_223_600_000;

    fn part(duration: u64, offset: u64) -> Part {
        Part {
            duration,
            independent: offset == 0,
            offset,
            length: 1000,
        }
    }

    /// A video track as cfhlssink writes it with 500 ms parts: segments 7 (4 s, eight parts)
    /// and 8 (4.001 s: a 1 ms ninth part) listed, and segment 9 open with two parts, the second
    /// 467 ms.
    fn live_track() -> TrackIndex {
        let parts = |durations: &[u64]| -> Vec<Part> {
            let mut offset = 0;
            durations
                .iter()
                .map(|&d| {
                    let p = part(d, offset);
                    offset += 1000;
                    p
                })
                .collect()
        };
        let segment = |sequence: u64, decode_time: u64, pdt: i64, durations: &[u64]| Segment {
            sequence,
            decode_time,
            duration: durations.iter().sum(),
            program_date_time_ms: pdt,
            discontinuity: false,
            discontinuity_number: 0,
            size: 1000 * durations.len() as u64,
            parts: parts(durations),
        };
        let mut eight = vec![45_000; 8];
        TrackIndex {
            kind: TrackKind::Video,
            timescale: 90_000,
            target_duration: 4,
            part_target: 45_000,
            discontinuity_sequence: 0,
            segments: [segment(7, 0, T0_MS, &eight), {
                eight.push(90);
                segment(8, 360_000, T0_MS + 4000, &eight)
            }]
            .into(),
            open: Some(OpenSegment {
                sequence: 9,
                decode_time: 720_090,
                program_date_time_ms: T0_MS + 8001,
                discontinuity: false,
                discontinuity_number: 0,
                parts: parts(&[45_000, 42_030]),
            }),
            progress: Progress::Live,
            trimmed: false,
        }
    }

    /// The LL-HLS media playlist controld renders of `track` for a live input's viewer.
    fn rendered(track: &TrackIndex) -> String {
        let options = MediaPlaylistOptions {
            window: Window::Live { min_duration_ms: 0 },
            uris: SegmentUris {
                prefix: "",
                query: "protocol=llhls&rec=v1",
            },
            low_latency: Some(LowLatency::default()),
            ..Default::default()
        };
        render_media_playlist(track, &options)
    }

    fn at_ms(ms: i64) -> SystemTime {
        wall_clock(ms)
    }

    #[test]
    fn reads_parts_and_wall_clocks_of_a_controld_ll_hls_playlist() {
        let text = rendered(&live_track());
        let listing = parse_parts(&text).unwrap();
        assert_eq!(listing.part_target_us, 500_000, "{text}");
        assert!(!listing.ended);
        let summary: Vec<(u64, Option<i64>, usize, bool)> = (listing.segments.iter())
            .map(|s| {
                let parts = s.parts_us.len();
                (s.sequence, s.program_date_time_ms, parts, s.complete)
            })
            .collect();
        assert_eq!(
            summary,
            [
                (7, Some(T0_MS), 8, true),
                (8, Some(T0_MS + 4000), 9, true),
                (9, Some(T0_MS + 8001), 2, false)
            ],
            "{text}"
        );
        assert_eq!(listing.segments[1].parts_us[8], 1000, "{text}");
        assert_eq!(listing.segments[2].parts_us, [500_000, 467_000], "{text}");
        assert_eq!(listing.next_part(), Some(NextPart { msn: 9, part: 2 }));
    }

    #[test]
    fn after_a_closed_segment_the_next_part_is_part_0_of_the_next_segment() {
        let mut track = live_track();
        track.open = None;
        let listing = parse_parts(&rendered(&track)).unwrap();
        assert_eq!(listing.segments.last().unwrap().sequence, 8);
        assert_eq!(listing.next_part(), Some(NextPart { msn: 9, part: 0 }));
        track.progress = Progress::Finished;
        let ended = parse_parts(&rendered(&track)).unwrap();
        assert!(ended.ended);
        assert_eq!(ended.next_part(), None);
    }

    #[test]
    fn refuses_non_playlists_and_malformed_values_without_panicking() {
        assert_eq!(parse_parts(""), None);
        assert_eq!(
            parse_parts("#EXTM3U\n#EXT-X-PART:DURATION=0.5,URI=\"a\"\n"),
            None
        );
        let bad_pdt = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PROGRAM-DATE-TIME:yesterday\n";
        assert_eq!(parse_parts(bad_pdt), None);
        let bad_part = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PART:URI=\"a\"\n";
        assert_eq!(parse_parts(bad_part), None);
        let unterminated = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PART:URI=\"a,DURATION=1\n";
        assert_eq!(parse_parts(unterminated), None);
    }

    #[test]
    fn attributes_may_be_quoted_with_commas() {
        let list = "URI=\"seg.m4s?a=1,b=2\",DURATION=0.500,BYTERANGE=\"10@0\"";
        assert_eq!(attribute(list, "DURATION"), Some("0.500"));
        assert_eq!(attribute(list, "URI"), Some("seg.m4s?a=1,b=2"));
        assert_eq!(attribute(list, "INDEPENDENT"), None);
    }

    #[test]
    fn a_delta_update_keeps_the_sequence_numbers() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:10\n\
            #EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:12.000Z\n\
            #EXTINF:4.000,\nseg-13.m4s\n";
        let listing = parse_parts(text).unwrap();
        assert_eq!(listing.segments[0].sequence, 13);
        assert_eq!(
            listing.segments[0].program_date_time_ms,
            Some(T0_MS + 12_000)
        );
    }

    #[test]
    fn times_each_new_part_from_its_first_frame() {
        let mut track = live_track();
        let mut log = PartLog::default();
        // The baseline: everything listed before the follower asked is not timed.
        let listing = parse_parts(&rendered(&track)).unwrap();
        log.update(&listing, at_ms(T0_MS + 9000), false);
        assert!(log.latencies.is_empty());
        // Segment 9's third part listed, read 520 ms after its first frame arrived at PDT +
        // 967 ms (the two parts before it).
        track.open.as_mut().unwrap().parts.push(part(45_000, 2000));
        let seen = at_ms(T0_MS + 8001 + 967 + 520);
        log.update(&parse_parts(&rendered(&track)).unwrap(), seen, true);
        assert_eq!(log.latencies, [Duration::from_millis(520)]);
        assert_eq!((log.caught_up, log.early, log.late()), (0, 0, 0));
        // Segment 9 closes with a fourth part and segment 10 opens with one, both new in one
        // response: the second was caught up with, and 600 ms is over 500 + 50 ms.
        let mut open = track.open.take().unwrap();
        open.parts.push(part(45_000, 3000));
        let duration = open.parts_duration();
        track.segments.push_back(Segment {
            sequence: 9,
            decode_time: open.decode_time,
            duration,
            program_date_time_ms: open.program_date_time_ms,
            discontinuity: false,
            discontinuity_number: 0,
            size: 4000,
            parts: open.parts,
        });
        track.open = Some(OpenSegment {
            sequence: 10,
            decode_time: open.decode_time + duration,
            program_date_time_ms: T0_MS + 10_000,
            discontinuity: false,
            discontinuity_number: 0,
            parts: vec![part(45_000, 0)],
        });
        let listing = parse_parts(&rendered(&track)).unwrap();
        log.update(&listing, at_ms(T0_MS + 10_600), true);
        let ms: Vec<u128> = log.latencies.iter().map(Duration::as_millis).collect();
        let at: Vec<(u64, usize, bool)> = (log.timed.iter())
            .map(|t| (t.sequence, t.index, t.caught_up))
            .collect();
        assert_eq!(at, [(9, 2, false), (9, 3, false), (10, 0, true)]);
        // Segment 9's fourth part starts 1467 ms in: 10600 − 8001 − 1467 = 1132 ms.
        assert_eq!(ms, [520, 1132, 600]);
        assert_eq!(
            (log.caught_up, log.late(), log.part_target_us),
            (1, 2, 500_000)
        );
    }

    #[test]
    fn parts_first_listed_in_an_untimed_response_are_never_timed() {
        let mut track = live_track();
        let mut log = PartLog::default();
        log.update(
            &parse_parts(&rendered(&track)).unwrap(),
            at_ms(T0_MS + 9000),
            false,
        );
        // After a 503 the next response's new part is only recorded, and it stays untimed when
        // the following response lists it again.
        track.open.as_mut().unwrap().parts.push(part(45_000, 2000));
        let listing = parse_parts(&rendered(&track)).unwrap();
        log.update(&listing, at_ms(T0_MS + 9500), false);
        log.update(&listing, at_ms(T0_MS + 9600), true);
        assert!(log.latencies.is_empty());
    }

    #[test]
    fn a_part_read_before_its_first_frame_counts_as_early() {
        let mut log = PartLog::default();
        let empty = PartListing {
            part_target_us: 500_000,
            segments: vec![],
            ended: false,
        };
        log.update(&empty, at_ms(T0_MS), false);
        let listing = PartListing {
            segments: vec![ListedSegment {
                sequence: 0,
                program_date_time_ms: Some(T0_MS + 1000),
                parts_us: vec![500_000],
                complete: false,
            }],
            ..empty
        };
        log.update(&listing, at_ms(T0_MS), true);
        assert_eq!(
            (log.latencies.as_slice(), log.early),
            ([Duration::ZERO].as_slice(), 1)
        );
    }

    #[test]
    fn totals_fields_are_machine_readable() {
        let mut log = PartLog {
            part_target_us: 500_000,
            latencies: vec![Duration::from_millis(530), Duration::from_millis(560)],
            caught_up: 1,
            ..PartLog::default()
        };
        let mut totals = PartTotals::default();
        totals.add(&log);
        log.latencies.clear();
        totals.add(&log);
        assert_eq!(
            totals.fields(),
            "parts=2 part_recordings=1 part_p50_ms=530.0 part_p90_ms=560.0 part_p99_ms=560.0 \
             part_max_ms=560.0 part_late=1 part_caught_up=2 part_early=0 part_unavailable=0 \
             part_target_ms=500.0"
        );
        assert!(
            PartTotals::default()
                .fields()
                .contains(" part_p99_ms=none ")
        );
    }
}
