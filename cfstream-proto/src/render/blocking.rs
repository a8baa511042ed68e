//! LL-HLS blocking playlist reload (draft-pantos-hls-rfc8216bis §6.2.5.2) and delta update
//! requests: reading the `_HLS_msn`, `_HLS_part` and `_HLS_skip` query parameters, and deciding
//! whether a playlist request is answered now, held until the index grows, or refused.
//!
//! The rules, exactly:
//! - A request for part `P` of segment `M` is satisfied once the track lists that part: `M` is
//!   a listed (complete) segment, or the open segment is `M` and has more than `P` parts, or a
//!   later segment is open. A complete segment satisfies every `P` (a part index past its
//!   last part names the part that never came because the segment closed). Without
//!   `_HLS_part`, segment `M` must be listed.
//! - A finished recording answers at once: nothing more will come.
//! - Too far ahead (400): `M` more than two past the last listed segment (the draft's "plus
//!   two"), or `P` more than the Advance Part Limit past the last listed part. That limit is
//!   three parts, or three seconds' worth when parts are shorter than a second. For a part of
//!   the segment after the open one, every part of it up to `P` is still to come, so `P + 1`
//!   is measured against the limit.
//! - The caller holds a waiting request at most [`max_hold_ms`] (three target durations, as
//!   the draft suggests) and then answers 503.

use thiserror::Error;

use crate::index::{Progress, TrackIndex};

/// The delivery directives of one playlist request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlaylistRequest {
    /// `_HLS_msn`: the media sequence number to wait for.
    pub msn: Option<u64>,
    /// `_HLS_part`: the part index within segment `msn`.
    pub part: Option<u64>,
    /// `_HLS_skip=YES` or `v2` (asks for a delta update; date ranges are never skipped here,
    /// so both mean the same).
    pub skip: bool,
}

/// The query parameter a [`DirectiveError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directive {
    Msn,
    Part,
    Skip,
}

impl Directive {
    /// The parameter as it appears in the query string.
    pub fn name(self) -> &'static str {
        match self {
            Directive::Msn => "_HLS_msn",
            Directive::Part => "_HLS_part",
            Directive::Skip => "_HLS_skip",
        }
    }
}

/// What was wrong with a directive's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    Empty,
    Negative,
    /// Not a decimal integer (signs, spaces, fractions, letters).
    NotANumber,
    /// More than 2^64 - 1.
    TooLarge,
    /// Given more than once.
    Repeated,
    /// `_HLS_part` without `_HLS_msn`.
    WithoutMsn,
    /// `_HLS_skip` other than `YES` or `v2`.
    NotYesOrV2,
}

/// A malformed directive: the caller answers 400 with this message, which names the parameter.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("{}: {}", .directive.name(), problem_text(.problem))]
pub struct DirectiveError {
    pub directive: Directive,
    pub problem: Problem,
}

fn problem_text(problem: &Problem) -> &'static str {
    match problem {
        Problem::Empty => "empty value",
        Problem::Negative => "must not be negative",
        Problem::NotANumber => "not a decimal integer",
        Problem::TooLarge => "too large",
        Problem::Repeated => "given more than once",
        Problem::WithoutMsn => "needs _HLS_msn",
        Problem::NotYesOrV2 => "must be YES or v2",
    }
}

impl PlaylistRequest {
    /// Reads the directives from decoded query pairs; other parameters are ignored.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, DirectiveError> {
        let mut request = PlaylistRequest::default();
        let mut skip_seen = false;
        for (key, value) in pairs {
            let directive = match key {
                "_HLS_msn" => Directive::Msn,
                "_HLS_part" => Directive::Part,
                "_HLS_skip" => Directive::Skip,
                _ => continue,
            };
            let error = |problem| DirectiveError { directive, problem };
            let repeated = match directive {
                Directive::Msn => request.msn.replace(number(value).map_err(error)?).is_some(),
                Directive::Part => request
                    .part
                    .replace(number(value).map_err(error)?)
                    .is_some(),
                Directive::Skip => {
                    if !matches!(value, "YES" | "v2") {
                        return Err(error(Problem::NotYesOrV2));
                    }
                    request.skip = true;
                    std::mem::replace(&mut skip_seen, true)
                }
            };
            if repeated {
                return Err(error(Problem::Repeated));
            }
        }
        if request.part.is_some() && request.msn.is_none() {
            return Err(DirectiveError {
                directive: Directive::Part,
                problem: Problem::WithoutMsn,
            });
        }
        Ok(request)
    }

    /// Reads the directives from a raw query string (`a=1&_HLS_msn=5`, without `?`). The
    /// directives' legal values need no percent-decoding, so none is done: an encoded value is
    /// malformed.
    pub fn from_query(query: &str) -> Result<Self, DirectiveError> {
        Self::from_pairs(
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| pair.split_once('=').unwrap_or((pair, ""))),
        )
    }
}

