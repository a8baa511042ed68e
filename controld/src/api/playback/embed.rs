//! The embeddable player: `GET /{id}/iframe` (a page for an `<iframe>`) and `GET /{id}/watch`
//! (the same player as a page of its own). A `<video>` played by the hls.js the dashboard
//! serves (`/assets/hls.min.js`, with `/assets/embed.js` driving it), from the manifest of the
//! page's own id (`manifest/video.m3u8`, relative: a signed-URL token in the path is used as
//! is), with Cloudflare's Stream Player options that apply: `autoplay`, `muted`, `loop`,
//! `controls`, `poster`, `startTime`, `preload`.
//!
//! Access: the page goes through `authorize` like every playback URL (a navigation's `Referer`
//! is the embedding page, checked against `allowedOrigins`), and its framing is restricted the
//! same way: `Content-Security-Policy: frame-ancestors` lists the allowed origins (`*` when any
//! site may play). The page sends no referrer, so its own manifest and segment requests (same
//! origin, hence without `Origin`) are not judged as coming from the embedding site a second
//! time.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::access::{ClientAddr, authorize};
use crate::AppState;
use crate::api::envelope::{ApiError, codes};
use crate::api::openapi::Envelope;
use crate::ids;

/// The page's policy but for `frame-ancestors`: scripts and styles only from controld (hls.js,
/// embed.js), media from MSE `blob:`s, a poster from anywhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src http: https: data:; media-src 'self' blob:; worker-src 'self' blob:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'";

const MAX_POSTER_LEN: usize = 2048;

/// Which page: the two differ only in how the player fills the window.
#[derive(Clone, Copy)]
enum Page {
    Iframe,
    Watch,
}

/// The player options of the page's query.
#[derive(Debug, Default, PartialEq)]
struct PlayerOptions {
    autoplay: bool,
    muted: bool,
    looped: bool,
    controls: bool,
    poster: Option<String>,
    start_seconds: f64,
    preload: &'static str,
}

fn bad_option(name: &str, value: &str, expected: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        codes::INVALID_REQUEST,
        format!("query parameter {name}={value:?}: expected {expected}"),
    )
}

/// `true`/`false`; present without a value (`?muted`) is `true`.
fn flag(query: &HashMap<String, String>, name: &str, default: bool) -> Result<bool, ApiError> {
    match query.get(name).map(String::as_str) {
        None => Ok(default),
        Some("true" | "") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(bad_option(name, other, "true or false")),
    }
}

impl PlayerOptions {
    fn parse(query: &HashMap<String, String>) -> Result<PlayerOptions, ApiError> {
        let poster = match query.get("poster") {
            None => None,
            Some(url) if url.len() <= MAX_POSTER_LEN && is_poster_url(url) => Some(url.clone()),
            Some(url) => {
                return Err(bad_option(
                    "poster",
                    url,
                    "an http(s) URL or a path, at most 2048 characters",
                ));
            }
        };
        let start_seconds = match query.get("startTime") {
            None => 0.0,
            Some(t) => crate::timefmt::parse_offset(t)
                .map(|d| d.as_secs_f64())
                .ok_or_else(|| bad_option("startTime", t, "seconds, or a time like 1h12m27s"))?,
        };
        let preload = match query.get("preload").map(String::as_str) {
            None | Some("metadata") => "metadata",
            Some("auto" | "true" | "") => "auto",
            Some("none" | "false") => "none",
            Some(other) => return Err(bad_option("preload", other, "auto, metadata or none")),
        };
        Ok(PlayerOptions {
            autoplay: flag(query, "autoplay", false)?,
            muted: flag(query, "muted", false)?,
            looped: flag(query, "loop", false)?,
            controls: flag(query, "controls", true)?,
            poster,
            start_seconds,
            preload,
        })
    }
}

fn is_poster_url(url: &str) -> bool {
    let path = url.starts_with('/') && !url.starts_with("//");
    (path || url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(char::is_control)
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page. `viewer` is minted for it, so that its manifest probe and its player count as
/// one viewer.
fn render(page: Page, options: &PlayerOptions, viewer: &str) -> String {
    let mut attributes = String::new();
    for (on, name) in [
        (options.autoplay, "autoplay"),
        (options.muted, "muted"),
        (options.looped, "loop"),
        (options.controls, "controls"),
    ] {
        if on {
            attributes.push(' ');
            attributes.push_str(name);
        }
    }
    if let Some(poster) = &options.poster {
        attributes.push_str(&format!(" poster=\"{}\"", escape_html(poster)));
    }
    let class = match page {
        Page::Iframe => "iframe",
        Page::Watch => "watch",
    };
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>cfstream player</title>\n\
         <link rel=\"stylesheet\" href=\"/assets/embed.css\">\n</head>\n<body class=\"{class}\">\n\
         <video id=\"player\" playsinline preload=\"{preload}\"{attributes} \
         data-manifest=\"manifest/video.m3u8?vid={viewer}\" data-start-time=\"{start}\"></video>\n\
         <p id=\"player-state\" role=\"status\"></p>\n\
         <script src=\"/assets/hls.min.js\"></script>\n\
         <script src=\"/assets/embed.js\"></script>\n</body>\n</html>\n",
        preload = options.preload,
        start = options.start_seconds,
    )
}

/// `frame-ancestors` from `allowedOrigins` entries (`host`, `*.host`, `*`, with an optional
/// `:port`: CSP host sources of the same meaning); `*` when any site may embed.
fn frame_ancestors(allowed: Option<&[String]>) -> String {
    let sources: Vec<&str> = allowed
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .filter(|o| {
            o.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.*:".contains(&b))
        })
        .collect();
    match allowed {
        Some(list) if !list.is_empty() && sources.is_empty() => "frame-ancestors 'none'".into(),
        Some(list) if !list.is_empty() => format!("frame-ancestors {}", sources.join(" ")),
        _ => "frame-ancestors *".into(),
    }
}

fn serve(
    page: Page,
    state: &AppState,
    id: &str,
    client: ClientAddr,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let (_, cors) = authorize(state, id, client.0, headers)?;
    let options = PlayerOptions::parse(query)?;
    let policy = format!(
        "{CONTENT_SECURITY_POLICY}; {}",
        frame_ancestors(cors.allowed_origins.as_deref())
    );
    let policy =
        HeaderValue::from_str(&policy).map_err(|e| ApiError::internal(format!("CSP: {e}")))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CONTENT_SECURITY_POLICY, policy),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        render(page, &options, &ids::new_viewer_id()),
    )
        .into_response())
}

