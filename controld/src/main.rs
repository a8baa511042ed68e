//! `controld`: runs the daemon, or manages API tokens (`controld token create --account ID`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use cfstream_storage::S3Config;
use clap::{Args, Parser, Subcommand};
use controld::media_bucket::MediaBucket;
use controld::pipeline::{IngestConfig, PipelineManager, RTMP_APP, TlsPaths};
use controld::store::Store;
use controld::{AppState, PublicUrls, bootstrap};
use gstcfstream::net::admission;

#[derive(Parser)]
#[command(version, about = "Cloudflare Stream Live compatible live video server")]
struct Cli {
    /// Directory of the database (controld.sqlite3) and the recordings (media/).
    #[arg(
        long,
        env = "CONTROLD_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    data_dir: PathBuf,
    /// PostgreSQL holding the state instead of <data-dir>/controld.sqlite3, for several nodes
    /// sharing it: `postgres://user:password@host/db` (`?host=/run/postgresql` for a socket).
    #[arg(long, env = "CONTROLD_DATABASE_URL", global = true, hide_env_values = true,
          value_parser = parse_database_url)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token for an account (created if it does not exist) and print it.
    Create {
        #[arg(long)]
        account: String,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// HTTP address of the API, playback and dashboard.
    #[arg(long, env = "CONTROLD_HTTP", default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// RTMP ingest address.
    #[arg(long, env = "CONTROLD_RTMP", default_value = "0.0.0.0:1935")]
    rtmp: SocketAddr,
    /// RTMPS ingest address, or `off`. Without --tls-cert/--tls-key it uses a self-signed
    /// certificate made on first start in <data-dir>/tls/.
    #[arg(long, env = "CONTROLD_RTMPS", default_value = DEFAULT_RTMPS, value_parser = parse_listen)]
    rtmps: Listen,
    /// SRT ingest address (UDP; one port for every input, callers routed by stream id), or
    /// `off`.
    #[arg(long, env = "CONTROLD_SRT", default_value = DEFAULT_SRT, value_parser = parse_listen)]
    srt: Listen,
    /// PEM certificate chain for RTMPS (with --tls-key), instead of the self-signed one.
    #[arg(long, env = "CONTROLD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for RTMPS (with --tls-cert).
    #[arg(long, env = "CONTROLD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Base URL clients reach this server at (default: http://<--http address>); its host is
    /// also used in the RTMP(S) URLs handed out.
    #[arg(long, env = "CONTROLD_PUBLIC_URL")]
    public_url: Option<String>,
    /// Use this account id instead of generating one on first start.
    #[arg(long, env = "CONTROLD_ACCOUNT_ID")]
    account_id: Option<String>,
    /// Accept this API token for the account (instead of generating one on first start).
    #[arg(long, env = "CONTROLD_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Milliseconds between reads of a live publisher's connection (`read-interval` of
    /// cfrtmpsrc and cfsrtsrc):
    /// a longer interval costs less CPU per stream and delays media by up to that long.
    #[arg(long, env = "CONTROLD_RTMP_READ_INTERVAL_MS", default_value_t = 40,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    rtmp_read_interval_ms: u32,
    /// Milliseconds of media per LL-HLS part (`part-target` of cfhlssink): shorter parts let
    /// low-latency players sit closer to the live edge, for more requests and more playlist
    /// reloads per viewer.
    #[arg(long, env = "CONTROLD_PART_TARGET_MS", default_value_t = DEFAULT_PART_TARGET_MS,
          value_parser = clap::value_parser!(u32).range(100..=10_000))]
    part_target_ms: u32,
    /// Open RTMP(S) connections the process accepts at most (live, setting up or lingering);
    /// a new one over the cap is closed at accept, live inputs are never disturbed. 0: no cap.
    #[arg(long, env = "CONTROLD_MAX_CONNECTIONS",
          default_value_t = admission::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// RTMP(S) connections one source address may have open before presenting a known stream
    /// key (TLS, handshake, connect, refused publish); more are closed at accept. 0: no cap.
    #[arg(long, env = "CONTROLD_MAX_UNAUTHENTICATED_PER_ADDRESS",
          default_value_t = admission::DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS)]
    max_unauthenticated_per_address: usize,
    /// First webhook retry delay in milliseconds; each further retry doubles it.
    #[arg(long, env = "CONTROLD_WEBHOOK_RETRY_BASE_MS", default_value_t = 2000)]
    webhook_retry_base_ms: u64,
    /// Seconds between retention sweeps (deleting recordings whose scheduledDeletion has come).
    #[arg(long, env = "CONTROLD_RETENTION_SWEEP_SECONDS",
          default_value_t = controld::retention::DEFAULT_SWEEP_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..))]
    retention_sweep_seconds: u64,
    /// `totalStorageMinutesLimit` of GET /stream/storage-usage (none when unset).
    #[arg(long, env = "CONTROLD_STORAGE_MINUTES_LIMIT")]
    storage_minutes_limit: Option<u64>,
    /// This node's name among the nodes sharing one --database-url (in input leases and logs);
    /// the same across restarts, so that a restarted node takes its inputs back at once.
    /// Default: the host name.
    #[arg(long, env = "CONTROLD_NODE_ID")]
    node_id: Option<String>,
    /// Where the other nodes sharing --database-url reach this node's HTTP, to forward
    /// playback of what this node holds (default: http://<--http address>; set it when --http
    /// binds 0.0.0.0).
    #[arg(long, env = "CONTROLD_NODE_URL")]
    node_url: Option<String>,
    /// Thumbnails decoded at once (each on one thread at low priority); a few more requests
    /// wait for a turn, further ones are answered 503 with Retry-After.
    #[arg(long, env = "CONTROLD_THUMBNAIL_CONCURRENCY",
          default_value_t = controld::thumbnails::DEFAULT_CONCURRENCY,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    thumbnail_concurrency: usize,
    #[command(flatten)]
    media: MediaArgs,
}

