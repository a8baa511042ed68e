//! One recording directory being written: MPEG-TS segments cut at keyframes, the recording
//! playlist (appended to, one write per segment) and the live window (rewritten atomically per
//! segment), the `max-duration` retention and the deletion of segments no client can still want.
//!
//! Memory and per-segment cost do not depend on the recording's length: only the live window and
//! counters are kept; the recording playlist is only streamed through when its head is trimmed
//! (at most about once per `max-duration / 20`, capped at once an hour), when it is finished and
//! when it is resumed.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::playlist::{self, Entry, Header, PlaylistType, RewriteOptions};
use super::ts::{Streams, TsMuxer, timestamp_90khz};
use super::{
    Access, Error, LIVE_PLAYLIST, RECORDING_PLAYLIST, RecordingSummary, format_program_date_time,
    segment_sequence, segment_uri,
};

/// Segment bytes are gathered in memory up to this size before a write (few syscalls per GOP).
const WRITE_CHUNK: usize = 64 * 1024;
/// Audio-only streams are cut at most this long (or `target-duration` when shorter).
const AUDIO_ONLY_SEGMENT_NS: u64 = 6_000_000_000;
const MAX_TRIM_SLACK_NS: u64 = 3_600_000_000_000;
/// Audio frames held while waiting for the keyframe that opens the next segment (~3 s of AAC).
const MAX_QUEUED_AUDIO_FRAMES: usize = 128;
/// Held audio this much older than the keyframe that opens the segment is dropped.
const AUDIO_LEAD_NS: i64 = 500_000_000;
/// How much audio arrives without a video pad before a recording starts audio-only.
const AUDIO_ONLY_GRACE_NS: i64 = 1_000_000_000;
/// How much video (media time from its first keyframe) is held back without an audio pad before
/// a recording starts video-only.
const VIDEO_ALONE_GRACE_NS: i64 = 1_000_000_000;
/// Bytes of video held back at most, whatever the timestamps say: the grace is media time, which
/// a publisher controls (timestamps that never advance must not make the queue grow without
/// bound). 16 MiB is about 1 s at 130 Mbit/s, far above what an input carries.
const MAX_HELD_VIDEO_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct RecordingConfig {
    pub directory: PathBuf,
    /// Segments in `live.m3u8`.
    pub playlist_length: u32,
    /// Seconds; the longest segment expected (a longer GOP still makes one segment).
    pub target_duration: u32,
    /// Keep `video.m3u8`; false = live window only.
    pub record: bool,
    pub max_duration_ns: u64,
    pub streams: Streams,
}

/// One coded frame: an H.264 access unit (Annex B) or one ADTS frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub data: &'a [u8],
    /// Nanoseconds on the element's running time.
    pub pts: i64,
    pub dts: i64,
    pub duration: Option<u64>,
    pub keyframe: bool,
}

/// A segment that was closed and listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentAdded {
    pub uri: String,
    pub sequence: u64,
    pub duration_ns: u64,
    /// First PTS of the segment (ns, running time, clamped at 0).
    pub start_ns: u64,
    pub discontinuity: bool,
    /// The segment is longer than the target duration (a GOP too long).
    pub exceeds_target: bool,
}

struct OpenSegment {
    sequence: u64,
    path: PathBuf,
    file: File,
    buffer: Vec<u8>,
    start_ns: i64,
    /// End of the last frame written (PTS + duration).
    end_ns: i64,
    discontinuity: bool,
    program_date_time: SystemTime,
    epoch: u64,
}

struct QueuedAudio {
    data: Vec<u8>,
    pts: i64,
    epoch: u64,
}

/// Video held back before the first segment of a recording while no audio pad exists: flvdemux
/// (push mode) adds its video pad and sends the first keyframe before it adds the audio pad, and
/// a first segment opened then would have no audio (a program without it, until the next
/// segment). Starts at a keyframe and holds one GOP at most.
struct HeldVideo {
    frames: Vec<HeldFrame>,
    /// Frame bytes plus per-frame overhead, bounded by [`MAX_HELD_VIDEO_BYTES`].
    bytes: usize,
    /// When the first keyframe arrived: the wall clock of the first segment's start.
    arrived: SystemTime,
}

struct HeldFrame {
    data: Vec<u8>,
    pts: i64,
    dts: i64,
    duration: Option<u64>,
    keyframe: bool,
    epoch: u64,
}

impl HeldFrame {
    fn cost(data: &[u8]) -> usize {
        data.len() + std::mem::size_of::<HeldFrame>()
    }
}

struct WindowEntry {
    sequence: u64,
    entry: Entry,
    /// Discontinuity sequence number of this segment.
    discontinuity_number: u64,
}

pub struct Recording {
    config: RecordingConfig,
    target_duration: u32,
    muxer: TsMuxer,
    segment: Option<OpenSegment>,
    next_sequence: u64,
    discontinuity_pending: bool,
    discontinuity_number: u64,
    window: VecDeque<WindowEntry>,
    /// Append handle of `video.m3u8` (record=true).
    playlist: Option<File>,
    recording_first_sequence: u64,
    recording_ns: u64,
    /// Sum of all segment durations produced; the clock of the deletion deadlines.
    media_clock_ns: u64,
    /// Segments out of every playlist, deleted once the clock passes their deadline.
    pending_deletions: VecDeque<(u64, u64)>,
    /// Wall-clock time of a media time, for EXT-X-PROGRAM-DATE-TIME; reset at discontinuities.
    wall_clock_base: Option<(SystemTime, i64)>,
    last_video_pts: Option<i64>,
    epoch: u64,
    epoch_start: Option<i64>,
    queued_audio: VecDeque<QueuedAudio>,
    /// No segment was opened yet: video without an audio pad may still be held back.
    may_hold_video: bool,
    /// Only exists before the first segment opens (the hot path after it never allocates).
    held_video: Option<HeldVideo>,
    /// Wall clock of the start of the next segment opened, when it is not now (held video).
    next_wall_clock: Option<SystemTime>,
    resumed: bool,
    finished: bool,
}

