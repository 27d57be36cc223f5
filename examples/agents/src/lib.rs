//! Agent examples traced to Langfuse through an ordinary `tracing` + `tracing-opentelemetry`
//! pipeline, runnable offline against a fake OpenAI-compatible server.
//!
//! - `rig_agent` (binary): a rig 0.44 agent with two tools (one fails), a blocking multi-turn
//!   run and a streamed run, each inside a Langfuse observation; rig's `invoke_agent` root is
//!   adopted into the observation's trace by our span processor.
//! - `genai_chat` (binary): the `genai` crate (feature `otel`) calls a model with tools, the
//!   application runs the tools (one fails) and streams a last answer, inside a Langfuse
//!   observation.
//!
//! ```sh
//! cargo run --manifest-path examples/agents/Cargo.toml --bin rig_agent
//! OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true \
//!   cargo run --manifest-path examples/agents/Cargo.toml --bin genai_chat
//! ```
//!
//! Without `OPENAI_BASE_URL` the binaries start [`fake_openai::FakeOpenAi`] themselves; without
//! `LANGFUSE_PUBLIC_KEY`/`LANGFUSE_SECRET_KEY` they write Langfuse ingestion events to an
//! offline file and print the trace tree. This library holds the parts both share: the fake
//! server and the [`Pipeline`] set-up of the README recipe. The tests
//! (`cargo test --manifest-path examples/agents/Cargo.toml`) run both binaries against the fake server and
//! a local OTLP receiver and check what Langfuse derives from the spans.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod fake_openai;

use std::path::PathBuf;

use langfuse_otel::opentelemetry::trace::TracerProvider as _;
use langfuse_otel::opentelemetry_sdk::trace::SdkTracerProvider;
use langfuse_otel::{Langfuse, LangfuseBuilder};
use langfuse_otel_exporter::offline;
use tracing_subscriber::layer::SubscriberExt as _;

/// Where the model is: `OPENAI_BASE_URL`, or a [`fake_openai::FakeOpenAi`] started here (kept
/// alive in the returned value).
pub fn openai_base_url() -> std::io::Result<(String, Option<fake_openai::FakeOpenAi>)> {
    match std::env::var("OPENAI_BASE_URL") {
        Ok(url) if !url.is_empty() => Ok((url, None)),
        _ => {
            let server = fake_openai::FakeOpenAi::start()?;
            eprintln!(
                "OPENAI_BASE_URL not set: using a fake OpenAI-compatible server at {}",
                server.base_url()
            );
            Ok((server.base_url(), Some(server)))
        }
    }
}

/// The README recipe: one `SdkTracerProvider` with the Langfuse span processor, a `tracing`
/// subscriber bridging to it, and the Langfuse client built on the same provider.
#[derive(Debug)]
pub struct Pipeline {
    /// The Langfuse client (observations, `propagate_attributes`).
    pub langfuse: Langfuse,
    /// The application's provider (here it only holds the Langfuse processor).
    pub provider: SdkTracerProvider,
    offline_file: Option<PathBuf>,
}

impl Pipeline {
    /// Builds the pipeline from the `LANGFUSE_*` variables and installs the `tracing`
    /// subscriber globally. Without keys it writes to an offline file
    /// (`LANGFUSE_OFFLINE_PATH`, default `<tmp>/langfuse-<name>.jsonl`).
    pub fn install(name: &str) -> Result<Pipeline, Box<dyn std::error::Error>> {
        let online = std::env::var_os("LANGFUSE_PUBLIC_KEY").is_some()
            && std::env::var_os("LANGFUSE_SECRET_KEY").is_some();
        let mut builder = LangfuseBuilder::from_env();
        let mut offline_file = None;
        if !online {
            let path = std::env::var_os("LANGFUSE_OFFLINE_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| std::env::temp_dir().join(format!("langfuse-{name}.jsonl")));
            let _ = std::fs::remove_file(&path);
            builder = builder.offline(&path);
            offline_file = Some(path);
        }
        let provider = SdkTracerProvider::builder()
            .with_span_processor(builder.span_processor()?)
            .build();
        let langfuse = builder.tracer_provider(provider.clone()).build();
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer(name.to_owned()))),
        )?;
        Ok(Pipeline {
            langfuse,
            provider,
            offline_file,
        })
    }

    /// Sends (or writes) everything, stops the pipeline and, offline, prints the trace tree.
    pub fn finish(self) {
        if let Err(e) = self.langfuse.flush() {
            eprintln!("flush failed: {e}");
        }
        if let Err(e) = self.provider.shutdown() {
            eprintln!("shutdown failed: {e}");
        }
        match &self.offline_file {
            None => println!("sent to Langfuse"),
            Some(path) => {
                match offline::render_trace_file(path) {
                    Ok(tree) => print!("{tree}"),
                    Err(e) => eprintln!("cannot read {}: {e}", path.display()),
                }
                println!(
                    "\nOffline: written as Langfuse ingestion events to {}.\n\
                     Set LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY (and LANGFUSE_BASE_URL) to send to Langfuse.",
                    path.display()
                );
            }
        }
    }
}
