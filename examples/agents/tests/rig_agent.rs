//! The `rig_agent` example, run as a process against the fake OpenAI-compatible server and a
//! local Langfuse receiver: what Langfuse derives (server mode, as `langfuse-bridge translate
//! --compat server` prints) from the spans rig and our SDK emit through
//! `tracing-opentelemetry`.

#![forbid(unsafe_code)]

mod common;

use common::*;
use langfuse_otel_agent_examples::fake_openai::STREAM_CHUNKS;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_rig_agent");

#[test]
fn each_rig_agent_run_is_one_trace_under_its_observation_with_generations_and_tools() {
    let run = run_online(BIN, &[], 9);
    let obs = &run.observations;
    assert!(run.dropped.is_empty(), "dropped: {:?}", run.dropped);
    assert_eq!(obs.len(), 9, "{obs:#?}");
    for t in &run.traces {
        assert_eq!(t["userId"], "user-42", "{t:#}");
        assert_eq!(t["sessionId"], "chat-7", "{t:#}");
    }

    // Run 1: rig's `invoke_agent` (a new root in rig) is adopted under the observation.
    let request = one(obs, "support-request");
    let run1: Vec<Value> = obs
        .iter()
        .filter(|o| o["traceId"] == request["traceId"])
        .cloned()
        .collect();
    assert_eq!(run1.len(), 6, "{run1:#?}");
    assert_one_trace_under(&run1, "support-request");
    let agents = named(&run1, "invoke_agent");
    assert_eq!(agents.len(), 1);
    let agent = agents[0];
    assert_eq!(agent["eventType"], "agent-create");
    assert_eq!(agent["parentObservationId"], request["id"]);
    let chats = named(&run1, "chat");
    assert_eq!(chats.len(), 2);
    for g in &chats {
        assert_generation(g, "gpt-4o-mini");
        assert_eq!(g["parentObservationId"], agent["id"]);
    }
    assert!(text_of(&chats[0]["input"]).contains("order A-17"));
    assert!(text_of(&chats[0]["output"]).contains("\"tool_call\""));
    assert!(text_of(&chats[1]["output"]).contains("Done. Tool results"));

    // Tools with arguments and results; the failing one at level ERROR.
    let weather = one(&run1, "get_weather");
    assert_eq!(weather["eventType"], "tool-create");
    assert_eq!(weather["parentObservationId"], agent["id"]);
    assert_eq!(json_of(&weather["input"]), json!({"city": "Paris"}));
    assert_eq!(json_of(&weather["output"])["condition"], "cloudy");
    assert_eq!(weather["level"], "DEFAULT");
    let order = one(&run1, "lookup_order");
    assert_eq!(order["eventType"], "tool-create");
    assert_eq!(json_of(&order["input"]), json!({"order_id": "A-17"}));
    assert!(!order["output"].is_null());
    assert_eq!(order["level"], "ERROR");

    // Run 2 (streamed): its own trace, under its own observation.
    let summary = one(obs, "summary-request");
    assert_ne!(summary["traceId"], request["traceId"]);
    let run2: Vec<Value> = obs
        .iter()
        .filter(|o| o["traceId"] == summary["traceId"])
        .cloned()
        .collect();
    assert_eq!(run2.len(), 3, "{run2:#?}");
    assert_one_trace_under(&run2, "summary-request");
    let streamed = one(&run2, "chat");
    assert_generation(streamed, "gpt-4o-mini");
    assert!(text_of(&streamed["output"]).contains(&STREAM_CHUNKS.concat()));
    // rig 0.44 records no `gen_ai.response.time_to_first_chunk`, so Langfuse gets no
    // completion start time for its streamed calls (genai's do: see genai_chat.rs).
    assert_eq!(streamed["completionStartTime"], Value::Null);
    assert!(
        streamed["metadata"]["attributes"]
            .get("gen_ai.response.time_to_first_chunk")
            .is_none()
    );

    // The model was asked three times; the second request carried both tool results.
    assert_eq!(run.model_requests.len(), 3);
    let tool_msgs = run.model_requests[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .count();
    assert_eq!(tool_msgs, 2);
    assert_eq!(run.model_requests[2]["stream"], true);
}

#[test]
fn rig_example_without_keys_or_base_url_runs_offline_and_prints_the_tree() {
    let out = run_offline(BIN, "rig");
    assert!(out.contains("support-request [span]"), "{out}");
    assert!(out.contains("summary-request [span]"), "{out}");
    assert_eq!(out.matches("invoke_agent [agent]").count(), 2, "{out}");
    assert!(
        out.contains("lookup_order [tool]") && out.contains("level=ERROR"),
        "{out}"
    );
}
