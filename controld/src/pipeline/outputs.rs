//! Simulcast branches of a running pipeline: `tee ! bin(queue ! rtmp2sink)` per enabled output,
//! relaying the publisher's FLV as is (no re-encoding, no codec/GOP rules). An SRT input's
//! MPEG-TS is remuxed in the branch (`tsdemux`, `h264parse`/`aacparse`, `flvmux`): only inputs
//! with outputs pay for it.
//!
//! Isolation: each branch is fed by a probe on its tee pad that chains the buffer into the
//! branch itself and always reports success to the tee, so a branch's flow error (a dead or
//! refusing destination) never reaches the source; the leaky queue drops the oldest data when
//! a destination is slow. Errors from inside a branch are recognised on the bus by their
//! source (`output-<uid>-<n>`), the branch is removed and retried with backoff.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use crate::metrics::Metrics;
use crate::store::outputs::Output;

/// The `location` of `rtmp2sink`: `<url>/<streamKey>` (an empty key leaves the URL as is).
pub fn location(url: &str, stream_key: &str) -> String {
    if stream_key.is_empty() {
        url.to_owned()
    } else {
        format!("{}/{stream_key}", url.trim_end_matches('/'))
    }
}

/// Media a slow destination may fall behind by before its oldest data is dropped.
const QUEUE_TIME: Duration = Duration::from_secs(5);
const QUEUE_BYTES: u32 = 16 * 1024 * 1024;
/// First retry after a failure; doubles per consecutive failure up to `MAX_RETRY_DELAY`.
const RETRY_BASE: Duration = Duration::from_secs(2);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// How long a removed branch gets to pass EOS on (rtmp2sink then unpublishes cleanly).
const EOS_GRACE: Duration = Duration::from_secs(2);
const BIN_PREFIX: &str = "output-";

/// Makes bin names unique: a re-added output must not collide with its old bin still leaving.
static SERIAL: AtomicU64 = AtomicU64::new(0);

struct Branch {
    output: Output,
    bin: gst::Bin,
    tee_pad: gst::Pad,
    /// Set once the branch must get no more buffers (failed or being removed).
    stopped: Arc<AtomicBool>,
}

struct Retry {
    output: Output,
    at: Instant,
    failures: u32,
}

/// The output branches of one pipeline.
pub struct Branches {
    pipeline: gst::Pipeline,
    tee: gst::Element,
    metrics: Arc<Metrics>,
    /// The tee carries MPEG-TS (an SRT input): branches remux it to FLV.
    remux: bool,
    active: HashMap<String, Branch>,
    waiting: HashMap<String, Retry>,
    /// Consecutive failures of active branches (kept while they run again after a retry).
    failures: HashMap<String, u32>,
}

impl Branches {
    pub fn new(
        pipeline: gst::Pipeline,
        tee: gst::Element,
        metrics: Arc<Metrics>,
        remux: bool,
    ) -> Branches {
        Branches {
            pipeline,
            tee,
            metrics,
            remux,
            active: HashMap::new(),
            waiting: HashMap::new(),
            failures: HashMap::new(),
        }
    }

    /// Brings the branches in line with the input's outputs (only enabled ones run).
    pub fn reconcile(&mut self, outputs: Vec<Output>) {
        let wanted: HashMap<String, Output> = outputs
            .into_iter()
            .filter(|o| o.enabled)
            .map(|o| (o.uid.clone(), o))
            .collect();
        let gone: Vec<String> = self
            .active
            .iter()
            .filter(|(uid, b)| wanted.get(*uid) != Some(&b.output))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in gone {
            if let Some(branch) = self.active.remove(&uid) {
                tracing::info!(output = uid, "removing output branch");
                self.detach(branch, true);
            }
        }
        self.waiting
            .retain(|uid, r| wanted.get(uid) == Some(&r.output));
        self.failures.retain(|uid, _| wanted.contains_key(uid));
        for (uid, output) in wanted {
            if !self.active.contains_key(&uid) && !self.waiting.contains_key(&uid) {
                self.start(output);
            }
        }
    }

    /// Whether an error message came from an output branch; if so the branch is replaced by a
    /// retry. Errors of branches already on their way out are absorbed too.
    pub fn on_error(&mut self, source: Option<&gst::Object>, error: &glib::Error) -> bool {
        let Some(bin_name) = source.and_then(|s| self.branch_of(s)) else {
            return false;
        };
        let Some(uid) = self
            .active
            .iter()
            .find(|(_, b)| b.bin.name() == bin_name)
            .map(|(uid, _)| uid.clone())
        else {
            return true;
        };
        if let Some(branch) = self.active.remove(&uid) {
            tracing::warn!(output = uid, "output failed: {error}");
            Metrics::add(&self.metrics.output_failures, 1);
            let output = branch.output.clone();
            self.detach(branch, false);
            self.schedule_retry(output);
        }
        true
    }

    /// When the next retry is due.
    pub fn next_retry(&self) -> Option<Instant> {
        self.waiting.values().map(|r| r.at).min()
    }

