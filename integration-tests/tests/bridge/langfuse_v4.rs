//! Langfuse v4: every client's data lands whole. The legacy SDKs (Python 2.x, JS 3.x) through
//! `langfuse-bridge serve --to langfuse` into the v4 stand-in
//! (`integration_tests::v4_standin`): what v4 stores, read back as records, equals our own fold
//! of the events the client sent (Langfuse v3's merge rules), field by field.
//!
//! The SDKs are installed on first use under `target/langfuse-v4-peers/` (see
//! `integration_tests::legacy_sdks`).

use crate::bridge_support;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bridge_support::{post, start, test_config};
use integration_tests::legacy_sdks;
use integration_tests::receiver::{Action, Receiver};
use integration_tests::v4_standin::V4StandIn;
use langfuse_bridge::Bridge;
use langfuse_otel_core::fold::fold;
use langfuse_otel_core::legacy::{restore, stored_observation, stored_trace};
use langfuse_otel_core::record::IngestionEvent;
use serde_json::Value;

const PUBLIC_KEY: &str = "pk-lf-v4";
const SECRET_KEY: &str = "sk-lf-v4";

/// A recording proxy in front of the bridge: keeps every ingestion event the client sent and
/// was answered 2xx for, and forwards each request unchanged (bodies already without gzip).
struct Tee {
    receiver: Receiver,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Tee {
    fn start(target: String) -> Tee {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let heads = Mutex::new(std::collections::HashSet::new());
        let receiver = Receiver::start(move |request, index| {
            if heads.lock().unwrap().insert(index) {
                return Action::ok();
            }
            let mut headers: Vec<(&str, &str)> = Vec::new();
            for name in ["authorization", "content-type"] {
                if let Some(v) = request.header(name) {
                    headers.push((name, v));
                }
            }
            let answer = match post(
                &format!("{target}{}", request.path),
                &headers,
                &request.body,
            ) {
                Ok(a) => a,
                Err(_) => return Action::status(502),
            };
            if request.path == "/api/public/ingestion" && answer.status == 207 {
                let sent: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
                let ok: Vec<Value> = answer.json()["successes"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|s| s["id"].clone())
                    .collect();
                let mut sink = sink.lock().unwrap();
                for event in sent["batch"].as_array().cloned().unwrap_or_default() {
                    if ok.contains(&event["id"]) {
                        sink.push(event);
                    }
                }
            }
            Action::Respond {
                status: answer.status,
                headers: Vec::new(),
                body: answer.body,
            }
        });
        Tee { receiver, events }
    }

    /// The accepted events that have a record (not `sdk-log`).
    fn events(&self) -> Vec<IngestionEvent> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["type"] != "sdk-log")
            .map(|e| serde_json::from_value(e.clone()).expect("an accepted event parses"))
            .collect()
    }
}

/// Both sides as Langfuse stores them: (traces, observations) sorted by id.
fn compare(events: &[IngestionEvent], standin: &V4StandIn) {
    let folded = fold(events);
    let mut want_traces: Vec<Value> = folded
        .traces
        .iter()
        .map(|(id, row)| stored_trace(&row.to_body(id)))
        .collect();
    let mut want_observations: Vec<Value> = folded
        .observations
        .iter()
        .map(|(id, row)| {
            let (kind, body) = row.to_body(id);
            stored_observation(kind, &body)
        })
        .collect();
    let recorded = standin.recorded();
    let restored = restore(&recorded.rows);
    let mut got_traces: Vec<Value> = restored.traces.iter().map(stored_trace).collect();
    let mut got_observations: Vec<Value> = restored
        .observations
        .iter()
        .map(|(kind, body)| stored_observation(*kind, body))
        .collect();
    let by_id = |a: &Value, b: &Value| a["id"].as_str().cmp(&b["id"].as_str());
    for v in [
        &mut want_traces,
        &mut want_observations,
        &mut got_traces,
        &mut got_observations,
    ] {
        v.sort_by(by_id);
    }
    assert!(!want_traces.is_empty() && !want_observations.is_empty());
    assert_eq!(got_traces, want_traces, "traces");
    assert_eq!(got_observations.len(), want_observations.len());
    for (got, want) in got_observations.iter().zip(&want_observations) {
        assert_eq!(got, want, "observation {}", want["id"]);
    }
    assert!(restored.duplicates.is_empty(), "{:?}", restored.duplicates);
    // Every row counts for the trace's user and session (v4 reads them per row).
    for row in &recorded.rows {
        let trace = want_traces
            .iter()
            .find(|t| {
                Some(t["id"].as_str().unwrap_or_default())
                    == row.observation.trace_id.clone().flatten().as_deref()
            })
            .expect("a row of a known trace");
        assert_eq!(
            json_opt(&row.user_id),
            trace["userId"],
            "{}",
            row.observation.id
        );
        assert_eq!(json_opt(&row.session_id), trace["sessionId"]);
    }
    // Scores: every one the client sent, by id.
    let mut want_scores: Vec<Value> = folded
        .scores
        .iter()
        .map(|s| Value::String(s.id.clone().unwrap_or_default()))
        .collect();
    let mut got_scores: Vec<Value> = recorded.scores.iter().map(|s| s["id"].clone()).collect();
    want_scores.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    got_scores.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    assert_eq!(got_scores, want_scores, "scores");
    assert_eq!(
        recorded.refused_events, 0,
        "nothing went to v4's ingestion endpoint"
    );
    assert!(
        recorded
            .ingestion_versions
            .iter()
            .all(|v| v.as_deref() == Some("4"))
    );
}

