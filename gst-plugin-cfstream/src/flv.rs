//! FLV tag reading and writing without GStreamer.
