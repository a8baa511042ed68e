//! cfhlssink with real pipelines (flvdemux, parsers, x264enc, gst-launch) and real players
//! (ffmpeg, ffprobe) checking the CMAF output: index.log replayed, playlists rendered from it.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cfstream_proto::index::{TrackKind, parse_media_name, segment_name};
use gst::prelude::*;

use common::Media;
use common::cmaf::{
    assert_decodes, count_frames, count_packets, discontinuities, durations, first_pts, index_text,
    joined, playlists, read_index, seconds, segment_files, track,
};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Bus messages of a pipeline run until EOS (or a failure).
struct Run {
    elements: Vec<gst::Structure>,
    warnings: Vec<gst::glib::Error>,
    error: Option<gst::glib::Error>,
}

impl Run {
    fn named(&self, name: &str) -> Vec<&gst::Structure> {
        self.elements.iter().filter(|s| s.name() == name).collect()
    }
}

/// Plays `pipeline` to EOS or error; panics on timeout.
fn run(pipeline: &gst::Pipeline) -> Run {
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).expect("playing");
    let deadline = Instant::now() + TIMEOUT;
    let mut result = Run {
        elements: Vec::new(),
        warnings: Vec::new(),
        error: None,
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "pipeline did not finish within {TIMEOUT:?}"
        );
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[
                gst::MessageType::Eos,
                gst::MessageType::Error,
                gst::MessageType::Warning,
                gst::MessageType::Element,
            ],
        ) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Warning(w) => result.warnings.push(w.error()),
            gst::MessageView::Error(e) => {
                result.error = Some(e.error());
                break;
            }
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure() {
                    result.elements.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    stop(pipeline, &mut result);
    result
}

/// Stops `pipeline`, collecting the element messages posted on the way to READY (the bus is
/// flushed when going to NULL).
fn stop(pipeline: &gst::Pipeline, result: &mut Run) {
    pipeline.set_state(gst::State::Ready).expect("ready");
    let bus = pipeline.bus().unwrap();
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Element, gst::MessageType::Error]) {
        match msg.view() {
            gst::MessageView::Error(e) => result.error = result.error.take().or(Some(e.error())),
            _ => result
                .elements
                .extend(msg.structure().map(|s| s.to_owned())),
        }
    }
    pipeline.set_state(gst::State::Null).expect("null");
}

fn parse_pipeline(description: &str) -> gst::Pipeline {
    common::init();
    gst::parse::launch(description)
        .expect("pipeline")
        .downcast()
        .expect("a pipeline")
}

fn flv_pipeline(
    flv: &Path,
    location: &Path,
    video: bool,
    audio: bool,
    sink_props: &str,
) -> gst::Pipeline {
    let mut description = format!("filesrc location={} ! flvdemux name=d ", flv.display());
    if video {
        description.push_str("d.video ! queue ! h264parse ! hls.video ");
    }
    if audio {
        description.push_str("d.audio ! queue ! aacparse ! hls.audio ");
    }
    description.push_str(&format!(
        "cfhlssink name=hls location={} {sink_props}",
        location.display()
    ));
    parse_pipeline(&description)
}

/// The only recording directory under `location`.
fn recording_dir(location: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(location)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one recording directory: {dirs:?}");
    dirs[0].clone()
}

/// `ns` is `seconds` but for FLV's millisecond timestamps: the last frame of a recording ends at
/// its rounded PTS plus the frame duration.
fn assert_flv_seconds(ns: u64, seconds: u64) {
    assert!(
        ns.abs_diff(seconds * 1_000_000_000) <= 1_000_000,
        "{ns} ns for {seconds} s"
    );
}

type Checks = Arc<Mutex<Vec<Result<(), String>>>>;

/// Runs `check(recording directory, segment-added structure)` in the streaming thread right when
/// each segment is added (a bus sync handler), collecting the outcomes.
fn watch_segments(
    pipeline: &gst::Pipeline,
    check: impl Fn(&Path, &gst::StructureRef) -> Result<(), String> + Send + Sync + 'static,
) -> Checks {
    let checks: Checks = Arc::default();
    let outcomes = checks.clone();
    let dir = Mutex::new(None::<PathBuf>);
    pipeline.bus().unwrap().set_sync_handler(move |_, msg| {
        match msg.structure() {
            Some(s) if s.name() == "cfhlssink-recording-started" => {
                *dir.lock().unwrap() = s.get::<String>("directory").ok().map(PathBuf::from);
            }
            Some(s) if s.name() == "cfhlssink-segment-added" => {
                let outcome = match dir.lock().unwrap().as_deref() {
                    Some(dir) => check(dir, s),
                    None => Err("segment added before recording-started".into()),
                };
                outcomes.lock().unwrap().push(outcome);
            }
            _ => {}
        }
        gst::BusSyncReply::Pass
    });
    checks
}

#[test]
fn video_and_audio_from_flv() {
    let tmp = tempfile::tempdir().unwrap();
    let media = Media {
        seconds: 20.0,
        ..Default::default()
    };
    let flv = common::generate_media(&tmp.path().join("in.flv"), &media);
    let location = tmp.path().join("out");
    let pipeline = flv_pipeline(&flv, &location, true, true, "");

    // While live, index.log lists every added video segment, without `end`, and the live
    // index is registered for the server. The audio segments of the same numbers close once
    // audio reaches their cuts (its thread may lag behind video's).
    let live_checks = watch_segments(&pipeline, |dir, added| {
        let replay = read_index(dir);
        let sequence = added.get::<u64>("sequence").unwrap() as usize;
        let listed: Vec<usize> = (replay.index().tracks.iter())
            .map(|t| t.segments.len())
            .collect();
        let live = gstcfstream::hls::live::lookup(dir).is_some();
        let in_step = matches!(listed[..], [video, audio]
            if video == sequence + 1 && audio <= video);
        if !replay.finished() && live && in_step {
            Ok(())
        } else {
            Err(format!(
                "after segment {sequence}: listed {listed:?}, live index {live}, finished {}",
                replay.finished()
            ))
        }
    });
    let result = run(&pipeline);
    assert!(result.error.is_none(), "{:?}", result.error);
    // The last segment is added when the recording is finished.
    assert_eq!(live_checks.lock().unwrap()[..4].to_vec(), vec![Ok(()); 4]);

    let dir = recording_dir(&location);
    let started = result.named("cfhlssink-recording-started");
    assert_eq!(started.len(), 1);
    assert_eq!(
        started[0].get::<String>("directory").unwrap(),
        dir.to_string_lossy()
    );
    let added = result.named("cfhlssink-segment-added");
    assert_eq!(added.len(), 5, "20 s with a keyframe every 4 s");
    for (i, s) in added.iter().enumerate() {
        assert_eq!(s.get::<u64>("sequence").unwrap(), i as u64);
        assert_eq!(
            s.get::<String>("uri").unwrap(),
            segment_name(TrackKind::Video, i as u64)
        );
        assert_flv_seconds(s.get::<u64>("duration").unwrap(), 4);
        assert_eq!(
            s.get::<u64>("stream-time").unwrap(),
            i as u64 * 4_000_000_000
        );
        assert!(!s.get::<bool>("discontinuity").unwrap());
    }
    let finished = result.named("cfhlssink-recording-finished");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].get::<u64>("segments").unwrap(), 5);
    assert_flv_seconds(finished[0].get::<u64>("duration").unwrap(), 20);
    assert!(
        gstcfstream::hls::live::lookup(&dir).is_none(),
        "live index entry removed once finished"
    );

    let replay = read_index(&dir);
    assert!(replay.finished());
    let index = replay.index();
    let video = track(index, TrackKind::Video);
    assert_eq!(video.target_duration, 4, "the first GOP, rounded up");
    assert_eq!(durations(video), vec![4.0; 5]);
    assert!(video.segments.iter().all(|s| s.program_date_time_ms > 0));
    let audio = track(index, TrackKind::Audio);
    // Segment n of both tracks covers the same media interval: audio is cut at its first frame
    // at or after the video's cut (AAC frames: 1024 samples, 23 ms at 44.1 kHz).
    assert_eq!(audio.segments.len(), 5, "{}", index_text(&dir));
    for (v, a) in video.segments.iter().zip(&audio.segments) {
        let offset = seconds(audio, a.decode_time) - seconds(video, v.decode_time);
        assert!(
            (-0.001..0.05).contains(&offset),
            "segment {}: audio starts {offset} s after video\n{}",
            v.sequence,
            index_text(&dir)
        );
    }
    assert_eq!(index.stream.width, 320);
    assert_eq!(
        segment_files(&dir, TrackKind::Video),
        (0..5).collect::<Vec<_>>()
    );
    assert_eq!(
        segment_files(&dir, TrackKind::Audio),
        (0..5).collect::<Vec<_>>()
    );

    let rendered = playlists(&dir);
    assert_decodes(&rendered.multivariant);
    let video_playlist = rendered.media(TrackKind::Video);
    assert_decodes(video_playlist);
    assert_eq!(count_frames(video_playlist, "v:0"), 600);
    let audio_playlist = rendered.media(TrackKind::Audio);
    assert_decodes(audio_playlist);
    assert_eq!(
        count_frames(audio_playlist, "a:0"),
        count_frames(&flv, "a:0")
    );
    for segment in &video.segments {
        let file = joined(&dir, TrackKind::Video, segment);
        assert_decodes(&file.path);
        assert_eq!(
            count_frames(&file.path, "v:0"),
            120,
            "segment {} decodes with its init segment",
            segment.sequence
        );
    }
}

