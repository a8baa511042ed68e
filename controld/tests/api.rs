//! The HTTP surface in process: `controld::app(state)` with a temporary SQLite store, driven
//! with `tower::ServiceExt::oneshot` (no binary, no network but the pipeline manager's RTMP
//! listener on an OS-chosen loopback port). Validation, error envelopes and the API additions
//! for Cloudflare's SDKs; tests/tests/controld_*.rs drive the real binary.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use controld::store::videos;
use controld::{ids, timefmt};
use serde_json::{Value, json};
use tower::ServiceExt;

mod common;

use common::*;

/// A request to send: method, path, bearer token, headers, body.
struct Call<'a> {
    method: &'a str,
    path: String,
    token: Option<&'a str>,
    headers: Vec<(&'a str, String)>,
    body: Option<String>,
}

fn api<'a>(method: &'a str, path: &str) -> Call<'a> {
    Call {
        method,
        path: format!("/client/v4/accounts/{ACCOUNT}/stream{path}"),
        token: Some(TOKEN),
        headers: Vec::new(),
        body: None,
    }
}

impl<'a> Call<'a> {
    fn json(mut self, body: Value) -> Self {
        self.body = Some(body.to_string());
        self
    }

    fn raw(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }

    fn token(mut self, token: Option<&'a str>) -> Self {
        self.token = token;
        self
    }
}

impl TestApp {
    /// `(status, JSON body)`; every answer must be JSON.
    async fn send(&self, call: Call<'_>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(call.method).uri(&call.path);
        if let Some(token) = call.token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if call.body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(call.body.map_or_else(Body::empty, Body::from))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{} → {status}: not JSON ({e}): {:?}",
                call.path,
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, json)
    }

    /// `result` of a call that must succeed.
    async fn ok(&self, call: Call<'_>) -> Value {
        let what = format!("{} {}", call.method, call.path);
        let (status, json) = self.send(call).await;
        assert_eq!(status, StatusCode::OK, "{what}: {json}");
        assert_eq!(json["success"], true, "{json}");
        json["result"].clone()
    }

    /// The error of a call that must fail with `status` and `code`; returns the error item.
    async fn error(&self, call: Call<'_>, status: StatusCode, code: u32) -> Value {
        let what = format!("{} {}", call.method, call.path);
        let (got, json) = self.send(call).await;
        assert_eq!(got, status, "{what}: {json}");
        assert_eq!(json["success"], false, "{json}");
        assert!(json["result"].is_null(), "{json}");
        assert_eq!(json["messages"], json!([]), "{json}");
        assert_eq!(json["errors"][0]["code"], code, "{what}: {json}");
        json["errors"][0].clone()
    }

    /// A finished recording of `input`, as the pipeline would have left it.
    fn recording(&self, input: &str, creator: Option<&str>, seconds: f64) -> String {
        let uid = ids::new_uid();
        let now = timefmt::now();
        let video = videos::Video {
            uid: uid.clone(),
            account_id: ACCOUNT.into(),
            live_input: input.into(),
            created: now.clone(),
            modified: now.clone(),
            state: videos::STATE_LIVE.into(),
            ready_to_stream_at: None,
            duration: -1.0,
            meta: json!({"name": "broadcast"}),
            creator: creator.map(str::to_owned),
            require_signed_urls: false,
            allowed_origins: None,
        };
        self.store
            .write_blocking(|c| {
                videos::insert(c, &video)?;
                videos::mark_ready(c, &uid, seconds, &now)
            })
            .unwrap();
        uid
    }
}

