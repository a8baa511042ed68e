use std::time::Duration;

use bytes::Bytes;
use mp4_atom::{Decode, Moof};

use super::*;
use crate::cmaf::codec::tests::{PPS, SPS_320X240_30FPS};
use crate::cmaf::{AudioConfig, VideoConfig};

const MS: i64 = 1_000_000;
/// An AAC frame at 44.1 kHz, nanoseconds.
const AAC_FRAME_NS: i64 = 1024 * 1_000_000_000 / 44_100;

fn segmenter(part_target_ms: u64, video: bool, audio: bool) -> Segmenter {
    let mut segmenter = Segmenter::new(SegmenterConfig {
        part_target: Duration::from_millis(part_target_ms),
        ..SegmenterConfig::default()
    });
    if video {
        let config = VideoConfig::from_parameter_sets(SPS_320X240_30FPS, PPS).unwrap();
        segmenter.set_track(TrackConfig::Video(config));
    }
    if audio {
        let config = AudioConfig::from_audio_specific_config(&[0x12, 0x10]).unwrap();
        segmenter.set_track(TrackConfig::Audio(config));
    }
    segmenter
}

fn frame(track: TrackKind, dts_ns: i64, keyframe: bool) -> Frame {
    Frame {
        track,
        dts_ns,
        pts_ns: dts_ns,
        duration_ns: None,
        keyframe,
        data: Bytes::from(vec![0x5A; 40]),
        wall_clock_ms: 1_700_000_000_000 + dts_ns / MS,
    }
}

/// 30 fps video with a keyframe every `gop` frames from `start_ns`, and AAC frames over the
/// same time, interleaved by DTS.
fn stream(start_ns: i64, seconds: i64, gop: i64, audio: bool) -> Vec<Frame> {
    let mut frames: Vec<Frame> = (0..seconds * 30)
        .map(|i| {
            frame(
                TrackKind::Video,
                start_ns + i * 1000 * MS / 30,
                i % gop == 0,
            )
        })
        .collect();
    if audio {
        let count = seconds * 1_000_000_000 / AAC_FRAME_NS;
        frames
            .extend((0..count).map(|i| frame(TrackKind::Audio, start_ns + i * AAC_FRAME_NS, true)));
    }
    frames.sort_by_key(|f| f.dts_ns);
    frames
}

fn run(segmenter: &mut Segmenter, frames: Vec<Frame>) -> Vec<Event> {
    for frame in frames {
        segmenter.push(frame).unwrap();
    }
    drain(segmenter)
}

/// Pushes `frames`, then finishes the stream: every event.
fn run_to_end(segmenter: &mut Segmenter, frames: Vec<Frame>) -> Vec<Event> {
    let mut events = run(segmenter, frames);
    segmenter.finish();
    events.extend(drain(segmenter));
    events
}

fn drain(segmenter: &mut Segmenter) -> Vec<Event> {
    std::iter::from_fn(|| segmenter.poll_event()).collect()
}

fn closed(events: &[Event], kind: TrackKind) -> Vec<Segment> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::SegmentClosed { track, segment } if *track == kind => Some(segment.clone()),
            _ => None,
        })
        .collect()
}

fn parts(events: &[Event], kind: TrackKind) -> Vec<(u64, Part, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Part {
                track,
                sequence,
                part,
                data,
            } if *track == kind => Some((*sequence, *part, data.clone())),
            _ => None,
        })
        .collect()
}

/// Every sample's (decode time, duration, sync) in a part's moof.
fn samples(data: &[u8]) -> Vec<(u64, u32, bool)> {
    let moof = Moof::decode(&mut std::io::Cursor::new(data)).unwrap();
    let traf = &moof.traf[0];
    let mut time = traf.tfdt.as_ref().unwrap().base_media_decode_time;
    traf.trun[0]
        .samples
        .iter()
        .map(|entry| {
            let duration = entry.duration.unwrap();
            let sample = (time, duration, entry.flags.unwrap() & 0x0001_0000 == 0);
            time += u64::from(duration);
            sample
        })
        .collect()
}

