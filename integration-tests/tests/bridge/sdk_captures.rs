//! The official SDKs through the bridge: every request of each Python SDK 5.0.4 and JS SDK
//! 5.11.1 capture (`fixtures/sdk-captures/`, copied from `shared/conformance/`) is replayed
//! into `langfuse-bridge serve --to ingestion` exactly as the SDK sent it (path, content type,
//! gzip, credentials), and the events the bridge forwards to a local ingestion receiver must
//! equal the Langfuse server's own events for the same export (`fixtures/conformance/
//! sdk-*.json`, compared as `conformance.rs` does). Scores must arrive as `score-create`
//! events carrying the SDK's score objects unchanged, with the client's credentials.

use crate::bridge_support;

use std::time::Duration;

use bridge_support::{basic, gzip, post, start, test_config, wait_until};
use integration_tests::events::{diff, sort_events};
use integration_tests::receiver::{Action, Receiver};
use integration_tests::{fixture_files, fixtures_dir, read_json};
use langfuse_bridge::Bridge;
use langfuse_otel_core::translate::Compatibility;
use serde_json::Value;

/// Removes what the server generates itself: envelope ids, and the envelope timestamps of
/// events other than `trace-create` (see `fixtures/conformance/CASES.md`).
fn strip_envelope(mut event: Value) -> Value {
    if let Some(map) = event.as_object_mut() {
        map.remove("id");
        if map.get("type").and_then(Value::as_str) != Some("trace-create") {
            map.remove("timestamp");
        }
    }
    event
}

fn replay_capture(sdk: &str, path: &std::path::Path) -> Result<(), String> {
    let capture = read_json(path);
    let scenario = capture["scenario"].as_str().unwrap_or_default().to_owned();
    let receiver = Receiver::start(|_, _| Action::ok());
    let mut config = test_config(
        &format!("sdk-{scenario}"),
        &receiver.base_url(),
        "ingestion",
    );
    config.compat = Compatibility::Server;
    let bridge = start(Bridge::new(config));
    let auth = basic("pk-lf-test", "sk-lf-test");

    let mut expected_scores: Vec<Value> = Vec::new();
    for request in capture["requests"].as_array().cloned().unwrap_or_default() {
        let raw = integration_tests::captures::base64_decode(
            request["raw_body_b64"].as_str().unwrap_or_default(),
        )
        .ok_or("bad raw body")?;
        let encoding = request["content_encoding"].as_str().unwrap_or_default();
        let body = if encoding == "gzip" {
            gzip(&raw)
        } else {
            raw.clone()
        };
        let path = request["path"].as_str().unwrap_or_default();
        let content_type = request["content_type"].as_str().unwrap_or_default();
        let mut headers = vec![
            ("content-type", content_type),
            ("authorization", auth.as_str()),
        ];
        if !encoding.is_empty() {
            headers.push(("content-encoding", encoding));
        }
        let answer = post(&format!("{}{path}", bridge.url()), &headers, &body)?;
        if !(200..300).contains(&answer.status) {
            return Err(format!(
                "{sdk}/{scenario}: {path} answered {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ));
        }
        match path {
            "/api/public/scores" => {
                let sent: Value = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
                match sent {
                    Value::Array(items) => expected_scores.extend(items),
                    other => expected_scores.push(other),
                }
            }
            "/api/public/ingestion" => {
                if answer.status != 207 {
                    return Err(format!("ingestion answered {}, not 207", answer.status));
                }
                let sent: Value = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
                for event in sent["batch"].as_array().cloned().unwrap_or_default() {
                    if event["type"] == "score-create" {
                        expected_scores.push(event["body"].clone());
                    }
                }
                let successes = answer.json()["successes"].as_array().map_or(0, Vec::len);
                if successes != sent["batch"].as_array().map_or(0, Vec::len) {
                    return Err(format!("207 answer {:?}", answer.json()));
                }
            }
            _ => {}
        }
    }

    // The oracle: the server's events for this capture's trace export.
    let case_name = format!(
        "sdk-{}-{}.json",
        sdk.trim_end_matches("-sdk"),
        scenario.replace('_', "-")
    );
    let case = read_json(&fixtures_dir().join("conformance").join(case_name));
    let mut want: Vec<Value> = case["expected"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let want_total = want.len() + expected_scores.len();

    let forwarded = || -> Vec<Value> {
        receiver
            .requests()
            .iter()
            .filter(|r| r.acknowledged() && r.path == "/api/public/ingestion")
            .flat_map(|r| r.ingestion_events())
            .collect()
    };
    if !wait_until(Duration::from_secs(30), || forwarded().len() >= want_total) {
        return Err(format!(
            "{sdk}/{scenario}: {} events forwarded, want {want_total}",
            forwarded().len()
        ));
    }
    bridge.stop();
    for r in receiver.requests() {
        if r.header("authorization") != Some(auth.as_str()) {
            return Err(format!(
                "{sdk}/{scenario}: forwarded without the client's credentials"
            ));
        }
    }
    let all = forwarded();
    for event in &all {
        if !event["id"].is_string() {
            return Err(format!("an event without envelope id: {event}"));
        }
    }
    let (scores, spans): (Vec<Value>, Vec<Value>) =
        all.into_iter().partition(|e| e["type"] == "score-create");
    let mut got: Vec<Value> = spans.into_iter().map(strip_envelope).collect();
    sort_events(&mut got);
    sort_events(&mut want);
    if let Some(d) = diff("events", &Value::Array(got), &Value::Array(want)) {
        return Err(format!("{sdk}/{scenario}: {d}"));
    }
    let got_scores: Vec<Value> = scores.into_iter().map(|e| e["body"].clone()).collect();
    if got_scores != expected_scores {
        return Err(format!(
            "{sdk}/{scenario}: scores {got_scores:?}, want {expected_scores:?}"
        ));
    }
    Ok(())
}

fn replay_sdk(sdk: &str) {
    let mut ran = 0;
    let mut failures = Vec::new();
    for path in fixture_files(&format!("sdk-captures/{sdk}")) {
        ran += 1;
        if let Err(e) = replay_capture(sdk, &path) {
            failures.push(e);
        }
    }
    assert!(ran >= 7, "only {ran} captures of {sdk}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn python_sdk_captures_forwarded_as_ingestion_equal_the_servers_events() {
    replay_sdk("python-sdk");
}

#[test]
fn js_sdk_captures_forwarded_as_ingestion_equal_the_servers_events() {
    replay_sdk("js-sdk");
}
