//! Which coding agent a resource and scope belong to, and its rules.

use super::model::{Context, Item};
use super::{claude_code, codex, gemini_cli};
use crate::log::LogRecord;
use crate::span::{Attributes, Scope, Span};

/// A coding agent whose telemetry is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Agent {
    /// Anthropic's Claude Code (`service.name` `claude-code`).
    ClaudeCode,
    /// OpenAI's Codex CLI (`service.name` `codex_exec`, `codex_cli_rs`, …).
    Codex,
    /// Google's Gemini CLI (`service.name` `gemini-cli`).
    GeminiCli,
}

impl Agent {
    /// Every recognised agent.
    pub const ALL: [Agent; 3] = [Agent::ClaudeCode, Agent::Codex, Agent::GeminiCli];

    /// The agent's name, used for trace names (`<name> turn`) and tags.
    pub fn name(self) -> &'static str {
        match self {
            Agent::ClaudeCode => "claude-code",
            Agent::Codex => "codex",
            Agent::GeminiCli => "gemini-cli",
        }
    }

    /// The agent that emitted telemetry of this resource and scope, if it is one of ours.
    pub fn detect(resource: &Attributes<'_>, scope: &Scope<'_>) -> Option<Agent> {
        let service = resource.get_str("service.name").unwrap_or_default();
        if service == "claude-code" || scope.name.starts_with("com.anthropic.claude_code") {
            Some(Agent::ClaudeCode)
        } else if service.starts_with("codex") || scope.name.starts_with("codex") {
            Some(Agent::Codex)
        } else if service == "gemini-cli" || scope.name == "gemini-cli" {
            Some(Agent::GeminiCli)
        } else {
            None
        }
    }

    pub(crate) fn log_item(self, cx: &Context<'_>, record: &LogRecord) -> Option<Item> {
        match self {
            Agent::ClaudeCode => claude_code::from_log(cx, record),
            Agent::Codex => codex::from_log(cx, record),
            Agent::GeminiCli => gemini_cli::from_log(cx, record),
        }
    }

    pub(crate) fn span_item(self, cx: &Context<'_>, span: &Span<'static>) -> Option<Item> {
        match self {
            Agent::ClaudeCode => claude_code::from_span(cx, span),
            Agent::Codex => codex::from_span(cx, span),
            Agent::GeminiCli => gemini_cli::from_span(cx, span),
        }
    }
}