    pub fn retry_due(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, r)| r.at <= now)
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in due {
            if let Some(retry) = self.waiting.remove(&uid) {
                tracing::info!(output = uid, failures = retry.failures, "retrying output");
                self.start(retry.output);
            }
        }
    }

    /// `(relaying, waiting to retry)`.
    pub fn counts(&self) -> (usize, usize) {
        (self.active.len(), self.waiting.len())
    }

    fn start(&mut self, output: Output) {
        match self.attach(&output) {
            Ok(branch) => {
                tracing::info!(output = output.uid, url = output.url, "relaying to output");
                self.active.insert(output.uid.clone(), branch);
            }
            Err(e) => {
                tracing::warn!(output = output.uid, "starting output: {e}");
                Metrics::add(&self.metrics.output_failures, 1);
                self.schedule_retry(output);
            }
        }
    }

    fn schedule_retry(&mut self, output: Output) {
        let failures = self.failures.entry(output.uid.clone()).or_default();
        *failures += 1;
        let delay = RETRY_BASE
            .saturating_mul(1 << (*failures - 1).min(10))
            .min(MAX_RETRY_DELAY);
        self.waiting.insert(
            output.uid.clone(),
            Retry {
                at: Instant::now() + delay,
                failures: *failures,
                output,
            },
        );
    }

    /// `queue ! rtmp2sink` in a bin, linked to a new tee pad, started in the pipeline's state.
    fn attach(&self, output: &Output) -> Result<Branch, glib::BoolError> {
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let bin = gst::Bin::with_name(&format!("{BIN_PREFIX}{}-{serial}", output.uid));
        let queue = gst::ElementFactory::make("queue")
            .property_from_str("leaky", "downstream")
            .property("max-size-buffers", 0u32)
            .property("max-size-bytes", QUEUE_BYTES)
            .property("max-size-time", QUEUE_TIME.as_nanos() as u64)
            .build()?;
        let sink = gst::ElementFactory::make("rtmp2sink")
            .property("location", location(&output.url, &output.stream_key))
            // The publisher already paces the stream; a relay forwards as it arrives.
            .property("sync", false)
            .property("async", false)
            .build()?;
        bin.add_many([&queue, &sink])?;
        if self.remux {
            link_through_remux(&bin, &queue, &sink)?;
        } else {
            queue.link(&sink)?;
        }
        let queue_sink = queue
            .static_pad("sink")
            .ok_or_else(|| glib::bool_error!("queue has no sink pad"))?;
        let ghost = gst::GhostPad::with_target(&queue_sink)?;
        ghost.set_active(true)?;
        bin.add_pad(&ghost)?;
        self.pipeline.add(&bin)?;
        let tee_pad = self
            .tee
            .request_pad_simple("src_%u")
            .ok_or_else(|| glib::bool_error!("tee refused a pad"))?;
        let stopped = Arc::new(AtomicBool::new(false));
        isolate(&tee_pad, ghost.upcast_ref(), stopped.clone());
        let linked = tee_pad.link(&ghost);
        if let Err(e) = linked.map_err(|e| glib::bool_error!("tee ! output: {e:?}")) {
            self.tee.release_request_pad(&tee_pad);
            let _ = self.pipeline.remove(&bin);
            return Err(e);
        }
        if let Err(e) = bin.sync_state_with_parent() {
            self.detach(
                Branch {
                    output: output.clone(),
                    bin,
                    tee_pad,
                    stopped,
                },
                false,
            );
            return Err(e);
        }
        Ok(Branch {
            output: output.clone(),
            bin,
            tee_pad,
            stopped,
        })
    }

    /// Removes a branch from the running pipeline: block the tee pad (idle probe), unlink,
    /// send EOS into the branch (`graceful`: rtmp2sink unpublishes), set it to NULL, release
    /// the tee pad. The waiting happens on the blocking pool.
    fn detach(&self, branch: Branch, graceful: bool) {
        let (pipeline, tee) = (self.pipeline.clone(), self.tee.clone());
        let (unlinked_tx, unlinked) = std::sync::mpsc::sync_channel::<()>(1);
        let stopped = branch.stopped.clone();
        branch
            .tee_pad
            .add_probe(gst::PadProbeType::IDLE, move |pad, _| {
                stopped.store(true, Ordering::Relaxed);
                if let Some(peer) = pad.peer() {
                    let _ = pad.unlink(&peer);
                }
                let _ = unlinked_tx.try_send(());
                gst::PadProbeReturn::Remove
            });
        tokio::task::spawn_blocking(move || {
            // The idle probe runs at once on an idle pad, else after the buffer in flight.
            let _ = unlinked.recv_timeout(EOS_GRACE);
            if graceful {
                send_eos_and_wait(&branch.bin);
            }
            let _ = branch.bin.set_state(gst::State::Null);
            let _ = pipeline.remove(&branch.bin);
            tee.release_request_pad(&branch.tee_pad);
        });
    }

    /// The name of the output bin `object` belongs to, if any. A branch being removed may
    /// already have left the pipeline when its errors (e.g. the destination resetting the
    /// connection on unpublish) are handled: a parentless bin counts as an output bin too.
    fn branch_of(&self, object: &gst::Object) -> Option<glib::GString> {
        let mut current = Some(object.clone());
        while let Some(o) = current {
            let parent = o.parent();
            if parent.is_none() || parent.as_ref() == Some(self.pipeline.upcast_ref()) {
                return o.name().starts_with(BIN_PREFIX).then(|| o.name());
            }
            current = parent;
        }
        None
    }
}

