//! The coding-agent stage, beside the shaping of each record: log records and spans of Claude
//! Code, Codex CLI and Gemini CLI are held by a [`TurnAssembler`] and come out as one trace per
//! agent turn (canonical spans, translated or sent like any other), once the turn is quiet for
//! `--agent-window`. Other applications' log records become Langfuse events under their span
//! with `--logs events`, else they are counted and let go.
//!
//! Durable like the rest: the forwarder commits its cursor below the first spool record whose
//! agent items are still held ([`AgentStage::held_from`]); after a restart those records are
//! read again and their turns assembled again, with the same ids.

use langfuse_otel_core::agents::{self, AssembleOptions, AssembledTurn, TurnAssembler};
use langfuse_otel_core::log::LogBatch;
use langfuse_otel_core::span::SpanBatch;

/// Which spans of a coding agent are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AgentSpans {
    /// The turn, its generations and tool calls; the agent's internal spans are dropped.
    #[default]
    Turns,
    /// Also every other span the agent sends, under its turn.
    All,
}

/// What happens to log records that are not a coding agent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogsMode {
    /// Only coding agents' records are read; the others are counted and let go.
    #[default]
    Agents,
    /// Records with a trace and span id also become Langfuse events under that span.
    Events,
}

/// The coding-agent flags of `serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AgentArgs {
    /// Seconds a coding-agent turn must be quiet before it is emitted as one trace [default: 10].
    #[arg(long, value_name = "SECS", env = "LANGFUSE_BRIDGE_AGENT_WINDOW")]
    pub agent_window: Option<f64>,
    /// Coding-agent spans kept: turns (the turn, generations, tools) or all [default: turns].
    #[arg(long, value_name = "WHICH", env = "LANGFUSE_BRIDGE_AGENT_SPANS")]
    pub agent_spans: Option<AgentSpans>,
    /// Other applications' log records: agents (let go) or events (Langfuse events under their span) [default: agents].
    #[arg(long, value_name = "MODE", env = "LANGFUSE_BRIDGE_LOGS")]
    pub logs: Option<LogsMode>,
}

/// What the stage let go, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StageCounts {
    /// Turns (and follow-ups) emitted.
    pub turns: u64,
    /// Agent records and spans that belonged to no turn.
    pub agent_outside_turns: u64,
}

/// The stage's state: the assembler and the logs mode.
pub(crate) struct AgentStage {
    assembler: TurnAssembler,
    logs: LogsMode,
    counts: StageCounts,
    discarded_seen: u64,
}

impl Default for AgentStage {
    fn default() -> Self {
        AgentStage::new(AssembleOptions::default(), LogsMode::Agents)
    }
}

impl AgentStage {
    pub(crate) fn new(options: AssembleOptions, logs: LogsMode) -> Self {
        AgentStage {
            assembler: TurnAssembler::new(options),
            logs,
            counts: StageCounts::default(),
            discarded_seen: 0,
        }
    }

    /// The stage as configured (`--agent-window`, `--agent-spans`, `--logs`).
    pub(crate) fn configured(window_secs: f64, spans: AgentSpans, logs: LogsMode) -> Self {
        let window_ms = (window_secs.max(0.0) * 1000.0).round() as i64;
        AgentStage::new(
            AssembleOptions::default()
                .with_window_ms(window_ms)
                .with_keep_agent_spans(spans == AgentSpans::All),
            logs,
        )
    }

    /// Takes the agents' records of a logs export; returns the spans made of the other
    /// records (`--logs events`), if any, and how many other records became nothing (the
    /// caller keeps those in the dead-letter file: they were acknowledged).
    pub(crate) fn take_logs(
        &mut self,
        batch: LogBatch,
        sequence: u64,
        tenant: Option<&str>,
        now_ms: i64,
    ) -> (Option<SpanBatch<'static>>, usize) {
        let before = self.assembler.discarded();
        let rest = self.assembler.push_logs(batch, sequence, tenant, now_ms);
        let discarded = self.take_discarded_since(before);
        let others = rest.record_count();
        if others == 0 {
            return (None, discarded);
        }
        match self.logs {
            LogsMode::Agents => (None, others + discarded),
            LogsMode::Events => {
                let (spans, left_out) = agents::log_events(&rest);
                (
                    (spans.span_count() > 0).then_some(spans),
                    left_out + discarded,
                )
            }
        }
    }

    /// Takes the agents' spans of a trace export; returns the other spans, and how many
    /// agent spans fit no turn (internal spans, with `--agent-spans turns`): the caller keeps
    /// those in the dead-letter file (they were acknowledged).
    pub(crate) fn take_spans(
        &mut self,
        batch: SpanBatch<'static>,
        sequence: u64,
        tenant: Option<&str>,
        now_ms: i64,
    ) -> (SpanBatch<'static>, usize) {
        let before = self.assembler.discarded();
        let rest = self.assembler.push_spans(batch, sequence, tenant, now_ms);
        (rest, self.take_discarded_since(before))
    }

    /// Items the assembler let go since `before` (on arrival), taken out of the
    /// `agent_outside_turns` count: the caller dead-letters them with their record.
    fn take_discarded_since(&mut self, before: u64) -> usize {
        let now = self.assembler.discarded();
        self.discarded_seen += now - before;
        usize::try_from(now - before).unwrap_or(usize::MAX)
    }

    /// The turns quiet for the window (all of them when `drain`).
    pub(crate) fn turns(&mut self, now_ms: i64, drain: bool) -> Vec<AssembledTurn> {
        if self.assembler.pending_items() == 0 {
            return Vec::new();
        }
        let turns = if drain {
            self.assembler.drain()
        } else {
            self.assembler.ready(now_ms)
        };
        self.counts.turns += turns.len() as u64;
        turns
    }

    /// Whether items are held.
    pub(crate) fn holds(&self) -> bool {
        self.assembler.pending_items() > 0
    }

    /// The first spool sequence whose agent items are still held.
    pub(crate) fn held_from(&self) -> Option<u64> {
        self.assembler.held_from()
    }

    /// What was let go and emitted since the last call.
    pub(crate) fn take_counts(&mut self) -> StageCounts {
        let discarded = self.assembler.discarded();
        self.counts.agent_outside_turns += discarded - self.discarded_seen;
        self.discarded_seen = discarded;
        std::mem::take(&mut self.counts)
    }
}

/// Whether an OTLP body may hold a coding agent's telemetry (a byte search for the names the
/// agents put in their resource or scope), so passthrough exports of other applications are
/// forwarded without being decoded.
pub(crate) fn may_hold_agent(body: &[u8]) -> bool {
    use std::sync::LazyLock;
    // `claude` also finds `claude_code` and `claude-code`. SIMD substring search: this runs on
    // every OTLP record of the forwarding path, so it must cost next to nothing.
    static MARKERS: LazyLock<[memchr::memmem::Finder<'static>; 3]> = LazyLock::new(|| {
        [b"claude".as_slice(), b"codex", b"gemini-cli"].map(memchr::memmem::Finder::new)
    });
    MARKERS.iter().any(|m| m.find(body).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_search_finds_the_agents_and_nothing_else() {
        assert!(may_hold_agent(b"..service.name\x12\x0bclaude-code.."));
        assert!(may_hold_agent(b"codex_exec"));
        assert!(may_hold_agent(b"gemini-cli"));
        assert!(may_hold_agent(b"x\x0bclaude_code.api_request"));
        assert!(!may_hold_agent(b"my-service"));
        assert!(!may_hold_agent(b""));
    }
}