/// Where recordings are copied, so that every node can serve them (see docs/NODES.md).
#[derive(Args)]
struct MediaArgs {
    /// S3-compatible bucket recordings are copied to as they are written: `s3://bucket` or
    /// `s3://bucket/prefix`. They are still written to <data-dir>/media first.
    #[arg(long, env = "CONTROLD_MEDIA_URL",
          requires_all = ["s3_endpoint", "s3_access_key_id", "s3_secret_access_key"])]
    media_url: Option<String>,
    /// The S3 server: `https://host:port` (`http://` needs --s3-allow-http).
    #[arg(long, env = "CONTROLD_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    #[arg(long, env = "CONTROLD_S3_REGION", default_value = "us-east-1")]
    s3_region: String,
    #[arg(long, env = "CONTROLD_S3_ACCESS_KEY_ID")]
    s3_access_key_id: Option<String>,
    #[arg(long, env = "CONTROLD_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    s3_secret_access_key: Option<String>,
    /// Plain HTTP to --s3-endpoint (a server on loopback or a private network).
    #[arg(long, env = "CONTROLD_S3_ALLOW_HTTP")]
    s3_allow_http: bool,
}

impl MediaArgs {
    fn open(&self, media_dir: &std::path::Path) -> Result<Option<MediaBucket>, BoxError> {
        let Some(url) = &self.media_url else {
            return Ok(None);
        };
        let given = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut config = S3Config::new(
            url,
            &given(&self.s3_endpoint),
            &self.s3_region,
            &given(&self.s3_access_key_id),
            &given(&self.s3_secret_access_key),
        );
        config.allow_http = self.s3_allow_http;
        let bucket =
            MediaBucket::open(&config, media_dir).map_err(|e| format!("--media-url {url}: {e}"))?;
        tracing::info!(bucket = url, "recordings are copied to the bucket");
        Ok(Some(bucket))
    }
}

/// Half a second: LL-HLS players hold back three part targets (`PART-HOLD-BACK`), so they sit
/// about 1.5 s behind the live edge rather than the 3 s of the element's own default of 1 s.
const DEFAULT_PART_TARGET_MS: u32 = 500;

/// RTMPS needs no root: Cloudflare's 443 is for a deployment behind a proxy or with
/// CAP_NET_BIND_SERVICE (`--rtmps 0.0.0.0:443`).
const DEFAULT_RTMPS: &str = "0.0.0.0:1936";

/// Cloudflare's SRT port is 778, which needs root or CAP_NET_BIND_SERVICE like 443.
const DEFAULT_SRT: &str = "0.0.0.0:9000";

/// A listener address, or `off`.
#[derive(Clone, Copy)]
enum Listen {
    Off,
    At(SocketAddr),
}

fn parse_listen(text: &str) -> Result<Listen, String> {
    if text == "off" {
        return Ok(Listen::Off);
    }
    text.parse()
        .map(Listen::At)
        .map_err(|e| format!("{text:?}: {e} (an address such as 0.0.0.0:1936, or off)"))
}

