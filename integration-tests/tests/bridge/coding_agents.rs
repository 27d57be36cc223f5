//! Coding agents through `serve`: the captures of Claude Code (with and without its span
//! beta), Codex CLI and Gemini CLI (`fixtures/agent-cli/`, from `shared/agent-cli/captures/`)
//! replayed in their arrival order and transport (OTLP/HTTP protobuf, or OTLP/gRPC for Gemini
//! CLI), and what comes out compared with what the capture's own events say, field by field:
//! one trace per turn, its session, prompt and user, one generation per model request (model,
//! usage, the CLI's cost), one tool per tool call (name, outcome), nothing counted twice.

use crate::bridge_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bridge_support::{RunningBridge, gzip, post, start, temp_dir, test_config, wait_until};
use integration_tests::agent_captures::{self, CaptureRequest, Expected, RUNS, expected};
use integration_tests::bridge_bin::bridge;
use integration_tests::receiver::{Action, Receiver};
use langfuse_bridge::{Bridge, Destination};
use langfuse_otel_core::translate::{Compatibility, TranslateOptions, Translator};
use opentelemetry_proto::tonic::collector::{logs, metrics, trace};
use prost::Message;
use serde_json::Value;

/// OTLP/JSON omits empty lists (`"arrayValue":{}`); the generated serde types want them.
fn with_empty_lists(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for key in ["arrayValue", "kvlistValue"] {
                if let Some(Value::Object(inner)) = m.get_mut(key) {
                    inner
                        .entry("values")
                        .or_insert_with(|| Value::Array(Vec::new()));
                }
            }
            m.values_mut().for_each(with_empty_lists);
        }
        Value::Array(a) => a.iter_mut().for_each(with_empty_lists),
        _ => {}
    }
}

/// The capture's protobuf payload (its JSON form, encoded back).
fn protobuf(request: &CaptureRequest) -> Vec<u8> {
    let mut json: Value = serde_json::from_slice(&request.json).expect("JSON");
    with_empty_lists(&mut json);
    match request.signal.as_str() {
        "traces" => serde_json::from_value::<trace::v1::ExportTraceServiceRequest>(json)
            .expect("trace JSON")
            .encode_to_vec(),
        "logs" => serde_json::from_value::<logs::v1::ExportLogsServiceRequest>(json)
            .expect("logs JSON")
            .encode_to_vec(),
        _ => serde_json::from_value::<metrics::v1::ExportMetricsServiceRequest>(json)
            .expect("metrics JSON")
            .encode_to_vec(),
    }
}

/// Sends the run's requests to the bridge, in order, each over its original transport.
fn replay(run: &str, bridge: &RunningBridge) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for request in agent_captures::requests(run) {
        let body = protobuf(&request);
        if request.transport == "grpc" {
            let endpoint = format!("http://{}", bridge.grpc.expect("gRPC listener"));
            runtime.block_on(async {
                match request.signal.as_str() {
                    "traces" => {
                        let mut c =
                            trace::v1::trace_service_client::TraceServiceClient::connect(endpoint)
                                .await
                                .unwrap()
                                .send_compressed(tonic::codec::CompressionEncoding::Gzip);
                        c.export(trace::v1::ExportTraceServiceRequest::decode(&*body).unwrap())
                            .await
                            .expect("gRPC traces accepted");
                    }
                    "logs" => {
                        let mut c =
                            logs::v1::logs_service_client::LogsServiceClient::connect(endpoint)
                                .await
                                .unwrap()
                                .send_compressed(tonic::codec::CompressionEncoding::Gzip);
                        c.export(logs::v1::ExportLogsServiceRequest::decode(&*body).unwrap())
                            .await
                            .expect("gRPC logs accepted");
                    }
                    _ => {
                        let mut c =
                            metrics::v1::metrics_service_client::MetricsServiceClient::connect(
                                endpoint,
                            )
                            .await
                            .unwrap();
                        c.export(metrics::v1::ExportMetricsServiceRequest::decode(&*body).unwrap())
                            .await
                            .expect("gRPC metrics accepted");
                    }
                }
            });
        } else {
            let answer = post(
                &format!("{}/v1/{}", bridge.url(), request.signal),
                &[("content-type", "application/x-protobuf")],
                &body,
            )
            .unwrap();
            assert_eq!(answer.status, 200, "{run} {}", request.signal);
        }
    }
}

