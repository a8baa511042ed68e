//! The browser dashboard: static files from `controld/dashboard/`, embedded at build time and
//! served at `/` and `/assets/<file>` (the embeddable player's script and hls.js among them).
//! The pages call the same `/client/v4` API as any client.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const JS: &str = "text/javascript; charset=utf-8";

/// `(file name under /assets/, content type, body)`.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.js", JS, include_bytes!("../dashboard/app.js")),
    ("api.js", JS, include_bytes!("../dashboard/api.js")),
    ("dom.js", JS, include_bytes!("../dashboard/dom.js")),
    ("status.js", JS, include_bytes!("../dashboard/status.js")),
    (
        "input-page.js",
        JS,
        include_bytes!("../dashboard/input-page.js"),
    ),
    ("outputs.js", JS, include_bytes!("../dashboard/outputs.js")),
    ("player.js", JS, include_bytes!("../dashboard/player.js")),
    // The embeddable player's (`/{id}/iframe`, `/{id}/watch`; see api::playback::embed).
    ("embed.js", JS, include_bytes!("../dashboard/embed.js")),
    (
        "embed.css",
        "text/css; charset=utf-8",
        include_bytes!("../dashboard/embed.css"),
    ),
    // The npm-installed hls.js, or a stand-in that explains why the preview is missing (build.rs).
    ("hls.min.js", JS, include_bytes!(env!("CONTROLD_HLS_JS"))),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../dashboard/style.css"),
    ),
];

const INDEX_HTML: &str = include_str!("../dashboard/index.html");

/// Scripts only from this origin; media and hls.js's worker also from `blob:` (Media Source
/// Extensions); recordings may be fetched from the `--public-url` host, hence any http(s) connect.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self' http: https:; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn router() -> Router {
    let index = get(|| async {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            INDEX_HTML,
        )
    });
    ASSETS.iter().fold(
        Router::new().route("/", index),
        |router, &(name, content_type, body)| {
            router.route(
                &format!("/assets/{name}"),
                get(move || async move { asset(content_type, body) }),
            )
        },
    )
}

// `no-cache` (revalidate every time): the files change with the binary, and they are small
// enough that a dashboard reload may fetch them again.
fn asset(content_type: &'static str, body: &'static [u8]) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    async fn fetch(path: &str) -> (StatusCode, String) {
        let response = router()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        (response.status(), content_type)
    }

    #[tokio::test]
    async fn serves_the_page_and_every_asset_it_references() {
        assert_eq!(
            fetch("/").await,
            (StatusCode::OK, "text/html; charset=utf-8".to_owned())
        );
        for (name, content_type, _) in ASSETS {
            assert_eq!(
                fetch(&format!("/assets/{name}")).await,
                (StatusCode::OK, (*content_type).to_owned()),
                "{name}"
            );
        }
    }

    #[test]
    fn every_module_import_is_an_embedded_asset() {
        for (name, _, body) in ASSETS.iter().filter(|(name, ..)| *name != "hls.min.js") {
            let text = std::str::from_utf8(body).unwrap();
            for import in text.lines().filter_map(|l| l.split(" from \"./").nth(1)) {
                let file = import.trim_end_matches("\";");
                assert!(
                    ASSETS.iter().any(|(n, ..)| *n == file),
                    "{name} imports {file}, which is not embedded"
                );
            }
        }
        for referenced in INDEX_HTML
            .split("\"/assets/")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
        {
            assert!(
                ASSETS.iter().any(|(n, ..)| *n == referenced),
                "index.html references {referenced}"
            );
        }
    }
}
