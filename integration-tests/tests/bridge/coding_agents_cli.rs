//! End to end with the real Claude Code CLI: the test installs `@anthropic-ai/claude-code`
//! (pinned, the version of the captures) from the npm registry into the target directory, runs
//! it headless against a fake Anthropic Messages API written here, with its OTel exporter
//! pointed at a bridge the test starts (`--to local`), and checks the trace the bridge stored
//! against what the fake API served: one trace for the prompt, one generation per request the
//! fake answered (its model and token counts), the tool call the fake asked for.
//!
//! Needs `npm` and Node.js (the install script); the CLI itself is a native binary. Without
//! `npm` on the machine the test fails with that reason (set `SKIP_AGENT_CLI_TESTS=1` to skip).

use crate::bridge_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bridge_support::{start, temp_dir, test_config, wait_until};
use integration_tests::bridge_bin::{bridge, target_and_profile};
use langfuse_bridge::{Bridge, Destination};
use serde_json::{Value, json};

const CLAUDE_CODE: &str = "2.1.332";
const MODEL: &str = "claude-opus-5-5";

/// The fake's usage for its n-th request (1, 2, …): every count traceable to the request.
fn usage(n: u64) -> Value {
    json!({
        "input_tokens": 100 + n,
        "output_tokens": 20 + n,
        "cache_read_input_tokens": 1000 + n,
        "cache_creation_input_tokens": 200,
    })
}

/// Claude Code's native binary, installed once per target directory.
fn claude_code() -> PathBuf {
    let (target, _, _) = target_and_profile();
    let prefix = target
        .join("agent-cli")
        .join(format!("claude-code-{CLAUDE_CODE}"));
    let bin = prefix.join("node_modules/@anthropic-ai/claude-code-linux-x64/claude");
    if !bin.exists() {
        std::fs::create_dir_all(&prefix).unwrap();
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(format!("@anthropic-ai/claude-code@{CLAUDE_CODE}"))
            .status()
            .expect("npm runs (Node.js and npm are needed to install Claude Code)");
        assert!(status.success(), "npm install of Claude Code failed");
    }
    assert!(
        bin.exists(),
        "no native Claude Code binary at {}",
        bin.display()
    );
    bin
}

/// What the fake API saw.
#[derive(Default)]
struct Seen {
    /// (path, whether the last user message carried a tool result).
    requests: Vec<(String, bool)>,
}

fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((path, body))
}

fn sse(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()))
        .collect()
}

/// The reply to request `n`: a `Bash ls` tool call first, a text once a tool result came back.
fn reply(n: u64, after_tool: bool, stream: bool) -> (String, String) {
    let u = usage(n);
    let (block, deltas, stop) = if after_tool {
        let text = "The directory contains: hello.txt and notes.md.";
        (
            json!({"type": "text", "text": ""}),
            vec![json!({"type": "text_delta", "text": text})],
            "end_turn",
        )
    } else {
        (
            json!({"type": "tool_use", "id": format!("toolu_fake_{n}"), "name": "Bash", "input": {}}),
            vec![
                json!({"type": "input_json_delta", "partial_json": "{\"command\":\"ls\",\"description\":\"List files\"}"}),
            ],
            "tool_use",
        )
    };
    let id = format!("msg_fake_{n}");
    if !stream {
        let mut content = block.clone();
        if after_tool {
            content["text"] = deltas[0]["text"].clone();
        } else {
            content["input"] = json!({"command": "ls", "description": "List files"});
        }
        let body = json!({"id": id, "type": "message", "role": "assistant", "model": MODEL,
            "content": [content], "stop_reason": stop, "stop_sequence": null, "usage": u});
        return ("application/json".into(), body.to_string());
    }
    let mut events = vec![
        json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant",
            "model": MODEL, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": u["input_tokens"], "output_tokens": 1,
                      "cache_read_input_tokens": u["cache_read_input_tokens"],
                      "cache_creation_input_tokens": u["cache_creation_input_tokens"]}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": block}),
    ];
    for d in deltas {
        events.push(json!({"type": "content_block_delta", "index": 0, "delta": d}));
    }
    events.push(json!({"type": "content_block_stop", "index": 0}));
    events.push(
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": {"output_tokens": u["output_tokens"]}}),
    );
    events.push(json!({"type": "message_stop"}));
    ("text/event-stream".into(), sse(&events))
}

