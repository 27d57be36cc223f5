//! The offline default: no keys, no endpoint → a JSON-lines file and a readable tree.

use langfuse_otel_exporter::config::{DestinationConfig, Env, resolve_destination};
use langfuse_otel_exporter::{LangfuseExporter, offline};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span, Tracer, TracerProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;

#[test]
fn nothing_configured_means_the_offline_file() {
    assert!(matches!(
        resolve_destination(&Env::empty()).unwrap(),
        DestinationConfig::File { .. }
    ));
    let env = Env::from_pairs([("LANGFUSE_OFFLINE_PATH", "/tmp/x.jsonl")]);
    assert_eq!(
        resolve_destination(&env).unwrap(),
        DestinationConfig::File {
            path: "/tmp/x.jsonl".into()
        }
    );
}

#[test]
fn a_rag_pipeline_renders_as_a_tree() {
    let path = std::env::temp_dir().join(format!("lf-offline-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let exporter = LangfuseExporter::builder()
        .without_env()
        .file(&path)
        .build()
        .unwrap();
    let stats = exporter.stats();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(exporter.into_batch_processor())
        .build();
    let tracer = provider.tracer("langfuse-sdk");
    tracer.in_span("rag-pipeline", |_| {
        let mut r = tracer.start("retrieve");
        r.set_attribute(KeyValue::new("langfuse.observation.type", "retriever"));
        r.end();
        let mut g = tracer.start("answer");
        g.set_attribute(KeyValue::new("langfuse.observation.type", "generation"));
        g.set_attribute(KeyValue::new(
            "langfuse.observation.model.name",
            "gpt-4o-mini",
        ));
        g.set_attribute(KeyValue::new(
            "langfuse.observation.usage_details",
            r#"{"input":120,"output":40,"total":160}"#,
        ));
        g.end();
    });
    provider.shutdown().unwrap();
    assert_eq!(stats.snapshot().exported_spans, 3);
    let tree = offline::render_trace_file(&path).unwrap();
    let lines: Vec<&str> = tree.lines().collect();
    assert!(lines[0].starts_with("trace rag-pipeline ("), "{tree}");
    assert!(lines[1].starts_with("└─ rag-pipeline [span]"), "{tree}");
    assert!(lines[2].starts_with("   ├─ retrieve [retriever]"), "{tree}");
    assert!(lines[3].starts_with("   └─ answer [generation]"), "{tree}");
    assert!(
        lines[3].contains("model=gpt-4o-mini usage=input:120 output:40 total:160"),
        "{tree}"
    );
    // Every line is an ingestion event as /api/public/ingestion takes it.
    for line in std::fs::read_to_string(&path).unwrap().lines() {
        let ev: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(ev["id"].is_string() && ev["timestamp"].is_string() && ev["body"].is_object());
    }
    std::fs::remove_file(&path).ok();
}
