//! Runs one of the Python SDK conformance scenarios with `langfuse-otel`, configured only by
//! the `LANGFUSE_*` environment variables (plus what the scenario sets in code), and exits
//! after flushing.
//!
//! ```sh
//! LANGFUSE_PUBLIC_KEY=pk-lf-test LANGFUSE_SECRET_KEY=sk-lf-test LANGFUSE_BASE_URL=http://127.0.0.1:3000 \
//!   cargo run --release --example parity -- rag
//! ```
//! Scenarios: `rag decorator tools_agent events_errors propagate scores all_types`.

#[path = "parity_scenarios.rs"]
mod scenarios;

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(scenario) = std::env::args().nth(1) else {
        eprintln!("usage: parity <{}>", scenarios::SCENARIOS.join("|"));
        return ExitCode::from(2);
    };
    match scenarios::run(&scenario, langfuse_otel::LangfuseBuilder::from_env()) {
        Ok(()) => {
            println!("{scenario}: flushed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
