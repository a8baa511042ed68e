//! Test media for cfstream's tests, made in the test: a lavfi test picture and tone encoded by
//! ffmpeg (x264 and AAC unless a test asks otherwise), written to a file or published in real
//! time to an RTMP(S) or SRT URL. Every test of the workspace encodes through [`ffmpeg_args`],
//! so that what a test publishes is said by its [`Media`] alone.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// ffmpeg audio arguments: AAC at 64 kbps, 44.1 kHz.
pub const AAC: &[&str] = &["-c:a", "aac", "-b:a", "64k", "-ar", "44100"];
/// ffmpeg video arguments for HEVC (x265), a codec Cloudflare refuses: a `video_override`.
pub const X265: &[&str] = &[
    "-c:v",
    "libx265",
    "-preset",
    "ultrafast",
    "-x265-params",
    "log-level=error",
];
/// The lavfi tone: 440 Hz at 44.1 kHz.
pub const TONE: &str = "sine=frequency=440:sample_rate=44100";

/// What to encode: small and short.
#[derive(Clone, Debug)]
pub struct Media {
    pub seconds: f64,
    pub fps: &'static str,
    pub size: &'static str,
    /// A lavfi video graph replacing testsrc2 (it must make `size` at `fps` itself), e.g. a
    /// picture that encodes its time; `None` for testsrc2.
    pub picture: Option<&'static str>,
    /// Keyframe interval in seconds (x264 `keyint` = fps × this, scene cuts off).
    pub keyint_seconds: f64,
    /// Extra x264 options appended to `-x264-params`, e.g. `open-gop=1`.
    pub x264_params: &'static str,
    /// x264 `-preset`; `None` for x264's default (lookahead, B-frames).
    pub preset: Option<&'static str>,
    /// x264 `-tune`; `None` for none.
    pub tune: Option<&'static str>,
    /// `-bf`; `None` leaves the preset's.
    pub bframes: Option<u32>,
    /// ffmpeg audio codec arguments; empty for no audio.
    pub audio: &'static [&'static str],
    /// The lavfi audio source.
    pub tone: &'static str,
    /// ffmpeg video codec arguments replacing x264 entirely when non-empty.
    pub video_override: &'static [&'static str],
    /// Container: "flv", "mpegts", "mp4".
    pub format: &'static str,
}

