//! The seven conformance scenarios of the official Python SDK (`shared/conformance/scenarios/
//! python/*.py`), written with `langfuse-otel`. Shared by `examples/parity.rs` (configured from
//! `LANGFUSE_*` variables) and the integration test `sdk_parity` (pointed at a local receiver).

use std::time::{Duration, SystemTime};

use langfuse_otel::{
    Langfuse, LangfuseBuilder, Level, ObservationOptions, ObservationType, ObservationUpdate,
    PromptRef, PropagatedAttributes, Score, in_current_context, propagate_attributes,
    with_current_context,
};
use serde_json::{Value, json};

/// Scenario names, in the order of the Python captures.
pub const SCENARIOS: [&str; 7] = [
    "rag",
    "decorator",
    "tools_agent",
    "events_errors",
    "propagate",
    "scores",
    "all_types",
];

const QUESTION: &str = "How do I reset my password?";
const SYSTEM_PROMPT: &str = "You are a support assistant. Answer using the provided documents.";
const ANSWER: &str =
    "Go to Settings > Security, click 'Reset password' and follow the emailed link.";

fn docs() -> Value {
    json!([
        {"id": "doc-1", "title": "Reset your password", "score": 0.91},
        {"id": "doc-2", "title": "Account security FAQ", "score": 0.84},
        {"id": "doc-3", "title": "Two-factor authentication", "score": 0.62},
    ])
}

fn obs(
    name: impl Into<std::borrow::Cow<'static, str>>,
    as_type: ObservationType,
) -> ObservationOptions {
    ObservationOptions::new(name, as_type)
}

/// Runs one scenario with a client built from `builder` (plus what the scenario sets in code),
/// then flushes and shuts the client down.
pub fn run(scenario: &str, builder: LangfuseBuilder) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let langfuse = match scenario {
        "rag" | "decorator" => builder.environment("staging").release("r-42").build(),
        "tools_agent" | "events_errors" | "propagate" | "scores" | "all_types" => builder.build(),
        other => return Err(format!("unknown scenario {other:?}; one of {SCENARIOS:?}")),
    };
    let l = langfuse.clone();
    rt.block_on(async move {
        match scenario {
            "rag" => rag(&l).await,
            "decorator" => decorator(&l).await,
            "tools_agent" => tools_agent(&l).await,
            "events_errors" => events_errors(&l).await,
            "propagate" => propagate(&l).await,
            "scores" => scores(&l).await,
            _ => all_types(&l).await,
        }
    });
    drop(rt);
    langfuse.flush().map_err(|e| e.to_string())?;
    langfuse.shutdown().map_err(|e| e.to_string())
}

async fn rag(langfuse: &Langfuse) {
    let attrs = PropagatedAttributes::new()
        .user_id("user_456")
        .session_id("session_abc")
        .tags(["rag", "support"])
        .metadata(&json!({"pipeline_version": "2.1"}))
        .version("1.2.0");
    propagate_attributes(attrs, async {
        let root = obs("rag-pipeline", ObservationType::Span).input(&json!({"question": QUESTION}));
        langfuse
            .start_active_observation(root, |root| async move {
                let embed = obs("embed", ObservationType::Embedding)
                    .model("text-embedding-3-small")
                    .input(QUESTION);
                langfuse
                    .start_active_observation(embed, |emb| async move {
                        emb.update(
                            ObservationUpdate::new()
                                .output(&json!({"dimensions": 1536}))
                                .usage_details(&json!({"input": 8})),
                        );
                    })
                    .await;
                let search = obs("vector-search", ObservationType::Retriever)
                    .input(&json!({"query": QUESTION, "top_k": 3}));
                langfuse
                    .start_active_observation(search, |ret| async move {
                        ret.update(ObservationUpdate::new().output(&docs()));
                    })
                    .await;
                let rerank = obs("rerank", ObservationType::Span)
                    .input(&json!({"candidates": ["doc-1", "doc-2", "doc-3"]}));
                langfuse
                    .start_active_observation(rerank, |rr| async move {
                        rr.update(
                            ObservationUpdate::new()
                                .output(&json!({"ranked": ["doc-1", "doc-2"]}))
                                .metadata(&json!({"reranker": "cross-encoder"})),
                        );
                    })
                    .await;
                let generate = obs("generate-answer", ObservationType::Generation)
                    .model("gpt-4o-mini")
                    .model_parameters(&json!({"temperature": 0.2, "max_tokens": 256}))
                    .input(&json!([
                        {"role": "system", "content": SYSTEM_PROMPT},
                        {"role": "user", "content": QUESTION},
                    ]));
                langfuse
                    .start_active_observation(generate, |generation| async move {
                        generation.update(
                            ObservationUpdate::new()
                                .output(&json!({"role": "assistant", "content": ANSWER}))
                                .usage_details(&json!({"input": 120, "output": 40, "total": 160})),
                        );
                    })
                    .await;
                root.update(ObservationUpdate::new().output(&json!({"answer": ANSWER})));
            })
            .await;
    })
    .await;
}

