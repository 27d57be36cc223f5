//! The `genai_chat` example, run as a process against the fake OpenAI-compatible server and a
//! local Langfuse receiver: what Langfuse derives (server mode, as `langfuse-bridge translate
//! --compat server` prints) from the spans genai and our SDK emit through
//! `tracing-opentelemetry`.

#![forbid(unsafe_code)]

mod common;

use common::*;
use langfuse_otel_agent_examples::fake_openai::STREAM_CHUNKS;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_genai_chat");

#[test]
fn genai_run_is_one_trace_with_generations_tools_ttft_and_tool_failure_level() {
    let run = run_online(BIN, &[], 6);
    let obs = &run.observations;
    assert!(run.dropped.is_empty(), "dropped: {:?}", run.dropped);
    assert_eq!(obs.len(), 6, "{obs:#?}");

    // One trace, rooted at the SDK observation, with the propagated user and session.
    let root = assert_one_trace_under(obs, "weather-assistant");
    assert_eq!(root["eventType"], "agent-create");
    assert!(
        text_of(&root["output"]).contains("summary: Paris"),
        "{root:#}"
    );
    assert!(
        run.traces
            .iter()
            .any(|t| t["userId"] == "user-42" && t["sessionId"] == "chat-7"),
        "{:#?}",
        run.traces
    );

    // Three generations: tool request, answer with tool results, streamed summary.
    let chats = named(obs, "chat gpt-4o-mini");
    assert_eq!(chats.len(), 3);
    for g in &chats {
        assert_generation(g, "gpt-4o-mini");
        assert_eq!(g["parentObservationId"], root["id"]);
    }
    assert!(text_of(&chats[0]["output"]).contains("\"tool_call\""));
    assert!(text_of(&chats[1]["input"]).contains("tool_call_response"));
    assert!(text_of(&chats[1]["output"]).contains("Done. Tool results"));
    let streamed = chats[2];
    assert!(text_of(&streamed["output"]).contains(&STREAM_CHUNKS.concat()));
    // The fake server waits 30 ms before the first chunk.
    assert_completion_start(streamed, 30);
    assert_eq!(chats[0]["completionStartTime"], Value::Null);

    // Tools with arguments and results; the failing one at level ERROR.
    let weather = one(obs, "get_weather");
    assert_eq!(weather["eventType"], "tool-create");
    assert_eq!(json_of(&weather["input"]), json!({"city": "Paris"}));
    assert_eq!(json_of(&weather["output"])["temperature_c"], 18);
    assert_eq!(weather["level"], "DEFAULT");
    let order = one(obs, "lookup_order");
    assert_eq!(order["eventType"], "tool-create");
    assert_eq!(json_of(&order["input"]), json!({"order_id": "A-17"}));
    assert_eq!(text_of(&order["output"]), "error: no order A-17");
    assert_eq!(order["level"], "ERROR");

    // The model saw the tool results.
    assert_eq!(run.model_requests.len(), 3);
    let tool_msgs: Vec<&Value> = run.model_requests[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert_eq!(tool_msgs.len(), 2);
}

#[test]
fn genai_example_without_keys_or_base_url_runs_offline_and_prints_the_tree() {
    let out = run_offline(BIN, "genai");
    assert!(out.contains("weather-assistant [agent]"), "{out}");
    assert!(
        out.contains("lookup_order [tool]") && out.contains("level=ERROR"),
        "{out}"
    );
    assert_eq!(
        out.matches("chat gpt-4o-mini [generation]").count(),
        3,
        "{out}"
    );
}
