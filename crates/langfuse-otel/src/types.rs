//! Value types of the instrumentation API: observation types, levels, updates, prompts and
//! trace contexts.

use std::borrow::Cow;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

use crate::json::{JsonStyle, serialize_python_or_raw_string};

/// The kind of an observation, written as `langfuse.observation.type` (the one definition in
/// `langfuse-otel-core`).
pub use langfuse_otel_core::record::ObservationType;

/// Whether observations of this type take generation fields (model, usage, cost, prompt):
/// `generation` and `embedding`, as in the Python SDK.
///
/// ```
/// use langfuse_otel::{ObservationType, takes_generation_fields};
/// assert!(takes_generation_fields(ObservationType::Embedding));
/// assert!(!takes_generation_fields(ObservationType::Tool));
/// ```
pub fn takes_generation_fields(kind: ObservationType) -> bool {
    matches!(
        kind,
        ObservationType::Generation | ObservationType::Embedding
    )
}

/// Severity of an observation, written as `langfuse.observation.level` (`Error` also sets
/// the OpenTelemetry span status to ERROR); the one definition in `langfuse-otel-core`.
pub use langfuse_otel_core::record::Level;

/// A prompt a generation was produced from (`langfuse.observation.prompt.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptRef {
    /// Prompt name.
    pub name: String,
    /// Prompt version (sent as an integer attribute).
    pub version: i64,
    /// A fallback prompt is never linked (as in the Python SDK).
    pub is_fallback: bool,
}

impl PromptRef {
    /// A prompt reference by name and version.
    ///
    /// ```
    /// let p = langfuse_otel::PromptRef::new("qa-prompt", 3);
    /// assert_eq!((p.name.as_str(), p.version), ("qa-prompt", 3));
    /// ```
    pub fn new(name: impl Into<String>, version: i64) -> Self {
        Self {
            name: name.into(),
            version,
            is_fallback: false,
        }
    }

    /// Appends the prompt link attributes (name, integer version) to `out`.
    pub(crate) fn push_key_values(&self, out: &mut Vec<opentelemetry::KeyValue>) {
        use langfuse_otel_core::keys;
        out.push(opentelemetry::KeyValue::new(
            keys::LANGFUSE_OBSERVATION_PROMPT_NAME,
            self.name.clone(),
        ));
        out.push(opentelemetry::KeyValue::new(
            keys::LANGFUSE_OBSERVATION_PROMPT_VERSION,
            self.version,
        ));
    }
}

/// Attaches a new observation to an existing trace (and optionally a parent span) instead of the
/// current context, like the Python SDK's `trace_context`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex characters.
    pub trace_id: String,
    /// 16 lowercase hex characters; `None` makes the observation a root of that trace.
    pub parent_span_id: Option<String>,
}

/// Converts any `Serialize` into a JSON value without ever failing: a value that cannot be
/// serialized becomes the Python SDK's `"<not serializable object of type: T>"` text.
pub(crate) fn to_json_value<T: Serialize + ?Sized>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_else(|_| Value::String(not_serializable::<T>()))
}

fn not_serializable<T: ?Sized>() -> String {
    format!(
        "<not serializable object of type: {}>",
        std::any::type_name::<T>()
    )
}

/// A value already encoded for the wire: a string as is, anything else as Python-style JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Encoded {
    /// The attribute text.
    pub(crate) text: String,
    /// The value was a string (sent raw).
    pub(crate) is_string: bool,
}

