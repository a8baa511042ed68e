//! controld's v4 API over HTTP, against the real binary: live input CRUD, error envelopes,
//! authentication and account isolation, playback of an idle input.

use cfstream_e2e::{ACCOUNT_ID, Controld, http_get};
use serde_json::{Value, json};

fn is_hex32(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An error response: the envelope with `success: false` and one error carrying `code`.
fn assert_error(json: &Value, code: u64) -> String {
    assert_eq!(json["success"], false, "{json}");
    assert!(json["result"].is_null(), "{json}");
    assert_eq!(json["messages"], json!([]), "{json}");
    assert_eq!(json["errors"][0]["code"], code, "{json}");
    json["errors"][0]["message"]
        .as_str()
        .expect("message")
        .to_owned()
}

#[test]
fn live_input_lifecycle_through_the_api() {
    let controld = Controld::start();
    let api = controld.api();

    let created = api.create_input(json!({
        "meta": {"name": "studio A"},
        "recording": {"mode": "automatic", "timeoutSeconds": 10}
    }));
    let uid = created["uid"].as_str().unwrap().to_owned();
    assert!(is_hex32(&created["uid"]), "{created}");
    assert_eq!(created["meta"], json!({"name": "studio A"}));
    assert_eq!(created["enabled"], true);
    assert!(created["deleteRecordingAfterDays"].is_null());
    assert!(
        created["status"].is_null(),
        "no status before the first connection"
    );
    assert_eq!(
        created["recording"],
        json!({"mode": "automatic", "timeoutSeconds": 10, "requireSignedURLs": false,
               "allowedOrigins": null, "hideLiveViewerCount": false})
    );
    let key = created["rtmp"]["streamKey"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 65);
    assert!(key.ends_with(&format!("k{uid}")), "{key}");
    assert_eq!(
        created["rtmp"]["url"],
        format!("rtmp://127.0.0.1:{}/live/", controld.rtmp.port())
    );
    assert!(created["created"].as_str().unwrap().ends_with('Z'));

    // Defaults of an empty create.
    let bare = api.create_input(json!({}));
    assert_eq!(bare["recording"]["mode"], "off");
    assert_eq!(bare["meta"], json!({}));

    let listed = api.ok("GET", "/live_inputs", None);
    assert_eq!(listed["total"], 2);
    let entry = listed["liveInputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["uid"] == uid.as_str())
        .expect("listed");
    assert!(
        entry.get("rtmp").is_none(),
        "no credentials in the list: {entry}"
    );
    assert_eq!(entry["meta"]["name"], "studio A");

    let fetched = api.input(&uid);
    assert_eq!(fetched["rtmp"]["streamKey"], key.as_str());

    // PUT changes what it names and keeps the rest.
    let updated = api.ok(
        "PUT",
        &format!("/live_inputs/{uid}"),
        Some(
            json!({"meta": {"name": "studio B"}, "recording": {"mode": "off"},
                    "deleteRecordingAfterDays": 30}),
        ),
    );
    assert_eq!(updated["meta"]["name"], "studio B");
    assert_eq!(updated["recording"]["mode"], "off");
    assert_eq!(updated["recording"]["timeoutSeconds"], 10);
    assert_eq!(updated["deleteRecordingAfterDays"], 30);
    assert!(updated["modified"].as_str() >= created["modified"].as_str());
    let cleared = api.ok(
        "PUT",
        &format!("/live_inputs/{uid}"),
        Some(json!({"deleteRecordingAfterDays": null})),
    );
    assert!(cleared["deleteRecordingAfterDays"].is_null());

    let disabled = api.ok("POST", &format!("/live_inputs/{uid}/disable"), None);
    assert_eq!(disabled["enabled"], false);
    let enabled = api.ok("POST", &format!("/live_inputs/{uid}/enable"), None);
    assert_eq!(enabled["enabled"], true);

    let rotated = api.ok("POST", &format!("/live_inputs/{uid}/rotate_keys"), None);
    assert_ne!(rotated["rtmp"]["streamKey"], key.as_str());
    assert!(rotated["keysRotatedAt"].is_string());

    assert_eq!(
        api.ok("GET", &format!("/live_inputs/{uid}/videos"), None),
        json!([])
    );
    assert_eq!(
        api.ok("GET", &format!("?live_input_id={uid}"), None),
        json!([])
    );

    assert!(
        api.ok("DELETE", &format!("/live_inputs/{uid}"), None)
            .is_null()
    );
    let (status, json) = api.call("GET", &format!("/live_inputs/{uid}"), None);
    assert_eq!(status, 404);
    assert_error(&json, 10601);
    assert_eq!(api.ok("GET", "/live_inputs", None)["total"], 1);
}

#[test]
fn errors_are_v4_envelopes_naming_what_was_wrong() {
    let controld = Controld::start();
    let api = controld.api();

    let (status, json) = api.call(
        "POST",
        "/live_inputs",
        Some(json!({"recording": {"timeoutSeconds": "ten"}})),
    );
    assert_eq!(status, 400);
    let message = assert_error(&json, 10400);
    assert!(message.contains("recording.timeoutSeconds"), "{message}");
    assert_eq!(
        json["errors"][0]["source"]["pointer"],
        "/recording/timeoutSeconds"
    );

    let (status, json) = api.call(
        "POST",
        "/live_inputs",
        Some(json!({"recording": {"mode": "sometimes"}})),
    );
    assert_eq!(status, 400);
    assert!(assert_error(&json, 10400).contains("recording.mode"));

    let (status, json) = api.call(
        "POST",
        "/live_inputs",
        Some(json!({"deleteRecordingAfterDays": 3})),
    );
    assert_eq!(status, 400);
    assert!(assert_error(&json, 10400).contains("deleteRecordingAfterDays"));

    let (status, json) = api.call(
        "POST",
        "/live_inputs",
        Some(json!({"recording": {"allowedOrigins": ["example.com", "bad/origin"]}})),
    );
    assert_eq!(status, 400);
    assert!(assert_error(&json, 10400).contains("recording.allowedOrigins.1"));

    // Nothing was created by the refused requests.
    assert_eq!(api.ok("GET", "/live_inputs", None)["total"], 0);

    let (status, json) = api.call("GET", "/live_inputs/0123456789abcdef0123456789abcdef", None);
    assert_eq!(status, 404);
    assert_error(&json, 10601);
    let (status, json) = api.call("GET", "/live_inputs/not-a-uid", None);
    assert_eq!(status, 404);
    assert_error(&json, 10601);
    let (status, json) = api.call("GET", "/0123456789abcdef0123456789abcdef", None);
    assert_eq!(status, 404);
    assert_error(&json, 10602);

    let (status, json) = api.call("PATCH", "/live_inputs", None);
    assert_eq!(status, 405);
    assert_error(&json, 10405);

    let (status, json) = api.call("GET", "/no_such_thing/at/all", None);
    assert_eq!(status, 404);
    assert_error(&json, 10404);

    // Malformed JSON.
    let response = ureq::post(&format!("{}/live_inputs", api.base))
        .set("Authorization", &format!("Bearer {}", api.token))
        .set("Content-Type", "application/json")
        .send_string("{\"meta\": ");
    let Err(ureq::Error::Status(400, response)) = response else {
        panic!("malformed JSON accepted: {response:?}");
    };
    let json: Value = response.into_json().unwrap();
    assert_error(&json, 10400);
}

#[test]
fn tokens_see_only_their_own_account() {
    let controld = Controld::start();
    let first = controld.api();
    let input = first.create_input(json!({"meta": {"name": "private"}}));
    let uid = input["uid"].as_str().unwrap();

    let other_token = controld.create_token("other");
    let other = controld.api_with("other", &other_token);
    assert_eq!(other.ok("GET", "/live_inputs", None)["total"], 0);
    let (status, json) = other.call("GET", &format!("/live_inputs/{uid}"), None);
    assert_eq!(status, 404, "{json}");
    let (status, _) = other.call("DELETE", &format!("/live_inputs/{uid}"), None);
    assert_eq!(status, 404);

    // The other account's token on the first account's path.
    let intruder = controld.api_with(ACCOUNT_ID, &other_token);
    let (status, json) = intruder.call("GET", &format!("/live_inputs/{uid}"), None);
    assert_eq!(status, 403);
    assert_error(&json, 10009);

    let wrong = controld.api_with(ACCOUNT_ID, "not-a-token");
    let (status, json) = wrong.call("GET", "/live_inputs", None);
    assert_eq!(status, 401);
    assert_error(&json, 10000);

    let response = ureq::get(&format!("{}/live_inputs", first.base)).call();
    let Err(ureq::Error::Status(401, response)) = response else {
        panic!("request without a token accepted");
    };
    assert_error(&response.into_json().unwrap(), 10000);

    // Still there for its owner.
    assert_eq!(first.input(uid)["meta"]["name"], "private");
}

#[test]
fn playback_of_an_idle_input_and_unknown_ids() {
    let controld = Controld::start();
    let input = controld
        .api()
        .create_input(json!({"recording": {"mode": "automatic"}}));
    let uid = input["uid"].as_str().unwrap();
    let base = controld.base_url();

    let (status, _, body) = http_get(&format!("{base}/{uid}/manifest/video.m3u8"));
    assert_eq!(status, 204, "an input that is not live has nothing to play");
    assert!(body.is_empty());

    let (status, content_type, body) = http_get(&format!("{base}/{uid}/lifecycle"));
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json");
    let lifecycle: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        lifecycle,
        json!({"isInput": true, "videoUID": null, "live": false})
    );

    for path in [
        "0123456789abcdef0123456789abcdef/manifest/video.m3u8".to_owned(),
        format!("{uid}/manifest/..%2F..%2Fcontrold.sqlite3"),
        format!("{uid}/manifest/segment.ts"),
        "..%2F..%2Fetc/manifest/video.m3u8".to_owned(),
    ] {
        let (status, content_type, body) = http_get(&format!("{base}/{path}"));
        assert_eq!(status, 404, "{path}");
        assert_eq!(content_type, "application/json", "{path}");
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["success"], false);
    }
}
