//! The rules a media playlist, and two successive reloads of one playlist URL, must obey —
//! checked on the text, so the same checker judges what the renderers here produce and what a
//! server answers over HTTP in an end-to-end test.
//!
//! The reader is deliberately small and independent of the renderers: it understands the tags
//! the rules need (`EXTINF`, `EXT-X-TARGETDURATION`, `EXT-X-MEDIA-SEQUENCE`,
//! `EXT-X-DISCONTINUITY(-SEQUENCE)`, `EXT-X-PROGRAM-DATE-TIME`, `EXT-X-PART(-INF)`,
//! `EXT-X-PRELOAD-HINT`, `EXT-X-SKIP`, `EXT-X-ENDLIST`) and skips the others.
//!
//! Durations are read as exact microseconds; a sum of parts may differ from its segment's
//! `EXTINF` by the rounding of each printed value (half a millisecond each, the renderers print
//! three decimals), and no more.

use thiserror::Error;

use super::time::parse_iso8601_ms;

/// A part as the playlist lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartFacts {
    pub duration_us: u64,
    pub uri: String,
    /// `(length, offset)`; a `BYTERANGE` without offset starts where the previous part of the
    /// same URI ended.
    pub byte_range: Option<(u64, u64)>,
    pub independent: bool,
}

/// A listed segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentFacts {
    pub sequence: u64,
    pub uri: String,
    pub duration_us: u64,
    pub program_date_time_ms: Option<i64>,
    /// Preceded by `EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
    /// Its discontinuity sequence number, counting from `EXT-X-DISCONTINUITY-SEQUENCE` (in a
    /// delta update, as if no skipped segment had a discontinuity).
    pub discontinuity_number: u64,
    pub parts: Vec<PartFacts>,
}

/// What the rules need from one media playlist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlaylistFacts {
    pub target_duration: u64,
    pub part_target_us: Option<u64>,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    /// `EXT-X-SKIP:SKIPPED-SEGMENTS`: the first listed segment is `media_sequence + skipped`.
    pub skipped: u64,
    pub segments: Vec<SegmentFacts>,
    /// Parts after the last listed segment: the open segment.
    pub open_parts: Vec<PartFacts>,
    /// `EXT-X-PRELOAD-HINT`: `(URI, BYTERANGE-START)`.
    pub preload_hint: Option<(String, u64)>,
    pub ended: bool,
}

/// Text that is not a media playlist the checker can read.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("line {line}: {problem}")]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    pub problem: &'static str,
}

/// A broken rule.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Violation {
    #[error(
        "segment {sequence}: EXTINF {duration_us} µs rounds above the target duration {target} s"
    )]
    ExtinfOverTarget {
        sequence: u64,
        duration_us: u64,
        target: u64,
    },
    #[error("segment {sequence}: PROGRAM-DATE-TIME does not move forward")]
    ProgramDateTimeNotIncreasing { sequence: u64 },
    #[error("segment {sequence}: its parts last {parts_us} µs, its EXTINF {segment_us} µs")]
    PartsDoNotSumToSegment {
        sequence: u64,
        parts_us: u64,
        segment_us: u64,
    },
    #[error(
        "segment {sequence}, part {part}: its byte range does not start where the previous ended"
    )]
    ByteRangeNotContiguous { sequence: u64, part: usize },
    #[error("segment {sequence}, part {part}: not in the segment's file {uri}")]
    PartOutsideSegment {
        sequence: u64,
        part: usize,
        uri: String,
    },
    #[error("segment {sequence}, part {part}: lasts {duration_us} µs, over PART-TARGET")]
    PartOverTarget {
        sequence: u64,
        part: usize,
        duration_us: u64,
    },
    #[error("the preload hint does not start where the last part ended")]
    PreloadHintNotContiguous,
    #[error("EXT-X-MEDIA-SEQUENCE went back from {before} to {after}")]
    MediaSequenceWentBack { before: u64, after: u64 },
    #[error("EXT-X-DISCONTINUITY-SEQUENCE went back from {before} to {after}")]
    DiscontinuitySequenceWentBack { before: u64, after: u64 },
    #[error("segment {sequence}: discontinuity number {before} in one reload, {after} in the next")]
    DiscontinuityNumberChanged {
        sequence: u64,
        before: u64,
        after: u64,
    },
    #[error("segment {sequence}: its URI or duration changed between reloads")]
    SegmentChanged { sequence: u64 },
    #[error("the last segment went from {before} back to {after}")]
    SegmentsRemovedAtTheEnd { before: u64, after: u64 },
    #[error("EXT-X-ENDLIST disappeared")]
    EndlistRemoved,
}