const UNKNOWN: &str = "0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn bodies_that_are_not_json_or_have_wrong_types_name_the_field() {
    let app = test_app().await;
    let e = app
        .error(
            api("POST", "/live_inputs").raw("not json"),
            StatusCode::BAD_REQUEST,
            10400,
        )
        .await;
    assert!(e.get("source").is_none(), "no field to point at: {e}");
    // Cut short inside a field: the field is named.
    let e = app
        .error(
            api("POST", "/live_inputs").raw("{\"meta\": "),
            StatusCode::BAD_REQUEST,
            10400,
        )
        .await;
    assert_eq!(e["source"]["pointer"], "/meta", "{e}");

    for (body, pointer) in [
        (
            json!({"recording": {"timeoutSeconds": "ten"}}),
            "/recording/timeoutSeconds",
        ),
        (
            json!({"recording": {"mode": "sometimes"}}),
            "/recording/mode",
        ),
        (json!({"enabled": "yes"}), "/enabled"),
        (
            json!({"deleteRecordingAfterDays": 3}),
            "/deleteRecordingAfterDays",
        ),
        (
            json!({"recording": {"allowedOrigins": ["ok.test", "bad/origin"]}}),
            "/recording/allowedOrigins/1",
        ),
    ] {
        let e = app
            .error(
                api("POST", "/live_inputs").json(body.clone()),
                StatusCode::BAD_REQUEST,
                10400,
            )
            .await;
        assert_eq!(e["source"]["pointer"], pointer, "{body}: {e}");
        let field = pointer.trim_start_matches('/').replace('/', ".");
        assert!(e["message"].as_str().unwrap().contains(&field), "{e}");
    }
    // Nothing was created by the refused requests.
    assert_eq!(app.ok(api("GET", "/live_inputs")).await["total"], 0);

    let e = app
        .error(
            api("PUT", "/webhook").json(json!({"notificationUrl": 7})),
            StatusCode::BAD_REQUEST,
            10400,
        )
        .await;
    assert_eq!(e["source"]["pointer"], "/notificationUrl");
    let e = app
        .error(
            api("PUT", "/webhook").json(json!({"notificationUrl": "ftp://x.test/"})),
            StatusCode::BAD_REQUEST,
            10400,
        )
        .await;
    assert_eq!(e["source"]["pointer"], "/notificationUrl");
}

#[tokio::test]
async fn unknown_ids_are_404_with_their_resource_code() {
    let app = test_app().await;
    let input = app.ok(api("POST", "/live_inputs").json(json!({}))).await;
    let uid = input["uid"].as_str().unwrap();
    let not_found = StatusCode::NOT_FOUND;
    for (call, code) in [
        (api("GET", &format!("/live_inputs/{UNKNOWN}")), 10601),
        (api("GET", "/live_inputs/not-a-uid"), 10601),
        (
            api("PUT", &format!("/live_inputs/{UNKNOWN}")).json(json!({})),
            10601,
        ),
        (api("DELETE", &format!("/live_inputs/{UNKNOWN}")), 10601),
        (api("GET", &format!("/live_inputs/{UNKNOWN}/videos")), 10601),
        (api("GET", &format!("/{UNKNOWN}")), 10602),
        (
            api("POST", &format!("/{UNKNOWN}")).json(json!({"meta": {}})),
            10602,
        ),
        (api("DELETE", &format!("/{UNKNOWN}")), 10602),
        (api("POST", &format!("/{UNKNOWN}/token")), 10602),
        (api("GET", "/webhook"), 10604),
        (api("DELETE", "/webhook"), 10604),
        (
            api("PUT", &format!("/live_inputs/{uid}/outputs/{UNKNOWN}"))
                .json(json!({"enabled": true})),
            10605,
        ),
        (
            api("DELETE", &format!("/live_inputs/{uid}/outputs/{UNKNOWN}")),
            10605,
        ),
        (api("DELETE", &format!("/keys/{UNKNOWN}")), 10610),
        (api("GET", "/no/such/route/here"), 10404),
    ] {
        app.error(call, not_found, code).await;
    }
    let playback = Call {
        path: format!("/{UNKNOWN}/manifest/video.m3u8"),
        token: None,
        ..api("GET", "")
    };
    app.error(playback, not_found, 10603).await;
}

#[tokio::test]
async fn authentication_method_and_size_errors_are_envelopes() {
    let app = test_app().await;
    let e = app
        .error(
            api("GET", "/live_inputs").token(None),
            StatusCode::UNAUTHORIZED,
            10000,
        )
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("Authorization"),
        "{e}"
    );
    app.error(
        api("GET", "/live_inputs").token(Some("wrong")),
        StatusCode::UNAUTHORIZED,
        10000,
    )
    .await;
    // A valid token of another account on this account's path.
    app.error(
        api("GET", "/live_inputs").token(Some(OTHER_TOKEN)),
        StatusCode::FORBIDDEN,
        10009,
    )
    .await;

    app.error(
        api("PATCH", "/live_inputs"),
        StatusCode::METHOD_NOT_ALLOWED,
        10405,
    )
    .await;
    app.error(
        api("PUT", "/storage-usage"),
        StatusCode::METHOD_NOT_ALLOWED,
        10405,
    )
    .await;

    let big = json!({"meta": {"blob": "x".repeat(70 * 1024)}});
    app.error(
        api("POST", "/live_inputs").json(big),
        StatusCode::PAYLOAD_TOO_LARGE,
        10413,
    )
    .await;
    assert_eq!(app.ok(api("GET", "/live_inputs")).await["total"], 0);
}

