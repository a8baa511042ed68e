//! Simulcast outputs ("Stream Connect"): RTMP(S) destinations a live input is relayed to.
//! The rows live here; `pipeline::outputs` attaches them to running pipelines.

pub mod store;

/// Outputs per live input, as on Cloudflare.
pub const MAX_PER_INPUT: usize = 50;

/// The `location` of `rtmp2sink`: `<url>/<streamKey>` (an empty key leaves the URL as is).
pub fn location(url: &str, stream_key: &str) -> String {
    if stream_key.is_empty() {
        url.to_owned()
    } else {
        format!("{}/{stream_key}", url.trim_end_matches('/'))
    }
}