#[test]
fn video_only() {
    let tmp = tempfile::tempdir().unwrap();
    let media = Media {
        seconds: 12.0,
        audio: &[],
        ..Default::default()
    };
    let flv = common::generate_media(&tmp.path().join("in.flv"), &media);
    let location = tmp.path().join("out");
    let result = run(&flv_pipeline(&flv, &location, true, false, ""));
    assert!(result.error.is_none(), "{:?}", result.error);
    let dir = recording_dir(&location);
    let replay = read_index(&dir);
    let index = replay.index();
    assert!(
        index.track(TrackKind::Audio).is_none(),
        "{:?}",
        index.tracks
    );
    assert_eq!(durations(track(index, TrackKind::Video)), vec![4.0; 3]);
    assert!(segment_files(&dir, TrackKind::Audio).is_empty());
    let rendered = playlists(&dir);
    assert_decodes(&rendered.multivariant);
    assert_eq!(count_frames(&rendered.multivariant, "v:0"), 360);
}

#[test]
fn audio_only() {
    common::init();
    let tmp = tempfile::tempdir().unwrap();
    let flv = tmp.path().join("in.flv");
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "20",
        ])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv", "-y"])
        .arg(&flv)
        .status()
        .unwrap();
    assert!(status.success());
    let location = tmp.path().join("out");
    let result = run(&flv_pipeline(&flv, &location, false, true, ""));
    assert!(result.error.is_none(), "{:?}", result.error);
    let added = result.named("cfhlssink-segment-added");
    assert_eq!(
        added[0].get::<String>("uri").unwrap(),
        segment_name(TrackKind::Audio, 0),
        "without video, the audio segment is named"
    );
    let dir = recording_dir(&location);
    let replay = read_index(&dir);
    assert!(replay.index().track(TrackKind::Video).is_none());
    // Cut every min(6 s, target-duration) at the next AAC frame (1024 samples at 44.1 kHz).
    let d = durations(track(replay.index(), TrackKind::Audio));
    assert_eq!(d.len(), 4, "{d:?}");
    for duration in &d[..3] {
        assert!((6.0..6.03).contains(duration), "{d:?}");
    }
    assert!((1.9..2.1).contains(&d[3]), "{d:?}");
    let rendered = playlists(&dir);
    assert_decodes(&rendered.multivariant);
    assert_eq!(
        count_frames(&rendered.multivariant, "a:0"),
        count_frames(&flv, "a:0")
    );
}

/// Two FLV files played one after the other through `concat`; the second part is shifted by
/// `gap` and preceded, on both streams, by the `cfstream-publisher-reconnected` event, as
/// cfrtmpsrc does for a returning publisher.
fn reconnect_pipeline(
    first: &Path,
    second: &Path,
    gap: gst::ClockTime,
    location: &Path,
    props: &str,
) -> gst::Pipeline {
    let pipeline = parse_pipeline(&format!(
        "filesrc location={} ! flvdemux name=d1  filesrc location={} ! flvdemux name=d2 \
         concat name=cv ! hls.video  concat name=ca ! hls.audio \
         d1.video ! queue ! h264parse ! cv.  d2.video ! queue ! h264parse ! cv. \
         d1.audio ! queue ! aacparse ! ca.  d2.audio ! queue ! aacparse ! ca. \
         cfhlssink name=hls location={} {props}",
        first.display(),
        second.display(),
        location.display()
    ));
    for name in ["cv", "ca"] {
        let concat = pipeline.by_name(name).unwrap();
        let src = concat.static_pad("src").unwrap();
        let injected = std::sync::atomic::AtomicBool::new(false);
        src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let second_part = concat
                .property::<Option<gst::Pad>>("active-pad")
                .is_some_and(|p| p.name() == "sink_1");
            if !second_part {
                return gst::PadProbeReturn::Ok;
            }
            if !injected.swap(true, std::sync::atomic::Ordering::SeqCst) {
                let event = gst::Structure::builder("cfstream-publisher-reconnected")
                    .field("gap", gap.nseconds())
                    .field("remote-address", "127.0.0.1:50000")
                    .build();
                pad.push_event(gst::event::CustomDownstream::new(event));
            }
            if let Some(gst::PadProbeData::Buffer(buffer)) = &mut info.data {
                let buffer = buffer.make_mut();
                buffer.set_pts(buffer.pts().map(|t| t + gap));
                buffer.set_dts(buffer.dts().map(|t| t + gap));
            }
            gst::PadProbeReturn::Ok
        });
    }
    pipeline
}

#[test]
fn reconnect_gives_one_discontinuity() {
    let tmp = tempfile::tempdir().unwrap();
    let media = Media {
        seconds: 8.0,
        ..Default::default()
    };
    let first = common::generate_media(&tmp.path().join("a.flv"), &media);
    let second = common::generate_media(&tmp.path().join("b.flv"), &media);
    let location = tmp.path().join("out");
    let gap = gst::ClockTime::from_seconds(5);
    let result = run(&reconnect_pipeline(&first, &second, gap, &location, ""));
    assert!(result.error.is_none(), "{:?}", result.error);

    let added = result.named("cfhlssink-segment-added");
    let flags: Vec<bool> = added
        .iter()
        .map(|s| s.get("discontinuity").unwrap())
        .collect();
    assert_eq!(flags, vec![false, false, true, false]);
    // Closed at the later track's last frame (the tracks' last frames are stretched to a common
    // end at a discontinuity), the gap excluded.
    let before_gap = added[1].get::<u64>("duration").unwrap();
    assert!(
        (4_000_000_000..4_100_000_000).contains(&before_gap),
        "{before_gap}"
    );
    // stream-time is on the recording's media timeline, which leaves the gap out.
    let resumed_at = added[2].get::<u64>("stream-time").unwrap();
    let first_two: u64 = added[..2]
        .iter()
        .map(|s| s.get::<u64>("duration").unwrap())
        .sum();
    assert!(
        resumed_at.abs_diff(first_two) < 2_000_000,
        "8 s of media, gap excluded: {resumed_at}"
    );

    let dir = recording_dir(&location);
    let replay = read_index(&dir);
    for kind in [TrackKind::Video, TrackKind::Audio] {
        let t = track(replay.index(), kind);
        assert_eq!(
            discontinuities(t),
            vec![false, false, true, false],
            "{kind:?}:\n{}",
            index_text(&dir)
        );
        let runs: Vec<u64> = t.segments.iter().map(|s| s.discontinuity_number).collect();
        assert_eq!(runs, vec![0, 0, 1, 1], "{kind:?}");
        for run in 0..2 {
            let init = dir.join(cfstream_proto::index::init_name(kind, run));
            assert!(init.exists(), "{} for each run", init.display());
        }
    }
    let video_durations = durations(track(replay.index(), TrackKind::Video));
    assert_eq!(video_durations.len(), 4);
    for (i, d) in video_durations.iter().enumerate() {
        assert!((4.0..4.1).contains(d), "segment {i}: {video_durations:?}");
    }
    let rendered = playlists(&dir);
    let video = rendered.media(TrackKind::Video);
    assert_eq!(
        std::fs::read_to_string(video)
            .unwrap()
            .matches("#EXT-X-DISCONTINUITY\n")
            .count(),
        1
    );
    assert_decodes(video);
    assert_eq!(count_frames(video, "v:0"), 480);
    assert_decodes(rendered.media(TrackKind::Audio));
}

