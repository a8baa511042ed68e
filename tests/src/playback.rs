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
