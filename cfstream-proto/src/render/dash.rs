//! The DASH MPD (ISO/IEC 23009-1): dynamic while the recording is live, static once it is
//! finished; one AdaptationSet per track (dash.js refuses muxed representations), a
//! `SegmentTemplate` with `$Number%08d$` and a `SegmentTimeline`, and a Period per
//! discontinuity run (each run has its own init segment).
//!
//! Period timing:
//! - Static: a Period starts where the previous one ended on the media timeline (decode times
//!   are continuous across runs), counted from the first segment shown.
//! - Dynamic: a Period starts at its run's wall clock (the `program_date_time_ms` of the run's
//!   first listed segment, whether or not the window still shows it) minus
//!   `availabilityStartTime`, so a segment's availability follows when it was really written
//!   and the time a publisher was away is a gap between Periods. `presentationTimeOffset` is
//!   that same segment's decode time, so both values stay the same in every update of the MPD
//!   (until `max-duration` trims the run's head). A Period never starts before the one before
//!   it in the same MPD ended (a wall clock that ran slower than the media).

use std::fmt::Write;

use super::text::{SegmentUris, push_uri, push_xml_attr, ticks_to_ms};
use super::time::{push_iso8601_ms, push_xs_duration_ms};
use super::window::{Window, live_window_threshold};
use crate::index::{
    Progress, RecordingIndex, Segment, StreamInfo, TrackIndex, TrackKind, init_name, segment_name,
};

/// The `UTCTiming` scheme of the clock endpoint the caller serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UtcTimingScheme {
    /// `urn:mpeg:dash:utc:http-iso:2014`: the body is an ISO 8601 date-time.
    HttpIso,
    /// `urn:mpeg:dash:utc:http-xsdate:2014`: the body is an `xs:dateTime`.
    HttpXsdate,
}

impl UtcTimingScheme {
    pub fn uri(self) -> &'static str {
        match self {
            UtcTimingScheme::HttpIso => "urn:mpeg:dash:utc:http-iso:2014",
            UtcTimingScheme::HttpXsdate => "urn:mpeg:dash:utc:http-xsdate:2014",
        }
    }
}

/// Where players read the server's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcTiming<'a> {
    pub scheme: UtcTimingScheme,
    pub url: &'a str,
}

/// How an MPD is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpdOptions<'a> {
    pub window: Window,
    pub uris: SegmentUris<'a>,
    /// `publishTime`: now, milliseconds since the epoch.
    pub publish_time_ms: i64,
    /// `availabilityStartTime`, milliseconds since the epoch: one value for the whole life of
    /// the recording, at or before its first segment's wall clock (e.g. that segment's
    /// `program_date_time_ms`).
    pub availability_start_ms: i64,
    pub minimum_update_period_ms: u64,
    pub suggested_presentation_delay_ms: u64,
    pub utc_timing: Option<UtcTiming<'a>>,
    /// `Location` of a dynamic MPD: the URL players reload it from (relative to the MPD's),
    /// e.g. the request's with a viewer id added.
    pub location: Option<&'a str>,
}

/// Segments of one track in one Period.
struct TrackRun<'a> {
    track: &'a TrackIndex,
    /// The representation's `bandwidth`: the track's peak.
    bandwidth: u64,
    /// The run's first listed segment (anchors `presentationTimeOffset`).
    anchor: &'a Segment,
    /// The shown segments of the run: `track.segments[start..start + len]`, never empty.
    start: usize,
    len: usize,
    /// Their summed duration, ticks.
    duration: u64,
}

impl<'a> TrackRun<'a> {
    fn shown(&self) -> impl Iterator<Item = &'a Segment> + use<'a> {
        self.track.segments.range(self.start..self.start + self.len)
    }

    fn first(&self) -> &'a Segment {
        &self.track.segments[self.start]
    }

    fn last(&self) -> &'a Segment {
        &self.track.segments[self.start + self.len - 1]
    }
}

/// One Period: a discontinuity run.
struct PeriodPlan<'a> {
    run: u64,
    start_ms: u64,
    tracks: Vec<TrackRun<'a>>,
}

