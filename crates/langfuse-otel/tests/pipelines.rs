//! The processor in a `tracing` + `tracing-opentelemetry` pipeline: whole trees, one trace per
//! agent run, environment on every span, signals the server reads.

use langfuse_otel::{Langfuse, LangfuseSpanProcessor, PropagatedAttributes, propagate_attributes};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor, SpanData,
};
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;

mod common;
use common::str_attr;

fn pipeline(
    adopt: bool,
) -> (
    Langfuse,
    SdkTracerProvider,
    InMemorySpanExporter,
    tracing::subscriber::DefaultGuard,
) {
    let exporter = InMemorySpanExporter::default();
    let processor = LangfuseSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()), None)
        .with_environment_and_release(Some("staging".into()), Some("v9".into()))
        .adopt_new_roots(adopt);
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("app")));
    let guard = tracing::subscriber::set_default(subscriber);
    (
        Langfuse::with_provider(provider.clone(), None),
        provider,
        exporter,
        guard,
    )
}

fn find<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("span {name} not exported: {:?}", names(spans)))
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans.iter().map(|s| s.name.to_string()).collect()
}

/// Every exported span's parent is exported too (or the span is a root).
fn assert_whole(spans: &[SpanData]) {
    for s in spans {
        let p = s.parent_span_id;
        if p != opentelemetry::trace::SpanId::INVALID {
            assert!(
                spans.iter().any(|q| q.span_context.span_id() == p
                    && q.span_context.trace_id() == s.span_context.trace_id()),
                "{} points to a parent that was never exported",
                s.name
            );
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_filtered_handler_between_an_observation_and_llm_spans_is_kept_and_db_leaves_are_not() {
    let (langfuse, provider, exporter, _g) = pipeline(true);
    let request = tracing::info_span!("GET /answer");
    async {
        langfuse
            .start_active_observation("answer", |_obs| async {
                let handler = tracing::info_span!("handler");
                async {
                    tracing::info_span!("db.query", db.query.text = "select 1").in_scope(|| {});
                    tracing::info_span!("chat gpt-4o", gen_ai.operation.name = "chat")
                        .in_scope(|| {});
                }
                .instrument(handler)
                .await;
            })
            .await;
    }
    .instrument(request)
    .await;
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(
        {
            let mut n = names(&spans);
            n.sort();
            n
        },
        ["GET /answer", "answer", "chat gpt-4o", "handler"]
    );
    assert_whole(&spans);
    assert_eq!(
        find(&spans, "chat gpt-4o").parent_span_id,
        find(&spans, "handler").span_context.span_id()
    );
    assert_eq!(
        find(&spans, "GET /answer").parent_span_id,
        opentelemetry::trace::SpanId::INVALID,
        "the request is the root"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn environment_and_release_reach_every_span_and_a_propagated_environment_wins() {
    let (langfuse, provider, exporter, _g) = pipeline(true);
    let attrs = PropagatedAttributes::new().user_id("u-1");
    propagate_attributes(attrs, async {
        langfuse
            .start_active_observation("obs", |_| async {
                tracing::info_span!("llm", gen_ai.operation.name = "chat").in_scope(|| {});
            })
            .await;
    })
    .await;
    propagate_attributes(PropagatedAttributes::new().environment("canary"), async {
        tracing::info_span!("llm-2", gen_ai.operation.name = "chat").in_scope(|| {});
    })
    .await;
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let llm = find(&spans, "llm");
    assert_eq!(
        str_attr(llm, "langfuse.environment").as_deref(),
        Some("staging")
    );
    assert_eq!(str_attr(llm, "langfuse.release").as_deref(), Some("v9"));
    assert_eq!(str_attr(llm, "user.id").as_deref(), Some("u-1"));
    assert_eq!(
        str_attr(find(&spans, "llm-2"), "langfuse.environment").as_deref(),
        Some("canary")
    );
}

/// rig's agent span: created with `parent: None`, its children below it.
async fn agent_run() {
    let agent = tracing::info_span!(
        parent: None,
        "invoke_agent helper",
        gen_ai.operation.name = "invoke_agent"
    );
    async {
        tracing::info_span!("chat m", gen_ai.operation.name = "chat").in_scope(|| {});
        tracing::info_span!(
            "execute_tool lookup",
            gen_ai.operation.name = "execute_tool"
        )
        .in_scope(|| {});
    }
    .instrument(agent)
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_agent_run_started_as_a_new_root_is_adopted_into_the_current_observation_trace() {
    let (langfuse, provider, exporter, _g) = pipeline(true);
    let attrs = PropagatedAttributes::new()
        .user_id("user-7")
        .session_id("s-7");
    propagate_attributes(attrs, async {
        langfuse
            .start_active_observation("support-request", |_| agent_run())
            .await;
    })
    .await;
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let obs = find(&spans, "support-request");
    let trace = obs.span_context.trace_id();
    for s in &spans {
        assert_eq!(
            s.span_context.trace_id(),
            trace,
            "{} in another trace",
            s.name
        );
        assert_eq!(
            str_attr(s, "user.id").as_deref(),
            Some("user-7"),
            "{}",
            s.name
        );
        assert_eq!(
            str_attr(s, "session.id").as_deref(),
            Some("s-7"),
            "{}",
            s.name
        );
    }
    let agent = find(&spans, "invoke_agent helper");
    assert_eq!(agent.parent_span_id, obs.span_context.span_id());
    assert_eq!(
        find(&spans, "chat m").parent_span_id,
        agent.span_context.span_id()
    );
    assert_eq!(str_attr(agent, "langfuse.internal.is_app_root"), None);
    assert_whole(&spans);
}

#[tokio::test(flavor = "current_thread")]
async fn adoption_switched_off_keeps_the_agent_run_in_its_own_trace() {
    let (langfuse, provider, exporter, _g) = pipeline(false);
    langfuse
        .start_active_observation("support-request", |_| agent_run())
        .await;
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let obs = find(&spans, "support-request");
    let agent = find(&spans, "invoke_agent helper");
    assert_ne!(agent.span_context.trace_id(), obs.span_context.trace_id());
    assert_eq!(agent.parent_span_id, opentelemetry::trace::SpanId::INVALID);
}

#[tokio::test(flavor = "current_thread")]
async fn a_new_root_without_a_current_observation_is_not_adopted() {
    let (_langfuse, provider, exporter, _g) = pipeline(true);
    let outer = tracing::info_span!("background", gen_ai.operation.name = "chat");
    agent_run().instrument(outer).await;
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    // The outer span is exported and open, so the agent run joins it: exported spans are
    // observations too.
    let outer = find(&spans, "background");
    let agent = find(&spans, "invoke_agent helper");
    assert_eq!(agent.span_context.trace_id(), outer.span_context.trace_id());
    // Without any current span, a root stays a root.
    exporter.reset();
    agent_run().await;
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let agent = find(&spans, "invoke_agent helper");
    assert_eq!(agent.parent_span_id, opentelemetry::trace::SpanId::INVALID);
    assert_eq!(
        find(&spans, "chat m").span_context.trace_id(),
        agent.span_context.trace_id()
    );
}

/// What the Langfuse server derives from `spans` (the core translator in server mode).
fn server_records(spans: &[SpanData]) -> Vec<langfuse_otel_core::record::ObservationBody> {
    use langfuse_otel_core::record::EventBody;
    use langfuse_otel_core::translate::{Compatibility, TranslateOptions, Translator};
    let resource = opentelemetry_sdk::Resource::builder_empty().build();
    let batch = langfuse_otel_core::otlp::batch_from_span_data(spans, &resource);
    let options = TranslateOptions {
        compatibility: Compatibility::Server,
        ..TranslateOptions::default()
    };
    Translator::with_options(options)
        .translate(&batch)
        .events
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::ObservationCreate(_, body) => Some(body),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn time_to_first_chunk_becomes_the_completion_start_time_the_server_reads() {
    let (_langfuse, provider, exporter, _g) = pipeline(true);
    tracing::info_span!(
        "chat m",
        gen_ai.operation.name = "chat",
        gen_ai.response.time_to_first_chunk = 0.25
    )
    .in_scope(|| {});
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let s = find(&spans, "chat m");
    let start_ms = s
        .start_time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let records = server_records(&spans);
    assert_eq!(
        records[0].completion_start_time,
        Some(Some(langfuse_otel_core::time::format_iso_millis(
            start_ms + 250
        )))
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_tool_outcome_becomes_level_error_and_a_success_does_not() {
    let (_langfuse, provider, exporter, _g) = pipeline(true);
    tracing::info_span!(
        "execute_tool broken",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.call.outcome = "error",
        error.type = "TimeoutError"
    )
    .in_scope(|| {});
    tracing::info_span!(
        "execute_tool fine",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.call.outcome = "success"
    )
    .in_scope(|| {});
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let broken = find(&spans, "execute_tool broken");
    assert_eq!(
        str_attr(broken, "langfuse.observation.level").as_deref(),
        Some("ERROR")
    );
    assert_eq!(
        str_attr(broken, "langfuse.observation.status_message").as_deref(),
        Some("TimeoutError")
    );
    assert_eq!(
        str_attr(
            find(&spans, "execute_tool fine"),
            "langfuse.observation.level"
        ),
        None
    );
}

#[test]
fn sdk_spans_carry_propagated_attributes_on_a_provider_without_the_processor() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let langfuse = Langfuse::with_provider(provider.clone(), None);
    langfuse_otel::propagate_attributes_sync(
        PropagatedAttributes::new().user_id("u-2").tags(["t"]),
        || langfuse.start_active_observation_sync("plain", |_| {}),
    );
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(
        str_attr(find(&spans, "plain"), "user.id").as_deref(),
        Some("u-2")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_child_observation_whose_body_fails_is_marked_error_and_the_error_returned() {
    let (langfuse, provider, exporter, _g) = pipeline(true);
    let root = langfuse.start_observation("root");
    let r: Result<(), String> = root
        .try_start_active_observation("child", |_| async { Err("tool down".to_owned()) })
        .await;
    let ok: Result<u8, String> = root.try_start_active_observation_sync("sync-child", |_| Ok(3));
    root.end();
    assert_eq!(r, Err("tool down".to_owned()));
    assert_eq!(ok, Ok(3));
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let child = find(&spans, "child");
    assert_eq!(
        child.parent_span_id,
        find(&spans, "root").span_context.span_id()
    );
    assert_eq!(
        str_attr(child, "langfuse.observation.level").as_deref(),
        Some("ERROR")
    );
    assert_eq!(
        str_attr(child, "langfuse.observation.status_message").as_deref(),
        Some("tool down")
    );
    assert_eq!(
        str_attr(find(&spans, "sync-child"), "langfuse.observation.level"),
        None
    );
}

#[tokio::test(flavor = "current_thread")]
async fn propagated_skills_reach_other_instrumentation_and_updates_write_them() {
    use langfuse_otel::{ObservationType, ObservationUpdate, Skill};
    let (langfuse, provider, exporter, _g) = pipeline(true);
    propagate_attributes(
        PropagatedAttributes::new().skills_available([Skill::new("refund-policy").version(2)]),
        async {
            tracing::info_span!("chat m", gen_ai.operation.name = "chat").in_scope(|| {});
        },
    )
    .await;
    let g = langfuse.start_observation(langfuse_otel::ObservationOptions::new(
        "gen",
        ObservationType::Generation,
    ));
    g.update(ObservationUpdate::new().skills_available([Skill::new("tone")]));
    g.end();
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(
        str_attr(
            find(&spans, "chat m"),
            "langfuse.observation.skills_available"
        )
        .as_deref(),
        Some(r#"[{"name":"refund-policy","version":2}]"#)
    );
    assert_eq!(
        str_attr(find(&spans, "gen"), "langfuse.observation.skills_available").as_deref(),
        Some(r#"[{"name":"tone"}]"#)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_sdk_span_of_another_project_is_never_kept_as_an_ancestor() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(LangfuseSpanProcessor::new(
            SimpleSpanProcessor::new(exporter.clone()),
            Some("pk-ours".into()),
        ))
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("app")));
    let _g = tracing::subscriber::set_default(subscriber);
    let theirs = Langfuse::with_provider(provider.clone(), Some("pk-theirs"));
    theirs
        .start_active_observation("their-step", |_| async {
            tracing::info_span!("llm", gen_ai.operation.name = "chat").in_scope(|| {});
        })
        .await;
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(names(&spans), ["llm"]);
}