#[tokio::test]
async fn live_inputs_always_carry_rtmps() {
    let app = test_app().await;
    let input = app.ok(api("POST", "/live_inputs").json(json!({}))).await;
    let key = input["rtmp"]["streamKey"].as_str().unwrap();
    assert_eq!(input["rtmps"]["url"], "rtmps://controld.test:1936/live/");
    assert_eq!(input["rtmps"]["streamKey"], key);
}

#[tokio::test]
async fn a_video_edit_stores_every_field_and_names_a_wrong_one() {
    let app = test_app().await;
    let input = app.ok(api("POST", "/live_inputs").json(json!({}))).await;
    let video = app.recording(input["uid"].as_str().unwrap(), None, 90.0);
    let path = format!("/{video}");
    let in_40_days = timefmt::format(time::OffsetDateTime::now_utc() + time::Duration::days(40));
    let edited = app
        .ok(api("POST", &path).json(json!({
            "meta": {"name": "final cut"},
            "requireSignedURLs": true,
            "allowedOrigins": ["example.com", "*.example.net"],
            "scheduledDeletion": in_40_days,
            "creator": "creator-7",
            "thumbnailTimestampPct": 0.25,
            "maxDurationSeconds": 3600,
            "publicDetails": {"title": "Final", "share_link": "https://example.com/v"},
            "uid": video,
            "uploadExpiry": "2030-01-01T00:00:00Z",
        })))
        .await;
    assert_eq!(edited["uid"], video.as_str());
    assert_eq!(edited["meta"], json!({"name": "final cut"}));
    assert_eq!(edited["requireSignedURLs"], true);
    assert_eq!(
        edited["allowedOrigins"],
        json!(["example.com", "*.example.net"])
    );
    assert_eq!(edited["scheduledDeletion"], in_40_days.as_str());
    assert_eq!(edited["creator"], "creator-7");
    assert_eq!(edited["thumbnailTimestampPct"], 0.25);
    assert_eq!(edited["maxDurationSeconds"], 3600);
    assert_eq!(edited["publicDetails"]["title"], "Final");
    assert_eq!(
        edited["duration"], 90.0,
        "the recording itself is unchanged"
    );
    // Stored: GET shows the same; an empty edit changes nothing but `modified`.
    let fetched = app.ok(api("GET", &path)).await;
    let unchanged = app.ok(api("POST", &path).json(json!({}))).await;
    for field in [
        "meta",
        "allowedOrigins",
        "scheduledDeletion",
        "creator",
        "publicDetails",
    ] {
        assert_eq!(fetched[field], edited[field], "{field}");
        assert_eq!(unchanged[field], edited[field], "{field}");
    }
    // null clears what can be unset.
    let cleared = app
        .ok(api("POST", &path).json(json!({"scheduledDeletion": null, "creator": null})))
        .await;
    assert!(
        cleared["scheduledDeletion"].is_null() && cleared["creator"].is_null(),
        "{cleared}"
    );

    let in_10_days = timefmt::format(time::OffsetDateTime::now_utc() + time::Duration::days(10));
    for (body, pointer) in [
        (json!({"requireSignedURLs": "yes"}), "/requireSignedURLs"),
        (json!({"allowedOrigins": "example.com"}), "/allowedOrigins"),
        (
            json!({"allowedOrigins": ["a.test", "no spaces"]}),
            "/allowedOrigins/1",
        ),
        (
            json!({"thumbnailTimestampPct": 1.5}),
            "/thumbnailTimestampPct",
        ),
        (
            json!({"thumbnailTimestampPct": "half"}),
            "/thumbnailTimestampPct",
        ),
        (
            json!({"scheduledDeletion": "tomorrow"}),
            "/scheduledDeletion",
        ),
        (
            json!({"scheduledDeletion": in_10_days}),
            "/scheduledDeletion",
        ),
        (json!({"maxDurationSeconds": 0}), "/maxDurationSeconds"),
        (json!({"creator": 5}), "/creator"),
        (
            json!({"publicDetails": {"title": 1}}),
            "/publicDetails/title",
        ),
        (json!({"uid": UNKNOWN}), "/uid"),
        (json!({"uploadExpiry": "soon"}), "/uploadExpiry"),
    ] {
        let e = app
            .error(
                api("POST", &path).json(body.clone()),
                StatusCode::BAD_REQUEST,
                10400,
            )
            .await;
        assert_eq!(e["source"]["pointer"], pointer, "{body}: {e}");
    }
    let after = app.ok(api("GET", &path)).await;
    assert_eq!(
        after["meta"], edited["meta"],
        "refused edits change nothing"
    );
    assert_eq!(after["requireSignedURLs"], true);
}