/// The MPD of `index`: dynamic while its tracks are live, static once finished.
pub fn render_mpd(index: &RecordingIndex, options: &MpdOptions) -> String {
    let Some(reference) = reference_track(index) else {
        return mpd_open(None, options, 0) + "</MPD>\n";
    };
    let dynamic = reference.progress == Progress::Live;
    let periods = plan_periods(index, reference, options, dynamic);
    let shown_ms = periods
        .iter()
        .flat_map(|p| p.tracks.iter().filter(|t| t.track.kind == reference.kind))
        .map(|t| ticks_to_ms(t.duration, reference.timescale))
        .fold(0u64, u64::saturating_add);
    let mut out = mpd_open(Some((reference, dynamic)), options, shown_ms);
    for period in &periods {
        push_period(&mut out, &index.stream, period, &options.uris);
    }
    out.push_str("</MPD>\n");
    out
}

/// The track whose runs and durations define the Periods: video when there is one.
fn reference_track(index: &RecordingIndex) -> Option<&TrackIndex> {
    index.track(TrackKind::Video).or(index.tracks.first())
}

fn mpd_open(reference: Option<(&TrackIndex, bool)>, options: &MpdOptions, shown_ms: u64) -> String {
    let mut out = String::with_capacity(2048);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\"");
    let target_ms = reference.map_or(0, |(t, _)| u64::from(t.target_duration) * 1000);
    let dynamic = reference.is_some_and(|(_, d)| d) || reference.is_none();
    if dynamic {
        out.push_str(" type=\"dynamic\" availabilityStartTime=\"");
        push_iso8601_ms(&mut out, options.availability_start_ms);
        out.push_str("\" publishTime=\"");
        push_iso8601_ms(&mut out, options.publish_time_ms);
        out.push('"');
        push_duration_attr(
            &mut out,
            "minimumUpdatePeriod",
            options.minimum_update_period_ms,
        );
        if let (Window::Live { min_duration_ms }, Some((track, _))) = (options.window, reference) {
            let depth = live_window_threshold(track, min_duration_ms);
            push_duration_attr(
                &mut out,
                "timeShiftBufferDepth",
                ticks_to_ms(depth, track.timescale),
            );
        }
        push_duration_attr(
            &mut out,
            "suggestedPresentationDelay",
            options.suggested_presentation_delay_ms,
        );
    } else {
        out.push_str(" type=\"static\"");
        push_duration_attr(&mut out, "mediaPresentationDuration", shown_ms);
    }
    if target_ms > 0 {
        push_duration_attr(&mut out, "maxSegmentDuration", target_ms);
    }
    push_duration_attr(&mut out, "minBufferTime", target_ms.max(1000));
    out.push_str(">\n");
    if let Some(location) = options.location.filter(|_| dynamic) {
        out.push_str("  <Location>");
        push_xml_attr(&mut out, &uri_text(location));
        out.push_str("</Location>\n");
    }
    if let Some(timing) = options.utc_timing.filter(|_| dynamic) {
        let _ = write!(
            out,
            "  <UTCTiming schemeIdUri=\"{}\" value=\"",
            timing.scheme.uri()
        );
        push_xml_attr(&mut out, &uri_text(timing.url));
        out.push_str("\"/>\n");
    }
    out
}

fn push_duration_attr(out: &mut String, name: &str, ms: u64) {
    let _ = write!(out, " {name}=\"");
    push_xs_duration_ms(out, ms);
    out.push('"');
}

fn uri_text(uri: &str) -> String {
    let mut text = String::with_capacity(uri.len());
    push_uri(&mut text, uri);
    text
}

