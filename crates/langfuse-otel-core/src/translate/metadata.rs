//! Metadata of traces and observations (server: `extractMetadata` and the metadata assembly in
//! `createObservationEvent` / `createTraceEvent`).
//!
//! * User keys come from a JSON blob (`langfuse.observation.metadata` /
//!   `langfuse.trace.metadata`, else `langfuse.metadata`) and from dotted keys under those
//!   prefixes and `ai.telemetry.metadata`; dotted keys override blob keys.
//! * `attributes`: the span attributes that are not input/output, non-strings rendered as JSON
//!   text; omitted for spans of the Langfuse SDKs (scope `langfuse-sdk…`).
//! * `resourceAttributes` and `scope` describe where the span came from.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::SpanContext;
use crate::keys;
use crate::record::{Metadata, SharedJson};
use crate::span::{Attributes, Resource, Scope, key_slot};
use crate::value::{AttrValue, json_parse};

/// Which record the user metadata keys are read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataDomain {
    /// Observation metadata (`langfuse.observation.metadata`).
    Observation,
    /// Trace metadata (`langfuse.trace.metadata`).
    Trace,
}

impl MetadataDomain {
    fn prefix(self) -> &'static str {
        match self {
            MetadataDomain::Observation => keys::LANGFUSE_OBSERVATION_METADATA,
            MetadataDomain::Trace => keys::LANGFUSE_TRACE_METADATA,
        }
    }
}

/// AI SDK metadata keys that are trace fields, not metadata.
const AI_TELEMETRY_RESERVED: [&str; 4] = ["userId", "sessionId", "tags", "langfusePrompt"];

/// User metadata keys from a set of attributes.
pub fn user_metadata(attrs: &Attributes<'_>, domain: MetadataDomain) -> Map<String, Value> {
    let prefix = domain.prefix();
    // `attrs[prefix] || attrs["langfuse.metadata"]`: a falsy primary value falls back.
    let blob = attrs
        .truthy(prefix)
        .or_else(|| attrs.get(keys::LANGFUSE_METADATA));
    let mut out = blob.map(blob_entries).unwrap_or_default();
    for p in [prefix, keys::LANGFUSE_METADATA, keys::AI_TELEMETRY_METADATA] {
        for (key, value) in attrs.with_prefix(p) {
            let Some(rest) = key[p.len()..].strip_prefix('.') else {
                continue;
            };
            if p == keys::AI_TELEMETRY_METADATA && AI_TELEMETRY_RESERVED.contains(&rest) {
                continue;
            }
            out.insert(rest.to_owned(), value.to_json());
        }
    }
    out
}

/// The entries of a metadata blob, as the server spreads it into the metadata (server:
/// `parseMetadataAttribute`, then `{...blob}`):
///
/// | blob | entries |
/// |---|---|
/// | JSON text of an object | its keys |
/// | JSON text of an array, or an array attribute | one key per element: `"0"`, `"1"`, … |
/// | JSON text of a number, string, boolean or `null`; text that is not JSON; a number or boolean attribute | none (the server drops it) |
fn blob_entries(value: &AttrValue<'_>) -> Map<String, Value> {
    let parsed = match value {
        AttrValue::Str(s) => json_parse(s),
        AttrValue::Array(items) => {
            Some(Value::Array(items.iter().map(AttrValue::to_json).collect()))
        }
        AttrValue::Number(_) | AttrValue::Bool(_) => None,
    };
    match parsed {
        Some(Value::Object(obj)) => obj,
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Map::new(),
    }
}

/// Whether a span attribute is an input/output key and so left out of `metadata.attributes`.
pub fn is_io_attribute(key: &str) -> bool {
    let index = io_key_index();
    let slot = key_slot(key);
    (index.filter[slot / 64] & (1 << (slot % 64)) != 0 && index.sorted.binary_search(&key).is_ok())
        || keys::IO_ATTRIBUTE_PREFIXES
            .iter()
            .any(|p| key.starts_with(p))
}

/// The input/output keys, sorted, with a presence filter: checked for every span attribute.
struct IoKeyIndex {
    sorted: Vec<&'static str>,
    filter: [u64; 4],
}

