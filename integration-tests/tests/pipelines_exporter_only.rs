//! Acceptance: `LangfuseExporter` as a second exporter on the application's provider (no
//! Langfuse span processor), next to the application's own `opentelemetry-otlp` exporter,
//! each sending to a real receiver on 127.0.0.1: exact span sets at both, whole trees, no
//! duplicate sender, and one warning that propagated attributes cannot reach these spans.
//! (Its own test binary: the warning depends on no processor existing in the process.)

#[path = "pipelines_common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use integration_tests::receiver::{Action, Receiver};
use langfuse_otel_exporter::{Diagnostics, LangfuseExporter};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;

const LANGFUSE_PATH: &str = "/api/public/otel/v1/traces";

#[test]
fn exporter_only_set_up_keeps_filtered_ancestors_and_warns_once_about_propagation() {
    let langfuse_rx = Receiver::start(|_, _| Action::ok());
    let user_rx = Receiver::start(|_, _| Action::ok());
    let warnings = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = warnings.clone();
    let langfuse_exporter = LangfuseExporter::builder()
        .without_env()
        .langfuse("pk-lf-test", "sk-lf-test")
        .base_url(langfuse_rx.base_url())
        .diagnostics(Diagnostics::new(move |m| {
            sink.lock().unwrap().push(m.to_owned())
        }))
        .build()
        .unwrap();
    let user_exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", user_rx.base_url()))
        .with_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(user_exporter)
        .with_span_processor(langfuse_exporter.into_batch_processor())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("app")));
    tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(workload(None));
    });
    provider.force_flush().unwrap();
    wait_spans(&user_rx, "/v1/traces", 7);

    let user = received(&user_rx, "/v1/traces");
    assert_eq!(
        names(&user),
        [
            "GET /answer",
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

    let lf = received(&langfuse_rx, LANGFUSE_PATH);
    assert!(
        langfuse_rx
            .requests()
            .iter()
            .all(|r| r.path == LANGFUSE_PATH)
    );
    // The handler and the request span are kept as ancestors of the chat; the DB leaf is not.
    assert_eq!(
        names(&lf),
        [
            "GET /answer",
            "chat agent-model",
            "chat gpt-4o",
            "execute_tool lookup",
            "handler",
            "invoke_agent helper"
        ]
    );
    assert_no_duplicates(&lf);
    assert_whole(&lf);
    assert_eq!(
        find(&lf, "chat gpt-4o").parent.as_deref(),
        Some(find(&lf, "handler").id.as_str())
    );
    let warnings = warnings.lock().unwrap();
    let about_propagation: Vec<&String> = warnings
        .iter()
        .filter(|w| w.contains("propagate_attributes"))
        .collect();
    assert_eq!(about_propagation.len(), 1, "{warnings:?}");
    // Without the processor only the span current at the call gets them (hence the warning).
    assert!(
        lf.iter()
            .filter(|s| s.name != "GET /answer")
            .all(|s| !s.attrs.contains_key("user.id"))
    );
    provider.shutdown().ok();
}