fn json_opt(v: &Option<String>) -> Value {
    v.clone().map_or(Value::Null, Value::String)
}

fn standin() -> V4StandIn {
    V4StandIn::start(PUBLIC_KEY, SECRET_KEY, Vec::new())
}

/// The number of spans the fold of `events` becomes.
fn span_count(events: &[IngestionEvent]) -> usize {
    let folded = fold(events);
    folded.traces.len() + folded.observations.len()
}

/// A legacy client program.
#[derive(Clone, Copy)]
enum Client {
    PythonV2,
    JsV3,
}

/// Runs the client's scenario against `host` (tag: id prefix); panics when it fails.
fn run_client(client: Client, host: &str, tag: &str) {
    let fixtures = integration_tests::fixtures_dir().join("legacy-sdks");
    let mut cmd = match client {
        Client::PythonV2 => {
            let python = legacy_sdks::python_v2();
            let version = legacy_sdks::python_package_version(&python, "langfuse");
            assert!(version.starts_with("2."), "Python SDK {version}");
            let mut cmd = Command::new(python);
            cmd.arg(fixtures.join("python_v2.py"));
            cmd
        }
        Client::JsV3 => {
            let dir = legacy_sdks::js_v3();
            let script = dir.join("js_v3.mjs");
            std::fs::copy(fixtures.join("js_v3.mjs"), &script).expect("copy the JS scenario");
            let package: Value = serde_json::from_slice(
                &std::fs::read(dir.join("node_modules/langfuse/package.json")).unwrap(),
            )
            .unwrap();
            assert!(
                package["version"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("3.")),
                "JS SDK {}",
                package["version"]
            );
            let mut cmd = Command::new("node");
            cmd.arg(script).current_dir(dir);
            cmd
        }
    };
    let out = cmd
        .arg(tag)
        .env("LANGFUSE_PUBLIC_KEY", PUBLIC_KEY)
        .env("LANGFUSE_SECRET_KEY", SECRET_KEY)
        .env("LANGFUSE_HOST", host)
        .env("LANGFUSE_BASEURL", host)
        .output()
        .expect("the client runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A legacy client through an in-process `serve --to langfuse` (assembly window `window`)
/// into the stand-in: what v4 stores equals our fold of what the client was told accepted.
fn legacy_client_lands_whole(client: Client, tag: &str) {
    let standin = standin();
    let mut config = test_config(tag, &standin.base_url(), "langfuse");
    config.assemble_window_secs = 2.0;
    let bridge = start(Bridge::new(config));
    let tee = Tee::start(bridge.url());
    run_client(client, &tee.receiver.base_url(), tag);
    let events = tee.events();
    assert!(events.len() >= 10, "{} events accepted", events.len());
    let spans = span_count(&events);
    let scores = fold(&events).scores.len();
    let recorded = standin.wait_for(Duration::from_secs(60), |r| {
        r.rows.len() >= spans && r.scores.len() >= scores
    });
    assert_eq!(recorded.rows.len(), spans, "one row per span, none twice");
    compare(&events, &standin);
    bridge.stop();
}

#[test]
fn python_sdk_2_through_the_bridge_lands_whole_in_v4() {
    legacy_client_lands_whole(Client::PythonV2, "py2");
}

#[test]
fn js_sdk_3_through_the_bridge_lands_whole_in_v4() {
    legacy_client_lands_whole(Client::JsV3, "js3");
}

/// `langfuse-bridge serve` as a process on `127.0.0.1:0` (`extra`: more flags): the child,
/// the port it bound (from its "listening" log line) and its log lines so far.
fn spawn_bridge(
    upstream: &str,
    spool: &std::path::Path,
    extra: &[&str],
) -> (std::process::Child, u16, Arc<Mutex<Vec<String>>>) {
    use std::io::BufRead;
    let mut child = Command::new(bridge_support::bridge_binary())
        .env_clear()
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--grpc",
            "off",
            "--fsync",
            "always",
        ])
        .arg("--upstream")
        .arg(upstream)
        .arg("--spool")
        .arg(spool)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start langfuse-bridge");
    let stderr = child.stderr.take().expect("piped stderr");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("langfuse-bridge listening")
                && let Some(port) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("http="))
                    .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
                    .map(|a| a.port())
            {
                let _ = port_tx.send(port);
            }
            sink.lock().unwrap().push(line);
        }
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the bridge logs the address it listens on");
    assert!(
        bridge_support::wait_until(Duration::from_secs(30), || {
            bridge_support::get(&format!("http://127.0.0.1:{port}/health"))
                .is_ok_and(|a| a.status == 200)
        }),
        "bridge did not come up"
    );
    (child, port, lines)
}

