//! The web trace viewer in headless Chromium: `langfuse-bridge ui` on 127.0.0.1 port 0 over a
//! store holding the Python SDK captures and a chat trace with tool calls whose prompt contains
//! `<script>`; `viewer_browser.mjs` (playwright-core) checks the traces table and its filters,
//! the trace page's tree, timeline and messages, keyboard use, that the prompt stays text,
//! and that a trace imported while the page is open appears without a reload.
//!
//! Set-up, done by the test itself (see [`integration_tests::browser`]): Chromium from the
//! Debian packages when `/usr/bin/chromium` is missing (`apt-get install chromium`, as root),
//! `playwright-core` by npm into `<target>/viewer-browser-test/`. Screenshots go to that
//! directory; with
//! `LANGFUSE_UPDATE_SCREENSHOTS=1` they are also copied to `docs/`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use integration_tests::bridge_bin::bridge;
use integration_tests::browser::{self, CHROMIUM};
use integration_tests::captures::trace_requests;
use langfuse_local::{Store, TraceFilter};
use langfuse_otel_core::otlp;
use langfuse_otel_core::translate::translate_batch;
use serde_json::{Value, json};

const CHAT_TRACE: &str = "c0ffee00000000000000000000000001";
const LIVE_TRACE: &str = "c0ffee00000000000000000000000002";
const SCRIPT_PROMPT: &str = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">What is the weather in Paris?";

fn event(kind: &str, timestamp: Option<&str>, body: Value) -> Value {
    let mut e = json!({"type": kind, "body": body});
    if let Some(ts) = timestamp {
        e["timestamp"] = json!(ts);
    }
    e
}

