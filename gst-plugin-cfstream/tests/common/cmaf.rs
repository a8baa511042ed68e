//! Reading a cfhlssink recording as the server and players get it: `index.log` replayed with
//! cfstream-proto, playlists rendered from that index into a scratch directory (there are none
//! on disk), and init + media segment files joined for ffprobe, since a CMAF media segment
//! does not decode without its init segment.

use std::path::{Path, PathBuf};
use std::process::Command;

use cfstream_proto::index::log::Replay;
use cfstream_proto::index::{
    RecordingIndex, Segment, TrackIndex, TrackKind, init_name, parse_media_name, segment_name,
};
use cfstream_proto::render::SegmentUris;
use cfstream_proto::render::hls::{
    MediaPlaylistOptions, render_media_playlist, render_multivariant,
};

pub use gstcfstream::hls::INDEX_LOG;

/// Replays `dir/index.log` (a torn last line is ignored, as the server does).
pub fn read_index(dir: &Path) -> Replay {
    let path = dir.join(INDEX_LOG);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    cfstream_proto::index::log::replay(&bytes).unwrap_or_else(|e| {
        panic!(
            "{} does not replay: {e}\n{}",
            path.display(),
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// The `kind` track of a replayed index.
pub fn track(index: &RecordingIndex, kind: TrackKind) -> &TrackIndex {
    index
        .track(kind)
        .unwrap_or_else(|| panic!("no {kind:?} track in {:?}", index.tracks))
}

/// `ticks` of `track` in seconds, rounded to the millisecond (what a playlist's EXTINF says).
pub fn seconds(track: &TrackIndex, ticks: u64) -> f64 {
    (ticks as f64 * 1000.0 / f64::from(track.timescale)).round() / 1000.0
}

/// Listed segment durations in seconds.
pub fn durations(track: &TrackIndex) -> Vec<f64> {
    (track.segments.iter())
        .map(|s| seconds(track, s.duration))
        .collect()
}

/// Whether each listed segment starts a discontinuity run.
pub fn discontinuities(track: &TrackIndex) -> Vec<bool> {
    track.segments.iter().map(|s| s.discontinuity).collect()
}

/// Sequence numbers of the segment files of `kind` on disk. Panics on a file that is neither a
/// media file nor `index.log`: the writer leaves no playlist or temporary file behind.
pub fn segment_files(dir: &Path, kind: TrackKind) -> Vec<u64> {
    let mut sequences: Vec<u64> = media_files(dir)
        .into_iter()
        .filter(|&(k, init, _)| k == kind && !init)
        .map(|(_, _, n)| n)
        .collect();
    sequences.sort_unstable();
    sequences
}

/// Every media file in `dir` as `(kind, is_init, number)`.
pub fn media_files(dir: &Path) -> Vec<(TrackKind, bool, u64)> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != INDEX_LOG)
        .map(|name| {
            parse_media_name(&name)
                .unwrap_or_else(|| panic!("{name} in {} is not a media file", dir.display()))
        })
        .collect()
}

/// A scratch directory holding playlists rendered from a recording's index, naming the
/// recording's files by absolute path.
pub struct Playlists {
    _scratch: tempfile::TempDir,
    /// The multivariant playlist (video with audio as a rendition, or the only track).
    pub multivariant: PathBuf,
    video: Option<PathBuf>,
    audio: Option<PathBuf>,
}

impl Playlists {
    /// The media playlist of `kind` (whole recording, no parts).
    pub fn media(&self, kind: TrackKind) -> &Path {
        match kind {
            TrackKind::Video => self.video.as_deref(),
            TrackKind::Audio => self.audio.as_deref(),
        }
        .unwrap_or_else(|| panic!("no {kind:?} playlist"))
    }
}

/// Renders the multivariant and media playlists of `dir/index.log` (the whole recording, as
/// the recording's VOD/EVENT URL shows it).
pub fn playlists(dir: &Path) -> Playlists {
    let replay = read_index(dir);
    let index = replay.index();
    let scratch = tempfile::tempdir().unwrap();
    let prefix = format!("{}/", dir.canonicalize().unwrap().display());
    let name = |kind: TrackKind| format!("{}.m3u8", kind.code());
    let mut rendered = [None, None];
    for (slot, kind) in rendered
        .iter_mut()
        .zip([TrackKind::Video, TrackKind::Audio])
    {
        let Some(track) = index.track(kind) else {
            continue;
        };
        let options = MediaPlaylistOptions {
            uris: SegmentUris {
                prefix: &prefix,
                query: "",
            },
            ..Default::default()
        };
        let path = scratch.path().join(name(kind));
        std::fs::write(&path, render_media_playlist(track, &options)).unwrap();
        *slot = Some(path);
    }
    let multivariant = scratch.path().join("master.m3u8");
    std::fs::write(&multivariant, render_multivariant(index, &name)).unwrap();
    let [video, audio] = rendered;
    Playlists {
        _scratch: scratch,
        multivariant,
        video,
        audio,
    }
}

/// A scratch file holding the init segment of `segment`'s run and `segment`: one fMP4 that
/// decodes on its own.
pub struct Joined {
    _scratch: tempfile::TempDir,
    pub path: PathBuf,
}

/// Joins the init segment of `segment`'s discontinuity run and its media segment file.
pub fn joined(dir: &Path, kind: TrackKind, segment: &Segment) -> Joined {
    joined_files(dir, kind, segment.discontinuity_number, &[segment.sequence])
}

/// Joins init segment `run` of `kind` and media segments `sequences`, in that order.
pub fn joined_files(dir: &Path, kind: TrackKind, run: u64, sequences: &[u64]) -> Joined {
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join(format!("joined.{}.mp4", kind.code()));
    let names = std::iter::once(init_name(kind, run))
        .chain(sequences.iter().map(|&n| segment_name(kind, n)));
    let mut bytes = Vec::new();
    for name in names {
        let file = dir.join(&name);
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        bytes.extend_from_slice(&data);
    }
    std::fs::write(&path, bytes).unwrap();
    Joined {
        _scratch: scratch,
        path,
    }
}

/// What `ffmpeg -v error` prints decoding all of `input` (it must exit successfully). Since
/// ffmpeg remuxes to the null muxer, a DTS that does not increase is an error line too.
/// `-copyts`: FLV's millisecond timestamps (33, 33, 34 ms at 30 fps) shifted by a playlist's
/// start time can round onto the same 1/30 s slot of the null muxer's time base, which ffmpeg
/// then reports although the DTS increase; the timestamps as written are what is checked.
pub fn ffmpeg_errors(input: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-copyts", "-i"])
        .arg(input)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "ffmpeg failed on {}: {stderr}",
        input.display()
    );
    stderr
}

/// ffmpeg decodes all of `input` without printing a single error.
pub fn assert_decodes(input: &Path) {
    let errors = ffmpeg_errors(input);
    assert!(
        errors.is_empty(),
        "ffmpeg errors on {}: {errors}",
        input.display()
    );
}

/// What ffprobe counts (`frames` or `packets`) in stream `stream` ("v:0", "a:0") of `input`.
fn probe_count(input: &Path, stream: &str, what: &str) -> u64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            &format!("-count_{what}"),
            "-select_streams",
            stream,
        ])
        .args([
            "-show_entries",
            &format!("stream=nb_read_{what}"),
            "-of",
            "default=nw=1:nk=1",
        ])
        .arg(input)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no {what} count for {stream} of {}: {text}",
                input.display()
            )
        })
}