/// The fake Anthropic API on 127.0.0.1 (its listener bound once, here).
fn start_fake_api() -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let state = Arc::clone(&state);
            std::thread::spawn(move || {
                let Some((path, body)) = read_request(&mut stream) else {
                    return;
                };
                let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let (status, content_type, reply_body, request_id) =
                    if path.starts_with("/v1/messages") && !path.contains("count_tokens") {
                        let after_tool = request["messages"]
                            .as_array()
                            .and_then(|m| m.last())
                            .map(|m| m["content"].to_string().contains("tool_result"))
                            .unwrap_or(false);
                        let stream_reply = request["stream"] == true;
                        let n = {
                            let mut s = state.lock().unwrap();
                            s.requests.push((path.clone(), after_tool));
                            s.requests.len() as u64
                        };
                        let (ct, b) = reply(n, after_tool, stream_reply);
                        (200, ct, b, format!("req_fake_{n}"))
                    } else {
                        (
                            200,
                            "application/json".into(),
                            "{}".into(),
                            "req_other".into(),
                        )
                    };
                let head = format!(
                    "HTTP/1.1 {status} OK\r\ncontent-type: {content_type}\r\nrequest-id: {request_id}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    reply_body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(reply_body.as_bytes());
                let _ = stream.flush();
            });
        }
    });
    (url, seen)
}

fn traces_json(db: &Path, args: &[&str]) -> Value {
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

#[test]
fn claude_code_headless_against_a_fake_api_is_one_trace_per_prompt() {
    if std::env::var_os("SKIP_AGENT_CLI_TESTS").is_some() {
        eprintln!("skipped: SKIP_AGENT_CLI_TESTS is set");
        return;
    }
    let claude = claude_code();
    let (api, seen) = start_fake_api();
    let mut config = test_config("agents-cli", "http://unused", "local");
    config.to = Some(Destination::Local);
    config.upstream = None;
    config.agent_window_secs = 0.5;
    let dir = temp_dir("agents-cli-run");
    let (home, project) = (dir.join("home"), dir.join("project"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(project.join("notes.md"), "# notes\n").unwrap();
    let db = dir.join("traces.db");
    config.db = db.clone();
    let running = start(Bridge::new(config));

    let prompt = "list the files here";
    let out = Command::new(&claude)
        .args([
            "-p",
            prompt,
            "--allowedTools",
            "Bash",
            "--output-format",
            "json",
        ])
        .current_dir(&project)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &home)
        .env("TERM", "dumb")
        .env("LANG", "C.UTF-8")
        .env("ANTHROPIC_BASE_URL", &api)
        .env("ANTHROPIC_API_KEY", "sk-ant-fake")
        .env("CLAUDE_CODE_ENABLE_TELEMETRY", "1")
        .env("CLAUDE_CODE_ENHANCED_TELEMETRY_BETA", "1")
        .env("OTEL_LOGS_EXPORTER", "otlp")
        .env("OTEL_METRICS_EXPORTER", "otlp")
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", running.url())
        .env("OTEL_LOGS_EXPORT_INTERVAL", "1000")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "1000")
        .env("OTEL_TRACES_EXPORT_INTERVAL", "1000")
        .env("OTEL_LOG_USER_PROMPTS", "1")
        .env("OTEL_LOG_TOOL_DETAILS", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .output()
        .expect("claude runs");
    assert!(
        out.status.success(),
        "claude failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = seen.lock().unwrap().requests.clone();
    let tool_calls = requests.iter().filter(|(_, after)| !after).count();
    assert!(!requests.is_empty(), "the fake API saw no request");

    let mut trace = Value::Null;
    let stored = wait_until(Duration::from_secs(60), || {
        let list = traces_json(&db, &["list"]);
        let Some(first) = list.as_array().and_then(|a| a.first()) else {
            return false;
        };
        trace = traces_json(&db, &["show", first["id"].as_str().unwrap()]);
        list.as_array().unwrap().len() == 1
            && trace["observations"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| o["type"] == "GENERATION")
                .count()
                == requests.len()
    });
    running.stop();
    assert!(stored, "{trace:#}");
    assert_eq!(trace["input"], prompt);
    let observations = trace["observations"].as_array().unwrap();
    let mut gens: Vec<&Value> = observations
        .iter()
        .filter(|o| o["type"] == "GENERATION")
        .collect();
    gens.sort_by_key(|g| g["startTime"].as_str().unwrap_or_default().to_owned());
    for (i, g) in gens.iter().enumerate() {
        let u = usage(i as u64 + 1);
        assert_eq!(g["model"], MODEL);
        assert_eq!(g["usageDetails"]["input"], u["input_tokens"], "{g:#}");
        assert_eq!(g["usageDetails"]["output"], u["output_tokens"], "{g:#}");
        assert_eq!(
            g["usageDetails"]["input_cache_read"],
            u["cache_read_input_tokens"]
        );
        assert_eq!(
            g["usageDetails"]["input_cache_creation"],
            u["cache_creation_input_tokens"]
        );
    }
    let tools: Vec<&Value> = observations
        .iter()
        .filter(|o| o["type"] == "TOOL")
        .collect();
    assert_eq!(tools.len(), tool_calls, "{trace:#}");
    assert!(
        tools
            .iter()
            .all(|t| t["name"] == "Bash" && t["level"] != "ERROR")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