#[test]
fn segments_are_cut_at_keyframes_only() {
    let mut segmenter = segmenter(1000, true, false);
    // Keyframes every 60 frames (2 s); a stream of 5 s.
    let events = run_to_end(&mut segmenter, stream(0, 5, 60, false));
    let segments = closed(&events, TrackKind::Video);
    let durations: Vec<u64> = segments.iter().map(|s| s.duration).collect();
    assert_eq!(durations, [180_000, 180_000, 90_000]);
    assert_eq!(
        segments.iter().map(|s| s.sequence).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    for (sequence, part, data) in parts(&events, TrackKind::Video) {
        let samples = samples(&data);
        let segment = &segments[sequence as usize];
        // A keyframe is only ever the first sample of a segment's first part.
        for (i, &(time, _, sync)) in samples.iter().enumerate() {
            assert_eq!(
                sync,
                i == 0 && time == segment.decode_time,
                "{sequence} {time}"
            );
        }
        assert_eq!(part.independent, samples[0].2);
    }
    assert_eq!(segmenter.target_duration(), Some(2));
}

#[test]
fn frames_before_the_first_keyframe_are_dropped_and_unknown_tracks_refused() {
    let mut segmenter = segmenter(1000, true, false);
    let mut frames = stream(0, 3, 30, false);
    frames.drain(..5);
    let events = run(&mut segmenter, frames);
    assert_eq!(segmenter.stats().dropped_before_keyframe, 25);
    assert_eq!(closed(&events, TrackKind::Video)[0].decode_time, 0);
    assert_eq!(
        segmenter.push(frame(TrackKind::Audio, 0, true)),
        Err(NoSuchTrack(TrackKind::Audio))
    );
}

#[test]
fn audio_is_cut_where_video_is_with_the_same_sequence_numbers() {
    let mut segmenter = segmenter(1000, true, true);
    let events = run_to_end(&mut segmenter, stream(5_000 * MS, 7, 60, true));
    let video = closed(&events, TrackKind::Video);
    let audio = closed(&events, TrackKind::Audio);
    assert_eq!(video.len(), 4);
    assert_eq!(audio.len(), 4);
    for (v, a) in video.iter().zip(&audio) {
        assert_eq!(v.sequence, a.sequence);
        let video_start = v.decode_time as f64 / 90_000.0;
        let audio_start = a.decode_time as f64 / 44_100.0;
        // Audio starts with the first frame at or after the video cut.
        assert!(
            audio_start >= video_start - 1e-4 && audio_start < video_start + 0.0233,
            "segment {}: video {video_start} audio {audio_start}",
            v.sequence
        );
    }
}

#[test]
fn parts_stay_within_the_target_and_independence_follows_keyframes() {
    let mut segmenter = segmenter(500, true, true);
    let events = run_to_end(&mut segmenter, stream(0, 5, 60, true));
    let video = parts(&events, TrackKind::Video);
    assert!(video.iter().all(|(_, p, _)| p.duration <= 45_000));
    // 500 ms at 30 fps: 15 frames a part, 4 parts per 2 s segment.
    assert_eq!(video[0].1.duration, 45_000);
    let independent: Vec<bool> = video.iter().map(|(_, p, _)| p.independent).collect();
    assert_eq!(&independent[..5], [true, false, false, false, true]);
    let audio = parts(&events, TrackKind::Audio);
    assert!(
        audio
            .iter()
            .all(|(_, p, _)| p.independent && p.duration <= 22_050)
    );
    assert!(audio.len() >= 10);
}

#[test]
fn part_byte_ranges_add_up_to_the_segment_file() {
    let mut segmenter = segmenter(300, true, true);
    let events = run_to_end(&mut segmenter, stream(0, 4, 45, true));
    for kind in [TrackKind::Video, TrackKind::Audio] {
        let all_parts = parts(&events, kind);
        for segment in closed(&events, kind) {
            let mine: Vec<_> = all_parts
                .iter()
                .filter(|(sequence, ..)| *sequence == segment.sequence)
                .collect();
            let listed: Vec<Part> = mine.iter().map(|(_, p, _)| *p).collect();
            assert_eq!(listed, segment.parts);
            let mut offset = 0;
            for (_, part, data) in &mine {
                assert_eq!((part.offset, part.length), (offset, data.len() as u64));
                offset += part.length;
            }
            assert_eq!(segment.size, offset);
            let duration: u64 = listed.iter().map(|p| p.duration).sum();
            assert_eq!(duration, segment.duration);
        }
    }
}

#[test]
fn repeated_and_backwards_dts_are_corrected_and_counted() {
    let mut segmenter = segmenter(1000, true, false);
    let mut frames = stream(0, 2, 30, false);
    frames[10].dts_ns = frames[9].dts_ns; // repeated
    frames[11].dts_ns = frames[9].dts_ns; // repeated again
    frames[20].dts_ns = frames[18].dts_ns - MS; // backwards
    for frame in &mut frames {
        frame.pts_ns = frame.dts_ns;
    }
    let events = run_to_end(&mut segmenter, frames);
    assert_eq!(segmenter.stats().dts_corrected, 3);
    let mut last = None;
    for (_, _, data) in parts(&events, TrackKind::Video) {
        for (time, duration, _) in samples(&data) {
            assert!(last.is_none_or(|last| time > last), "{time} after {last:?}");
            assert!(duration >= 1);
            last = Some(time);
        }
    }
}

#[test]
fn decode_time_is_continuous_across_segments_and_discontinuities() {
    let mut segmenter = segmenter(1000, true, true);
    let mut events = run(&mut segmenter, stream(0, 5, 60, true));
    segmenter.discontinuity();
    // The publisher comes back with its clock restarted, and a frame before its keyframe.
    let mut again = stream(-100 * MS, 5, 60, true);
    again.retain(|f| f.dts_ns >= -50 * MS);
    events.extend(run(&mut segmenter, again));
    segmenter.finish();
    events.extend(drain(&mut segmenter));

    let inits: Vec<(TrackKind, u64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Init {
                track,
                discontinuity_number,
                ..
            } => Some((*track, *discontinuity_number)),
            _ => None,
        })
        .collect();
    assert_eq!(inits.len(), 4);
    assert!(inits.contains(&(TrackKind::Video, 1)) && inits.contains(&(TrackKind::Audio, 1)));

    for kind in [TrackKind::Video, TrackKind::Audio] {
        let segments = closed(&events, kind);
        assert!(segments.len() >= 5, "{kind:?}: {}", segments.len());
        for pair in segments.windows(2) {
            assert_eq!(
                pair[1].decode_time,
                pair[0].decode_time + pair[0].duration,
                "{kind:?} segment {}",
                pair[1].sequence
            );
            assert_eq!(pair[1].sequence, pair[0].sequence + 1);
        }
        let first_of_run: Vec<_> = segments.iter().filter(|s| s.discontinuity).collect();
        assert_eq!(first_of_run.len(), 1, "{kind:?}");
        assert_eq!(first_of_run[0].discontinuity_number, 1);
        // The tfdt of every part continues the one before it.
        let mut end = None;
        for (_, part, data) in parts(&events, kind) {
            let samples = samples(&data);
            if let Some(end) = end {
                assert_eq!(samples[0].0, end, "{kind:?}");
            }
            end = Some(samples[0].0 + part.duration);
        }
    }
}

