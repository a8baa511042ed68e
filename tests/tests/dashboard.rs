//! The dashboard in Debian's Chromium against the real controld while ffmpeg publishes real RTMP:
//! runs tests/dashboard/dashboard.test.mjs (playwright-core) and requires it to pass. Its
//! screenshots land in `<target dir>/dashboard-artifacts/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use cfstream_e2e::{ACCOUNT_ID, API_TOKEN, Controld};

#[test]
fn dashboard_in_chromium() {
    let script_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
    assert!(
        script_dir.join("node_modules/playwright-core").is_dir()
            && Path::new("/usr/bin/chromium").exists(),
        "Chromium or playwright-core is missing: run scripts/setup-dashboard.sh"
    );
    let controld = Controld::start();
    let status = Command::new("node")
        .arg("dashboard.test.mjs")
        .current_dir(&script_dir)
        .env("CONTROLD_HTTP", controld.http.to_string())
        .env("CONTROLD_ACCOUNT_ID", ACCOUNT_ID)
        .env("CONTROLD_API_TOKEN", API_TOKEN)
        .env(
            "DASHBOARD_ARTIFACTS",
            target_dir().join("dashboard-artifacts"),
        )
        .status()
        .expect("running node (Node.js 20 or later is needed)");
    assert!(
        status.success(),
        "dashboard.test.mjs failed ({status}); its report is above"
    );
}

/// `target/<profile>/deps/<this test>` → `target`, so artefacts follow `CARGO_TARGET_DIR`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .expect("test executable outside a target dir")
        .to_owned()
}
