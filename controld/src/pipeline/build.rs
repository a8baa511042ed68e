//! The GStreamer graph of one live input.

use gst::glib;
use gst::prelude::*;

use std::sync::Arc;

use super::{DEFAULT_RECONNECT_TIMEOUT_SECS, Listener};
use crate::metrics::Metrics;
use crate::store::live_inputs::{LiveInput, RecordingMode};

/// Name of the `tee` after the source.
pub const TEE: &str = "tee";

/// Builds (does not start) the pipeline for a publisher that arrived on `listener`.
///
/// `mode: automatic`: `cfrtmpsrc ! tee ! flvdemux`, whose pads are linked as they appear to
/// `gopvalidate ! cfhlssink.video` and `gopvalidate ! cfhlssink.audio`. No parsers: cfhlssink
/// takes flvdemux's H.264 (`stream-format=avc`) and raw AAC as they are and converts them for
/// the MPEG-TS itself, for less CPU per frame than `h264parse`/`aacparse` take.
/// `mode: off` only relays: `cfrtmpsrc enforce-codecs=false ! tee ! fakesink`, no codec/GOP
/// rules. The tee also feeds the simulcast outputs.
/// No queues: everything runs in the source's streaming thread (outputs have their own).
pub fn pipeline(
    input: &LiveInput,
    listener: &Listener,
    input_media_dir: &std::path::Path,
    metrics: Arc<Metrics>,
) -> Result<gst::Pipeline, glib::BoolError> {
    let pipeline = gst::Pipeline::with_name(&format!("input-{}", input.uid));
    let timeout = match input.recording.timeout_seconds {
        0 => DEFAULT_RECONNECT_TIMEOUT_SECS,
        t => t,
    };
    let automatic = input.recording.mode == RecordingMode::Automatic;
    let mut src = gst::ElementFactory::make("cfrtmpsrc")
        .name("src")
        .property("location", &listener.location)
        .property("stream-key", &input.stream_key)
        .property("idle-timeout", timeout)
        .property("read-interval", listener.read_interval_ms)
        .property("enforce-codecs", automatic);
    if let Some(tls) = &listener.tls {
        src = src
            .property(
                "tls-certificate",
                tls.certificate.to_string_lossy().into_owned(),
            )
            .property(
                "tls-private-key",
                tls.private_key.to_string_lossy().into_owned(),
            );
    }
    let src = src.build()?;
    // Simulcast outputs branch off here (`outputs::Branches`), before any codec rule.
    let tee = gst::ElementFactory::make("tee")
        .name(TEE)
        .property("allow-not-linked", true)
        .build()?;
    pipeline.add_many([&src, &tee])?;
    src.link(&tee)?;
    count_bytes(&src, metrics);

    if !automatic {
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()?;
        pipeline.add(&sink)?;
        tee.link(&sink)?;
        return Ok(pipeline);
    }

    let demux = gst::ElementFactory::make("flvdemux")
        .name("demux")
        .build()?;
    let sink = gst::ElementFactory::make("cfhlssink")
        .name("hls")
        .property("location", input_media_dir.to_string_lossy().as_ref())
        .build()?;
    pipeline.add_many([&demux, &sink])?;
    tee.link(&demux)?;

    let pipeline_weak = pipeline.downgrade();
    demux.connect_pad_added(move |demux, pad| {
        let Some(pipeline) = pipeline_weak.upgrade() else {
            return;
        };
        let stream = pad.name();
        if !matches!(stream.as_str(), "video" | "audio") {
            tracing::warn!(pad = %stream, "ignoring unexpected flvdemux pad");
            return;
        }
        if let Err(e) = link_branch(&pipeline, pad, &stream) {
            demux.post_error_message(gst::error_msg!(
                gst::CoreError::Negotiation,
                ["linking the {} branch: {}", stream, e]
            ));
        }
    });
    Ok(pipeline)
}

/// `demux_pad ! gopvalidate ! cfhlssink.<stream>` (`stream`: "video" or "audio"), started in
/// the pipeline's state. Caps cfhlssink does not take (e.g. MP3, should enforce-codecs have let
/// it through) fail the last link.
fn link_branch(
    pipeline: &gst::Pipeline,
    demux_pad: &gst::Pad,
    stream: &str,
) -> Result<(), glib::BoolError> {
    let validate = gst::ElementFactory::make("gopvalidate")
        .name(format!("gopvalidate-{stream}"))
        .build()?;
    let sink = pipeline
        .by_name("hls")
        .ok_or_else(|| glib::bool_error!("cfhlssink is missing"))?;
    pipeline.add(&validate)?;
    let sink_pad = sink
        .request_pad_simple(stream)
        .ok_or_else(|| glib::bool_error!("cfhlssink refused a {stream} pad"))?;
    validate
        .static_pad("src")
        .ok_or_else(|| glib::bool_error!("gopvalidate has no src pad"))?
        .link(&sink_pad)
        .map_err(|e| glib::bool_error!("gopvalidate ! cfhlssink: {e:?}"))?;
    let validate_sink = validate
        .static_pad("sink")
        .ok_or_else(|| glib::bool_error!("gopvalidate has no sink pad"))?;
    validate.sync_state_with_parent()?;
    demux_pad.link(&validate_sink).map_err(|e| {
        let caps = demux_pad.current_caps().map(|c| c.to_string());
        glib::bool_error!(
            "flvdemux ! gopvalidate ! cfhlssink: {e:?} (caps {})",
            caps.as_deref().unwrap_or("unknown")
        )
    })?;
    Ok(())
}

/// Counts what the publisher sends (FLV bytes) into `cfstream_ingest_bytes_total`.
fn count_bytes(src: &gst::Element, metrics: Arc<Metrics>) {
    if let Some(pad) = src.static_pad("src") {
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buffer) = info.buffer() {
                Metrics::add(&metrics.bytes_in, buffer.size() as u64);
            }
            gst::PadProbeReturn::Ok
        });
    }
}