#[tokio::test]
async fn storage_usage_counts_recorded_minutes_per_creator() {
    let app = test_app().await;
    let usage = app.ok(api("GET", "/storage-usage")).await;
    assert_eq!(
        usage,
        json!({"creator": null, "totalStorageMinutes": 0.0,
               "totalStorageMinutesLimit": STORAGE_LIMIT, "videoCount": 0})
    );
    let input = app.ok(api("POST", "/live_inputs").json(json!({}))).await;
    let input = input["uid"].as_str().unwrap();
    app.recording(input, Some("alice"), 90.0);
    app.recording(input, Some("alice"), 30.0);
    app.recording(input, Some("bob"), 60.0);
    let all = app.ok(api("GET", "/storage-usage")).await;
    assert_eq!(all["totalStorageMinutes"], 3.0);
    assert_eq!(all["videoCount"], 3);
    let alice = app.ok(api("GET", "/storage-usage?creator=alice")).await;
    assert_eq!(
        alice,
        json!({"creator": "alice", "totalStorageMinutes": 2.0,
               "totalStorageMinutesLimit": STORAGE_LIMIT, "videoCount": 2})
    );
    let nobody = app.ok(api("GET", "/storage-usage?creator=nobody")).await;
    assert_eq!(nobody["videoCount"], 0);
    // The list filters by creator too; a filter that matches nothing lists nothing.
    let listed = app.ok(api("GET", "?creator=bob")).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        app.ok(api("GET", &format!("?live_input_id={UNKNOWN}")))
            .await,
        json!([])
    );
    assert_eq!(
        app.ok(api("GET", "?live_input_id=not-ours")).await,
        json!([])
    );
    assert_eq!(
        app.ok(api("GET", &format!("?live_input_id={input}")))
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn the_webhook_takes_either_spelling_and_delete_answers_a_string() {
    let app = test_app().await;
    let sub = app
        .ok(api("PUT", "/webhook").json(json!({"notification_url": "https://hooks.test/a"})))
        .await;
    assert_eq!(sub["notificationUrl"], "https://hooks.test/a");
    let sub = app
        .ok(api("PUT", "/webhook").json(json!({"notificationUrl": "https://hooks.test/b"})))
        .await;
    assert_eq!(sub["notificationUrl"], "https://hooks.test/b");
    assert_eq!(app.ok(api("DELETE", "/webhook")).await, "ok");
    app.error(api("GET", "/webhook"), StatusCode::NOT_FOUND, 10604)
        .await;
}

#[tokio::test]
async fn an_owner_preview_token_plays_despite_allowed_origins_and_nothing_else_does() {
    let app = test_app().await;
    let input = app
        .ok(api("POST", "/live_inputs").json(json!({"recording": {
            "mode": "automatic", "requireSignedURLs": true, "allowedOrigins": ["customer.test"]
        }})))
        .await;
    let uid = input["uid"].as_str().unwrap();
    let token_path = format!("/{uid}/token");
    let preview = app
        .ok(api("POST", &token_path).json(json!({"ownerPreview": true})))
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let plain = app.ok(api("POST", &token_path)).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let lifecycle = |id: &str, origin: &str| Call {
        path: format!("/{id}/lifecycle"),
        token: None,
        headers: vec![("origin", origin.to_owned())],
        ..api("GET", "")
    };
    let foreign = "https://elsewhere.test";
    // The uid needs a token; a plain token is bound by allowedOrigins; the owner's is not.
    app.error(
        lifecycle(uid, "https://customer.test"),
        StatusCode::UNAUTHORIZED,
        10401,
    )
    .await;
    app.error(lifecycle(&plain, foreign), StatusCode::FORBIDDEN, 10403)
        .await;
    assert_eq!(
        app.send(lifecycle(&plain, "https://customer.test")).await.0,
        StatusCode::OK
    );
    let (status, body) = app.send(lifecycle(&preview, foreign)).await;
    assert_eq!(
        (status, body["isInput"].clone()),
        (StatusCode::OK, json!(true))
    );
    // Same-origin dashboard requests carry a Referer rather than an Origin.
    let request = Request::get(format!("/{preview}/manifest/video.m3u8"))
        .header("referer", "http://controld.test/")
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT, "not live: 204");

    // Owner preview tokens are short-lived.
    let late = time::OffsetDateTime::now_utc().unix_timestamp() + 2 * 3600;
    app.error(
        api("POST", &token_path).json(json!({"ownerPreview": true, "exp": late})),
        StatusCode::BAD_REQUEST,
        10400,
    )
    .await;
}