/// Where the RTMPS certificate comes from, for the banner.
enum Certificate {
    Given,
    SelfSigned(PathBuf),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CONTROLD_LOG")
                // refinery logs every migration's whole SQL at info.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,refinery_core=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    raise_open_file_limit();
    let controld_log = std::env::var("CONTROLD_LOG").ok();
    if let Err(e) = controld::logging::route_gstreamer_debug(controld_log.as_deref()) {
        tracing::warn!("GStreamer debug output stays on stderr: {e}");
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Token(TokenCommand::Create { account })) => {
            create_token(&cli.data_dir, cli.database_url.as_deref(), &account)
        }
        None => tokio::runtime::Runtime::new()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(serve(cli.data_dir, cli.database_url, cli.serve))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("controld: {e}");
            ExitCode::FAILURE
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Raises the soft limit of open files to the hard limit. Every live input holds sockets and
/// files (publisher connection, segment files and index.log, outputs), and so does every client
/// that connects (RTMP publishers, including ones that never finish their handshake, and HTTP
/// viewers): the usual soft limit of 1024 would refuse connections long before memory or CPU
/// run out. The hard limit stays the administrator's cap.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::debug!(
            "reading the open files limit: {}",
            std::io::Error::last_os_error()
        );
        return;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = raised.rlim_cur;
        } else {
            tracing::debug!(
                "raising the open files limit to {}: {}",
                limit.rlim_max,
                std::io::Error::last_os_error()
            );
        }
    }
    tracing::debug!(
        soft = limit.rlim_cur,
        hard = limit.rlim_max,
        "open files limit"
    );
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "controld".into())
}

fn parse_database_url(url: &str) -> Result<String, String> {
    match controld::store::is_postgres_url(url) {
        true => Ok(url.to_owned()),
        false => Err("expected a postgres:// or postgresql:// URL".into()),
    }
}

fn open_store(data_dir: &std::path::Path, database_url: Option<&str>) -> Result<Store, BoxError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("creating data directory {}: {e}", data_dir.display()))?;
    Ok(match database_url {
        Some(url) => Store::connect(url)?,
        None => Store::open(&data_dir.join("controld.sqlite3"))?,
    })
}

fn create_token(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    account: &str,
) -> Result<(), BoxError> {
    let store = open_store(data_dir, database_url)?;
    let token = bootstrap::create_token(&store, account)?;
    println!("{token}");
    Ok(())
}

