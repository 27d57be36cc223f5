//! Local mode end to end: the official SDKs' captured requests (Python 5.0.4, JS 5.11.1)
//! translated by the core, imported into a trace store with `langfuse-bridge import`, then read
//! back with `traces list --json` / `traces show --json` and compared with the oracle, the
//! ingestion events the Langfuse server derives from the same exports
//! (`fixtures/conformance/sdk-*.json`) and the scores the SDKs sent.
//!
//! The same comparison runs on a store filled by `langfuse-bridge serve --to local`, the SDKs'
//! requests replayed into it exactly as sent (twice: the replay changes nothing).
//!
//! The binary is built on first use with the cargo running the tests; set
//! `LANGFUSE_BRIDGE_BIN` to test a prebuilt binary instead.

use crate::bridge_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bridge_support::{basic, gzip, post, start, test_config, wait_until};
use langfuse_bridge::Bridge;
use langfuse_bridge::Destination;

use integration_tests::bridge_bin::{bridge, target_and_profile};
use integration_tests::captures::trace_requests;
use integration_tests::{fixture_files, read_json};
use langfuse_otel_core::otlp;
use langfuse_otel_core::translate::translate_batch;
use serde_json::{Value, json};

/// A fresh temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "langfuse-local-test-{}-{n}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("creating temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the bridge and returns its standard output, asserting success.
fn run(args: &[&str]) -> String {
    let out = Command::new(bridge())
        .args(args)
        .output()
        .expect("running langfuse-bridge");
    assert!(
        out.status.success(),
        "langfuse-bridge {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn run_json(args: &[&str]) -> Value {
    serde_json::from_str(&run(args)).expect("JSON output")
}

/// The score events an SDK sent: the JS SDK batches `score-create` events to the ingestion
/// API, the Python SDK posts score bodies to `/api/public/scores`.
fn score_events(sdk: &str) -> Vec<Value> {
    let mut events = Vec::new();
    for path in fixture_files(&format!("sdk-captures/{sdk}")) {
        let capture = read_json(&path);
        for request in capture["requests"].as_array().into_iter().flatten() {
            let path = request["path"].as_str().unwrap_or_default();
            if path.ends_with("/ingestion") {
                for event in request["body"]["batch"].as_array().into_iter().flatten() {
                    if event["type"] == "score-create" {
                        events.push(event.clone());
                    }
                }
            } else if path.ends_with("/scores") {
                let bodies = match &request["body"] {
                    Value::Array(items) => items.clone(),
                    other => vec![other.clone()],
                };
                for body in bodies {
                    events.push(json!({"type": "score-create",
                        "timestamp": body["timestamp"], "body": body}));
                }
            }
        }
    }
    events
}

/// Translates every captured trace request of an SDK and writes the events, plus the SDK's
/// score events, as a JSON-lines file.
fn write_sdk_events(sdk: &str, file: &Path) -> usize {
    let mut lines = Vec::new();
    for request in trace_requests(sdk) {
        let raw = match request.body_format.as_str() {
            "otlp-protobuf" => request.raw.clone(),
            _ => serde_json::to_vec(&request.body).expect("json body"),
        };
        let batch = if request.body_format == "otlp-protobuf" {
            otlp::decode_protobuf(&raw)
        } else {
            otlp::decode_json(&raw)
        }
        .unwrap_or_else(|e| panic!("{sdk}/{}: {e}", request.scenario));
        for event in translate_batch(&batch).events {
            lines.push(serde_json::to_string(&event).expect("event serializes"));
        }
    }
    for event in score_events(sdk) {
        lines.push(event.to_string());
    }
    std::fs::write(file, lines.join("\n") + "\n").expect("writing events");
    lines.len()
}

/// The oracle's events of one SDK (`python` or `js`).
fn oracle_events(sdk: &str) -> Vec<Value> {
    let mut events = Vec::new();
    for path in fixture_files("conformance") {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with(&format!("sdk-{sdk}-")) {
            let case = read_json(&path);
            events.extend(
                case["expected"]["events"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
    }
    events
}

/// The traces the oracle's events describe, folded with the ingestion rules for the fields
/// compared here: a present key (even `null`) overwrites, an absent key keeps, tags union.
fn oracle_traces(events: &[Value]) -> BTreeMap<String, Value> {
    let mut traces: BTreeMap<String, Value> = BTreeMap::new();
    for event in events.iter().filter(|e| e["type"] == "trace-create") {
        let body = &event["body"];
        let id = body["id"].as_str().expect("trace id").to_owned();
        let trace = traces.entry(id.clone()).or_insert_with(
            || json!({"id": id, "name": null, "userId": null, "sessionId": null, "tags": []}),
        );
        for key in ["name", "userId", "sessionId"] {
            if let Some(v) = body.get(key) {
                trace[key] = v.clone();
            }
        }
        if let Some(Value::Array(tags)) = body.get("tags") {
            let mut all: BTreeSet<String> = trace["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
            all.extend(tags.iter().filter_map(|t| t.as_str().map(str::to_owned)));
            trace["tags"] = json!(all);
        }
    }
    traces
}

const OBSERVATION_FIELDS: [&str; 11] = [
    "name",
    "parentObservationId",
    "model",
    "usageDetails",
    "startTime",
    "endTime",
    "level",
    "statusMessage",
    "input",
    "output",
    "modelParameters",
];

fn pick(v: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .map(|k| ((*k).to_owned(), v.get(*k).cloned().unwrap_or(Value::Null)))
            .collect(),
    )
}

fn empty_object_as_null(v: Value) -> Value {
    match v {
        Value::Object(m) if m.is_empty() => Value::Null,
        other => other,
    }
}

fn check_sdk(sdk_dir: &str, oracle_sdk: &str) {
    let dir = TempDir::new(oracle_sdk);
    let events_file = dir.0.join("events.jsonl");
    let db = dir.0.join("traces.db");
    let db_arg = db.to_str().expect("utf-8 path");
    write_sdk_events(sdk_dir, &events_file);
    run(&["import", events_file.to_str().unwrap(), "--db", db_arg]);
    check_store(db_arg, sdk_dir, oracle_sdk);
}

/// Compares what `traces list --json` / `traces show --json` read from the store at `db`
/// with the oracle's traces, observations and the SDK's scores.
fn check_store(db_arg: &str, sdk_dir: &str, oracle_sdk: &str) {
    let oracle = oracle_events(oracle_sdk);
    let want_traces = oracle_traces(&oracle);
    let listed = run_json(&["traces", "list", "--db", db_arg, "--limit", "0", "--json"]);
    let listed = listed.as_array().expect("a JSON array");
    let got_ids: BTreeSet<&str> = listed.iter().filter_map(|t| t["id"].as_str()).collect();
    let want_ids: BTreeSet<&str> = want_traces.keys().map(String::as_str).collect();
    assert_eq!(got_ids, want_ids, "{oracle_sdk}: trace ids");
    for row in listed {
        let id = row["id"].as_str().unwrap();
        let got = pick(row, &["id", "name", "userId", "sessionId", "tags"]);
        assert_eq!(got, want_traces[id], "{oracle_sdk}: trace {id} in the list");
    }

    let scores = score_events(sdk_dir);
    let mut compared_observations = 0;
    for (trace_id, want) in &want_traces {
        let shown = run_json(&["traces", "show", trace_id, "--db", db_arg, "--json"]);
        assert_eq!(
            pick(&shown, &["id", "name", "userId", "sessionId", "tags"]),
            *want,
            "{oracle_sdk}: trace {trace_id} shown"
        );
        // Observations: the oracle's observation events of this trace, field by field.
        let want_obs: BTreeMap<String, &Value> = oracle
            .iter()
            .filter(|e| e["type"] != "trace-create" && e["body"]["traceId"] == *trace_id)
            .map(|e| (e["body"]["id"].as_str().unwrap().to_owned(), e))
            .collect();
        let got_obs: BTreeMap<String, &Value> = shown["observations"]
            .as_array()
            .expect("observations")
            .iter()
            .map(|o| (o["id"].as_str().unwrap().to_owned(), o))
            .collect();
        assert_eq!(
            got_obs.keys().collect::<Vec<_>>(),
            want_obs.keys().collect::<Vec<_>>(),
            "{oracle_sdk}: observation ids of {trace_id}"
        );
        for (id, event) in &want_obs {
            let got = got_obs[id];
            let want_type = event["type"]
                .as_str()
                .unwrap()
                .trim_end_matches("-create")
                .to_ascii_uppercase();
            assert_eq!(got["type"], json!(want_type), "{oracle_sdk}: type of {id}");
            let mut want = pick(&event["body"], &OBSERVATION_FIELDS);
            let mut got = pick(got, &OBSERVATION_FIELDS);
            for key in ["usageDetails", "modelParameters"] {
                want[key] = empty_object_as_null(want[key].take());
                got[key] = empty_object_as_null(got[key].take());
            }
            if want["level"].is_null() {
                want["level"] = json!("DEFAULT");
            }
            assert_eq!(got, want, "{oracle_sdk}: observation {id}");
            compared_observations += 1;
        }
        // Scores: what the SDK sent for this trace.
        let mut want_scores: Vec<Value> = scores
            .iter()
            .map(|e| &e["body"])
            .filter(|b| b["traceId"] == *trace_id)
            .map(|b| {
                let (value, string_value) = match &b["value"] {
                    Value::String(s) => (Value::Null, json!(s)),
                    v => (json!(v.as_f64()), Value::Null),
                };
                json!({"id": b["id"], "name": b["name"], "value": value,
                    "stringValue": string_value, "observationId": b.get("observationId"),
                    "dataType": b.get("dataType"), "comment": b.get("comment")})
            })
            .collect();
        let mut got_scores: Vec<Value> = shown["scores"]
            .as_array()
            .expect("scores")
            .iter()
            .map(|s| {
                pick(
                    s,
                    &[
                        "id",
                        "name",
                        "value",
                        "stringValue",
                        "observationId",
                        "dataType",
                        "comment",
                    ],
                )
            })
            .collect();
        let by_id = |a: &Value, b: &Value| a["id"].to_string().cmp(&b["id"].to_string());
        want_scores.sort_by(by_id);
        got_scores.sort_by(by_id);
        assert_eq!(
            got_scores, want_scores,
            "{oracle_sdk}: scores of {trace_id}"
        );
    }
    assert!(
        compared_observations >= 20,
        "{oracle_sdk}: only {compared_observations} observations compared"
    );
    assert!(
        !scores.is_empty(),
        "{sdk_dir}: the captures contain scores (fixture check)"
    );
}

#[test]
fn python_sdk_captures_read_back_as_the_oracle() {
    check_sdk("python-sdk", "python");
}

#[test]
fn js_sdk_captures_read_back_as_the_oracle() {
    check_sdk("js-sdk", "js");
}

/// Every `traces show --json` of a store, by trace id, and the list.
fn snapshot(db: &str) -> (Value, BTreeMap<String, Value>) {
    let list = run_json(&["traces", "list", "--db", db, "--limit", "0", "--json"]);
    let shown = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let id = t["id"].as_str().unwrap().to_owned();
            let detail = run_json(&["traces", "show", &id, "--db", db, "--json"]);
            (id, detail)
        })
        .collect();
    (list, shown)
}

#[test]
fn importing_the_same_events_twice_changes_nothing() {
    let dir = TempDir::new("twice");
    let events_file = dir.0.join("events.jsonl");
    let db = dir.0.join("traces.db");
    let db_arg = db.to_str().unwrap();
    write_sdk_events("python-sdk", &events_file);
    run(&["import", events_file.to_str().unwrap(), "--db", db_arg]);
    let first = snapshot(db_arg);
    assert!(!first.1.is_empty());
    run(&["import", events_file.to_str().unwrap(), "--db", db_arg]);
    let second = snapshot(db_arg);
    assert_eq!(first, second);
}

#[test]
fn list_filters_select_the_matching_traces() {
    let dir = TempDir::new("filters");
    let events_file = dir.0.join("events.jsonl");
    let db = dir.0.join("traces.db");
    let db_arg = db.to_str().unwrap();
    write_sdk_events("python-sdk", &events_file);
    run(&["import", events_file.to_str().unwrap(), "--db", db_arg]);
    let all = run_json(&["traces", "list", "--db", db_arg, "--limit", "0", "--json"]);
    let all = all.as_array().unwrap();
    let ids = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let expect = |pred: &dyn Fn(&Value) -> bool| -> BTreeSet<String> {
        all.iter()
            .filter(|t| pred(t))
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // Filter values taken from the data, expected sets computed from the unfiltered list.
    let user = all
        .iter()
        .find_map(|t| t["userId"].as_str())
        .expect("a user");
    let got = run_json(&["traces", "list", "--db", db_arg, "--user", user, "--json"]);
    let want = expect(&|t| t["userId"] == user);
    assert!(!want.is_empty() && want.len() < all.len());
    assert_eq!(ids(&got), want);

    let session = all
        .iter()
        .find_map(|t| t["sessionId"].as_str())
        .expect("a session");
    let got = run_json(&[
        "traces",
        "list",
        "--db",
        db_arg,
        "--session",
        session,
        "--json",
    ]);
    assert_eq!(ids(&got), expect(&|t| t["sessionId"] == session));

    let tag = all
        .iter()
        .find_map(|t| {
            t["tags"]
                .as_array()
                .and_then(|a| a.first())
                .and_then(Value::as_str)
        })
        .expect("a tag");
    let got = run_json(&["traces", "list", "--db", db_arg, "--tag", tag, "--json"]);
    assert_eq!(
        ids(&got),
        expect(&|t| t["tags"].as_array().unwrap().iter().any(|g| g == tag))
    );

    let name = all[0]["name"].as_str().unwrap();
    let got = run_json(&["traces", "list", "--db", db_arg, "--name", name, "--json"]);
    assert_eq!(ids(&got), expect(&|t| t["name"] == name));

    let got = run_json(&[
        "traces", "list", "--db", db_arg, "--level", "error", "--json",
    ]);
    let want = expect(&|t| t["level"] == "ERROR");
    assert!(!want.is_empty(), "the events_errors capture has an error");
    assert_eq!(ids(&got), want);

    // Scores: relevance 0.87 on the scores trace.
    let got = run_json(&[
        "traces",
        "list",
        "--db",
        db_arg,
        "--score",
        "relevance>=0.8",
        "--json",
    ]);
    assert_eq!(ids(&got).len(), 1);
    let got = run_json(&[
        "traces",
        "list",
        "--db",
        db_arg,
        "--score",
        "relevance<=0.8",
        "--json",
    ]);
    assert!(ids(&got).is_empty());
    let got = run_json(&[
        "traces",
        "list",
        "--db",
        db_arg,
        "--score",
        "tone=friendly",
        "--json",
    ]);
    assert_eq!(ids(&got).len(), 1);

    let mut times: Vec<&str> = all.iter().filter_map(|t| t["timestamp"].as_str()).collect();
    times.sort();
    let middle = times[times.len() / 2];
    let got = run_json(&[
        "traces", "list", "--db", db_arg, "--since", middle, "--json",
    ]);
    assert_eq!(
        ids(&got),
        expect(&|t| t["timestamp"].as_str().unwrap() >= middle)
    );
    let got = run_json(&[
        "traces", "list", "--db", db_arg, "--until", middle, "--json",
    ]);
    assert_eq!(
        ids(&got),
        expect(&|t| t["timestamp"].as_str().unwrap() < middle)
    );

    let got = run_json(&["traces", "list", "--db", db_arg, "--limit", "2", "--json"]);
    assert_eq!(got.as_array().unwrap().len(), 2);
}

#[test]
fn import_loads_the_quickstart_offline_file() {
    let dir = TempDir::new("quickstart");
    let (target_dir, profile_dir, profile) = target_and_profile();
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "langfuse-otel",
            "--example",
            "quickstart",
        ])
        .arg("--profile")
        .arg(&profile)
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("running cargo build");
    assert!(status.success(), "building the quickstart failed");
    let offline = dir.0.join("quickstart.jsonl");
    let out = Command::new(profile_dir.join("examples").join("quickstart"))
        .env_remove("LANGFUSE_PUBLIC_KEY")
        .env_remove("LANGFUSE_SECRET_KEY")
        .env("LANGFUSE_OFFLINE_PATH", &offline)
        .output()
        .expect("running the quickstart");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("langfuse-bridge -- import") && stdout.contains(" ui"),
        "the quickstart says how to open the viewer:\n{stdout}"
    );
    let db = dir.0.join("traces.db");
    let db_arg = db.to_str().unwrap();
    run(&["import", offline.to_str().unwrap(), "--db", db_arg]);
    let list = run_json(&["traces", "list", "--db", db_arg, "--json"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    let trace = &list[0];
    assert_eq!(trace["name"], "support-bot");
    assert_eq!(trace["userId"], "user-42");
    assert_eq!(trace["sessionId"], "chat-7");
    assert_eq!(trace["tags"], json!(["rag", "support"]));
    let id = trace["id"].as_str().unwrap();
    let shown = run_json(&["traces", "show", id, "--db", db_arg, "--json"]);
    let mut names: Vec<&str> = shown["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "embed",
            "generate-answer",
            "rerank",
            "support-bot",
            "vector-search"
        ]
    );
    let generation = shown["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "GENERATION")
        .unwrap();
    assert_eq!(generation["model"], "gpt-4o-mini");
    assert_eq!(generation["usageDetails"]["total"], 160);
    assert_eq!(shown["scores"][0]["name"], "helpfulness");
    let text = run(&["traces", "show", id, "--db", db_arg]);
    assert!(text.contains("generate-answer [generation]"), "{text}");
}

/// Replays every request of an SDK's captures into a `serve --to local` bridge on `db`
/// (path, content type, encoding and credentials as the SDK sent them), waits until the spool
/// has delivered everything to the store, and stops the bridge.
fn replay_into_serve_local(sdk_dir: &str, db: &Path, spool_tag: &str) {
    let mut config = test_config(spool_tag, "http://unused", "local");
    config.to = Some(Destination::Local);
    config.upstream = None;
    config.db = db.to_path_buf();
    let bridge = start(Bridge::new(config));
    let auth = basic("pk-lf-test", "sk-lf-test");
    for path in fixture_files(&format!("sdk-captures/{sdk_dir}")) {
        let capture = read_json(&path);
        for request in capture["requests"].as_array().into_iter().flatten() {
            let raw = integration_tests::captures::base64_decode(
                request["raw_body_b64"].as_str().unwrap_or_default(),
            )
            .expect("raw body");
            let encoding = request["content_encoding"].as_str().unwrap_or_default();
            let body = if encoding == "gzip" { gzip(&raw) } else { raw };
            let mut headers = vec![
                (
                    "content-type",
                    request["content_type"].as_str().unwrap_or_default(),
                ),
                ("authorization", auth.as_str()),
            ];
            if !encoding.is_empty() {
                headers.push(("content-encoding", encoding));
            }
            let target = request["path"].as_str().unwrap_or_default();
            let answer = post(&format!("{}{target}", bridge.url()), &headers, &body)
                .unwrap_or_else(|e| panic!("{sdk_dir}: {target}: {e}"));
            assert!(
                (200..300).contains(&answer.status),
                "{sdk_dir}: {target} answered {}",
                answer.status
            );
        }
    }
    let delivered = wait_until(Duration::from_secs(30), || {
        bridge.metrics.spool_records.load(Ordering::Relaxed) == 0
            && bridge.metrics.forwarded_items.load(Ordering::Relaxed) > 0
    });
    assert!(
        delivered,
        "{sdk_dir}: the spool never drained into the store"
    );
    bridge.stop();
}

fn check_sdk_through_serve_local(sdk_dir: &str, oracle_sdk: &str) {
    let dir = TempDir::new(&format!("serve-{oracle_sdk}"));
    let db = dir.0.join("traces.db");
    let db_arg = db.to_str().expect("utf-8 path");
    replay_into_serve_local(sdk_dir, &db, &format!("store-serve-{oracle_sdk}-1"));
    check_store(db_arg, sdk_dir, oracle_sdk);
    let first = snapshot(db_arg);
    replay_into_serve_local(sdk_dir, &db, &format!("store-serve-{oracle_sdk}-2"));
    assert_eq!(
        snapshot(db_arg),
        first,
        "{sdk_dir}: a second replay changed the store"
    );
}

#[test]
fn python_sdk_requests_replayed_into_serve_local_read_back_as_the_oracle_twice() {
    check_sdk_through_serve_local("python-sdk", "python");
}

#[test]
fn js_sdk_requests_replayed_into_serve_local_read_back_as_the_oracle_twice() {
    check_sdk_through_serve_local("js-sdk", "js");
}