/// The decorator scenario: what Python's `@observe` records (input `{"args": [...],
/// "kwargs": {...}}`, output = the return value), written with closures.
async fn decorator(langfuse: &Langfuse) {
    fn call(args: Value, kwargs: Value) -> Value {
        json!({"args": args, "kwargs": kwargs})
    }
    async fn observed<F, Fut>(langfuse: &Langfuse, opts: ObservationOptions, body: F) -> Value
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Value>,
    {
        langfuse
            .start_active_observation(opts, |o| async move {
                let out = body().await;
                o.update(ObservationUpdate::new().output(&out));
                out
            })
            .await
    }

    let root =
        obs("rag-pipeline", ObservationType::Span).input(&call(json!([QUESTION]), json!({})));
    observed(langfuse, root, || async {
        let attrs = PropagatedAttributes::new()
            .user_id("user_456")
            .session_id("session_abc")
            .tags(["rag", "support"])
            .metadata(&json!({"pipeline_version": "2.1"}))
            .version("1.2.0");
        propagate_attributes(attrs, async {
            let vec = observed(
                langfuse,
                obs("embed", ObservationType::Embedding).input(&call(json!([QUESTION]), json!({}))),
                || async {
                    langfuse.update_current_generation(
                        ObservationUpdate::new()
                            .model("text-embedding-3-small")
                            .usage_details(&json!({"input": 8})),
                    );
                    json!([0.012, -0.034, 0.056])
                },
            )
            .await;
            let docs = observed(
                langfuse,
                obs("vector-search", ObservationType::Retriever)
                    .input(&call(json!([vec]), json!({"top_k": 3}))),
                || async { docs() },
            )
            .await;
            let ranked = observed(
                langfuse,
                obs("rerank", ObservationType::Span).input(&call(json!([docs]), json!({}))),
                || async { json!(["doc-1", "doc-2"]) },
            )
            .await;
            let answer = observed(
                langfuse,
                obs("generate-answer", ObservationType::Generation)
                    .input(&call(json!([QUESTION, ranked]), json!({}))),
                || async {
                    langfuse.update_current_generation(
                        ObservationUpdate::new()
                            .model("gpt-4o-mini")
                            .model_parameters(&json!({"temperature": 0.2, "max_tokens": 256}))
                            .usage_details(&json!({"input": 120, "output": 40, "total": 160}))
                            .metadata(&json!({"prompt_messages": 2})),
                    );
                    json!({"role": "assistant", "content": ANSWER})
                },
            )
            .await;
            json!({"answer": answer["content"]})
        })
        .await
    })
    .await;
}

async fn tools_agent(langfuse: &Langfuse) {
    let user_msg = json!({"role": "user", "content": "I forgot my password, what do I do?"});
    let tool_call = json!({
        "id": "call_1",
        "type": "function",
        "function": {"name": "search_docs", "arguments": "{\"query\": \"reset password\"}"},
    });
    let results = json!([
        {"title": "Reset your password", "url": "https://docs.example.com/reset"},
        {"title": "Account recovery", "url": "https://docs.example.com/recovery"},
    ]);
    let agent_opts =
        obs("support-agent", ObservationType::Agent).input(&json!({"messages": [user_msg]}));
    langfuse
        .start_active_observation(agent_opts, |agent| async move {
            let plan = obs("plan", ObservationType::Generation).model("gpt-4o-mini").input(&json!([user_msg]));
            let tc = tool_call.clone();
            agent
                .start_active_observation(plan, |g1| async move {
                    g1.update(
                        ObservationUpdate::new()
                            .output(&json!({"role": "assistant", "content": null, "tool_calls": [tc]}))
                            .usage_details(&json!({"input": 85, "output": 18, "total": 103})),
                    );
                })
                .await;
            let search = obs("search_docs", ObservationType::Tool).input(&json!({"query": "reset password"}));
            let r = results.clone();
            agent
                .start_active_observation(search, |tool| async move {
                    tool.update(ObservationUpdate::new().output(&r));
                })
                .await;
            let results_text = langfuse_otel::json::to_python_json(&results, langfuse_otel::json::JsonStyle::Python);
            let final_opts = obs("final-answer", ObservationType::Generation).model("gpt-4o-mini").input(&json!([
                user_msg,
                {"role": "assistant", "tool_calls": [tool_call]},
                {"role": "tool", "tool_call_id": "call_1", "content": results_text},
            ]));
            agent
                .start_active_observation(final_opts, |g2| async move {
                    g2.update(
                        ObservationUpdate::new()
                            .output(&json!({"role": "assistant", "content": "Use the 'Reset your password' guide."}))
                            .usage_details(&json!({"input": 160, "output": 22, "total": 182})),
                    );
                })
                .await;
            agent.update(ObservationUpdate::new().output(
                &json!({"answer": "Use the 'Reset your password' guide.", "steps": 3}),
            ));
        })
        .await;
}