async fn serve(
    data_dir: PathBuf,
    database_url: Option<String>,
    args: ServeArgs,
) -> Result<(), BoxError> {
    let store = open_store(&data_dir, database_url.as_deref())?;
    let (account, new_token) = bootstrap::ensure_credentials(
        &store,
        args.account_id.as_deref(),
        args.api_token.as_deref(),
    )?;

    let media_dir = data_dir.join("media");
    std::fs::create_dir_all(&media_dir)
        .map_err(|e| format!("creating {}: {e}", media_dir.display()))?;
    let bucket = args.media.open(&media_dir)?;
    controld::retention::Sweeper::new(
        store.clone(),
        media_dir.clone(),
        Arc::new(controld::retention::SystemClock),
    )
    .with_bucket(bucket.clone())
    .spawn(std::time::Duration::from_secs(args.retention_sweep_seconds));
    let (rtmps, certificate) = match (args.rtmps, args.tls_cert, args.tls_key) {
        (Listen::Off, ..) => (None, None),
        (Listen::At(addr), Some(certificate), Some(private_key)) => (
            Some((
                addr,
                TlsPaths {
                    certificate,
                    private_key,
                },
            )),
            Some(Certificate::Given),
        ),
        (Listen::At(addr), ..) => {
            let hosts: Vec<String> = args
                .public_url
                .as_deref()
                .map(host_of)
                .into_iter()
                .collect();
            let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
            let paths =
                controld::tls::self_signed(&data_dir.join(controld::tls::SELF_SIGNED_DIR), &hosts)?;
            let shown = Certificate::SelfSigned(paths.certificate.clone());
            (Some((addr, paths)), Some(shown))
        }
    };
    let pipelines = PipelineManager::start(
        store.clone(),
        media_dir,
        IngestConfig {
            rtmp: args.rtmp,
            rtmps,
            srt: match args.srt {
                Listen::Off => None,
                Listen::At(addr) => Some(addr),
            },
            read_interval_ms: args.rtmp_read_interval_ms,
            part_target_ms: args.part_target_ms,
            limits: admission::Limits {
                max_connections: args.max_connections,
                max_unauthenticated_per_address: args.max_unauthenticated_per_address,
            },
            node_id: args.node_id.clone().unwrap_or_else(host_name),
            bucket,
        },
        std::time::Duration::from_millis(args.webhook_retry_base_ms),
    )
    .await?;
    let http = tokio::net::TcpListener::bind(args.http)
        .await
        .map_err(|e| format!("binding HTTP on {}: {e}", args.http))?;
    let http_addr = http.local_addr()?;
    let urls = public_urls(args.public_url.as_deref(), http_addr, &pipelines);
    pipelines.webhooks().set_http_base(&urls.http);
    pipelines.set_node_url(
        &args
            .node_url
            .clone()
            .unwrap_or_else(|| format!("http://{http_addr}")),
    );

    let mut out = std::io::stdout().lock();
    writeln!(out, "controld: account {account}")?;
    if let Some(token) = new_token {
        writeln!(
            out,
            "controld: API token {token} (shown only this once: keep it)"
        )?;
    }
    writeln!(
        out,
        "controld: API {}/client/v4  dashboard {}/",
        urls.http, urls.http
    )?;
    writeln!(out, "controld: RTMP {}", urls.rtmp)?;
    match (&urls.rtmps, &certificate) {
        (Some(rtmps), Some(Certificate::SelfSigned(path))) => writeln!(
            out,
            "controld: RTMPS {rtmps} with a self-signed certificate ({}): encoders that verify \
             certificates (OBS) refuse it; pass a real one with --tls-cert/--tls-key",
            path.display()
        )?,
        (Some(rtmps), _) => writeln!(out, "controld: RTMPS {rtmps}")?,
        (None, _) => {}
    }
    if let Some(srt) = &urls.srt {
        writeln!(
            out,
            "controld: SRT {srt} (stream id and passphrase per live input)"
        )?;
    }
    let mut ready = format!("controld: http={http_addr} rtmp={}", pipelines.rtmp_addr());
    if let Some(addr) = pipelines.rtmps_addr() {
        ready.push_str(&format!(" rtmps={addr}"));
    }
    if let Some(addr) = pipelines.srt_addr() {
        ready.push_str(&format!(" srt={addr}"));
    }
    writeln!(out, "{ready}")?;
    out.flush()?;
    drop(out);

    let state = AppState {
        store,
        pipelines: pipelines.clone(),
        urls: Arc::new(urls),
        storage_minutes_limit: args.storage_minutes_limit,
        thumbnails: Arc::new(controld::thumbnails::Thumbnails::new(
            args.thumbnail_concurrency,
        )),
    };
    // The peer address feeds `ip.src` access rules of signed-URL tokens.
    let app = controld::app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(http, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: finishing live recordings");
            pipelines.shutdown().await;
        })
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminate = async {
        match terminate.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}

/// URLs handed out: the public URL's host, or the HTTP address's, with the actual ports.
fn public_urls(
    public_url: Option<&str>,
    http: SocketAddr,
    pipelines: &PipelineManager,
) -> PublicUrls {
    let local_host = |addr: SocketAddr| match addr.ip() {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let http_base = match public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("http://{}:{}", local_host(http), http.port()),
    };
    let host = public_url.map(host_of).unwrap_or_else(|| local_host(http));
    let rtmp = pipelines.rtmp_addr();
    PublicUrls {
        http: http_base,
        rtmp: format!("rtmp://{host}:{}/{RTMP_APP}/", rtmp.port()),
        rtmps: pipelines
            .rtmps_addr()
            .map(|a| format!("rtmps://{host}:{}/{RTMP_APP}/", a.port())),
        srt: pipelines
            .srt_addr()
            .map(|a| format!("srt://{host}:{}", a.port())),
    }
}

/// Host part of a URL (`https://[::1]:8443/x` → `[::1]`).
fn host_of(url: &str) -> String {
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = authority.split('/').next().unwrap_or(authority);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if authority.starts_with('[') {
        authority
            .split_inclusive(']')
            .next()
            .unwrap_or(authority)
            .to_owned()
    } else {
        authority.split(':').next().unwrap_or(authority).to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part_target(args: &[&str]) -> Result<u32, clap::Error> {
        let argv = ["controld"].iter().chain(args);
        Cli::try_parse_from(argv).map(|cli| cli.serve.part_target_ms)
    }

    #[test]
    fn the_part_target_defaults_to_half_a_second_and_stays_in_range() {
        assert_eq!(part_target(&[]).unwrap(), DEFAULT_PART_TARGET_MS);
        assert_eq!(part_target(&["--part-target-ms", "100"]).unwrap(), 100);
        assert_eq!(part_target(&["--part-target-ms", "10000"]).unwrap(), 10_000);
        for out in ["99", "10001", "0", "half"] {
            let e = part_target(&["--part-target-ms", out]).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{out}");
        }
    }
}
