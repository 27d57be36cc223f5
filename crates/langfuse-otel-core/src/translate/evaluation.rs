//! Evaluation results as scores (repair mode only; the server ignores these events).
//!
//! A `gen_ai.evaluation.result` event on a span is the result of evaluating that span's
//! operation; it becomes a `score-create` for the span's observation:
//!
//! | event attribute | score field |
//! |---|---|
//! | `gen_ai.evaluation.name` (required) | `name` |
//! | `gen_ai.evaluation.score.value` (a number) | `value`, `dataType` `NUMERIC` |
//! | `gen_ai.evaluation.score.label` (without a value) | `value`, `dataType` `CATEGORICAL` |
//! | `gen_ai.evaluation.score.label` (with a value) | `metadata.label` |
//! | `gen_ai.evaluation.explanation` | `comment` |
//! | `gen_ai.response.id` | `metadata["gen_ai.response.id"]` |
//!
//! An event without a name, or with neither value nor label (a failed evaluation, which
//! reports `error.type` instead), gives no score. The score id is derived from the span id and
//! the event's position, so translating the same span twice gives the same id (the scores API
//! updates a score with a known id instead of adding a second one).

use serde_json::{Map, Value};

use super::SpanContext;
use crate::keys;
use crate::record::{EventBody, IngestionEvent, ScoreBody, ScoreDataType};
use crate::span::SpanEvent;
use crate::value::AttrValue;

/// The `score-create` events of a span's `gen_ai.evaluation.result` events, in event order.
pub(crate) fn evaluation_scores(
    cx: &SpanContext<'_, '_>,
    environment: &str,
) -> Vec<IngestionEvent> {
    cx.span
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.name == keys::EVENT_GEN_AI_EVALUATION_RESULT)
        .filter_map(|(index, event)| score(cx, environment, index, event))
        .map(|body| IngestionEvent::new(EventBody::ScoreCreate(body)))
        .collect()
}

fn text(event: &SpanEvent<'_>, key: &str) -> Option<String> {
    event
        .attribute(key)
        .filter(|v| v.is_truthy())
        .map(|v| v.to_json_string().into_owned())
}

fn score(
    cx: &SpanContext<'_, '_>,
    environment: &str,
    index: usize,
    event: &SpanEvent<'_>,
) -> Option<ScoreBody> {
    let name = text(event, keys::GEN_AI_EVALUATION_NAME)?;
    let number = event
        .attribute(keys::GEN_AI_EVALUATION_SCORE_VALUE)
        .and_then(|v| match v {
            AttrValue::Number(n) => Some(*n),
            AttrValue::Str(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        })
        .filter(|n| n.is_finite());
    let label = text(event, keys::GEN_AI_EVALUATION_SCORE_LABEL);
    let mut metadata = Map::new();
    let (value, data_type) = match (number, label) {
        (Some(n), label) => {
            if let Some(label) = label {
                metadata.insert("label".into(), Value::String(label));
            }
            (crate::value::js_number(n), ScoreDataType::Numeric)
        }
        (None, Some(label)) => (Value::String(label), ScoreDataType::Categorical),
        (None, None) => return None,
    };
    if let Some(response_id) = text(event, "gen_ai.response.id") {
        metadata.insert("gen_ai.response.id".into(), Value::String(response_id));
    }
    Some(ScoreBody {
        id: Some(format!("{}-evaluation-{index}", cx.span.span_id)),
        name,
        value,
        trace_id: Some(cx.span.trace_id.to_string()),
        observation_id: Some(cx.span.span_id.to_string()),
        environment: Some(environment.to_owned()),
        comment: text(event, keys::GEN_AI_EVALUATION_EXPLANATION),
        metadata: (!metadata.is_empty()).then_some(Value::Object(metadata)),
        data_type: Some(data_type),
        ..ScoreBody::default()
    })
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::json;

    use super::*;
    use crate::span::Span;
    use crate::translate::context::in_default_context;

    fn scores(events: Vec<Vec<(&'static str, AttrValue<'static>)>>) -> Vec<Value> {
        let span = Span {
            trace_id: Cow::Borrowed("4bf92f3577b34da6a3ce929d0e0e4736"),
            span_id: Cow::Borrowed("00f067aa0ba902b7"),
            events: events
                .into_iter()
                .map(|attrs| SpanEvent {
                    name: Cow::Borrowed(keys::EVENT_GEN_AI_EVALUATION_RESULT),
                    time_unix_ms: None,
                    attributes: attrs
                        .into_iter()
                        .map(|(k, v)| (Cow::Borrowed(k), v))
                        .collect(),
                })
                .collect(),
            ..Span::default()
        };
        in_default_context(&span, |cx| {
            evaluation_scores(cx, "production")
                .iter()
                .map(|e| serde_json::to_value(e).unwrap())
                .collect()
        })
    }

    #[test]
    fn a_numeric_evaluation_result_is_a_numeric_score_on_the_observation() {
        let got = scores(vec![vec![
            (keys::GEN_AI_EVALUATION_NAME, AttrValue::str("relevance")),
            (keys::GEN_AI_EVALUATION_SCORE_VALUE, AttrValue::Number(0.75)),
            (
                keys::GEN_AI_EVALUATION_SCORE_LABEL,
                AttrValue::str("relevant"),
            ),
            (
                keys::GEN_AI_EVALUATION_EXPLANATION,
                AttrValue::str("on topic"),
            ),
        ]]);
        assert_eq!(
            got,
            [json!({"type": "score-create", "body": {
                "id": "00f067aa0ba902b7-evaluation-0", "name": "relevance", "value": 0.75,
                "traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "observationId": "00f067aa0ba902b7",
                "environment": "production", "comment": "on topic",
                "metadata": {"label": "relevant"}, "dataType": "NUMERIC"}})]
        );
    }

    #[test]
    fn a_label_only_evaluation_result_is_a_categorical_score() {
        let got = scores(vec![vec![
            (keys::GEN_AI_EVALUATION_NAME, AttrValue::str("toxicity")),
            (keys::GEN_AI_EVALUATION_SCORE_LABEL, AttrValue::str("safe")),
        ]]);
        assert_eq!(got[0]["body"]["value"], "safe");
        assert_eq!(got[0]["body"]["dataType"], "CATEGORICAL");
    }

    #[test]
    fn evaluation_results_without_name_or_value_give_no_score() {
        let got = scores(vec![
            vec![(keys::GEN_AI_EVALUATION_SCORE_VALUE, AttrValue::Number(1.0))],
            vec![
                (keys::GEN_AI_EVALUATION_NAME, AttrValue::str("relevance")),
                ("error.type", AttrValue::str("timeout")),
            ],
            vec![
                (keys::GEN_AI_EVALUATION_NAME, AttrValue::str("second")),
                (keys::GEN_AI_EVALUATION_SCORE_VALUE, AttrValue::str("1")),
            ],
        ]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["body"]["id"], "00f067aa0ba902b7-evaluation-2");
        assert_eq!(got[0]["body"]["value"], 1);
    }
}
