//! Helpers shared by the end-to-end tests: the real `controld` binary, its HTTP API, ffmpeg
//! publishers and ffprobe, all on loopback ports chosen by the OS.

pub mod garage;
pub mod playback;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use cfstream_testmedia::{ChildGuard, Media};

pub const ACCOUNT_ID: &str = "e2eaccount";
pub const API_TOKEN: &str = "e2e-token-0123456789abcdef0123456789abcdef";

/// Polls `f` every 200 ms until it returns `Some`, panicking with `what` after `timeout`.
/// Only for state that has no event to wait on (API status, files on disk).
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Path of a workspace binary built next to the test executable.
fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(name))
        .expect("test executable has no target directory");
    assert!(
        path.exists(),
        "{} not found: build it first with `cargo build -p {name}` (same profile and target dir as the tests)",
        path.display()
    );
    path
}

/// A running `controld` with a temp data dir (kept across `kill9`/`restart`).
pub struct Controld {
    pub data_dir: tempfile::TempDir,
    pub http: SocketAddr,
    pub rtmp: SocketAddr,
    /// The RTMPS listener (on by default; `None` with `--rtmps off`).
    pub rtmps: Option<SocketAddr>,
    /// The SRT listener (on by default; `None` with `--srt off`).
    pub srt: Option<SocketAddr>,
    /// What `--rtmp` is given, kept for restarts: port 0 (a new port each start) unless the
    /// test fixed one with `start_on_rtmp`.
    rtmp_listen: SocketAddr,
    extra_args: Vec<String>,
    /// The state's PostgreSQL database when `CONTROLD_TEST_DATABASE_URL` is set (SQLite in the
    /// data dir otherwise); it goes with the data dir across restarts (`database_of`).
    database: Option<String>,
    child: Child,
}

impl Controld {
    pub fn start() -> Controld {
        Self::start_with_args(&[])
    }

    /// Starts with extra command line arguments (kept for restarts), e.g. `--rtmps …`.
    pub fn start_with_args(extra_args: &[&str]) -> Controld {
        let data_dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(data_dir, any_port(), strings(extra_args))
    }

    /// Starts with RTMP on `rtmp`, and on the same address again after `kill9_and_restart`:
    /// publishers that reconnect to one URL find the new process (see `free_loopback_port`).
    pub fn start_on_rtmp(rtmp: SocketAddr, extra_args: &[&str]) -> Controld {
        let data_dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(data_dir, rtmp, strings(extra_args))
    }

