//! The coding-agent captures (`fixtures/agent-cli/`, from `shared/agent-cli/captures/`): each
//! run's export requests in arrival order, and what the capture's own events say its turn
//! holds (the expectations of the replay tests, derived from the capture, never written down).

use std::path::PathBuf;

use serde_json::{Map, Value};

/// The runs.
pub const RUNS: [&str; 4] = ["claude", "claude-no-enhanced", "codex", "gemini"];

/// One export request of a run.
#[derive(Debug, Clone)]
pub struct CaptureRequest {
    /// `traces`, `logs` or `metrics`.
    pub signal: String,
    /// `http` or `grpc`.
    pub transport: String,
    /// The request as OTLP/JSON (the capture's form of the protobuf payload).
    pub json: Vec<u8>,
}

fn run_dir(run: &str) -> PathBuf {
    crate::fixtures_dir().join("agent-cli").join(run)
}

/// The run's requests in arrival order.
pub fn requests(run: &str) -> Vec<CaptureRequest> {
    let dir = run_dir(run);
    let index = std::fs::read_to_string(dir.join("index.jsonl")).expect("index.jsonl");
    index
        .lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).expect("index line");
            let name = entry["name"].as_str().expect("name");
            CaptureRequest {
                signal: entry["signal"].as_str().expect("signal").to_owned(),
                transport: entry["transport"].as_str().expect("transport").to_owned(),
                json: std::fs::read(dir.join(format!("{name}.json"))).expect("request file"),
            }
        })
        .collect()
}

/// The attributes (values as JSON, the `AnyValue` wrapper removed) of the run's log records
/// whose `event.name` is `name`, in order.
pub fn events(run: &str, name: &str) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    for request in requests(run) {
        if request.signal != "logs" {
            continue;
        }
        let v: Value = serde_json::from_slice(&request.json).expect("logs JSON");
        for rl in v["resourceLogs"].as_array().into_iter().flatten() {
            for sl in rl["scopeLogs"].as_array().into_iter().flatten() {
                for r in sl["logRecords"].as_array().into_iter().flatten() {
                    let mut m = Map::new();
                    for a in r["attributes"].as_array().into_iter().flatten() {
                        let value = a["value"]
                            .as_object()
                            .and_then(|o| o.values().next().cloned())
                            .unwrap_or(Value::Null);
                        m.insert(a["key"].as_str().unwrap_or_default().to_owned(), value);
                    }
                    if m.get("event.name").and_then(Value::as_str) == Some(name) {
                        out.push(m);
                    }
                }
            }
        }
    }
    out
}

fn num(m: &Map<String, Value>, key: &str) -> f64 {
    match &m[key] {
        Value::String(s) => s.parse().expect("a number"),
        v => v.as_f64().expect("a number"),
    }
}

fn text(m: &Map<String, Value>, key: &str) -> String {
    m[key].as_str().expect("a string").to_owned()
}

fn truthy(m: &Map<String, Value>, key: &str) -> bool {
    match &m[key] {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        other => panic!("{key}: {other}"),
    }
}

/// One model request as the events describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedGeneration {
    /// The model.
    pub model: String,
    /// Usage in Langfuse's keys.
    pub usage: Vec<(&'static str, f64)>,
    /// The CLI's own cost, when it reports one.
    pub cost: Option<f64>,
}

/// What the events say a run's turn holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// Session (conversation) id.
    pub session: String,
    /// The prompt.
    pub prompt: String,
    /// The user, when the CLI names one.
    pub user: Option<String>,
    /// Model requests, in order.
    pub generations: Vec<ExpectedGeneration>,
    /// Tool calls: (name, succeeded), in order.
    pub tools: Vec<(String, bool)>,
}

/// What the capture's events of `run` say.
pub fn expected(run: &str) -> Expected {
    match run {
        "claude" | "claude-no-enhanced" => {
            let prompt = &events(run, "user_prompt")[0];
            Expected {
                session: text(prompt, "session.id"),
                prompt: text(prompt, "prompt"),
                user: Some(text(prompt, "user.id")),
                generations: events(run, "api_request")
                    .iter()
                    .map(|e| ExpectedGeneration {
                        model: text(e, "model"),
                        usage: vec![
                            ("input", num(e, "input_tokens")),
                            ("output", num(e, "output_tokens")),
                            ("input_cache_read", num(e, "cache_read_tokens")),
                            ("input_cache_creation", num(e, "cache_creation_tokens")),
                        ],
                        cost: Some(num(e, "cost_usd")),
                    })
                    .collect(),
                tools: events(run, "tool_result")
                    .iter()
                    .map(|e| (text(e, "tool_name"), truthy(e, "success")))
                    .collect(),
            }
        }
        "codex" => {
            let prompt = &events(run, "codex.user_prompt")[0];
            Expected {
                session: text(prompt, "conversation.id"),
                prompt: text(prompt, "prompt"),
                user: None,
                generations: events(run, "codex.sse_event")
                    .iter()
                    .filter(|e| e.contains_key("input_token_count"))
                    .map(|e| {
                        let cached = num(e, "cached_token_count");
                        let reasoning = num(e, "reasoning_token_count");
                        ExpectedGeneration {
                            model: text(e, "model"),
                            usage: vec![
                                (
                                    "input",
                                    num(e, "input_token_count")
                                        - cached
                                        - num(e, "cache_write_token_count"),
                                ),
                                ("input_cache_read", cached),
                                ("output", num(e, "output_token_count") - reasoning),
                                ("output_reasoning", reasoning),
                            ],
                            cost: None,
                        }
                    })
                    .collect(),
                tools: events(run, "codex.tool_result")
                    .iter()
                    .map(|e| (text(e, "tool_name"), truthy(e, "success")))
                    .collect(),
            }
        }
        "gemini" => {
            let prompt = &events(run, "gemini_cli.user_prompt")[0];
            Expected {
                session: text(prompt, "session.id"),
                prompt: text(prompt, "prompt"),
                user: None,
                generations: events(run, "gemini_cli.api_response")
                    .iter()
                    .map(|e| {
                        let cached = num(e, "cached_content_token_count");
                        ExpectedGeneration {
                            model: text(e, "model"),
                            usage: vec![
                                ("input", num(e, "input_token_count") - cached),
                                ("input_cache_read", cached),
                                ("output", num(e, "output_token_count")),
                                ("output_reasoning", num(e, "thoughts_token_count")),
                                ("total", num(e, "total_token_count")),
                            ],
                            cost: None,
                        }
                    })
                    .collect(),
                tools: events(run, "gemini_cli.tool_call")
                    .iter()
                    .map(|e| (text(e, "function_name"), truthy(e, "success")))
                    .collect(),
            }
        }
        other => panic!("unknown run {other}"),
    }
}
