//! Signed URLs and allowedOrigins against the real controld, with ffmpeg publishing RTMP.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cfstream_e2e::{Controld, Encoding, Publisher, ffprobe_streams, wait_for};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const SIGNED_URL_INVALID: i64 = 10401;
const PLAYBACK_FORBIDDEN: i64 = 10403;

/// GET with optional `Origin`/`Referer`: `(status, headers of interest, body)`.
fn get(url: &str, origin: Option<&str>, referer: Option<&str>) -> (u16, Headers, Vec<u8>) {
    let mut req = ureq::get(url).timeout(Duration::from_secs(30));
    if let Some(o) = origin {
        req = req.set("Origin", o);
    }
    if let Some(r) = referer {
        req = req.set("Referer", r);
    }
    let response = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let headers = Headers {
        allow_origin: response
            .header("Access-Control-Allow-Origin")
            .map(str::to_owned),
        vary: response.header("Vary").map(str::to_owned),
    };
    let status = response.status();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut body).unwrap();
    (status, headers, body)
}

#[derive(Debug)]
struct Headers {
    allow_origin: Option<String>,
    vary: Option<String>,
}

/// Asserts a refusal: one of the given statuses with a v4 error envelope and code.
fn assert_refused(url: &str, what: &str, status: u16, code: i64) {
    let (got, _, body) = get(url, None, None);
    let json: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{what}: {got} body is not JSON ({e})"));
    assert_eq!(got, status, "{what}: {json}");
    assert_eq!(json["success"], false, "{what}: {json}");
    assert_eq!(json["errors"][0]["code"], code, "{what}: {json}");
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A token signed by the test itself with a key from `POST /stream/keys`.
fn self_signed(kid: &str, pem_b64: &str, claims: Value) -> String {
    let pem = STANDARD.decode(pem_b64).unwrap();
    let header = Header {
        kid: Some(kid.to_owned()),
        ..Header::new(Algorithm::RS256)
    };
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap()
}

#[test]
fn signed_url_input_plays_only_with_a_valid_token() {
    let controld = Controld::start();
    let api = controld.api();
    let base = controld.base_url();
    let input = api.create_input(json!({
        "recording": {"mode": "automatic", "requireSignedURLs": true}
    }));
    let uid = input["uid"].as_str().unwrap().to_owned();
    let key = api.ok("POST", "/keys", None);
    let (kid, pem) = (key["id"].as_str().unwrap(), key["pem"].as_str().unwrap());
    let jwk: Value =
        serde_json::from_slice(&STANDARD.decode(key["jwk"].as_str().unwrap()).unwrap())
            .expect("jwk is base64 JSON");
    assert_eq!(jwk["kty"], "RSA");
    let listed = api.ok("GET", "/keys", None);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], kid);
    assert!(
        listed[0].get("pem").is_none(),
        "private parts are shown once"
    );

    // Bad token requests are refused with the field named.
    for (body, field) in [
        (json!({"exp": now() + 25 * 3600}), "/exp"),
        (json!({"exp": now() - 10}), "/exp"),
        (
            json!({"accessRules": vec![json!({"type": "any", "action": "allow"}); 6]}),
            "/accessRules",
        ),
        (json!({"pem": pem}), "/id"),
        (json!({"id": kid, "pem": "bm90IGEga2V5"}), "/pem"),
    ] {
        let (status, json) = api.call("POST", &format!("/{uid}/token"), Some(body.clone()));
        assert_eq!(status, 400, "{body}: {json}");
        assert_eq!(json["errors"][0]["source"]["pointer"], field, "{json}");
    }

    let publisher = Publisher::start(
        &controld.rtmp_url(input["rtmp"]["streamKey"].as_str().unwrap()),
        Encoding::good(60),
    );
    let token = |body: Value| -> String {
        api.ok("POST", &format!("/{uid}/token"), Some(body))["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let server_signed = token(json!({}));
    let manifest = |id: &str| format!("{base}/{id}/manifest/video.m3u8");
    // The multivariant playlist names the media playlist, which lists the segments.
    let text_of = |url: &str| {
        let (status, _, body) = get(url, None, None);
        (status == 200)
            .then(|| String::from_utf8(body).ok())
            .flatten()
    };
    let playlist = wait_for(
        "the live playlist with a segment",
        Duration::from_secs(40),
        || {
            let multivariant = text_of(&manifest(&server_signed))?;
            let media = multivariant.lines().find(|l| l.starts_with("media-"))?;
            let text = text_of(&format!("{base}/{server_signed}/manifest/{media}"))?;
            text.contains("seg-").then_some(text)
        },
    );
    let segment = playlist
        .lines()
        .find(|l| l.starts_with("seg-"))
        .unwrap()
        .to_owned();
    let segment_url = |id: &str| format!("{base}/{id}/manifest/{segment}");

    // The plain uid is refused, for the manifest and for segments.
    assert_refused(&manifest(&uid), "plain manifest", 401, SIGNED_URL_INVALID);
    assert_refused(&segment_url(&uid), "plain segment", 401, SIGNED_URL_INVALID);
    assert_refused(
        &format!("{base}/{uid}/lifecycle"),
        "plain lifecycle",
        401,
        SIGNED_URL_INVALID,
    );

    // Tokens signed by the server's key and by the customer key play; ffprobe decodes them.
    let customer_signed = token(json!({"id": kid, "pem": pem, "downloadable": true}));
    for t in [&server_signed, &customer_signed] {
        let (status, _, body) = get(&segment_url(t), None, None);
        assert_eq!(status, 200);
        assert_eq!(&body[4..8], b"moof", "a CMAF segment");
    }
    let streams =
        ffprobe_streams(&manifest(&customer_signed)).expect("ffprobe plays the token URL");
    assert!(
        streams.contains(&"h264".to_owned()) && streams.contains(&"aac".to_owned()),
        "{streams:?}"
    );

    // Access rules see the client's address (127.0.0.1).
    let loopback_only = token(json!({"accessRules": [
        {"type": "ip.src", "action": "allow", "ip": ["127.0.0.0/8"]},
        {"type": "any", "action": "block"}
    ]}));
    assert_eq!(get(&segment_url(&loopback_only), None, None).0, 200);
    let loopback_blocked = token(json!({"accessRules": [
        {"type": "ip.src", "action": "block", "ip": ["127.0.0.1/32"]}
    ]}));
    assert_refused(
        &segment_url(&loopback_blocked),
        "ip.src block",
        403,
        PLAYBACK_FORBIDDEN,
    );

    // The recording inherits requireSignedURLs.
    let video = api.videos_of(&uid)[0]["uid"].as_str().unwrap().to_owned();
    assert_refused(
        &manifest(&video),
        "plain video manifest",
        401,
        SIGNED_URL_INVALID,
    );
    let video_token = api.ok("POST", &format!("/{video}/token"), Some(json!({})))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(get(&manifest(&video_token), None, None).0, 200);

    // Every kind of bad token is refused, for the manifest and for a segment.
    let not_yet_valid = token(json!({"nbf": now() + 600, "exp": now() + 1200}));
    let expired = self_signed(kid, pem, json!({"sub": uid, "kid": kid, "exp": now() - 5}));
    let other_account = controld.create_token("otheraccount");
    let other_api = controld.api_with("otheraccount", &other_account);
    let other_input = other_api.create_input(json!({}))["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    // Keys belong to their account: another one can neither list, revoke nor sign with them,
    // nor ask tokens for this account's input.
    assert_eq!(other_api.ok("GET", "/keys", None), json!([]));
    assert_eq!(
        other_api.call("DELETE", &format!("/keys/{kid}"), None).0,
        404
    );
    let (status, body) = other_api.call(
        "POST",
        &format!("/{other_input}/token"),
        Some(json!({"id": kid, "pem": pem})),
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        other_api.call("POST", &format!("/{uid}/token"), None).0,
        404
    );
    let wrong_sub = self_signed(
        kid,
        pem,
        json!({"sub": other_input, "kid": kid, "exp": now() + 600}),
    );
    let revoked_key = api.ok("POST", "/keys", None);
    let (revoked_kid, revoked_pem) = (
        revoked_key["id"].as_str().unwrap(),
        revoked_key["pem"].as_str().unwrap(),
    );
    let revoked = token(json!({"id": revoked_kid, "pem": revoked_pem}));
    assert_eq!(
        get(&manifest(&revoked), None, None).0,
        200,
        "valid before revocation"
    );
    assert_eq!(
        api.ok("DELETE", &format!("/keys/{revoked_kid}"), None),
        "Revoked"
    );
    let (status, json) = api.call("DELETE", &format!("/keys/{revoked_kid}"), None);
    assert_eq!(status, 404, "{json}");

    let parts: Vec<&str> = customer_signed.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["exp"] = json!(now() + 20 * 3600);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": kid}).to_string());
    let alg_none = format!("{none_header}.{}.", parts[1]);
    let public_pem = openssl::rsa::Rsa::private_key_from_pem(&STANDARD.decode(pem).unwrap())
        .unwrap()
        .public_key_to_pem_pkcs1()
        .unwrap();
    let hs256_with_public_key = jsonwebtoken::encode(
        &Header {
            kid: Some(kid.to_owned()),
            ..Header::new(Algorithm::HS256)
        },
        &json!({"sub": uid, "kid": kid, "exp": now() + 600}),
        &EncodingKey::from_secret(&public_pem),
    )
    .unwrap();
    for (what, bad, status, code) in [
        ("expired", &expired, 401, SIGNED_URL_INVALID),
        ("not yet valid", &not_yet_valid, 401, SIGNED_URL_INVALID),
        ("revoked key", &revoked, 401, SIGNED_URL_INVALID),
        ("wrong sub", &wrong_sub, 403, PLAYBACK_FORBIDDEN),
        ("tampered", &tampered, 401, SIGNED_URL_INVALID),
        ("alg none", &alg_none, 401, SIGNED_URL_INVALID),
        (
            "HS256 with the public key",
            &hs256_with_public_key,
            401,
            SIGNED_URL_INVALID,
        ),
    ] {
        assert_refused(&manifest(bad), &format!("{what} manifest"), status, code);
        assert_refused(&segment_url(bad), &format!("{what} segment"), status, code);
    }
    publisher.kill();
}

#[test]
fn allowed_origins_accept_and_refuse() {
    let controld = Controld::start();
    let api = controld.api();
    let input = api.create_input(json!({
        "recording": {"mode": "automatic", "allowedOrigins": ["*.example.com", "localhost:3000"]}
    }));
    let uid = input["uid"].as_str().unwrap();
    // Not live: an allowed request gets 204 for the manifest and 404 for a segment (it passed
    // the origin check); a refused one gets 403 for both.
    let manifest = format!("{}/{uid}/manifest/video.m3u8", controld.base_url());
    let segment = format!("{}/{uid}/manifest/seg-00000000.v.m4s", controld.base_url());
    for origin in [
        "https://www.example.com",
        "http://a.b.example.com",
        "http://localhost:3000",
    ] {
        let (status, headers, _) = get(&manifest, Some(origin), None);
        assert_eq!(status, 204, "{origin}");
        assert_eq!(
            headers.allow_origin.as_deref(),
            Some(origin),
            "echoed: {headers:?}"
        );
        assert!(
            headers
                .vary
                .as_deref()
                .is_some_and(|v| v.contains("Origin")),
            "{headers:?}"
        );
        assert_eq!(get(&segment, Some(origin), None).0, 404, "{origin}");
    }
    for origin in [
        "https://example.com",
        "https://example.com.evil.test",
        "http://localhost:3001",
        "http://localhost",
        "null",
    ] {
        for url in [&manifest, &segment] {
            let (status, _, body) = get(url, Some(origin), None);
            assert_eq!(status, 403, "{origin} {url}");
            let json: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["errors"][0]["code"], PLAYBACK_FORBIDDEN, "{json}");
        }
    }
    // Referer when there is no Origin; neither header: allowed (players outside browsers).
    assert_eq!(
        get(&manifest, None, Some("https://www.example.com/watch?v=1")).0,
        204
    );
    assert_eq!(
        get(&manifest, None, Some("https://example.com/watch")).0,
        403
    );
    assert_eq!(
        get(
            &manifest,
            Some("https://evil.test"),
            Some("https://www.example.com/")
        )
        .0,
        403
    );
    assert_eq!(get(&manifest, None, None).0, 204);

    // Clearing the list opens the input to any origin, with `*`.
    api.ok(
        "PUT",
        &format!("/live_inputs/{uid}"),
        Some(json!({"recording": {"allowedOrigins": null}})),
    );
    let (status, headers, _) = get(&manifest, Some("https://evil.test"), None);
    assert_eq!(status, 204);
    assert_eq!(headers.allow_origin.as_deref(), Some("*"));
}
