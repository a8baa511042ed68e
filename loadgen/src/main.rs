//! cfstream-loadgen: publishes one prepared FLV file over N concurrent RTMP or RTMPS
//! connections in real time, as N encoders would, to measure what ingest servers cost per stream
//! and, with `--playlists`, how long after each closing keyframe the server lists the segment.
//!
//! One process and one thread: every connection is a task on a single-threaded tokio runtime,
//! so that the tool costs far less CPU than the servers it loads (it mostly sleeps until a tag
//! is due and then copies it into one socket write). The playlists are followed on the same
//! thread (blocking reloads over HTTP, inotify on disk).

mod follow;
mod latency;
mod media;
mod publisher;
mod report;
mod target;
mod tls;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use media::Media;
use publisher::{Churn, ConnectionReport, Plan};
use target::Target;
use watch::{Entry, Watcher};

/// Publishes an FLV file (H.264 + AAC) over N RTMP or RTMPS connections in real time, looping it
/// with rising timestamps, and prints per-connection bytes, errors and reconnects, the totals
/// and its own CPU seconds; with --playlists also the segment latency.
#[derive(Parser)]
#[command(name = "cfstream-loadgen")]
struct Args {
    /// The FLV file to publish; read once and shared by all connections.
    #[arg(long)]
    file: PathBuf,
    /// rtmp://host[:port]/app/stream-key or rtmps://… (port 443 by default); `{n}` is replaced
    /// by the connection number (1..=N).
    #[arg(
        long,
        required_unless_present = "url_file",
        conflicts_with = "url_file"
    )]
    url: Option<String>,
    /// A file with one URL per line (blank lines and `#` comments skipped); connection n uses
    /// the nth.
    #[arg(long)]
    url_file: Option<PathBuf>,
    /// Number of concurrent connections.
    #[arg(long, short = 'n', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 10.0, value_parser = positive_number)]
    ramp: f64,
    /// Seconds each connection publishes (from its own start; reconnects included).
    #[arg(long, default_value_t = 60.0, value_parser = positive_number)]
    duration: f64,
    /// Seconds between a failed publish and the next attempt.
    #[arg(long, default_value_t = 1.0, value_parser = positive_number)]
    retry_delay: f64,
    /// Publishers come and go: each publish ends after a random 0.5-1.5 times this many seconds
    /// and the connection publishes again after a random 0-2 times --retry-delay.
    #[arg(long, value_parser = positive_number)]
    churn: Option<f64>,
    /// With --churn: per cent of the early ends that are abrupt (half a close without shutdown,
    /// as of a killed encoder, half a reset).
    #[arg(long, default_value_t = 0, requires = "churn", value_parser = clap::value_parser!(u32).range(0..=100))]
    abort_percent: u32,
    /// rtmps://: accept any server certificate (self-signed bench servers). Without it the
    /// certificate must chain to a webpki root and name the URL's host.
    #[arg(long)]
    insecure: bool,
    /// Measure segment latency: a file whose line n is where connection n's segments are
    /// listed: a live input's playback URL (controld: http://host:port/<input
    /// uid>/manifest/video.m3u8, followed to its media playlist with blocking reloads) or a live
    /// playlist file on disk (….m3u8, e.g. nginx-rtmp's). Blank lines and `#` comments skipped.
    #[arg(long)]
    playlists: Option<PathBuf>,
    /// Print only the totals lines.
    #[arg(long)]
    quiet: bool,
}

fn positive_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("{text:?} is not a positive number")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("cfstream-loadgen: {error}");
            ExitCode::from(2)
        }
    }
}

