//! 1,000 concurrent tokio tasks, each building a 3-level trace under its own
//! `propagate_attributes`: every span must have the right parent, its own trace, and its own
//! task's attributes — nothing may leak between tasks across `.await` points and worker threads.

use std::collections::HashMap;
use std::time::Duration;

mod common;

use common::{attr, str_attr};
use langfuse_otel::{
    ObservationUpdate, PropagatedAttributes, in_current_context, propagate_attributes,
};
use opentelemetry::Value;
use opentelemetry_sdk::trace::SpanData;

const TASKS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_tasks_keep_their_own_parents_and_attributes() {
    let (langfuse, provider, exporter) = common::setup();

    let mut handles = Vec::with_capacity(TASKS);
    for i in 0..TASKS {
        let lf = langfuse.clone();
        handles.push(tokio::spawn(async move {
            let attrs = PropagatedAttributes::new()
                .user_id(format!("user-{i}"))
                .session_id(format!("session-{i}"))
                .tags([format!("task-{i}")])
                .metadata(&serde_json::json!({ "task": i }));
            propagate_attributes(attrs, async {
                lf.start_active_observation(format!("root-{i}"), |_root| async {
                    tokio::task::yield_now().await;
                    lf.start_active_observation(format!("mid-{i}"), |_mid| async {
                        // The leaf runs on another task: the helper carries the context.
                        let lf2 = lf.clone();
                        tokio::spawn(in_current_context(async move {
                            tokio::time::sleep(Duration::from_micros((i % 7) as u64 * 100)).await;
                            lf2.start_active_observation(format!("leaf-{i}"), |leaf| async move {
                                tokio::task::yield_now().await;
                                leaf.update(ObservationUpdate::new().output(&i));
                            })
                            .await
                        }))
                        .await
                        .expect("leaf task");
                    })
                    .await
                })
                .await
            })
            .await
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    provider.force_flush().expect("flush");

    let spans = exporter.get_finished_spans().expect("spans");
    assert_eq!(spans.len(), 3 * TASKS);
    let by_name: HashMap<String, &SpanData> =
        spans.iter().map(|s| (s.name.to_string(), s)).collect();
    let mut trace_ids = std::collections::HashSet::new();
    for i in 0..TASKS {
        let root = by_name[&format!("root-{i}")];
        let mid = by_name[&format!("mid-{i}")];
        let leaf = by_name[&format!("leaf-{i}")];
        assert_eq!(
            root.parent_span_id,
            opentelemetry::trace::SpanId::INVALID,
            "root-{i} is a root"
        );
        assert_eq!(
            mid.parent_span_id,
            root.span_context.span_id(),
            "mid-{i} parent"
        );
        assert_eq!(
            leaf.parent_span_id,
            mid.span_context.span_id(),
            "leaf-{i} parent"
        );
        for s in [root, mid, leaf] {
            assert_eq!(
                s.span_context.trace_id(),
                root.span_context.trace_id(),
                "{} trace",
                s.name
            );
            assert_eq!(
                str_attr(s, "user.id").as_deref(),
                Some(format!("user-{i}").as_str()),
                "{} user",
                s.name
            );
            assert_eq!(
                str_attr(s, "session.id").as_deref(),
                Some(format!("session-{i}").as_str())
            );
            assert_eq!(
                str_attr(s, "langfuse.trace.metadata.task"),
                Some(i.to_string())
            );
            assert_eq!(
                attr(s, "langfuse.trace.tags"),
                Some(Value::Array(
                    vec![opentelemetry::StringValue::from(format!("task-{i}"))].into()
                ))
            );
            let is_root = attr(s, "langfuse.internal.is_app_root") == Some(Value::Bool(true));
            assert_eq!(
                is_root,
                std::ptr::eq(s, root),
                "{}: app root marker only on the root",
                s.name
            );
        }
        assert_eq!(
            str_attr(leaf, "langfuse.observation.output"),
            Some(i.to_string())
        );
        trace_ids.insert(root.span_context.trace_id());
    }
    assert_eq!(trace_ids.len(), TASKS, "one trace per task");
}
