//! Create + update + end of one generation observation with typical attributes, against a raw
//! `opentelemetry` span carrying the same attributes (serialized with `serde_json`); the
//! workload is in `common/mod.rs`:
//!
//! - `langfuse_otel`: the SDK on a provider with `LangfuseSpanProcessor` → a processor that
//!   drops the span;
//! - `raw_plain_sdk`: the raw span on a plain provider (the drop processor only) — the honest
//!   baseline;
//! - `raw_same_pipeline`: the raw span through the same `LangfuseSpanProcessor` (what a raw span
//!   costs in a Langfuse pipeline: the processor inspects foreign spans at start).
//!
//! Run with `cargo bench -p langfuse-otel --bench generation`.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let setup = common::Setup::new();
    let mut group = c.benchmark_group("generation");
    group.bench_function("langfuse_otel", |b| b.iter(|| setup.langfuse_generation()));
    group.bench_function("raw_plain_sdk", |b| {
        b.iter(|| setup.raw_generation(&setup.plain_tracer))
    });
    group.bench_function("raw_same_pipeline", |b| {
        b.iter(|| setup.raw_generation(&setup.pipeline_tracer))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