fn local_bridge(tag: &str) -> (RunningBridge, PathBuf) {
    let mut config = test_config(tag, "http://unused", "local");
    config.to = Some(Destination::Local);
    config.upstream = None;
    config.agent_window_secs = 0.3;
    let dir = temp_dir(tag);
    std::fs::create_dir_all(&dir).unwrap();
    config.db = dir.join("traces.db");
    (start(Bridge::new(config)), dir)
}

fn traces_cmd(db: &Path, args: &[&str]) -> Value {
    let out = Command::new(bridge())
        .arg("traces")
        .args(args)
        .arg("--db")
        .arg(db)
        .arg("--json")
        .output()
        .expect("traces runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("traces JSON")
}

/// The traces the local store holds, each with its observations (`traces show --json`).
fn stored_traces(db: &Path) -> Vec<Value> {
    let list = traces_cmd(db, &["list"]);
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| traces_cmd(db, &["show", t["id"].as_str().unwrap()]))
        .collect()
}

fn observations<'a>(trace: &'a Value, kind: &str) -> Vec<&'a Value> {
    let mut out: Vec<&Value> = trace["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == kind)
        .collect();
    out.sort_by_key(|o| o["startTime"].as_str().unwrap_or_default().to_owned());
    out
}

/// One stored trace against what the capture's events say.
fn check_trace(run: &str, trace: &Value, want: &Expected) {
    assert_eq!(trace["sessionId"], want.session.as_str(), "{run}: session");
    assert_eq!(trace["input"], want.prompt.as_str(), "{run}: input");
    if let Some(user) = &want.user {
        assert_eq!(trace["userId"], user.as_str(), "{run}: user");
    }
    let gens = observations(trace, "GENERATION");
    assert_eq!(gens.len(), want.generations.len(), "{run}: generations");
    for (g, w) in gens.iter().zip(&want.generations) {
        assert_eq!(g["model"], w.model.as_str(), "{run}");
        for (key, n) in &w.usage {
            assert_eq!(
                g["usageDetails"][key].as_f64(),
                Some(*n),
                "{run}: {key} of {g}"
            );
        }
        if let Some(cost) = w.cost {
            assert_eq!(
                g["costDetails"]["total"].as_f64(),
                Some(cost),
                "{run}: cost"
            );
            // (Local mode says whether a cost is its estimate; the CLI's own is not.)
            if !g["costEstimated"].is_null() {
                assert_eq!(g["costEstimated"], false, "{run}: the CLI's own cost");
            }
        }
    }
    let mut tools: Vec<(String, bool)> = observations(trace, "TOOL")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["level"] != "ERROR",
            )
        })
        .collect();
    let mut want_tools = want.tools.clone();
    tools.sort();
    want_tools.sort();
    assert_eq!(tools, want_tools, "{run}: tools");
}

