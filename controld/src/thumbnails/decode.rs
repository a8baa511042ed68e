//! One thumbnail from one GOP, with GStreamer, entirely in the calling thread (so at its
//! priority: no queue, no source task, a single-threaded decoder): the video init segment and
//! the segment are pushed into `qtdemux ! avdec_h264`, whose frames are taken until the one on
//! screen at the asked offset (decoding stops there, the rest of the GOP is never decoded); that
//! one frame alone goes through `videoscale ! videocrop ! videobox ! jpegenc`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use gst::prelude::*;

use super::geometry::{Geometry, Sides};

/// Frames within this of the asked offset count as at it (index ticks and buffer timestamps
/// round differently).
const TOLERANCE: Duration = Duration::from_millis(1);

pub struct Job {
    /// The video init segment followed by one media segment (which starts with a keyframe).
    pub media: Vec<u8>,
    /// From the segment's first frame.
    pub offset: Duration,
    pub geometry: Geometry,
}

pub struct Decoded {
    pub jpeg: Vec<u8>,
    /// Frames the decoder produced: those up to the asked one, and the one after it that
    /// showed it was the asked one.
    pub frames: u32,
}

pub fn decode(job: Job) -> Result<Decoded, String> {
    let (frame, caps, frames) = decode_frame(job.media, job.offset)?;
    let jpeg = encode(frame, &caps, &job.geometry)?;
    Ok(Decoded { jpeg, frames })
}

fn element(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|e| format!("GStreamer element {factory}: {e}"))
}

/// What a capture pad received.
#[derive(Default)]
struct Captured {
    caps: Option<gst::Caps>,
    /// The frame (or JPEG) kept.
    buffer: Option<gst::Buffer>,
    first_pts: Option<gst::ClockTime>,
    buffers: u32,
    /// A buffer came on another thread than the caller's (whose priority then did not apply).
    foreign_thread: bool,
}

type Shared = Arc<Mutex<Captured>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Captured> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// A sink pad handing every buffer to `keep` (in the pushing thread); records caps. `keep`
/// returns `false` to stop the stream (upstream then sees EOS).
fn capture_pad(
    shared: &Shared,
    keep: impl Fn(&mut Captured, gst::Buffer) -> bool + Send + Sync + 'static,
) -> gst::Pad {
    let caller = thread::current().id();
    let on_buffer = shared.clone();
    let on_event = shared.clone();
    gst::Pad::builder(gst::PadDirection::Sink)
        .chain_function(move |_, _, buffer| {
            let mut captured = lock(&on_buffer);
            captured.buffers += 1;
            captured.foreign_thread |= thread::current().id() != caller;
            if keep(&mut captured, buffer) {
                Ok(gst::FlowSuccess::Ok)
            } else {
                Err(gst::FlowError::Eos)
            }
        })
        .event_function(move |_, _, event| {
            if let gst::EventView::Caps(caps) = event.view() {
                lock(&on_event).caps = Some(caps.caps_owned());
            }
            true
        })
        .build()
}

/// Pushes `buffer` through `pipeline` from `feed` (linked to its first element) in this
/// thread, then EOS; returns the first error the pipeline posted.
fn run(
    pipeline: &gst::Pipeline,
    feed: &gst::Pad,
    caps: &gst::Caps,
    segment: &gst::Segment,
    buffer: gst::Buffer,
) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("thumbnail pipeline: {e}");
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| failed(&e))?;
    feed.set_active(true).map_err(|e| failed(&e))?;
    feed.push_event(gst::event::StreamStart::new("thumbnail"));
    feed.push_event(gst::event::Caps::new(caps));
    feed.push_event(gst::event::Segment::new(segment));
    let flow = feed.push(buffer);
    // Err(Eos): the capture pad stopped the stream once it had what it needs (draining the
    // decoder would only decode frames to drop). Else the end drains the frames it holds.
    if flow.is_ok() {
        feed.push_event(gst::event::Eos::new());
    }
    let error = pipeline.bus().and_then(|bus| {
        bus.pop_filtered(&[gst::MessageType::Error])
            .and_then(|message| match message.view() {
                gst::MessageView::Error(e) => Some(e.error().to_string()),
                _ => None,
            })
    });
    let _ = pipeline.set_state(gst::State::Null);
    let _ = feed.set_active(false);
    match (error, flow) {
        (Some(error), _) => Err(failed(&error)),
        (None, Ok(_) | Err(gst::FlowError::Eos)) => Ok(()),
        (None, Err(flow)) => Err(failed(&format!("{flow:?}"))),
    }
}

