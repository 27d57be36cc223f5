//! The agent rules on the real captures (`integration-tests/fixtures/agent-cli/`, copied from
//! `shared/agent-cli/captures/`): each capture replayed in its arrival order through
//! [`TurnAssembler`], translated, and compared with what the capture's own events say.

use std::path::{Path, PathBuf};

use langfuse_otel_core::agents::{AssembleOptions, AssembledTurn, TurnAssembler};
use langfuse_otel_core::otlp::{self, Format};
use langfuse_otel_core::translate_batch;
use serde_json::Value;

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../integration-tests/fixtures/agent-cli")
}

/// The run's requests in arrival order: (signal, OTLP/JSON body).
fn requests(run: &str) -> Vec<(String, Vec<u8>)> {
    let dir = captures().join(run);
    let index = std::fs::read_to_string(dir.join("index.jsonl")).unwrap();
    index
        .lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            let name = entry["name"].as_str().unwrap();
            let body = std::fs::read(dir.join(format!("{name}.json"))).unwrap();
            (entry["signal"].as_str().unwrap().to_owned(), body)
        })
        .collect()
}

fn replay(run: &str, options: AssembleOptions) -> Vec<AssembledTurn> {
    let mut assembler = TurnAssembler::new(options);
    for (seq, (signal, body)) in requests(run).into_iter().enumerate() {
        let seq = seq as u64 + 1;
        match signal.as_str() {
            "logs" => {
                let batch = otlp::decode_logs_as(Format::Json, &body).unwrap();
                assembler.push_logs(batch, seq, None, 0);
            }
            "traces" => {
                let batch = otlp::decode_as(Format::Json, &body).unwrap();
                assembler.push_spans(batch, seq, None, 0);
            }
            _ => {}
        }
    }
    assert_eq!(
        assembler.held_from(),
        Some(1).filter(|_| assembler.pending_items() > 0)
    );
    assembler.ready(i64::MAX / 2)
}

