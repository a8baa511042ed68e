//! `GET /openapi.json`: an OpenAPI 3.x document describing the API, checked by
//! `openapi-spec-validator` (tests/.venv, scripts/setup-python-venv.sh).

use std::path::Path;
use std::process::Command;

use cfstream_e2e::{Controld, http_get};
use serde_json::Value;

#[test]
fn openapi_document_validates_and_describes_the_api() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/setup-python-venv.sh (installs openapi-spec-validator)",
        python.display()
    );
    let controld = Controld::start();
    let (status, content_type, body) = http_get(&format!("{}/openapi.json", controld.base_url()));
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let doc: Value = serde_json::from_slice(&body).expect("the document is JSON");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    let base = "/client/v4/accounts/{account_id}/stream";
    for (path, method) in [
        ("/live_inputs", "post"),
        ("/live_inputs", "get"),
        ("/live_inputs/{uid}", "put"),
        ("/live_inputs/{uid}/rotate_keys", "post"),
        ("/keys", "post"),
        ("/keys/{id}", "delete"),
        ("/{uid}/token", "post"),
    ] {
        let full = format!("{base}{path}");
        assert!(
            paths.get(&full).is_some_and(|p| p.get(method).is_some()),
            "{method} {full} missing; paths: {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    for path in ["/{id}/views", "/{id}/iframe", "/{id}/watch"] {
        assert!(
            paths.get(path).is_some_and(|p| p.get("get").is_some()),
            "GET {path} missing"
        );
    }
    // Generated from the handlers' types: the live input body names its fields.
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["LiveInputBody"]["properties"]["deleteRecordingAfterDays"].is_object(),
        "{schemas}"
    );

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &body).unwrap();
    let out = Command::new(&python)
        .args([
            "-c",
            "import json, sys\n\
             from openapi_spec_validator import validate\n\
             validate(json.load(open(sys.argv[1])))\n\
             print('valid')",
        ])
        .arg(file.path())
        .output()
        .expect("running openapi-spec-validator");
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