#[test]
fn target_duration_comes_from_the_first_gop_and_longer_segments_are_reported() {
    let mut segmenter = segmenter(1000, true, false);
    // GOPs of 2 s, then one of 3.5 s.
    let mut frames = stream(0, 8, 60, false);
    for (i, frame) in frames.iter_mut().enumerate() {
        frame.keyframe = matches!(i, 0 | 60 | 120 | 225);
    }
    let events = run_to_end(&mut segmenter, frames);
    let target_at = events
        .iter()
        .position(|e| *e == Event::TargetDuration { seconds: 2 })
        .expect("target duration announced");
    let first_closed = events
        .iter()
        .position(|e| matches!(e, Event::SegmentClosed { .. }))
        .unwrap();
    assert!(target_at < first_closed);
    let exceeded: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::TargetDurationExceeded { sequence, .. } => Some(*sequence),
            _ => None,
        })
        .collect();
    assert_eq!(exceeded, [2]);
    assert_eq!(segmenter.stats().segments_over_target, 1);
}

#[test]
fn audio_alone_is_cut_by_duration_and_a_stalled_video_does_not_hold_audio_forever() {
    let mut alone = segmenter(1000, false, true);
    let audio_only = stream(0, 9, 60, true)
        .into_iter()
        .filter(|f| f.track == TrackKind::Audio)
        .collect();
    let events = run_to_end(&mut alone, audio_only);
    let segments = closed(&events, TrackKind::Audio);
    assert_eq!(segments.len(), 3);
    assert_eq!(alone.target_duration(), Some(5));

    // Video stops after 1 s; audio goes on and is placed once it leads by the limit.
    let mut stalled = segmenter(1000, true, true);
    let frames: Vec<Frame> = stream(0, 16, 60, true)
        .into_iter()
        .filter(|f| f.track == TrackKind::Audio || f.dts_ns < 1_000 * MS)
        .collect();
    let events = run(&mut stalled, frames);
    assert!(
        stalled.pending_audio.len() < 500,
        "{}",
        stalled.pending_audio.len()
    );
    assert!(parts(&events, TrackKind::Audio).len() > 3);
}