#[test]
fn max_duration_trims_index_and_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let first = Media {
        seconds: 6.0,
        keyint_seconds: 2.0,
        ..Default::default()
    };
    let second = Media {
        seconds: 14.0,
        keyint_seconds: 2.0,
        ..Default::default()
    };
    let first = common::generate_media(&tmp.path().join("a.flv"), &first);
    let second = common::generate_media(&tmp.path().join("b.flv"), &second);
    let location = tmp.path().join("out");
    let gap = gst::ClockTime::from_seconds(3);
    let pipeline = reconnect_pipeline(&first, &second, gap, &location, "max-duration=5");
    // Segment 3 (the first after the gap) carries the discontinuity; whatever the trimming, the
    // discontinuity sequence plus the flags still listed must count it, and the recording never
    // lists more than 5 s.
    let checks = watch_segments(&pipeline, |dir, added| {
        let sequence = added.get::<u64>("sequence").unwrap();
        let replay = read_index(dir);
        let v = replay
            .index()
            .track(TrackKind::Video)
            .ok_or("no video track")?;
        // The first listed segment's run is the discontinuity sequence itself (a playlist shows
        // EXT-X-DISCONTINUITY only where the run changes between listed segments).
        let listed_flags = v
            .segments
            .iter()
            .skip(1)
            .filter(|s| s.discontinuity)
            .count() as u64;
        let total = v.listed_duration() as f64 / f64::from(v.timescale);
        let expected_discontinuities = u64::from(sequence >= 3);
        if v.media_sequence() + v.segments.len() as u64 != sequence + 1
            || v.discontinuity_sequence + listed_flags != expected_discontinuities
            || total > 5.0
            || v.trimmed != (v.media_sequence() > 0)
        {
            return Err(format!("after segment {sequence}: {v:?}"));
        }
        Ok(())
    });
    let result = run(&pipeline);
    assert!(result.error.is_none(), "{:?}", result.error);
    let checks = checks.lock().unwrap().clone();
    assert_eq!(checks.len(), 10);
    assert!(checks[..9].iter().all(|c| c.is_ok()), "{checks:#?}");

    let dir = recording_dir(&location);
    let replay = read_index(&dir);
    assert!(replay.finished());
    for kind in [TrackKind::Video, TrackKind::Audio] {
        let t = track(replay.index(), kind);
        assert_eq!(t.media_sequence(), 8, "{kind:?}");
        assert_eq!(
            t.discontinuity_sequence, 1,
            "{kind:?}: the trimmed discontinuity is counted"
        );
        assert!(t.trimmed, "{kind:?}: neither EVENT nor VOD");
        let on_disk = segment_files(&dir, kind);
        for old in 0..3 {
            assert!(
                !on_disk.contains(&old),
                "{kind:?} seg {old} deleted: {on_disk:?}"
            );
        }
        for listed in &t.segments {
            assert!(
                on_disk.contains(&listed.sequence),
                "{kind:?} seg {} listed and on disk",
                listed.sequence
            );
        }
    }
    assert_eq!(
        durations(track(replay.index(), TrackKind::Video)),
        vec![2.0; 2]
    );
    // Output DTS strictly increase now (no "non monotonically increasing dts", which the TS
    // writer let through when a reconnecting source repeated an audio DTS).
    let rendered = playlists(&dir);
    assert_decodes(rendered.media(TrackKind::Video));
    assert_decodes(rendered.media(TrackKind::Audio));
    assert_decodes(&rendered.multivariant);
}

#[test]
fn live_only_keeps_disk_use_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let media = Media {
        seconds: 40.0,
        keyint_seconds: 1.0,
        fps: "10",
        audio: &[],
        ..Default::default()
    };
    let flv = common::generate_media(&tmp.path().join("in.flv"), &media);
    let location = tmp.path().join("out");
    let pipeline = flv_pipeline(&flv, &location, true, false, "record=false");
    let checks = watch_segments(&pipeline, |dir, _| {
        let files = segment_files(dir, TrackKind::Video).len();
        // 4 listed (the window of 3 target durations of 1 s, and one more), up to 3 trimmed
        // ones within their deletion delay (one window of media), 1 being written.
        if files <= 8 {
            Ok(())
        } else {
            Err(format!("{files} segment files"))
        }
    });
    let result = run(&pipeline);
    assert!(result.error.is_none(), "{:?}", result.error);
    let checks = checks.lock().unwrap().clone();
    assert_eq!(checks.len(), 40);
    assert!(checks.iter().all(|c| c.is_ok()), "{checks:?}");

    let dir = recording_dir(&location);
    let replay = read_index(&dir);
    assert!(replay.finished());
    let video = track(replay.index(), TrackKind::Video);
    assert!(video.trimmed, "segments left the window: a trim record");
    assert_eq!(video.segments.back().map(|s| s.sequence), Some(39));
    assert!(
        (3..=8).contains(&video.segments.len()),
        "the live window is left listed: {video:?}"
    );
    let on_disk = segment_files(&dir, TrackKind::Video);
    for segment in &video.segments {
        assert!(on_disk.contains(&segment.sequence));
    }
    assert!(!on_disk.contains(&0));
    assert_decodes(&playlists(&dir).multivariant);
    let finished = result.named("cfhlssink-recording-finished");
    assert_eq!(
        finished[0].get::<u64>("segments").unwrap(),
        video.segments.len() as u64,
        "what the index lists at the end"
    );
}

/// Durations (ticks) of the parts of `segment`: from each fragment's decode time to the next
/// one's, the last to the segment's end.
fn part_durations(
    dir: &Path,
    kind: TrackKind,
    segment: &cfstream_proto::index::Segment,
) -> Vec<u64> {
    let starts =
        common::cmaf::fragment_decode_times(&dir.join(segment_name(kind, segment.sequence)));
    assert_eq!(
        starts.first(),
        Some(&segment.decode_time),
        "segment {} starts at its tfdt",
        segment.sequence
    );
    let ends = starts[1..].iter().copied().chain([segment.end_time()]);
    starts
        .iter()
        .zip(ends)
        .map(|(start, end)| end - start)
        .collect()
}

#[test]
fn segments_are_written_in_parts_of_part_target() {
    let tmp = tempfile::tempdir().unwrap();
    let media = Media {
        seconds: 8.0,
        ..Default::default()
    };
    let flv = common::generate_media(&tmp.path().join("in.flv"), &media);
    let location = tmp.path().join("out");
    let pipeline = flv_pipeline(&flv, &location, true, true, "part-target=500");
    // While live, the live index lists the parts of the segment just added: the moofs in its
    // file, tiling it.
    let live_parts = watch_segments(&pipeline, |dir, added| {
        let sequence = added.get::<u64>("sequence").unwrap();
        let uri = added.get::<String>("uri").unwrap();
        let (kind, _, _) = parse_media_name(&uri).ok_or(format!("uri {uri}"))?;
        let live = gstcfstream::hls::live::lookup(dir).ok_or("no live index")?;
        let parts = live.read(|index| {
            (index.track(kind))
                .and_then(|t| t.segments.iter().find(|s| s.sequence == sequence))
                .map(|s| s.parts.clone())
        });
        let parts = parts.ok_or(format!("{uri} not in the live index"))?;
        let file = dir.join(&uri);
        let moofs = common::cmaf::fragment_decode_times(&file).len();
        let size = std::fs::metadata(&file).map_err(|e| e.to_string())?.len();
        let tiled = (parts.iter()).try_fold(0, |offset, p| {
            (p.offset == offset).then_some(offset + p.length)
        });
        if parts.len() == moofs && tiled == Some(size) && parts[0].independent {
            Ok(())
        } else {
            Err(format!(
                "segment {sequence}: {moofs} moofs, {size} bytes, parts {parts:?}"
            ))
        }
    });
    let result = run(&pipeline);
    assert!(result.error.is_none(), "{:?}", result.error);
    // The last segment is added as the recording finishes, when the live entry goes.
    assert_eq!(live_parts.lock().unwrap()[0], Ok(()));
    let dir = recording_dir(&location);
    let replay = read_index(&dir);
    for kind in [TrackKind::Video, TrackKind::Audio] {
        let t = track(replay.index(), kind);
        assert_eq!(
            t.part_target,
            u64::from(t.timescale) / 2,
            "{kind:?}: 500 ms"
        );
        for segment in &t.segments {
            let parts = part_durations(&dir, kind, segment);
            // 4 s of 30 fps video: 8 parts of 15 frames; AAC frames fill parts up to 500 ms.
            assert!(
                parts.len() >= 8,
                "{kind:?} segment {}: {parts:?}\n{}",
                segment.sequence,
                index_text(&dir)
            );
            assert!(
                parts.iter().all(|&d| d > 0 && d <= t.part_target),
                "{kind:?} segment {}: parts of at most the part target: {parts:?}",
                segment.sequence
            );
        }
    }
    assert_decodes(&playlists(&dir).multivariant);
}

#[test]
fn without_low_latency_a_segment_is_one_fragment() {
    let tmp = tempfile::tempdir().unwrap();
    let media = Media {
        seconds: 8.0,
        ..Default::default()
    };
    let flv = common::generate_media(&tmp.path().join("in.flv"), &media);
    let location = tmp.path().join("out");
    let result = run(&flv_pipeline(
        &flv,
        &location,
        true,
        true,
        "low-latency=false",
    ));
    assert!(result.error.is_none(), "{:?}", result.error);
    let dir = recording_dir(&location);
    let replay = read_index(&dir);
    for kind in [TrackKind::Video, TrackKind::Audio] {
        let t = track(replay.index(), kind);
        assert_eq!(t.segments.len(), 2, "{kind:?}:\n{}", index_text(&dir));
        for segment in &t.segments {
            assert_eq!(
                part_durations(&dir, kind, segment),
                vec![segment.duration],
                "{kind:?} segment {}",
                segment.sequence
            );
        }
    }
    assert_decodes(&playlists(&dir).multivariant);
}

