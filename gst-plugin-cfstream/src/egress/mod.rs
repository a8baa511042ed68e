//! Playback egress: the live stream of one input fanned out to many viewers (RTMP players, SRT
//! callers) without re-encoding.
//!
//! - `hub`: one input's [`Hub`]: the pipeline pushes what its source produces (FLV units of
//!   `cfrtmpsrc`, MPEG-TS of `cfsrtsrc`); viewers [`Hub::subscribe`] and get the stream headers
//!   first, then the media from the next keyframe;
//! - `queue`: a viewer's bounded queue; a viewer that falls behind is dropped, never waited for;
//! - `remux`: FLV tags to MPEG-TS for TS viewers of an FLV input (our own TS writer of
//!   [`crate::hls`], run once per input however many TS viewers it has, and only while it has
//!   some).
//!
//! The protocols' play sessions are in [`crate::rtmp`] (`play`) and [`crate::srt`] (`play`).

mod hub;
mod queue;
mod remux;

pub use hub::{Hub, SourceFormat, SubscribeError, ViewerFormat};
pub use queue::{Chunk, FlvTag, Viewer, ViewerEnd};