fn kill_9(child: &mut std::process::Child) {
    child.kill().expect("SIGKILL the bridge");
    let _ = child.wait();
}

#[test]
fn kill_9_twice_during_the_window_loses_nothing_and_sends_nothing_twice() {
    let standin = standin();
    let spool = bridge_support::temp_dir("v4-kill");
    let window = ["--to", "langfuse", "--assemble-window", "5"];
    let (mut bridge, port, _) = spawn_bridge(&standin.base_url(), &spool, &window);
    let tee = Tee::start(format!("http://127.0.0.1:{port}"));
    run_client(Client::PythonV2, &tee.receiver.base_url(), "kill");
    let events = tee.events();
    assert!(events.len() >= 10);
    // Everything is acknowledged and held in the window: kill it, twice, each time within the
    // window after the restart read the spool again.
    kill_9(&mut bridge);
    assert!(
        standin.recorded().rows.is_empty(),
        "nothing left before the window ended"
    );
    let (mut bridge, _, _) = spawn_bridge(&standin.base_url(), &spool, &window);
    std::thread::sleep(Duration::from_millis(500));
    kill_9(&mut bridge);
    assert!(standin.recorded().rows.is_empty());
    let (bridge, port, _) = spawn_bridge(&standin.base_url(), &spool, &window);
    let spans = span_count(&events);
    let scores = fold(&events).scores.len();
    let recorded = standin.wait_for(Duration::from_secs(60), |r| {
        r.rows.len() >= spans && r.scores.len() >= scores
    });
    assert_eq!(recorded.rows.len(), spans, "every span once");
    compare(&events, &standin);
    let metrics = bridge_support::get(&format!("http://127.0.0.1:{port}/metrics")).unwrap();
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    let redelivered =
        bridge_support::metric(&text, "langfuse_bridge_redelivered_records_total").unwrap_or(-1.0);
    assert_eq!(
        redelivered, 0.0,
        "nothing was in flight: nothing could be sent twice"
    );
    let mut bridge = bridge;
    kill_9(&mut bridge);
    let _ = std::fs::remove_dir_all(&spool);
}