/// cfhlssink's `stats` as they are when the last of its sink pads gets EOS, before the element
/// handles it (the recording still open, its last segments not yet closed).
fn stats_at_eos(pipeline: &gst::Pipeline) -> Arc<Mutex<Option<(u64, u64, u64)>>> {
    let sink = pipeline.by_name("hls").unwrap();
    let stats = Arc::new(Mutex::new(None));
    let pads = sink.sink_pads();
    let left = Arc::new(std::sync::atomic::AtomicUsize::new(pads.len()));
    for pad in pads {
        let (sink, stats, left) = (sink.clone(), stats.clone(), left.clone());
        pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            let is_eos = matches!(info.event().map(|e| e.type_()), Some(gst::EventType::Eos));
            if is_eos && left.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                *stats.lock().unwrap() = Some(common::cmaf::stats(&sink));
            }
            gst::PadProbeReturn::Ok
        });
    }
    stats
}

#[test]
fn repeated_audio_dts_are_corrected() {
    // Reconnecting live sources now and then repeat an audio timestamp, which the TS writer
    // passed on ("non monotonically increasing dts" in ffmpeg). The CMAF writer moves such a
    // frame 1 tick past the previous one and counts it.
    let tmp = tempfile::tempdir().unwrap();
    let media = Media {
        seconds: 8.0,
        ..Default::default()
    };
    let flv = common::generate_media(&tmp.path().join("in.flv"), &media);
    let location = tmp.path().join("out");
    let pipeline = flv_pipeline(&flv, &location, true, true, "");
    let audio_pad = pipeline
        .by_name("hls")
        .unwrap()
        .static_pad("audio")
        .unwrap();
    let previous = Mutex::new((0u64, None::<gst::ClockTime>));
    audio_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(gst::PadProbeData::Buffer(buffer)) = &mut info.data {
            let mut previous = previous.lock().unwrap();
            let (count, last_pts) = *previous;
            let pts = buffer.pts();
            // Every 50th frame repeats the timestamp of the frame before.
            if count % 50 == 49 {
                let buffer = buffer.make_mut();
                buffer.set_pts(last_pts);
                buffer.set_dts(last_pts);
            }
            *previous = (count + 1, pts);
        }
        gst::PadProbeReturn::Ok
    });
    let stats = stats_at_eos(&pipeline);
    let result = run(&pipeline);
    assert!(result.error.is_none(), "{:?}", result.error);
    let (dts_corrected, _, _) = stats.lock().unwrap().expect("stats read at EOS");
    assert!(dts_corrected > 0, "dts-corrected {dts_corrected}");
    let dir = recording_dir(&location);
    let rendered = playlists(&dir);
    let audio = rendered.media(TrackKind::Audio);
    assert_decodes(audio);
    assert_eq!(count_frames(audio, "a:0"), count_frames(&flv, "a:0"));
    let errors = common::cmaf::ffmpeg_errors(&rendered.multivariant);
    assert!(errors.is_empty(), "{errors}\n{}", index_text(&dir));
}

fn gst_tool(tool: &str, registry: &Path) -> Command {
    let mut command = Command::new(tool);
    command
        .env("GST_PLUGIN_PATH", common::plugin_dir())
        .env("GST_REGISTRY", registry);
    command
}

/// Runs a live x264 pipeline in gst-launch, kills it with SIGKILL after two segments were
/// listed; returns the recording directory.
fn record_and_kill(location: &Path, registry: &Path) -> PathBuf {
    let mut child = gst_tool("gst-launch-1.0", registry)
        .arg("-m")
        .args(
            format!(
                "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
                 x264enc key-int-max=15 tune=zerolatency speed-preset=ultrafast ! h264parse ! \
                 cfhlssink location={}",
                location.display()
            )
            .split_whitespace(),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gst-launch-1.0");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("cfhlssink-segment-added") && tx.send(()).is_err() {
                break;
            }
        }
    });
    for _ in 0..2 {
        rx.recv_timeout(TIMEOUT)
            .expect("segment added by gst-launch");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    recording_dir(location)
}

/// Every video segment `dir/index.log` lists exists and decodes with its init segment.
fn assert_listed_segments_decode(dir: &Path) {
    let replay = read_index(dir);
    let video = track(replay.index(), TrackKind::Video);
    assert!(!video.segments.is_empty());
    for segment in &video.segments {
        let file = joined(dir, TrackKind::Video, segment);
        assert_decodes(&file.path);
        assert!(count_frames(&file.path, "v:0") > 0);
    }
}

#[test]
fn kill_9_then_resume_and_finish() {
    use gstcfstream::hls::DirectoryState;
    common::init();
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("registry.bin");

    // Crash, then resume in-process into the same directory.
    let location = tmp.path().join("resume");
    let dir = record_and_kill(&location, &registry);
    assert_eq!(
        gstcfstream::hls::directory_state(&dir).unwrap(),
        DirectoryState::Unfinished
    );
    let crashed = read_index(&dir);
    assert!(!crashed.finished());
    assert_listed_segments_decode(&dir);
    let listed_before = track(crashed.index(), TrackKind::Video).segments.len();

    let pipeline = parse_pipeline(&format!(
        "videotestsrc num-buffers=45 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         x264enc key-int-max=15 speed-preset=ultrafast tune=zerolatency ! h264parse ! \
         cfhlssink name=hls location={}",
        location.display()
    ));
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    pipeline
        .by_name("hls")
        .unwrap()
        .connect("recording-name", false, move |_| {
            Some(Some(name.clone()).to_value())
        });
    let result = run(&pipeline);
    assert!(result.error.is_none(), "{:?}", result.error);
    assert!(
        result.named("cfhlssink-recording-started")[0]
            .get::<bool>("resumed")
            .unwrap()
    );
    let resumed = read_index(&dir);
    assert!(resumed.finished());
    let video = track(resumed.index(), TrackKind::Video);
    assert_eq!(video.segments.len(), listed_before + 3);
    let flags: Vec<usize> = (video.segments.iter().enumerate())
        .filter(|(_, s)| s.discontinuity)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        flags,
        vec![listed_before],
        "one discontinuity where the resumed part starts"
    );
    assert_eq!(
        video.segments[listed_before].sequence, listed_before as u64,
        "numbering continues"
    );
    assert_eq!(
        segment_files(&dir, TrackKind::Video),
        (0..video.segments.len() as u64).collect::<Vec<_>>(),
        "no unlisted segment left"
    );
    let rendered = playlists(&dir);
    assert_decodes(&rendered.multivariant);
    assert_eq!(
        count_frames(&rendered.multivariant, "v:0"),
        listed_before as u64 * 15 + 45
    );

    // Crash, then close the recording as the daemon does at its restart.
    let location = tmp.path().join("finish");
    let dir = record_and_kill(&location, &registry);
    let listed = track(read_index(&dir).index(), TrackKind::Video)
        .segments
        .len();
    let summary = gstcfstream::hls::finish_recording_dir(&dir).unwrap();
    assert_eq!(summary.segments, listed as u64);
    assert_eq!(summary.duration, Duration::from_millis(500) * listed as u32);
    assert_eq!(
        gstcfstream::hls::directory_state(&dir).unwrap(),
        DirectoryState::Finished
    );
    let finished = read_index(&dir);
    assert!(finished.finished());
    assert_eq!(
        segment_files(&dir, TrackKind::Video).len(),
        listed,
        "the partial segment is removed"
    );
    let log = std::fs::read(dir.join(common::cmaf::INDEX_LOG)).unwrap();
    assert_eq!(
        gstcfstream::hls::finish_recording_dir(&dir).unwrap(),
        summary,
        "idempotent"
    );
    assert_eq!(
        std::fs::read(dir.join(common::cmaf::INDEX_LOG)).unwrap(),
        log,
        "a second finish appends nothing"
    );
    assert_decodes(&playlists(&dir).multivariant);
}

#[test]
fn finished_recording_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let record = |name: &'static str| {
        let pipeline = parse_pipeline(&format!(
            "videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
             x264enc key-int-max=15 speed-preset=ultrafast tune=zerolatency ! h264parse ! \
             cfhlssink name=hls location={}",
            tmp.path().display()
        ));
        pipeline
            .by_name("hls")
            .unwrap()
            .connect("recording-name", false, move |_| {
                Some(Some(name).to_value())
            });
        run(&pipeline)
    };
    let first = record("done");
    assert!(first.error.is_none(), "{:?}", first.error);
    let dir = tmp.path().join("done");
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read(e.path()).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot(&dir);
    let again = record("done");
    let error = again.error.expect("an element error");
    assert!(
        error.message().contains(dir.to_str().unwrap()),
        "names the directory: {}",
        error.message()
    );
    assert!(
        snapshot(&dir) == before,
        "the finished recording is untouched"
    );
}

/// The element error of a pipeline writing to `location`.
fn error_for_location(location: &str, handler_name: Option<&'static str>) -> gst::glib::Error {
    let pipeline =
        parse_pipeline("videotestsrc num-buffers=5 ! x264enc ! h264parse ! cfhlssink name=hls");
    let sink = pipeline.by_name("hls").unwrap();
    sink.set_property("location", location);
    if let Some(name) = handler_name {
        sink.connect("recording-name", false, move |_| {
            Some(Some(name).to_value())
        });
    }
    run(&pipeline).error.expect("an element error")
}

