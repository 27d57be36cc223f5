//! The SDK (`langfuse-otel`): the client, offline mode, one HTTP client, parity with the official SDKs, scores under outages, diagnostics, the agent examples. The global-client and idle-CPU tests stay binaries of their own (process-global state, process CPU).
//!
//! One test binary per area (link time); each former file is a module: run one with
//! `cargo test -p integration-tests --test sdk <module>::`.

mod agent_examples;
mod client;
mod debug_diagnostics;
mod offline;
mod one_http_client;
mod parity;
mod score_outages;
