//! The span attributes an observation's fields become (`langfuse.observation.*`), with the
//! client's mask applied to input, output and metadata.

use std::borrow::Cow;
use std::cell::RefCell;

use langfuse_otel_core::keys;
use opentelemetry::KeyValue;
use opentelemetry::trace::Status;

use crate::config::{MASK_FALLBACK, MaskFn};
use crate::json::{JsonStyle, to_python_json};
use crate::types::{Encoded, Level, ObservationType, ObservationUpdate, RareFields};

/// Applies the mask; a panicking mask yields the fallback string.
fn masked(value: &serde_json::Value, mask: Option<&MaskFn>) -> serde_json::Value {
    match mask {
        None => value.clone(),
        Some(mask) => {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mask(value.clone())))
                .unwrap_or_else(|_| serde_json::Value::String(MASK_FALLBACK.to_owned()))
        }
    }
}

/// Input/output text, masked when a mask is configured.
fn io_text(value: Encoded, mask: Option<&MaskFn>) -> String {
    match mask {
        None => value.text,
        Some(_) => match masked(&value.to_value(), mask) {
            serde_json::Value::String(s) => s,
            other => to_python_json(&other, JsonStyle::Python),
        },
    }
}

/// Runs `f` with an empty attribute vector reused on this thread (an update's attributes move
/// on into the span, so the vector itself need not be allocated each time).
pub(crate) fn with_attribute_buffer<R>(f: impl FnOnce(&mut Vec<KeyValue>) -> R) -> R {
    thread_local! {
        static BUFFER: RefCell<Vec<KeyValue>> = const { RefCell::new(Vec::new()) };
    }
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            f(&mut buf)
        }
        // Re-entered (from a mask function): a fresh vector.
        Err(_) => f(&mut Vec::new()),
    })
}

/// Appends the attributes an update writes to `out`; returns the span status it implies
/// (level ERROR).
pub(crate) fn push_update_attributes(
    out: &mut Vec<KeyValue>,
    u: ObservationUpdate,
    as_type: ObservationType,
    mask: Option<&MaskFn>,
) -> Option<Status> {
    let rare = u.rare.map_or_else(RareFields::default, |r| *r);
    if let Some(level) = rare.level {
        out.push(KeyValue::new(
            keys::LANGFUSE_OBSERVATION_LEVEL,
            level.as_str(),
        ));
    }
    if let Some(m) = &rare.status_message {
        out.push(KeyValue::new(
            keys::LANGFUSE_OBSERVATION_STATUS_MESSAGE,
            m.clone(),
        ));
    }
    if let Some(v) = rare.version {
        out.push(KeyValue::new(keys::LANGFUSE_VERSION, v));
    }
    if let Some(v) = u.input {
        out.push(KeyValue::new(
            keys::LANGFUSE_OBSERVATION_INPUT,
            io_text(v, mask),
        ));
    }
    if let Some(v) = u.output {
        out.push(KeyValue::new(
            keys::LANGFUSE_OBSERVATION_OUTPUT,
            io_text(v, mask),
        ));
    }
    if let Some(skills) = &rare.skills_available {
        out.push(KeyValue::new(
            keys::LANGFUSE_OBSERVATION_SKILLS_AVAILABLE,
            skills.clone(),
        ));
    }
    if let Some(md) = &rare.metadata {
        match masked(md, mask) {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if v.is_null() {
                        continue;
                    }
                    out.push(KeyValue::new(
                        format!("{}.{k}", keys::LANGFUSE_OBSERVATION_METADATA),
                        to_python_json(&v, JsonStyle::Compact),
                    ));
                }
            }
            serde_json::Value::String(s) if s == MASK_FALLBACK && md.is_object() => {
                for k in md.as_object().into_iter().flat_map(|m| m.keys()) {
                    out.push(KeyValue::new(
                        format!("{}.{k}", keys::LANGFUSE_OBSERVATION_METADATA),
                        MASK_FALLBACK,
                    ));
                }
            }
            other => out.push(KeyValue::new(
                keys::LANGFUSE_OBSERVATION_METADATA,
                to_python_json(&other, JsonStyle::Compact),
            )),
        }
    }
    let has_generation_fields = u.model.is_some()
        || u.model_parameters.is_some()
        || u.usage_details.is_some()
        || rare.cost_details.is_some()
        || rare.completion_start_time.is_some()
        || rare.prompt.is_some();
    if has_generation_fields && !crate::types::takes_generation_fields(as_type) {
        tracing::warn!(
            target: "langfuse",
            "generation fields on a {} observation are ignored (use `generation` or `embedding`)",
            as_type.as_str()
        );
    }
    if crate::types::takes_generation_fields(as_type) {
        if let Some(m) = u.model {
            out.push(KeyValue::new(keys::LANGFUSE_OBSERVATION_MODEL_NAME, m));
        }
        let json = |k: &'static str, v: Option<String>, out: &mut Vec<KeyValue>| {
            if let Some(v) = v {
                out.push(KeyValue::new(k, v));
            }
        };
        json(
            keys::LANGFUSE_OBSERVATION_MODEL_PARAMETERS,
            u.model_parameters,
            out,
        );
        json(
            keys::LANGFUSE_OBSERVATION_USAGE_DETAILS,
            u.usage_details,
            out,
        );
        json(
            keys::LANGFUSE_OBSERVATION_COST_DETAILS,
            rare.cost_details,
            out,
        );
        if let Some(t) = rare.completion_start_time {
            out.push(KeyValue::new(
                keys::LANGFUSE_OBSERVATION_COMPLETION_START_TIME,
                format!("\"{}\"", langfuse_otel_core::time::format_iso_micros(t)),
            ));
        }
        if let Some(p) = rare.prompt.as_ref().filter(|p| !p.is_fallback) {
            p.push_key_values(out);
        }
    }
    (rare.level == Some(Level::Error))
        .then(|| Status::error(Cow::Owned(rare.status_message.unwrap_or_default())))
}