impl Encoded {
    /// Encodes `value`; `None` for `null` (not written, like Python's `None`).
    pub(crate) fn new<T: Serialize + ?Sized>(value: &T) -> Option<Encoded> {
        match serialize_python_or_raw_string(value, JsonStyle::Python) {
            // A string: sent as is, never encoded.
            Ok((text, true)) => Some(Encoded {
                text,
                is_string: true,
            }),
            Ok((text, false)) if text == "null" => None,
            // Other values written as a JSON string (e.g. unsafe integers): sent without quotes.
            Ok((mut text, false))
                if text.starts_with('"') && !text.contains('\\') && text.len() >= 2 =>
            {
                text.pop();
                text.remove(0);
                Some(Encoded {
                    text,
                    is_string: true,
                })
            }
            Ok((text, false)) if text.starts_with('"') => {
                match serde_json::from_str::<String>(&text) {
                    Ok(raw) => Some(Encoded {
                        text: raw,
                        is_string: true,
                    }),
                    Err(_) => Some(Encoded {
                        text,
                        is_string: false,
                    }),
                }
            }
            Ok((text, false)) => Some(Encoded {
                text,
                is_string: false,
            }),
            Err(_) => Some(Encoded {
                text: not_serializable::<T>(),
                is_string: true,
            }),
        }
    }

    /// The JSON value (for the mask function).
    pub(crate) fn to_value(&self) -> Value {
        if self.is_string {
            Value::String(self.text.clone())
        } else {
            serde_json::from_str(&self.text).unwrap_or_else(|_| Value::String(self.text.clone()))
        }
    }
}

/// The fields of an observation: used when starting one and for later updates. Only the fields
/// that are set are written; generation fields are written only on generation-like
/// observations (`generation`, `embedding`), as in the Python SDK.
///
/// ```
/// use langfuse_otel::{Level, ObservationUpdate};
/// let update = ObservationUpdate::new()
///     .output(&serde_json::json!({"answer": 42}))
///     .metadata(&serde_json::json!({"source": "cache"}))
///     .level(Level::Warning)
///     .status_message("slow");
/// assert!(update.is_set());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ObservationUpdate {
    // The fields of a typical generation are inline; the others are boxed, so the builder
    // chain moves a small value.
    pub(crate) input: Option<Encoded>,
    pub(crate) output: Option<Encoded>,
    pub(crate) model: Option<Cow<'static, str>>,
    pub(crate) model_parameters: Option<String>,
    pub(crate) usage_details: Option<String>,
    pub(crate) rare: Option<Box<RareFields>>,
}

/// The less common fields of an [`ObservationUpdate`].
#[derive(Debug, Clone, Default)]
pub(crate) struct RareFields {
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) metadata: Option<Value>,
    pub(crate) version: Option<String>,
    pub(crate) level: Option<Level>,
    pub(crate) status_message: Option<String>,
    pub(crate) cost_details: Option<String>,
    pub(crate) completion_start_time: Option<SystemTime>,
    pub(crate) prompt: Option<PromptRef>,
    /// `langfuse.observation.skills_available`, encoded.
    pub(crate) skills_available: Option<String>,
}

use langfuse_otel_core::conventions::{SkillRef, skills_available_json};

/// A skill an agent could use, as Langfuse's skill management reports it on a model call or a
/// skill-loading tool call: a name and, optionally, the skill version (an integer).
///
/// ```
/// use langfuse_otel::Skill;
/// assert_eq!(
///     Skill::encode_list(&[Skill::new("refund-policy").version(2), Skill::new("tone")]),
///     r#"[{"name":"refund-policy","version":2},{"name":"tone"}]"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Skill {
    /// The skill's name.
    pub name: String,
    /// Its version, if known.
    pub version: Option<i64>,
}

impl Skill {
    /// A skill without a version.
    pub fn new(name: impl Into<String>) -> Self {
        Skill {
            name: name.into(),
            version: None,
        }
    }

    /// Sets the version.
    pub fn version(mut self, version: i64) -> Self {
        self.version = Some(version);
        self
    }

    /// The value of `langfuse.observation.skills_available`: a compact JSON list of
    /// `{"name": …, "version": …}` objects, `version` left out when unknown (as the Python SDK
    /// 5.2 writes it).
    pub fn encode_list(skills: &[Skill]) -> String {
        let refs: Vec<SkillRef> = skills
            .iter()
            .map(|s| SkillRef::new(s.name.clone(), s.version))
            .collect();
        skills_available_json(&refs)
    }
}