/// Log records of a run whose `event.name` is `name`, as attribute maps (values as JSON).
fn events(run: &str, name: &str) -> Vec<serde_json::Map<String, Value>> {
    let mut out = Vec::new();
    for (signal, body) in requests(run) {
        if signal != "logs" {
            continue;
        }
        let v: Value = serde_json::from_slice(&body).unwrap();
        for rl in v["resourceLogs"].as_array().unwrap() {
            for sl in rl["scopeLogs"].as_array().unwrap() {
                for r in sl["logRecords"].as_array().unwrap() {
                    let mut m = serde_json::Map::new();
                    for a in r["attributes"].as_array().into_iter().flatten() {
                        let value = a["value"]
                            .as_object()
                            .and_then(|o| o.values().next().cloned())
                            .unwrap_or(Value::Null);
                        m.insert(a["key"].as_str().unwrap().to_owned(), value);
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

fn num(m: &serde_json::Map<String, Value>, key: &str) -> f64 {
    match &m[key] {
        Value::String(s) => s.parse().unwrap(),
        v => v.as_f64().unwrap(),
    }
}

/// (model, usage entries, the CLI's cost) of one model request.
type ExpectedGeneration = (String, Vec<(&'static str, f64)>, Option<f64>);

/// What the capture's own events say a turn holds.
struct Expected {
    session: String,
    prompt: String,
    /// (model, usage entries) per model request, in order.
    generations: Vec<ExpectedGeneration>,
    /// (tool name, success) per tool call, in order.
    tools: Vec<(String, bool)>,
}

fn s(m: &serde_json::Map<String, Value>, key: &str) -> String {
    m[key].as_str().unwrap().to_owned()
}

fn truthy(m: &serde_json::Map<String, Value>, key: &str) -> bool {
    match &m[key] {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => panic!("{key}"),
    }
}

fn expected(run: &str) -> Expected {
    match run {
        "claude" | "claude-no-enhanced" => {
            let prompt = &events(run, "user_prompt")[0];
            Expected {
                session: s(prompt, "session.id"),
                prompt: s(prompt, "prompt"),
                generations: events(run, "api_request")
                    .iter()
                    .map(|e| {
                        (
                            s(e, "model"),
                            vec![
                                ("input", num(e, "input_tokens")),
                                ("output", num(e, "output_tokens")),
                                ("input_cache_read", num(e, "cache_read_tokens")),
                                ("input_cache_creation", num(e, "cache_creation_tokens")),
                            ],
                            Some(num(e, "cost_usd")),
                        )
                    })
                    .collect(),
                tools: events(run, "tool_result")
                    .iter()
                    .map(|e| (s(e, "tool_name"), truthy(e, "success")))
                    .collect(),
            }
        }
        "codex" => {
            let prompt = &events(run, "codex.user_prompt")[0];
            Expected {
                session: s(prompt, "conversation.id"),
                prompt: s(prompt, "prompt"),
                generations: events(run, "codex.sse_event")
                    .iter()
                    .filter(|e| e.contains_key("input_token_count"))
                    .map(|e| {
                        let cached = num(e, "cached_token_count");
                        let reasoning = num(e, "reasoning_token_count");
                        (
                            prompt["model"].as_str().unwrap().to_owned(),
                            vec![
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
                            None,
                        )
                    })
                    .collect(),
                tools: events(run, "codex.tool_result")
                    .iter()
                    .map(|e| (s(e, "tool_name"), truthy(e, "success")))
                    .collect(),
            }
        }
        "gemini" => {
            let prompt = &events(run, "gemini_cli.user_prompt")[0];
            Expected {
                session: s(prompt, "session.id"),
                prompt: s(prompt, "prompt"),
                generations: events(run, "gemini_cli.api_response")
                    .iter()
                    .map(|e| {
                        let cached = num(e, "cached_content_token_count");
                        (
                            s(e, "model"),
                            vec![
                                ("input", num(e, "input_token_count") - cached),
                                ("input_cache_read", cached),
                                ("output", num(e, "output_token_count")),
                                ("output_reasoning", num(e, "thoughts_token_count")),
                                ("total", num(e, "total_token_count")),
                            ],
                            None,
                        )
                    })
                    .collect(),
                tools: events(run, "gemini_cli.tool_call")
                    .iter()
                    .map(|e| (s(e, "function_name"), truthy(e, "success")))
                    .collect(),
            }
        }
        other => panic!("unknown run {other}"),
    }
}

/// Translated records of the turns, by type.
fn records(turns: &[AssembledTurn]) -> Vec<Value> {
    turns
        .iter()
        .flat_map(|t| translate_batch(&t.batch).events)
        .map(|e| serde_json::to_value(&e).unwrap())
        .collect()
}

fn of_type<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    let mut out: Vec<&Value> = records.iter().filter(|r| r["type"] == kind).collect();
    out.sort_by_key(|r| {
        r["body"]["startTime"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    });
    out
}

fn check(run: &str, turns: &[AssembledTurn]) {
    let want = expected(run);
    assert_eq!(turns.len(), 1, "{run}: one turn");
    let records = records(turns);
    let traces = of_type(&records, "trace-create");
    assert_eq!(traces.len(), 1, "{run}: {traces:#?}");
    let trace = &traces[0]["body"];
    assert_eq!(trace["sessionId"], want.session.as_str(), "{run}");
    assert_eq!(trace["input"], want.prompt.as_str(), "{run}");
    let gens = of_type(&records, "generation-create");
    assert_eq!(gens.len(), want.generations.len(), "{run}: generations");
    for (g, (model, usage, cost)) in gens.iter().zip(&want.generations) {
        let body = &g["body"];
        assert_eq!(body["model"], model.as_str(), "{run}");
        for (key, n) in usage {
            assert_eq!(
                body["usageDetails"][key].as_f64(),
                Some(*n),
                "{run}: {key} of {body}"
            );
        }
        assert_eq!(body["costDetails"]["total"].as_f64(), *cost, "{run}");
        assert_eq!(body["traceId"], trace["id"], "{run}");
    }
    let tools = of_type(&records, "tool-create");
    let mut got: Vec<(String, bool)> = tools
        .iter()
        .map(|t| {
            let b = &t["body"];
            (
                b["name"].as_str().unwrap().to_owned(),
                b["level"] != "ERROR",
            )
        })
        .collect();
    let mut want_tools = want.tools.clone();
    got.sort();
    want_tools.sort();
    assert_eq!(got, want_tools, "{run}: tools");
}

const RUNS: [&str; 4] = ["claude", "claude-no-enhanced", "codex", "gemini"];

#[test]
fn each_capture_gives_one_turn_with_what_its_events_say() {
    for run in RUNS {
        check(run, &replay(run, AssembleOptions::default()));
    }
}

#[test]
fn keeping_the_agent_spans_adds_spans_and_nothing_twice() {
    for run in ["claude", "codex", "gemini"] {
        let turns = replay(run, AssembleOptions::default().with_keep_agent_spans(true));
        check(run, &turns);
        let spans: usize = turns.iter().map(|t| t.batch.span_count()).sum();
        let lean: usize = replay(run, AssembleOptions::default())
            .iter()
            .map(|t| t.batch.span_count())
            .sum();
        assert!(spans > lean, "{run}: {spans} > {lean}");
        // Every span id once.
        let mut ids: Vec<String> = turns
            .iter()
            .flat_map(|t| &t.batch.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.span_id.to_string())
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "{run}");
    }
}

#[test]
fn a_turn_waits_for_the_window() {
    let mut assembler = TurnAssembler::new(AssembleOptions::default().with_window_ms(5_000));
    for (seq, (signal, body)) in requests("claude").into_iter().enumerate() {
        let now = seq as i64 * 1_000;
        match signal.as_str() {
            "logs" => {
                assembler.push_logs(
                    otlp::decode_logs_as(Format::Json, &body).unwrap(),
                    seq as u64 + 1,
                    None,
                    now,
                );
            }
            "traces" => {
                assembler.push_spans(
                    otlp::decode_as(Format::Json, &body).unwrap(),
                    seq as u64 + 1,
                    None,
                    now,
                );
            }
            _ => {}
        }
    }
    // The logs came last, at 1 s.
    assert!(assembler.ready(5_999).is_empty());
    assert_eq!(assembler.held_from(), Some(1));
    let turns = assembler.ready(6_000);
    assert_eq!(turns.len(), 1);
    assert_eq!(assembler.held_from(), None);
    check("claude", &turns);
}

/// The capture's requests again, as a second prompt of the same session: times moved by
/// `shift_ns`, trace ids and the ids that name one prompt (`ids`) replaced by new ones.
fn second_prompt(run: &str, shift_ns: u64, ids: &[&str]) -> Vec<(String, Vec<u8>)> {
    fn walk(v: &mut Value, shift: u64) {
        match v {
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    if k == "traceId"
                        && let Some(t) = v.as_str()
                    {
                        // A new process: new traces.
                        *v = Value::String(t.chars().rev().collect());
                    } else if k.ends_with("UnixNano") {
                        if let Some(t) = v.as_str().and_then(|t| t.parse::<u64>().ok()) {
                            *v = Value::String((t + shift).to_string());
                        }
                    } else {
                        walk(v, shift);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|v| walk(v, shift)),
            _ => {}
        }
    }
    requests(run)
        .into_iter()
        .map(|(signal, body)| {
            let mut text = String::from_utf8(body).unwrap();
            for id in ids {
                let mut other: Vec<char> = id.chars().collect();
                // Same length and alphabet (hex ids stay hex).
                other.reverse();
                text = text.replace(id, &other.into_iter().collect::<String>());
            }
            let mut v: Value = serde_json::from_str(&text).unwrap();
            walk(&mut v, shift_ns);
            (signal, serde_json::to_vec(&v).unwrap())
        })
        .collect()
}

#[test]
fn two_prompts_of_one_session_are_two_turns() {
    // (run, the ids of one prompt: prompt ids, trace ids, turn ids)
    let cases: [(&str, &[&str]); 3] = [
        (
            "claude-no-enhanced",
            &["f4fa932b-b44b-4992-884a-71e800809cf4"],
        ),
        ("codex", &["01a24c60-6a49-7ad2-b65f-437fc02acd71"]),
        ("gemini", &[]),
    ];
    for (run, ids) in cases {
        let mut all = requests(run);
        all.extend(second_prompt(run, 30_000_000_000, ids));
        let mut assembler = TurnAssembler::new(AssembleOptions::default());
        for (seq, (signal, body)) in all.into_iter().enumerate() {
            let seq = seq as u64 + 1;
            match signal.as_str() {
                "logs" => {
                    assembler.push_logs(
                        otlp::decode_logs_as(Format::Json, &body).unwrap(),
                        seq,
                        None,
                        0,
                    );
                }
                "traces" => {
                    assembler.push_spans(
                        otlp::decode_as(Format::Json, &body).unwrap(),
                        seq,
                        None,
                        0,
                    );
                }
                _ => {}
            }
        }
        let turns = assembler.ready(i64::MAX / 2);
        assert_eq!(turns.len(), 2, "{run}");
        let want = expected(run);
        for turn in &turns {
            let records = records(std::slice::from_ref(turn));
            assert_eq!(
                of_type(&records, "generation-create").len(),
                want.generations.len(),
                "{run}"
            );
            assert_eq!(
                of_type(&records, "tool-create").len(),
                want.tools.len(),
                "{run}"
            );
            assert_eq!(
                of_type(&records, "trace-create")[0]["body"]["sessionId"],
                want.session.as_str()
            );
        }
        assert_ne!(turns[0].trace_id, turns[1].trace_id, "{run}");
    }
}

#[test]
fn spans_alone_still_give_the_generations_and_tools() {
    // Claude Code with its span beta but logs off: the spans carry the same counts.
    let mut assembler = TurnAssembler::new(AssembleOptions::default());
    for (seq, (signal, body)) in requests("claude").into_iter().enumerate() {
        if signal == "traces" {
            assembler.push_spans(
                otlp::decode_as(Format::Json, &body).unwrap(),
                seq as u64,
                None,
                0,
            );
        }
    }
    let turns = assembler.ready(i64::MAX / 2);
    let records = records(&turns);
    let want = expected("claude");
    let gens = of_type(&records, "generation-create");
    assert_eq!(gens.len(), want.generations.len());
    for (g, (model, usage, _)) in gens.iter().zip(&want.generations) {
        assert_eq!(g["body"]["model"], model.as_str());
        for (key, n) in usage {
            assert_eq!(g["body"]["usageDetails"][key].as_f64(), Some(*n));
        }
        // No cost on the spans: none invented.
        assert!(g["body"]["costDetails"].is_null());
    }
    assert_eq!(of_type(&records, "tool-create").len(), want.tools.len());
    assert_eq!(
        of_type(&records, "trace-create")[0]["body"]["input"],
        want.prompt.as_str()
    );
}
