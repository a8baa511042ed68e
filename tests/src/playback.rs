//! Playback over HTTP as a player does it: the multivariant playlist, the media playlist it
//! names, the segments that one lists.

use crate::http_get;

/// GET that must answer 200 with text.
pub fn text(url: &str) -> String {
    let (status, _, body) = http_get(url);
    assert_eq!(status, 200, "GET {url}: {}", String::from_utf8_lossy(&body));
    String::from_utf8(body).unwrap_or_else(|e| panic!("GET {url}: not UTF-8: {e}"))
}

/// `relative` resolved against `base` (a URL whose last path segment is a file name).
pub fn resolve(base: &str, relative: &str) -> String {
    let without_query = base.split('?').next().unwrap_or(base);
    let dir = &without_query[..without_query.rfind('/').map_or(0, |i| i + 1)];
    format!("{dir}{relative}")
}

/// The URL of the main (video) media playlist a multivariant playlist names, or `None` when
/// the manifest does not answer 200 (204: not live).
pub fn media_playlist_url(multivariant_url: &str) -> Option<String> {
    let (status, _, body) = http_get(multivariant_url);
    if status != 200 {
        return None;
    }
    let text = String::from_utf8(body).ok()?;
    let uri = text
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or_else(|| panic!("no variant in {multivariant_url}:\n{text}"));
    Some(resolve(multivariant_url, uri))
}

/// The URIs of the segments a media playlist lists (not its parts), in order.
pub fn segment_uris(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// `EXT-X-MEDIA-SEQUENCE`.
pub fn media_sequence(playlist: &str) -> u64 {
    tag_value(playlist, "#EXT-X-MEDIA-SEQUENCE:")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no media sequence:\n{playlist}"))
}

/// `EXT-X-TARGETDURATION`, seconds.
pub fn target_duration(playlist: &str) -> u64 {
    tag_value(playlist, "#EXT-X-TARGETDURATION:")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no target duration:\n{playlist}"))
}

/// The `EXTINF` durations, seconds.
pub fn segment_seconds(playlist: &str) -> Vec<f64> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|v| v.split(',').next().unwrap_or("").parse().unwrap_or(0.0))
        .collect()
}

pub fn is_ended(playlist: &str) -> bool {
    playlist.lines().any(|l| l.trim_end() == "#EXT-X-ENDLIST")
}

fn tag_value<'a>(playlist: &'a str, tag: &str) -> Option<&'a str> {
    playlist.lines().find_map(|l| l.strip_prefix(tag))
}

/// The URL of the audio media playlist a multivariant playlist names (`EXT-X-MEDIA` `URI`).
pub fn audio_playlist_url(multivariant_url: &str) -> Option<String> {
    let text = text(multivariant_url);
    let media = text.lines().find(|l| l.starts_with("#EXT-X-MEDIA:"))?;
    Some(resolve(multivariant_url, quoted_attribute(media, "URI")?))
}

fn quoted_attribute<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

/// Each listed segment with the init segment (`EXT-X-MAP`) it needs, as URIs of the playlist.
pub fn segments_with_init(playlist: &str) -> Vec<(String, String)> {
    let mut init = None;
    let mut segments = Vec::new();
    for line in playlist.lines() {
        if let Some(map) = line.strip_prefix("#EXT-X-MAP:") {
            init = quoted_attribute(map, "URI").map(str::to_owned);
        } else if !line.is_empty() && !line.starts_with('#') {
            let init = init
                .clone()
                .unwrap_or_else(|| panic!("no EXT-X-MAP:\n{playlist}"));
            segments.push((init, line.to_owned()));
        }
    }
    segments
}

/// Init segment + media segment (URIs relative to `playlist_url`) in one file, which ffmpeg and
/// ffprobe read as a fragmented MP4. The file lives as long as the returned handle.
pub fn standalone_segment(
    playlist_url: &str,
    init: &str,
    segment: &str,
) -> tempfile::NamedTempFile {
    let mut bytes = crate::http_get(&resolve(playlist_url, init)).2;
    let (status, _, media) = crate::http_get(&resolve(playlist_url, segment));
    assert_eq!(status, 200, "{segment}");
    bytes.extend(media);
    let file = tempfile::Builder::new().suffix(".mp4").tempfile().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    file
}

/// What a recording directory's `index.log` says (read here independently of the writer's
/// parser): segments listed per track, whether it ended.
#[derive(Debug, Default)]
pub struct IndexLog {
    /// `(kind, sequence, seconds, dn)` of each `seg` record, in order.
    pub segments: Vec<(String, u64, f64, u64)>,
    pub ended: bool,
}

impl IndexLog {
    pub fn read(dir: &std::path::Path) -> IndexLog {
        let text = std::fs::read_to_string(dir.join("index.log")).unwrap_or_default();
        let mut log = IndexLog::default();
        let mut timescales = std::collections::HashMap::new();
        // A last line without '\n' is a torn write, not a record.
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        for line in complete.lines() {
            let mut words = line.split(' ');
            let record = words.next().unwrap_or("");
            let fields: std::collections::HashMap<&str, &str> =
                words.filter_map(|w| w.split_once('=')).collect();
            let number = |k: &str| fields.get(k).and_then(|v| v.parse::<u64>().ok());
            match record {
                "track" => {
                    timescales.insert(fields["kind"].to_owned(), number("timescale").unwrap());
                }
                "seg" => {
                    let kind = fields["kind"].to_owned();
                    let seconds = number("d").unwrap() as f64 / timescales[&kind] as f64;
                    log.segments.push((
                        kind,
                        number("seq").unwrap(),
                        seconds,
                        number("dn").unwrap(),
                    ));
                }
                "trim" => {
                    let first = number("seq").unwrap();
                    log.segments.retain(|s| s.1 >= first);
                }
                "end" => log.ended = true,
                _ => {}
            }
        }
        log
    }

    /// Seconds of video listed.
    pub fn video_seconds(&self) -> f64 {
        self.segments
            .iter()
            .filter(|s| s.0 == "v")
            .map(|s| s.2)
            .sum()
    }

    /// `(init file, segment file)` of each listed segment of `kind`.
    pub fn files(&self, kind: &str) -> Vec<(String, String)> {
        self.segments
            .iter()
            .filter(|s| s.0 == kind)
            .map(|s| {
                (
                    format!("init-{:08}.{kind}.mp4", s.3),
                    format!("seg-{:08}.{kind}.m4s", s.1),
                )
            })
            .collect()
    }
}

/// Init + segment files of a recording directory concatenated into one playable file.
pub fn standalone_file(
    dir: &std::path::Path,
    init: &str,
    segment: &str,
) -> tempfile::NamedTempFile {
    let mut bytes = std::fs::read(dir.join(init)).unwrap_or_else(|e| panic!("{init}: {e}"));
    bytes.extend(std::fs::read(dir.join(segment)).unwrap_or_else(|e| panic!("{segment}: {e}")));
    let file = tempfile::Builder::new().suffix(".mp4").tempfile().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    file
}
