//! Cloudflare's official SDKs against controld: the Python SDK (strict response validation) and
//! the TypeScript SDK, each calling every Stream endpoint controld serves, publishing with ffmpeg
//! over RTMPS to the key the SDK hands out on controld's default start (self-signed
//! certificate), and checking bad input.

use std::path::Path;
use std::process::Command;

use cfstream_e2e::{ACCOUNT_ID, API_TOKEN, Controld};

/// Runs an SDK script against a fresh controld (`CF_BASE_URL`, `CF_ACCOUNT_ID`,
/// `CF_API_TOKEN`); returns its stdout after requiring success.
fn run_against_controld(mut script: Command, what: &str) -> String {
    let controld = Controld::start();
    let out = script
        .env("CF_BASE_URL", format!("{}/client/v4", controld.base_url()))
        .env("CF_ACCOUNT_ID", ACCOUNT_ID)
        .env("CF_API_TOKEN", API_TOKEN)
        .output()
        .unwrap_or_else(|e| panic!("running the {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    stdout
}

#[test]
fn cloudflare_python_sdk_calls_every_endpoint() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/setup-python-venv.sh (installs the pinned `cloudflare` SDK)",
        python.display()
    );
    let mut script = Command::new(&python);
    script.arg(root.join("python/test_sdk.py"));
    let stdout = run_against_controld(script, "Python SDK test");
    assert!(
        stdout.contains("sdk: create/get/list/update/delete ok")
            && stdout.contains(
                "sdk: rtmps publish, video edit, storage usage, webhooks, keys, outputs ok"
            ),
        "{stdout}"
    );
}

#[test]
fn cloudflare_typescript_sdk_calls_every_endpoint() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ts-sdk");
    assert!(
        dir.join("node_modules/cloudflare").is_dir(),
        "{} missing: run scripts/setup-dashboard.sh (installs the pinned `cloudflare` npm package)",
        dir.join("node_modules/cloudflare").display()
    );
    let mut script = Command::new("node");
    script.args(["--test", "sdk.test.mjs"]).current_dir(&dir);
    let stdout = run_against_controld(script, "TypeScript SDK test (Node.js 20 or later)");
    assert!(stdout.contains("# fail 0"), "{stdout}");
}