/// Ok(false) when some connection had errors (they are in the report).
fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    let connections = args.connections as usize;
    let targets = match (&args.url, &args.url_file) {
        (Some(template), _) => target::from_template(template, connections)?,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            target::from_list(&text, connections)?
        }
        (None, None) => return Err("give --url or --url-file".into()),
    };
    let playlists = match &args.playlists {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Some(playlist_entries(&text, connections)?)
        }
        None => None,
    };
    let tls = if targets.iter().any(|t| t.tls) {
        Some(tls::connector(args.insecure)?)
    } else {
        None
    };
    let media = Arc::new(Media::load(&args.file)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (reports, latency) = runtime.block_on(async {
        let mut watcher = match &playlists {
            Some(entries) => Some(
                Watcher::new(entries).map_err(|e| format!("cannot watch the playlists: {e}"))?,
            ),
            None => None,
        };
        let plan = Plan {
            duration: Duration::from_secs_f64(args.duration),
            retry_delay: Duration::from_secs_f64(args.retry_delay),
            churn: args.churn.map(|mean| Churn {
                mean: Duration::from_secs_f64(mean),
                abort_percent: args.abort_percent,
            }),
        };
        let publish = publish_all(
            &targets,
            tls,
            media,
            Duration::from_secs_f64(args.ramp.recip()),
            plan,
        );
        let Some(watcher) = watcher.as_mut() else {
            return Ok::<_, Box<dyn std::error::Error>>((publish.await?, None));
        };
        let reports = watcher.watch_until(publish).await?;
        // The segments closed by the last keyframes: wait for them up to one target duration
        // (and a second) after the end; later they would be late anyway.
        let grace = Duration::from_secs(watcher.target_duration_s().unwrap_or(10) + 1);
        let deadline = tokio::time::Instant::now() + grace;
        watcher
            .watch_while(deadline, |logs| complete(&reports, logs))
            .await;
        for error in &watcher.errors {
            eprintln!("cfstream-loadgen: playlists: {error}");
        }
        if let Some(error) = &watcher.last_request_error {
            let count = watcher.request_errors;
            eprintln!("cfstream-loadgen: playback: {count} failed requests, the last: {error}");
        }
        let latency = report::latency(&reports, watcher);
        Ok((reports, Some(latency)))
    })?;
    report::print(&targets, &reports, args.quiet);
    if let Some(latency) = latency {
        report::print_latency(&latency, args.quiet);
    }
    Ok(reports.iter().all(|r| r.errors == 0))
}

/// The `--playlists` entries of the first `connections` connections.
fn playlist_entries(text: &str, connections: usize) -> Result<Vec<Entry>, String> {
    let entries = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(Entry::parse)
        .take(connections)
        .collect::<Result<Vec<_>, _>>()?;
    if entries.len() < connections {
        return Err(format!(
            "the playlists file lists {} entries but {connections} connections were asked for",
            entries.len()
        ));
    }
    Ok(entries)
}

/// Every connection's expected segments were seen (nothing left to wait for).
fn complete(
    reports: &[ConnectionReport],
    logs: &[std::collections::BTreeMap<String, latency::SegmentLog>],
) -> bool {
    reports
        .iter()
        .zip(logs)
        .all(|(report, logs)| match report::tracked(report, logs) {
            Some((keyframes, log)) => {
                latency::evaluate(keyframes, log.unwrap_or(&Default::default())).missing == 0
            }
            None => true,
        })
}

/// Starts one connection every `ramp_interval` and waits for all of them to finish.
async fn publish_all(
    targets: &[Target],
    tls: Option<tokio_rustls::TlsConnector>,
    media: Arc<Media>,
    ramp_interval: Duration,
    plan: Plan,
) -> Result<Vec<ConnectionReport>, tokio::task::JoinError> {
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(targets.len());
    for (n, target) in targets.iter().enumerate() {
        tokio::time::sleep_until(start + ramp_interval * n as u32).await;
        let media = Arc::clone(&media);
        let target = target.clone();
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            publisher::run(target, tls, &media, plan, n).await
        }));
    }
    let mut reports = Vec::with_capacity(tasks.len());
    for task in tasks {
        reports.push(task.await?);
    }
    Ok(reports)
}
