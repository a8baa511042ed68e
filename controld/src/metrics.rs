//! `GET /metrics`: Prometheus text exposition format 0.0.4.
//!
//! Served without authentication, like most exporters: the values are process-wide aggregates
//! (no uids, keys or account ids in labels), so they reveal no more than the RTMP port already
//! does. Operators who want it private bind `--http` to a private address or filter the path
//! in their reverse proxy.
//!
//! Counters are bumped where things happen (the pipelines' bus tasks, the webhook delivery
//! task, a pad probe for bytes); gauges are computed when scraped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::api::envelope::ApiError;

/// Process-wide counters, shared by the pipeline manager and the webhook deliveries.
#[derive(Default)]
pub struct Metrics {
    /// FLV bytes received from publishers (counted at `cfrtmpsrc`'s src pad).
    pub bytes_in: AtomicU64,
    pub segments_written: AtomicU64,
    pub webhook_deliveries: AtomicU64,
    /// Failed delivery attempts (each retry counts).
    pub webhook_failures: AtomicU64,
    /// Events given up on: attempts exhausted, or evicted from a full outbox.
    pub webhook_dropped: AtomicU64,
    /// Output branches that failed (each failure before a retry counts).
    pub output_failures: AtomicU64,
    violations: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A stream broke a rule (`ERR_GOP_OUT_OF_RANGE`, a refused codec, …).
    pub fn violation(&self, code: &str) {
        let mut v = self.violations.lock().unwrap_or_else(|p| p.into_inner());
        *v.entry(code.to_owned()).or_default() += 1;
    }

    fn violations(&self) -> BTreeMap<String, u64> {
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// Prometheus' text format media type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let inputs = state.store.read(crate::store::status::count_by_state)?;
    let pipelines = &state.pipelines;
    let m = pipelines.metrics();
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();
    family(
        &mut out,
        "cfstream_node_info",
        "gauge",
        "This node's --node-id (every other family is this node's, but cfstream_live_inputs: the \
         inputs of the database the nodes share).",
        [(Some(("node", pipelines.node_id())), 1)],
    );
    family(
        &mut out,
        "cfstream_live_inputs",
        "gauge",
        "Live inputs by their current status state (idle: never connected).",
        inputs
            .iter()
            .map(|(s, n)| (Some(("state", s.as_str())), *n)),
    );
    family(
        &mut out,
        "cfstream_publishers_connected",
        "gauge",
        "Publishers connected right now.",
        [(None, pipelines.publishers_connected() as u64)],
    );
    let admitted = gstcfstream::net::admission::admission().counts();
    family(
        &mut out,
        "cfstream_ingest_connections",
        "gauge",
        "RTMP(S) connections open right now (live, setting up or being refused).",
        [(None, admitted.open as u64)],
    );
    family(
        &mut out,
        "cfstream_ingest_connections_refused_total",
        "counter",
        "RTMP(S) connections closed at accept, by the cap they would have passed.",
        [
            (Some(("limit", "connections")), admitted.refused_connections),
            (
                Some(("limit", "unauthenticated_per_address")),
                admitted.refused_unauthenticated_per_address,
            ),
        ],
    );
    family(
        &mut out,
        "cfstream_players",
        "gauge",
        "Players (rtmpPlayback, rtmpsPlayback, srtPlayback) of live inputs right now.",
        [(None, pipelines.players() as u64)],
    );
    family(
        &mut out,
        "cfstream_players_dropped_total",
        "counter",
        "Players dropped for falling behind the live stream (5 s or 16 MiB).",
        [(None, gstcfstream::egress::viewers_dropped_too_slow())],
    );
    family(
        &mut out,
        "cfstream_ingest_bytes_total",
        "counter",
        "FLV bytes received from publishers.",
        [(None, load(&m.bytes_in))],
    );
    family(
        &mut out,
        "cfstream_segments_written_total",
        "counter",
        "HLS segments written.",
        [(None, load(&m.segments_written))],
    );
    let violations = m.violations();
    family(
        &mut out,
        "cfstream_violations_total",
        "counter",
        "Streams refused or stopped for breaking a rule, by error code.",
        violations
            .iter()
            .map(|(c, n)| (Some(("code", c.as_str())), *n)),
    );
    family(
        &mut out,
        "cfstream_webhook_deliveries_total",
        "counter",
        "Webhook events delivered (receiver answered 2xx).",
        [(None, load(&m.webhook_deliveries))],
    );
    family(
        &mut out,
        "cfstream_webhook_failures_total",
        "counter",
        "Failed webhook delivery attempts (each retry counts).",
        [(None, load(&m.webhook_failures))],
    );
    family(
        &mut out,
        "cfstream_webhook_dropped_total",
        "counter",
        "Webhook events given up on (attempts exhausted or outbox full).",
        [(None, load(&m.webhook_dropped))],
    );
    let outputs = pipelines.output_states();
    family(
        &mut out,
        "cfstream_outputs",
        "gauge",
        "Simulcast outputs of live pipelines by state.",
        outputs.iter().map(|(s, n)| (Some(("state", *s)), *n)),
    );
    family(
        &mut out,
        "cfstream_output_failures_total",
        "counter",
        "Simulcast output failures (each is retried).",
        [(None, load(&m.output_failures))],
    );
    if let Some(bucket) = pipelines.bucket() {
        bucket_families(&mut out, bucket.stats());
    }
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], out).into_response())
}

/// The copies of recordings to `--media-url` (only with a bucket).
fn bucket_families(out: &mut String, copies: crate::media_bucket::CopyStats) {
    family(
        out,
        "cfstream_bucket_copies_queued",
        "gauge",
        "Recordings with something new not copied to the bucket yet (retries included).",
        [(None, copies.queued)],
    );
    family(
        out,
        "cfstream_bucket_copied_objects_total",
        "counter",
        "Objects uploaded to the bucket (segments, init segments, index.log and its chunks).",
        [(None, copies.objects)],
    );
    family(
        out,
        "cfstream_bucket_copied_bytes_total",
        "counter",
        "Bytes uploaded to the bucket.",
        [(None, copies.bytes)],
    );
    family(
        out,
        "cfstream_bucket_copy_failures_total",
        "counter",
        "Copies to the bucket that failed (each is retried, the pause doubling up to 30 s).",
        [(None, copies.failures)],
    );
}

/// One metric family: HELP, TYPE and its samples (label values here never need escaping:
/// they are state names and error codes).
fn family<'a>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Option<(&'a str, &'a str)>, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (label, value) in samples {
        match label {
            Some((k, v)) => {
                let _ = writeln!(out, "{name}{{{k}=\"{v}\"}} {value}");
            }
            None => {
                let _ = writeln!(out, "{name} {value}");
            }
        }
    }
}
