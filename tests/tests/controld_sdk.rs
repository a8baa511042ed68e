//! The official Cloudflare Python SDK against controld (create / get / list / update / delete).

use std::path::Path;
use std::process::Command;

use cfstream_e2e::{ACCOUNT_ID, API_TOKEN, Controld};

#[test]
fn cloudflare_python_sdk_manages_live_inputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/setup-python-venv.sh (installs the pinned `cloudflare` SDK)",
        python.display()
    );
    let controld = Controld::start();
    let out = Command::new(&python)
        .arg(root.join("python/test_sdk.py"))
        .env("CF_BASE_URL", format!("{}/client/v4", controld.base_url()))
        .env("CF_ACCOUNT_ID", ACCOUNT_ID)
        .env("CF_API_TOKEN", API_TOKEN)
        .output()
        .expect("running the SDK test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "SDK test failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("sdk: create/get/list/update/delete ok"),
        "{stdout}"
    );
}
