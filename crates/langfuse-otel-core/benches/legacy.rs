//! Legacy ingestion → Langfuse v4 OTLP: the cost of converting batches of a legacy SDK's
//! events (parse, fold with Langfuse's merge rules, write the OTLP/JSON export) against
//! parsing the same batches alone, in one run.
//!
//! A batch is what the Python SDK 2.x sends for 20 traces, each a trace-create, a span
//! create/update, a generation create/update (usage, cost, parameters, prompt), an event, a
//! trace update and a score: 160 events.
//!
//! `cargo bench -p langfuse-otel-core --bench legacy`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use langfuse_otel_core::fold::fold;
use langfuse_otel_core::legacy::{export_request, spans};
use langfuse_otel_core::record::IngestionBatch;
use serde_json::{Value, json};

const TRACES: usize = 20;

fn batch() -> Vec<u8> {
    let mut events: Vec<Value> = Vec::new();
    for t in 0..TRACES {
        let trace = format!("7d2c1a5e-0000-4000-8000-{t:012}");
        let span = format!("{trace}-span");
        let generation = format!("{trace}-gen");
        let ts = |ms: u32| {
            format!(
                "2026-12-07T10:00:{:02}.{:03}000+00:00",
                ms / 1000,
                ms % 1000
            )
        };
        events.extend([
            json!({"id": format!("{trace}-e1"), "type": "trace-create", "timestamp": ts(0),
                "body": {"id": trace, "name": "support-bot", "userId": "user-42", "sessionId": "chat-7",
                "tags": ["support"], "metadata": {"tier": "gold"}, "release": "r1", "version": "v1",
                "input": {"question": "How do I reset my password?"}, "timestamp": ts(0)}}),
            json!({"id": format!("{trace}-e2"), "type": "span-create", "timestamp": ts(10),
                "body": {"id": span, "traceId": trace, "name": "retrieve", "startTime": ts(10),
                "input": "reset password", "metadata": {"k": 3}}}),
            json!({"id": format!("{trace}-e3"), "type": "generation-create", "timestamp": ts(20),
                "body": {"id": generation, "traceId": trace, "parentObservationId": span, "name": "answer",
                "startTime": ts(20), "model": "gpt-4o-mini",
                "modelParameters": {"temperature": 0.2, "max_tokens": 256}, "promptName": "qa", "promptVersion": 3,
                "input": [{"role": "user", "content": "How do I reset my password?"}]}}),
            json!({"id": format!("{trace}-e4"), "type": "event-create", "timestamp": ts(25),
                "body": {"id": format!("{trace}-ev"), "traceId": trace, "parentObservationId": span,
                "name": "cache-miss", "startTime": ts(25), "level": "WARNING"}}),
            json!({"id": format!("{trace}-e5"), "type": "generation-update", "timestamp": ts(900),
                "body": {"id": generation, "traceId": trace, "endTime": ts(900), "completionStartTime": ts(150),
                "output": {"role": "assistant", "content": "Settings > Security > Reset password."},
                "usage": {"input": 120, "output": 40, "unit": "TOKENS", "inputCost": 0.00012, "outputCost": 0.00024}}}),
            json!({"id": format!("{trace}-e6"), "type": "span-update", "timestamp": ts(950),
                "body": {"id": span, "traceId": trace, "endTime": ts(950), "output": "answered"}}),
            json!({"id": format!("{trace}-e7"), "type": "trace-create", "timestamp": ts(960),
                "body": {"id": trace, "output": "Settings > Security > Reset password.", "tags": ["password"], "public": true}}),
            json!({"id": format!("{trace}-e8"), "type": "score-create", "timestamp": ts(970),
                "body": {"id": format!("{trace}-score"), "traceId": trace, "name": "helpfulness", "value": 0.9}}),
        ]);
    }
    serde_json::to_vec(&json!({ "batch": events })).expect("batch")
}

fn bench(c: &mut Criterion) {
    let body = batch();
    let events = serde_json::from_slice::<IngestionBatch>(&body)
        .expect("parses")
        .batch
        .len();
    let mut group = c.benchmark_group("legacy_ingestion");
    group.throughput(Throughput::Elements(events as u64));
    group.bench_function("parse (baseline)", |b| {
        b.iter(|| {
            serde_json::from_slice::<IngestionBatch>(std::hint::black_box(&body)).expect("parses")
        })
    });
    group.bench_function("parse + fold + OTLP/JSON", |b| {
        b.iter(|| {
            let batch: IngestionBatch =
                serde_json::from_slice(std::hint::black_box(&body)).expect("parses");
            let folded = fold(&batch.batch);
            export_request(&spans(&folded))
        })
    });
    group.bench_function("parse + fold (stage)", |b| {
        b.iter(|| {
            let batch: IngestionBatch =
                serde_json::from_slice(std::hint::black_box(&body)).expect("parses");
            fold(&batch.batch).observations.len()
        })
    });
    group.bench_function("parse + fold + spans as text (stage)", |b| {
        b.iter(|| {
            let batch: IngestionBatch =
                serde_json::from_slice(std::hint::black_box(&body)).expect("parses");
            let folded = fold(&batch.batch);
            spans(&folded).len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
