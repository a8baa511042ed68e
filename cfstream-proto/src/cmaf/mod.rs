//! CMAF (ISO/IEC 23000-19) for the segment store: codec strings from the decoder
//! configurations, the init segment of a track, the fragments (parts) of its media segments, and
//! the pure segmenter that turns frames into parts and segments of [`crate::index`].
//!
//! Each track (video, audio) is muxed on its own (dash.js refuses muxed representations): one
//! init segment per discontinuity run and media segments of one GOP, made of parts
//! (`moof` + `mdat`) of at most a part target each. The boxes are serialised with `mp4-atom`.
//! Like the rest of the crate, nothing here does I/O or reads a clock: the caller passes each
//! frame's wall-clock time.

mod codec;
pub mod elementary;
mod fragment;
mod init;
mod segmenter;

/// Parameter sets and configurations other modules' tests build CMAF files from.
#[cfg(test)]
pub(crate) use codec::tests as test_configs;
pub use codec::{AudioConfig, CodecError, VideoConfig, stream_info};
pub use fragment::{
    FragmentHeader, FragmentSample, NON_SYNC_SAMPLE_FLAGS, SYNC_SAMPLE_FLAGS, write_fragment,
};
pub use init::{TrackConfig, VIDEO_TIMESCALE, init_segment};
pub use segmenter::{
    EARLY_AUDIO_NS, Event, Frame, MAX_AUDIO_LEAD_NS, NoSuchTrack, ResumePoint, Segmenter,
    SegmenterConfig, Stats,
};
