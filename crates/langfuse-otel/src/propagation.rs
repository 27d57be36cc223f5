//! Trace attributes that reach every span started inside a scope: [`propagate_attributes`].
//!
//! The attributes live in the OpenTelemetry [`Context`] (and, with
//! [`PropagatedAttributes::as_baggage`], in W3C baggage under the official SDKs' `langfuse_*`
//! keys). The [`LangfuseSpanProcessor`](crate::LangfuseSpanProcessor) copies them onto each span
//! in `on_start`, whichever crate started it — our observations, `tracing` spans bridged by
//! `tracing-opentelemetry`, or any other OpenTelemetry instrumentation.

use std::future::Future;
use std::sync::Arc;

use langfuse_otel_core::keys;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::{FutureExt as _, TraceContextExt, WithContext};
use opentelemetry::{Array, Context, Key, KeyValue, StringValue, Value};
use serde::Serialize;

use crate::json::{JsonStyle, to_python_json};
use crate::types::{PromptRef, Skill, to_json_value};

/// Longest accepted value (characters), as in the Python SDK.
pub const MAX_VALUE_LENGTH: usize = 200;
/// Longest accepted environment name.
pub const MAX_ENVIRONMENT_LENGTH: usize = 40;

/// Baggage key prefix shared with the official SDKs.
pub(crate) const BAGGAGE_PREFIX: &str = "langfuse_";

/// Trace attributes to propagate, validated like the Python SDK: values longer than 200
/// characters (metadata: after JSON encoding) and invalid environments are dropped with a
/// warning.
///
/// ```
/// use langfuse_otel::PropagatedAttributes;
/// let attrs = PropagatedAttributes::new()
///     .user_id("user_456")
///     .session_id("session_abc")
///     .tags(["rag", "support"])
///     .metadata(&serde_json::json!({"pipeline_version": "2.1"}))
///     .version("1.2.0");
/// assert_eq!(attrs.get_user_id(), Some("user_456"));
/// // Invalid values are dropped, never a panic.
/// let bad = PropagatedAttributes::new().user_id("x".repeat(201)).environment("Langfuse-Prod");
/// assert_eq!(bad.get_user_id(), None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct PropagatedAttributes {
    user_id: Option<Arc<str>>,
    session_id: Option<Arc<str>>,
    version: Option<Arc<str>>,
    trace_name: Option<Arc<str>>,
    environment: Option<Arc<str>>,
    tags: Vec<Arc<str>>,
    metadata: Vec<(Arc<str>, Arc<str>)>,
    prompt: Option<PromptRef>,
    /// Encoded `langfuse.observation.skills_available` (never sent as baggage).
    skills_available: Option<Arc<str>>,
    as_baggage: bool,
}

fn valid_string(field: &str, value: String) -> Option<Arc<str>> {
    if value.chars().count() > MAX_VALUE_LENGTH {
        tracing::warn!(
            target: "langfuse",
            "propagated {field} dropped: longer than {MAX_VALUE_LENGTH} characters"
        );
        return None;
    }
    Some(value.into())
}