#[test]
fn unwritable_location_is_an_error_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let location = file.join("media");
    let error = error_for_location(location.to_str().unwrap(), None);
    assert!(error.matches(gst::ResourceError::OpenWrite), "{error:?}");
    assert!(
        error.message().contains(location.to_str().unwrap()),
        "{}",
        error.message()
    );
}

#[test]
fn bad_recording_name_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let error = error_for_location(tmp.path().to_str().unwrap(), Some("../escape"));
    assert!(error.message().contains("../escape"), "{}", error.message());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn gst_inspect_documents_properties_and_signal() {
    common::init();
    let tmp = tempfile::tempdir().unwrap();
    let out = gst_tool("gst-inspect-1.0", &tmp.path().join("registry.bin"))
        .arg("cfhlssink")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let sink = gst::ElementFactory::make("cfhlssink").build().unwrap();
    for pspec in sink
        .list_properties()
        .iter()
        .filter(|p| p.owner_type() == sink.type_())
    {
        let blurb = pspec.blurb().unwrap_or_default();
        assert!(blurb.len() > 20, "{} has a real description", pspec.name());
        let start: String = blurb.chars().take(30).collect();
        assert!(
            text.contains(pspec.name()) && text.contains(&start),
            "{} documented:\n{text}",
            pspec.name()
        );
    }
    for name in [
        "location",
        "target-duration",
        "record",
        "max-duration",
        "part-target",
        "low-latency",
        "stats",
        "recording-name",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert!(
        sink.find_property("playlist-length").is_none(),
        "playlist-length is gone: the server renders the live window"
    );
    let part_target = sink.find_property("part-target").expect("part-target");
    // Whatever unsigned type it has: milliseconds, 1000 by default, 100..=10000.
    let as_u64 = |v: gst::glib::Value| v.transform::<u64>().unwrap().get::<u64>().unwrap();
    assert_eq!(as_u64(part_target.default_value().clone()), 1000);
    let range = if let Some(p) = part_target.downcast_ref::<gst::glib::ParamSpecUInt>() {
        (u64::from(p.minimum()), u64::from(p.maximum()))
    } else if let Some(p) = part_target.downcast_ref::<gst::glib::ParamSpecUInt64>() {
        (p.minimum(), p.maximum())
    } else {
        panic!("part-target is {:?}", part_target.value_type())
    };
    assert_eq!(range, (100, 10_000));
    assert_eq!(as_u64(sink.property_value("part-target")), 1000);
    let low_latency = sink.find_property("low-latency").expect("low-latency");
    assert_eq!(low_latency.value_type(), bool::static_type());
    assert!(sink.property::<bool>("low-latency"), "on by default");
    let stats = sink.find_property("stats").expect("stats");
    assert!(stats.flags().contains(gst::glib::ParamFlags::READABLE));
    assert!(
        !stats.flags().contains(gst::glib::ParamFlags::WRITABLE),
        "read-only"
    );
    assert_eq!(common::cmaf::stats(&sink), (0, 0, 0));
}

#[test]
fn stopping_without_eos_finishes_the_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = parse_pipeline(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         x264enc key-int-max=10 speed-preset=ultrafast tune=zerolatency ! h264parse ! \
         cfhlssink location={}",
        tmp.path().display()
    ));
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).expect("playing");
    let mut result = Run {
        elements: Vec::new(),
        warnings: Vec::new(),
        error: None,
    };
    let deadline = Instant::now() + TIMEOUT;
    while result.named("cfhlssink-segment-added").len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no segments within {TIMEOUT:?}");
        let timeout = gst::ClockTime::from_nseconds(left.as_nanos() as u64);
        if let Some(msg) = bus.timed_pop_filtered(
            timeout,
            &[gst::MessageType::Element, gst::MessageType::Error],
        ) {
            assert!(!matches!(msg.view(), gst::MessageView::Error(_)), "{msg:?}");
            result
                .elements
                .extend(msg.structure().map(|s| s.to_owned()));
        }
    }
    stop(&pipeline, &mut result);
    assert!(result.error.is_none(), "{:?}", result.error);
    let finished = result.named("cfhlssink-recording-finished");
    assert_eq!(finished.len(), 1, "finished on the way to READY");
    let dir = recording_dir(tmp.path());
    let replay = read_index(&dir);
    assert!(replay.finished());
    let listed = track(replay.index(), TrackKind::Video).segments.len();
    assert_eq!(finished[0].get::<u64>("segments").unwrap(), listed as u64);
    assert_eq!(
        segment_files(&dir, TrackKind::Video).len(),
        listed,
        "the open segment is closed and listed, or removed"
    );
    assert_decodes(&playlists(&dir).multivariant);
}

/// A complete SPS (baseline, 64x64, 30 fps VUI timing, from x264) and its PPS, NAL header
/// included: the init segment's avcC needs parameter sets the writer can parse.
const SPS: &[u8] = &[
    0x67, 0x42, 0xC0, 0x0A, 0xDC, 0x42, 0x6C, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00,
    0x0F, 0x03, 0xC4, 0x89, 0xE0,
];
const PPS: &[u8] = &[0x68, 0xCE, 0x0F, 0x2C, 0x80];

/// An Annex B keyframe access unit as h264parse gives it: SPS, PPS, then `idr` (start codes
/// included).
fn with_parameter_sets(idr: &[u8]) -> Vec<u8> {
    let annex_b = |nal: &[u8]| [&[0, 0, 0, 1][..], nal].concat();
    [annex_b(SPS), annex_b(PPS), idr.to_vec()].concat()
}