/// Feeds the branch from a probe on its tee pad and reports `Ok` to the tee whatever the
/// branch answers; after the branch's first error, or once it is being removed, it gets
/// nothing more.
fn isolate(tee_pad: &gst::Pad, branch_sink: &gst::Pad, stopped: Arc<AtomicBool>) {
    let branch_sink = branch_sink.clone();
    tee_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(gst::PadProbeData::Buffer(buffer)) = info.data.take()
            && !stopped.load(Ordering::Relaxed)
            && branch_sink.chain(buffer).is_err()
        {
            stopped.store(true, Ordering::Relaxed);
        }
        info.flow_res = Ok(gst::FlowSuccess::Ok);
        gst::PadProbeReturn::Handled
    });
}

/// `queue ! tsdemux ! {h264parse, aacparse} ! flvmux ! sink` inside `bin`: the demuxer's pads
/// are linked to the muxer as they appear (parse-launch's delayed links).
fn link_through_remux(
    bin: &gst::Bin,
    queue: &gst::Element,
    sink: &gst::Element,
) -> Result<(), glib::BoolError> {
    let remux = gst::parse::bin_from_description(
        "tsdemux name=demux flvmux name=mux streamable=true \
         demux. ! queue ! h264parse ! mux. demux. ! queue ! aacparse ! mux.",
        false,
    )
    .map_err(|e| glib::bool_error!("building the remux: {e}"))?;
    let demux = remux
        .by_name("demux")
        .ok_or_else(|| glib::bool_error!("remux without demuxer"))?;
    let mux = remux
        .by_name("mux")
        .ok_or_else(|| glib::bool_error!("remux without muxer"))?;
    let ghost = |element: &gst::Element, pad: &str| {
        let target = element
            .static_pad(pad)
            .ok_or_else(|| glib::bool_error!("{} has no {pad} pad", element.name()))?;
        let ghost = gst::GhostPad::with_target(&target)?;
        remux.add_pad(&ghost)?;
        Ok::<_, glib::BoolError>(ghost)
    };
    let (input, output) = (ghost(&demux, "sink")?, ghost(&mux, "src")?);
    bin.add(&remux)?;
    queue
        .static_pad("src")
        .ok_or_else(|| glib::bool_error!("queue has no src pad"))?
        .link(&input)
        .map_err(|e| glib::bool_error!("queue ! tsdemux: {e:?}"))?;
    let sink_pad = sink
        .static_pad("sink")
        .ok_or_else(|| glib::bool_error!("rtmp2sink has no sink pad"))?;
    output
        .link(&sink_pad)
        .map_err(|e| glib::bool_error!("flvmux ! rtmp2sink: {e:?}"))?;
    Ok(())
}

/// Sends EOS into the bin and waits (at most `EOS_GRACE`) until its sink has it.
fn send_eos_and_wait(bin: &gst::Bin) {
    let Some(sink_pad) = bin
        .iterate_sinks()
        .into_iter()
        .flatten()
        .next()
        .and_then(|s| s.static_pad("sink"))
    else {
        return;
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    sink_pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(e)) = &info.data
            && e.type_() == gst::EventType::Eos
        {
            let _ = tx.try_send(());
            return gst::PadProbeReturn::Remove;
        }
        gst::PadProbeReturn::Ok
    });
    if let Some(ghost) = bin.static_pad("sink") {
        ghost.send_event(gst::event::Eos::new());
        let _ = rx.recv_timeout(EOS_GRACE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_of_a_branch_that_left_the_pipeline_are_not_the_input_s() {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::new();
        let tee = gst::ElementFactory::make("tee").build().unwrap();
        let bin = gst::Bin::with_name(&format!("{BIN_PREFIX}0123-7"));
        let sink = gst::ElementFactory::make("fakesink").build().unwrap();
        bin.add(&sink).unwrap();
        pipeline.add_many([&tee, bin.upcast_ref()]).unwrap();
        let mut branches = Branches::new(pipeline.clone(), tee.clone(), Arc::default(), false);
        let error = glib::Error::new(gst::ResourceError::Write, "connection reset");
        assert!(branches.on_error(Some(sink.upcast_ref()), &error));
        // Removal finishes before the session handles the error it caused.
        pipeline.remove(&bin).unwrap();
        assert!(branches.on_error(Some(sink.upcast_ref()), &error));
        assert!(!branches.on_error(Some(tee.upcast_ref()), &error));
    }
}