impl Default for Media {
    /// 10 s of 320x240 at 30 fps, 4 s GOPs with 2 B-frames (x264 ultrafast, zerolatency), AAC.
    fn default() -> Self {
        Media {
            seconds: 10.0,
            fps: "30",
            size: "320x240",
            picture: None,
            keyint_seconds: 4.0,
            x264_params: "",
            preset: Some("ultrafast"),
            tune: Some("zerolatency"),
            // zerolatency turns B-frames off; put them back.
            bframes: Some(2),
            audio: AAC,
            tone: TONE,
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

/// The ffmpeg arguments that encode `media` (without the output path).
pub fn ffmpeg_args(media: &Media) -> Vec<String> {
    let mut args: Vec<String> = ["-hide_banner", "-loglevel", "error"]
        .map(String::from)
        .into();
    args.extend(["-f".into(), "lavfi".into(), "-i".into()]);
    args.push(match media.picture {
        Some(graph) => graph.to_owned(),
        None => format!("testsrc2=size={}:rate={}", media.size, media.fps),
    });
    if !media.audio.is_empty() {
        args.extend(["-f", "lavfi", "-i", media.tone].map(String::from));
    }
    args.extend(["-t".into(), format!("{}", media.seconds)]);
    if media.video_override.is_empty() {
        args.extend(x264_args(media));
    } else {
        args.extend(media.video_override.iter().map(|s| s.to_string()));
    }
    args.extend(media.audio.iter().map(|s| s.to_string()));
    args.extend(["-f".into(), media.format.into()]);
    args
}

fn x264_args(media: &Media) -> Vec<String> {
    let keyint = (fps_value(media.fps) * media.keyint_seconds).round() as u32;
    let mut params = format!("keyint={keyint}:min-keyint={keyint}:scenecut=0");
    if !media.x264_params.is_empty() {
        params.push(':');
        params.push_str(media.x264_params);
    }
    let mut args = vec!["-c:v".to_string(), "libx264".into()];
    let options = [("-preset", media.preset), ("-tune", media.tune)];
    for (option, value) in options {
        if let Some(value) = value {
            args.extend([option.to_string(), value.to_string()]);
        }
    }
    args.extend(["-pix_fmt".into(), "yuv420p".into()]);
    if let Some(bframes) = media.bframes {
        args.extend(["-bf".into(), bframes.to_string()]);
    }
    args.extend(["-x264-params".into(), params]);
    args
}

/// Encodes `media` into `out`; panics with ffmpeg's stderr on failure.
pub fn generate_media(out: &Path, media: &Media) -> PathBuf {
    let output = Command::new("ffmpeg")
        .args(ffmpeg_args(media))
        .arg("-y")
        .arg(out)
        .output()
        .expect("run ffmpeg (is it installed? scripts/setup.sh)");
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

/// The URL ffmpeg calls an SRT listener with: the stream id and, if any, the passphrase (AES-128)
/// as query parameters. Publish `Media { format: "mpegts", .. }` to it.
pub fn srt_url(addr: impl std::fmt::Display, stream_id: &str, passphrase: Option<&str>) -> String {
    let mut url = format!("srt://{addr}?streamid={stream_id}");
    if let Some(passphrase) = passphrase {
        url.push_str(&format!("&passphrase={passphrase}&pbkeylen=16"));
    }
    url
}

/// Publishes `media` in real time to `url` (rtmp://, rtmps://, or srt:// with `mpegts`).
pub fn publish_live(media: &Media, url: &str) -> ChildGuard {
    ChildGuard::spawn(
        Command::new("ffmpeg")
            .args(ffmpeg_live_args(media))
            .arg(url)
            .stdout(Stdio::null()),
    )
}

/// Like [`publish_live`], with ffmpeg also writing its progress to `progress` every 250 ms
/// (`out_time_us=…` lines): how much media it has sent, whatever the machine's load.
pub fn publish_live_reporting(media: &Media, url: &str, progress: &Path) -> ChildGuard {
    ChildGuard::spawn(
        Command::new("ffmpeg")
            .arg("-progress")
            .arg(progress)
            .args(["-stats_period", "0.25"])
            .args(ffmpeg_live_args(media))
            .arg(url)
            .stdout(Stdio::null()),
    )
}

/// A child process that is killed and reaped on drop; its stderr is collected by a thread, whose
/// end (stderr closed) tells that the process exited.
pub struct ChildGuard {
    child: Child,
    stderr: Receiver<String>,
}

impl ChildGuard {
    pub fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
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
    pub fn wait_timeout(&mut self, timeout: Duration) -> (ExitStatus, String) {
        let stderr = self
            .stderr
            .recv_timeout(timeout)
            .unwrap_or_else(|_| panic!("child process still running after {timeout:?}"));
        (self.child.wait().expect("wait for child"), stderr)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_left_out_are_not_passed() {
        let media = Media {
            preset: None,
            tune: None,
            bframes: None,
            audio: &[],
            ..Media::default()
        };
        let args = ffmpeg_args(&media).join(" ");
        assert!(!args.contains("-preset") && !args.contains("-tune") && !args.contains("-bf"));
        assert!(!args.contains("sine"), "{args}");
        assert!(
            args.contains("keyint=120:min-keyint=120:scenecut=0"),
            "{args}"
        );
        let live = ffmpeg_live_args(&Media::default()).join(" ");
        assert_eq!(live.matches("-re -f lavfi").count(), 2, "{live}");
        assert!(live.contains("-preset ultrafast -tune zerolatency -pix_fmt yuv420p -bf 2"));
    }
}
