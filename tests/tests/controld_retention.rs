//! Retention on the real controld: `deleteRecordingAfterDays` is validated and a finished
//! recording shows its `scheduledDeletion` (the sweeper itself is tested with a controlled clock
//! in `controld::retention`).

use std::time::Duration;

use cfstream_e2e::{Controld, Encoding, Publisher, wait_for};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[test]
fn recordings_show_their_scheduled_deletion() {
    let controld = Controld::start();
    let api = controld.api();
    for bad in [json!(29), json!(1097), json!(30.5), json!("30")] {
        let (status, body) = api.call(
            "POST",
            "/live_inputs",
            Some(json!({"deleteRecordingAfterDays": bad})),
        );
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(
            body["errors"][0]["source"]["pointer"], "/deleteRecordingAfterDays",
            "{body}"
        );
    }
    let input = api.create_input(json!({
        "deleteRecordingAfterDays": 45,
        "recording": {"mode": "automatic", "timeoutSeconds": 1}
    }));
    let uid = input["uid"].as_str().unwrap();
    assert_eq!(input["deleteRecordingAfterDays"], 45);
    let key = input["rtmp"]["streamKey"].as_str().unwrap();
    let (status, stderr) =
        Publisher::start(&controld.rtmp_url(key), Encoding::good(5)).wait(Duration::from_secs(30));
    assert!(status.success(), "ffmpeg: {stderr}");
    let video = wait_for("the recording to be ready", Duration::from_secs(45), || {
        api.videos_of(uid)
            .into_iter()
            .find(|v| v["status"]["state"] == "ready")
    });
    let parse = |field: &str| {
        let text = video[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} missing: {video}"));
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    };
    assert_eq!(
        parse("scheduledDeletion") - parse("readyToStreamAt"),
        time::Duration::days(45),
        "{video}"
    );
    // Same on the single-video route.
    let one = api.ok("GET", &format!("/{}", video["uid"].as_str().unwrap()), None);
    assert_eq!(one["scheduledDeletion"], video["scheduledDeletion"]);
}
