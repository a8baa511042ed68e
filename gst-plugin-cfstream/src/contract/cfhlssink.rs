//! `cfhlssink`'s element messages.

use super::{count, field, flag, text};

/// A recording started (or an unfinished one was resumed).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingStarted {
    /// The recording's name (its directory's last component).
    pub recording: String,
    pub directory: String,
    /// An unfinished recording is continued.
    pub resumed: bool,
}

impl RecordingStarted {
    pub const NAME: &'static str = "cfhlssink-recording-started";

    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder(Self::NAME)
            .field(field::RECORDING, &self.recording)
            .field(field::DIRECTORY, &self.directory)
            .field(field::RESUMED, self.resumed)
            .build()
    }

    pub fn from_structure(s: &gst::StructureRef) -> RecordingStarted {
        RecordingStarted {
            recording: text(s, field::RECORDING),
            directory: text(s, field::DIRECTORY),
            resumed: flag(s, field::RESUMED),
        }
    }
}

/// A segment was listed.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentAdded {
    pub recording: String,
    /// Relative to the recording's directory.
    pub uri: String,
    /// Nanoseconds.
    pub duration: u64,
    /// Start (ns) on the recording's media timeline, which leaves out the time a publisher was
    /// away.
    pub stream_time: u64,
    /// Media sequence number.
    pub sequence: u64,
    pub discontinuity: bool,
}

impl SegmentAdded {
    pub const NAME: &'static str = "cfhlssink-segment-added";

    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder(Self::NAME)
            .field(field::RECORDING, &self.recording)
            .field(field::URI, &self.uri)
            .field(field::DURATION, self.duration)
            .field(field::STREAM_TIME, self.stream_time)
            .field(field::SEQUENCE, self.sequence)
            .field(field::DISCONTINUITY, self.discontinuity)
            .build()
    }

    pub fn from_structure(s: &gst::StructureRef) -> SegmentAdded {
        SegmentAdded {
            recording: text(s, field::RECORDING),
            uri: text(s, field::URI),
            duration: count(s, field::DURATION),
            stream_time: count(s, field::STREAM_TIME),
            sequence: count(s, field::SEQUENCE),
            discontinuity: flag(s, field::DISCONTINUITY),
        }
    }
}

/// A recording was finished: what `video.m3u8` lists at the end.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingFinished {
    pub recording: String,
    pub directory: String,
    /// Nanoseconds.
    pub duration: u64,
    pub segments: u64,
}

impl RecordingFinished {
    pub const NAME: &'static str = "cfhlssink-recording-finished";

    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder(Self::NAME)
            .field(field::RECORDING, &self.recording)
            .field(field::DIRECTORY, &self.directory)
            .field(field::DURATION, self.duration)
            .field(field::SEGMENTS, self.segments)
            .build()
    }

    pub fn from_structure(s: &gst::StructureRef) -> RecordingFinished {
        RecordingFinished {
            recording: text(s, field::RECORDING),
            directory: text(s, field::DIRECTORY),
            duration: count(s, field::DURATION),
            segments: count(s, field::SEGMENTS),
        }
    }
}