/// Python's `ValueError`, as a Rust error whose `Display` is Python's `"Type: message"`.
#[derive(Debug)]
struct ValueError(String);

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValueError: {}", self.0)
    }
}

async fn events_errors(langfuse: &Langfuse) {
    let root =
        obs("events-and-errors", ObservationType::Span).input(&json!({"job": "nightly-sync"}));
    langfuse
        .start_active_observation(root, |root| async move {
            for (level, title) in [
                (Level::Debug, "Debug"),
                (Level::Default, "Default"),
                (Level::Warning, "Warning"),
                (Level::Error, "Error"),
            ] {
                langfuse.create_event(
                    obs(
                        format!("event-{}", title.to_lowercase()),
                        ObservationType::Event,
                    )
                    .level(level)
                    .status_message(format!("{title} status message"))
                    .input(&json!({"level": level.as_str()}))
                    .metadata(&json!({"source": "events_errors"})),
                );
            }
            let failing = obs("failing-step", ObservationType::Span).input(&json!({"item": 42}));
            let result: Result<(), ValueError> = langfuse
                .try_start_active_observation(failing, |_step| async {
                    Err(ValueError("simulated failure in step 42".into()))
                })
                .await;
            assert!(result.is_err(), "the error propagates to the caller");
            root.update(ObservationUpdate::new().output(&json!({"failed_steps": 1})));
        })
        .await;
}

async fn propagate(langfuse: &Langfuse) {
    let attrs = PropagatedAttributes::new()
        .user_id("user_789")
        .session_id("session_xyz")
        .metadata(&json!({"tenant": "acme", "region": "eu-west"}))
        .version("3.0.0")
        .tags(["propagated", "nested"])
        .trace_name("propagated-trace");
    propagate_attributes(attrs, async {
        langfuse
            .start_active_observation("prop-root", |root| async move {
                langfuse
                    .start_active_observation("level-1", |_l1| async {
                        langfuse
                            .start_active_observation("level-2", |_l2| async {
                                let lf = langfuse.clone();
                                // A blocking worker thread keeps the caller's context.
                                tokio::task::spawn_blocking(with_current_context(move || {
                                    lf.start_active_observation_sync("level-3-thread", |s| {
                                        s.update(
                                            ObservationUpdate::new()
                                                .output(&json!({"thread": "worker"})),
                                        );
                                    })
                                }))
                                .await
                                .expect("worker thread");
                            })
                            .await;
                    })
                    .await;
                // Two children in parallel on spawned tasks.
                let child = |name: &'static str, delay: f64| {
                    let lf = langfuse.clone();
                    tokio::spawn(in_current_context(async move {
                        lf.start_active_observation(
                            ObservationOptions::from(name).input(&json!({"delay": delay})),
                            |s| async move {
                                tokio::time::sleep(Duration::from_secs_f64(delay)).await;
                                s.update(ObservationUpdate::new().output(&json!({"done": name})));
                            },
                        )
                        .await
                    }))
                };
                let (a, b) =
                    tokio::join!(child("async-child-a", 0.02), child("async-child-b", 0.01));
                a.expect("task a");
                b.expect("task b");
                root.update(ObservationUpdate::new().output(&json!({"children": 3})));
            })
            .await;
    })
    .await;
}