impl Recording {
    /// Starts a recording in `config.directory`, or resumes the unfinished one found there
    /// behind a discontinuity. A finished recording there is an error (never overwritten).
    pub fn open(config: RecordingConfig) -> Result<Self, Error> {
        let dir = &config.directory;
        fs::create_dir_all(dir).map_err(|e| Error::new(Access::Open, dir, e))?;
        let mut recording = Recording {
            target_duration: config.target_duration.max(1),
            muxer: TsMuxer::new(config.streams),
            segment: None,
            next_sequence: 0,
            discontinuity_pending: false,
            discontinuity_number: 0,
            window: VecDeque::new(),
            playlist: None,
            recording_first_sequence: 0,
            recording_ns: 0,
            media_clock_ns: 0,
            pending_deletions: VecDeque::new(),
            wall_clock_base: None,
            last_video_pts: None,
            epoch: 0,
            epoch_start: None,
            queued_audio: VecDeque::new(),
            may_hold_video: true,
            held_video: None,
            next_wall_clock: None,
            resumed: false,
            finished: false,
            config,
        };
        let path = recording.dir_path(RECORDING_PLAYLIST);
        if path.exists() {
            recording.resume()?;
        } else if recording.config.record {
            let header = Header {
                target_duration: recording.target_duration,
                media_sequence: 0,
                discontinuity_sequence: 0,
                playlist_type: Some(PlaylistType::Event),
            };
            let mut text = String::new();
            header.format(&mut text);
            write_atomically(&path, text.as_bytes())?;
            recording.open_playlist()?;
        }
        Ok(recording)
    }