fn checked(shared: &Shared, what: &str) -> Result<(gst::Buffer, gst::Caps, u32), String> {
    let captured = lock(shared);
    if captured.foreign_thread {
        return Err(format!(
            "thumbnail {what} ran on a GStreamer thread, not at the caller's priority"
        ));
    }
    match (&captured.buffer, &captured.caps) {
        (Some(buffer), Some(caps)) => Ok((buffer.clone(), caps.clone(), captured.buffers)),
        _ => Err(format!("thumbnail {what}: no output")),
    }
}

/// Decodes from the segment's keyframe up to the frame on screen at `offset`: keeps the latest
/// frame not after it, and stops at the first frame after it (or at the end of the segment).
fn decode_frame(media: Vec<u8>, offset: Duration) -> Result<(gst::Buffer, gst::Caps, u32), String> {
    let pipeline = gst::Pipeline::new();
    let demux = element("qtdemux")?;
    let decoder = gst::ElementFactory::make("avdec_h264")
        // One thread: the caller's.
        .property("max-threads", 1i32)
        .build()
        .map_err(|e| format!("GStreamer element avdec_h264: {e}"))?;
    pipeline
        .add_many([&demux, &decoder])
        .map_err(|e| e.to_string())?;
    let decoder_sink = decoder.static_pad("sink").ok_or("avdec_h264 has no sink")?;
    demux.connect_pad_added(move |_, pad| {
        if !decoder_sink.is_linked() {
            let _ = pad.link(&decoder_sink);
        }
    });
    let shared: Shared = Shared::default();
    let limit = offset + TOLERANCE;
    let frames = capture_pad(&shared, move |captured, frame| {
        if let Some(pts) = frame.pts() {
            let first = *captured.first_pts.get_or_insert(pts);
            let shown_at = Duration::from_nanos((pts.saturating_sub(first)).nseconds());
            if shown_at > limit && captured.buffer.is_some() {
                return false;
            }
        }
        captured.buffer = Some(frame);
        true
    });
    let decoder_src = decoder.static_pad("src").ok_or("avdec_h264 has no src")?;
    decoder_src.link(&frames).map_err(|e| e.to_string())?;
    frames.set_active(true).map_err(|e| e.to_string())?;
    let feed = gst::Pad::builder(gst::PadDirection::Src).build();
    let demux_sink = demux.static_pad("sink").ok_or("qtdemux has no sink")?;
    feed.link(&demux_sink).map_err(|e| e.to_string())?;
    let caps = gst::Caps::builder("video/quicktime").build();
    let segment = gst::FormattedSegment::<gst::format::Bytes>::new().upcast();
    let ran = run(
        &pipeline,
        &feed,
        &caps,
        &segment,
        gst::Buffer::from_mut_slice(media),
    );
    let _ = frames.set_active(false);
    ran?;
    checked(&shared, "decoding")
}

fn capsfilter(caps: gst::Caps) -> Result<gst::Element, String> {
    gst::ElementFactory::make("capsfilter")
        .property("caps", caps)
        .build()
        .map_err(|e| format!("GStreamer element capsfilter: {e}"))
}

/// `element` (videocrop or videobox) with its `left`, `right`, `top`, `bottom` set to `sides`
/// times `sign`.
fn sides(element: gst::Element, sides: &Sides, sign: i32) -> gst::Element {
    element.set_property("left", sign * sides.left as i32);
    element.set_property("right", sign * sides.right as i32);
    element.set_property("top", sign * sides.top as i32);
    element.set_property("bottom", sign * sides.bottom as i32);
    element
}

