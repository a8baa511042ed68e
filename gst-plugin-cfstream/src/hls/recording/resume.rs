//! What a recording directory holds when a recording opens: nothing (a new recording starts
//! its `index.log`), an unfinished recording (left by a crash: its log is replayed, a torn last
//! line cut off, the files it does not list deleted, and writing continues from where it ends),
//! or a finished one, which is never overwritten.

use std::io;

use cfstream_proto::cmaf::ResumePoint;
use cfstream_proto::index::log::{self, HEADER, Record, Replay};
use cfstream_proto::index::{Progress, RecordingIndex, StreamInfo, TrackKind, parse_media_name};

use super::super::{INDEX_LOG, LEGACY_PLAYLIST};
use crate::storage::{LocalDir, Storage};

pub struct Found {
    /// The index so far (empty for a new recording), live.
    pub index: RecordingIndex,
    /// Where an unfinished recording left off.
    pub point: Option<ResumePoint>,
    pub target_duration: Option<u32>,
    /// The main track of the listed segments and their (sequence, duration ns).
    pub main: Option<TrackKind>,
    pub main_segments: Vec<(u64, u64)>,
}

pub fn prepare(storage: &LocalDir) -> io::Result<Found> {
    let dir = storage.path();
    let path = dir.join(INDEX_LOG);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot read {}: {e}", path.display()),
            ));
        }
    };
    if bytes.is_empty() && dir.join(LEGACY_PLAYLIST).exists() {
        return Err(refused(
            &path,
            "holds an MPEG-TS recording of an earlier version",
        ));
    }
    let mut replay = Replay::new();
    let consumed = replay.feed(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    if replay.finished() {
        return Err(refused(
            &path,
            "is a finished recording, which is never overwritten",
        ));
    }
    if consumed == 0 {
        storage.replace(INDEX_LOG, format!("{HEADER}\n").as_bytes())?;
        return Ok(Found {
            index: RecordingIndex {
                stream: StreamInfo::default(),
                tracks: Vec::new(),
            },
            point: None,
            target_duration: None,
            main: None,
            main_segments: Vec::new(),
        });
    }
    if let Some(aligned) = aligned(&bytes[..consumed], replay.index()) {
        storage.replace(INDEX_LOG, &aligned)?;
        replay = log::replay(&aligned).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
    } else if consumed < bytes.len() {
        storage.replace(INDEX_LOG, &bytes[..consumed])?; // a record torn by the crash
    }
    let mut index = replay.into_index();
    for track in &mut index.tracks {
        track.progress = Progress::Live;
        track.open = None;
    }
    let next_discontinuity = remove_unlisted(storage, &index)?;
    Ok(found(index, next_discontinuity))
}

/// The log without the segments that some tracks list beyond the others' last (a crash between
/// the records of one segment's tracks), so that every track resumes at the same sequence
/// number; `None` when they end together. A track without segments yet does not count.
fn aligned(log: &[u8], index: &RecordingIndex) -> Option<Vec<u8>> {
    let ends = index.tracks.iter().filter_map(|t| t.segments.back());
    let ends: Vec<u64> = ends.map(|s| s.sequence + 1).collect();
    let common = *ends.iter().min()?;
    if ends.iter().all(|&end| end == common) {
        return None;
    }
    let text = std::str::from_utf8(log).ok()?;
    let beyond = |line: &str| {
        matches!(log::decode(line.trim_end_matches('\n')),
                 Ok(Record::Segment { segment, .. }) if segment.sequence >= common)
    };
    let kept: String = text.split_inclusive('\n').filter(|l| !beyond(l)).collect();
    Some(kept.into_bytes())
}

fn refused(path: &std::path::Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{} {why}", path.parent().unwrap_or(path).display()),
    )
}

/// Deletes media files the index does not list (a segment being written at the crash, or
/// trimmed ones whose deletion was pending) and temporary files; returns the discontinuity
/// number the next run gets (above every init segment present).
fn remove_unlisted(storage: &LocalDir, index: &RecordingIndex) -> io::Result<u64> {
    let listed = |kind: TrackKind, sequence: u64| {
        index.track(kind).is_some_and(|t| {
            let first = t.segments.front().map_or(u64::MAX, |s| s.sequence);
            let last = t.segments.back().map_or(0, |s| s.sequence);
            (first..=last).contains(&sequence)
        })
    };
    let mut next_discontinuity = 0;
    for name in storage.list()? {
        match parse_media_name(&name) {
            Some((_, true, number)) => next_discontinuity = next_discontinuity.max(number + 1),
            Some((kind, false, sequence)) if !listed(kind, sequence) => storage.delete(&name)?,
            Some(_) => {}
            None if name.starts_with('.') && name.ends_with(".tmp") => storage.delete(&name)?,
            None => {}
        }
    }
    let listed_runs = index.tracks.iter().flat_map(|t| t.segments.back());
    Ok(listed_runs
        .map(|s| s.discontinuity_number + 1)
        .fold(next_discontinuity, u64::max))
}

fn found(index: RecordingIndex, discontinuity_number: u64) -> Found {
    let target = index
        .tracks
        .first()
        .map(|t| t.target_duration)
        .filter(|&t| t > 0);
    let next_sequence = (index.tracks.iter())
        .filter_map(|t| t.segments.back().map(|s| s.sequence + 1))
        .max()
        .unwrap_or(0);
    let track_ends = (index.tracks.iter())
        .filter_map(|t| Some((t.kind, t.segments.back()?.end_time())))
        .collect();
    let main = index.tracks.iter().find(|t| !t.segments.is_empty());
    let main_segments = main.map_or(Vec::new(), |t| {
        let ns = |ticks: u64| (u128::from(ticks) * 1_000_000_000 / u128::from(t.timescale)) as u64;
        t.segments
            .iter()
            .map(|s| (s.sequence, ns(s.duration)))
            .collect()
    });
    Found {
        point: Some(ResumePoint {
            next_sequence,
            discontinuity_number,
            track_ends,
        }),
        target_duration: target,
        main: main.map(|t| t.kind),
        main_segments,
        index,
    }
}