impl RareFields {
    fn is_set(&self) -> bool {
        self.name.is_some()
            || self.metadata.is_some()
            || self.version.is_some()
            || self.level.is_some()
            || self.status_message.is_some()
            || self.cost_details.is_some()
            || self.completion_start_time.is_some()
            || self.prompt.is_some()
            || self.skills_available.is_some()
    }
}

impl ObservationUpdate {
    /// An empty update.
    #[inline]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether any field is set.
    #[inline]
    pub fn is_set(&self) -> bool {
        self.input.is_some()
            || self.output.is_some()
            || self.model.is_some()
            || self.model_parameters.is_some()
            || self.usage_details.is_some()
            || self.rare.as_deref().is_some_and(RareFields::is_set)
    }

    fn rare_mut(&mut self) -> &mut RareFields {
        self.rare.get_or_insert_with(Box::default)
    }

    /// The prompt link, if set.
    pub(crate) fn prompt_ref(&self) -> Option<&PromptRef> {
        self.rare.as_deref().and_then(|r| r.prompt.as_ref())
    }

    /// Renames the observation (the OpenTelemetry span name); a literal costs no allocation.
    #[inline]
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.rare_mut().name = Some(name.into());
        self
    }

    /// Input: a string is sent as is, anything else as JSON. `null` is not written.
    #[inline]
    pub fn input<T: Serialize + ?Sized>(mut self, input: &T) -> Self {
        self.input = Encoded::new(input);
        self
    }

    /// Output: a string is sent as is, anything else as JSON. `null` is not written.
    #[inline]
    pub fn output<T: Serialize + ?Sized>(mut self, output: &T) -> Self {
        self.output = Encoded::new(output);
        self
    }

    /// Metadata: an object is flattened one level (`langfuse.observation.metadata.<key>`, each
    /// value JSON-encoded, `null` values skipped); anything else is one JSON attribute.
    #[inline]
    pub fn metadata<T: Serialize + ?Sized>(mut self, metadata: &T) -> Self {
        self.rare_mut().metadata = Some(to_json_value(metadata)).filter(|v| !v.is_null());
        self
    }

    /// Version of the code or app that produced the observation (`langfuse.version`).
    #[inline]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.rare_mut().version = Some(version.into());
        self
    }

    /// Level; [`Level::Error`] also sets the span status to ERROR with the status message.
    #[inline]
    pub fn level(mut self, level: Level) -> Self {
        self.rare_mut().level = Some(level);
        self
    }

    /// Status message (free text, typically an error description).
    #[inline]
    pub fn status_message(mut self, message: impl Into<String>) -> Self {
        self.rare_mut().status_message = Some(message.into());
        self
    }

    /// Model name (generation-like observations only); a literal costs no allocation.
    #[inline]
    pub fn model(mut self, model: impl Into<Cow<'static, str>>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Model parameters, e.g. `{"temperature": 0.2}` (generation-like only).
    #[inline]
    pub fn model_parameters<T: Serialize + ?Sized>(mut self, parameters: &T) -> Self {
        self.model_parameters = Encoded::new(parameters).map(|e| e.text);
        self
    }

    /// Usage details, e.g. `{"input": 120, "output": 40, "total": 160, "input_cache_read": 80}`
    /// (generation-like only).
    #[inline]
    pub fn usage_details<T: Serialize + ?Sized>(mut self, usage: &T) -> Self {
        self.usage_details = Encoded::new(usage).map(|e| e.text);
        self
    }

    /// Cost details in USD, e.g. `{"input": 0.0012, "total": 0.0021}` (generation-like only).
    #[inline]
    pub fn cost_details<T: Serialize + ?Sized>(mut self, cost: &T) -> Self {
        self.rare_mut().cost_details = Encoded::new(cost).map(|e| e.text);
        self
    }

    /// When the first token arrived (generation-like only).
    #[inline]
    pub fn completion_start_time(mut self, time: SystemTime) -> Self {
        self.rare_mut().completion_start_time = Some(time);
        self
    }

    /// The prompt the generation used (generation-like only; fallback prompts are skipped).
    #[inline]
    pub fn prompt(mut self, prompt: PromptRef) -> Self {
        self.rare_mut().prompt = Some(prompt);
        self
    }

    /// The skills the model could use (`langfuse.observation.skills_available`, see
    /// [`Skill::encode_list`]); any observation type, on this observation only. Langfuse links
    /// them on generations and on skill-loading tool calls.
    ///
    /// ```
    /// use langfuse_otel::{ObservationUpdate, Skill};
    /// let update = ObservationUpdate::new().skills_available([Skill::new("refund-policy").version(1)]);
    /// # drop(update);
    /// ```
    #[inline]
    pub fn skills_available(mut self, skills: impl IntoIterator<Item = Skill>) -> Self {
        let skills: Vec<Skill> = skills.into_iter().collect();
        self.rare_mut().skills_available = Some(Skill::encode_list(&skills));
        self
    }
}