fn valid_environment(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_ENVIRONMENT_LENGTH
        && !value.starts_with("langfuse")
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl PropagatedAttributes {
    /// No attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// User id (`user.id`).
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = valid_string("user_id", user_id.into());
        self
    }

    /// Session id (`session.id`).
    pub fn session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = valid_string("session_id", session_id.into());
        self
    }

    /// Version (`langfuse.version`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = valid_string("version", version.into());
        self
    }

    /// Trace name (`langfuse.trace.name`).
    pub fn trace_name(mut self, name: impl Into<String>) -> Self {
        self.trace_name = valid_string("trace_name", name.into());
        self
    }

    /// Environment (`langfuse.environment`): `^(?!langfuse)[a-z0-9_-]+$`, at most 40 characters.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        let env = environment.into();
        if valid_environment(&env) {
            self.environment = Some(env.into());
        } else {
            tracing::warn!(target: "langfuse", "propagated environment {env:?} dropped: invalid");
            self.environment = None;
        }
        self
    }

    /// Tags (`langfuse.trace.tags`, a string array); each at most 200 characters.
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = tags
            .into_iter()
            .filter_map(|t| valid_string("tag", t.into()))
            .collect();
        self
    }

    /// Metadata: an object whose values are JSON-encoded one by one
    /// (`langfuse.trace.metadata.<key>`); `null` values are skipped; an encoded value longer
    /// than 200 characters is dropped.
    pub fn metadata<T: Serialize + ?Sized>(mut self, metadata: &T) -> Self {
        self.metadata.clear();
        match to_json_value(metadata) {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if v.is_null() {
                        continue;
                    }
                    let encoded = to_python_json(&v, JsonStyle::Compact);
                    if let Some(encoded) = valid_string("metadata value", encoded) {
                        self.metadata.push((k.into(), encoded));
                    }
                }
            }
            serde_json::Value::Null => {}
            _ => tracing::warn!(target: "langfuse", "propagated metadata dropped: not an object"),
        }
        self
    }

    /// Links every span to a prompt (ignored when the span links its own prompt).
    pub fn prompt(mut self, prompt: PromptRef) -> Self {
        self.prompt = (!prompt.is_fallback).then_some(prompt);
        self
    }

    /// The skills the agent could use, written as `langfuse.observation.skills_available` on
    /// every span started inside the scope (as Python SDK 5.2's
    /// `propagate_attributes(skills_available=…)`), so model calls and skill-loading tool calls
    /// of any instrumentation report them. Never written as baggage. An empty list clears it.
    ///
    /// ```
    /// use langfuse_otel::{PropagatedAttributes, Skill};
    /// let attrs = PropagatedAttributes::new().skills_available([Skill::new("refund-policy").version(3)]);
    /// # drop(attrs);
    /// ```
    pub fn skills_available(mut self, skills: impl IntoIterator<Item = Skill>) -> Self {
        let skills: Vec<Skill> = skills.into_iter().collect();
        self.skills_available = (!skills.is_empty()).then(|| Skill::encode_list(&skills).into());
        self
    }

    /// Also writes W3C baggage (`langfuse_user_id`, `langfuse_metadata_<key>`, …) so the
    /// attributes cross service boundaries when a baggage propagator is installed.
    pub fn as_baggage(mut self, as_baggage: bool) -> Self {
        self.as_baggage = as_baggage;
        self
    }

    /// The user id, if set and valid.
    pub fn get_user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The session id, if set and valid.
    pub fn get_session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// Merges `inner` (a nested call) over `self`: scalars override, metadata is a union (inner
    /// wins), tags an ordered union.
    fn merged(&self, inner: &PropagatedAttributes) -> PropagatedAttributes {
        let mut out = self.clone();
        macro_rules! scalar {
            ($f:ident) => {
                if inner.$f.is_some() {
                    out.$f = inner.$f.clone();
                }
            };
        }
        scalar!(user_id);
        scalar!(session_id);
        scalar!(version);
        scalar!(trace_name);
        scalar!(environment);
        scalar!(prompt);
        scalar!(skills_available);
        for tag in &inner.tags {
            if !out.tags.contains(tag) {
                out.tags.push(tag.clone());
            }
        }
        for (k, v) in &inner.metadata {
            match out.metadata.iter_mut().find(|(ok, _)| ok == k) {
                Some(slot) => slot.1 = v.clone(),
                None => out.metadata.push((k.clone(), v.clone())),
            }
        }
        out.as_baggage = self.as_baggage || inner.as_baggage;
        out
    }

    /// The span attributes these trace attributes become.
    fn to_key_values(&self) -> Vec<KeyValue> {
        let s = |v: &Arc<str>| Value::String(StringValue::from(v.clone()));
        let mut out = Vec::new();
        if let Some(v) = &self.user_id {
            out.push(KeyValue::new(keys::USER_ID, s(v)));
        }
        if let Some(v) = &self.session_id {
            out.push(KeyValue::new(keys::SESSION_ID, s(v)));
        }
        for (k, v) in &self.metadata {
            out.push(KeyValue::new(
                Key::from(format!("{}.{k}", keys::LANGFUSE_TRACE_METADATA)),
                s(v),
            ));
        }
        if let Some(v) = &self.version {
            out.push(KeyValue::new(keys::LANGFUSE_VERSION, s(v)));
        }
        if !self.tags.is_empty() {
            let tags: Vec<StringValue> = self
                .tags
                .iter()
                .map(|t| StringValue::from(t.clone()))
                .collect();
            out.push(KeyValue::new(
                keys::LANGFUSE_TRACE_TAGS,
                Value::Array(Array::String(tags)),
            ));
        }
        if let Some(v) = &self.trace_name {
            out.push(KeyValue::new(keys::LANGFUSE_TRACE_NAME, s(v)));
        }
        if let Some(v) = &self.environment {
            out.push(KeyValue::new(keys::LANGFUSE_ENVIRONMENT, s(v)));
        }
        if let Some(p) = &self.prompt {
            p.push_key_values(&mut out);
        }
        if let Some(v) = &self.skills_available {
            out.push(KeyValue::new(
                keys::LANGFUSE_OBSERVATION_SKILLS_AVAILABLE,
                s(v),
            ));
        }
        out
    }

    fn baggage_entries(&self) -> Vec<KeyValue> {
        let mut out = Vec::new();
        let mut put = |k: &str, v: &str| {
            out.push(KeyValue::new(format!("{BAGGAGE_PREFIX}{k}"), v.to_owned()))
        };
        if let Some(v) = &self.user_id {
            put("user_id", v);
        }
        if let Some(v) = &self.session_id {
            put("session_id", v);
        }
        if let Some(v) = &self.version {
            put("version", v);
        }
        if let Some(v) = &self.trace_name {
            put("trace_name", v);
        }
        if let Some(v) = &self.environment {
            put("environment", v);
        }
        if !self.tags.is_empty() {
            let joined: Vec<&str> = self.tags.iter().map(|t| &**t).collect();
            put("tags", &joined.join(","));
        }
        if let Some(p) = &self.prompt {
            put("prompt_name", &p.name);
            put("prompt_version", &p.version.to_string());
        }
        for (k, v) in &self.metadata {
            put(&format!("metadata_{k}"), v);
        }
        out
    }
}