    /// Whether an unfinished recording was continued.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    pub fn directory(&self) -> &Path {
        &self.config.directory
    }

    /// Audio may start later than video: the next segment's program carries it (the first
    /// segment's, when its video is still held back for an audio pad).
    pub fn set_streams(&mut self, streams: Streams) {
        self.config.streams = streams;
    }

    /// The current gap epoch: [`Self::break_at_gap`] increments it. Frames carry the epoch of
    /// their pad (the epoch before a gap until that pad, too, reached the gap), so that frames
    /// from before and after a gap, when the pads reach it at different moments, land on the
    /// right side of the discontinuity.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Start (PTS) of the first segment of the current epoch, once it is open: a pad that has
    /// not signalled the gap yet but sends frames from this time on is past it (a gap
    /// signalled only on the video pad, e.g. by DISCONT).
    pub fn epoch_start(&self) -> Option<i64> {
        self.epoch_start
    }

    pub fn push_video(&mut self, frame: Frame, epoch: u64) -> Result<Option<SegmentAdded>, Error> {
        if !self.config.streams.video {
            return Ok(None);
        }
        if let Some(held) = &self.held_video {
            let first_pts = held.frames.first().map_or(frame.pts, |f| f.pts);
            let cost = HeldFrame::cost(frame.data);
            // The audio pad came (both streams from the first segment on), or the grace is over
            // (video-only); a second keyframe ends the first GOP, which is all that is held, so
            // that releasing the held frames never closes a segment.
            let release = self.config.streams.audio
                || frame.keyframe
                || held.frames.first().is_some_and(|f| f.epoch != epoch)
                || frame.pts.saturating_sub(first_pts) >= VIDEO_ALONE_GRACE_NS
                || held.bytes.saturating_add(cost) > MAX_HELD_VIDEO_BYTES;
            if !release {
                self.hold_video(frame, epoch);
                return Ok(None);
            }
            let released = self.release_held_video()?;
            let added = self.push_video(frame, epoch)?;
            return Ok(added.or(released));
        }
        if self.may_hold_video && frame.keyframe && !self.config.streams.audio {
            self.held_video = Some(HeldVideo {
                frames: Vec::new(),
                bytes: 0,
                arrived: SystemTime::now(),
            });
            self.hold_video(frame, epoch);
            return Ok(None);
        }
        let segment_epoch = self.segment.as_ref().map(|s| s.epoch);
        if segment_epoch.is_some_and(|e| epoch < e) {
            return Ok(None); // from before a gap whose segment is already closed
        }
        let mut added = None;
        if frame.keyframe {
            if let Some(segment) = &self.segment {
                let after_gap = epoch > segment.epoch;
                let end = if !after_gap && frame.pts > segment.start_ns {
                    frame.pts
                } else {
                    segment.end_ns
                };
                added = self.close_segment(end)?;
            }
            self.open_segment(frame.pts, epoch)?;
        }
        let Some(segment) = self.segment.as_mut().filter(|s| s.epoch == epoch) else {
            return Ok(added); // waiting for a keyframe
        };
        let duration = frame
            .duration
            .map(|d| d.min(i64::MAX as u64) as i64)
            .unwrap_or_else(|| match self.last_video_pts {
                Some(last) if frame.pts > last => frame.pts.saturating_sub(last),
                _ => 0,
            });
        self.last_video_pts = Some(frame.pts);
        segment.end_ns = segment.end_ns.max(frame.pts.saturating_add(duration));
        let (pts, dts) = (timestamp_90khz(frame.pts), timestamp_90khz(frame.dts));
        self.muxer
            .write_video(&mut segment.buffer, frame.data, pts, dts, frame.keyframe);
        segment.flush_if_full()?;
        Ok(added)
    }

    pub fn push_audio(&mut self, frame: Frame, epoch: u64) -> Result<Option<SegmentAdded>, Error> {
        let mut added = None;
        if !self.config.streams.video {
            let cut_ns = AUDIO_ONLY_SEGMENT_NS.min(self.target_duration as u64 * 1_000_000_000);
            match &self.segment {
                Some(segment) if frame.pts.saturating_sub(segment.start_ns) >= cut_ns as i64 => {
                    added = self.close_segment(frame.pts)?;
                    self.open_segment(frame.pts, epoch)?;
                }
                None => {
                    // flvdemux adds its pads as their first tags arrive, often audio first: a
                    // video pad may still come. Start audio-only only after a grace period of
                    // audio, the frames of which wait in the queue and open the segment.
                    let first = self
                        .queued_audio
                        .front()
                        .filter(|queued| queued.epoch == epoch)
                        .map_or(frame.pts, |queued| queued.pts);
                    if frame.pts.saturating_sub(first) >= AUDIO_ONLY_GRACE_NS {
                        self.open_segment(first, epoch)?;
                    }
                }
                Some(_) => {}
            }
        }
        match self.segment.as_ref().map(|s| s.epoch) {
            Some(segment_epoch) if epoch < segment_epoch => return Ok(added), // before a closed gap
            Some(segment_epoch) if epoch == segment_epoch => {}
            // Before the first keyframe, or after a gap the video has not reached yet: the
            // frame waits for the next segment.
            _ => {
                if self.queued_audio.len() == MAX_QUEUED_AUDIO_FRAMES {
                    self.queued_audio.pop_front();
                }
                self.queued_audio.push_back(QueuedAudio {
                    data: frame.data.to_vec(),
                    pts: frame.pts,
                    epoch,
                });
                if self.held_video.is_some() && self.config.streams.audio {
                    // The video held back for this pad opens the first segment, this frame
                    // (and audio queued before it) in front.
                    return Ok(self.release_held_video()?.or(added));
                }
                return Ok(added);
            }
        }
        self.write_audio(frame.data, frame.pts, frame.duration)?;
        Ok(added)
    }

    fn hold_video(&mut self, frame: Frame, epoch: u64) {
        let Some(held) = self.held_video.as_mut() else {
            return;
        };
        held.bytes += HeldFrame::cost(frame.data);
        held.frames.push(HeldFrame {
            data: frame.data.to_vec(),
            pts: frame.pts,
            dts: frame.dts,
            duration: frame.duration,
            keyframe: frame.keyframe,
            epoch,
        });
    }

    /// Opens the first segment at the held keyframe, with the streams there are now, and writes
    /// the held frames into it (one GOP at most: no segment is closed).
    fn release_held_video(&mut self) -> Result<Option<SegmentAdded>, Error> {
        let Some(held) = self.held_video.take() else {
            return Ok(None);
        };
        self.may_hold_video = false; // the held keyframe opens the segment, not a new hold
        self.next_wall_clock = Some(held.arrived);
        let mut added = None;
        for f in &held.frames {
            let frame = Frame {
                data: &f.data,
                pts: f.pts,
                dts: f.dts,
                duration: f.duration,
                keyframe: f.keyframe,
            };
            added = self.push_video(frame, f.epoch)?.or(added);
        }
        self.next_wall_clock = None;
        Ok(added)
    }

    fn write_audio(&mut self, data: &[u8], pts: i64, duration: Option<u64>) -> Result<(), Error> {
        let Some(segment) = self.segment.as_mut() else {
            return Ok(());
        };
        if !self.muxer.streams().audio {
            return Ok(()); // audio appeared mid-segment: from the next segment on
        }
        if !self.config.streams.video {
            let duration = duration.unwrap_or(0).min(i64::MAX as u64) as i64;
            segment.end_ns = segment.end_ns.max(pts.saturating_add(duration));
        }
        self.muxer
            .write_audio(&mut segment.buffer, data, timestamp_90khz(pts));
        segment.flush_if_full()
    }

    /// A gap (publisher reconnect, timestamp jump) reached by the first pad. The open segment
    /// ends at its last frame from before the gap (audio-only: now; with video: when the
    /// first keyframe after the gap arrives) and the next segment is marked as a discontinuity.
    pub fn break_at_gap(&mut self) -> Result<Option<SegmentAdded>, Error> {
        // Video held back for an audio pad is from before the gap: it opens the first segment.
        let released = self.release_held_video()?;
        self.epoch += 1;
        self.epoch_start = None;
        let added = match &self.segment {
            Some(segment) if !self.config.streams.video => self.close_segment(segment.end_ns)?,
            _ => released,
        };
        if self.next_sequence > 0 || self.resumed {
            self.discontinuity_pending = true;
        }
        Ok(added)
    }

    /// Closes the open segment and ends the playlists (`EXT-X-ENDLIST`, type VOD unless trimmed).
    /// Segments out of every playlist, and with record=true those of the last live window that
    /// the recording no longer lists, are deleted once their grace has passed on the wall clock
    /// ([`Self::delete_pending_later`]), the media clock having stopped; with record=false the
    /// last window stays.
    pub fn finish(&mut self) -> Result<(Option<SegmentAdded>, RecordingSummary), Error> {
        // Held video opens the first segment (a release closes none).
        self.release_held_video()?;
        let added = match &self.segment {
            Some(segment) => self.close_segment(segment.end_ns)?,
            None => None,
        };
        self.finished = true;
        let summary = if self.config.record {
            self.playlist = None;
            let path = self.dir_path(RECORDING_PLAYLIST);
            let options = RewriteOptions {
                finish: true,
                ..Default::default()
            };
            let result = rewrite_in_place(&path, options)?;
            RecordingSummary {
                segments: result.kept,
                duration: Duration::from_nanos(result.kept_ns),
                media_sequence: result.header.media_sequence,
            }
        } else {
            RecordingSummary {
                segments: self.next_sequence,
                duration: Duration::from_nanos(self.media_clock_ns),
                media_sequence: self.window.front().map(|w| w.sequence).unwrap_or(0),
            }
        };
        self.write_live_playlist()?;
        if self.config.record {
            self.expire_trimmed_window();
        }
        self.delete_pending_later();
        Ok((added, summary))
    }

    /// Segments of the last live window that `max-duration` trimmed from the recording are
    /// wanted only by live clients finishing the window: they go once it has played. The
    /// recording is what stays (the finished `live.m3u8` may then name files that are gone).
    fn expire_trimmed_window(&mut self) {
        let window_ns: u64 = self.window.iter().map(|w| w.entry.duration_ns).sum();
        let deadline = self.media_clock_ns + window_ns;
        let trimmed = self.window.iter().map(|w| w.sequence);
        let trimmed = trimmed.filter(|&sequence| sequence < self.recording_first_sequence);
        let trimmed: Vec<u64> = trimmed.collect();
        for sequence in trimmed {
            self.pending_deletions.push_back((sequence, deadline));
        }
    }

    /// After the last segment no media time passes: the segments still waiting for their
    /// deletion deadline (trimmed by `max-duration`, or out of the live window of a live-only
    /// recording) are deleted once the wall clock has run as far, on the runtime. A process
    /// that exits sooner leaves them (the daemon's sweep removes such leftovers).
    fn delete_pending_later(&mut self) {
        let pending = std::mem::take(&mut self.pending_deletions);
        let Some(last) = pending.iter().map(|&(_, deadline)| deadline).max() else {
            return;
        };
        let grace = Duration::from_nanos(last.saturating_sub(self.media_clock_ns));
        let dir = self.config.directory.clone();
        crate::runtime::RUNTIME.spawn(async move {
            tokio::time::sleep(grace).await;
            // A few unlinks: not worth a blocking thread.
            for (sequence, _) in pending {
                let _ = remove_segment(&dir, sequence);
            }
        });
    }

    fn resume(&mut self) -> Result<(), Error> {
        let path = self.dir_path(RECORDING_PLAYLIST);
        let keep_tail = self.config.playlist_length.max(1) as usize;
        let options = RewriteOptions {
            keep_tail,
            ..Default::default()
        };
        let tmp = temp_path(&path);
        let summary = playlist::rewrite(&path, &tmp, options)
            .map_err(|e| Error::new(Access::Open, &path, e))?;
        if summary.was_finished {
            let _ = fs::remove_file(&tmp);
            let e = io::Error::new(io::ErrorKind::AlreadyExists, "holds a finished recording");
            return Err(Error::new(Access::Open, &path, e));
        }
        fs::rename(&tmp, &path).map_err(|e| Error::new(Access::Write, &path, e))?;
        self.target_duration = summary.header.target_duration;
        self.recording_first_sequence = summary.header.media_sequence;
        self.next_sequence = summary.header.media_sequence + summary.kept;
        self.recording_ns = summary.kept_ns;
        self.discontinuity_number = summary.last_discontinuity_number;
        self.discontinuity_pending = true;
        self.resumed = true;
        let first_in_tail = self.next_sequence - summary.tail.len() as u64;
        self.window = (first_in_tail..)
            .zip(summary.tail)
            .map(|(sequence, (entry, discontinuity_number))| WindowEntry {
                sequence,
                entry,
                discontinuity_number,
            })
            .collect();
        remove_unlisted_segments(&self.config.directory, self.next_sequence)?;
        if self.config.record {
            self.open_playlist()?;
        }
        Ok(())
    }

    fn open_playlist(&mut self) -> Result<(), Error> {
        let path = self.dir_path(RECORDING_PLAYLIST);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::new(Access::Open, &path, e))?;
        self.playlist = Some(file);
        Ok(())
    }

    fn open_segment(&mut self, start_ns: i64, epoch: u64) -> Result<(), Error> {
        if epoch == self.epoch && self.epoch_start.is_none() {
            self.epoch_start = Some(start_ns);
        }
        self.may_hold_video = false;
        let sequence = self.next_sequence;
        let path = self.dir_path(&segment_uri(sequence));
        let file = File::create(&path).map_err(|e| Error::new(Access::Open, &path, e))?;
        let discontinuity = std::mem::take(&mut self.discontinuity_pending);
        if discontinuity {
            self.muxer.mark_discontinuity();
            self.wall_clock_base = None;
            self.last_video_pts = None;
        }
        self.muxer.set_streams(self.config.streams);
        let now = self.next_wall_clock.take().unwrap_or_else(SystemTime::now);
        let (wall, base) = *self.wall_clock_base.get_or_insert((now, start_ns));
        let offset = Duration::from_nanos(start_ns.saturating_sub(base).max(0) as u64);
        let mut segment = OpenSegment {
            sequence,
            path,
            file,
            buffer: Vec::with_capacity(WRITE_CHUNK + 64 * 1024),
            start_ns,
            end_ns: start_ns,
            discontinuity,
            program_date_time: wall.checked_add(offset).unwrap_or(wall),
            epoch,
        };
        self.muxer.write_tables(&mut segment.buffer);
        self.segment = Some(segment);
        self.next_sequence += 1;
        // Audio that arrived ahead of this segment's keyframe (not long before it).
        let queued = std::mem::take(&mut self.queued_audio);
        for audio in queued
            .iter()
            .filter(|a| a.epoch == epoch && a.pts >= start_ns.saturating_sub(AUDIO_LEAD_NS))
        {
            self.write_audio(&audio.data, audio.pts, None)?;
        }
        self.queued_audio = queued;
        self.queued_audio.clear();
        Ok(())
    }

    /// Finishes the open segment file, then lists it: recording playlist, live window,
    /// retention, deletions.
    fn close_segment(&mut self, end_ns: i64) -> Result<Option<SegmentAdded>, Error> {
        let Some(mut segment) = self.segment.take() else {
            return Ok(None);
        };
        self.muxer.flush_audio(&mut segment.buffer);
        segment.flush()?;
        drop(segment.file);

        let duration_ns = end_ns.saturating_sub(segment.start_ns).max(0) as u64;
        let uri = segment_uri(segment.sequence);
        let entry = Entry::new(
            &uri,
            duration_ns,
            segment.discontinuity,
            &format_program_date_time(segment.program_date_time),
        );
        self.discontinuity_number += segment.discontinuity as u64;
        if let Some(playlist) = self.playlist.as_mut() {
            let path = self.config.directory.join(RECORDING_PLAYLIST);
            // One write per entry: a crash leaves whole entries (or a torn last one that a
            // resume drops).
            playlist
                .write_all(entry.text.as_bytes())
                .map_err(|e| Error::new(Access::Write, &path, e))?;
            self.recording_ns += entry.duration_ns;
        }
        self.media_clock_ns += entry.duration_ns;
        let added = SegmentAdded {
            uri,
            sequence: segment.sequence,
            duration_ns: entry.duration_ns,
            start_ns: segment.start_ns.max(0) as u64,
            discontinuity: segment.discontinuity,
            exceeds_target: entry.duration_ns
                > (self.target_duration as u64 * 1_000_000_000 + 500_000_000),
        };
        self.window.push_back(WindowEntry {
            sequence: segment.sequence,
            entry,
            discontinuity_number: self.discontinuity_number,
        });
        self.slide_window();
        self.write_live_playlist()?;
        self.trim_recording()?;
        self.delete_expired()?;
        Ok(Some(added))
    }

    /// Drops the oldest entries of the live window; those not in the recording are deleted
    /// after the segment's duration plus the window's (RFC 8216 section 6.2.2).
    fn slide_window(&mut self) {
        let length = self.config.playlist_length.max(1) as usize;
        while self.window.len() > length {
            // The longest playlist that listed `old`: the window before this segment came in.
            let window_ns: u64 = self
                .window
                .iter()
                .take(length)
                .map(|w| w.entry.duration_ns)
                .sum();
            let Some(old) = self.window.pop_front() else {
                break;
            };
            if !self.config.record || old.sequence < self.recording_first_sequence {
                let deadline = self.media_clock_ns + old.entry.duration_ns + window_ns;
                self.pending_deletions.push_back((old.sequence, deadline));
            }
        }
    }

    fn write_live_playlist(&self) -> Result<(), Error> {
        let first = self.window.front();
        let text = playlist::format_live(
            self.target_duration,
            first.map(|w| w.sequence).unwrap_or(self.next_sequence),
            first
                .map(|w| w.discontinuity_number - w.entry.discontinuity as u64)
                .unwrap_or(self.discontinuity_number),
            self.window.iter().map(|w| &w.entry),
            self.finished,
        );
        write_atomically(&self.dir_path(LIVE_PLAYLIST), text.as_bytes())
    }

    /// Keeps the recording within `max-duration`: once it is longer, streams the playlist to a
    /// copy without the oldest segments (down to max-duration minus a slack, so that the copy is
    /// rare), renames it over the original, then deletes the dropped segments.
    fn trim_recording(&mut self) -> Result<(), Error> {
        let max = self.config.max_duration_ns;
        if !self.config.record || self.recording_ns <= max {
            return Ok(());
        }
        let slack = (max / 20).min(MAX_TRIM_SLACK_NS);
        let newest_ns = self.window.back().map(|w| w.entry.duration_ns).unwrap_or(0);
        // Never drop the newest segment, even when it alone is longer than max-duration.
        let drop_ns = (self.recording_ns - (max - slack)).min(self.recording_ns - newest_ns);
        if drop_ns == 0 {
            return Ok(());
        }
        let path = self.dir_path(RECORDING_PLAYLIST);
        self.playlist = None;
        let options = RewriteOptions {
            drop_ns,
            ..Default::default()
        };
        let result = rewrite_in_place(&path, options);
        self.open_playlist()?;
        let summary = result?;
        let old_first = self.recording_first_sequence;
        self.recording_first_sequence = summary.header.media_sequence;
        self.recording_ns = summary.kept_ns;
        let window_first = self
            .window
            .front()
            .map(|w| w.sequence)
            .unwrap_or(self.next_sequence);
        // Segments still in the live window are deleted when they leave it.
        for sequence in old_first..self.recording_first_sequence.min(window_first) {
            remove_segment(&self.config.directory, sequence)?;
        }
        Ok(())
    }

    fn delete_expired(&mut self) -> Result<(), Error> {
        while let Some(&(sequence, deadline)) = self.pending_deletions.front() {
            if deadline > self.media_clock_ns {
                break;
            }
            self.pending_deletions.pop_front();
            remove_segment(&self.config.directory, sequence)?;
        }
        Ok(())
    }

    fn dir_path(&self, name: &str) -> PathBuf {
        self.config.directory.join(name)
    }
}