/// A chat trace: an agent span with a generation that calls a tool, the tool, and a failing
/// generation. Returns the events and (observation id, depth) of each observation.
fn chat_trace() -> (Vec<Value>, Vec<(&'static str, usize)>) {
    let t = |s: &str| format!("2026-11-23T10:00:{s}Z");
    let events = vec![
        event(
            "trace-create",
            Some(&t("00.000")),
            json!({"id": CHAT_TRACE, "timestamp": t("00.000"), "name": "weather-chat",
                "userId": "user-chat", "sessionId": "session-chat", "tags": ["chat", "tools"],
                "input": SCRIPT_PROMPT}),
        ),
        event(
            "agent-create",
            None,
            json!({"id": "a000000000000001", "traceId": CHAT_TRACE, "name": "agent-run",
                "startTime": t("00.000"), "endTime": t("02.000")}),
        ),
        event(
            "generation-create",
            None,
            json!({"id": "a000000000000002", "traceId": CHAT_TRACE,
                "parentObservationId": "a000000000000001", "name": "plan",
                "startTime": t("00.100"), "endTime": t("01.000"), "model": "gpt-4o",
                "modelParameters": {"temperature": 0.1},
                "usageDetails": {"input": 1200, "output": 80},
                "input": [{"role": "system", "content": "You are a weather bot."},
                          {"role": "user", "content": SCRIPT_PROMPT}],
                "output": {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}),
        ),
        event(
            "tool-create",
            None,
            json!({"id": "a000000000000003", "traceId": CHAT_TRACE,
                "parentObservationId": "a000000000000001", "name": "get_weather",
                "startTime": t("01.000"), "endTime": t("01.500"),
                "input": {"city": "Paris"}, "output": {"tempC": 21}}),
        ),
        event(
            "generation-create",
            None,
            json!({"id": "a000000000000004", "traceId": CHAT_TRACE,
                "parentObservationId": "a000000000000001", "name": "answer",
                "startTime": t("01.500"), "endTime": t("02.000"), "model": "gpt-4o",
                "level": "ERROR", "statusMessage": "rate limited",
                "input": [{"role": "tool", "tool_call_id": "call_1", "content": "{\"tempC\":21}"}]}),
        ),
        event(
            "score-create",
            Some(&t("02.000")),
            json!({"id": "s-chat-1", "traceId": CHAT_TRACE, "name": "helpfulness", "value": 0.4}),
        ),
    ];
    let tree = vec![
        ("a000000000000001", 0),
        ("a000000000000002", 1),
        ("a000000000000003", 1),
        ("a000000000000004", 1),
    ];
    (events, tree)
}

fn write_lines(path: &Path, events: &[Value]) {
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(path, text).expect("writing events");
}

/// The viewer process, stopped on drop.
struct Viewer(Child);

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_viewer(db: &Path) -> (Viewer, String) {
    let mut child = Command::new(bridge())
        .args(["ui", "--http", "127.0.0.1:0", "--db"])
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting langfuse-bridge ui");
    let stdout = child.stdout.take().expect("stdout");
    let viewer = Viewer(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reading the ui's address");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    (viewer, url)
}

#[test]
fn viewer_filters_shows_tree_timeline_and_messages_and_keeps_markup_as_text() {
    let work = browser::prepare();
    let run_dir = work.join(format!("run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(&run_dir).expect("run dir");

    // The store: the Python SDK captures and the chat trace.
    let db = run_dir.join("traces.db");
    let store = Store::open(&db).expect("store");
    for request in trace_requests("python-sdk") {
        let batch = otlp::decode_protobuf(&request.raw).expect("capture decodes");
        store
            .ingest(&translate_batch(&batch).events)
            .expect("ingest");
    }
    let (chat_events, tree) = chat_trace();
    let chat_file = run_dir.join("chat.jsonl");
    write_lines(&chat_file, &chat_events);
    let status = Command::new(bridge())
        .arg("import")
        .arg(&chat_file)
        .arg("--db")
        .arg(&db)
        .status()
        .expect("import");
    assert!(status.success());
    let live_file = run_dir.join("live.jsonl");
    write_lines(
        &live_file,
        &[event(
            "trace-create",
            Some("2026-11-23T11:00:00.000Z"),
            json!({"id": LIVE_TRACE, "name": "arrived-later", "timestamp": "2026-11-23T11:00:00.000Z"}),
        )],
    );

    // Expectations, computed from the store's unfiltered list.
    let all = store
        .list_traces(&TraceFilter {
            limit: 0,
            ..TraceFilter::default()
        })
        .expect("list");
    assert!(all.len() <= 50, "one page holds every trace");
    let user = "user_456";
    let user_ids: Vec<&str> = all
        .iter()
        .filter(|t| t.user_id.as_deref() == Some(user))
        .map(|t| t.id.as_str())
        .collect();
    assert!(!user_ids.is_empty() && user_ids.len() < all.len());
    let error_ids: Vec<&str> = all
        .iter()
        .filter(|t| t.level == "ERROR")
        .map(|t| t.id.as_str())
        .collect();
    let most_expensive = all
        .iter()
        .filter(|t| t.total_cost.is_some())
        .max_by(|a, b| {
            a.total_cost
                .partial_cmp(&b.total_cost)
                .expect("finite costs")
        })
        .expect("a trace with cost");
    let expect = json!({
        "traceCount": all.len(),
        "user": user,
        "userTraceIds": user_ids,
        "errorTraceIds": error_ids,
        "mostExpensive": most_expensive.id,
        "chatTrace": CHAT_TRACE,
        "chatObservations": tree.iter().map(|(id, depth)| json!({"id": id, "depth": depth})).collect::<Vec<_>>(),
        "generation": "a000000000000002",
        "toolName": "get_weather",
        "model": "gpt-4o",
        "scriptPrompt": SCRIPT_PROMPT,
        "liveTrace": LIVE_TRACE,
    });
    drop(store);

    let (_viewer, url) = start_viewer(&db);
    let import_cmd = json!([
        bridge().to_str().expect("utf-8 path"),
        "import",
        live_file.to_str().expect("utf-8 path"),
        "--db",
        db.to_str().expect("utf-8 path")
    ]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/viewer_browser.mjs");
    let runner = work.join("viewer_browser.mjs");
    std::fs::copy(&script, &runner).expect("copying the browser script");
    let env: HashMap<&str, String> = HashMap::from([
        ("BASE_URL", url),
        ("CHROMIUM", CHROMIUM.to_owned()),
        (
            "USER_DATA_DIR",
            run_dir.join("profile").to_string_lossy().into_owned(),
        ),
        ("SHOT_DIR", run_dir.to_string_lossy().into_owned()),
        ("EXPECT", expect.to_string()),
        ("IMPORT_CMD", import_cmd.to_string()),
    ]);
    let out = Command::new("node")
        .arg(&runner)
        .envs(env)
        .current_dir(&work)
        .output()
        .expect("running node");
    assert!(
        out.status.success(),
        "browser checks failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if std::env::var_os("LANGFUSE_UPDATE_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        std::fs::create_dir_all(&docs).expect("docs dir");
        for shot in ["viewer-traces.png", "viewer-trace.png"] {
            std::fs::copy(run_dir.join(shot), docs.join(shot)).expect("copying a screenshot");
        }
    }
    let _ = std::fs::remove_dir_all(PathBuf::from(&run_dir).join("profile"));
}
