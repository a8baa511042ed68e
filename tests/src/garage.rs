//! A private single-node Garage (an S3-compatible object store) for one test: its own temp
//! dir and loopback ports, a layout, one key and one bucket made with the `garage` CLI. Killed
//! on drop; its log is printed when the test failed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cfstream_storage::S3Config;

use crate::{free_loopback_port, wait_for};

pub const GARAGE_VERSION: &str = "2.5.0";
pub const REGION: &str = "garage";
pub const BUCKET: &str = "media";
const STARTUP: Duration = Duration::from_secs(60);

pub struct Garage {
    child: Child,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:port` of the S3 API.
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// The binary scripts/setup-garage.sh builds.
pub fn garage_binary() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = workspace.join(format!("target/tools/garage-{GARAGE_VERSION}/bin/garage"));
    assert!(
        path.exists(),
        "{} not found: run scripts/setup-garage.sh first (it builds Garage {GARAGE_VERSION})",
        path.display()
    );
    path
}

impl Garage {
    pub fn start() -> Garage {
        let binary = garage_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let s3 = free_loopback_port();
        let rpc = free_loopback_port();
        let admin = free_loopback_port();
        fs::write(
            dir.path().join("garage.toml"),
            config(dir.path(), s3, rpc, admin),
        )
        .expect("write garage.toml");
        let log = fs::File::create(dir.path().join("garage.log")).expect("garage.log");
        let child = Command::new(&binary)
            .arg("-c")
            .arg(dir.path().join("garage.toml"))
            .arg("server")
            .env("RUST_LOG", "garage=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut garage = Garage {
            child,
            dir,
            endpoint: format!("http://{s3}"),
            access_key_id: String::new(),
            secret_access_key: String::new(),
        };
        garage.set_up(&format!("http://{admin}/health"));
        garage
    }

    /// The server's process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `s3://media/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// How a client reaches `s3://media/<prefix>` on this server.
    pub fn config(&self, prefix: &str) -> S3Config {
        let mut config = S3Config::new(
            &self.url(prefix),
            &self.endpoint,
            REGION,
            &self.access_key_id,
            &self.secret_access_key,
        );
        config.allow_http = true;
        config
    }

    /// Layout, key and bucket, each once the node answers.
    fn set_up(&mut self, health: &str) {
        let node = wait_for("Garage to answer `node id`", STARTUP, || {
            self.try_cli(&["node", "id", "-q"])
        });
        let node = node.trim().split('@').next().unwrap_or_default().to_owned();
        // `node id` reads the key from disk and may answer before the RPC listener is up; the
        // assignment needs the server itself.
        let assign = ["layout", "assign", "-z", "dc1", "-c", "1G", &node];
        wait_for("Garage's RPC to take the layout", STARTUP, || {
            self.try_cli(&assign)
        });
        self.cli(&["layout", "apply", "--version", "1"]);
        wait_for("Garage's /health to say it is up", STARTUP, || {
            let response = ureq::get(health).call().ok()?;
            (response.status() == 200).then_some(())
        });
        let key = self.cli(&["key", "create", "cfstream-test"]);
        self.access_key_id = field(&key, "Key ID:");
        self.secret_access_key = field(&key, "Secret key:");
        self.cli(&["bucket", "create", BUCKET]);
        let allow = ["bucket", "allow", "--read", "--write", "--owner", BUCKET];
        self.cli(&[&allow[..], &["--key", "cfstream-test"]].concat());
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(garage_binary());
        command
            .arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .args(args);
        command
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let output = self.command(args).stdin(Stdio::null()).output().ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `garage <args>` against this node; panics with its output when it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = (self.command(args).stdin(Stdio::null()).output())
            .unwrap_or_else(|e| panic!("cannot run garage {args:?}: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "garage {args:?} failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default();
            eprintln!("--- garage.log ---\n{log}--- end of garage.log ---");
        }
    }
}

fn config(
    dir: &Path,
    s3: std::net::SocketAddr,
    rpc: std::net::SocketAddr,
    admin: std::net::SocketAddr,
) -> String {
    let dir = dir.display();
    // A private node on loopback: any fixed secret will do.
    let secret = "c0ffee".repeat(10) + "c0ff";
    format!(
        "metadata_dir = \"{dir}/meta\"\n\
         data_dir = \"{dir}/data\"\n\
         db_engine = \"sqlite\"\n\
         replication_factor = 1\n\
         rpc_bind_addr = \"{rpc}\"\n\
         rpc_public_addr = \"{rpc}\"\n\
         rpc_secret = \"{secret}\"\n\
         [s3_api]\n\
         s3_region = \"{REGION}\"\n\
         api_bind_addr = \"{s3}\"\n\
         [admin]\n\
         api_bind_addr = \"{admin}\"\n"
    )
}

/// The value after `label` on its line of the CLI's output.
fn field(output: &str, label: &str) -> String {
    (output.lines())
        .find_map(|line| line.trim().strip_prefix(label))
        .map(|value| value.trim().to_owned())
        .unwrap_or_else(|| panic!("no {label:?} in garage's output: {output}"))
}