impl Drop for Recording {
    /// A recording dropped unfinished (element error) keeps its listed segments; the partial
    /// segment file is removed since it is not listed.
    fn drop(&mut self) {
        if let Some(segment) = self.segment.take() {
            let _ = fs::remove_file(&segment.path);
        }
    }
}

impl OpenSegment {
    fn flush_if_full(&mut self) -> Result<(), Error> {
        if self.buffer.len() >= WRITE_CHUNK {
            self.flush()
        } else {
            Ok(())
        }
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.file
            .write_all(&self.buffer)
            .map_err(|e| Error::new(Access::Write, &self.path, e))?;
        self.buffer.clear();
        Ok(())
    }
}

/// The temporary name a playlist is written under before its rename; hidden, and not matching
/// the segment pattern, so never served.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("playlist");
    path.with_file_name(format!(".{name}.tmp"))
}

pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = temp_path(path);
    fs::write(&tmp, bytes).map_err(|e| Error::new(Access::Write, &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::new(Access::Write, path, e))
}

/// Streams `path` through [`playlist::rewrite`] into a temporary file and renames it over.
pub(super) fn rewrite_in_place(
    path: &Path,
    options: RewriteOptions,
) -> Result<playlist::RewriteSummary, Error> {
    let tmp = temp_path(path);
    let summary = playlist::rewrite(path, &tmp, options).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::new(Access::Write, &tmp, e)
    })?;
    fs::rename(&tmp, path).map_err(|e| Error::new(Access::Write, path, e))?;
    Ok(summary)
}