/// Groups the shown segments of every track by run, and times each Period.
fn plan_periods<'a>(
    index: &'a RecordingIndex,
    reference: &'a TrackIndex,
    options: &MpdOptions,
    dynamic: bool,
) -> Vec<PeriodPlan<'a>> {
    let first = options
        .window
        .first_index(reference)
        .min(reference.segments.len());
    let Some(first_shown) = reference.segments.get(first) else {
        return Vec::new();
    };
    let mut periods: Vec<PeriodPlan> = Vec::new();
    let mut previous_end_ms = 0u64;
    // Where each track's scan for the next Period's segments resumes.
    let mut cursors: Vec<usize> = index
        .tracks
        .iter()
        .map(|t| {
            t.segments
                .partition_point(|s| s.sequence < first_shown.sequence)
        })
        .collect();
    let reference_at = index
        .tracks
        .iter()
        .position(|t| std::ptr::eq(t, reference))
        .unwrap_or(0);
    while let Some(next) = reference.segments.get(cursors[reference_at]) {
        let run = next.discontinuity_number;
        let tracks: Vec<TrackRun> = index
            .tracks
            .iter()
            .zip(&mut cursors)
            .filter_map(|(track, cursor)| track_run(track, run, cursor, dynamic))
            .collect();
        let Some(main) = tracks.iter().find(|t| t.track.kind == reference.kind) else {
            break;
        };
        let ms = |ticks| ticks_to_ms(ticks, reference.timescale);
        let start_ms = if dynamic {
            let wall =
                (main.anchor.program_date_time_ms).saturating_sub(options.availability_start_ms);
            let start = (wall.max(0) as u64).max(previous_end_ms);
            let span = main
                .last()
                .end_time()
                .saturating_sub(main.anchor.decode_time);
            previous_end_ms = start.saturating_add(ms(span));
            start
        } else {
            ms(main
                .first()
                .decode_time
                .saturating_sub(first_shown.decode_time))
        };
        periods.push(PeriodPlan {
            run,
            start_ms,
            tracks,
        });
    }
    let bandwidths: Vec<(TrackKind, u64)> = index
        .tracks
        .iter()
        .map(|t| (t.kind, t.peak_bandwidth().max(1)))
        .collect();
    for run in periods.iter_mut().flat_map(|p| p.tracks.iter_mut()) {
        run.bandwidth = bandwidths
            .iter()
            .find(|(k, _)| *k == run.track.kind)
            .map_or(1, |b| b.1);
    }
    periods
}

/// The segments of `run` in `track` from index `*cursor` on (which moves past them), and the
/// run's anchor segment: the first listed one for a dynamic MPD (stable across updates), the
/// first shown for a static one.
fn track_run<'a>(
    track: &'a TrackIndex,
    run: u64,
    cursor: &mut usize,
    dynamic: bool,
) -> Option<TrackRun<'a>> {
    let mut start = *cursor;
    let (mut len, mut duration) = (0, 0u64);
    for segment in track.segments.range(*cursor..) {
        if segment.discontinuity_number < run {
            start += 1;
        } else if segment.discontinuity_number == run {
            len += 1;
            duration = duration.saturating_add(segment.duration);
        } else {
            break;
        }
    }
    *cursor = start + len;
    let first = track.segments.get(start).filter(|_| len > 0)?;
    let anchor = if dynamic {
        track
            .segments
            .range(..start)
            .rev()
            .take_while(|s| s.discontinuity_number == run)
            .last()
            .unwrap_or(first)
    } else {
        first
    };
    Some(TrackRun {
        track,
        bandwidth: 0,
        anchor,
        start,
        len,
        duration,
    })
}

fn push_period(out: &mut String, stream: &StreamInfo, period: &PeriodPlan, uris: &SegmentUris) {
    let _ = write!(out, "  <Period id=\"p{}\" start=\"", period.run);
    push_xs_duration_ms(out, period.start_ms);
    out.push_str("\">\n");
    for (id, run) in period.tracks.iter().enumerate() {
        push_adaptation_set(out, stream, id, run, period.run, uris);
    }
    out.push_str("  </Period>\n");
}