/// Scales, crops and pads `frame` as `geometry` says, and encodes it as JPEG.
fn encode(frame: gst::Buffer, caps: &gst::Caps, geometry: &Geometry) -> Result<Vec<u8>, String> {
    let pipeline = gst::Pipeline::new();
    // Decoders output what the stream has (4:2:2, 10 bits…); everything after works in I420.
    let convert = element("videoconvert")?;
    let planar = capsfilter(
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .build(),
    )?;
    let scale = gst::ElementFactory::make("videoscale")
        .property("add-borders", false)
        .build()
        .map_err(|e| format!("GStreamer element videoscale: {e}"))?;
    let scaled = capsfilter(
        gst::Caps::builder("video/x-raw")
            .field("width", geometry.scaled.width as i32)
            .field("height", geometry.scaled.height as i32)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    )?;
    let crop = sides(element("videocrop")?, &geometry.crop, 1);
    // videobox adds a (black) border for negative values.
    let pad = sides(element("videobox")?, &geometry.pad, -1);
    let jpegenc = element("jpegenc")?;
    let chain = [&convert, &planar, &scale, &scaled, &crop, &pad, &jpegenc];
    pipeline.add_many(chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(chain).map_err(|e| e.to_string())?;
    let shared: Shared = Shared::default();
    let jpegs = capture_pad(&shared, |captured, jpeg| {
        captured.buffer = Some(jpeg);
        false
    });
    let encoder_src = jpegenc.static_pad("src").ok_or("jpegenc has no src")?;
    encoder_src.link(&jpegs).map_err(|e| e.to_string())?;
    jpegs.set_active(true).map_err(|e| e.to_string())?;
    let feed = gst::Pad::builder(gst::PadDirection::Src).build();
    let convert_sink = convert
        .static_pad("sink")
        .ok_or("videoconvert has no sink")?;
    feed.link(&convert_sink).map_err(|e| e.to_string())?;
    let segment = gst::FormattedSegment::<gst::ClockTime>::new().upcast();
    let ran = run(&pipeline, &feed, caps, &segment, frame);
    let _ = jpegs.set_active(false);
    ran?;
    let (jpeg, _, _) = checked(&shared, "encoding")?;
    let map = jpeg.map_readable().map_err(|e| e.to_string())?;
    Ok(map.as_slice().to_vec())
}

#[cfg(test)]
mod tests {
    use super::super::geometry::Size;
    use super::*;

    /// 2 s of 320x180 at 30 fps, one GOP (x264enc picks its highest profile: 4:4:4, 10 bits,
    /// which the encoding converts), as a fragmented MP4 (moov, then moof + mdat): the
    /// same boxes as an init segment followed by a media segment.
    fn fragmented_mp4() -> Vec<u8> {
        gst::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gop.mp4");
        let description = format!(
            "videotestsrc num-buffers=60 ! video/x-raw,width=320,height=180,framerate=30/1 ! \
             x264enc key-int-max=60 bframes=2 speed-preset=ultrafast ! \
             mp4mux fragment-duration=10000 ! filesink location={}",
            path.display()
        );
        let pipeline = gst::parse::launch(&description).unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let bus = pipeline.bus().unwrap();
        let done = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        pipeline.set_state(gst::State::Null).unwrap();
        assert!(
            matches!(
                done.as_ref().map(|m| m.view()),
                Some(gst::MessageView::Eos(_))
            ),
            "{done:?}"
        );
        std::fs::read(path).unwrap()
    }

    /// Parses a JPEG's SOF0 marker: (width, height).
    fn jpeg_size(jpeg: &[u8]) -> (u16, u16) {
        let at = jpeg
            .windows(2)
            .position(|w| w == [0xff, 0xc0])
            .expect("a baseline JPEG");
        let be = |i: usize| u16::from_be_bytes([jpeg[at + i], jpeg[at + i + 1]]);
        (be(7), be(5))
    }

    #[test]
    fn decodes_up_to_the_asked_frame_on_the_calling_low_priority_thread() {
        let media = fragmented_mp4();
        let output = Size {
            width: 100,
            height: 100,
        };
        let geometry = Geometry {
            scaled: Size {
                width: 178,
                height: 100,
            },
            crop: Sides {
                left: 39,
                right: 39,
                ..Sides::default()
            },
            pad: Sides::default(),
            output,
        };
        let job = |offset| Job {
            media: media.clone(),
            offset,
            geometry,
        };
        let nice = || {
            // SAFETY: getpriority only reads its arguments.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
        };
        let (decoded, before, after) = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let before = nice();
                    super::super::lower_priority();
                    let after = nice();
                    (decode(job(Duration::from_millis(500))), before, after)
                })
                .join()
                .unwrap()
        });
        assert_eq!(after, (before + super::super::DECODE_NICE_STEPS).min(19));
        // `decode` refuses to answer when a buffer came on another thread.
        let decoded = decoded.unwrap();
        assert_eq!(jpeg_size(&decoded.jpeg), (100, 100));
        // Frames 0 to 15 (0.5 s) and the one after: not the whole GOP of 60.
        assert_eq!(decoded.frames, 17);
        let last = decode(job(Duration::from_secs(5))).unwrap();
        // Past the end: the whole segment, its last frame kept (qtdemux leaves out the last
        // two of this file's 60, after its edit list; ffprobe reads them).
        assert_eq!(last.frames, 58, "past the end: the segment's last frame");
    }
}