#[test]
fn each_capture_replayed_into_a_local_bridge_is_one_trace_with_what_its_events_say() {
    for run in RUNS {
        let (bridge, dir) = local_bridge(&format!("agents-{run}"));
        replay(run, &bridge);
        let db = dir.join("traces.db");
        let want = expected(run);
        let mut traces = Vec::new();
        let complete = wait_until(Duration::from_secs(30), || {
            traces = stored_traces(&db);
            traces.len() == 1
                && observations(&traces[0], "GENERATION").len() == want.generations.len()
        });
        assert!(complete, "{run}: {traces:#?}");
        check_trace(run, &traces[0], &want);
        bridge.stop();
        // Still one trace after the restart-free stop (the drain sends nothing twice).
        assert_eq!(stored_traces(&db).len(), 1, "{run}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The records Langfuse's server derives from what the bridge sent it (`--to langfuse`),
/// translated back with our server-mode translator, per trace: the fields compared.
fn records_from_langfuse_otlp(requests: &[integration_tests::receiver::Request]) -> Vec<Value> {
    let mut translator = Translator::with_options(TranslateOptions {
        compatibility: Compatibility::Server,
        ..TranslateOptions::default()
    });
    requests
        .iter()
        .filter(|r| r.path.ends_with("/otel/v1/traces"))
        .flat_map(|r| {
            let batch = langfuse_otel_core::otlp::decode_protobuf(&r.body).expect("OTLP");
            translator.translate(&batch).events
        })
        .map(|e| serde_json::to_value(&e).unwrap())
        .collect()
}

#[test]
fn to_langfuse_the_same_records_as_local_mode() {
    for run in RUNS {
        let receiver = Receiver::start(|_, _| Action::ok());
        let mut config = test_config(
            &format!("agents-lf-{run}"),
            &receiver.base_url(),
            "langfuse",
        );
        config.public_key = Some("pk-lf-test".into());
        config.secret_key = Some("sk-lf-test".into());
        config.agent_window_secs = 0.3;
        let bridge = start(Bridge::new(config));
        // The bridge requires its keys from clients now.
        let auth = bridge_support::basic("pk-lf-test", "sk-lf-test");
        for request in agent_captures::requests(run) {
            let answer = post(
                &format!("{}/v1/{}", bridge.url(), request.signal),
                &[
                    ("content-type", "application/x-protobuf"),
                    ("authorization", &auth),
                ],
                &protobuf(&request),
            )
            .unwrap();
            assert_eq!(answer.status, 200, "{run}");
        }
        let want = expected(run);
        let mut records = Vec::new();
        let sent = wait_until(Duration::from_secs(30), || {
            records = records_from_langfuse_otlp(&receiver.requests());
            records
                .iter()
                .filter(|r| r["type"] == "generation-create")
                .count()
                == want.generations.len()
        });
        assert!(sent, "{run}: {records:#?}");
        bridge.stop();
        // The same fields as local mode shows (checked against the events there).
        // Every span of the turn carries the trace's fields (Langfuse v4 reads them per span),
        // so several spans give trace-create events: all of one trace, which Langfuse merges.
        let traces: Vec<&Value> = records
            .iter()
            .filter(|r| r["type"] == "trace-create")
            .map(|r| &r["body"])
            .collect();
        let ids: std::collections::BTreeSet<&str> =
            traces.iter().filter_map(|t| t["id"].as_str()).collect();
        assert_eq!(ids.len(), 1, "{run}: one trace");
        assert!(
            traces.len() > 1,
            "{run}: the trace's fields are on the turn's other spans too"
        );
        let field = |key: &str| {
            traces
                .iter()
                .map(|t| &t[key])
                .find(|v| !v.is_null())
                .cloned()
                .unwrap_or(Value::Null)
        };
        let mut gens: Vec<&Value> = records
            .iter()
            .filter(|r| r["type"] == "generation-create")
            .map(|r| &r["body"])
            .collect();
        gens.sort_by_key(|g| g["startTime"].as_str().unwrap_or_default().to_owned());
        let tools: Vec<&Value> = records
            .iter()
            .filter(|r| r["type"] == "tool-create")
            .map(|r| &r["body"])
            .collect();
        let observations: Vec<Value> = gens
            .iter()
            .map(|g| {
                let mut g = (*g).clone();
                g["type"] = "GENERATION".into();
                g
            })
            .chain(tools.iter().map(|t| {
                let mut t = (*t).clone();
                t["type"] = "TOOL".into();
                if t["level"].is_null() {
                    t["level"] = "DEFAULT".into();
                }
                t
            }))
            .collect();
        let as_stored = serde_json::json!({
            "sessionId": field("sessionId"),
            "input": field("input"),
            "userId": field("userId"),
            "observations": observations,
        });
        check_trace(run, &as_stored, &want);
    }
}

#[test]
fn to_otlp_all_three_signals_pass_through_unchanged() {
    let receiver = Receiver::start(|_, _| Action::ok());
    let config = test_config(
        "agents-otlp",
        &format!("{}/v1/traces", receiver.base_url()),
        "otlp",
    );
    let bridge = start(Bridge::new(config));
    let sent: Vec<(String, Vec<u8>)> = agent_captures::requests("claude")
        .iter()
        .map(|r| (r.signal.clone(), protobuf(r)))
        .collect();
    for (signal, body) in &sent {
        let answer = post(
            &format!("{}/v1/{signal}", bridge.url()),
            &[("content-type", "application/x-protobuf")],
            body,
        )
        .unwrap();
        assert_eq!(answer.status, 200);
    }
    let all = wait_until(Duration::from_secs(20), || {
        receiver.requests().len() >= sent.len()
    });
    assert!(all, "{:?}", receiver.requests());
    bridge.stop();
    for (signal, body) in &sent {
        let path = format!("/v1/{signal}");
        let got = receiver.requests();
        let r = got.iter().find(|r| r.path == path).expect(&path);
        assert_eq!(&r.body, body, "{signal} unchanged");
    }
}

#[test]
fn bad_logs_and_metrics_get_the_answers_traces_get() {
    let (bridge, dir) = {
        let mut config = test_config("agents-bad", "http://unused", "local");
        config.to = Some(Destination::Local);
        config.upstream = None;
        config.max_body_bytes = 1024;
        let dir = temp_dir("agents-bad-db");
        std::fs::create_dir_all(&dir).unwrap();
        config.db = dir.join("traces.db");
        (start(Bridge::new(config)), dir)
    };
    for signal in ["logs", "metrics"] {
        let url = format!("{}/v1/{signal}", bridge.url());
        let pb = [("content-type", "application/x-protobuf")];
        assert_eq!(post(&url, &pb, b"\x0a\xff\xff\xff").unwrap().status, 400);
        let json = [("content-type", "application/json")];
        assert_eq!(
            post(&url, &json, b"{\"resourceLogs\":").unwrap().status,
            400
        );
        let text = [("content-type", "text/plain")];
        assert_eq!(post(&url, &text, b"{}").unwrap().status, 415);
        assert_eq!(post(&url, &pb, &vec![0u8; 4096]).unwrap().status, 413);
        // gzip is accepted, and an empty export is a valid one.
        let gz = [
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ];
        assert_eq!(post(&url, &gz, &gzip(b"{}")).unwrap().status, 200);
    }
    bridge.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `langfuse-bridge serve --to local` as a process (so it can be killed), on a port of its
/// choosing (read from its `listening` log line).
fn spawn_local(spool: &Path, db: &Path, window: &str) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(bridge())
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--grpc",
            "off",
            "--to",
            "local",
        ])
        .arg("--db")
        .arg(db)
        .arg("--spool")
        .arg(spool)
        .args([
            "--fsync",
            "always",
            "--agent-window",
            window,
            "--log-format",
            "json",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("bridge starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && let Some(http) = v["fields"]["http"].as_str()
            {
                let _ = tx.send(http.to_owned());
            }
        }
    });
    let http = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the bridge logs its address");
    (child, format!("http://{http}"))
}

#[test]
fn a_turn_held_in_the_window_survives_kill_9() {
    let dir = temp_dir("agents-kill");
    std::fs::create_dir_all(&dir).unwrap();
    let (spool, db) = (dir.join("spool"), dir.join("traces.db"));
    let run = "claude-no-enhanced";
    // A window far longer than the test: the turn is held when the bridge dies.
    let (mut child, url) = spawn_local(&spool, &db, "3600");
    for request in agent_captures::requests(run) {
        let answer = post(
            &format!("{url}/v1/{}", request.signal),
            &[("content-type", "application/x-protobuf")],
            &protobuf(&request),
        )
        .unwrap();
        assert_eq!(answer.status, 200);
    }
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    assert_eq!(
        stored_traces(&db).len(),
        0,
        "held, not delivered, before the crash"
    );
    // Restarted with a short window: the acknowledged records were never committed, so the
    // turn is assembled again from the spool.
    let (mut child, _) = spawn_local(&spool, &db, "0.3");
    let want = expected(run);
    let mut traces = Vec::new();
    let complete = wait_until(Duration::from_secs(30), || {
        traces = stored_traces(&db);
        traces.len() == 1 && observations(&traces[0], "GENERATION").len() == want.generations.len()
    });
    child.kill().unwrap();
    let _ = child.wait();
    assert!(complete, "{traces:#?}");
    check_trace(run, &traces[0], &want);
    let _ = std::fs::remove_dir_all(&dir);
}
