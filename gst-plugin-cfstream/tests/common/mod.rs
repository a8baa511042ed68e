//! Helpers shared by the element tests: plugin registration and test media made with ffmpeg.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

/// Initialises GStreamer and registers this crate's elements statically.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstcfstream::plugin_register_static().expect("register cfstream plugin");
    });
}

/// What `generate_media` encodes: a lavfi test picture and tone, small and short.
#[derive(Clone, Debug)]
pub struct Media {
    pub seconds: f64,
    pub fps: &'static str,
    pub size: &'static str,
    /// Keyframe interval in seconds (x264 `keyint` = fps × this, scene cuts off).
    pub keyint_seconds: f64,
    /// Extra x264 options appended to `-x264-params`, e.g. `open-gop=1`.
    pub x264_params: &'static str,
    pub bframes: u32,
    /// ffmpeg audio codec arguments; empty for no audio.
    pub audio: &'static [&'static str],
    /// ffmpeg video codec arguments replacing x264 entirely when non-empty.
    pub video_override: &'static [&'static str],
    /// Container: "flv", "mpegts", "mp4".
    pub format: &'static str,
}

impl Default for Media {
    fn default() -> Self {
        Media {
            seconds: 10.0,
            fps: "30",
            size: "320x240",
            keyint_seconds: 4.0,
            x264_params: "",
            bframes: 2,
            audio: &["-c:a", "aac", "-b:a", "64k", "-ar", "44100"],
            video_override: &[],
            format: "flv",
        }
    }
}

/// Frames per second of a `Media::fps` string such as "30" or "30000/1001".
pub fn fps_value(fps: &str) -> f64 {
    match fps.split_once('/') {
        Some((n, d)) => n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap(),
        None => fps.parse().unwrap(),
    }
}

/// The ffmpeg arguments that encode `media` (without the output path), for tests that publish
/// live with `-re` instead of writing a file.
pub fn ffmpeg_args(media: &Media) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-hide_banner".into(),
        "-loglevel".into(),
        "error".into(),
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("testsrc2=size={}:rate={}", media.size, media.fps),
    ];
    if !media.audio.is_empty() {
        args.extend(
            ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"].map(String::from),
        );
    }
    args.extend(["-t".into(), format!("{}", media.seconds)]);
    if media.video_override.is_empty() {
        let keyint = (fps_value(media.fps) * media.keyint_seconds).round() as u32;
        let mut params = format!("keyint={keyint}:min-keyint={keyint}:scenecut=0");
        if !media.x264_params.is_empty() {
            params.push(':');
            params.push_str(media.x264_params);
        }
        args.extend(
            [
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
                "-pix_fmt",
                "yuv420p",
            ]
            .map(String::from),
        );
        // zerolatency turns B-frames off; put them back when asked for.
        args.extend(["-bf".into(), media.bframes.to_string()]);
        args.extend(["-x264-params".into(), params]);
    } else {
        args.extend(media.video_override.iter().map(|s| s.to_string()));
    }
    args.extend(media.audio.iter().map(|s| s.to_string()));
    args.extend(["-f".into(), media.format.into()]);
    args
}

/// Encodes `media` into `out` with ffmpeg; panics with ffmpeg's stderr on failure.
pub fn generate_media(out: &Path, media: &Media) -> PathBuf {
    let output = Command::new("ffmpeg")
        .args(ffmpeg_args(media))
        .arg("-y")
        .arg(out)
        .output()
        .expect("run ffmpeg");
    assert!(
        output.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out.to_path_buf()
}

/// `ffmpeg_args` with `-re` before every input, so that ffmpeg encodes and sends in real time
/// like a live encoder.
pub fn ffmpeg_live_args(media: &Media) -> Vec<String> {
    let args = ffmpeg_args(media);
    let mut live = vec!["-nostdin".to_string()];
    for (i, arg) in args.iter().enumerate() {
        if arg == "-f" && args.get(i + 1).is_some_and(|next| next == "lavfi") {
            live.push("-re".into());
        }
        live.push(arg.clone());
    }
    live
}

/// A child process that is killed and reaped on drop; its stderr is collected by a thread, whose
/// end (stderr closed) tells that the process exited.
pub struct ChildGuard {
    child: std::process::Child,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl ChildGuard {
    pub fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn child process");
        let mut pipe = child.stderr.take().expect("piped stderr");
        let (sender, stderr) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            let _ = sender.send(text);
        });
        ChildGuard { child, stderr }
    }

    /// Waits for the process to end; panics after `timeout`. Returns its status and stderr.
    pub fn wait_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> (std::process::ExitStatus, String) {
        let stderr = self
            .stderr
            .recv_timeout(timeout)
            .expect("child process did not end in time");
        (self.child.wait().expect("wait for child"), stderr)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Publishes `media` in real time with ffmpeg to `url` (rtmp:// or rtmps://).
pub fn publish_live(media: &Media, url: &str) -> ChildGuard {
    ChildGuard::spawn(
        Command::new("ffmpeg")
            .args(ffmpeg_live_args(media))
            .arg(url),
    )
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
