//! RTMP protocol (handshake, chunk stream, AMF0, server session) without GStreamer.