/// Posts an OTLP/JSON export to the bridge's Langfuse OTLP endpoint.
fn post_otlp(bridge: &str, export: &Value) {
    let answer = post(
        &format!("{bridge}/api/public/otel/v1/traces"),
        &[
            ("content-type", "application/json"),
            (
                "authorization",
                &bridge_support::basic(PUBLIC_KEY, SECRET_KEY),
            ),
        ],
        export.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
}

/// An OpenInference capture whose user and session sit on the root only (conformance case
/// `batch-one-trace-several-spans`, copied from `../shared/conformance/cases/`).
fn root_only_capture() -> Value {
    integration_tests::read_json(
        &integration_tests::fixtures_dir().join("conformance/batch-one-trace-several-spans.json"),
    )["input"]
        .clone()
}

fn rows_through_bridge(
    export: &Value,
    window: f64,
    sends: usize,
) -> Vec<langfuse_otel_core::legacy::V4Row> {
    let standin = standin();
    let mut config = test_config("v4-otlp", &standin.base_url(), "langfuse");
    config.assemble_window_secs = window;
    let bridge = start(Bridge::new(config));
    for _ in 0..sends {
        post_otlp(&bridge.url(), export);
    }
    let spans = export["resourceSpans"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rs| rs["scopeSpans"].as_array().cloned().unwrap_or_default())
        .map(|ss| ss["spans"].as_array().map_or(0, Vec::len))
        .sum::<usize>();
    let want = if window > 0.0 { spans } else { spans * sends };
    let recorded = standin.wait_for(Duration::from_secs(30), |r| r.rows.len() >= want);
    // Nothing more after the window (a second emission would show here).
    std::thread::sleep(Duration::from_secs_f64(window + 0.5));
    bridge.stop();
    let recorded = if recorded.rows.len() >= want {
        standin.recorded()
    } else {
        recorded
    };
    recorded.rows
}

#[test]
fn root_only_trace_attributes_reach_every_row_with_assembly_and_not_without() {
    let export = root_only_capture();
    let root = |key: &str| -> String {
        export["resourceSpans"][0]["scopeSpans"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|ss| ss["spans"].as_array().unwrap().clone())
            .find(|s| s.get("parentSpanId").is_none_or(|p| p.as_str() == Some("")))
            .and_then(|s| {
                s["attributes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|a| a["key"] == key)
                    .map(|a| a["value"]["stringValue"].as_str().unwrap().to_owned())
            })
            .expect("the root sets it")
    };
    let (user, session) = (root("user.id"), root("session.id"));
    let with = rows_through_bridge(&export, 1.0, 1);
    assert_eq!(with.len(), 4);
    for row in &with {
        assert_eq!(
            row.user_id.as_deref(),
            Some(user.as_str()),
            "{}",
            row.observation.id
        );
        assert_eq!(row.session_id.as_deref(), Some(session.as_str()));
    }
    let without = rows_through_bridge(&export, 0.0, 1);
    assert_eq!(without.len(), 4);
    let with_user = without.iter().filter(|r| r.user_id.is_some()).count();
    assert_eq!(
        with_user, 1,
        "only the root's row has the user without assembly"
    );
}

#[test]
fn a_span_sent_twice_within_the_window_is_stored_once() {
    let export = root_only_capture();
    let rows = rows_through_bridge(&export, 1.0, 2);
    let restored = restore(&rows);
    assert_eq!(rows.len(), 4, "{:?}", restored.duplicates);
    assert!(restored.duplicates.is_empty());
    // Without assembly v4 stores each re-sent span again.
    let rows = rows_through_bridge(&export, 0.0, 2);
    assert_eq!(restore(&rows).duplicates.len(), 4);
}

#[test]
fn the_exporters_native_ingestion_reaches_v4_over_otlp_with_one_diagnostic() {
    use langfuse_otel_exporter::{Diagnostics, LangfuseExporter};
    use opentelemetry_sdk::trace::SpanExporter;
    let standin = standin();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&seen);
    let exporter = LangfuseExporter::builder()
        .without_env()
        .langfuse(PUBLIC_KEY, SECRET_KEY)
        .base_url(standin.base_url())
        .ingestion()
        .diagnostics(Diagnostics::new(move |m| {
            sink.lock().unwrap().push(m.to_owned())
        }))
        .build()
        .unwrap();
    let spans = integration_tests::spans::spans;
    futures_executor::block_on(exporter.export(spans(0..5))).expect("first batch");
    futures_executor::block_on(exporter.export(spans(5..12))).expect("second batch");
    let recorded = standin.recorded();
    let mut ids: Vec<String> = recorded
        .rows
        .iter()
        .map(|r| r.observation.id.clone())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        integration_tests::spans::span_ids(0..12),
        "all spans, once, over OTLP"
    );
    let ingestion_requests = standin
        .requests()
        .iter()
        .filter(|r| r.path == "/api/public/ingestion")
        .count();
    assert_eq!(
        ingestion_requests, 1,
        "only the first batch tries ingestion"
    );
    assert!(recorded.refused_events >= 5);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].contains("v4"), "{}", seen[0]);
    assert_eq!(exporter.stats().snapshot().lost_spans(), 0);
}