fn number(value: &str) -> Result<u64, Problem> {
    if value.is_empty() {
        return Err(Problem::Empty);
    }
    if let Some(rest) = value.strip_prefix('-') {
        return Err(
            if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                Problem::Negative
            } else {
                Problem::NotANumber
            },
        );
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::NotANumber);
    }
    value.parse().map_err(|_| Problem::TooLarge)
}

/// What to do with a playlist request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Render and answer now.
    Ready,
    /// Hold it; decide again when the track's index changes (at most [`max_hold_ms`]).
    Wait,
    /// Answer 400 at once: the request is further ahead than the draft lets a client ask.
    TooFarAhead,
}

/// Decides a request for `track`'s media playlist (see the module's rules).
pub fn decide(track: &TrackIndex, request: &PlaylistRequest) -> Readiness {
    let Some(msn) = request.msn else {
        return Readiness::Ready;
    };
    if track.progress == Progress::Finished {
        return Readiness::Ready;
    }
    // The open segment's number, or the next one's between segments.
    let open_sequence = track.next_sequence();
    let open_parts = track
        .open
        .as_ref()
        .filter(|o| o.sequence == open_sequence)
        .map_or(0, |o| o.parts.len() as u64);
    if msn < open_sequence {
        return Readiness::Ready;
    }
    // "The last Media Segment in the Playlist, plus two": the last listed is open_sequence - 1.
    if msn > open_sequence.saturating_add(1) {
        return Readiness::TooFarAhead;
    }
    let limit = advance_part_limit(track);
    match (msn == open_sequence, request.part) {
        (true, Some(part)) if part < open_parts => Readiness::Ready,
        // Parts open_parts..=part are still to come (part + 1 - open_parts of them).
        (true, Some(part)) if part - open_parts >= limit => Readiness::TooFarAhead,
        (false, Some(part)) if part >= limit => Readiness::TooFarAhead,
        _ => Readiness::Wait,
    }
}

/// The draft's Advance Part Limit: 3 parts, or as many as make three seconds when the part
/// target is below one second.
pub fn advance_part_limit(track: &TrackIndex) -> u64 {
    let second = u64::from(track.timescale);
    if track.part_target == 0 || track.part_target >= second {
        3
    } else {
        3 * second / track.part_target
    }
}

