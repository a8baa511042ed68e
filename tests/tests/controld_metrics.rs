//! `GET /metrics` of a real controld: the Prometheus text format parses, and the counters move
//! while ffmpeg publishes.

use std::collections::HashMap;
use std::time::Duration;

use cfstream_e2e::{Controld, Encoding, Publisher, http_get, wait_for};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(45);

/// Samples by `name{labels}` as written (labels sorted as exposed).
type Samples = HashMap<String, f64>;

/// A small parser of the text exposition format 0.0.4: every sample belongs to a family
/// declared by `# TYPE` before it, names and labels are well formed, values are numbers.
fn parse(text: &str) -> Samples {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Samples::new();
    let valid_name = |n: &str| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(valid_name(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter without _total: {line}");
            }
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "family declared twice: {line}"
            );
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect("labels end with }");
                for pair in labels.split(',') {
                    let (key, quoted) = pair.split_once('=').expect("label=\"value\"");
                    assert!(valid_name(key), "{line}");
                    assert!(
                        quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                        "{line}"
                    );
                }
                name
            }
            None => series,
        };
        assert!(types.contains_key(name), "sample before its # TYPE: {line}");
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "duplicate sample: {line}"
        );
    }
    samples
}

fn scrape(controld: &Controld) -> Samples {
    let (status, content_type, body) = http_get(&format!("{}/metrics", controld.base_url()));
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain");
    parse(&String::from_utf8(body).expect("UTF-8"))
}

fn value(samples: &Samples, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

#[test]
fn metrics_parse_and_move_with_a_publish() {
    let controld = Controld::start();
    let api = controld.api();
    let good = api.create_input(json!({"recording": {"mode": "automatic", "timeoutSeconds": 1}}));
    let bad = api.create_input(json!({"recording": {"mode": "automatic"}}));
    api.create_input(json!({}));
    let key = |input: &serde_json::Value| input["rtmp"]["streamKey"].as_str().unwrap().to_owned();

    let before = scrape(&controld);
    assert_eq!(value(&before, "cfstream_live_inputs{state=\"idle\"}"), 3.0);
    assert_eq!(value(&before, "cfstream_publishers_connected"), 0.0);
    assert_eq!(value(&before, "cfstream_ingest_bytes_total"), 0.0);
    assert_eq!(value(&before, "cfstream_segments_written_total"), 0.0);

    let publisher = Publisher::start(&controld.rtmp_url(&key(&good)), Encoding::good(9));
    let _bad_publisher = Publisher::start(
        &controld.rtmp_url(&key(&bad)),
        Encoding {
            keyint: 360,
            seconds: 16,
        },
    );
    let live = wait_for("two publishers and a segment", TIMEOUT, || {
        let s = scrape(&controld);
        (value(&s, "cfstream_publishers_connected") == 2.0
            && value(&s, "cfstream_segments_written_total") >= 1.0)
            .then_some(s)
    });
    assert!(value(&live, "cfstream_ingest_bytes_total") > 10_000.0);
    assert_eq!(
        value(&live, "cfstream_live_inputs{state=\"connected\"}"),
        2.0
    );
    assert_eq!(value(&live, "cfstream_live_inputs{state=\"idle\"}"), 1.0);

    let (status, stderr) = publisher.wait(Duration::from_secs(60));
    assert!(status.success(), "ffmpeg: {stderr}");
    let after = wait_for("the GOP violation and the end of both", TIMEOUT, || {
        let s = scrape(&controld);
        (value(
            &s,
            "cfstream_violations_total{code=\"ERR_GOP_OUT_OF_RANGE\"}",
        ) >= 1.0
            && value(&s, "cfstream_publishers_connected") == 0.0
            && value(&s, "cfstream_live_inputs{state=\"disconnected\"}") == 2.0)
            .then_some(s)
    });
    assert!(
        value(&after, "cfstream_ingest_bytes_total") > value(&live, "cfstream_ingest_bytes_total")
    );
    assert!(value(&after, "cfstream_segments_written_total") >= 2.0);
}
