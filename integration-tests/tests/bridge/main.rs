//! The bridge (`langfuse-bridge`): receivers, access, limits, durability, validation, local mode and its viewer, the commands, Langfuse v4 (legacy SDKs, assembly, dead letters, the API), Kafka between bridges, coding agents (captures replayed; the real Claude Code CLI). `bridge_connections` (it lowers its own process's open-files limit) is a binary of its own.
//!
//! One test binary per area (link time); each former file is a module: run one with
//! `cargo test -p integration-tests --test bridge <module>::`.

mod bridge_support;

mod access;
mod coding_agents;
mod coding_agents_cli;
mod durability;
mod kafka;
mod langfuse_v4;
mod limits;
mod local;
mod local_safety;
mod sdk_captures;
mod spool_damage;
mod store_sdk_captures;
mod translate_cli;
mod validation;
mod viewer_browser;