/// Bytes of segment `sequence` of `kind` in the recording under `location`.
fn segment_bytes(location: &Path, kind: TrackKind, sequence: u64) -> Vec<u8> {
    let path = recording_dir(location).join(segment_name(kind, sequence));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn untimed_and_garbage_buffers_do_no_harm() {
    common::init();
    let tmp = tempfile::tempdir().unwrap();
    let sink = gst::ElementFactory::make("cfhlssink")
        .property("location", tmp.path().to_str().unwrap())
        .build()
        .unwrap();
    let mut h = gst_check::Harness::with_element(&sink, Some("video"), None);
    h.set_src_caps_str("video/x-h264,stream-format=byte-stream,alignment=au");
    let buffer = |bytes: &[u8], pts_ms: Option<u64>, key: bool| {
        let mut buffer = gst::Buffer::from_slice(bytes.to_vec());
        let b = buffer.get_mut().unwrap();
        b.set_pts(pts_ms.map(gst::ClockTime::from_mseconds));
        if !key {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        buffer
    };
    assert_eq!(
        h.push(buffer(
            &with_parameter_sets(&[0, 0, 0, 1, 0x65, 1]),
            None,
            true
        )),
        Ok(gst::FlowSuccess::Ok),
        "untimed: dropped"
    );
    assert_eq!(
        h.push(buffer(&[0, 0, 0, 1, 0x41, 0x9A, 7, 7, 7], Some(0), false)),
        Ok(gst::FlowSuccess::Ok),
        "no keyframe yet: dropped"
    );
    assert_eq!(
        h.push(buffer(&[7; 50], Some(0), false)),
        Ok(gst::FlowSuccess::Ok),
        "no start code: dropped"
    );
    // An IDR slice header followed by garbage slice data.
    let idr_then_garbage = [&[0, 0, 0, 1, 0x65, 0x88, 0x84][..], &[0xAB; 5000]].concat();
    assert_eq!(
        h.push(buffer(
            &with_parameter_sets(&idr_then_garbage),
            Some(0),
            true
        )),
        Ok(gst::FlowSuccess::Ok),
        "garbage slice data: still muxed"
    );
    assert_eq!(
        h.push(buffer(&[], Some(500), false)),
        Ok(gst::FlowSuccess::Ok),
        "empty buffer"
    );
    assert_eq!(
        h.push(buffer(
            &with_parameter_sets(&[0, 0, 1, 0x65, 0x88, 0x84]),
            Some(1000),
            true
        )),
        Ok(gst::FlowSuccess::Ok)
    );
    let (_, dropped_before_keyframe, _) = common::cmaf::stats(&sink);
    assert_eq!(
        dropped_before_keyframe, 2,
        "the P picture and the buffer without start code, before the first IDR"
    );
    assert!(h.push_event(gst::event::Eos::new()));
    let dir = recording_dir(tmp.path());
    let replay = read_index(&dir);
    assert!(replay.finished());
    assert_eq!(
        durations(track(replay.index(), TrackKind::Video)),
        vec![1.0, 0.5],
        "a last frame without duration lasts as long as the one before"
    );
    assert_eq!(segment_files(&dir, TrackKind::Video), vec![0, 1]);
    assert!(
        common::cmaf::contains(
            &segment_bytes(tmp.path(), TrackKind::Video, 0),
            &[0xAB; 5000]
        ),
        "the garbage slice data is muxed as it came"
    );
}

#[test]
fn discont_buffer_and_reconnect_event_are_one_gap() {
    common::init();
    let tmp = tempfile::tempdir().unwrap();
    let sink = gst::ElementFactory::make("cfhlssink")
        .property("location", tmp.path().to_str().unwrap())
        .build()
        .unwrap();
    let mut h = gst_check::Harness::with_element(&sink, Some("video"), None);
    h.set_src_caps_str("video/x-h264,stream-format=byte-stream,alignment=au");
    let push = |h: &mut gst_check::Harness, pts_ms: u64, key: bool, discont: bool| {
        let data = if key {
            with_parameter_sets(&[0, 0, 0, 1, 0x65, 0x88])
        } else {
            vec![0, 0, 0, 1, 0x41, 0x88]
        };
        let mut buffer = gst::Buffer::from_slice(data);
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
        b.set_duration(gst::ClockTime::from_mseconds(100));
        b.set_flags(
            if key {
                gst::BufferFlags::empty()
            } else {
                gst::BufferFlags::DELTA_UNIT
            } | if discont {
                gst::BufferFlags::DISCONT
            } else {
                gst::BufferFlags::empty()
            },
        );
        assert_eq!(h.push(buffer), Ok(gst::FlowSuccess::Ok));
    };
    let reconnected = || {
        let s = gst::Structure::builder("cfstream-publisher-reconnected")
            .field("gap", 3_000_000_000u64)
            .field("remote-address", "127.0.0.1:1")
            .build();
        gst::event::CustomDownstream::new(s)
    };
    push(&mut h, 0, true, true); // the first buffer's DISCONT is no gap
    push(&mut h, 900, false, false);
    push(&mut h, 1000, true, false);
    push(&mut h, 1900, false, false);
    // A gap signalled by DISCONT alone.
    push(&mut h, 5000, true, true);
    push(&mut h, 5900, false, false);
    // The event and the DISCONT of the same reconnect: one gap.
    assert!(h.push_event(reconnected()));
    push(&mut h, 9000, true, true);
    push(&mut h, 9900, false, false);
    assert!(h.push_event(gst::event::Eos::new()));

    let dir = recording_dir(tmp.path());
    let replay = read_index(&dir);
    let video = track(replay.index(), TrackKind::Video);
    assert_eq!(discontinuities(video), vec![false, false, true, true]);
    let runs: Vec<u64> = video
        .segments
        .iter()
        .map(|s| s.discontinuity_number)
        .collect();
    assert_eq!(runs, vec![0, 0, 1, 2], "each gap opens one run");
    assert_eq!(
        durations(video),
        vec![1.0; 4],
        "each closes at its last frame's end"
    );
    assert_eq!(video.discontinuity_sequence, 0);
    // The media timeline runs on across the gaps (the wall clock keeps the time away).
    for pair in video.segments.iter().collect::<Vec<_>>().windows(2) {
        assert_eq!(pair[1].decode_time, pair[0].end_time(), "{pair:?}");
    }
}

#[test]
fn audio_continues_after_a_gap_signalled_on_video_only() {
    common::init();
    let tmp = tempfile::tempdir().unwrap();
    let sink = gst::ElementFactory::make("cfhlssink")
        .property("location", tmp.path().to_str().unwrap())
        .build()
        .unwrap();
    let mut video = gst_check::Harness::with_element(&sink, Some("video"), None);
    video.set_src_caps_str("video/x-h264,stream-format=byte-stream,alignment=au");
    let mut audio = gst_check::Harness::with_element(&sink, Some("audio"), None);
    audio.set_src_caps_str("audio/mpeg,mpegversion=4,stream-format=adts");
    let buffer = |data: Vec<u8>, pts_ms: u64, flags: gst::BufferFlags| {
        let mut buffer = gst::Buffer::from_slice(data);
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
        b.set_duration(gst::ClockTime::from_mseconds(100));
        b.set_flags(flags);
        buffer
    };
    let frame = |h: &mut gst_check::Harness, pts_ms: u64, flags: gst::BufferFlags| {
        let data = if flags.contains(gst::BufferFlags::DELTA_UNIT) {
            vec![0, 0, 0, 1, 0x41, 0x88]
        } else {
            with_parameter_sets(&[0, 0, 0, 1, 0x65, 0x88])
        };
        assert_eq!(
            h.push(buffer(data, pts_ms, flags)),
            Ok(gst::FlowSuccess::Ok)
        );
    };
    let aac = |h: &mut gst_check::Harness, from_ms: u64, to_ms: u64| {
        for pts in (from_ms..to_ms).step_by(100) {
            // AAC LC, 44.1 kHz, stereo: a 7-byte ADTS header whose frame length (11) counts
            // the 4 payload bytes after it.
            let adts = vec![
                0xFF, 0xF1, 0x50, 0x80, 0x01, 0x7F, 0xFC, 0x21, 0x10, 0x04, 0x60,
            ];
            let flags = gst::BufferFlags::empty();
            assert_eq!(h.push(buffer(adts, pts, flags)), Ok(gst::FlowSuccess::Ok));
        }
    };
    let delta = gst::BufferFlags::DELTA_UNIT;
    frame(&mut video, 0, gst::BufferFlags::empty());
    aac(&mut audio, 0, 1000);
    frame(&mut video, 1000, gst::BufferFlags::empty());
    aac(&mut audio, 1000, 2000);
    frame(&mut video, 1900, delta);
    // The publisher returns after a gap, signalled only by DISCONT on the video.
    frame(&mut video, 5000, gst::BufferFlags::DISCONT);
    aac(&mut audio, 5000, 6000);
    frame(&mut video, 5900, delta);
    assert!(video.push_event(gst::event::Eos::new()));
    assert!(audio.push_event(gst::event::Eos::new()));

    let dir = recording_dir(tmp.path());
    let replay = read_index(&dir);
    let index = replay.index();
    assert_eq!(
        discontinuities(track(index, TrackKind::Video)),
        vec![false, false, true]
    );
    let audio_track = track(index, TrackKind::Audio);
    assert_eq!(discontinuities(audio_track), vec![false, false, true]);
    let after_gap = &audio_track.segments[2];
    let file = joined(&dir, TrackKind::Audio, after_gap);
    assert!(
        count_packets(&file.path, "a:0") > 0,
        "audio after the gap is kept"
    );
}

#[test]
fn gop_longer_than_target_duration_warns_and_keeps_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let media = Media {
        seconds: 8.0,
        audio: &[],
        ..Default::default()
    };
    let flv = common::generate_media(&tmp.path().join("in.flv"), &media);
    let location = tmp.path().join("out");
    let pipeline = flv_pipeline(&flv, &location, true, false, "target-duration=3");
    let stats = stats_at_eos(&pipeline);
    let result = run(&pipeline);
    assert!(result.error.is_none(), "{:?}", result.error);
    let too_long: Vec<String> = result
        .warnings
        .iter()
        .filter(|w| w.matches(gst::StreamError::Format) && w.message().contains("target duration"))
        .map(|w| w.message().to_string())
        .collect();
    assert_eq!(
        too_long.len(),
        2,
        "one per 4 s segment: {:?}",
        result.warnings
    );
    let first = segment_name(TrackKind::Video, 0);
    assert!(too_long[0].contains(&first), "{}", too_long[0]);
    let (_, _, over_target) = stats.lock().unwrap().expect("stats read at EOS");
    assert_eq!(
        over_target, 1,
        "segments-over-target: segment 0 (1 is open at EOS)"
    );
    let replay = read_index(&recording_dir(&location));
    let video = track(replay.index(), TrackKind::Video);
    assert_eq!(video.target_duration, 3);
    assert_eq!(
        durations(video),
        vec![4.0; 2],
        "one segment per GOP all the same"
    );
}

#[test]
fn plain_i_pictures_do_not_start_segments() {
    // h264parse clears DELTA_UNIT on every I picture; only IDR pictures may start a segment.
    common::init();
    let tmp = tempfile::tempdir().unwrap();
    let sink = gst::ElementFactory::make("cfhlssink")
        .property("location", tmp.path().to_str().unwrap())
        .build()
        .unwrap();
    let mut h = gst_check::Harness::with_element(&sink, Some("video"), None);
    h.set_src_caps_str("video/x-h264,stream-format=byte-stream,alignment=au");
    let idr = with_parameter_sets(&[0, 0, 0, 1, 0x65, 0x88, 0x84]);
    const PLAIN_I: &[u8] = &[0, 0, 0, 1, 0x41, 0x88, 0x84];
    const P: &[u8] = &[0, 0, 0, 1, 0x41, 0x9a];
    push_idr_and_plain_i_pictures(&mut h, &idr, PLAIN_I, P);
    assert_idr_segments(tmp.path());
}

/// The recording under `location` (from [`push_idr_and_plain_i_pictures`]) has segments of
/// 4 s, 4 s and one frame, the parameter sets in the init segment's avcC and each segment's
/// IDR as a 4-byte length-prefixed sample.
fn assert_idr_segments(location: &Path) {
    let dir = recording_dir(location);
    let replay = read_index(&dir);
    let video = track(replay.index(), TrackKind::Video);
    assert_eq!(durations(video), vec![4.0, 4.0, 0.033]);
    let init =
        std::fs::read(dir.join(cfstream_proto::index::init_name(TrackKind::Video, 0))).unwrap();
    let length_prefixed = |nal: &[u8]| [&(nal.len() as u16).to_be_bytes()[..], nal].concat();
    for parameter_set in [SPS, PPS] {
        assert!(
            common::cmaf::contains(&init, &length_prefixed(parameter_set)),
            "avcC holds {parameter_set:02x?}"
        );
    }
    for segment in &video.segments {
        let bytes = segment_bytes(location, TrackKind::Video, segment.sequence);
        assert!(
            common::cmaf::contains(&bytes, &[0, 0, 0, 3, 0x65, 0x88, 0x84]),
            "segment {}: its IDR, length-prefixed",
            segment.sequence
        );
    }
}

/// `filesrc ! queue ! flvdemux ! gopvalidate ! cfhlssink` without parsers, linked the way
/// controld links its inputs: on each new demuxer pad, `gopvalidate ! cfhlssink.<pad>` first,
/// then the demuxer pad to it; a link failure is an element error. The queue puts flvdemux in
/// push mode, as behind cfrtmpsrc: it adds both pads at the sequence headers, before any frame.
fn demux_pipeline_without_parsers(flv: &Path, location: &Path) -> gst::Pipeline {
    let pipeline = parse_pipeline(&format!(
        "filesrc location={} ! queue ! flvdemux name=d  cfhlssink name=hls location={}",
        flv.display(),
        location.display()
    ));
    let weak = pipeline.downgrade();
    pipeline
        .by_name("d")
        .unwrap()
        .connect_pad_added(move |demux, pad| {
            let Some(pipeline) = weak.upgrade() else {
                return;
            };
            let name = pad.name();
            let validate = gst::ElementFactory::make("gopvalidate")
                .name(format!("gopvalidate-{name}"))
                .build()
                .unwrap();
            pipeline.add(&validate).unwrap();
            let sink_pad = pipeline
                .by_name("hls")
                .unwrap()
                .request_pad_simple(&name)
                .unwrap();
            validate.static_pad("src").unwrap().link(&sink_pad).unwrap();
            validate.sync_state_with_parent().unwrap();
            if let Err(e) = pad.link(&validate.static_pad("sink").unwrap()) {
                demux.post_error_message(gst::error_msg!(
                    gst::CoreError::Negotiation,
                    ["flvdemux.{} ! gopvalidate: {:?}", name, e]
                ));
            }
        });
    pipeline
}

#[test]
fn avc_and_raw_aac_straight_from_flvdemux() {
    // flvdemux gives `stream-format=avc` (no alignment) and raw AAC with codec_data; cfhlssink
    // converts them itself: the segments are those the parsers would give.
    let tmp = tempfile::tempdir().unwrap();
    let media = Media {
        seconds: 20.0,
        ..Default::default()
    };
    let flv = common::generate_media(&tmp.path().join("in.flv"), &media);
    let location = tmp.path().join("out");
    let result = run(&parse_pipeline(&format!(
        "filesrc location={} ! flvdemux name=d \
         d.video ! gopvalidate ! hls.video  d.audio ! gopvalidate ! hls.audio \
         cfhlssink name=hls location={}",
        flv.display(),
        location.display()
    )));
    assert!(result.error.is_none(), "{:?}", result.error);
    assert!(result.warnings.is_empty(), "{:?}", result.warnings);
    assert!(result.named("gopvalidate-violation").is_empty());

    let added = result.named("cfhlssink-segment-added");
    assert_eq!(added.len(), 5, "20 s with a keyframe every 4 s");
    for (i, s) in added.iter().enumerate() {
        assert_flv_seconds(s.get::<u64>("duration").unwrap(), 4);
        assert_eq!(
            s.get::<u64>("stream-time").unwrap(),
            i as u64 * 4_000_000_000
        );
    }
    let dir = recording_dir(&location);
    let replay = read_index(&dir);
    assert!(replay.finished());
    let video = track(replay.index(), TrackKind::Video);
    assert_eq!(durations(video), vec![4.0; 5]);
    assert_eq!(
        replay.index().stream.audio_codec.as_deref(),
        Some("mp4a.40.2"),
        "AAC LC from the raw caps' codec_data"
    );

    let rendered = playlists(&dir);
    let video_playlist = rendered.media(TrackKind::Video);
    assert_decodes(video_playlist);
    assert_eq!(count_frames(video_playlist, "v:0"), 600);
    let audio_playlist = rendered.media(TrackKind::Audio);
    assert_decodes(audio_playlist);
    assert_eq!(
        count_frames(audio_playlist, "a:0"),
        count_frames(&flv, "a:0")
    );
    for segment in &video.segments {
        // Every segment decodes with its init segment: SPS/PPS from the FLV's avcC.
        let file = joined(&dir, TrackKind::Video, segment);
        assert_decodes(&file.path);
        assert_eq!(count_frames(&file.path, "v:0"), 120, "{}", segment.sequence);
    }
    let audio = joined(
        &dir,
        TrackKind::Audio,
        &track(replay.index(), TrackKind::Audio).segments[0],
    );
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0"])
        .args(["-show_entries", "stream=codec_name,profile,sample_rate"])
        .args(["-of", "csv=p=0"])
        .arg(&audio.path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().next(), Some("aac,LC,44100"), "{text}");
}

/// A minimal avcC (4-byte lengths) around `sps` and `pps`.
fn avcc(sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let mut record = vec![1, sps[1], sps[2], sps[3], 0xFF, 0xE1];
    record.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    record.extend_from_slice(sps);
    record.push(1);
    record.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    record.extend_from_slice(pps);
    record
}

#[test]
fn plain_i_pictures_do_not_start_segments_in_avc() {
    // The same rule with length-prefixed access units (flvdemux without h264parse), whose
    // parameter sets come in the caps' avcC.
    common::init();
    let tmp = tempfile::tempdir().unwrap();
    let sink = gst::ElementFactory::make("cfhlssink")
        .property("location", tmp.path().to_str().unwrap())
        .build()
        .unwrap();
    let mut h = gst_check::Harness::with_element(&sink, Some("video"), None);
    let caps = gst::Caps::builder("video/x-h264")
        .field("stream-format", "avc")
        .field("codec_data", gst::Buffer::from_slice(avcc(SPS, PPS)))
        .build();
    h.set_src_caps(caps);
    const IDR: &[u8] = &[0, 0, 0, 3, 0x65, 0x88, 0x84];
    const PLAIN_I: &[u8] = &[0, 0, 0, 3, 0x41, 0x88, 0x84];
    const P: &[u8] = &[0, 0, 0, 2, 0x41, 0x9a];
    push_idr_and_plain_i_pictures(&mut h, IDR, PLAIN_I, P);
    assert_idr_segments(tmp.path());
}

#[test]
fn raw_aac_of_an_object_type_adts_cannot_carry_is_kept_as_is() {
    // ER AAC LD (object type 23), 48 kHz, stereo: the TS writer refused it (ADTS cannot say
    // it); CMAF carries the AudioSpecificConfig itself, in the init segment's esds.
    const ASC: [u8; 2] = [0xB9, 0x90];
    common::init();
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("appsrc")
        .property(
            "caps",
            gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("stream-format", "raw")
                .field("codec_data", gst::Buffer::from_slice(ASC))
                .build(),
        )
        .property("format", gst::Format::Time)
        .build()
        .unwrap();
    let sink = gst::ElementFactory::make("cfhlssink")
        .name("hls")
        .property("location", tmp.path().to_str().unwrap())
        .build()
        .unwrap();
    pipeline.add_many([&src, &sink]).unwrap();
    src.static_pad("src")
        .unwrap()
        .link(&sink.request_pad_simple("audio").unwrap())
        .unwrap();
    let appsrc = src.clone();
    std::thread::spawn(move || {
        // 480 samples per frame at 48 kHz: 10 ms.
        for frame in 0..10u64 {
            let mut buffer = gst::Buffer::from_slice([0u8; 100]);
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(frame * 10));
            b.set_duration(gst::ClockTime::from_mseconds(10));
            let _ = appsrc.emit_by_name::<gst::FlowReturn>("push-buffer", &[&buffer]);
        }
        let _ = appsrc.emit_by_name::<gst::FlowReturn>("end-of-stream", &[]);
    });
    let result = run(&pipeline);
    assert!(result.error.is_none(), "{:?}", result.error);
    let dir = recording_dir(tmp.path());
    let replay = read_index(&dir);
    assert_eq!(
        replay.index().stream.audio_codec.as_deref(),
        Some("mp4a.40.23")
    );
    assert_eq!(track(replay.index(), TrackKind::Audio).timescale, 48_000);
    let init =
        std::fs::read(dir.join(cfstream_proto::index::init_name(TrackKind::Audio, 0))).unwrap();
    assert!(
        common::cmaf::contains(&init, &ASC),
        "the esds holds the config"
    );
}

