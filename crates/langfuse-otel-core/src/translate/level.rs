//! Level and status message (server: `parseObservationLevel`).
//!
//! Span events named `exception` play no part: only the explicit attributes and the span status
//! count.

use super::SpanContext;
use crate::conventions::reported_failure;
use crate::keys;
use crate::record::Level;
use crate::span::StatusCode;

/// LiveKit span names the server files at `DEBUG` (scope `livekit-agents` only).
const LIVEKIT_DEBUG_SPAN_NAMES: [&str; 14] = [
    "user_speaking",
    "eou_detection",
    "llm_request_run",
    "tts_node",
    "tts_request",
    "tts_request_run",
    "tts_stream_adapter",
    "agent_speaking",
    "drain_agent_activity",
    "on_exit",
    "on_enter",
    "llm_fallback_adapter",
    "tts_fallback_adapter",
    "start_agent_activity",
];

/// The level an explicit `langfuse.observation.level` value names (case-insensitive, trimmed).
fn parse_level(text: &str) -> Option<Level> {
    let t = text.trim();
    let is = |names: &[&str]| names.iter().any(|n| t.eq_ignore_ascii_case(n));
    if is(&["DEBUG", "TRACE", "VERBOSE"]) {
        Some(Level::Debug)
    } else if is(&["DEFAULT", "INFO", "LOG", "NOTICE", "OK", "SUCCESS"]) {
        Some(Level::Default)
    } else if is(&["WARNING", "WARN"]) {
        Some(Level::Warning)
    } else if is(&["ERROR", "FATAL", "CRITICAL"]) {
        Some(Level::Error)
    } else {
        None
    }
}

/// The observation level and status message of a span. In repair mode a failure reported
/// through `gen_ai.tool.call.outcome = error` or `error.type` (see [`crate::conventions`]) on a
/// span without status also gives `ERROR`, its status message from `error.type` /
/// `error.message` when there is no other.
pub fn level_and_status(cx: &SpanContext<'_, '_>, repair: bool) -> (Level, Option<String>) {
    let attrs = cx.attrs();
    let explicit = attrs
        .get(keys::LANGFUSE_OBSERVATION_LEVEL)
        .and_then(|v| parse_level(&v.to_js_string()));
    let reported = (repair && explicit.is_none() && cx.span.status_code == StatusCode::Unset)
        .then(|| reported_failure(attrs))
        .flatten();
    let level = explicit.unwrap_or_else(|| {
        if cx.span.status_code == StatusCode::Error || reported.is_some() {
            Level::Error
        } else if cx.scope_name() == keys::SCOPE_LIVEKIT_AGENTS
            && LIVEKIT_DEBUG_SPAN_NAMES.contains(&cx.span.name.as_ref())
        {
            Level::Debug
        } else {
            Level::Default
        }
    });
    let status = match attrs.get(keys::LANGFUSE_OBSERVATION_STATUS_MESSAGE) {
        Some(v) => Some(v.to_json_string().into_owned()),
        None => cx
            .span
            .status_message
            .as_deref()
            .map(str::to_owned)
            .or_else(|| reported.flatten()),
    };
    (level, status)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::span::{Attributes, Span};
    use crate::translate::context::in_default_context;
    use crate::value::AttrValue;

    fn run(
        attrs: &[(&'static str, &'static str)],
        code: StatusCode,
        msg: Option<&'static str>,
    ) -> (Level, Option<String>) {
        run_in(attrs, code, msg, false)
    }

    fn run_in(
        attrs: &[(&'static str, &'static str)],
        code: StatusCode,
        msg: Option<&'static str>,
        repair: bool,
    ) -> (Level, Option<String>) {
        let span = Span {
            status_code: code,
            status_message: msg.map(Cow::Borrowed),
            attributes: Attributes::from_pairs(
                attrs
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(*k), AttrValue::str(v))),
            ),
            ..Span::default()
        };
        in_default_context(&span, |cx| level_and_status(cx, repair))
    }

    #[test]
    fn level_aliases_are_case_insensitive() {
        assert_eq!(
            run(
                &[(keys::LANGFUSE_OBSERVATION_LEVEL, " warn ")],
                StatusCode::Unset,
                None
            )
            .0,
            Level::Warning
        );
        assert_eq!(
            run(
                &[(keys::LANGFUSE_OBSERVATION_LEVEL, "verbose")],
                StatusCode::Unset,
                None
            )
            .0,
            Level::Debug
        );
    }

    #[test]
    fn explicit_level_beats_status() {
        let (level, msg) = run(
            &[(keys::LANGFUSE_OBSERVATION_LEVEL, "INFO")],
            StatusCode::Error,
            Some("boom"),
        );
        assert_eq!((level, msg.as_deref()), (Level::Default, Some("boom")));
    }

    #[test]
    fn error_status_gives_error_level() {
        assert_eq!(run(&[], StatusCode::Error, None).0, Level::Error);
        assert_eq!(
            run(
                &[(keys::LANGFUSE_OBSERVATION_LEVEL, "bogus")],
                StatusCode::Unset,
                None
            )
            .0,
            Level::Default
        );
    }

    #[test]
    fn explicit_status_message_beats_status() {
        let (_, msg) = run(
            &[(keys::LANGFUSE_OBSERVATION_STATUS_MESSAGE, "mine")],
            StatusCode::Error,
            Some("boom"),
        );
        assert_eq!(msg.as_deref(), Some("mine"));
    }

    #[test]
    fn failed_tool_outcome_without_status_is_error_in_repair_mode_only() {
        let attrs = [(keys::GEN_AI_TOOL_CALL_OUTCOME, "error")];
        assert_eq!(
            run_in(&attrs, StatusCode::Unset, None, false).0,
            Level::Default
        );
        assert_eq!(
            run_in(&attrs, StatusCode::Unset, None, true),
            (Level::Error, None)
        );
    }

    #[test]
    fn error_type_on_a_tool_without_status_gives_error_with_its_message() {
        let attrs = [
            (keys::GEN_AI_OPERATION_NAME, "execute_tool"),
            (keys::ERROR_TYPE, "TimeoutError"),
        ];
        assert_eq!(
            run_in(&attrs, StatusCode::Unset, None, true),
            (Level::Error, Some("TimeoutError".to_owned()))
        );
        // An explicit level, or a status the instrumentation set, keeps its word.
        let explicit = [
            (keys::GEN_AI_OPERATION_NAME, "execute_tool"),
            (keys::ERROR_TYPE, "TimeoutError"),
            (keys::LANGFUSE_OBSERVATION_LEVEL, "WARNING"),
        ];
        assert_eq!(
            run_in(&explicit, StatusCode::Unset, None, true).0,
            Level::Warning
        );
        assert_eq!(run_in(&attrs, StatusCode::Ok, None, true).0, Level::Default);
    }
}