fn push_adaptation_set(
    out: &mut String,
    stream: &StreamInfo,
    id: usize,
    run: &TrackRun,
    discontinuity: u64,
    uris: &SegmentUris,
) {
    let track = run.track;
    let (content, codec) = match track.kind {
        TrackKind::Video => ("video", &stream.video_codec),
        TrackKind::Audio => ("audio", &stream.audio_codec),
    };
    let _ = write!(
        out,
        "    <AdaptationSet id=\"{id}\" contentType=\"{content}\" mimeType=\"{content}/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">\n      <Representation id=\"{}\"",
        track.kind.code()
    );
    if let Some(codec) = codec {
        out.push_str(" codecs=\"");
        push_xml_attr(out, codec);
        out.push('"');
    }
    let _ = write!(out, " bandwidth=\"{}\"", run.bandwidth);
    match track.kind {
        TrackKind::Video => push_video_attrs(out, stream),
        TrackKind::Audio => push_audio_attrs(out, stream),
    }
    out.push_str(">\n");
    if track.kind == TrackKind::Audio && stream.audio_channels > 0 {
        let _ = writeln!(
            out,
            "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{}\"/>",
            stream.audio_channels
        );
    }
    push_segment_template(out, run, discontinuity, uris);
    out.push_str("      </Representation>\n    </AdaptationSet>\n");
}

fn push_video_attrs(out: &mut String, stream: &StreamInfo) {
    if stream.width > 0 && stream.height > 0 {
        let _ = write!(
            out,
            " width=\"{}\" height=\"{}\"",
            stream.width, stream.height
        );
    }
    match stream.frame_rate {
        Some((num, 1)) => {
            let _ = write!(out, " frameRate=\"{num}\"");
        }
        Some((num, den)) if den > 0 => {
            let _ = write!(out, " frameRate=\"{num}/{den}\"");
        }
        _ => {}
    }
}

fn push_audio_attrs(out: &mut String, stream: &StreamInfo) {
    if stream.audio_sample_rate > 0 {
        let _ = write!(out, " audioSamplingRate=\"{}\"", stream.audio_sample_rate);
    }
}

fn push_segment_template(out: &mut String, run: &TrackRun, discontinuity: u64, uris: &SegmentUris) {
    let track = run.track;
    let kind = track.kind;
    let _ = write!(
        out,
        "        <SegmentTemplate timescale=\"{}\" presentationTimeOffset=\"{}\" startNumber=\"{}\" initialization=\"",
        track.timescale,
        run.anchor.decode_time,
        run.first().sequence
    );
    push_template_uri(out, uris, &init_name(kind, discontinuity));
    out.push_str("\" media=\"");
    // The name with its number replaced by the template's identifier.
    let name = segment_name(kind, 0);
    let suffix = &name[name.find('.').unwrap_or(name.len())..];
    let mut media = String::new();
    push_uri(&mut media, uris.prefix);
    let media = media.replace('$', "$$") + "seg-$Number%08d$" + suffix + &query_part(uris);
    push_xml_attr(out, &media);
    out.push_str("\">\n          <SegmentTimeline>\n");
    push_timeline(out, run.shown());
    out.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n");
}

/// `?query` escaped for a template (`$` doubled), or nothing.
fn query_part(uris: &SegmentUris) -> String {
    if uris.query.is_empty() {
        return String::new();
    }
    let mut query = String::from("?");
    push_uri(&mut query, uris.query);
    query.replace('$', "$$")
}

fn push_template_uri(out: &mut String, uris: &SegmentUris, name: &str) {
    let mut uri = String::new();
    push_uri(&mut uri, uris.prefix);
    let uri = uri.replace('$', "$$") + name + &query_part(uris);
    push_xml_attr(out, &uri);
}

