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
mod parts;
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

use follow::Pace;
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
    #[arg(long, required_unless_present = "viewers")]
    file: Option<PathBuf>,
    /// rtmp://host[:port]/app/stream-key or rtmps://… (port 443 by default); `{n}` is replaced
    /// by the connection number (1..=N).
    #[arg(
        long,
        required_unless_present_any = ["url_file", "viewers"],
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
    /// With --playlists: follow the playback URLs as LL-HLS players do (`protocol=llhls`, one
    /// blocking reload per part) and report the part latency too: from the arrival of a part's
    /// first frame at the server (its segment's EXT-X-PROGRAM-DATE-TIME plus the parts before
    /// it) to the response listing it. Same machine as the server: one clock.
    #[arg(long, requires = "playlists")]
    parts: bool,
    /// Publish nothing: VIEWERS LL-HLS viewers per --playlists entry (the first --connections
    /// entries, playback URLs), each following part by part as with --parts, for --duration
    /// seconds; reports the part latency they saw.
    #[arg(
        long,
        requires = "playlists",
        conflicts_with_all = ["file", "url", "url_file", "churn"],
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    viewers: Option<u32>,
    /// With --parts or --viewers: write every part timed to this file (connection, recording,
    /// segment, part, when read, latency, caught up), one per line.
    #[arg(long)]
    part_log: Option<PathBuf>,
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
    let outcome = match args.viewers {
        Some(viewers) => view(&args, viewers),
        None => run(args),
    };
    match outcome {
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
        Some(path) => Some(read_playlist_entries(path, connections)?),
        None => None,
    };
    let pace = if args.parts {
        Pace::Parts
    } else {
        Pace::Segments
    };
    let tls = if targets.iter().any(|t| t.tls) {
        Some(tls::connector(args.insecure)?)
    } else {
        None
    };
    let file = args.file.as_ref().ok_or("give --file")?;
    let media = Arc::new(Media::load(file)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (reports, latency) = runtime.block_on(async {
        let mut watcher = match &playlists {
            Some(entries) => Some(
                Watcher::new(entries, pace)
                    .map_err(|e| format!("cannot watch the playlists: {e}"))?,
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
        print_watch_errors(watcher);
        write_part_log(args.part_log.as_deref(), watcher)?;
        let latency = report::latency(&reports, watcher);
        Ok((reports, Some(latency)))
    })?;
    report::print(&targets, &reports, args.quiet);
    if let Some(latency) = latency {
        report::print_latency(&latency, args.quiet);
    }
    Ok(reports.iter().all(|r| r.errors == 0))
}

/// --viewers: follows each of the first `connections` playback URLs of --playlists with
/// `viewers` LL-HLS viewers for --duration seconds, then prints the `viewers:` and `latency:`
/// lines. Ok(false) when some request failed.
fn view(args: &Args, viewers: u32) -> Result<bool, Box<dyn std::error::Error>> {
    let path = args
        .playlists
        .as_ref()
        .ok_or("--viewers needs --playlists")?;
    let inputs = read_playlist_entries(path, args.connections as usize)?;
    if let Some(file) = inputs.iter().find(|e| matches!(e, Entry::File(_))) {
        return Err(format!("--viewers follows playback URLs only, not {file:?}").into());
    }
    // Viewer k follows input k / viewers, so each input's viewers are numbered together.
    let entries: Vec<Entry> = (inputs.iter())
        .flat_map(|entry| std::iter::repeat_n(entry.clone(), viewers as usize))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let watcher = runtime.block_on(async {
        let mut watcher = Watcher::new(&entries, Pace::Parts)
            .map_err(|e| format!("cannot follow the playlists: {e}"))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(args.duration);
        watcher.watch_while(deadline, |_| false).await;
        Ok::<_, Box<dyn std::error::Error>>(watcher)
    })?;
    print_watch_errors(&watcher);
    write_part_log(args.part_log.as_deref(), &watcher)?;
    let cpu = report::own_cpu_seconds()
        .map(|seconds| format!("{seconds:.3}"))
        .unwrap_or_else(|_| "unknown".into());
    println!(
        "viewers: inputs={} viewers={} responses={} request_errors={} loadgen_cpu_seconds={cpu}",
        inputs.len(),
        entries.len(),
        watcher.responses,
        watcher.request_errors,
    );
    let totals = latency::Totals {
        connections: entries.len(),
        target_duration_s: watcher.target_duration_s().unwrap_or(0),
        request_errors: watcher.request_errors,
        parts: report::part_totals(&watcher),
        ..latency::Totals::default()
    };
    println!("{}", totals.line());
    Ok(watcher.request_errors == 0 && watcher.errors.is_empty())
}

/// --part-log, when given.
fn write_part_log(path: Option<&std::path::Path>, watcher: &Watcher) -> Result<(), String> {
    let Some(path) = path else {
        return Ok(());
    };
    report::write_part_log(path, watcher)
        .map_err(|e| format!("cannot write the part log {}: {e}", path.display()))
}

fn print_watch_errors(watcher: &Watcher) {
    for error in &watcher.errors {
        eprintln!("cfstream-loadgen: playlists: {error}");
    }
    if let Some(error) = &watcher.last_request_error {
        let count = watcher.request_errors;
        eprintln!("cfstream-loadgen: playback: {count} failed requests, the last: {error}");
    }
}

fn read_playlist_entries(path: &std::path::Path, connections: usize) -> Result<Vec<Entry>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    playlist_entries(&text, connections)
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
