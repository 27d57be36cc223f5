//! Quickstart: a support-bot RAG pipeline (embed → vector search → rerank → generate with usage
//! → a score), instrumented with `langfuse-otel`.
//!
//! ```sh
//! cargo run --example quickstart            # no keys: prints the trace tree, no network
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… cargo run --example quickstart  # sends to Langfuse
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use langfuse_otel::{
    Langfuse, LangfuseBuilder, LangfuseSpanProcessor, ObservationOptions, ObservationType,
    ObservationUpdate, PropagatedAttributes, Score, propagate_attributes,
};
use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, Span, SpanData, SpanProcessor};
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, Serialize)]
struct Doc {
    id: &'static str,
    title: &'static str,
    score: f64,
}

/// The application: plain async Rust with observations around each step.
async fn answer(langfuse: &Langfuse, question: &str) -> String {
    let root = ObservationOptions::new("support-bot", ObservationType::Span).input(question);
    langfuse
        .start_active_observation(root, |bot| async move {
            let embed = ObservationOptions::new("embed", ObservationType::Embedding)
                .model("text-embedding-3-small")
                .input(question);
            let vector = langfuse
                .start_active_observation(embed, |emb| async move {
                    tokio::time::sleep(Duration::from_millis(3)).await; // the embedding API call
                    let vector = vec![0.012, -0.034, 0.056];
                    emb.update(
                        ObservationUpdate::new()
                            .output(&json!({"dimensions": vector.len()}))
                            .usage_details(&json!({"input": 8})),
                    );
                    vector
                })
                .await;

            let search = ObservationOptions::new("vector-search", ObservationType::Retriever)
                .input(&json!({"vector_dims": vector.len(), "top_k": 3}));
            let docs = langfuse
                .start_active_observation(search, |ret| async move {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    let docs = vec![
                        Doc {
                            id: "doc-1",
                            title: "Reset your password",
                            score: 0.91,
                        },
                        Doc {
                            id: "doc-2",
                            title: "Account security FAQ",
                            score: 0.84,
                        },
                        Doc {
                            id: "doc-3",
                            title: "Two-factor authentication",
                            score: 0.62,
                        },
                    ];
                    ret.update(ObservationUpdate::new().output(&docs));
                    docs
                })
                .await;

            let ranked = langfuse
                .start_active_observation(
                    ObservationOptions::from("rerank").input(&docs),
                    |rr| async move {
                        let ranked: Vec<Doc> = docs.into_iter().filter(|d| d.score > 0.8).collect();
                        rr.update(
                            ObservationUpdate::new()
                                .output(&ranked.iter().map(|d| d.id).collect::<Vec<_>>())
                                .metadata(&json!({"reranker": "cross-encoder"})),
                        );
                        ranked
                    },
                )
                .await;

            let generate = ObservationOptions::new("generate-answer", ObservationType::Generation)
                .model("gpt-4o-mini")
                .model_parameters(&json!({"temperature": 0.2, "max_tokens": 256}))
                .input(&json!([
                    {"role": "system", "content": "Answer using the documents."},
                    {"role": "user", "content": question},
                ]));
            let reply = langfuse
                .start_active_observation(generate, |generation| async move {
                    tokio::time::sleep(Duration::from_millis(5)).await; // the LLM call
                    let reply = format!(
                        "See '{}': Settings > Security > Reset password.",
                        ranked[0].title
                    );
                    generation.update(
                        ObservationUpdate::new()
                            .output(&json!({"role": "assistant", "content": reply}))
                            .usage_details(&json!({"input": 120, "output": 40, "total": 160}))
                            .cost_details(
                                &json!({"input": 0.000018, "output": 0.000024, "total": 0.000042}),
                            ),
                    );
                    reply
                })
                .await;

            bot.update(ObservationUpdate::new().output(&reply));
            bot.score_trace(Score::numeric("helpfulness", 0.9).comment("auto-evaluated"));
            reply
        })
        .await
}

/// Offline destination until the exporter crate's lands: keeps finished spans for printing.
#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<SpanData>>>);

impl SpanProcessor for Collect {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}
    fn on_end(&self, span: SpanData) {
        if let Ok(mut spans) = self.0.lock() {
            spans.push(span);
        }
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

fn print_tree(spans: &[SpanData]) {
    fn attr(s: &SpanData, key: &str) -> Option<String> {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    }
    fn walk(spans: &[SpanData], parent: opentelemetry::trace::SpanId, indent: &str) {
        let mut children: Vec<&SpanData> = spans
            .iter()
            .filter(|s| s.parent_span_id == parent)
            .collect();
        children.sort_by_key(|s| s.start_time);
        for (i, s) in children.iter().enumerate() {
            let last = i + 1 == children.len();
            let ms = s
                .end_time
                .duration_since(s.start_time)
                .unwrap_or_default()
                .as_secs_f64()
                * 1e3;
            let mut line = format!(
                "{indent}{} {} [{}] {ms:.1} ms",
                if last { "└─" } else { "├─" },
                s.name,
                attr(s, "langfuse.observation.type").unwrap_or_else(|| "span".into())
            );
            for (key, label) in [
                ("langfuse.observation.model.name", "model"),
                ("langfuse.observation.usage_details", "usage"),
                ("langfuse.observation.cost_details", "cost"),
            ] {
                if let Some(v) = attr(s, key) {
                    line.push_str(&format!(" {label}={v}"));
                }
            }
            println!("{line}");
            let next = format!("{indent}{}", if last { "   " } else { "│  " });
            walk(spans, s.span_context.span_id(), &next);
        }
    }
    if let Some(root) = spans
        .iter()
        .find(|s| s.parent_span_id == opentelemetry::trace::SpanId::INVALID)
    {
        println!(
            "trace {}  user={} session={} tags={}",
            root.span_context.trace_id(),
            attr(root, "user.id").unwrap_or_default(),
            attr(root, "session.id").unwrap_or_default(),
            attr(root, "langfuse.trace.tags").unwrap_or_default(),
        );
    }
    walk(spans, opentelemetry::trace::SpanId::INVALID, "");
}

#[tokio::main]
async fn main() {
    let builder = LangfuseBuilder::from_env();
    let online = std::env::var_os("LANGFUSE_PUBLIC_KEY").is_some()
        && std::env::var_os("LANGFUSE_SECRET_KEY").is_some();
    let collected = Collect::default();
    let langfuse = if online {
        builder.build()
    } else {
        let provider = SdkTracerProvider::builder()
            .with_span_processor(LangfuseSpanProcessor::new(collected.clone(), None))
            .build();
        Langfuse::with_provider(provider, None)
    };

    let attrs = PropagatedAttributes::new()
        .user_id("user-42")
        .session_id("chat-7")
        .tags(["support", "rag"]);
    let reply = propagate_attributes(attrs, answer(&langfuse, "How do I reset my password?")).await;
    println!("answer: {reply}\n");

    if online {
        match langfuse.flush() {
            Ok(()) => println!("sent to Langfuse"),
            Err(e) => eprintln!("flush failed: {e}"),
        }
    } else {
        let spans = collected.0.lock().map(|s| s.clone()).unwrap_or_default();
        print_tree(&spans);
        println!(
            "score: helpfulness = 0.9 on the trace (sent to /api/public/scores when keys are set)"
        );
        println!(
            "\nSet LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY (and LANGFUSE_BASE_URL) to send this trace to Langfuse."
        );
    }
}