#[utoipa::path(
    get,
    operation_id = "playback_iframe",
    path = "/{id}/iframe",
    tag = "playback",
    params(
        ("id" = String, Path, description = "Video or live input uid, or a signed-URL token naming one"),
        ("autoplay" = Option<bool>, Query, description = "Start playing at once (browsers require `muted` for that)"),
        ("muted" = Option<bool>, Query, description = "Start muted"),
        ("loop" = Option<bool>, Query, description = "Play again from the start at the end"),
        ("controls" = Option<bool>, Query, description = "Show the player's controls (default true)"),
        ("poster" = Option<String>, Query, description = "Image shown before playback: an http(s) URL or a path"),
        ("startTime" = Option<String>, Query, description = "Where playback starts: seconds (`90`) or `1h12m27s`"),
        ("preload" = Option<String>, Query, description = "`auto`, `metadata` (default) or `none`"),
    ),
    responses(
        (status = 200, description = "The player page; `Content-Security-Policy: frame-ancestors` from allowedOrigins", content_type = "text/html", body = String),
        (status = "4XX", description = "Refused (401 signed URL required, 403 origin), a bad option (400), not found (404)", body = Envelope<Option<String>>),
    ),
    security(()),
)]
pub(super) async fn iframe(
    State(state): State<AppState>,
    Path(id): Path<String>,
    client: ClientAddr,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    serve(Page::Iframe, &state, &id, client, &headers, &query)
}

#[utoipa::path(
    get,
    operation_id = "playback_watch",
    path = "/{id}/watch",
    tag = "playback",
    params(
        ("id" = String, Path, description = "Video or live input uid, or a signed-URL token naming one"),
        ("autoplay" = Option<bool>, Query, description = "As for `/{id}/iframe`"),
        ("muted" = Option<bool>, Query, description = "As for `/{id}/iframe`"),
        ("loop" = Option<bool>, Query, description = "As for `/{id}/iframe`"),
        ("controls" = Option<bool>, Query, description = "As for `/{id}/iframe`"),
        ("poster" = Option<String>, Query, description = "As for `/{id}/iframe`"),
        ("startTime" = Option<String>, Query, description = "As for `/{id}/iframe`"),
        ("preload" = Option<String>, Query, description = "As for `/{id}/iframe`"),
    ),
    responses(
        (status = 200, description = "The player as a page of its own (a video's `preview`)", content_type = "text/html", body = String),
        (status = "4XX", description = "As for `/{id}/iframe`", body = Envelope<Option<String>>),
    ),
    security(()),
)]
pub(super) async fn watch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    client: ClientAddr,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    serve(Page::Watch, &state, &id, client, &headers, &query)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> Result<PlayerOptions, ApiError> {
        let query = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        PlayerOptions::parse(&query)
    }

    #[test]
    fn options_default_to_controls_and_bad_values_name_the_parameter() {
        let defaults = options(&[]).unwrap();
        assert!(defaults.controls && !defaults.autoplay && !defaults.muted);
        assert_eq!(defaults.preload, "metadata");
        let set = options(&[
            ("autoplay", "true"),
            ("muted", ""),
            ("loop", "true"),
            ("controls", "false"),
            ("poster", "https://example.com/p.jpg?a=1&b=\"2\""),
            ("startTime", "1m30s"),
            ("preload", "none"),
        ])
        .unwrap();
        assert!(set.autoplay && set.muted && set.looped && !set.controls);
        assert_eq!(set.start_seconds, 90.0);
        let page = render(Page::Iframe, &set, "abcdefghijkl");
        assert!(
            page.contains(
                " autoplay muted loop poster=\"https://example.com/p.jpg?a=1&amp;b=&quot;2&quot;\""
            ),
            "{page}"
        );
        assert!(
            page.contains(
                "data-manifest=\"manifest/video.m3u8?vid=abcdefghijkl\" data-start-time=\"90\""
            ),
            "{page}"
        );
        assert!(!page.contains("controls"), "{page}");
        for (name, value) in [
            ("autoplay", "yes"),
            ("poster", "javascript:alert(1)"),
            ("poster", "//elsewhere.example/p.jpg"),
            ("startTime", "soon"),
            ("preload", "everything"),
        ] {
            let err = options(&[(name, value)]).unwrap_err();
            assert!(err.message.contains(name), "{name}: {}", err.message);
        }
    }

    #[test]
    fn framing_follows_allowed_origins() {
        let list = |o: &[&str]| o.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(frame_ancestors(None), "frame-ancestors *");
        assert_eq!(frame_ancestors(Some(&[])), "frame-ancestors *");
        assert_eq!(
            frame_ancestors(Some(&list(&[
                "example.com",
                "*.example.net",
                "localhost:3000"
            ]))),
            "frame-ancestors example.com *.example.net localhost:3000"
        );
        assert_eq!(
            frame_ancestors(Some(&list(&["a b; script-src *"]))),
            "frame-ancestors 'none'"
        );
    }
}
