//! H.264 bitstream inspection (NAL units, slice types, SEI) without GStreamer.