#[tokio::test]
async fn prefer_low_latency_defaults_to_false_and_is_kept_by_other_updates() {
    let app = test_app().await;
    let input = app.ok(api("POST", "/live_inputs").json(json!({}))).await;
    assert_eq!(input["preferLowLatency"], false, "{input}");
    let uid = input["uid"].as_str().unwrap();
    let path = format!("/live_inputs/{uid}");
    let updated = app
        .ok(api("PUT", &path).json(json!({"preferLowLatency": true})))
        .await;
    assert_eq!(updated["preferLowLatency"], true, "{updated}");
    let renamed = app
        .ok(api("PUT", &path).json(json!({"meta": {"name": "x"}})))
        .await;
    assert_eq!(
        renamed["preferLowLatency"], true,
        "an update without it keeps it"
    );
    app.ok(api("POST", &format!("{path}/disable"))).await;
    let got = app.ok(api("GET", &path)).await;
    assert_eq!(got["preferLowLatency"], true, "{got}");
    let e = app
        .error(
            api("PUT", &path).json(json!({"preferLowLatency": "yes"})),
            StatusCode::BAD_REQUEST,
            10400,
        )
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("preferLowLatency"),
        "{e}"
    );
    let created = app
        .ok(api("POST", "/live_inputs").json(json!({"preferLowLatency": true})))
        .await;
    assert_eq!(created["preferLowLatency"], true, "{created}");
}

#[tokio::test]
async fn videos_carry_their_dash_manifest() {
    let app = test_app().await;
    let input = app.ok(api("POST", "/live_inputs").json(json!({}))).await;
    let uid = app.recording(input["uid"].as_str().unwrap(), None, 12.0);
    let video = app.ok(api("GET", &format!("/{uid}"))).await;
    assert_eq!(
        video["playback"]["dash"],
        format!("http://controld.test/{uid}/manifest/video.mpd")
    );
    assert_eq!(
        video["playback"]["hls"],
        format!("http://controld.test/{uid}/manifest/video.m3u8")
    );
}

#[tokio::test]
async fn videos_carry_their_thumbnail_watch_page_frame_size_and_bytes() {
    let app = test_app().await;
    let input = app.ok(api("POST", "/live_inputs").json(json!({}))).await;
    let input = input["uid"].as_str().unwrap();
    let measured = app.recording(input, None, 12.0);
    let media = videos::RecordedMedia {
        width: 1280,
        height: 720,
        size: 4_000_123,
    };
    app.store
        .write_blocking(|c| videos::record_media(c, &measured, &media))
        .unwrap();
    let unknown = app.recording(input, None, 12.0);
    let video = app.ok(api("GET", &format!("/{measured}"))).await;
    assert_eq!(
        video["thumbnail"],
        format!("http://controld.test/{measured}/thumbnails/thumbnail.jpg")
    );
    assert_eq!(
        video["preview"],
        format!("http://controld.test/{measured}/watch")
    );
    assert_eq!(video["input"], json!({"width": 1280, "height": 720}));
    assert_eq!(video["size"], 4_000_123);
    let listed = app
        .ok(api("GET", &format!("?live_input_id={input}&asc=true")))
        .await;
    assert_eq!(listed[0]["uid"], measured.as_str());
    assert_eq!(listed[0]["input"], json!({"width": 1280, "height": 720}));
    assert_eq!(listed[1]["uid"], unknown.as_str());
    assert_eq!(listed[1]["input"], json!({"width": -1, "height": -1}));
    assert_eq!(listed[1]["size"], 0);
}
