//! `tracing` spans (bridged by `tracing-opentelemetry`) with `gen_ai.*` fields, started inside
//! an observation, nest under it and carry the propagated trace attributes.

mod common;

use common::str_attr;
use langfuse_otel::{PropagatedAttributes, propagate_attributes};
use opentelemetry::trace::TracerProvider as _;
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;

#[tokio::test(flavor = "current_thread")]
async fn tracing_spans_nest_under_observations_and_get_propagated_attributes() {
    let (langfuse, provider, exporter) = common::setup();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("my-llm-crate")));
    let _default = tracing::subscriber::set_default(subscriber);

    let attrs = PropagatedAttributes::new()
        .user_id("user-1")
        .session_id("session-1")
        .tags(["interop"]);
    propagate_attributes(attrs, async {
        langfuse
            .start_active_observation("agent-run", |_obs| async {
                let chat = tracing::info_span!(
                    "chat gpt-4o",
                    gen_ai.operation.name = "chat",
                    gen_ai.request.model = "gpt-4o",
                    gen_ai.usage.input_tokens = 12_i64,
                );
                async {
                    let tool =
                        tracing::info_span!("execute_tool search", gen_ai.tool.name = "search");
                    async {}.instrument(tool).await;
                }
                .instrument(chat)
                .await;
                // An unrelated span without gen_ai.* fields is not exported by default.
                async {}.instrument(tracing::info_span!("db-query")).await;
            })
            .await;
    })
    .await;
    provider.force_flush().expect("flush");

    let spans = exporter.get_finished_spans().expect("spans");
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} exported"))
    };
    let obs = find("agent-run");
    let chat = find("chat gpt-4o");
    let tool = find("execute_tool search");
    assert!(
        spans.iter().all(|s| s.name != "db-query"),
        "default filter drops non-LLM spans"
    );
    assert_eq!(
        chat.parent_span_id,
        obs.span_context.span_id(),
        "tracing span nests under the observation"
    );
    assert_eq!(tool.parent_span_id, chat.span_context.span_id());
    for s in [obs, chat, tool] {
        assert_eq!(
            s.span_context.trace_id(),
            obs.span_context.trace_id(),
            "{}: one trace",
            s.name
        );
        assert_eq!(
            str_attr(s, "user.id").as_deref(),
            Some("user-1"),
            "{}: user id",
            s.name
        );
        assert_eq!(
            str_attr(s, "session.id").as_deref(),
            Some("session-1"),
            "{}: session id",
            s.name
        );
    }
    assert_eq!(
        str_attr(chat, "gen_ai.request.model").as_deref(),
        Some("gpt-4o")
    );
    assert_eq!(
        str_attr(chat, "langfuse.internal.is_app_root"),
        None,
        "only the observation is the app root"
    );
    assert_eq!(
        str_attr(obs, "langfuse.internal.is_app_root").as_deref(),
        Some("true")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn app_root_is_the_first_exported_span_of_the_local_subtree() {
    let (langfuse, provider, exporter) = common::setup();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("web-framework")));
    let _default = tracing::subscriber::set_default(subscriber);

    // An exported foreign parent (gen_ai.* field): it is the app root, the observation is not.
    let llm = tracing::info_span!("llm-request", gen_ai.operation.name = "chat");
    langfuse
        .start_active_observation("inside-llm-span", |_o| async {})
        .instrument(llm)
        .await;
    // A foreign parent that is not expected to be exported (no gen_ai.*): the observation is
    // the app root; the parent is kept when it ends, as the root of the trace (whole trees).
    let http = tracing::info_span!("http-request");
    langfuse
        .start_active_observation("inside-http-span", |_o| async {})
        .instrument(http)
        .await;
    provider.force_flush().expect("flush");

    let spans = exporter.get_finished_spans().expect("spans");
    let root_flag = |name: &str| {
        let s = spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name}"));
        str_attr(s, "langfuse.internal.is_app_root")
    };
    assert_eq!(root_flag("llm-request").as_deref(), Some("true"));
    assert_eq!(root_flag("inside-llm-span"), None);
    assert_eq!(root_flag("inside-http-span").as_deref(), Some("true"));
    let http = spans
        .iter()
        .find(|s| s.name == "http-request")
        .expect("kept");
    let inner = spans.iter().find(|s| s.name == "inside-http-span").unwrap();
    assert_eq!(inner.parent_span_id, http.span_context.span_id());
    assert_eq!(root_flag("http-request"), None);
}