/// The propagated state stored in a [`Context`].
#[derive(Debug, Clone)]
pub(crate) struct Propagated {
    pub(crate) attrs: Arc<PropagatedAttributes>,
    pub(crate) key_values: Arc<[KeyValue]>,
}

/// `cx` plus `attrs`, merged with whatever `cx` already propagates.
pub fn context_with_attributes(cx: &Context, attrs: &PropagatedAttributes) -> Context {
    let merged = match cx.get::<Propagated>() {
        Some(outer) => outer.attrs.merged(attrs),
        None => attrs.clone(),
    };
    let key_values: Arc<[KeyValue]> = merged.to_key_values().into();
    let mut out = cx.with_value(Propagated {
        attrs: Arc::new(merged.clone()),
        key_values,
    });
    if merged.as_baggage {
        out = out.with_baggage(merged.baggage_entries());
    }
    out
}

/// Writes `attrs` on the span that is current in `cx` (the Python SDK does this on entry).
fn write_on_current_span(cx: &Context, attrs: &PropagatedAttributes) {
    let span = cx.span();
    if span.is_recording() {
        span.set_attributes(attrs.to_key_values());
    }
}

/// Runs `future` with `attrs` propagated to every span started inside it, across `.await`
/// points; the span current at the call also gets them. Nested calls merge.
///
/// ```
/// use langfuse_otel::{PropagatedAttributes, propagate_attributes};
/// # async fn demo() {
/// let answer = propagate_attributes(
///     PropagatedAttributes::new().user_id("user_1").session_id("s-1"),
///     async { 42 },
/// )
/// .await;
/// assert_eq!(answer, 42);
/// # }
/// ```
pub fn propagate_attributes<F: Future>(attrs: PropagatedAttributes, future: F) -> WithContext<F> {
    langfuse_otel_exporter::filter::propagation_reach::note_used();
    let cx = Context::current();
    write_on_current_span(&cx, &attrs);
    future.with_context(context_with_attributes(&cx, &attrs))
}

/// The synchronous form of [`propagate_attributes`].
///
/// ```
/// use langfuse_otel::{PropagatedAttributes, propagate_attributes_sync};
/// let n = propagate_attributes_sync(PropagatedAttributes::new().tags(["batch"]), || 7);
/// assert_eq!(n, 7);
/// ```
pub fn propagate_attributes_sync<R>(attrs: PropagatedAttributes, body: impl FnOnce() -> R) -> R {
    langfuse_otel_exporter::filter::propagation_reach::note_used();
    let cx = Context::current();
    write_on_current_span(&cx, &attrs);
    let _guard = context_with_attributes(&cx, &attrs).attach();
    body()
}

