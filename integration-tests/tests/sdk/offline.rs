//! The SDK offline: no keys, `.offline(path)` → spans and scores in one JSON-lines file of
//! ingestion events, and scores in the rendered tree under their trace and observation.

use std::path::PathBuf;
use std::time::Duration;

use langfuse_otel::{Langfuse, ObservationOptions, ObservationType, Score};
use langfuse_otel_exporter::offline::render_trace_file;
use serde_json::Value;

fn temp_file(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("lf-{name}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn events(path: &PathBuf) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("the offline file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

#[test]
fn offline_scores_are_score_create_events_in_the_trace_file_and_in_the_tree() {
    let path = temp_file("sdk-offline-scores");
    // Long intervals: only the flush can have written the file.
    let langfuse = Langfuse::builder()
        .offline(&path)
        .environment("dev")
        .flush_interval(Duration::from_secs(60))
        .build();
    assert!(langfuse.is_enabled(), "offline needs no keys");
    let (trace_id, generation_id) = langfuse.start_active_observation_sync("support-bot", |bot| {
        let generation_id = bot.start_active_observation_sync(
            ObservationOptions::new("generate-answer", ObservationType::Generation)
                .model("gpt-4o-mini"),
            |generation| {
                generation.score(Score::numeric("relevance", 0.87));
                generation.id()
            },
        );
        bot.score_trace(Score::numeric("helpfulness", 0.9).comment("auto-evaluated"));
        (bot.trace_id(), generation_id)
    });
    langfuse.flush().expect("flush");

    let events = events(&path);
    let scores: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "score-create")
        .collect();
    assert_eq!(scores.len(), 2, "{events:#?}");
    let helpfulness = scores
        .iter()
        .find(|e| e["body"]["name"] == "helpfulness")
        .expect("the trace score");
    assert!(helpfulness["id"].is_string() && helpfulness["timestamp"].is_string());
    let body = &helpfulness["body"];
    assert_eq!(body["traceId"], trace_id.as_str());
    assert_eq!(body["value"], 0.9);
    assert_eq!(body["comment"], "auto-evaluated");
    assert_eq!(body["dataType"], "NUMERIC");
    assert_eq!(body["environment"], "dev");
    assert!(body.get("observationId").is_none());
    let relevance = scores
        .iter()
        .find(|e| e["body"]["name"] == "relevance")
        .expect("the observation score");
    assert_eq!(relevance["body"]["observationId"], generation_id.as_str());
    assert!(
        events.iter().any(|e| e["type"] == "generation-create"),
        "spans in the same file: {events:#?}"
    );

    let tree = render_trace_file(&path).unwrap();
    let lines: Vec<&str> = tree.lines().collect();
    assert_eq!(
        lines[0],
        format!("trace support-bot ({trace_id})"),
        "{tree}"
    );
    assert_eq!(
        lines[1], "├─ score helpfulness = 0.9 (auto-evaluated)",
        "{tree}"
    );
    assert!(lines[2].starts_with("└─ support-bot [span]"), "{tree}");
    assert!(
        lines[3].starts_with("   └─ generate-answer [generation]"),
        "{tree}"
    );
    assert_eq!(lines[4], "      └─ score relevance = 0.87", "{tree}");
    langfuse.shutdown().ok();
    std::fs::remove_file(&path).ok();
}

#[test]
fn explicit_scores_of_a_known_trace_id_are_written_too() {
    let path = temp_file("sdk-offline-explicit");
    let langfuse = Langfuse::builder().offline(&path).build();
    let trace_id = Langfuse::create_trace_id(Some("request-7"));
    langfuse.create_score(
        Score::categorical("tone", "friendly")
            .trace_id(trace_id.clone())
            .id("score-1"),
    );
    langfuse.shutdown().expect("shutdown");
    let events = events(&path);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["type"], "score-create");
    assert_eq!(events[0]["body"]["id"], "score-1");
    assert_eq!(events[0]["body"]["value"], "friendly");
    assert_eq!(
        render_trace_file(&path).unwrap(),
        format!("trace ({trace_id})\n└─ score tone = friendly\n")
    );
    std::fs::remove_file(&path).ok();
}

#[test]
fn without_keys_and_without_offline_the_client_stays_disabled() {
    assert!(!Langfuse::builder().build().is_enabled());
}

#[test]
fn an_unwritable_offline_file_disables_the_client_without_panicking() {
    let langfuse = Langfuse::builder()
        .offline("/nonexistent-langfuse-dir/sub/traces.jsonl")
        .build();
    assert!(!langfuse.is_enabled());
    langfuse.create_score(Score::numeric("x", 1.0).trace_id("t"));
    assert!(langfuse.shutdown().is_ok());
}