#[test]
fn a_track_added_late_joins_at_the_next_cut_and_a_changed_one_starts_a_run() {
    let mut segmenter = segmenter(1000, true, false);
    let frames = stream(0, 6, 60, true);
    let (first, rest): (Vec<Frame>, Vec<Frame>) =
        frames.into_iter().partition(|f| f.dts_ns < 1_000 * MS);
    let first = first.into_iter().filter(|f| f.track == TrackKind::Video);
    let mut events = run(&mut segmenter, first.collect());
    let audio = AudioConfig::from_audio_specific_config(&[0x12, 0x10]).unwrap();
    segmenter.set_track(TrackConfig::Audio(audio));
    events.extend(run(&mut segmenter, rest));
    // Same SPS: nothing changes. Another one (a new picture size): a new run.
    let same = VideoConfig::from_parameter_sets(SPS_320X240_30FPS, PPS).unwrap();
    segmenter.set_track(TrackConfig::Video(same));
    assert!(drain(&mut segmenter).is_empty());
    let mut changed = VideoConfig::from_parameter_sets(SPS_320X240_30FPS, PPS).unwrap();
    changed.width = 640;
    segmenter.set_track(TrackConfig::Video(changed));
    events.extend(run_to_end(&mut segmenter, stream(0, 2, 60, false)));

    let audio = closed(&events, TrackKind::Audio);
    assert_eq!(audio[0].sequence, 1, "audio joins at the second segment");
    assert!(audio[0].decode_time >= 88_200 && audio[0].decode_time < 88_200 + 1024);
    assert!(segmenter.stats().dropped_before_keyframe > 0);
    let video = closed(&events, TrackKind::Video);
    let last = video.last().unwrap();
    assert!(last.discontinuity && last.discontinuity_number == 1);
    let video_inits = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Init {
                    track: TrackKind::Video,
                    ..
                }
            )
        })
        .count();
    assert_eq!(video_inits, 2);
}