async fn scores(langfuse: &Langfuse) {
    let root = obs("scored-request", ObservationType::Span).input(&json!({"q": "reset password"}));
    langfuse
        .start_active_observation(root, |root| async move {
            let answer = obs("answer", ObservationType::Generation).model("gpt-4o-mini");
            langfuse
                .start_active_observation(answer, |generation| async move {
                    generation.update(
                        ObservationUpdate::new()
                            .output(&json!({"role": "assistant", "content": ANSWER})),
                    );
                    langfuse.score_current_observation(
                        Score::numeric("relevance", 0.87)
                            .comment("numeric score on the current span"),
                    );
                    generation.score(
                        Score::categorical("tone", "friendly")
                            .comment("categorical score on a span"),
                    );
                })
                .await;
            langfuse.score_current_trace(
                Score::boolean("helpful", true).comment("boolean score on the current trace"),
            );
            root.score_trace(
                Score::new("accuracy", 0.9).comment("numeric trace score, data_type omitted"),
            );
            root.score_trace(
                Score::categorical("quality", "good").comment("categorical trace score"),
            );
        })
        .await;
}

async fn all_types(langfuse: &Langfuse) {
    let t0 = SystemTime::now();
    let root_opts = obs("all-types", ObservationType::Span)
        .input(&json!({"case": "all_types"}))
        .metadata(&json!({"suite": "conformance", "nested": {"a": 1, "b": [1, 2]}}))
        .version("0.9.1")
        .level(Level::Default);
    langfuse
        .start_active_observation(root_opts, |root| async move {
            let gen_opts = obs("gen", ObservationType::Generation)
                .model("gpt-4o-mini")
                .model_parameters(&json!({"temperature": 0.7, "max_tokens": 512, "stop": "###"}))
                .input(&json!([{"role": "user", "content": "hi"}]))
                .prompt(PromptRef::new("qa-prompt", 3))
                .completion_start_time(t0 + Duration::from_millis(150));
            root.start_active_observation(gen_opts, |g| async move {
                g.update(
                    ObservationUpdate::new()
                        .output(&json!({"role": "assistant", "content": "hello"}))
                        .usage_details(&json!({"input": 1200, "output": 300, "total": 1500,
                            "input_cache_read": 800, "input_cache_creation": 100}))
                        .cost_details(&json!({"input": 0.0012, "output": 0.0009, "total": 0.0021})),
                );
            })
            .await;
            root.create_event(
                obs("evt", ObservationType::Event)
                    .input(&json!({"clicked": "retry"}))
                    .level(Level::Warning)
                    .status_message("user retried"),
            );
            let simple: [(&str, ObservationType, Value, Value); 5] = [
                (
                    "agent",
                    ObservationType::Agent,
                    json!({"goal": "answer"}),
                    json!({"status": "done"}),
                ),
                (
                    "tool",
                    ObservationType::Tool,
                    json!({"q": "x"}),
                    json!(["r1", "r2"]),
                ),
                (
                    "chain",
                    ObservationType::Chain,
                    json!("step-input"),
                    json!("step-output"),
                ),
                (
                    "retriever",
                    ObservationType::Retriever,
                    json!({"query": "q"}),
                    json!([{"id": "d1"}]),
                ),
                (
                    "evaluator",
                    ObservationType::Evaluator,
                    json!({"answer": "hello"}),
                    json!({"score": 0.8, "reason": "ok"}),
                ),
            ];
            for (name, as_type, input, output) in simple {
                root.start_active_observation(obs(name, as_type).input(&input), |o| async move {
                    o.update(ObservationUpdate::new().output(&output));
                })
                .await;
            }
            let emb = obs("embedding", ObservationType::Embedding)
                .model("text-embedding-3-small")
                .input(&json!(["a", "b"]));
            root.start_active_observation(emb, |o| async move {
                o.update(
                    ObservationUpdate::new()
                        .output(&json!({"vectors": 2}))
                        .usage_details(&json!({"input": 4}))
                        .cost_details(&json!({"total": 0.00001})),
                );
            })
            .await;
            root.start_active_observation(
                obs("guardrail", ObservationType::Guardrail).input("user text"),
                |o| async move {
                    o.update(
                        ObservationUpdate::new()
                            .output(&json!({"allowed": true}))
                            .metadata(&json!({"policy": "pii"})),
                    );
                },
            )
            .await;
            root.update(ObservationUpdate::new().output(&json!({"types": 10})));
        })
        .await;
}