/// Frames ffprobe decodes in stream `stream` of `input`.
pub fn count_frames(input: &Path, stream: &str) -> u64 {
    probe_count(input, stream, "frames")
}

/// Packets (samples) ffprobe reads in stream `stream` of `input`, without decoding them.
pub fn count_packets(input: &Path, stream: &str) -> u64 {
    probe_count(input, stream, "packets")
}

/// PTS (s) of the first packet of `stream` ("v:0", "a:0") in `input`.
pub fn first_pts(input: &Path, stream: &str) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", stream])
        .args(["-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(input)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no packet of {stream} in {}: {text}", input.display()))
}

/// The `baseMediaDecodeTime` of every fragment (`moof`) of an fMP4 file, in file order: one per
/// part of a CMAF segment.
pub fn fragment_decode_times(path: &Path) -> Vec<u64> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    boxes(&data)
        .filter(|(kind, _)| kind == b"moof")
        .map(|(_, moof)| {
            let tfdt = boxes(moof)
                .find(|(k, _)| k == b"traf")
                .and_then(|(_, traf)| boxes(traf).find(|(k, _)| k == b"tfdt"))
                .unwrap_or_else(|| panic!("moof without traf/tfdt in {}", path.display()))
                .1;
            // FullBox: version (1 byte), flags (3), then a 32- or 64-bit time.
            match tfdt[0] {
                1 => u64::from_be_bytes(tfdt[4..12].try_into().unwrap()),
                _ => u64::from(u32::from_be_bytes(tfdt[4..8].try_into().unwrap())),
            }
        })
        .collect()
}

/// The boxes (type, body) one after the other in `data` (ISO/IEC 14496-12 §4.2).
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() < 8 {
            return None;
        }
        let size32 = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = rest[4..8].try_into().unwrap();
        let (header, size) = match size32 {
            1 => (
                16,
                u64::from_be_bytes(rest.get(8..16)?.try_into().unwrap()) as usize,
            ),
            0 => (8, rest.len()),
            n => (8, n),
        };
        if size < header || size > rest.len() {
            panic!(
                "box {:?} of {size} bytes overruns",
                String::from_utf8_lossy(&kind)
            );
        }
        let body = &rest[header..size];
        rest = &rest[size..];
        Some((kind, body))
    })
}

/// `haystack` holds `needle` somewhere.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// cfhlssink's `stats` property: `(dts-corrected, dropped-before-keyframe,
/// segments-over-target)`.
pub fn stats(sink: &gst::Element) -> (u64, u64, u64) {
    use gst::prelude::*;
    let stats = sink.property::<gst::Structure>("stats");
    assert_eq!(stats.name(), "cfhlssink-stats", "{stats}");
    let field = |name: &str| {
        stats
            .get::<u64>(name)
            .unwrap_or_else(|e| panic!("{name} in {stats}: {e}"))
    };
    (
        field("dts-corrected"),
        field("dropped-before-keyframe"),
        field("segments-over-target"),
    )
}

/// `dir/index.log` as text, for failure messages.
pub fn index_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(INDEX_LOG)).unwrap_or_else(|e| e.to_string())
}