/// Parses `text` and checks [`check_playlist`].
pub fn check_text(text: &str) -> Result<Vec<Violation>, ParseError> {
    Ok(check_playlist(&PlaylistFacts::parse(text)?))
}

/// Parses two successive reloads of one URL and checks both and [`check_reload`].
pub fn check_reload_text(before: &str, after: &str) -> Result<Vec<Violation>, ParseError> {
    let (before, after) = (PlaylistFacts::parse(before)?, PlaylistFacts::parse(after)?);
    let mut violations = check_playlist(&before);
    violations.extend(check_playlist(&after));
    violations.extend(check_reload(&before, &after));
    Ok(violations)
}

/// The rules of one playlist: `EXTINF` rounded to the nearest second ≤ target duration (RFC
/// 8216 §4.3.3.1), program date-times increasing, each segment's parts summing to its
/// duration and covering contiguous byte ranges of its file, parts within `PART-TARGET`, the
/// preload hint continuing the open segment's byte ranges.
pub fn check_playlist(facts: &PlaylistFacts) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut last_pdt = None;
    for segment in &facts.segments {
        let sequence = segment.sequence;
        if segment.duration_us.saturating_add(500_000) / 1_000_000 > facts.target_duration {
            violations.push(Violation::ExtinfOverTarget {
                sequence,
                duration_us: segment.duration_us,
                target: facts.target_duration,
            });
        }
        if let Some(pdt) = segment.program_date_time_ms {
            if last_pdt.is_some_and(|last| pdt <= last) {
                violations.push(Violation::ProgramDateTimeNotIncreasing { sequence });
            }
            last_pdt = Some(pdt);
        }
        if !segment.parts.is_empty() {
            let parts_us =
                (segment.parts.iter()).fold(0u64, |sum, p| sum.saturating_add(p.duration_us));
            let tolerance = 500 * (segment.parts.len() as u64 + 1);
            if parts_us.abs_diff(segment.duration_us) > tolerance {
                violations.push(Violation::PartsDoNotSumToSegment {
                    sequence,
                    parts_us,
                    segment_us: segment.duration_us,
                });
            }
        }
        check_parts(
            facts,
            sequence,
            Some(&segment.uri),
            &segment.parts,
            &mut violations,
        );
    }
    let open_sequence = facts.next_sequence();
    check_parts(
        facts,
        open_sequence,
        None,
        &facts.open_parts,
        &mut violations,
    );
    if let (Some((uri, start)), Some(last)) = (&facts.preload_hint, facts.open_parts.last())
        && *uri == last.uri
        && last
            .byte_range
            .is_some_and(|(length, offset)| offset.checked_add(length) != Some(*start))
    {
        violations.push(Violation::PreloadHintNotContiguous);
    }
    violations
}

fn check_parts(
    facts: &PlaylistFacts,
    sequence: u64,
    segment_uri: Option<&str>,
    parts: &[PartFacts],
    violations: &mut Vec<Violation>,
) {
    let mut end = None;
    for (i, part) in parts.iter().enumerate() {
        let uri = segment_uri.unwrap_or(&parts[0].uri);
        if part.uri != uri {
            violations.push(Violation::PartOutsideSegment {
                sequence,
                part: i,
                uri: part.uri.clone(),
            });
        }
        if let Some((length, offset)) = part.byte_range {
            if end.is_some_and(|end| end != offset) {
                violations.push(Violation::ByteRangeNotContiguous { sequence, part: i });
            }
            end = Some(offset.saturating_add(length));
        }
        if facts
            .part_target_us
            .is_some_and(|target| part.duration_us > target)
        {
            violations.push(Violation::PartOverTarget {
                sequence,
                part: i,
                duration_us: part.duration_us,
            });
        }
    }
}