fn io_key_index() -> &'static IoKeyIndex {
    static INDEX: OnceLock<IoKeyIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut sorted = keys::IO_ATTRIBUTE_KEYS.to_vec();
        sorted.sort_unstable();
        let mut filter = [0u64; 4];
        for key in &sorted {
            let slot = key_slot(key);
            filter[slot / 64] |= 1 << (slot % 64);
        }
        IoKeyIndex { sorted, filter }
    })
}

/// `metadata.attributes` of a span: every attribute but input/output keys, values as text.
pub fn filtered_attributes(attrs: &Attributes<'_>) -> Map<String, Value> {
    attrs
        .iter()
        .filter(|(k, _)| !is_io_attribute(k))
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_json_string().into_owned())))
        .collect()
}

/// Metadata parts shared by all spans of one resource and scope.
#[derive(Debug, Clone)]
pub struct SharedMetadata {
    /// User metadata keys carried by the resource.
    pub resource_user: Map<String, Value>,
    /// The resource's attributes as JSON.
    pub resource_attributes: SharedJson,
    /// The scope as JSON (`{name, version?, attributes}`).
    pub scope: SharedJson,
    /// Whether the scope is a Langfuse SDK's (no `attributes` then).
    pub is_langfuse_sdk_scope: bool,
}

impl SharedMetadata {
    /// The resource part; the scope part is filled in by [`SharedMetadata::with_scope`].
    pub fn for_resource(resource: &Resource<'_>) -> Self {
        SharedMetadata {
            resource_user: user_metadata(&resource.attributes, MetadataDomain::Trace),
            resource_attributes: SharedJson::new(Value::Object(attributes_to_json(
                &resource.attributes,
            ))),
            scope: SharedJson::new(Value::Null),
            is_langfuse_sdk_scope: false,
        }
    }

    /// The same resource part with `scope`'s part.
    pub fn with_scope(&self, scope: &Scope<'_>) -> Self {
        let mut obj = Map::new();
        obj.insert("name".into(), Value::String(scope.name.to_string()));
        if let Some(version) = &scope.version {
            obj.insert("version".into(), Value::String(version.to_string()));
        }
        obj.insert(
            "attributes".into(),
            Value::Object(attributes_to_json(&scope.attributes)),
        );
        SharedMetadata {
            resource_user: self.resource_user.clone(),
            resource_attributes: self.resource_attributes.clone(),
            scope: SharedJson::new(Value::Object(obj)),
            is_langfuse_sdk_scope: scope.name.starts_with(keys::SCOPE_LANGFUSE_SDK),
        }
    }
}

/// Attributes as a JSON object of converted (not stringified) values.
pub fn attributes_to_json(attrs: &Attributes<'_>) -> Map<String, Value> {
    attrs
        .iter()
        .map(|(k, v)| (k.to_owned(), AttrValue::to_json(v)))
        .collect()
}

fn assemble(
    cx: &SpanContext<'_, '_>,
    shared: &SharedMetadata,
    user_parts: &[&Map<String, Value>],
    with_attributes: bool,
) -> Metadata {
    let mut user = shared.resource_user.clone();
    for part in user_parts {
        for (k, v) in *part {
            user.insert(k.clone(), v.clone());
        }
    }
    Metadata {
        user,
        attributes: (with_attributes && !shared.is_langfuse_sdk_scope)
            .then(|| filtered_attributes(cx.attrs())),
        resource_attributes: Some(shared.resource_attributes.clone()),
        scope: Some(shared.scope.clone()),
    }
}

/// Observation metadata: resource keys, observation keys, attributes, resource, scope.
pub fn observation_metadata(cx: &SpanContext<'_, '_>, shared: &SharedMetadata) -> Metadata {
    let observation = user_metadata(cx.attrs(), MetadataDomain::Observation);
    assemble(cx, shared, &[&observation], true)
}