/// How long a blocked request may be held before the server gives up (503): three target
/// durations, in milliseconds.
pub fn max_hold_ms(track: &TrackIndex) -> u64 {
    3 * u64::from(track.target_duration) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::*;

    fn parse(query: &str) -> Result<PlaylistRequest, DirectiveError> {
        PlaylistRequest::from_query(query)
    }

    fn error(directive: Directive, problem: Problem) -> Result<PlaylistRequest, DirectiveError> {
        Err(DirectiveError { directive, problem })
    }

    #[test]
    fn reads_the_directives_and_ignores_other_parameters() {
        assert_eq!(
            parse("token=x&_HLS_msn=12&_HLS_part=3&_HLS_skip=YES&protocol=llhls"),
            Ok(PlaylistRequest {
                msn: Some(12),
                part: Some(3),
                skip: true
            })
        );
        assert_eq!(parse(""), Ok(PlaylistRequest::default()));
        assert_eq!(parse("_HLS_skip=v2").map(|r| r.skip), Ok(true));
        assert_eq!(parse("&&_HLS_msn=0&").map(|r| r.msn), Ok(Some(0)));
        assert_eq!(
            parse("_HLS_msn=18446744073709551615").map(|r| r.msn),
            Ok(Some(u64::MAX))
        );
    }

    #[test]
    fn malformed_values_name_their_parameter() {
        use Directive::*;
        use Problem::*;
        assert_eq!(parse("_HLS_msn=abc"), error(Msn, NotANumber));
        assert_eq!(parse("_HLS_msn=-3"), error(Msn, Negative));
        assert_eq!(parse("_HLS_msn=-"), error(Msn, NotANumber));
        assert_eq!(parse("_HLS_msn=+3"), error(Msn, NotANumber));
        assert_eq!(parse("_HLS_msn=1.5"), error(Msn, NotANumber));
        assert_eq!(parse("_HLS_msn=%31"), error(Msn, NotANumber));
        assert_eq!(parse("_HLS_msn="), error(Msn, Empty));
        assert_eq!(parse("_HLS_msn"), error(Msn, Empty));
        assert_eq!(parse("_HLS_msn=18446744073709551616"), error(Msn, TooLarge));
        assert_eq!(parse("_HLS_msn=1&_HLS_msn=2"), error(Msn, Repeated));
        assert_eq!(parse("_HLS_part=1"), error(Part, WithoutMsn));
        assert_eq!(parse("_HLS_msn=1&_HLS_part=x"), error(Part, NotANumber));
        assert_eq!(parse("_HLS_skip=yes"), error(Skip, NotYesOrV2));
        assert_eq!(parse("_HLS_skip=YES&_HLS_skip=YES"), error(Skip, Repeated));
        let message = parse("_HLS_msn=1&_HLS_part=-1").unwrap_err().to_string();
        assert_eq!(message, "_HLS_part: must not be negative");
    }

    fn request(msn: u64, part: Option<u64>) -> PlaylistRequest {
        PlaylistRequest {
            msn: Some(msn),
            part,
            skip: false,
        }
    }

    #[test]
    fn waits_for_the_part_and_refuses_what_is_too_far_ahead() {
        // Segments 0..=4 listed, 5 open with 2 parts of 1 s: Advance Part Limit 3.
        let track = with_open(video_track(5, 4), 2);
        let decide = |msn, part| decide(&track, &request(msn, part));
        assert_eq!(decide(4, None), Readiness::Ready);
        assert_eq!(
            decide(0, Some(99)),
            Readiness::Ready,
            "complete segments satisfy any part"
        );
        assert_eq!(decide(5, Some(1)), Readiness::Ready);
        assert_eq!(decide(5, Some(2)), Readiness::Wait, "the next part");
        assert_eq!(
            decide(5, None),
            Readiness::Wait,
            "until segment 5 is complete"
        );
        assert_eq!(decide(5, Some(4)), Readiness::Wait, "three parts ahead");
        assert_eq!(
            decide(5, Some(5)),
            Readiness::TooFarAhead,
            "four parts ahead"
        );
        assert_eq!(decide(6, None), Readiness::Wait, "last listed (4) plus two");
        assert_eq!(decide(6, Some(2)), Readiness::Wait);
        assert_eq!(decide(6, Some(3)), Readiness::TooFarAhead);
        assert_eq!(
            decide(7, None),
            Readiness::TooFarAhead,
            "last listed plus three"
        );
        assert_eq!(decide(u64::MAX, Some(u64::MAX)), Readiness::TooFarAhead);
        assert_eq!(decide(5, Some(u64::MAX)), Readiness::TooFarAhead);
        assert_eq!(decide(6, Some(u64::MAX)), Readiness::TooFarAhead);
        assert_eq!(
            super::decide(&track, &PlaylistRequest::default()),
            Readiness::Ready
        );
    }

    #[test]
    fn between_segments_and_before_the_first_and_after_the_end() {
        let between = video_track(5, 4); // next is 5, no part of it yet
        assert_eq!(decide(&between, &request(5, Some(0))), Readiness::Wait);
        assert_eq!(
            decide(&between, &request(5, Some(3))),
            Readiness::TooFarAhead
        );
        let empty = video_track(0, 4);
        assert_eq!(decide(&empty, &request(0, Some(0))), Readiness::Wait);
        assert_eq!(decide(&empty, &request(1, None)), Readiness::Wait);
        assert_eq!(decide(&empty, &request(2, None)), Readiness::TooFarAhead);
        let mut finished = video_track(5, 4);
        finished.progress = Progress::Finished;
        assert_eq!(decide(&finished, &request(99, Some(0))), Readiness::Ready);
    }

    #[test]
    fn short_parts_allow_three_seconds_ahead() {
        let mut track = video_track(2, 4);
        track.part_target = 30_000; // a third of a second
        assert_eq!(advance_part_limit(&track), 9);
        let track = with_open(track, 1);
        assert_eq!(decide(&track, &request(2, Some(9))), Readiness::Wait);
        assert_eq!(
            decide(&track, &request(2, Some(10))),
            Readiness::TooFarAhead
        );
        assert_eq!(max_hold_ms(&track), 12_000);
    }

    #[test]
    fn no_query_makes_the_parser_panic() {
        let query = "_HLS_msn=12&_HLS_part=3&_HLS_skip=YES&token=é";
        for (cut, _) in query.char_indices() {
            for odd in ["", "&", "=", "-", "é", "%", "99999999999999999999"] {
                let mut changed = query.to_string();
                let width = changed[cut..].chars().next().map_or(0, char::len_utf8);
                changed.replace_range(cut..cut + width, odd);
                if let Ok(request) = PlaylistRequest::from_query(&changed) {
                    let track = with_open(video_track(3, 4), 1);
                    let _ = decide(&track, &request);
                }
            }
        }
    }
}
