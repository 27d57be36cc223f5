//! Deterministic `SpanData` for exporter tests.

use std::borrow::Cow;
use std::time::{Duration, UNIX_EPOCH};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

/// Span number `i` (span id `i + 1`, trace id `i / 5 + 1`), a Langfuse span of scope
/// `langfuse-sdk` with `pad` bytes of input.
pub fn span(i: u64, pad: usize) -> SpanData {
    let start = UNIX_EPOCH + Duration::from_secs(1_767_258_000) + Duration::from_millis(i);
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(u128::from(i / 5 + 1)),
            SpanId::from(i + 1),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Owned(format!("span-{i}")),
        start_time: start,
        end_time: start + Duration::from_millis(3),
        attributes: vec![
            KeyValue::new("langfuse.observation.type", "span"),
            KeyValue::new("langfuse.observation.input", "x".repeat(pad)),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("langfuse-sdk").build(),
    }
}

/// Spans `range` with no padding.
pub fn spans(range: std::ops::Range<u64>) -> Vec<SpanData> {
    range.map(|i| span(i, 0)).collect()
}

/// The hex span id of [`span`]`(i, _)`, as receivers see it.
pub fn span_id_hex(i: u64) -> String {
    format!("{:016x}", i + 1)
}

/// Sorted hex ids of spans `range`.
pub fn span_ids(range: std::ops::Range<u64>) -> Vec<String> {
    let mut v: Vec<String> = range.map(span_id_hex).collect();
    v.sort();
    v
}

/// A small agent run as a GenAI instrumentation (not a Langfuse SDK) reports it: an
/// `invoke_agent` root, a `chat` generation with messages and usage, and an `execute_tool`
/// span, under scope `opentelemetry.instrumentation.openai_agents` 0.4.1.
pub fn genai_agent_run() -> Vec<SpanData> {
    let scope = InstrumentationScope::builder("opentelemetry.instrumentation.openai_agents")
        .with_version("0.4.1")
        .build();
    let start = UNIX_EPOCH + Duration::from_nanos(1_767_258_000_123_456_789);
    let trace = TraceId::from(0x5b8e_fff7_9803_8103_d269_b633_813f_c60c_u128);
    let make = |id: u64, parent: u64, name: &str, offset_ms: u64, attributes: Vec<KeyValue>| {
        let begin = start + Duration::from_millis(offset_ms);
        SpanData {
            span_context: SpanContext::new(
                trace,
                SpanId::from(id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: if parent == 0 {
                SpanId::INVALID
            } else {
                SpanId::from(parent)
            },
            parent_span_is_remote: false,
            span_kind: SpanKind::Client,
            name: Cow::Owned(name.to_owned()),
            start_time: begin,
            end_time: begin + Duration::from_nanos(41_500_321),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: scope.clone(),
        }
    };
    vec![
        make(
            0x11,
            0x10,
            "chat gpt-4o-mini",
            2,
            vec![
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.request.model", "gpt-4o-mini"),
                KeyValue::new("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
                KeyValue::new("gen_ai.request.temperature", 0.2),
                KeyValue::new("gen_ai.usage.input_tokens", 120),
                KeyValue::new("gen_ai.usage.output_tokens", 40),
                KeyValue::new(
                    "gen_ai.input.messages",
                    r#"[{"role":"user","parts":[{"type":"text","content":"Reset my password?"}]}]"#,
                ),
                KeyValue::new(
                    "gen_ai.output.messages",
                    r#"[{"role":"assistant","parts":[{"type":"text","content":"Settings > Security."}]}]"#,
                ),
            ],
        ),
        make(
            0x12,
            0x10,
            "execute_tool lookup_account",
            20,
            vec![
                KeyValue::new("gen_ai.operation.name", "execute_tool"),
                KeyValue::new("gen_ai.tool.name", "lookup_account"),
                KeyValue::new("gen_ai.tool.call.arguments", r#"{"user":"u-42"}"#),
                KeyValue::new("gen_ai.tool.call.result", r#"{"plan":"pro"}"#),
            ],
        ),
        make(
            0x10,
            0,
            "invoke_agent support",
            0,
            vec![
                KeyValue::new("gen_ai.operation.name", "invoke_agent"),
                KeyValue::new("gen_ai.agent.name", "support"),
                KeyValue::new("gen_ai.conversation.id", "conv-7"),
                KeyValue::new("user.id", "u-42"),
            ],
        ),
    ]
}