/// `S` elements: a `t` where the timeline starts or jumps, `r` for runs of equal durations.
fn push_timeline<'a>(out: &mut String, segments: impl Iterator<Item = &'a Segment>) {
    /// An `S` being extended: its start, whether it writes `t`, its duration and repeats.
    struct Pending {
        t: u64,
        write_t: bool,
        d: u64,
        r: u64,
    }
    impl Pending {
        fn end(&self) -> u64 {
            self.t
                .saturating_add(self.d.saturating_mul(self.r.saturating_add(1)))
        }
    }
    fn flush(out: &mut String, s: &Pending) {
        out.push_str("            <S");
        if s.write_t {
            let _ = write!(out, " t=\"{}\"", s.t);
        }
        let _ = write!(out, " d=\"{}\"", s.d);
        if s.r > 0 {
            let _ = write!(out, " r=\"{}\"", s.r);
        }
        out.push_str("/>\n");
    }
    let mut pending: Option<Pending> = None;
    for segment in segments {
        let end = pending.as_ref().map(Pending::end);
        if let Some(p) = pending.as_mut()
            && p.d == segment.duration
            && end == Some(segment.decode_time)
        {
            p.r += 1;
            continue;
        }
        if let Some(p) = &pending {
            flush(out, p);
        }
        pending = Some(Pending {
            t: segment.decode_time,
            write_t: end != Some(segment.decode_time),
            d: segment.duration,
            r: 0,
        });
    }
    if let Some(p) = &pending {
        flush(out, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::*;

    fn options(window: Window) -> MpdOptions<'static> {
        MpdOptions {
            window,
            uris: SegmentUris::default(),
            publish_time_ms: T0_MS + 8000,
            availability_start_ms: T0_MS,
            minimum_update_period_ms: 2000,
            suggested_presentation_delay_ms: 6000,
            utc_timing: Some(UtcTiming {
                scheme: UtcTimingScheme::HttpIso,
                url: "/time?x=1&y=2",
            }),
            location: None,
        }
    }

    /// A Period as an XML reader sees it.
    #[derive(Debug)]
    struct ParsedPeriod {
        id: String,
        start_ms: u64,
        /// Per AdaptationSet: (startNumber, presentationTimeOffset, segment durations).
        sets: Vec<(u64, u64, Vec<u64>)>,
    }

    fn xs_ms(value: &str) -> u64 {
        let seconds = value
            .strip_prefix("PT")
            .and_then(|v| v.strip_suffix('S'))
            .unwrap();
        (seconds.parse::<f64>().unwrap() * 1000.0).round() as u64
    }

    /// Parses with roxmltree and checks what every MPD here must hold: well-formed, one
    /// AdaptationSet per track in every Period, Periods in order, timelines contiguous.
    fn parse(text: &str, tracks: usize) -> (roxmltree::Document<'_>, Vec<ParsedPeriod>) {
        let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let mpd = doc.root_element();
        assert_eq!(mpd.tag_name().name(), "MPD");
        assert_eq!(
            mpd.tag_name().namespace(),
            Some("urn:mpeg:dash:schema:mpd:2011")
        );
        let mut periods = Vec::new();
        for period in mpd.children().filter(|n| n.has_tag_name("Period")) {
            let mut sets = Vec::new();
            for set in period
                .children()
                .filter(|n| n.has_tag_name("AdaptationSet"))
            {
                let template = set
                    .descendants()
                    .find(|n| n.has_tag_name("SegmentTemplate"))
                    .unwrap();
                let number = |name| template.attribute(name).unwrap().parse::<u64>().unwrap();
                let mut durations = Vec::new();
                let mut next_t = None;
                for s in template.descendants().filter(|n| n.has_tag_name("S")) {
                    let attr = |name| s.attribute(name).map(|v: &str| v.parse::<u64>().unwrap());
                    let t = attr("t").or(next_t).expect("the first S has a t");
                    assert!(next_t.is_none_or(|n| n <= t), "S elements overlap");
                    let (d, r) = (attr("d").unwrap(), attr("r").unwrap_or(0));
                    durations.extend(std::iter::repeat_n(d, r as usize + 1));
                    next_t = Some(t + d * (r + 1));
                }
                sets.push((
                    number("startNumber"),
                    number("presentationTimeOffset"),
                    durations,
                ));
            }
            assert_eq!(sets.len(), tracks, "{text}");
            periods.push(ParsedPeriod {
                id: period.attribute("id").unwrap().to_string(),
                start_ms: xs_ms(period.attribute("start").unwrap()),
                sets,
            });
        }
        assert!(
            periods.windows(2).all(|w| w[0].start_ms < w[1].start_ms),
            "{periods:?}"
        );
        (doc, periods)
    }

    #[test]
    fn a_live_recording_is_a_dynamic_mpd() {
        let index = recording(video_track(2, 4));
        let text = render_mpd(&index, &options(Window::Whole));
        assert_eq!(
            text,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="dynamic" availabilityStartTime="2026-12-02T15:00:00.000Z" publishTime="2026-12-02T15:00:08.000Z" minimumUpdatePeriod="PT2.000S" suggestedPresentationDelay="PT6.000S" maxSegmentDuration="PT4.000S" minBufferTime="PT4.000S">
  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="/time?x=1&amp;y=2"/>
  <Period id="p0" start="PT0.000S">
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">
      <Representation id="v" codecs="avc1.64001f" bandwidth="800000" width="640" height="360" frameRate="30000/1001">
        <SegmentTemplate timescale="90000" presentationTimeOffset="0" startNumber="0" initialization="init-00000000.v.mp4" media="seg-$Number%08d$.v.m4s">
          <SegmentTimeline>
            <S t="0" d="360000" r="1"/>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" segmentAlignment="true" startWithSAP="1">
      <Representation id="a" codecs="mp4a.40.2" bandwidth="40000" audioSamplingRate="48000">
        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2"/>
        <SegmentTemplate timescale="48000" presentationTimeOffset="0" startNumber="0" initialization="init-00000000.a.mp4" media="seg-$Number%08d$.a.m4s">
          <SegmentTimeline>
            <S t="0" d="192000" r="1"/>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"#
        );
        let (doc, periods) = parse(&text, 2);
        let utc = doc
            .descendants()
            .find(|n| n.has_tag_name("UTCTiming"))
            .unwrap();
        assert_eq!(utc.attribute("value"), Some("/time?x=1&y=2"));
        assert_eq!(periods[0].sets[1].2, vec![192_000, 192_000]);
    }

    #[test]
    fn a_dynamic_mpd_names_its_location_and_a_static_one_does_not() {
        let mut index = recording(video_track(2, 4));
        let opts = MpdOptions {
            location: Some("video.mpd?rec=r&vid=v"),
            ..options(Window::Whole)
        };
        let text = render_mpd(&index, &opts);
        let (doc, _) = parse(&text, 2);
        let location = doc
            .root_element()
            .children()
            .find(|n| n.has_tag_name("Location"))
            .expect("a Location");
        assert_eq!(location.text(), Some("video.mpd?rec=r&vid=v"));
        for track in &mut index.tracks {
            track.progress = Progress::Finished;
        }
        assert!(!render_mpd(&index, &opts).contains("Location"));
    }

    #[test]
    fn a_finished_recording_is_static_with_a_period_per_run() {
        let mut video = video_track(2, 4);
        push_segment(&mut video, 3 * 90_000, true);
        push_segment(&mut video, 90_000 * 7 / 2, false);
        let mut index = recording(video);
        for track in &mut index.tracks {
            track.progress = Progress::Finished;
        }
        let text = render_mpd(&index, &options(Window::Whole));
        let (doc, periods) = parse(&text, 2);
        let mpd = doc.root_element();
        assert_eq!(mpd.attribute("type"), Some("static"));
        assert_eq!(
            mpd.attribute("mediaPresentationDuration"),
            Some("PT14.500S")
        );
        assert_eq!(mpd.attribute("availabilityStartTime"), None);
        assert!(!text.contains("UTCTiming"), "a static MPD needs no clock");
        assert_eq!(periods[0].start_ms, 0);
        assert_eq!(periods[1].id, "p1");
        assert_eq!(
            periods[1].start_ms, 8000,
            "after the first run on the media timeline"
        );
        assert_eq!(periods[1].sets[0], (2, 720_000, vec![270_000, 315_000]));
        assert!(text.contains("<S t=\"720000\" d=\"270000\"/>\n            <S d=\"315000\"/>"));
        assert!(text.contains("initialization=\"init-00000001.a.mp4\""));
    }

    #[test]
    fn a_live_window_keeps_each_periods_start_and_offset_while_it_slides() {
        let mut video = video_track(3, 4);
        push_segment(&mut video, 4 * 90_000, true);
        for _ in 0..3 {
            push_segment(&mut video, 4 * 90_000, false);
        }
        let window = Window::Live { min_duration_ms: 0 };
        let before = render_mpd(&recording(video.clone()), &options(window));
        push_segment(&mut video, 4 * 90_000, false);
        let after = render_mpd(&recording(video), &options(window));
        let (doc, first) = parse(&before, 2);
        let (_, second) = parse(&after, 2);
        assert_eq!(
            doc.root_element().attribute("timeShiftBufferDepth"),
            Some("PT12.000S")
        );
        // Before: segments 4..=6 (run 1) shown; after: 5..=7. Run 1 began with segment 3 at
        // wall clock 12 s + 10 s away = 22 s, decode time 12 s.
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].start_ms, first[0].sets[0].1), (22_000, 1_080_000));
        assert_eq!(
            (second[0].start_ms, second[0].sets[0].1),
            (22_000, 1_080_000)
        );
        assert_eq!((first[0].sets[0].0, second[0].sets[0].0), (4, 5));
    }

    #[test]
    fn a_dynamic_period_follows_the_wall_clock_across_a_reconnect() {
        let mut video = video_track(2, 4);
        push_segment(&mut video, 4 * 90_000, true);
        let text = render_mpd(&recording(video), &options(Window::Whole));
        let (_, periods) = parse(&text, 2);
        // The publisher was away 10 s: the second Period starts at 8 + 10 s.
        assert_eq!(
            periods.iter().map(|p| p.start_ms).collect::<Vec<_>>(),
            vec![0, 18_000]
        );
        // A wall clock behind the media never makes Periods overlap.
        let mut video = video_track(2, 4);
        push_segment(&mut video, 4 * 90_000, true);
        video.segments[2].program_date_time_ms = T0_MS + 5000;
        let (_, periods) = parse(&render_mpd(&recording(video), &options(Window::Whole)), 2);
        assert_eq!(periods[1].start_ms, 8000);
    }

    #[test]
    fn uris_and_names_are_escaped_for_xml_and_templates() {
        let index = recording(video_track(1, 4));
        let mut index_one_track = index.clone();
        index_one_track.tracks.truncate(1);
        index_one_track.stream.video_codec = Some("avc1\"<&>".into());
        let uris = SegmentUris {
            prefix: "/v/$x/",
            query: "token=a&b=\"c\"$",
        };
        let opts = MpdOptions {
            uris,
            ..options(Window::Whole)
        };
        let text = render_mpd(&index_one_track, &opts);
        let (doc, _) = parse(&text, 1);
        let template = doc
            .descendants()
            .find(|n| n.has_tag_name("SegmentTemplate"))
            .unwrap();
        assert_eq!(
            template.attribute("media"),
            Some("/v/$$x/seg-$Number%08d$.v.m4s?token=a&b=%22c%22$$")
        );
        assert_eq!(
            template.attribute("initialization"),
            Some("/v/$$x/init-00000000.v.mp4?token=a&b=%22c%22$$")
        );
        let representation = doc
            .descendants()
            .find(|n| n.has_tag_name("Representation"))
            .unwrap();
        assert_eq!(representation.attribute("codecs"), Some("avc1\"<&>"));
    }

    #[test]
    fn an_index_without_tracks_or_segments_still_makes_a_well_formed_mpd() {
        let empty = RecordingIndex {
            stream: stream_info(),
            tracks: Vec::new(),
        };
        parse(&render_mpd(&empty, &options(Window::Whole)), 0);
        let no_segments = recording(video_track(0, 4));
        let (_, periods) = parse(&render_mpd(&no_segments, &options(Window::Whole)), 2);
        assert!(periods.is_empty());
    }
}