/// Runs the SDK 5.x API script against `host`; its JSON line.
fn python_v5_api(host: &str, prompt: Option<&str>) -> Value {
    let python = legacy_sdks::python_v5();
    let version = legacy_sdks::python_package_version(&python, "langfuse");
    assert!(version.starts_with("5."), "Python SDK {version}");
    let mut cmd = Command::new(python);
    cmd.arg(integration_tests::fixtures_dir().join("legacy-sdks/python_v5_api.py"));
    if let Some(name) = prompt {
        cmd.arg(name);
    }
    let out = cmd
        .env("LANGFUSE_PUBLIC_KEY", PUBLIC_KEY)
        .env("LANGFUSE_SECRET_KEY", SECRET_KEY)
        .env("LANGFUSE_HOST", host)
        .env("LANGFUSE_TRACING_ENABLED", "false")
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("one JSON line")
}

#[test]
fn the_official_sdks_api_calls_reach_the_upstream_through_the_bridge() {
    let prompt = serde_json::json!({"type": "text", "name": "qa", "version": 3,
        "prompt": "Answer {{q}} briefly.", "config": {}, "labels": ["production"], "tags": [],
        "commitMessage": null});
    let standin = V4StandIn::start(PUBLIC_KEY, SECRET_KEY, vec![prompt.clone()]);
    let bridge = start(Bridge::new(test_config(
        "v4-api",
        &standin.base_url(),
        "langfuse",
    )));
    let answer = python_v5_api(&bridge.url(), Some("qa"));
    assert_eq!(answer["auth_check"], true);
    assert_eq!(answer["prompt"]["name"], prompt["name"]);
    assert_eq!(answer["prompt"]["version"], prompt["version"]);
    assert_eq!(answer["prompt"]["text"], prompt["prompt"]);
    let calls = standin.recorded().calls;
    assert!(
        calls.iter().any(|c| c == "/api/public/projects"),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("/api/public/v2/prompts/")),
        "{calls:?}"
    );
    // With the client's own credentials (the stand-in answers 401 otherwise), and health.
    let health = bridge_support::get(&format!("{}/api/public/health", bridge.url())).unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "OK");
    bridge.stop();
}

#[test]
fn in_local_mode_auth_check_succeeds_and_other_calls_get_a_langfuse_shaped_404() {
    let mut config = test_config("v4-local-api", "http://unused", "local");
    config.db = bridge_support::temp_dir("v4-local-api-db").join("traces.db");
    std::fs::create_dir_all(config.db.parent().unwrap()).unwrap();
    let bridge = start(Bridge::new(config));
    let answer = python_v5_api(&bridge.url(), None);
    assert_eq!(answer["auth_check"], true);
    let prompt =
        bridge_support::get(&format!("{}/api/public/v2/prompts/qa", bridge.url())).unwrap();
    assert_eq!(prompt.status, 404);
    assert_eq!(prompt.json()["error"], "NotFoundError");
    assert!(
        prompt.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("local mode")),
        "{:?}",
        prompt.json()
    );
    bridge.stop();
}

fn bridge_cli(args: &[&str], spool: &std::path::Path) -> std::process::Output {
    Command::new(bridge_support::bridge_binary())
        .env_clear()
        .args(args)
        .arg(spool)
        .output()
        .expect("langfuse-bridge runs")
}

fn health_and_metrics(url: &str) -> (Value, String) {
    let health = bridge_support::get(&format!("{url}/health"))
        .unwrap()
        .json();
    let metrics = bridge_support::get(&format!("{url}/metrics")).unwrap();
    (health, String::from_utf8_lossy(&metrics.body).into_owned())
}

