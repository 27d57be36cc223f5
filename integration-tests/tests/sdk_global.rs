//! The global client of `#[observe]`: the guard of `init_global` delivers everything recorded
//! when it is dropped, long before the background interval would have. One test per binary:
//! the global client is process-wide.

use std::time::Duration;

use integration_tests::capture_receiver::Receiver;
use langfuse_otel::{Langfuse, Score, observe};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

#[observe(name = "rerank")]
fn rerank(ids: Vec<u32>) -> Vec<u32> {
    langfuse_otel::Langfuse::global().score_current_trace(Score::boolean("reranked", true));
    ids.into_iter().rev().collect()
}

#[observe]
async fn pipeline(question: &str) -> usize {
    rerank(vec![1, 2, 3]).len() + question.len()
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_the_guard_delivers_spans_and_scores_of_the_global_client() {
    // Offline: the guard's drop is the only flush (the interval is a minute).
    let path = std::env::temp_dir().join(format!("lf-global-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let guard = Langfuse::builder()
        .offline(&path)
        .flush_interval(Duration::from_secs(60))
        .build()
        .init_global()
        .timeout(Duration::from_secs(10));
    assert!(Langfuse::global().is_enabled());
    assert_eq!(pipeline("hi").await, 5);
    assert!(
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .is_empty(),
        "nothing written before the guard drops"
    );
    drop(guard);
    assert!(
        !Langfuse::global().is_enabled(),
        "the guard uninstalls the client"
    );
    let tree = langfuse_otel_exporter::offline::render_trace_file(&path).unwrap();
    assert!(tree.contains("└─ pipeline [span]"), "{tree}");
    assert!(tree.contains("   └─ rerank [span]"), "{tree}");
    assert!(tree.contains("score reranked = 1.0"), "{tree}");
    std::fs::remove_file(&path).ok();

    // Over HTTP, to a local receiver.
    let receiver = Receiver::start();
    let guard = Langfuse::builder()
        .public_key("pk-lf-test")
        .secret_key("sk-lf-test")
        .base_url(receiver.base_url.clone())
        .flush_interval(Duration::from_secs(60))
        .build()
        .init_global();
    assert_eq!(pipeline("hello").await, 8);
    assert!(
        receiver.requests().is_empty(),
        "nothing sent before the guard drops"
    );
    drop(guard);
    let requests = receiver.requests();
    let spans: Vec<String> = requests
        .iter()
        .filter(|r| r.path == langfuse_otel::TRACES_PATH)
        .flat_map(|r| {
            ExportTraceServiceRequest::decode(&r.body[..])
                .unwrap()
                .resource_spans
        })
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .map(|s| s.name)
        .collect();
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert!(spans.contains(&"pipeline".to_string()) && spans.contains(&"rerank".to_string()));
    assert!(
        requests
            .iter()
            .any(|r| r.path == langfuse_otel::SCORES_PATH),
        "the score too"
    );
}