/// How to start an observation: name, type, initial fields, explicit trace context.
///
/// A `&'static str`, `String` or `Cow<'static, str>` converts into a `span` with that name
/// (names are taken as `Cow<'static, str>`, like OpenTelemetry span names: a literal costs no
/// allocation).
///
/// ```
/// use langfuse_otel::{ObservationOptions, ObservationType};
/// let opts = ObservationOptions::new("generate-answer", ObservationType::Generation)
///     .model("gpt-4o-mini")
///     .input("How do I reset my password?");
/// assert_eq!(opts.as_type(), ObservationType::Generation);
/// let span: ObservationOptions = "rag-pipeline".into();
/// assert_eq!(span.as_type(), ObservationType::Span);
/// let step = 3;
/// let named: ObservationOptions = format!("step-{step}").into();
/// assert_eq!(named.as_type(), ObservationType::Span);
/// ```
#[derive(Debug, Clone)]
pub struct ObservationOptions {
    pub(crate) name: Cow<'static, str>,
    pub(crate) as_type: ObservationType,
    pub(crate) fields: ObservationUpdate,
    pub(crate) trace_context: Option<Box<TraceContext>>,
    pub(crate) start_time: Option<SystemTime>,
}

impl ObservationOptions {
    /// An observation of the given type.
    #[inline]
    pub fn new(name: impl Into<Cow<'static, str>>, as_type: ObservationType) -> Self {
        Self {
            name: name.into(),
            as_type,
            fields: ObservationUpdate::default(),
            trace_context: None,
            start_time: None,
        }
    }

    /// The observation type.
    #[inline]
    pub fn as_type(&self) -> ObservationType {
        self.as_type
    }

    /// Replaces all initial fields.
    #[inline]
    pub fn fields(mut self, fields: ObservationUpdate) -> Self {
        self.fields = fields;
        self
    }

    /// Attaches to an existing trace (see [`TraceContext`]).
    #[inline]
    pub fn trace_context(mut self, trace_context: TraceContext) -> Self {
        self.trace_context = Some(Box::new(trace_context));
        self
    }

    /// Explicit start time (default: now).
    #[inline]
    pub fn start_time(mut self, time: SystemTime) -> Self {
        self.start_time = Some(time);
        self
    }

    /// Initial input (see [`ObservationUpdate::input`]).
    #[inline]
    pub fn input<T: Serialize + ?Sized>(mut self, input: &T) -> Self {
        self.fields.input = Encoded::new(input);
        self
    }

    /// Initial output (see [`ObservationUpdate::output`]).
    #[inline]
    pub fn output<T: Serialize + ?Sized>(mut self, output: &T) -> Self {
        self.fields.output = Encoded::new(output);
        self
    }