    fn start_in(
        data_dir: tempfile::TempDir,
        rtmp_listen: SocketAddr,
        extra_args: Vec<String>,
    ) -> Controld {
        let database = database_of(data_dir.path());
        let mut command = Command::new(workspace_binary("controld"));
        if let Some(url) = &database {
            command.env("CONTROLD_DATABASE_URL", url);
        }
        let mut child = command
            .args(["--http", "127.0.0.1:0", "--rtmp"])
            .arg(rtmp_listen.to_string())
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(&extra_args)
            .env("CONTROLD_ACCOUNT_ID", ACCOUNT_ID)
            .env("CONTROLD_API_TOKEN", API_TOKEN)
            // RTMPS is on by default (port 1936, self-signed): an OS-chosen port instead, so
            // that tests run in parallel; `--rtmps` in `extra_args` overrides it.
            .env("CONTROLD_RTMPS", "127.0.0.1:0")
            .env("CONTROLD_SRT", "127.0.0.1:0")
            .env_remove("CONTROLD_PUBLIC_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning controld");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("controld: http=") => break line,
                Some(Ok(_)) => continue,
                _ => {
                    let status = child.wait();
                    panic!("controld exited before listening: {status:?}");
                }
            }
        };
        // Keep draining stdout so that controld never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let field = |name: &str| -> Option<SocketAddr> {
            ready
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
        };
        let required =
            |name: &str| field(name).unwrap_or_else(|| panic!("no {name}= in {ready:?}"));
        Controld {
            http: required("http"),
            rtmp: required("rtmp"),
            rtmps: field("rtmps"),
            srt: field("srt"),
            data_dir,
            rtmp_listen,
            extra_args,
            database,
            child,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.http)
    }

    pub fn api(&self) -> Api {
        self.api_with(ACCOUNT_ID, API_TOKEN)
    }

    pub fn api_with(&self, account: &str, token: &str) -> Api {
        Api {
            base: format!("{}/client/v4/accounts/{account}/stream", self.base_url()),
            token: token.to_owned(),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build(),
        }
    }

    /// `controld token create --account …` against this data dir (while running).
    pub fn create_token(&self, account: &str) -> String {
        let mut command = Command::new(workspace_binary("controld"));
        if let Some(url) = &self.database {
            command.env("CONTROLD_DATABASE_URL", url);
        }
        let out = command
            .args(["token", "create", "--account", account, "--data-dir"])
            .arg(self.data_dir.path())
            .output()
            .expect("running controld token create");
        assert!(out.status.success(), "token create failed: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// `rtmp://127.0.0.1:PORT/live/KEY`
    pub fn rtmp_url(&self, stream_key: &str) -> String {
        format!("rtmp://{}/live/{stream_key}", self.rtmp)
    }

    /// The URL an ffmpeg caller publishes a live input to over SRT: its `srt` stream id and
    /// passphrase, on this controld's SRT port.
    pub fn srt_url(&self, input: &Value) -> String {
        let srt = &input["srt"];
        let addr = self.srt.expect("controld has an SRT listener");
        cfstream_testmedia::srt_url(
            addr,
            srt["streamId"].as_str().expect("srt.streamId"),
            srt["passphrase"].as_str(),
        )
    }

    /// SIGKILL, then a new process on the same data dir.
    pub fn kill9_and_restart(self) -> Controld {
        self.kill9_then(|_| {})
    }

    /// SIGKILL, `between` on the data dir as the dead process left it, then a new process on
    /// that data dir.
    pub fn kill9_then(mut self, between: impl FnOnce(&Path)) -> Controld {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
        between(self.data_dir.path());
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap());
        Self::start_in(
            data_dir,
            self.rtmp_listen,
            std::mem::take(&mut self.extra_args),
        )
    }

    /// SIGTERM and wait for the exit; the data dir is handed back for inspection.
    pub fn terminate(mut self) -> (ExitStatus, tempfile::TempDir) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: plain kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "kill -TERM");
        let status = wait_child(&mut self.child, Duration::from_secs(30))
            .expect("controld did not exit within 30 s of SIGTERM");
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap());
        (status, data_dir)
    }
}

impl Drop for Controld {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The v4 API of one account.
pub struct Api {
    pub base: String,
    pub token: String,
    agent: ureq::Agent,
}

impl Api {
    /// `(HTTP status, JSON body)`; every response, errors included, must be JSON.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token));
        let result = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = response.status();
        let text = response.into_string().expect("body");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path} → {status}: not JSON ({e}): {text:?}"));
        (status, json)
    }

    /// `result` of a successful call.
    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, json) = self.call(method, path, body);
        assert_eq!(status, 200, "{method} {path}: {json}");
        assert_eq!(json["success"], true, "{json}");
        json["result"].clone()
    }

    pub fn create_input(&self, body: Value) -> Value {
        self.ok("POST", "/live_inputs", Some(body))
    }

    pub fn input(&self, uid: &str) -> Value {
        self.ok("GET", &format!("/live_inputs/{uid}"), None)
    }

    pub fn videos_of(&self, uid: &str) -> Vec<Value> {
        self.ok("GET", &format!("/live_inputs/{uid}/videos"), None)
            .as_array()
            .expect("videos array")
            .clone()
    }

    /// Waits until the input's `status.current` satisfies `pred`; returns it.
    pub fn await_status(&self, uid: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        wait_for(what, Duration::from_secs(45), || {
            let current = self.input(uid)["status"]["current"].clone();
            pred(&current).then_some(current)
        })
    }
}

