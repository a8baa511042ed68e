//! `gopvalidate`'s violation message, the details of its errors and warnings, and its `stats`.

use super::{count, field, seconds, text};

/// A rule was broken (posted before the error or warning that `action` asks for).
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// One of [`super::codes`].
    pub code: String,
    pub reason: String,
    /// Stream time (ns) of the violating buffer, or of the last buffer seen for a caps violation.
    pub stream_time: u64,
    /// The keyframe interval (s), for interval violations.
    pub interval: Option<f64>,
}

impl Violation {
    pub const NAME: &'static str = "gopvalidate-violation";

    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder(Self::NAME)
            .field(field::CODE, &self.code)
            .field(field::REASON, &self.reason)
            .field(field::STREAM_TIME, self.stream_time)
            .field_if_some(field::INTERVAL, self.interval)
            .build()
    }

    pub fn from_structure(s: &gst::StructureRef) -> Violation {
        Violation {
            code: text(s, field::CODE),
            reason: text(s, field::REASON),
            stream_time: count(s, field::STREAM_TIME),
            interval: s.get::<f64>(field::INTERVAL).ok(),
        }
    }
}

/// The details structure of `gopvalidate`'s element errors and warnings.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorDetails {
    pub code: String,
    pub reason: String,
}

impl ErrorDetails {
    pub const NAME: &'static str = "gopvalidate-error";

    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder(Self::NAME)
            .field(field::CODE, &self.code)
            .field(field::REASON, &self.reason)
            .build()
    }

    /// The code and reason of any error details that carry a `code` (whatever their name);
    /// `reason` is empty when absent.
    pub fn from_structure(s: &gst::StructureRef) -> Option<ErrorDetails> {
        Some(ErrorDetails {
            code: s.get::<String>(field::CODE).ok()?,
            reason: text(s, field::REASON),
        })
    }
}

/// The read-only `stats` property; intervals in seconds, 0 before the first interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Keyframes seen.
    pub gops: u64,
    pub last_interval: f64,
    pub min_interval: f64,
    pub max_interval: f64,
    pub b_frames: u64,
    pub idr_count: u64,
}

impl Stats {
    pub const NAME: &'static str = "gopvalidate-stats";

    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder(Self::NAME)
            .field(field::GOPS, self.gops)
            .field(field::LAST_INTERVAL, self.last_interval)
            .field(field::MIN_INTERVAL, self.min_interval)
            .field(field::MAX_INTERVAL, self.max_interval)
            .field(field::B_FRAMES, self.b_frames)
            .field(field::IDR_COUNT, self.idr_count)
            .build()
    }

    pub fn from_structure(s: &gst::StructureRef) -> Stats {
        Stats {
            gops: count(s, field::GOPS),
            last_interval: seconds(s, field::LAST_INTERVAL),
            min_interval: seconds(s, field::MIN_INTERVAL),
            max_interval: seconds(s, field::MAX_INTERVAL),
            b_frames: count(s, field::B_FRAMES),
            idr_count: count(s, field::IDR_COUNT),
        }
    }
}
