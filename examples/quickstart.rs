//! Quickstart: a support-bot RAG pipeline (embed → vector search → rerank → generate with usage
//! → a score), instrumented with `langfuse-otel`.
//!
//! ```sh
//! cargo run --example quickstart            # no keys: offline file of ingestion events (spans and the score), printed as a tree
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… cargo run --example quickstart  # sends to Langfuse
//! ```

use std::path::PathBuf;
use std::time::Duration;

use langfuse_otel::{
    Langfuse, LangfuseBuilder, ObservationOptions, ObservationType, ObservationUpdate,
    PropagatedAttributes, Score, propagate_attributes,
};
use langfuse_otel_exporter::offline;
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

#[tokio::main]
async fn main() {
    let online = std::env::var_os("LANGFUSE_PUBLIC_KEY").is_some()
        && std::env::var_os("LANGFUSE_SECRET_KEY").is_some();
    // Without keys: the exporter's offline destination, a JSON-lines file of ingestion events
    // (spans and scores).
    let offline_file = std::env::var_os("LANGFUSE_OFFLINE_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("langfuse-quickstart.jsonl"));
    let langfuse = if online {
        LangfuseBuilder::from_env().build()
    } else {
        let _ = std::fs::remove_file(&offline_file);
        LangfuseBuilder::from_env().offline(&offline_file).build()
    };

    let attrs = PropagatedAttributes::new()
        .user_id("user-42")
        .session_id("chat-7")
        .tags(["support", "rag"]);
    let reply = propagate_attributes(attrs, answer(&langfuse, "How do I reset my password?")).await;
    println!("answer: {reply}\n");

    // Sends (or writes) everything and stops the client; in a service keep the client and
    // call `flush()` where needed, or hold the guard of `init_global()` in `main`.
    if let Err(e) = langfuse.shutdown() {
        eprintln!("flush failed: {e}");
    }
    if online {
        println!("sent to Langfuse");
        return;
    }
    match offline::render_trace_file(&offline_file) {
        Ok(tree) => print!("{tree}"),
        Err(e) => eprintln!("cannot read {}: {e}", offline_file.display()),
    }
    println!(
        "\nOffline: the trace and its score were written as Langfuse ingestion events to {file}.\n\
         Open them in the local trace viewer (store ./langfuse-traces.db, then http://127.0.0.1:3000/):\n  \
         cargo run -p langfuse-bridge -- import {file} && cargo run -p langfuse-bridge -- ui\n\
         Set LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY (and LANGFUSE_BASE_URL) to send them to Langfuse.",
        file = offline_file.display()
    );
}