/// The rules between two successive reloads of one URL: the playlist only grows or slides
/// forward. Media and discontinuity sequence numbers never go back, a segment in both keeps its
/// URI, duration and discontinuity number, the end never loses a segment, `EXT-X-ENDLIST`
/// never goes away. A delta update's skipped segments are taken from `before`.
pub fn check_reload(before: &PlaylistFacts, after: &PlaylistFacts) -> Vec<Violation> {
    let mut violations = Vec::new();
    if after.media_sequence < before.media_sequence {
        violations.push(Violation::MediaSequenceWentBack {
            before: before.media_sequence,
            after: after.media_sequence,
        });
    }
    if after.discontinuity_sequence < before.discontinuity_sequence {
        violations.push(Violation::DiscontinuitySequenceWentBack {
            before: before.discontinuity_sequence,
            after: after.discontinuity_sequence,
        });
    }
    let find = |sequence: u64| before.segments.iter().find(|s| s.sequence == sequence);
    // The discontinuities of skipped segments are not in a delta update: its numbers count
    // from the last skipped segment's number in `before`, when that one is known.
    let shift = match after.skipped {
        0 => Some(0i128),
        n => find(after.media_sequence.saturating_add(n - 1)).map(|last_skipped| {
            i128::from(last_skipped.discontinuity_number) - i128::from(after.discontinuity_sequence)
        }),
    };
    for segment in &after.segments {
        let Some(old) = find(segment.sequence) else {
            continue;
        };
        if old.uri != segment.uri || old.duration_us != segment.duration_us {
            violations.push(Violation::SegmentChanged {
                sequence: segment.sequence,
            });
        }
        if let Some(shift) = shift {
            let number = (i128::from(segment.discontinuity_number) + shift).max(0) as u64;
            if number != old.discontinuity_number {
                violations.push(Violation::DiscontinuityNumberChanged {
                    sequence: segment.sequence,
                    before: old.discontinuity_number,
                    after: number,
                });
            }
        }
    }
    let last = |f: &PlaylistFacts| f.next_sequence().checked_sub(1);
    if let (Some(b), a) = (last(before), last(after))
        && a.is_none_or(|a| a < b)
    {
        violations.push(Violation::SegmentsRemovedAtTheEnd {
            before: b,
            after: a.unwrap_or(0),
        });
    }
    if before.ended && !after.ended {
        violations.push(Violation::EndlistRemoved);
    }
    violations
}

/// Tags waiting for the URI line of their segment.
#[derive(Default)]
struct Pending {
    duration_us: Option<u64>,
    program_date_time_ms: Option<i64>,
    discontinuity: bool,
    parts: Vec<PartFacts>,
}

impl PlaylistFacts {
    /// The sequence number after the last listed segment (of the open one, if parts follow).
    pub fn next_sequence(&self) -> u64 {
        (self.media_sequence.saturating_add(self.skipped))
            .saturating_add(self.segments.len() as u64)
    }

    /// Reads a media playlist.
    pub fn parse(text: &str) -> Result<PlaylistFacts, ParseError> {
        let mut facts = PlaylistFacts::default();
        let mut pending = Pending::default();
        let mut run = None::<u64>;
        let mut seen_header = false;
        for (i, line) in text.lines().enumerate() {
            let error = |problem| ParseError {
                line: i + 1,
                problem,
            };
            let line = line.trim_end_matches('\r');
            if !seen_header {
                if line != "#EXTM3U" {
                    return Err(error("the first line is not #EXTM3U"));
                }
                seen_header = true;
                continue;
            }
            if line.is_empty() {
                continue;
            }
            if !line.starts_with('#') {
                let duration_us = pending
                    .duration_us
                    .take()
                    .ok_or(error("a URI without EXTINF"))?;
                let discontinuity_number = (*run.get_or_insert(facts.discontinuity_sequence))
                    .saturating_add(u64::from(pending.discontinuity));
                run = Some(discontinuity_number);
                let sequence = facts.next_sequence();
                facts.segments.push(SegmentFacts {
                    sequence,
                    uri: line.to_string(),
                    duration_us,
                    program_date_time_ms: pending.program_date_time_ms.take(),
                    discontinuity: std::mem::take(&mut pending.discontinuity),
                    discontinuity_number,
                    parts: std::mem::take(&mut pending.parts),
                });
                continue;
            }
            read_tag(&mut facts, &mut pending, line).map_err(error)?;
        }
        if !seen_header {
            return Err(ParseError {
                line: 1,
                problem: "empty: no #EXTM3U",
            });
        }
        facts.open_parts = pending.parts;
        Ok(facts)
    }
}

