//! Shared parts of the pipeline acceptance tests (included with `#[path]` by both pipeline binaries).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::receiver::{Receiver, Request};
use langfuse_otel_core::value::AttrValue;

/// One received span: name, ids and attributes as text.
#[derive(Debug, Clone)]
pub struct Got {
    pub name: String,
    pub trace: String,
    pub id: String,
    pub parent: Option<String>,
    pub attrs: BTreeMap<String, String>,
}

fn text(v: &AttrValue<'_>) -> String {
    match v {
        AttrValue::Str(s) => s.to_string(),
        AttrValue::Number(n) => n.to_string(),
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::Array(items) => format!("{:?}", items.iter().map(text).collect::<Vec<_>>()),
    }
}

/// Every span of the OTLP requests received on `path`.
pub fn received(receiver: &Receiver, path: &str) -> Vec<Got> {
    received_in(&receiver.requests(), path)
}

pub fn received_in(requests: &[Request], path: &str) -> Vec<Got> {
    let mut out = Vec::new();
    for r in requests.iter().filter(|r| r.path == path) {
        let batch = langfuse_otel_core::otlp::decode(&r.body).expect("OTLP body");
        for rs in &batch.resource_spans {
            for ss in &rs.scope_spans {
                for s in &ss.spans {
                    out.push(Got {
                        name: s.name.to_string(),
                        trace: s.trace_id.to_string(),
                        id: s.span_id.to_string(),
                        parent: s.parent_id().map(str::to_owned),
                        attrs: s
                            .attributes
                            .iter()
                            .map(|(k, v)| (k.to_owned(), text(v)))
                            .collect(),
                    });
                }
            }
        }
    }
    out
}

/// Sorted span names.
pub fn names(spans: &[Got]) -> Vec<String> {
    let mut n: Vec<String> = spans.iter().map(|s| s.name.clone()).collect();
    n.sort();
    n
}

pub fn find<'a>(spans: &'a [Got], name: &str) -> &'a Got {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} not received: {:?}", names(spans)))
}

/// No span points to a parent that was not received.
pub fn assert_whole(spans: &[Got]) {
    for s in spans {
        if let Some(p) = &s.parent {
            assert!(
                spans.iter().any(|q| &q.id == p && q.trace == s.trace),
                "{} points to parent {p}, never sent",
                s.name
            );
        }
    }
}

/// Every span id at most once.
pub fn assert_no_duplicates(spans: &[Got]) {
    let mut ids: Vec<&str> = spans.iter().map(|s| s.id.as_str()).collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "a span arrived twice");
}

/// Waits until `receiver` holds `n` spans on `path` (or the timeout passes).
pub fn wait_spans(receiver: &Receiver, path: &str, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while received(receiver, path).len() < n && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The workload: an HTTP request span (tracing, no GenAI), inside it an observation with
/// propagated attributes, a `#[instrument]`-like handler with a DB query and a chat call, and
/// an agent run started with `parent: None` (as rig does) with a chat and a failing tool.
pub async fn workload(langfuse: Option<&langfuse_otel::Langfuse>) {
    use langfuse_otel::{PropagatedAttributes, propagate_attributes};
    use tracing::Instrument as _;

    let body = async {
        let handler = tracing::info_span!("handler");
        async {
            tracing::info_span!("db.query", db.query.text = "select 1").in_scope(|| {});
            tracing::info_span!(
                "chat gpt-4o",
                gen_ai.operation.name = "chat",
                gen_ai.request.model = "gpt-4o",
                gen_ai.usage.input_tokens = 12,
                gen_ai.usage.output_tokens = 3
            )
            .in_scope(|| {});
        }
        .instrument(handler)
        .await;
        let agent = tracing::info_span!(
            parent: None,
            "invoke_agent helper",
            gen_ai.operation.name = "invoke_agent"
        );
        async {
            tracing::info_span!(
                "chat agent-model",
                gen_ai.operation.name = "chat",
                gen_ai.response.time_to_first_chunk = 0.2
            )
            .in_scope(|| {});
            tracing::info_span!(
                "execute_tool lookup",
                gen_ai.operation.name = "execute_tool",
                gen_ai.tool.call.outcome = "error",
                error.type = "TimeoutError"
            )
            .in_scope(|| {});
        }
        .instrument(agent)
        .await;
    };
    let request = tracing::info_span!("GET /answer");
    let attrs = PropagatedAttributes::new()
        .user_id("user-7")
        .session_id("session-7");
    async {
        match langfuse {
            Some(l) => {
                propagate_attributes(attrs, async {
                    l.start_active_observation("answer", |_| body).await
                })
                .await
            }
            None => propagate_attributes(attrs, body).await,
        }
    }
    .instrument(request)
    .await;
}
