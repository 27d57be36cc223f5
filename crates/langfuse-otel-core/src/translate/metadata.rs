//! Metadata of traces and observations (server: `extractMetadata` and the metadata assembly in
//! `createObservationEvent` / `createTraceEvent`).
//!
//! * User keys come from a JSON blob (`langfuse.observation.metadata` /
//!   `langfuse.trace.metadata`, else `langfuse.metadata`) and from dotted keys under those
//!   prefixes and `ai.telemetry.metadata`; dotted keys override blob keys.
//! * `attributes`: the span attributes that are not input/output, non-strings rendered as JSON
//!   text; omitted for spans of the Langfuse SDKs (scope `langfuse-sdk…`).
//! * `resourceAttributes` and `scope` describe where the span came from.

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use super::SpanContext;
use crate::keys;
use crate::record::Metadata;
use crate::span::{Attributes, Resource, Scope, key_slot};
use crate::value::AttrValue;

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
    let mut out = Map::new();
    let blob = attrs
        .truthy(prefix)
        .or_else(|| attrs.truthy(keys::LANGFUSE_METADATA));
    if let Some(Value::Object(obj)) =
        blob.and_then(|v| serde_json::from_str(&v.to_js_string()).ok())
    {
        out = obj;
    }
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
    pub resource_attributes: Arc<Map<String, Value>>,
    /// The scope as JSON (`{name, version?, attributes}`).
    pub scope: Arc<Value>,
    /// Whether the scope is a Langfuse SDK's (no `attributes` then).
    pub is_langfuse_sdk_scope: bool,
}

impl SharedMetadata {
    /// The resource part; the scope part is filled in by [`SharedMetadata::with_scope`].
    pub fn for_resource(resource: &Resource<'_>) -> Self {
        SharedMetadata {
            resource_user: user_metadata(&resource.attributes, MetadataDomain::Trace),
            resource_attributes: Arc::new(attributes_to_json(&resource.attributes)),
            scope: Arc::new(Value::Null),
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
            resource_attributes: Arc::clone(&self.resource_attributes),
            scope: Arc::new(Value::Object(obj)),
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
        resource_attributes: Some(Arc::clone(&shared.resource_attributes)),
        scope: Some(Arc::clone(&shared.scope)),
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