    /// Initial metadata (see [`ObservationUpdate::metadata`]).
    #[inline]
    pub fn metadata<T: Serialize + ?Sized>(mut self, metadata: &T) -> Self {
        self.fields.rare_mut().metadata = Some(to_json_value(metadata)).filter(|v| !v.is_null());
        self
    }

    /// Version (see [`ObservationUpdate::version`]).
    #[inline]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.fields.rare_mut().version = Some(version.into());
        self
    }

    /// Level (see [`ObservationUpdate::level`]).
    #[inline]
    pub fn level(mut self, level: Level) -> Self {
        self.fields.rare_mut().level = Some(level);
        self
    }

    /// Status message (see [`ObservationUpdate::status_message`]).
    #[inline]
    pub fn status_message(mut self, message: impl Into<String>) -> Self {
        self.fields.rare_mut().status_message = Some(message.into());
        self
    }

    /// Model name (see [`ObservationUpdate::model`]).
    #[inline]
    pub fn model(mut self, model: impl Into<Cow<'static, str>>) -> Self {
        self.fields.model = Some(model.into());
        self
    }

    /// Model parameters (see [`ObservationUpdate::model_parameters`]).
    #[inline]
    pub fn model_parameters<T: Serialize + ?Sized>(mut self, parameters: &T) -> Self {
        self.fields.model_parameters = Encoded::new(parameters).map(|e| e.text);
        self
    }

    /// Usage details (see [`ObservationUpdate::usage_details`]).
    #[inline]
    pub fn usage_details<T: Serialize + ?Sized>(mut self, usage: &T) -> Self {
        self.fields.usage_details = Encoded::new(usage).map(|e| e.text);
        self
    }

    /// Cost details (see [`ObservationUpdate::cost_details`]).
    #[inline]
    pub fn cost_details<T: Serialize + ?Sized>(mut self, cost: &T) -> Self {
        self.fields.rare_mut().cost_details = Encoded::new(cost).map(|e| e.text);
        self
    }

    /// Completion start time (see [`ObservationUpdate::completion_start_time`]).
    #[inline]
    pub fn completion_start_time(mut self, time: SystemTime) -> Self {
        self.fields.rare_mut().completion_start_time = Some(time);
        self
    }

    /// Prompt link (see [`ObservationUpdate::prompt`]).
    #[inline]
    pub fn prompt(mut self, prompt: PromptRef) -> Self {
        self.fields.rare_mut().prompt = Some(prompt);
        self
    }
}

impl From<&'static str> for ObservationOptions {
    fn from(name: &'static str) -> Self {
        Self::new(name, ObservationType::Span)
    }
}

impl From<String> for ObservationOptions {
    fn from(name: String) -> Self {
        Self::new(name, ObservationType::Span)
    }
}

impl From<Cow<'static, str>> for ObservationOptions {
    fn from(name: Cow<'static, str>) -> Self {
        Self::new(name, ObservationType::Span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_sent_raw_and_other_values_as_python_json() {
        let e = |v: &dyn erased::Ser| v.enc();
        assert_eq!(e(&"plain"), Some(("plain".to_owned(), true)));
        assert_eq!(e(&"é \"q\" \\ x"), Some(("é \"q\" \\ x".to_owned(), true)));
        assert_eq!(e(&""), Some((String::new(), true)));
        assert_eq!(
            e(&serde_json::json!({"a": [1, 2.5]})),
            Some((r#"{"a": [1, 2.5]}"#.to_owned(), false))
        );
        assert_eq!(e(&Option::<u8>::None), None, "null is not written");
    }

    mod erased {
        pub trait Ser {
            fn enc(&self) -> Option<(String, bool)>;
        }
        impl<T: serde::Serialize> Ser for T {
            fn enc(&self) -> Option<(String, bool)> {
                super::Encoded::new(self).map(|e| (e.text, e.is_string))
            }
        }
    }
}