/// Plain GET without credentials (playback): `(status, content-type, body)`.
pub fn http_get(url: &str) -> (u16, String, Vec<u8>) {
    let response = match ureq::get(url).timeout(Duration::from_secs(30)).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = response.status();
    let content_type = response.content_type().to_owned();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut body).expect("body");
    (status, content_type, body)
}

/// How ffmpeg encodes the test stream: lavfi test video (x264 ultrafast, 320x240, 30 fps) and a
/// sine tone (AAC).
#[derive(Clone, Copy)]
pub struct Encoding {
    /// Keyframe interval in frames at 30 fps (120 = 4 s, within Cloudflare's rules).
    pub keyint: u32,
    /// Seconds of media.
    pub seconds: u32,
}

impl Encoding {
    /// A 4 s keyframe interval: what Cloudflare asks for.
    pub fn good(seconds: u32) -> Encoding {
        Encoding {
            keyint: 120,
            seconds,
        }
    }

    /// The media as MPEG-TS (what SRT callers send), with `audio`.
    pub fn mpegts(self, audio: &'static [&'static str]) -> Media {
        Media {
            format: "mpegts",
            ..self.media(audio)
        }
    }

    /// The media, with `audio` (ffmpeg audio codec arguments).
    pub fn media(self, audio: &'static [&'static str]) -> Media {
        Media {
            seconds: f64::from(self.seconds),
            keyint_seconds: f64::from(self.keyint) / 30.0,
            tune: None,
            bframes: None,
            audio,
            ..Media::default()
        }
    }
}

impl Default for Encoding {
    fn default() -> Self {
        Encoding::good(12)
    }
}

/// AAC as these tests have always sent it (64 kbps, the tone's 44.1 kHz).
pub const AAC_64K: &[&str] = &["-c:a", "aac", "-b:a", "64k"];
/// MP3, a codec Cloudflare refuses.
pub const MP3_64K: &[&str] = &["-c:a", "libmp3lame", "-b:a", "64k"];

/// An ffmpeg publishing `Media` in real time to an RTMP(S) URL; killed when dropped.
pub struct Publisher {
    child: ChildGuard,
}

impl Publisher {
    pub fn start(url: &str, enc: Encoding) -> Publisher {
        Publisher::start_media(url, &enc.media(AAC_64K))
    }

    /// Like `start` with MP3 audio, which Cloudflare refuses.
    pub fn start_with_mp3(url: &str, enc: Encoding) -> Publisher {
        Publisher::start_media(url, &enc.media(MP3_64K))
    }

    pub fn start_media(url: &str, media: &Media) -> Publisher {
        Publisher {
            child: cfstream_testmedia::publish_live(media, url),
        }
    }

    /// Like `start`, with ffmpeg also writing its progress to `progress` every 250 ms (see
    /// `progress_out_time`): how much media it has sent, whatever the machine's load.
    pub fn start_with_progress(url: &str, enc: Encoding, progress: &Path) -> Publisher {
        let media = enc.media(AAC_64K);
        Publisher {
            child: cfstream_testmedia::publish_live_reporting(&media, url, progress),
        }
    }

    /// Waits for ffmpeg to end (panics after `timeout`); returns its status and stderr.
    pub fn wait(mut self, timeout: Duration) -> (ExitStatus, String) {
        self.child.wait_timeout(timeout)
    }

    /// Cuts the connection abruptly, like an encoder losing its network.
    pub fn kill(self) {
        drop(self.child);
    }
}