#[test]
fn mp3_straight_from_flvdemux_fails_to_link() {
    // Without aacparse in between, MP3 caps meet cfhlssink's pad when flvdemux is linked to
    // gopvalidate (which takes any caps but asks downstream): the link fails as it did with
    // aacparse. (gopvalidate's ERR_UNSUPPORTED_AUDIO_CODEC needs caps its peer accepts; in
    // controld, cfrtmpsrc's enforce-codecs refuses the publisher first.)
    let tmp = tempfile::tempdir().unwrap();
    let media = Media {
        seconds: 2.0,
        audio: &["-c:a", "libmp3lame", "-b:a", "64k", "-ar", "44100"],
        ..Default::default()
    };
    let flv = common::generate_media(&tmp.path().join("in.flv"), &media);
    let result = run(&demux_pipeline_without_parsers(
        &flv,
        &tmp.path().join("out"),
    ));
    let error = result.error.expect("an element error");
    assert!(error.matches(gst::CoreError::Negotiation), "{error:?}");
}

/// Video frames that went into cfhlssink, whether its audio pad was linked, and how far the
/// audio has come.
#[derive(Default)]
struct VideoFirst {
    video_frames: usize,
    audio_linked: bool,
    /// End (PTS) of the latest audio buffer into cfhlssink.
    audio_until: Option<gst::ClockTime>,
}

