//! cfstream-loadgen: publishes one prepared FLV file over N concurrent RTMP connections in real
//! time, as N encoders would, to measure what ingest servers cost per stream.
//!
//! One process and one thread: every connection is a task on a single-threaded tokio runtime,
//! so that the tool costs far less CPU than the servers it loads (it mostly sleeps until a tag
//! is due and then copies it into one socket write).

mod media;
mod publisher;
mod report;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use media::Media;
use target::Target;

/// Publishes an FLV file (H.264 + AAC) over N RTMP connections in real time, looping it with
/// rising timestamps, and prints per-connection bytes, errors and reconnects, the totals and
/// its own CPU seconds.
#[derive(Parser)]
#[command(name = "cfstream-loadgen")]
struct Args {
    /// The FLV file to publish; read once and shared by all connections.
    #[arg(long)]
    file: PathBuf,
    /// rtmp://host[:port]/app/stream-key; `{n}` is replaced by the connection number (1..=N).
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
    /// Print only the totals line.
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
    let media = Arc::new(Media::load(&args.file)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let reports = runtime.block_on(publish_all(
        &targets,
        media,
        Duration::from_secs_f64(args.ramp.recip()),
        Duration::from_secs_f64(args.duration),
        Duration::from_secs_f64(args.retry_delay),
    ))?;
    report::print(&targets, &reports, args.quiet);
    Ok(reports.iter().all(|r| r.errors == 0))
}

/// Starts one connection every `ramp_interval` and waits for all of them to finish.
async fn publish_all(
    targets: &[Target],
    media: Arc<Media>,
    ramp_interval: Duration,
    duration: Duration,
    retry_delay: Duration,
) -> Result<Vec<publisher::ConnectionReport>, tokio::task::JoinError> {
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(targets.len());
    for (n, target) in targets.iter().enumerate() {
        tokio::time::sleep_until(start + ramp_interval * n as u32).await;
        let media = Arc::clone(&media);
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            publisher::run(target, &media, duration, retry_delay).await
        }));
    }
    let mut reports = Vec::with_capacity(tasks.len());
    for task in tasks {
        reports.push(task.await?);
    }
    Ok(reports)
}