/// Metadata of the trace of a root span: resource keys, trace keys, observation keys,
/// attributes, resource, scope.
pub fn root_trace_metadata(cx: &SpanContext<'_, '_>, shared: &SharedMetadata) -> Metadata {
    let trace = user_metadata(cx.attrs(), MetadataDomain::Trace);
    let observation = user_metadata(cx.attrs(), MetadataDomain::Observation);
    assemble(cx, shared, &[&trace, &observation], true)
}

/// Metadata of a trace update from a non-root span: resource keys, trace keys, resource, scope.
pub fn trace_update_metadata(cx: &SpanContext<'_, '_>, shared: &SharedMetadata) -> Metadata {
    let trace = user_metadata(cx.attrs(), MetadataDomain::Trace);
    assemble(cx, shared, &[&trace], false)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::json;

    use super::*;

    fn observation_keys(pairs: Vec<(&'static str, AttrValue<'static>)>) -> Value {
        let attrs = Attributes::from_pairs(pairs.into_iter().map(|(k, v)| (Cow::Borrowed(k), v)));
        Value::Object(user_metadata(&attrs, MetadataDomain::Observation))
    }

    fn blob(v: AttrValue<'static>) -> Value {
        observation_keys(vec![(keys::LANGFUSE_OBSERVATION_METADATA, v)])
    }

    #[test]
    fn an_object_blob_gives_its_keys_and_dotted_keys_override_them() {
        let got = observation_keys(vec![
            (
                keys::LANGFUSE_OBSERVATION_METADATA,
                AttrValue::str(r#"{"a":1,"b":{"c":true}}"#),
            ),
            ("langfuse.observation.metadata.a", AttrValue::str("dotted")),
        ]);
        assert_eq!(got, json!({"a": "dotted", "b": {"c": true}}));
    }

    #[test]
    fn an_array_blob_gives_one_key_per_element() {
        assert_eq!(
            blob(AttrValue::str(r#"["x",{"y":2}]"#)),
            json!({"0": "x", "1": {"y": 2}})
        );
        assert_eq!(
            blob(AttrValue::Array(vec![
                AttrValue::str(r#"{"a":1}"#),
                AttrValue::Number(2.0)
            ])),
            json!({"0": r#"{"a":1}"#, "1": 2})
        );
        assert_eq!(blob(AttrValue::str("[]")), json!({}));
    }

    #[test]
    fn number_string_boolean_and_null_blobs_are_dropped() {
        for text in ["42", r#""text""#, "true", "null"] {
            assert_eq!(blob(AttrValue::str(text)), json!({}), "{text}");
        }
        assert_eq!(blob(AttrValue::Number(42.0)), json!({}));
        assert_eq!(blob(AttrValue::Bool(true)), json!({}));
    }

    #[test]
    fn an_invalid_json_blob_is_dropped() {
        assert_eq!(blob(AttrValue::str("{invalid json")), json!({}));
        assert_eq!(blob(AttrValue::str("a,b")), json!({}));
    }

    #[test]
    fn a_falsy_blob_falls_back_to_langfuse_metadata() {
        for falsy in [
            AttrValue::str(""),
            AttrValue::Number(0.0),
            AttrValue::Bool(false),
        ] {
            let got = observation_keys(vec![
                (keys::LANGFUSE_OBSERVATION_METADATA, falsy),
                (keys::LANGFUSE_METADATA, AttrValue::str(r#"["fallback"]"#)),
            ]);
            assert_eq!(got, json!({"0": "fallback"}));
        }
        // A truthy primary blob wins even when it yields nothing.
        let got = observation_keys(vec![
            (keys::LANGFUSE_OBSERVATION_METADATA, AttrValue::str("42")),
            (keys::LANGFUSE_METADATA, AttrValue::str(r#"{"a":1}"#)),
        ]);
        assert_eq!(got, json!({}));
    }

    #[test]
    fn trace_metadata_blobs_follow_the_same_rules() {
        let attrs = Attributes::from_pairs([(
            Cow::Borrowed(keys::LANGFUSE_TRACE_METADATA),
            AttrValue::str(r#"[1,2]"#),
        )]);
        assert_eq!(
            Value::Object(user_metadata(&attrs, MetadataDomain::Trace)),
            json!({"0": 1, "1": 2})
        );
    }
}