fn remove_segment(dir: &Path, sequence: u64) -> Result<(), Error> {
    let path = dir.join(segment_uri(sequence));
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::new(Access::Write, &path, e)),
        _ => Ok(()),
    }
}

/// Deletes segment files numbered `from` or later: written but never listed (a crash mid-GOP).
pub(super) fn remove_unlisted_segments(dir: &Path, from: u64) -> Result<(), Error> {
    let entries = fs::read_dir(dir).map_err(|e| Error::new(Access::Open, dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let sequence = name.to_str().and_then(segment_sequence);
        if let Some(sequence) = sequence.filter(|&s| s >= from) {
            remove_segment(dir, sequence)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn frame(data: &[u8], pts_ms: i64, keyframe: bool) -> Frame<'_> {
        Frame {
            data,
            pts: pts_ms * MS,
            dts: pts_ms * MS,
            duration: Some(40 * MS as u64),
            keyframe,
        }
    }

    fn open(dir: &Path, record: bool, playlist_length: u32) -> Recording {
        Recording::open(RecordingConfig {
            directory: dir.to_path_buf(),
            playlist_length,
            target_duration: 10,
            record,
            max_duration_ns: 3_600_000_000_000,
            streams: Streams {
                video: true,
                audio: true,
            },
        })
        .unwrap()
    }

    const KEY: &[u8] = &[0, 0, 0, 1, 0x65, 0x88];
    const DELTA: &[u8] = &[0, 0, 0, 1, 0x41, 0x9A];
    const AAC: &[u8] = &[0xFF, 0xF1, 0x50, 0x80, 0x01, 0x7F, 0xFC];

    #[test]
    fn audio_ahead_of_a_late_video_pad_waits_for_the_keyframe() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = open(tmp.path(), true, 6);
        let audio_only = Streams {
            video: false,
            audio: true,
        };
        rec.set_streams(audio_only);
        assert_eq!(rec.push_audio(frame(AAC, 0, true), 0).unwrap(), None);
        // The video pad is requested after the first audio frame, as in a dynamic pipeline.
        rec.set_streams(Streams {
            video: true,
            audio: true,
        });
        rec.push_audio(frame(AAC, 20, true), 0).unwrap();
        rec.push_video(frame(KEY, 40, true), 0).unwrap();
        rec.push_video(frame(DELTA, 80, false), 0).unwrap();
        let first = rec.push_video(frame(KEY, 4_040, true), 0).unwrap().unwrap();
        assert_eq!(
            first.start_ns,
            40 * MS as u64,
            "the first segment starts at the keyframe"
        );
        let ts = fs::read(tmp.path().join(crate::hls::segment_uri(0))).unwrap();
        let has_pes = |stream_id: u8| ts.windows(4).any(|w| w == [0, 0, 1, stream_id]);
        assert!(has_pes(0xE0), "no video PES in the first segment");
        assert!(has_pes(0xC0), "no audio PES in the first segment");

        // Without a video pad, audio-only starts after the grace period, from the first frame.
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = open(tmp.path(), true, 6);
        rec.set_streams(audio_only);
        for ms in (0..=1_000).step_by(20) {
            rec.push_audio(frame(AAC, ms, true), 0).unwrap();
        }
        let (last, _) = rec.finish().unwrap();
        assert_eq!(last.unwrap().start_ns, 0);
    }

    const VIDEO_ONLY: Streams = Streams {
        video: true,
        audio: false,
    };

    fn pes_count(ts: &[u8], stream_id: u8) -> usize {
        ts.windows(4).filter(|w| *w == [0, 0, 1, stream_id]).count()
    }

    #[test]
    fn video_ahead_of_a_late_audio_pad_waits_for_it() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = open(tmp.path(), true, 6);
        // flvdemux adds the video pad and sends the first keyframe before adding the audio pad.
        rec.set_streams(VIDEO_ONLY);
        assert_eq!(rec.push_video(frame(DELTA, -40, false), 0).unwrap(), None);
        for ms in (0..400).step_by(40) {
            let key = ms == 0;
            let data = if key { KEY } else { DELTA };
            assert_eq!(rec.push_video(frame(data, ms, key), 0).unwrap(), None);
        }
        assert!(
            !tmp.path().join(segment_uri(0)).exists(),
            "held back for the audio pad"
        );
        rec.set_streams(Streams {
            video: true,
            audio: true,
        });
        rec.push_audio(frame(AAC, -600, true), 0).unwrap(); // too far ahead of the keyframe
        rec.push_audio(frame(AAC, -20, true), 0).unwrap();
        assert!(
            tmp.path().join(segment_uri(0)).exists(),
            "opened with audio"
        );
        for ms in (0..4_000).step_by(20) {
            rec.push_audio(frame(AAC, ms, true), 0).unwrap();
        }
        for ms in (400..4_000).step_by(40) {
            assert_eq!(rec.push_video(frame(DELTA, ms, false), 0).unwrap(), None);
        }
        let first = rec.push_video(frame(KEY, 4_000, true), 0).unwrap().unwrap();
        assert_eq!(
            (first.sequence, first.start_ns),
            (0, 0),
            "starts at the keyframe"
        );
        assert_eq!(first.duration_ns, 4_000 * MS as u64);
        let ts = fs::read(tmp.path().join(segment_uri(0))).unwrap();
        assert_eq!(
            pes_count(&ts, 0xE0),
            100,
            "every video frame from the keyframe on"
        );
        // 1 + 200 audio frames, 8 per PES.
        assert_eq!(pes_count(&ts, 0xC0), 201_usize.div_ceil(8));
        let (_, summary) = rec.finish().unwrap();
        assert_eq!(summary.segments, 2);
    }

    #[test]
    fn video_only_starts_after_the_grace_with_every_frame() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = open(tmp.path(), true, 6);
        rec.set_streams(VIDEO_ONLY);
        for ms in (0..1_000).step_by(40) {
            rec.push_video(frame(if ms == 0 { KEY } else { DELTA }, ms, ms == 0), 0)
                .unwrap();
        }
        assert!(
            !tmp.path().join(segment_uri(0)).exists(),
            "within the grace"
        );
        rec.push_video(frame(DELTA, 1_000, false), 0).unwrap();
        assert!(tmp.path().join(segment_uri(0)).exists(), "grace over");
        for ms in (1_040..2_000).step_by(40) {
            rec.push_video(frame(DELTA, ms, false), 0).unwrap();
        }
        let (last, summary) = rec.finish().unwrap();
        let last = last.unwrap();
        assert_eq!((last.start_ns, last.duration_ns), (0, 2_000 * MS as u64));
        assert_eq!(summary.segments, 1);
        let ts = fs::read(tmp.path().join(segment_uri(0))).unwrap();
        assert_eq!(pes_count(&ts, 0xE0), 50, "nothing lost");
        assert_eq!(pes_count(&ts, 0xC0), 0);

        // A GOP shorter than the grace ends it; a stream shorter than it keeps its frames; a
        // gap during the grace leaves the held frames before it.
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = open(tmp.path(), true, 6);
        rec.set_streams(VIDEO_ONLY);
        rec.push_video(frame(KEY, 0, true), 0).unwrap();
        rec.push_video(frame(DELTA, 40, false), 0).unwrap();
        let first = rec.push_video(frame(KEY, 500, true), 0).unwrap().unwrap();
        assert_eq!((first.start_ns, first.duration_ns), (0, 500 * MS as u64));
        rec.push_video(frame(DELTA, 540, false), 0).unwrap();
        let (last, summary) = rec.finish().unwrap();
        assert_eq!(last.unwrap().duration_ns, 80 * MS as u64);
        assert_eq!(summary.segments, 2);

        let tmp = tempfile::tempdir().unwrap();
        let mut rec = open(tmp.path(), true, 6);
        rec.set_streams(VIDEO_ONLY);
        rec.push_video(frame(KEY, 0, true), 0).unwrap();
        rec.push_video(frame(DELTA, 40, false), 0).unwrap();
        assert_eq!(rec.break_at_gap().unwrap(), None);
        rec.push_video(frame(DELTA, 80, false), 0).unwrap();
        let before = rec.push_video(frame(KEY, 5_000, true), 1).unwrap().unwrap();
        assert_eq!((before.start_ns, before.duration_ns), (0, 120 * MS as u64));
        assert!(!before.discontinuity);
        let (after, _) = rec.finish().unwrap();
        let after = after.unwrap();
        assert!(after.discontinuity);
        assert_eq!(after.start_ns, 5_000 * MS as u64);
    }

    #[test]
    fn pads_reaching_a_gap_at_different_moments() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = open(tmp.path(), true, 6);
        assert_eq!(
            rec.push_audio(frame(AAC, -100, true), 0).unwrap(),
            None,
            "held for the keyframe"
        );
        assert_eq!(rec.push_video(frame(KEY, 0, true), 0).unwrap(), None);
        rec.push_video(frame(DELTA, 960, false), 0).unwrap();
        // Audio reaches the gap first; its next frames wait for the video's keyframe.
        assert_eq!(rec.break_at_gap().unwrap(), None);
        assert_eq!(rec.epoch(), 1);
        rec.push_audio(frame(AAC, 5_000, true), 1).unwrap();
        // The video's last frames from before the gap still belong to the first segment.
        rec.push_video(frame(DELTA, 1_960, false), 0).unwrap();
        let closed = rec.push_video(frame(KEY, 5_000, true), 1).unwrap().unwrap();
        assert_eq!(closed.sequence, 0);
        assert_eq!(
            closed.duration_ns,
            2_000 * MS as u64,
            "ends at the last frame before the gap"
        );
        assert!(!closed.discontinuity);
        assert_eq!(
            rec.push_video(frame(DELTA, 2_000, false), 0).unwrap(),
            None,
            "stale frame dropped"
        );
        let (last, summary) = rec.finish().unwrap();
        let last = last.unwrap();
        assert!(last.discontinuity);
        assert_eq!(last.start_ns, 5_000 * MS as u64);
        assert_eq!(summary.segments, 2);
        let text = fs::read_to_string(tmp.path().join(RECORDING_PLAYLIST)).unwrap();
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD\n") && text.ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn resume_continues_numbering_behind_a_discontinuity() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = open(tmp.path(), true, 2);
        for i in 0..4 {
            rec.push_video(frame(KEY, i * 1_000, true), 0).unwrap();
        }
        // A crash: the open segment 3 stays on disk unlisted.
        std::mem::forget(rec);
        assert!(tmp.path().join(segment_uri(3)).exists());
        assert_eq!(
            super::super::directory_state(tmp.path()).unwrap(),
            super::super::DirectoryState::Unfinished
        );

        let mut rec = open(tmp.path(), true, 2);
        assert!(rec.resumed());
        assert!(
            !tmp.path().join(segment_uri(3)).exists(),
            "unlisted partial segment removed"
        );
        rec.push_video(frame(KEY, 0, true), 0).unwrap();
        let added = rec.push_video(frame(KEY, 1_000, true), 0).unwrap().unwrap();
        assert_eq!((added.sequence, added.discontinuity), (3, true));
        let live = fs::read_to_string(tmp.path().join(LIVE_PLAYLIST)).unwrap();
        assert!(live.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{live}");
        assert!(
            live.contains("seg-00000002.ts\n#EXT-X-DISCONTINUITY\n"),
            "{live}"
        );
        rec.finish().unwrap();
        assert!(
            open_err(tmp.path())
                .to_string()
                .contains("finished recording")
        );
    }

    /// Segment files on disk that the recording playlist does not list.
    fn unlisted_segments(dir: &Path) -> Vec<String> {
        let listed = fs::read_to_string(dir.join(RECORDING_PLAYLIST)).unwrap();
        let mut unlisted: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().into_string().ok())
            .filter(|name| segment_sequence(name).is_some())
            .filter(|name| !listed.lines().any(|line| line == name))
            .collect();
        unlisted.sort();
        unlisted
    }

    #[test]
    fn trimmed_segments_are_deleted_after_their_grace_once_finished() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = Recording::open(RecordingConfig {
            max_duration_ns: 1_000 * MS as u64,
            ..open(tmp.path(), true, 20).config.clone()
        })
        .unwrap();
        // 100 ms segments, 6 s: trimmed to ~1 s, within a live window of 2 s.
        for i in 0..60 {
            rec.push_video(frame(KEY, i * 100, true), 0).unwrap();
        }
        assert!(!unlisted_segments(tmp.path()).is_empty(), "some wait");
        rec.finish().unwrap();
        // A live client may still fetch them while it plays the last window.
        let finished = std::time::Instant::now();
        let waiting = unlisted_segments(tmp.path());
        assert!(!waiting.is_empty());
        let deadline = finished + Duration::from_secs(10);
        while !unlisted_segments(tmp.path()).is_empty() {
            assert!(std::time::Instant::now() < deadline, "{waiting:?} left");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            finished.elapsed() >= Duration::from_millis(100),
            "deleted at once"
        );
        // What the playlists list is all still there.
        let recording = fs::read_to_string(tmp.path().join(RECORDING_PLAYLIST)).unwrap();
        for name in recording.lines().filter(|l| l.ends_with(".ts")) {
            assert!(tmp.path().join(name).exists(), "{name}");
        }
    }

    fn open_err(dir: &Path) -> Error {
        let config = RecordingConfig {
            directory: dir.to_path_buf(),
            playlist_length: 2,
            target_duration: 10,
            record: true,
            max_duration_ns: 1,
            streams: Streams {
                video: true,
                audio: false,
            },
        };
        Recording::open(config)
            .err()
            .expect("a finished recording is not reopened")
    }
}
