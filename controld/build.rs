//! Chooses the hls.js file that controld embeds for the dashboard's player: the npm-installed
//! dist file when present, otherwise a stand-in script, so that the build never fails for a
//! missing `npm ci` (scripts/setup-dashboard.sh runs it).

use std::path::PathBuf;

fn main() {
    let dashboard = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("dashboard");
    let hls = dashboard.join("node_modules/hls.js/dist/hls.min.js");
    // A file that does not exist counts as changed, so a later `npm ci` is picked up.
    println!("cargo::rerun-if-changed={}", hls.display());
    let embedded = if hls.is_file() {
        hls
    } else {
        println!(
            "cargo::warning=hls.js is not installed: the dashboard will have no preview (run scripts/setup-dashboard.sh)"
        );
        dashboard.join("hls-unavailable.js")
    };
    println!("cargo::rustc-env=CONTROLD_HLS_JS={}", embedded.display());
}