#[test]
fn hostile_timestamps_never_break_the_timeline() {
    // Jittered, repeated, backwards and jumping timestamps, random keyframes and reconnects:
    // no panic, every track's samples strictly increasing and its segments contiguous.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut random = move |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let mut segmenter = segmenter(200, true, true);
    let mut events = Vec::new();
    let mut clock = 0i64;
    for i in 0..3000 {
        clock += match random(100) {
            0..=4 => -(random(2_000) as i64) * MS, // backwards
            5..=14 => 0,                           // repeated
            15 => random(30_000) as i64 * MS,      // jump ahead
            _ => random(40) as i64 * MS,
        };
        let track = if random(2) == 0 {
            TrackKind::Video
        } else {
            TrackKind::Audio
        };
        let mut frame = frame(track, clock, random(20) == 0);
        frame.pts_ns = clock + random(200) as i64 * MS - 50 * MS;
        segmenter.push(frame).unwrap();
        if i % 700 == 699 {
            segmenter.discontinuity();
        }
        events.extend(drain(&mut segmenter));
    }
    segmenter.finish();
    events.extend(drain(&mut segmenter));
    assert!(segmenter.stats().dts_corrected > 100);
    for kind in [TrackKind::Video, TrackKind::Audio] {
        let segments = closed(&events, kind);
        assert!(segments.len() > 10, "{kind:?}");
        for pair in segments.windows(2) {
            assert_eq!(pair[1].decode_time, pair[0].decode_time + pair[0].duration);
        }
        let mut last = None;
        for (_, _, data) in parts(&events, kind) {
            for (time, duration, _) in samples(&data) {
                assert!(
                    last.is_none_or(|last| time > last) && duration >= 1,
                    "{kind:?}"
                );
                last = Some(time);
            }
        }
    }
    assert!(!events.iter().any(|e| matches!(e, Event::Error { .. })));
}

#[test]
fn a_resumed_recording_continues_numbering_and_timelines_behind_a_discontinuity() {
    let mut segmenter = Segmenter::new(SegmenterConfig {
        target_duration: Some(4),
        ..SegmenterConfig::default()
    });
    segmenter.resume(ResumePoint {
        next_sequence: 7,
        discontinuity_number: 3,
        track_ends: vec![(TrackKind::Video, 2_520_000), (TrackKind::Audio, 1_234_944)],
    });
    let video = VideoConfig::from_parameter_sets(SPS_320X240_30FPS, PPS).unwrap();
    segmenter.set_track(TrackConfig::Video(video));
    let audio = AudioConfig::from_audio_specific_config(&[0x12, 0x10]).unwrap();
    segmenter.set_track(TrackConfig::Audio(audio));
    let events = run_to_end(&mut segmenter, stream(5_000 * MS, 4, 60, true));
    let inits: Vec<u64> = (events.iter())
        .filter_map(|e| match e {
            Event::Init {
                discontinuity_number,
                ..
            } => Some(*discontinuity_number),
            _ => None,
        })
        .collect();
    assert_eq!(inits, [3, 3]);
    let closed: Vec<(TrackKind, u64, u64, bool)> = (events.iter())
        .filter_map(|e| match e {
            Event::SegmentClosed { track, segment } => Some((
                *track,
                segment.sequence,
                segment.decode_time,
                segment.discontinuity,
            )),
            _ => None,
        })
        .collect();
    assert_eq!(closed[0], (TrackKind::Video, 7, 2_520_000, true));
    assert!(closed.contains(&(TrackKind::Audio, 7, 1_234_944, true)));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::TargetDuration { .. }))
    );
    assert_eq!(segmenter.target_duration(), Some(4));
}

#[test]
fn audio_just_before_the_first_keyframe_goes_into_the_first_segment() {
    let mut segmenter = segmenter(1000, true, true);
    // One AAC frame 23 ms before the first video frame, one 600 ms before (too early).
    let mut frames = vec![
        frame(TrackKind::Audio, -600 * MS, true),
        frame(TrackKind::Audio, -23 * MS, true),
    ];
    frames.extend(stream(0, 4, 60, false));
    frames.extend((0..170).map(|i| frame(TrackKind::Audio, i * AAC_FRAME_NS, true)));
    frames.sort_by_key(|f| f.dts_ns);
    let events = run_to_end(&mut segmenter, frames);
    let first = |kind: TrackKind| {
        events.iter().find_map(|e| match e {
            Event::SegmentClosed { track, segment } if *track == kind => Some(segment.clone()),
            _ => None,
        })
    };
    // Media time starts at the early audio frame: audio at 0, video 23 ms (2070 ticks) later.
    assert_eq!(first(TrackKind::Audio).unwrap().decode_time, 0);
    assert_eq!(first(TrackKind::Video).unwrap().decode_time, 2070);
    assert_eq!(segmenter.stats().dropped_before_keyframe, 1);
}
