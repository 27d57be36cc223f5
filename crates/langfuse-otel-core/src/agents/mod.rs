//! Coding agents (Claude Code, Codex CLI, Gemini CLI): their OpenTelemetry logs and spans
//! assembled into one Langfuse trace per agent turn.
//!
//! The CLIs describe a turn in log events (and, depending on the CLI and its settings, spans),
//! linked by ids each CLI names differently. The rules live here as pure functions, one module
//! per agent ([`claude_code`], [`codex`], [`gemini_cli`]): each turns a log record or a span into
//! an *item* (a prompt, a model request, a tool call, facts about the turn) with the ids that
//! link it to its turn. [`TurnAssembler`] groups the items into turns (by the shared ids, then by
//! conversation and time) and emits each turn, once it is quiet for the window, as canonical OTLP
//! spans with `langfuse.*` attributes ([`AssembledTurn::batch`]), which every destination takes
//! unchanged: the translator turns them into records, Langfuse reads them as built.
//!
//! | turn part | span | from |
//! |---|---|---|
//! | the turn | root, type `agent`, named `<agent> turn` | the prompt event; the agent's turn span when it sends one |
//! | one model request | type `generation` (model, usage, cost, completion start) | the request/response events; the request span enriches it (never counted twice) |
//! | one tool call | type `tool` (arguments, result, decision, ERROR when it failed) | the tool events; the tool span enriches it |
//! | other agent spans | dropped, or kept under the turn ([`AssembleOptions::keep_agent_spans`]) | |
//!
//! The field-by-field table is in `docs/coding-agents.md`.
//!
//! ```
//! use langfuse_otel_core::agents::{AssembleOptions, TurnAssembler};
//! use langfuse_otel_core::otlp::{self, Format};
//!
//! let logs = br#"{"resourceLogs":[{"resource":{"attributes":[
//!     {"key":"service.name","value":{"stringValue":"claude-code"}}]},
//!   "scopeLogs":[{"scope":{"name":"com.anthropic.claude_code.events"},"logRecords":[
//!   {"timeUnixNano":"1767258000000000000","body":{"stringValue":"claude_code.user_prompt"},"attributes":[
//!     {"key":"session.id","value":{"stringValue":"s1"}},{"key":"prompt.id","value":{"stringValue":"p1"}},
//!     {"key":"event.name","value":{"stringValue":"user_prompt"}},
//!     {"key":"prompt","value":{"stringValue":"list the files"}}]},
//!   {"timeUnixNano":"1767258001000000000","body":{"stringValue":"claude_code.api_request"},"attributes":[
//!     {"key":"session.id","value":{"stringValue":"s1"}},{"key":"prompt.id","value":{"stringValue":"p1"}},
//!     {"key":"event.name","value":{"stringValue":"api_request"}},
//!     {"key":"model","value":{"stringValue":"claude-sonnet-4-5"}},
//!     {"key":"input_tokens","value":{"intValue":"10"}},{"key":"output_tokens","value":{"stringValue":"5"}},
//!     {"key":"duration_ms","value":{"stringValue":"300"}},{"key":"request_id","value":{"stringValue":"r1"}}]}
//! ]}]}]}"#;
//! let mut assembler = TurnAssembler::new(AssembleOptions::default());
//! let batch = otlp::decode_logs_as(Format::Json, logs).unwrap();
//! let rest = assembler.push_logs(batch, 1, None, 0);
//! assert_eq!(rest.record_count(), 0); // all of it was Claude Code's
//! assert!(assembler.ready(1_000).is_empty()); // not quiet for the window yet
//! let turns = assembler.ready(60_000);
//! assert_eq!(turns.len(), 1);
//! let events = langfuse_otel_core::translate_batch(&turns[0].batch).events;
//! let json = serde_json::to_value(&events).unwrap();
//! let generation = json.as_array().unwrap().iter()
//!     .find(|e| e["type"] == "generation-create").unwrap();
//! assert_eq!(generation["body"]["usageDetails"]["output"], 5);
//! ```

pub mod claude_code;
pub mod codex;
pub mod gemini_cli;

mod agent;
mod assemble;
mod events;
mod model;
mod turn;

pub use self::agent::Agent;
pub use self::assemble::{AssembleOptions, AssembledTurn, TurnAssembler};
pub use self::events::log_events;
pub use self::model::{Context, Generation, Item, Part, Prompt, Request, Tool};
