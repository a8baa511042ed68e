//! MPEG-TS segment writing and HLS playlists without GStreamer.