fn read_tag(
    facts: &mut PlaylistFacts,
    pending: &mut Pending,
    line: &str,
) -> Result<(), &'static str> {
    let (tag, value) = line.split_once(':').unwrap_or((line, ""));
    match tag {
        "#EXT-X-TARGETDURATION" => {
            facts.target_duration = integer(value).ok_or("bad EXT-X-TARGETDURATION")?
        }
        "#EXT-X-MEDIA-SEQUENCE" => {
            facts.media_sequence = integer(value).ok_or("bad EXT-X-MEDIA-SEQUENCE")?
        }
        "#EXT-X-DISCONTINUITY-SEQUENCE" => {
            facts.discontinuity_sequence =
                integer(value).ok_or("bad EXT-X-DISCONTINUITY-SEQUENCE")?
        }
        "#EXT-X-DISCONTINUITY" => pending.discontinuity = true,
        "#EXT-X-ENDLIST" => facts.ended = true,
        "#EXTINF" => {
            let duration = value.split_once(',').map_or(value, |(d, _)| d);
            pending.duration_us = Some(micros(duration).ok_or("bad EXTINF duration")?);
        }
        "#EXT-X-PROGRAM-DATE-TIME" => {
            pending.program_date_time_ms =
                Some(parse_iso8601_ms(value).ok_or("bad EXT-X-PROGRAM-DATE-TIME")?)
        }
        "#EXT-X-PART-INF" => {
            let target =
                attribute(value, "PART-TARGET").ok_or("EXT-X-PART-INF without PART-TARGET")?;
            facts.part_target_us = Some(micros(target).ok_or("bad PART-TARGET")?);
        }
        "#EXT-X-SKIP" => {
            let n = attribute(value, "SKIPPED-SEGMENTS")
                .ok_or("EXT-X-SKIP without SKIPPED-SEGMENTS")?;
            facts.skipped = integer(n).ok_or("bad SKIPPED-SEGMENTS")?;
        }
        "#EXT-X-PART" => {
            let part = read_part(value, pending.parts.last())?;
            pending.parts.push(part);
        }
        "#EXT-X-PRELOAD-HINT" => {
            let uri = attribute(value, "URI").ok_or("EXT-X-PRELOAD-HINT without URI")?;
            let start = attribute(value, "BYTERANGE-START").map_or(Some(0), integer);
            facts.preload_hint = Some((uri.to_string(), start.ok_or("bad BYTERANGE-START")?));
        }
        _ => {}
    }
    Ok(())
}

fn read_part(value: &str, previous: Option<&PartFacts>) -> Result<PartFacts, &'static str> {
    let duration = attribute(value, "DURATION").ok_or("EXT-X-PART without DURATION")?;
    let uri = attribute(value, "URI")
        .ok_or("EXT-X-PART without URI")?
        .to_string();
    let byte_range = match attribute(value, "BYTERANGE") {
        None => None,
        Some(range) => {
            let (length, offset) = range
                .split_once('@')
                .map_or((range, None), |(l, o)| (l, Some(o)));
            let length = integer(length).ok_or("bad BYTERANGE length")?;
            let offset = match offset {
                Some(o) => integer(o).ok_or("bad BYTERANGE offset")?,
                None => previous
                    .filter(|p| p.uri == uri)
                    .and_then(|p| p.byte_range)
                    .map_or(0, |(l, o)| l.saturating_add(o)),
            };
            Some((length, offset))
        }
    };
    Ok(PartFacts {
        duration_us: micros(duration).ok_or("bad EXT-X-PART DURATION")?,
        uri,
        byte_range,
        independent: attribute(value, "INDEPENDENT") == Some("YES"),
    })
}

/// The value of `name` in an attribute list, without its quotes.
fn attribute<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let close = quoted.find('"')?;
            (
                &quoted[..close],
                quoted[close + 1..].strip_prefix(',').unwrap_or(""),
            )
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        if key == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