/// `ffprobe` on a URL: the streams it decodes (`codec_type`s), or its error text.
pub fn ffprobe_streams(url: &str) -> Result<Vec<String>, String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-rw_timeout",
            "20000000",
            "-show_entries",
            "stream=codec_type,codec_name",
        ])
        .args(["-of", "json", url])
        .output()
        .map_err(|e| format!("running ffprobe: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let json: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok(json["streams"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|s| s["codec_name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// Decodes a whole media file/URL with ffmpeg (`-f null`); `Err` with its messages on failure.
pub fn decode_all(url: &str) -> Result<(), String> {
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-nostdin",
            "-xerror",
            "-i",
            url,
            "-f",
            "null",
            "-",
        ])
        .output()
        .map_err(|e| format!("running ffmpeg: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

impl Controld {
    /// Process id of the running controld (for `/proc/PID/…`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts a node named `node_id` with its state in the PostgreSQL database `database_url`
    /// (shared with other nodes) and a data dir of its own.
    pub fn start_node(database_url: &str, node_id: &str, extra_args: &[&str]) -> Controld {
        let data_dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(data_dir.path().join(DATABASE_MARKER), database_url).unwrap();
        let mut args = strings(extra_args);
        args.extend(["--node-id".to_owned(), node_id.to_owned()]);
        Self::start_in(data_dir, any_port(), args)
    }

    /// Starts on a data directory prepared by the test (e.g. with `media/` on a small tmpfs);
    /// extra arguments as in `start_with_args`.
    pub fn start_in_dir(data_dir: tempfile::TempDir, extra_args: &[&str]) -> Controld {
        Self::start_in(data_dir, any_port(), strings(extra_args))
    }
}

/// Names the PostgreSQL database of a data dir's state (see `database_of`).
const DATABASE_MARKER: &str = "test-database-url";

/// The PostgreSQL database of a data dir's state when the tests run on PostgreSQL: made with the
/// data dir and named in it, so that a restart on the data dir finds the same state. Left on
/// the server after the test (scripts/test.sh drops them before the next run).
fn database_of(data_dir: &Path) -> Option<String> {
    let marker = data_dir.join(DATABASE_MARKER);
    if let Ok(url) = std::fs::read_to_string(&marker) {
        return Some(url);
    }
    let url = cfstream_testservices::ScratchDatabase::from_env()?.keep();
    std::fs::write(&marker, &url).expect("writing test-database-url");
    Some(url)
}

/// `127.0.0.1:0`: a port chosen by the OS.
fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// A loopback address whose port the OS handed out a moment ago and that is free again, for a
/// listener that must keep its port across restarts (a small race with other processes, which
/// port 0 cannot avoid here).
pub fn free_loopback_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind(any_port()).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr")
}

/// Path of the `cfstream-loadgen` binary (`cargo build -p cfstream-loadgen`).
pub fn loadgen_binary() -> PathBuf {
    workspace_binary("cfstream-loadgen")
}

/// Path of the `controld` binary the tests run.
pub fn controld_binary() -> PathBuf {
    workspace_binary("controld")
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (children inherit it);
/// returns the soft limit now in force.
pub fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only access the struct passed.
    unsafe {
        assert_eq!(
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit),
            0,
            "getrlimit"
        );
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            assert_eq!(
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit),
                0,
                "setrlimit(RLIMIT_NOFILE, {})",
                limit.rlim_max
            );
        }
    }
    limit.rlim_cur
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`…), in bytes.
pub fn proc_status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        let kib: u64 = value.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib * 1024)
    })
}

/// Number of open file descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// `(soft, hard)` "Max open files" of a process, from `/proc/PID/limits`.
pub fn open_files_limits(pid: u32) -> Option<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
}

/// The media time (`out_time_us`) ffmpeg last reported in a `-progress` file: what it had
/// muxed and written to its output by then.
pub fn progress_out_time(progress: &Path) -> Option<Duration> {
    let text = std::fs::read_to_string(progress).ok()?;
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("out_time_us=")?.trim().parse::<u64>().ok())
        .map(Duration::from_micros)
}
