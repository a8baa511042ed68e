//! Helpers shared by the element tests: plugin registration, the plugin library for the
//! GStreamer command-line tools, and test media made with ffmpeg (`cfstream-testmedia`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Once;

// Each test file uses some of them.
#[allow(unused_imports)]
pub use cfstream_testmedia::{ChildGuard, Media, generate_media, publish_live};

/// Initialises GStreamer and registers this crate's elements statically.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstcfstream::plugin_register_static().expect("register cfstream plugin");
    });
}

/// A directory holding only this build's plugin library, for `GST_PLUGIN_PATH` of the GStreamer
/// command-line tools. Cargo always writes the cdylib to `deps/` next to the test executable but
/// copies it up to `target/<profile>/` only when the library itself is a build root, so the
/// fresher of the two is linked in.
pub fn plugin_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let deps = exe.parent().expect("deps directory");
        let candidates = [
            deps.join("libgstcfstream.so"),
            deps.parent()
                .expect("profile directory")
                .join("libgstcfstream.so"),
        ];
        let library = candidates
            .iter()
            .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p)))
            .max()
            .map(|(_, p)| p.clone())
            .expect("libgstcfstream.so not built: run `cargo build -p gst-plugin-cfstream`");
        let name = exe.file_stem().unwrap().to_string_lossy().into_owned();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("gst-plugin-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("libgstcfstream.so");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&library, &link).unwrap();
        dir
    })
    .clone()
}

pub mod cmaf;