#[test]
fn refused_for_good_is_dead_lettered_listed_and_replayed_once_the_upstream_is_fixed() {
    let standin = standin();
    standin.refuse_otlp(true);
    let mut config = test_config("v4-dead", &standin.base_url(), "langfuse");
    config.assemble_window_secs = 0.5;
    let spool = config.spool.clone();
    let bridge = start(Bridge::new(config));
    let export = root_only_capture();
    post_otlp(&bridge.url(), &export);
    let series = "langfuse_bridge_dead_lettered_items_total{reason=\"upstream_rejected\"}";
    assert!(bridge_support::wait_until(Duration::from_secs(30), || {
        bridge_support::metric(&health_and_metrics(&bridge.url()).1, series).unwrap_or(0.0) >= 4.0
    }));
    let (health, _) = health_and_metrics(&bridge.url());
    assert_eq!(health["dead_lettered_items"], 4, "{health}");
    assert_eq!(health["dead_letter_files"], 1, "{health}");
    bridge.stop();

    let listed = bridge_cli(&["dead-letter", "list"], &spool);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{text}");
    assert!(
        text.contains("upstream_rejected") && text.contains("1 entries, 4 items"),
        "{text}"
    );
    assert!(standin.recorded().rows.is_empty());

    // Still refused: kept, exit status 1.
    let again = bridge_cli(
        &["dead-letter", "replay", "--upstream", &standin.base_url()],
        &spool,
    );
    assert_eq!(
        again.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    standin.refuse_otlp(false);
    let replayed = bridge_cli(
        &["dead-letter", "replay", "--upstream", &standin.base_url()],
        &spool,
    );
    let text = String::from_utf8_lossy(&replayed.stdout);
    assert!(replayed.status.success(), "{text}");
    let recorded = standin.wait_for(Duration::from_secs(10), |r| r.rows.len() >= 4);
    let mut ids: Vec<String> = recorded
        .rows
        .iter()
        .map(|r| r.observation.id.clone())
        .collect();
    ids.sort();
    let mut want: Vec<String> =
        langfuse_otel_core::otlp::decode_json(export.to_string().as_bytes())
            .unwrap()
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .map(|s| s.span_id.to_string())
            .collect();
    want.sort();
    assert_eq!(ids, want, "every refused span arrives, once");
    let listed = bridge_cli(&["dead-letter", "list"], &spool);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("0 entries"));
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn ingestion_refused_by_v4_is_explained_once_and_replayed_as_spans() {
    let standin = standin();
    let spool = bridge_support::temp_dir("v4-events-only");
    let (mut bridge, port, log) = spawn_bridge(&standin.base_url(), &spool, &["--to", "ingestion"]);
    let url = format!("http://127.0.0.1:{port}");
    let ts = "2026-12-07T10:00:00.000Z";
    for n in 0..2 {
        let batch = serde_json::json!({"batch": [
            {"id": format!("e-trace-{n}"), "type": "trace-create", "timestamp": ts,
             "body": {"id": format!("legacy-trace-{n}"), "name": "legacy", "userId": "u"}},
            {"id": format!("e-span-{n}"), "type": "span-create", "timestamp": ts,
             "body": {"id": format!("legacy-span-{n}"), "traceId": format!("legacy-trace-{n}"),
                      "name": "step", "startTime": ts, "endTime": ts}},
        ]});
        let answer = post(
            &format!("{url}/api/public/ingestion"),
            &[
                ("content-type", "application/json"),
                (
                    "authorization",
                    &bridge_support::basic(PUBLIC_KEY, SECRET_KEY),
                ),
            ],
            batch.to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(answer.status, 207);
    }
    assert!(bridge_support::wait_until(Duration::from_secs(30), || {
        standin.recorded().refused_events >= 4
            && bridge_support::metric(
                &health_and_metrics(&url).1,
                "langfuse_bridge_dead_lettered_items_total{reason=\"upstream_rejected\"}",
            )
            .unwrap_or(0.0)
                >= 4.0
    }));
    kill_9(&mut bridge);
    let text = log.lock().unwrap().join("\n");
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("events_only"))
        .collect();
    assert_eq!(errors.len(), 1, "one clear error naming the cause: {text}");
    assert!(errors[0].contains("--to langfuse"), "{text}");
    let replayed = bridge_cli(
        &[
            "dead-letter",
            "replay",
            "--to",
            "langfuse",
            "--upstream",
            &standin.base_url(),
        ],
        &spool,
    );
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stdout)
    );
    let recorded = standin.wait_for(Duration::from_secs(10), |r| r.rows.len() >= 4);
    let restored = restore(&recorded.rows);
    let mut traces: Vec<String> = restored
        .traces
        .iter()
        .filter_map(|t| t.id.clone())
        .collect();
    traces.sort();
    assert_eq!(traces, ["legacy-trace-0", "legacy-trace-1"]);
    assert_eq!(restored.observations.len(), 2);
    let _ = std::fs::remove_dir_all(&spool);
}