fn integer(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A decimal number of seconds as exact microseconds (digits beyond the sixth are dropped).
fn micros(text: &str) -> Option<u64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let whole = integer(whole)?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    whole
        .checked_mul(1_000_000)?
        .checked_add(frac.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:4\n#EXT-X-PART-INF:PART-TARGET=2.000\n";

    fn playlist(media_sequence: u64, body: &str) -> String {
        format!("{HEAD}#EXT-X-MEDIA-SEQUENCE:{media_sequence}\n{body}")
    }

    fn segment(n: u64, seconds: &str, pdt_s: u32) -> String {
        format!(
            "#EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:{pdt_s:02}.000Z\n#EXTINF:{seconds},\nseg-{n}.m4s\n"
        )
    }

    fn part(n: u64, seconds: &str, range: &str) -> String {
        format!("#EXT-X-PART:DURATION={seconds},URI=\"seg-{n}.m4s\",BYTERANGE=\"{range}\"\n")
    }

    fn violations(text: &str) -> Vec<Violation> {
        check_text(text).unwrap()
    }

    #[test]
    fn a_good_playlist_passes_and_is_read_fully() {
        let text = playlist(
            5,
            &format!(
                "{}{}{}{}#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg-7.m4s\",BYTERANGE-START=300\n",
                segment(5, "4.000", 0),
                part(6, "2.000", "100@0") + &part(6, "1.9996", "50"),
                segment(6, "4.000", 4),
                part(7, "1.000", "300@0"),
            ),
        );
        assert_eq!(violations(&text), vec![]);
        let facts = PlaylistFacts::parse(&text).unwrap();
        assert_eq!(facts.segments[1].parts[1].byte_range, Some((50, 100)));
        assert_eq!(facts.open_parts.len(), 1);
        assert_eq!(facts.preload_hint, Some(("seg-7.m4s".into(), 300)));
        assert_eq!(facts.segments[1].sequence, 6);
    }

    #[test]
    fn catches_each_rule_of_one_playlist() {
        let over = playlist(0, &segment(0, "4.500", 0));
        assert!(matches!(
            violations(&over)[..],
            [Violation::ExtinfOverTarget { sequence: 0, .. }]
        ));
        assert_eq!(
            violations(&playlist(0, &segment(0, "4.499", 0))),
            vec![],
            "4.499 rounds to 4"
        );

        let pdt = playlist(0, &(segment(0, "4.000", 4) + &segment(1, "4.000", 4)));
        assert_eq!(
            violations(&pdt),
            vec![Violation::ProgramDateTimeNotIncreasing { sequence: 1 }]
        );

        let short_parts = playlist(0, &(part(0, "1.000", "10@0") + &segment(0, "4.000", 0)));
        assert!(matches!(
            violations(&short_parts)[..],
            [Violation::PartsDoNotSumToSegment {
                sequence: 0,
                parts_us: 1_000_000,
                segment_us: 4_000_000
            }]
        ));

        let gap = playlist(
            0,
            &(part(0, "2.000", "10@0") + &part(0, "2.000", "10@11") + &segment(0, "4.000", 0)),
        );
        assert_eq!(
            violations(&gap),
            vec![Violation::ByteRangeNotContiguous {
                sequence: 0,
                part: 1
            }]
        );

        let elsewhere = playlist(
            0,
            &(part(0, "2.000", "10@0") + &part(9, "2.000", "10@10") + &segment(0, "4.000", 0)),
        );
        assert!(matches!(
            violations(&elsewhere)[..],
            [Violation::PartOutsideSegment { part: 1, .. }]
        ));

        let long_part = playlist(
            0,
            &(part(0, "1.500", "10@0") + &part(0, "2.500", "10@10") + &segment(0, "4.000", 0)),
        );
        assert!(matches!(
            violations(&long_part)[..],
            [Violation::PartOverTarget {
                part: 1,
                duration_us: 2_500_000,
                ..
            }]
        ));

        let open_gap = playlist(0, &(part(0, "1.000", "10@0") + &part(0, "1.000", "10@20")));
        assert_eq!(
            violations(&open_gap),
            vec![Violation::ByteRangeNotContiguous {
                sequence: 0,
                part: 1
            }]
        );

        let hint = playlist(
            0,
            &(part(0, "1.000", "10@0")
                + "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg-0.m4s\",BYTERANGE-START=11\n"),
        );
        assert_eq!(violations(&hint), vec![Violation::PreloadHintNotContiguous]);
    }

    #[test]
    fn catches_each_rule_between_reloads() {
        let check = |a: &str, b: &str| check_reload_text(a, b).unwrap();
        let first = playlist(3, &(segment(3, "4.000", 0) + &segment(4, "4.000", 4)));
        let slid = playlist(4, &(segment(4, "4.000", 4) + &segment(5, "4.000", 8)));
        assert_eq!(check(&first, &slid), vec![]);

        let back = playlist(0, &(segment(0, "4.000", 0) + &segment(1, "4.000", 4)));
        let found = check(&first, &back);
        assert!(
            found.contains(&Violation::MediaSequenceWentBack {
                before: 3,
                after: 0
            }),
            "{found:?}"
        );
        assert!(
            found.contains(&Violation::SegmentsRemovedAtTheEnd {
                before: 4,
                after: 1
            }),
            "{found:?}"
        );

        let changed = playlist(4, &(segment(4, "3.000", 4) + &segment(5, "4.000", 8)));
        assert_eq!(
            check(&first, &changed),
            vec![Violation::SegmentChanged { sequence: 4 }]
        );

        let renumbered = playlist(
            4,
            &format!(
                "#EXT-X-DISCONTINUITY-SEQUENCE:1\n{}",
                segment(4, "4.000", 4)
            ),
        );
        let found = check(&first, &renumbered);
        assert!(
            found.contains(&Violation::DiscontinuityNumberChanged {
                sequence: 4,
                before: 0,
                after: 1
            }),
            "{found:?}"
        );
        let went_back = check(&renumbered, &first);
        assert!(
            went_back.contains(&Violation::DiscontinuitySequenceWentBack {
                before: 1,
                after: 0
            })
        );

        let ended = first.clone() + "#EXT-X-ENDLIST\n";
        assert_eq!(check(&ended, &first), vec![Violation::EndlistRemoved]);
    }

    #[test]
    fn a_delta_update_is_checked_against_the_skipped_segments_it_replaces() {
        let full = playlist(
            0,
            &(segment(0, "4.000", 0)
                + "#EXT-X-DISCONTINUITY\n"
                + &segment(1, "4.000", 14)
                + &segment(2, "4.000", 18)),
        );
        let delta = playlist(
            0,
            &(String::from("#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n") + &segment(2, "4.000", 18)),
        );
        assert_eq!(check_reload_text(&full, &delta).unwrap(), vec![]);
        let wrong = playlist(
            0,
            &(String::from("#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n#EXT-X-DISCONTINUITY\n")
                + &segment(2, "4.000", 18)),
        );
        assert!(matches!(
            check_reload_text(&full, &wrong).unwrap()[..],
            [Violation::DiscontinuityNumberChanged {
                sequence: 2,
                before: 1,
                after: 2
            }]
        ));
    }

    #[test]
    fn unreadable_text_is_an_error_naming_the_line() {
        assert_eq!(
            check_text("#EXT-X-VERSION:7\n").unwrap_err(),
            ParseError {
                line: 1,
                problem: "the first line is not #EXTM3U"
            }
        );
        assert_eq!(check_text("").unwrap_err().line, 1);
        assert_eq!(
            check_text("#EXTM3U\nseg.m4s\n").unwrap_err().problem,
            "a URI without EXTINF"
        );
        assert_eq!(
            check_text("#EXTM3U\n#EXTINF:x,\n").unwrap_err().problem,
            "bad EXTINF duration"
        );
        assert_eq!(
            check_text("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-1\n")
                .unwrap_err()
                .line,
            2
        );
        assert_eq!(
            check_text("#EXTM3U\n#EXT-X-PART:DURATION=1.0\n")
                .unwrap_err()
                .problem,
            "EXT-X-PART without URI"
        );
    }

    #[test]
    fn huge_numbers_are_read_without_overflow() {
        let max = u64::MAX;
        let text = format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:{max}\n#EXT-X-MEDIA-SEQUENCE:{max}\n#EXT-X-SKIP:SKIPPED-SEGMENTS={max}\n#EXT-X-DISCONTINUITY-SEQUENCE:{max}\n#EXT-X-DISCONTINUITY\n#EXT-X-PART:DURATION=18446744073709.551615,URI=\"a\",BYTERANGE=\"{max}@{max}\"\n#EXT-X-PART:DURATION=18446744073709.551615,URI=\"a\",BYTERANGE=\"{max}\"\n#EXTINF:18446744073709.551615,\na\n"
        );
        let _ = check_reload_text(&text, &text).unwrap();
    }

    #[test]
    fn no_text_makes_the_reader_panic() {
        let text = playlist(
            3,
            &(segment(3, "4.000", 0)
                + &part(4, "1.000", "10@0")
                + "#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"é\",BYTERANGE-START=9\n#EXT-X-ENDLIST\n"),
        );
        // Every prefix, and every position replaced by characters that end tags, values,
        // quotes and lines early, or are wider than one byte.
        for (cut, _) in text.char_indices() {
            let _ = check_text(&text[..cut]);
            for odd in ["", "\"", ",", "=", "@", ":", "\n", "é", "-", "."] {
                let mut changed = text.clone();
                let width = changed[cut..].chars().next().map_or(0, char::len_utf8);
                changed.replace_range(cut..cut + width, odd);
                let _ = check_reload_text(&text, &changed);
                let _ = crate::render::time::parse_iso8601_ms(&changed[cut..]);
            }
        }
    }
}