/// Span attributes from incoming `langfuse_*` baggage entries (another service's propagation).
pub(crate) fn baggage_key_values(cx: &Context) -> Vec<KeyValue> {
    let mut out = Vec::new();
    for (key, (value, _)) in cx.baggage() {
        let Some(name) = key.as_str().strip_prefix(BAGGAGE_PREFIX) else {
            continue;
        };
        let text = value.as_str().to_owned();
        let kv = match name {
            "user_id" => KeyValue::new(keys::USER_ID, text),
            "session_id" => KeyValue::new(keys::SESSION_ID, text),
            "version" => KeyValue::new(keys::LANGFUSE_VERSION, text),
            "trace_name" => KeyValue::new(keys::LANGFUSE_TRACE_NAME, text),
            "environment" => KeyValue::new(keys::LANGFUSE_ENVIRONMENT, text),
            "prompt_name" => KeyValue::new(keys::LANGFUSE_OBSERVATION_PROMPT_NAME, text),
            "prompt_version" => match text.parse::<i64>() {
                Ok(v) => KeyValue::new(keys::LANGFUSE_OBSERVATION_PROMPT_VERSION, v),
                Err(_) => continue,
            },
            "tags" => {
                let tags: Vec<StringValue> = text
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(|t| StringValue::from(t.to_owned()))
                    .collect();
                KeyValue::new(keys::LANGFUSE_TRACE_TAGS, Value::Array(Array::String(tags)))
            }
            other => match other.strip_prefix("metadata_") {
                Some(k) => KeyValue::new(format!("{}.{k}", keys::LANGFUSE_TRACE_METADATA), text),
                None => continue,
            },
        };
        out.push(kv);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kv_map(attrs: &PropagatedAttributes) -> Vec<(String, String)> {
        attrs
            .to_key_values()
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect()
    }

    #[test]
    fn metadata_values_are_json_encoded_like_python_v5() {
        let a = PropagatedAttributes::new()
            .metadata(&json!({"s": "x", "n": 1, "b": true, "o": {"d": 2}, "z": null}));
        assert_eq!(
            kv_map(&a),
            vec![
                ("langfuse.trace.metadata.s".into(), "\"x\"".into()),
                ("langfuse.trace.metadata.n".into(), "1".into()),
                ("langfuse.trace.metadata.b".into(), "true".into()),
                ("langfuse.trace.metadata.o".into(), "{\"d\":2}".into()),
            ]
        );
    }

    #[test]
    fn values_longer_than_200_characters_are_dropped() {
        let ok = "é".repeat(200);
        let a = PropagatedAttributes::new()
            .user_id(ok.clone())
            .session_id("s".repeat(201));
        assert_eq!(a.get_user_id(), Some(ok.as_str()));
        assert_eq!(a.get_session_id(), None);
        let m = PropagatedAttributes::new().metadata(&json!({"k": "v".repeat(199)}));
        assert!(
            m.metadata.is_empty(),
            "encoded value has quotes: 201 characters"
        );
    }

    #[test]
    fn environment_must_match_the_python_pattern() {
        for (env, ok) in [
            ("prod", true),
            ("eu-west_1", true),
            ("Prod", false),
            ("langfuse-x", false),
            ("", false),
        ] {
            assert_eq!(
                PropagatedAttributes::new()
                    .environment(env)
                    .environment
                    .is_some(),
                ok,
                "{env}"
            );
        }
        assert!(
            PropagatedAttributes::new()
                .environment("a".repeat(41))
                .environment
                .is_none()
        );
    }

    #[test]
    fn nested_calls_merge_metadata_and_tags_and_override_scalars() {
        let outer = PropagatedAttributes::new()
            .user_id("u1")
            .tags(["a", "b"])
            .metadata(&json!({"x": 1, "y": 2}));
        let inner = PropagatedAttributes::new()
            .user_id("u2")
            .tags(["b", "c"])
            .metadata(&json!({"y": 3}));
        let m = outer.merged(&inner);
        assert_eq!(m.get_user_id(), Some("u2"));
        assert_eq!(
            m.tags.iter().map(|t| &**t).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(
            m.metadata,
            vec![("x".into(), "1".into()), ("y".into(), "3".into())]
        );
    }

    #[test]
    fn skills_available_are_a_compact_json_list_and_never_baggage() {
        let a = PropagatedAttributes::new()
            .skills_available([Skill::new("refund-policy").version(2), Skill::new("tone")])
            .as_baggage(true);
        assert!(kv_map(&a).contains(&(
            "langfuse.observation.skills_available".into(),
            r#"[{"name":"refund-policy","version":2},{"name":"tone"}]"#.into()
        )));
        assert!(
            a.baggage_entries()
                .iter()
                .all(|kv| !kv.key.as_str().contains("skill"))
        );
        let inner = PropagatedAttributes::new().skills_available([Skill::new("x")]);
        assert_eq!(
            a.merged(&inner).skills_available.as_deref(),
            Some(r#"[{"name":"x"}]"#)
        );
    }

    #[test]
    fn baggage_round_trips_into_span_attributes() {
        let a = PropagatedAttributes::new()
            .user_id("u")
            .tags(["t1", "t2"])
            .metadata(&json!({"k": "v"}))
            .as_baggage(true);
        let cx = context_with_attributes(&Context::new(), &a);
        let mut got: Vec<String> = baggage_key_values(&cx)
            .iter()
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "langfuse.trace.metadata.k=\"v\"",
                "langfuse.trace.tags=[\"t1\",\"t2\"]",
                "user.id=u"
            ]
            .map(String::from)
        );
    }
}
