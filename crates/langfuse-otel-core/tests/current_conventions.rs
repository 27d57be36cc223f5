//! The current GenAI conventions end to end, through the public API: an OTLP/JSON export of a
//! streamed chat call and a failed tool call (spans as a late-2026 instrumentation writes them)
//! translated in both modes.

use langfuse_otel_core::otlp;
use langfuse_otel_core::translate::{Compatibility, TranslateOptions, Translator};
use serde_json::{Value, json};

const EXPORT: &str = r#"{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"scope":{"name":"rig"},"spans":[
 {"traceId":"f7a0e8d1f86e1d6a80854c2106aa25fb","spanId":"1000000000000001","name":"chat gpt-4o",
  "startTimeUnixNano":"1767258000000000000","endTimeUnixNano":"1767258002000000000",
  "attributes":[
   {"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},
   {"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},
   {"key":"gen_ai.response.time_to_first_chunk","value":{"doubleValue":0.35}},
   {"key":"gen_ai.prompt.name","value":{"stringValue":"support-answer"}},
   {"key":"gen_ai.prompt.version","value":{"stringValue":"4"}},
   {"key":"gen_ai.usage.input_tokens","value":{"intValue":"300"}},
   {"key":"gen_ai.usage.output_tokens","value":{"intValue":"50"}},
   {"key":"gen_ai.usage.cache_read.input_tokens","value":{"intValue":"40"}},
   {"key":"gen_ai.usage.cache_write.input_tokens","value":{"intValue":"25"}},
   {"key":"gen_ai.usage.image.input_tokens","value":{"intValue":"200"}}],
  "events":[{"name":"gen_ai.evaluation.result","timeUnixNano":"1767258002000000000","attributes":[
   {"key":"gen_ai.evaluation.name","value":{"stringValue":"relevance"}},
   {"key":"gen_ai.evaluation.score.value","value":{"doubleValue":0.9}}]}]},
 {"traceId":"f7a0e8d1f86e1d6a80854c2106aa25fb","spanId":"1000000000000002","parentSpanId":"1000000000000001",
  "name":"execute_tool search","startTimeUnixNano":"1767258001000000000","endTimeUnixNano":"1767258001500000000",
  "attributes":[
   {"key":"gen_ai.operation.name","value":{"stringValue":"execute_tool"}},
   {"key":"gen_ai.tool.name","value":{"stringValue":"search"}},
   {"key":"gen_ai.tool.call.outcome","value":{"stringValue":"error"}},
   {"key":"error.type","value":{"stringValue":"TimeoutError"}}]}
]}]}]}"#;

fn translate(mode: Compatibility) -> Vec<Value> {
    let batch = otlp::decode_json(EXPORT.as_bytes()).expect("valid export");
    Translator::with_options(TranslateOptions {
        compatibility: mode,
        ..TranslateOptions::default()
    })
    .translate(&batch)
    .events
    .iter()
    .map(|e| serde_json::to_value(e).expect("serializable"))
    .collect()
}

fn body<'e>(events: &'e [Value], event_type: &str) -> &'e Value {
    &events
        .iter()
        .find(|e| e["type"] == event_type)
        .unwrap_or_else(|| panic!("no {event_type}"))["body"]
}

#[test]
fn repair_mode_reads_the_current_conventions() {
    let events = translate(Compatibility::Repair);
    let chat = body(&events, "generation-create");
    assert_eq!(chat["completionStartTime"], "2026-01-01T09:00:00.350Z");
    assert_eq!(chat["promptName"], "support-answer");
    assert_eq!(chat["promptVersion"], 4);
    assert_eq!(chat["input"], Value::Null);
    assert_eq!(
        chat["usageDetails"],
        json!({"input": 235, "output": 50, "image.input_tokens": 200,
            "input_cached_tokens": 40, "input_cache_creation": 25, "total": 350})
    );
    let tool = body(&events, "tool-create");
    assert_eq!(tool["level"], "ERROR");
    assert_eq!(tool["statusMessage"], "TimeoutError");
    let score = body(&events, "score-create");
    assert_eq!(score["name"], "relevance");
    assert_eq!(score["value"], 0.9);
    assert_eq!(score["observationId"], "1000000000000001");
}

#[test]
fn server_mode_derives_what_the_server_derives_today() {
    let events = translate(Compatibility::Server);
    let chat = body(&events, "generation-create");
    assert_eq!(chat["completionStartTime"], Value::Null);
    assert_eq!(chat["promptName"], Value::Null);
    // The prompt identity is read as indexed prompt keys.
    assert_eq!(
        chat["input"],
        json!({"name": "support-answer", "version": "4"})
    );
    assert_eq!(
        chat["usageDetails"],
        json!({"input": 260, "output": 50, "cache_write.input_tokens": 25,
            "image.input_tokens": 200, "input_cached_tokens": 40})
    );
    let tool = body(&events, "tool-create");
    assert_eq!(tool["level"], "DEFAULT");
    assert!(events.iter().all(|e| e["type"] != "score-create"));
}
