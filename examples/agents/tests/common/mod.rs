//! Shared parts of the example tests (`mod common;` in each test): run an example binary against
//! the fake OpenAI-compatible server and a local Langfuse OTLP receiver, and read what arrived
//! the way the Langfuse server does (`langfuse-bridge translate --compat server`).

#![allow(dead_code)]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use integration_tests::events::translate_events;
use integration_tests::receiver::{Action, Receiver};
use langfuse_otel_agent_examples::fake_openai::FakeOpenAi;
use langfuse_otel_core::translate::Compatibility;
use serde_json::Value;

pub const LANGFUSE_PATH: &str = "/api/public/otel/v1/traces";

/// What one run produced.
pub struct Run {
    pub output: Output,
    /// The observation bodies (`*-create` events other than `trace-create`), server mode, each
    /// with its event type added as `eventType`.
    pub observations: Vec<Value>,
    /// The `trace-create` bodies.
    pub traces: Vec<Value>,
    /// Observations the server would drop.
    pub dropped: Vec<Value>,
    /// The requests the fake model server got.
    pub model_requests: Vec<Value>,
}

/// Runs `bin` with a clean environment: the fake model server, Langfuse at a local receiver,
/// content capture on; waits until `min_observations` observations have arrived.
pub fn run_online(bin: &str, extra_env: &[(&str, &str)], min_observations: usize) -> Run {
    let model = FakeOpenAi::start().expect("fake server");
    let langfuse = Receiver::start(|_, _| Action::ok());
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("OPENAI_BASE_URL", model.base_url())
        .env("LANGFUSE_PUBLIC_KEY", "pk-lf-test")
        .env("LANGFUSE_SECRET_KEY", "sk-lf-test")
        .env("LANGFUSE_BASE_URL", langfuse.base_url())
        .env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let output = cmd.output().expect("example runs");
    assert!(
        output.status.success(),
        "{bin} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The example flushes before it exits; the wait only covers a slow receiver thread.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (observations, traces, dropped) = events(&langfuse);
        if observations.len() >= min_observations || Instant::now() > deadline {
            return Run {
                output,
                observations,
                traces,
                dropped,
                model_requests: model.requests(),
            };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn events(receiver: &Receiver) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let (mut observations, mut traces, mut dropped) = (Vec::new(), Vec::new(), Vec::new());
    for r in receiver
        .requests()
        .iter()
        .filter(|r| r.path == LANGFUSE_PATH)
    {
        let batch = langfuse_otel_core::otlp::decode(&r.body).expect("OTLP body");
        let (events, gone) = translate_events(&batch, Compatibility::Server);
        dropped.extend(gone);
        for e in events {
            if e["type"] == "trace-create" {
                traces.push(e["body"].clone());
            } else {
                let mut body = e["body"].clone();
                body["eventType"] = e["type"].clone();
                observations.push(body);
            }
        }
    }
    (observations, traces, dropped)
}

/// The observations named `name`.
pub fn named<'a>(observations: &'a [Value], name: &str) -> Vec<&'a Value> {
    observations.iter().filter(|o| o["name"] == name).collect()
}

/// The one observation named `name`.
pub fn one<'a>(observations: &'a [Value], name: &str) -> &'a Value {
    let found = named(observations, name);
    assert_eq!(
        found.len(),
        1,
        "{name}: {:?}",
        observations.iter().map(|o| &o["name"]).collect::<Vec<_>>()
    );
    found[0]
}

/// A JSON field that may arrive as a JSON string: parsed.
pub fn json_of(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    }
}

/// Every observation is in the trace of `root`, which has no parent; returns the root.
pub fn assert_one_trace_under<'a>(observations: &'a [Value], root: &str) -> &'a Value {
    let root = one(observations, root);
    assert_eq!(
        root["parentObservationId"],
        Value::Null,
        "the run is the root"
    );
    for o in observations {
        assert_eq!(
            o["traceId"], root["traceId"],
            "{} in another trace",
            o["name"]
        );
        if o["id"] != root["id"] {
            assert!(
                observations
                    .iter()
                    .any(|p| p["id"] == o["parentObservationId"]),
                "{} points to a parent never sent",
                o["name"]
            );
        }
    }
    root
}

/// A generation with the model, the fake server's usage, an input and an output.
pub fn assert_generation(o: &Value, model: &str) {
    use langfuse_otel_agent_examples::fake_openai::{COMPLETION_TOKENS, PROMPT_TOKENS};
    assert_eq!(o["eventType"], "generation-create", "{o:#}");
    assert_eq!(o["model"], model, "{o:#}");
    assert_eq!(o["usageDetails"]["input"], PROMPT_TOKENS, "{o:#}");
    assert_eq!(o["usageDetails"]["output"], COMPLETION_TOKENS, "{o:#}");
    assert!(!o["input"].is_null() && !o["output"].is_null(), "{o:#}");
}

/// The completion start time lies at least `min_ms` after the start and before the end
/// (timestamps are fixed-width ISO 8601 in UTC, so text order is time order).
pub fn assert_completion_start(o: &Value, min_ms: i64) {
    let start = o["startTime"].as_str().expect("startTime");
    let first = o["completionStartTime"]
        .as_str()
        .unwrap_or_else(|| panic!("no completionStartTime: {o:#}"));
    let end = o["endTime"].as_str().expect("endTime");
    assert!(start < first && first <= end, "{start} {first} {end}");
    assert!(millis(first) - millis(start) >= min_ms, "{start} {first}");
}

fn millis(iso: &str) -> i64 {
    // "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC, as the translator writes it).
    let num = |range: std::ops::Range<usize>| -> i64 { iso[range].parse().expect(iso) };
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    // Days since 1970-01-01 (proleptic Gregorian; H. Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + num(11..13) * 3600 + num(14..16) * 60 + num(17..19);
    secs * 1000 + num(20..23)
}

/// Text of a value, whether it arrived as a string or as JSON.
pub fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn iso_timestamps_convert_to_unix_milliseconds() {
    assert_eq!(millis("1970-01-01T00:00:00.000Z"), 0);
    assert_eq!(millis("2026-12-02T21:14:22.529Z"), 1_796_246_062_529);
    assert_eq!(
        millis("2027-01-01T00:00:00.010Z") - millis("2026-12-31T23:59:59.990Z"),
        20
    );
}

/// Runs `bin` without Langfuse keys (offline file in a fresh directory) against its own fake
/// server; returns stdout.
pub fn run_offline(bin: &str, name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("agent-examples-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("offline.jsonl");
    let output = Command::new(bin)
        .env_clear()
        .env("LANGFUSE_OFFLINE_PATH", &file)
        .env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
        .output()
        .expect("example runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(file.exists(), "offline file written");
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8_lossy(&output.stdout).into_owned()
}
