//! The GStreamer graph of one live input.

use gst::glib;
use gst::prelude::*;

use std::sync::Arc;

use super::{DEFAULT_RECONNECT_TIMEOUT_SECS, Ingest, Inner};
use crate::metrics::Metrics;
use crate::store::live_inputs::{LiveInput, RecordingMode};

/// Name of the `tee` after the source.
pub const TEE: &str = "tee";

/// Builds (does not start) the pipeline for a publisher that arrived with `protocol`.
///
/// `mode: automatic`: `cfrtmpsrc ! tee ! flvdemux` (RTMP, RTMPS) or `cfsrtsrc ! tee ! tsdemux`
/// (SRT), whose pads are linked as they appear to `gopvalidate ! cfhlssink.video` and
/// `gopvalidate ! cfhlssink.audio`. No parsers behind flvdemux: cfhlssink takes its H.264
/// (`stream-format=avc`) and raw AAC as they are (CMAF samples need no conversion), for
/// less CPU per frame than `h264parse`/`aacparse` take; tsdemux's elementary streams go through
/// them (`h264parse` makes access units of its byte stream, `aacparse` ADTS frames).
/// `mode: off` only relays: the source with `enforce-codecs=false` ! tee ! fakesink, no
/// codec/GOP rules. The tee also feeds the simulcast outputs.
/// No queues: everything runs in the source's streaming thread (outputs have their own).
pub fn pipeline(
    input: &LiveInput,
    protocol: Ingest,
    inner: &Inner,
    input_media_dir: &std::path::Path,
    metrics: Arc<Metrics>,
) -> Result<gst::Pipeline, glib::BoolError> {
    let pipeline = gst::Pipeline::with_name(&format!("input-{}", input.uid));
    let automatic = input.recording.mode == RecordingMode::Automatic;
    let src = source(input, protocol, inner, automatic)?;
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

    let demux = match protocol {
        Ingest::Srt => "tsdemux",
        Ingest::Rtmp | Ingest::Rtmps => "flvdemux",
    };
    let demux = gst::ElementFactory::make(demux).name("demux").build()?;
    let sink = gst::ElementFactory::make("cfhlssink")
        .name("hls")
        .property("location", input_media_dir.to_string_lossy().as_ref())
        .property("part-target", inner.part_target_ms)
        .build()?;
    pipeline.add_many([&demux, &sink])?;
    tee.link(&demux)?;

    let pipeline_weak = pipeline.downgrade();
    demux.connect_pad_added(move |demux, pad| {
        let Some(pipeline) = pipeline_weak.upgrade() else {
            return;
        };
        // flvdemux names its pads `video` and `audio`, tsdemux `video_<program>_<pid>`.
        let name = pad.name();
        let (stream, parser) = match name.split('_').next() {
            Some("video") => ("video", "h264parse"),
            Some("audio") => ("audio", "aacparse"),
            _ => {
                tracing::warn!(pad = %name, "ignoring unexpected demuxer pad");
                return;
            }
        };
        let parser = (protocol == Ingest::Srt).then_some(parser);
        if let Err(e) = link_branch(&pipeline, pad, stream, parser) {
            demux.post_error_message(gst::error_msg!(
                gst::CoreError::Negotiation,
                ["linking the {} branch: {}", stream, e]
            ));
        }
    });
    Ok(pipeline)
}

/// The pipeline's source: `cfrtmpsrc` on the RTMP(S) listener or `cfsrtsrc` on the SRT one
/// (the bound address in `location` makes the element share the daemon's listener).
fn source(
    input: &LiveInput,
    protocol: Ingest,
    inner: &Inner,
    enforce_codecs: bool,
) -> Result<gst::Element, glib::BoolError> {
    let timeout = match input.recording.timeout_seconds {
        0 => DEFAULT_RECONNECT_TIMEOUT_SECS,
        t => t,
    };
    let src = match protocol {
        Ingest::Srt => {
            let srt = inner
                .srt
                .as_ref()
                .ok_or_else(|| glib::bool_error!("no SRT listener"))?;
            gst::ElementFactory::make("cfsrtsrc")
                .property("location", &srt.location)
                .property("stream-id", &input.uid)
                .property("passphrase", &input.srt_passphrase)
        }
        Ingest::Rtmp | Ingest::Rtmps => {
            let listener = match (protocol, &inner.rtmps) {
                (Ingest::Rtmps, Some(rtmps)) => rtmps,
                _ => &inner.rtmp,
            };
            let limits = inner.limits;
            let mut src = gst::ElementFactory::make("cfrtmpsrc")
                .property("location", &listener.location)
                .property("stream-key", &input.stream_key)
                .property("max-connections", cap(limits.max_connections))
                .property(
                    "max-unauthenticated-per-address",
                    cap(limits.max_unauthenticated_per_address),
                );
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
            src
        }
    };
    src.name("src")
        .property("idle-timeout", timeout)
        .property("read-interval", inner.read_interval_ms)
        .property("enforce-codecs", enforce_codecs)
        .build()
}

/// A cap as the element's u32 property (0: none).
fn cap(limit: usize) -> u32 {
    u32::try_from(limit).unwrap_or(u32::MAX)
}

/// `demux_pad [! parser] ! gopvalidate ! cfhlssink.<stream>` (`stream`: "video" or "audio"),
/// started in the pipeline's state. Caps cfhlssink does not take (e.g. MP3, should
/// enforce-codecs have let it through) fail the last link.
fn link_branch(
    pipeline: &gst::Pipeline,
    demux_pad: &gst::Pad,
    stream: &str,
    parser: Option<&str>,
) -> Result<(), glib::BoolError> {
    let validate = gst::ElementFactory::make("gopvalidate")
        .name(format!("gopvalidate-{stream}"))
        .build()?;
    let sink = pipeline
        .by_name("hls")
        .ok_or_else(|| glib::bool_error!("cfhlssink is missing"))?;
    pipeline.add(&validate)?;
    // The parser sits in front of gopvalidate: what the demuxer's pad links to.
    let first = match parser {
        Some(parser) => {
            let parser = gst::ElementFactory::make(parser).build()?;
            pipeline.add(&parser)?;
            parser.link(&validate)?;
            parser.sync_state_with_parent()?;
            parser
        }
        None => validate.clone(),
    };
    let sink_pad = sink
        .request_pad_simple(stream)
        .ok_or_else(|| glib::bool_error!("cfhlssink refused a {stream} pad"))?;
    validate
        .static_pad("src")
        .ok_or_else(|| glib::bool_error!("gopvalidate has no src pad"))?
        .link(&sink_pad)
        .map_err(|e| glib::bool_error!("gopvalidate ! cfhlssink: {e:?}"))?;
    let first_sink = first
        .static_pad("sink")
        .ok_or_else(|| glib::bool_error!("{} has no sink pad", first.name()))?;
    validate.sync_state_with_parent()?;
    demux_pad.link(&first_sink).map_err(|e| {
        let caps = demux_pad.current_caps().map(|c| c.to_string());
        glib::bool_error!(
            "demuxer ! gopvalidate ! cfhlssink: {e:?} (caps {})",
            caps.as_deref().unwrap_or("unknown")
        )
    })?;
    Ok(())
}

/// Counts what the publisher sends (FLV or MPEG-TS bytes) into `cfstream_ingest_bytes_total`.
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