/// Past the audio link, how far video may run ahead of audio. The branches run in two threads
/// (the audio one behind a queue) and nothing paces them, as a live source would: unchecked,
/// the video thread can close segment 0 before the audio thread has pushed into it.
const MAX_VIDEO_LEAD: gst::ClockTime = gst::ClockTime::from_mseconds(500);

#[test]
fn audio_pad_requested_after_the_first_video_frames_is_in_the_first_segment() {
    // As behind cfrtmpsrc in push mode, flvdemux sends the first video frames before its audio
    // pad is linked to cfhlssink: here the audio branch requests `hls.audio` only once 10 video
    // frames went into `hls.video` (the next video frame waits for that). The first segment
    // must carry both streams all the same, and every frame.
    const VIDEO_FIRST: usize = 10;
    let tmp = tempfile::tempdir().unwrap();
    let media = Media {
        seconds: 8.0,
        ..Default::default()
    };
    let flv = common::generate_media(&tmp.path().join("in.flv"), &media);
    let location = tmp.path().join("out");
    let pipeline = parse_pipeline(&format!(
        "filesrc location={} ! flvdemux name=d  cfhlssink name=hls location={}",
        flv.display(),
        location.display()
    ));
    let shared = Arc::new((Mutex::new(VideoFirst::default()), std::sync::Condvar::new()));
    let video_frames_at_audio_request = Arc::new(Mutex::new(None::<usize>));
    let weak = pipeline.downgrade();
    let (state, at_request) = (shared.clone(), video_frames_at_audio_request.clone());
    pipeline
        .by_name("d")
        .unwrap()
        .connect_pad_added(move |_, pad| {
            let Some(pipeline) = weak.upgrade() else {
                return;
            };
            let name = pad.name();
            let validate = gst::ElementFactory::make("gopvalidate")
                .name(format!("gopvalidate-{name}"))
                .build()
                .unwrap();
            pipeline.add(&validate).unwrap();
            let validate_src = validate.static_pad("src").unwrap();
            if name == "video" {
                let sink_pad = pipeline
                    .by_name("hls")
                    .unwrap()
                    .request_pad_simple("video")
                    .unwrap();
                validate_src.link(&sink_pad).unwrap();
                let state = state.clone();
                validate_src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                    let pts = info.buffer().and_then(|b| b.pts()).unwrap_or_default();
                    let (lock, changed) = &*state;
                    let mut guard = lock.lock().unwrap();
                    if guard.video_frames >= VIDEO_FIRST {
                        guard = changed
                            .wait_timeout_while(guard, TIMEOUT, |s| {
                                !s.audio_linked
                                    || s.audio_until.is_none_or(|a| a + MAX_VIDEO_LEAD < pts)
                            })
                            .unwrap()
                            .0;
                    }
                    guard.video_frames += 1;
                    changed.notify_all();
                    gst::PadProbeReturn::Ok
                });
                validate.sync_state_with_parent().unwrap();
                pad.link(&validate.static_pad("sink").unwrap()).unwrap();
                return;
            }
            // audio: demux ! queue ! gopvalidate, linked to cfhlssink at its first buffer once
            // the video frames went in (the queue keeps the demuxer going meanwhile).
            let queue = gst::ElementFactory::make("queue")
                .property("max-size-buffers", 0u32)
                .property("max-size-bytes", 0u32)
                .property("max-size-time", 0u64)
                .build()
                .unwrap();
            pipeline.add(&queue).unwrap();
            queue.link(&validate).unwrap();
            let audio_state = state.clone();
            let (state, at_request) = (state.clone(), at_request.clone());
            let weak = pipeline.downgrade();
            queue
                .static_pad("src")
                .unwrap()
                .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    let (lock, changed) = &*state;
                    let mut guard = changed
                        .wait_timeout_while(lock.lock().unwrap(), TIMEOUT, |s| {
                            s.video_frames < VIDEO_FIRST
                        })
                        .unwrap()
                        .0;
                    *at_request.lock().unwrap() = Some(guard.video_frames);
                    if let Some(pipeline) = weak.upgrade() {
                        let sink_pad = pipeline
                            .by_name("hls")
                            .unwrap()
                            .request_pad_simple("audio")
                            .unwrap();
                        validate_src.link(&sink_pad).unwrap();
                    }
                    guard.audio_linked = true;
                    changed.notify_all();
                    gst::PadProbeReturn::Remove
                });
            validate.static_pad("src").unwrap().add_probe(
                gst::PadProbeType::BUFFER,
                move |_, info| {
                    let end = info
                        .buffer()
                        .and_then(|b| Some(b.pts()? + b.duration().unwrap_or_default()));
                    let (lock, changed) = &*audio_state;
                    lock.lock().unwrap().audio_until = end;
                    changed.notify_all();
                    gst::PadProbeReturn::Ok
                },
            );
            validate.sync_state_with_parent().unwrap();
            queue.sync_state_with_parent().unwrap();
            pad.link(&queue.static_pad("sink").unwrap()).unwrap();
        });
    let result = run(&pipeline);
    assert!(result.error.is_none(), "{:?}", result.error);
    assert!(result.warnings.is_empty(), "{:?}", result.warnings);
    assert!(result.named("gopvalidate-violation").is_empty());
    let at_request = video_frames_at_audio_request.lock().unwrap().unwrap();
    assert_eq!(
        at_request, VIDEO_FIRST,
        "video frames in before the audio pad"
    );

    let added = result.named("cfhlssink-segment-added");
    assert_eq!(added.len(), 2, "8 s with a keyframe every 4 s");
    assert_eq!(added[0].get::<u64>("stream-time").unwrap(), 0);
    assert_eq!(added[0].get::<u64>("duration").unwrap(), 4_000_000_000);
    let dir = recording_dir(&location);
    let replay = read_index(&dir);
    let first_video = joined(
        &dir,
        TrackKind::Video,
        &track(replay.index(), TrackKind::Video).segments[0],
    );
    let first_audio = joined(
        &dir,
        TrackKind::Audio,
        &track(replay.index(), TrackKind::Audio).segments[0],
    );
    assert_decodes(&first_video.path);
    assert_decodes(&first_audio.path);
    assert_eq!(
        count_frames(&first_video.path, "v:0"),
        120,
        "no video frame missing"
    );
    assert!(
        count_frames(&first_audio.path, "a:0") > 0,
        "segment 0 has audio"
    );
    let rendered = playlists(&dir);
    let video = rendered.media(TrackKind::Video);
    assert_decodes(video);
    assert_eq!(count_frames(video, "v:0"), 240);
    let audio = rendered.media(TrackKind::Audio);
    assert_decodes(audio);
    assert_eq!(count_frames(audio, "a:0"), count_frames(&flv, "a:0"));
    // Segment 0's audio starts with its video (the source's audio starts at 0 too).
    let (audio_start, video_start) = (
        first_pts(&first_audio.path, "a:0"),
        first_pts(&first_video.path, "v:0"),
    );
    assert!(
        (audio_start - video_start).abs() < 0.1,
        "audio from {audio_start} s, video from {video_start} s"
    );
}

/// 8 s at 30 fps then EOS: IDR pictures at 0, 4 and 8 s, plain I pictures (no recovery point,
/// yet without DELTA_UNIT, as h264parse marks them) at 1.5 and 5.5 s, P pictures between.
fn push_idr_and_plain_i_pictures(h: &mut gst_check::Harness, idr: &[u8], plain_i: &[u8], p: &[u8]) {
    for frame in 0..=240u64 {
        let (bytes, key) = match frame {
            0 | 120 | 240 => (idr, true),
            45 | 165 => (plain_i, true),
            _ => (p, false),
        };
        let mut buffer = gst::Buffer::from_slice(bytes.to_vec());
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(frame * 1_000_000_000 / 30));
        b.set_duration(gst::ClockTime::from_nseconds(1_000_000_000 / 30));
        if !key {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        assert_eq!(h.push(buffer), Ok(gst::FlowSuccess::Ok));
    }
    assert!(h.push_event(gst::event::Eos::new()));
}
