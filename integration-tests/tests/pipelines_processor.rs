//! Acceptance: `span_processor()` on the application's own provider, next to the
//! application's own `opentelemetry-otlp` exporter, each sending to a real receiver on
//! 127.0.0.1: exact span sets at both, whole trees, one trace per agent run, environment and
//! propagated attributes on every span, signals the server reads, no duplicate sender.

#[path = "pipelines_common/mod.rs"]
mod common;

use std::time::Duration;

use common::*;
use integration_tests::receiver::{Action, Receiver};
use langfuse_otel::Langfuse;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;

const LANGFUSE_PATH: &str = "/api/public/otel/v1/traces";

#[test]
fn processor_set_up_sends_whole_trees_with_environment_and_propagated_attributes_beside_the_users_exporter()
 {
    let langfuse_rx = Receiver::start(|_, _| Action::ok());
    let user_rx = Receiver::start(|_, _| Action::ok());
    let user_exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", user_rx.base_url()))
        .with_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let builder = Langfuse::builder()
        .public_key("pk-lf-test")
        .secret_key("sk-lf-test")
        .base_url(langfuse_rx.base_url())
        .environment("staging")
        .release("v2.1");
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(user_exporter)
        .with_span_processor(builder.span_processor().unwrap())
        .build();
    let langfuse = builder.tracer_provider(provider.clone()).build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("app")));
    tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(workload(Some(&langfuse)));
    });
    langfuse.flush().unwrap();
    provider.force_flush().unwrap();
    wait_spans(&langfuse_rx, LANGFUSE_PATH, 7);
    wait_spans(&user_rx, "/v1/traces", 8);

    // The user's collector: every span exactly once, nothing on Langfuse's path.
    let user = received(&user_rx, "/v1/traces");
    assert_eq!(
        names(&user),
        [
            "GET /answer",
            "answer",
            "chat agent-model",
            "chat gpt-4o",
            "db.query",
            "execute_tool lookup",
            "handler",
            "invoke_agent helper"
        ]
    );
    assert_no_duplicates(&user);
    assert!(received(&user_rx, LANGFUSE_PATH).is_empty());
    // It still sees the agent run as its own trace (adoption only rewrites what Langfuse gets).
    assert_ne!(
        find(&user, "invoke_agent helper").trace,
        find(&user, "answer").trace
    );

    // Langfuse: the whole tree, without the DB leaf, in one trace.
    let lf = received(&langfuse_rx, LANGFUSE_PATH);
    assert!(
        langfuse_rx
            .requests()
            .iter()
            .all(|r| r.path == LANGFUSE_PATH)
    );
    assert_eq!(
        names(&lf),
        [
            "GET /answer",
            "answer",
            "chat agent-model",
            "chat gpt-4o",
            "execute_tool lookup",
            "handler",
            "invoke_agent helper"
        ]
    );
    assert_no_duplicates(&lf);
    assert_whole(&lf);
    let trace = &find(&lf, "answer").trace;
    assert!(lf.iter().all(|s| &s.trace == trace), "one trace");
    assert_eq!(
        find(&lf, "invoke_agent helper").parent.as_deref(),
        Some(find(&lf, "answer").id.as_str())
    );
    assert_eq!(
        find(&lf, "GET /answer").parent,
        None,
        "the request is the root"
    );
    for s in &lf {
        assert_eq!(
            s.attrs.get("langfuse.environment").map(String::as_str),
            Some("staging"),
            "{}",
            s.name
        );
        assert_eq!(
            s.attrs.get("langfuse.release").map(String::as_str),
            Some("v2.1"),
            "{}",
            s.name
        );
        if s.name != "GET /answer" {
            // Started inside propagate_attributes (the request span started before it).
            assert_eq!(
                s.attrs.get("user.id").map(String::as_str),
                Some("user-7"),
                "{}",
                s.name
            );
            assert_eq!(
                s.attrs.get("session.id").map(String::as_str),
                Some("session-7"),
                "{}",
                s.name
            );
        }
    }
    let tool = find(&lf, "execute_tool lookup");
    assert_eq!(
        tool.attrs
            .get("langfuse.observation.level")
            .map(String::as_str),
        Some("ERROR")
    );
    assert!(
        find(&lf, "chat agent-model")
            .attrs
            .contains_key("langfuse.observation.completion_start_time")
    );
    langfuse.shutdown().ok();
    provider.shutdown().ok();
}
