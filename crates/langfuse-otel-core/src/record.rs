//! The Langfuse ingestion record model: the events of `POST /api/public/ingestion`.
//!
//! [`IngestionEvent`] serializes to exactly the JSON the ingestion API takes (camelCase keys,
//! absent fields omitted, `null` where the server derives `null`) and deserializes it back.
//! Fields that can be *absent* or *null* with different meanings (absent keeps a stored value,
//! `null` overwrites it) are `Option<Option<T>>`: `None` is absent, `Some(None)` is `null`.
//!
//! ```
//! use langfuse_otel_core::record::{IngestionEvent, EventBody, TraceBody};
//!
//! let event = IngestionEvent::new(EventBody::TraceCreate(TraceBody {
//!     id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
//!     name: Some(Some("support-bot".into())),
//!     environment: "default".into(),
//!     ..TraceBody::default()
//! }));
//! let json = serde_json::to_string(&event).unwrap();
//! assert_eq!(
//!     json,
//!     r#"{"type":"trace-create","body":{"id":"4bf92f3577b34da6a3ce929d0e0e4736","name":"support-bot","environment":"default"}}"#
//! );
//! let back: IngestionEvent = serde_json::from_str(&json).unwrap();
//! assert_eq!(back, event);
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The ten observation types Langfuse knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ObservationType {
    /// A unit of work with a duration.
    #[default]
    Span,
    /// An LLM call (model, usage, cost, completion start).
    Generation,
    /// A point in time (no duration).
    Event,
    /// An agent run.
    Agent,
    /// A tool call.
    Tool,
    /// A chain of steps.
    Chain,
    /// A retrieval step (vector search, …).
    Retriever,
    /// An evaluation.
    Evaluator,
    /// An embedding call.
    Embedding,
    /// A guardrail check.
    Guardrail,
}

impl ObservationType {
    /// All types, in Langfuse's order.
    pub const ALL: [ObservationType; 10] = [
        ObservationType::Span,
        ObservationType::Generation,
        ObservationType::Event,
        ObservationType::Agent,
        ObservationType::Tool,
        ObservationType::Chain,
        ObservationType::Retriever,
        ObservationType::Evaluator,
        ObservationType::Embedding,
        ObservationType::Guardrail,
    ];

    /// The lowercase name used in `langfuse.observation.type` (`"generation"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ObservationType::Span => "span",
            ObservationType::Generation => "generation",
            ObservationType::Event => "event",
            ObservationType::Agent => "agent",
            ObservationType::Tool => "tool",
            ObservationType::Chain => "chain",
            ObservationType::Retriever => "retriever",
            ObservationType::Evaluator => "evaluator",
            ObservationType::Embedding => "embedding",
            ObservationType::Guardrail => "guardrail",
        }
    }

    /// The ingestion event type that creates an observation of this type (`"generation-create"`).
    pub const fn create_event_type(self) -> &'static str {
        match self {
            ObservationType::Span => "span-create",
            ObservationType::Generation => "generation-create",
            ObservationType::Event => "event-create",
            ObservationType::Agent => "agent-create",
            ObservationType::Tool => "tool-create",
            ObservationType::Chain => "chain-create",
            ObservationType::Retriever => "retriever-create",
            ObservationType::Evaluator => "evaluator-create",
            ObservationType::Embedding => "embedding-create",
            ObservationType::Guardrail => "guardrail-create",
        }
    }

    /// Whether the server's schema keeps generation fields (model, usage, cost, completion start
    /// time, prompt) for this type: every type except span and event.
    pub const fn is_generation_like(self) -> bool {
        !matches!(self, ObservationType::Span | ObservationType::Event)
    }
}

impl fmt::Display for ObservationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown observation type name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown observation type {0:?}")]
pub struct UnknownObservationType(pub String);

impl FromStr for ObservationType {
    type Err = UnknownObservationType;

    /// Parses the lowercase name (`"tool"`); matching is exact, as on the server.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ObservationType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownObservationType(s.to_owned()))
    }
}

/// Severity of an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum Level {
    /// Debug detail.
    Debug,
    /// The normal level.
    #[default]
    Default,
    /// Something worth a look.
    Warning,
    /// A failure.
    Error,
}

impl Level {
    /// The upper-case name (`"WARNING"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Default => "DEFAULT",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

/// Serde helpers for `Option<Option<T>>`: absent ⇄ `None`, `null` ⇄ `Some(None)`.
pub mod nullable {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serializes `Some(None)` as `null` and `Some(Some(v))` as `v` (skip `None` with
    /// `skip_serializing_if = "Option::is_none"`).
    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Option<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Deserializes a present key: `null` → `Some(None)`, a value → `Some(Some(v))` (use with
    /// `default` so an absent key gives `None`).
    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

/// Metadata as the translator assembles it for traces and observations.
///
/// Serializes as one JSON object: the user keys first, then `attributes` (span attributes that
/// are not input/output), `resourceAttributes` and `scope`, which win over user keys of the same
/// name (as in the server's object spread). Resource and scope parts are shared (`Arc`) between
/// all spans of an export.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    /// User metadata keys (resource-level, trace-level and observation-level, merged).
    pub user: Map<String, Value>,
    /// Span attributes other than input/output keys, values rendered as strings.
    pub attributes: Option<Map<String, Value>>,
    /// The resource's attributes (a JSON object).
    pub resource_attributes: Option<SharedJson>,
    /// The instrumentation scope: `{name, version?, attributes}`.
    pub scope: Option<SharedJson>,
}

/// A JSON value shared by many records (the resource and scope of an export): built once,
/// shared by reference count, so attaching it to every record of an export costs no copy.
///
/// (It is deliberately not a pre-rendered `serde_json::value::RawValue`: with serde_json's
/// `raw_value` feature an object whose first key is `$serde_json::private::RawValue`, which an
/// attribute key can be, no longer reads back. The fuzz target found that.)
#[derive(Debug, Clone, PartialEq)]
pub struct SharedJson {
    value: Arc<Value>,
}

impl SharedJson {
    /// Wraps a value.
    pub fn new(value: Value) -> Self {
        SharedJson {
            value: Arc::new(value),
        }
    }

    /// The value.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

impl Serialize for SharedJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

const ATTRIBUTES: &str = "attributes";
const RESOURCE_ATTRIBUTES: &str = "resourceAttributes";
const SCOPE: &str = "scope";

impl Metadata {
    fn fixed_key_set(&self, key: &str) -> bool {
        match key {
            ATTRIBUTES => self.attributes.is_some(),
            RESOURCE_ATTRIBUTES => self.resource_attributes.is_some(),
            SCOPE => self.scope.is_some(),
            _ => false,
        }
    }

    /// Whether there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
            && self.attributes.is_none()
            && self.resource_attributes.is_none()
            && self.scope.is_none()
    }

    /// The metadata as one JSON object.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        for (k, v) in &self.user {
            if !self.fixed_key_set(k) {
                map.insert(k.clone(), v.clone());
            }
        }
        if let Some(a) = &self.attributes {
            map.insert(ATTRIBUTES.into(), Value::Object(a.clone()));
        }
        if let Some(r) = &self.resource_attributes {
            map.insert(RESOURCE_ATTRIBUTES.into(), r.value().clone());
        }
        if let Some(s) = &self.scope {
            map.insert(SCOPE.into(), s.value().clone());
        }
        Value::Object(map)
    }

    /// Splits a JSON object into user keys and the fixed parts.
    pub fn from_map(mut map: Map<String, Value>) -> Self {
        let take_obj = |map: &mut Map<String, Value>, key: &str| match map.get(key) {
            Some(Value::Object(_)) => match map.shift_remove(key) {
                Some(Value::Object(o)) => Some(o),
                _ => None,
            },
            _ => None,
        };
        let attributes = take_obj(&mut map, ATTRIBUTES);
        let resource_attributes =
            take_obj(&mut map, RESOURCE_ATTRIBUTES).map(|o| SharedJson::new(Value::Object(o)));
        let scope = map.shift_remove(SCOPE).map(SharedJson::new);
        Metadata {
            user: map,
            attributes,
            resource_attributes,
            scope,
        }
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (k, v) in &self.user {
            if !self.fixed_key_set(k) {
                map.serialize_entry(k, v)?;
            }
        }
        if let Some(a) = &self.attributes {
            map.serialize_entry(ATTRIBUTES, a)?;
        }
        if let Some(r) = &self.resource_attributes {
            map.serialize_entry(RESOURCE_ATTRIBUTES, r)?;
        }
        if let Some(s) = &self.scope {
            map.serialize_entry(SCOPE, s)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Metadata::from_map(Map::deserialize(deserializer)?))
    }
}

/// Body of a `trace-create` event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceBody {
    /// Trace id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Trace start (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Trace name.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub name: Option<Option<String>>,
    /// Trace input.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub input: Option<Option<Value>>,
    /// Trace output.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub output: Option<Option<Value>>,
    /// Session id.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub session_id: Option<Option<String>>,
    /// User id.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub user_id: Option<Option<String>>,
    /// Environment (normalized; `"default"` when unknown).
    #[serde(default = "default_environment")]
    pub environment: String,
    /// Metadata.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub metadata: Option<Option<Metadata>>,
    /// Release.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub release: Option<Option<String>>,
    /// Version.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub version: Option<Option<String>>,
    /// Whether the trace is public.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub public: Option<Option<bool>>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub tags: Option<Option<Vec<String>>>,
}

fn default_environment() -> String {
    "default".to_owned()
}

/// Body of an observation event (`span-create`, `generation-create`, …, and the update events).
///
/// `span-*` and `event-create` bodies never carry the generation fields; `event-create` has no
/// `endTime`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservationBody {
    /// Observation id (the span id).
    pub id: String,
    /// Trace id.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub trace_id: Option<Option<String>>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub name: Option<Option<String>>,
    /// Start time (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub start_time: Option<Option<String>>,
    /// End time (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub end_time: Option<Option<String>>,
    /// Metadata.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub metadata: Option<Option<Metadata>>,
    /// Input.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub input: Option<Option<Value>>,
    /// Output.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub output: Option<Option<Value>>,
    /// Level.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub level: Option<Option<Level>>,
    /// Status message.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub status_message: Option<Option<String>>,
    /// Parent observation id.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub parent_observation_id: Option<Option<String>>,
    /// Version.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub version: Option<Option<String>>,
    /// Environment (normalized).
    #[serde(default = "default_environment")]
    pub environment: String,
    /// Time the first token arrived (generation-like types only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub completion_start_time: Option<Option<String>>,
    /// Model name.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub model: Option<Option<String>>,
    /// Model parameters (values are strings or numbers after sanitizing).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub model_parameters: Option<Option<Map<String, Value>>>,
    /// Legacy usage object (the translator always emits `null` for generation-like types).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub usage: Option<Option<Value>>,
    /// Usage by kind (`input`, `output`, `total`, `input_cached_tokens`, …).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub usage_details: Option<Option<Map<String, Value>>>,
    /// Cost by kind, in USD.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub cost_details: Option<Option<Map<String, Value>>>,
    /// Linked prompt name.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub prompt_name: Option<Option<String>>,
    /// Linked prompt version.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub prompt_version: Option<Option<i64>>,
}

/// Data type of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum ScoreDataType {
    /// A number.
    Numeric,
    /// A label.
    Categorical,
    /// `0` or `1`.
    Boolean,
    /// Free text.
    Text,
    /// A correction of an output.
    Correction,
}

impl ScoreDataType {
    /// The name on the wire (`"NUMERIC"`, `"CATEGORICAL"`, …), as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            ScoreDataType::Numeric => "NUMERIC",
            ScoreDataType::Categorical => "CATEGORICAL",
            ScoreDataType::Boolean => "BOOLEAN",
            ScoreDataType::Text => "TEXT",
            ScoreDataType::Correction => "CORRECTION",
        }
    }
}

/// Where a score comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum ScoreSource {
    /// Sent through the API or an SDK.
    Api,
    /// Produced by an evaluator.
    Eval,
    /// Set by a person in the UI.
    Annotation,
}

/// Body of a `score-create` event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreBody {
    /// Score id (an idempotency key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Score name.
    pub name: String,
    /// The value: a number (numeric, boolean as 0/1) or a string (categorical, text).
    pub value: Value,
    /// Trace the score belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Observation the score belongs to (with `trace_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation_id: Option<String>,
    /// Session the score belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Dataset run the score belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_run_id: Option<String>,
    /// Environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Data type; inferred by the server from the value when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<ScoreDataType>,
    /// Score config id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_id: Option<String>,
    /// Source (`API` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ScoreSource>,
}

/// The body of an ingestion event, tagged with its event type.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventBody {
    /// `trace-create`.
    TraceCreate(TraceBody),
    /// `<type>-create` for an observation of the given type.
    ObservationCreate(ObservationType, ObservationBody),
    /// `span-update`.
    SpanUpdate(ObservationBody),
    /// `generation-update`.
    GenerationUpdate(ObservationBody),
    /// `score-create`.
    ScoreCreate(ScoreBody),
}

impl EventBody {
    /// The event type string (`"generation-create"`).
    pub fn event_type(&self) -> &'static str {
        match self {
            EventBody::TraceCreate(_) => "trace-create",
            EventBody::ObservationCreate(t, _) => t.create_event_type(),
            EventBody::SpanUpdate(_) => "span-update",
            EventBody::GenerationUpdate(_) => "generation-update",
            EventBody::ScoreCreate(_) => "score-create",
        }
    }

    /// The observation body, for observation events.
    pub fn observation(&self) -> Option<&ObservationBody> {
        match self {
            EventBody::ObservationCreate(_, b)
            | EventBody::SpanUpdate(b)
            | EventBody::GenerationUpdate(b) => Some(b),
            _ => None,
        }
    }

    /// The id in the body (the trace's, observation's or score's), when it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            EventBody::TraceCreate(b) => b.id.as_deref(),
            EventBody::ObservationCreate(_, b)
            | EventBody::SpanUpdate(b)
            | EventBody::GenerationUpdate(b) => Some(&b.id),
            EventBody::ScoreCreate(b) => b.id.as_deref(),
        }
    }

    /// The trace body, for `trace-create`.
    pub fn trace(&self) -> Option<&TraceBody> {
        match self {
            EventBody::TraceCreate(b) => Some(b),
            _ => None,
        }
    }
}

/// One event of an ingestion batch: `{id, type, timestamp, body}`.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestionEvent {
    /// Envelope id (the server's de-duplication key); `None` until assigned by a transport.
    pub id: Option<String>,
    /// Envelope timestamp (ISO-8601). The translator sets it on `trace-create` events (span
    /// start); transports set the send time on the others.
    pub timestamp: Option<String>,
    /// The typed body.
    pub body: EventBody,
}

impl IngestionEvent {
    /// An event without envelope id and timestamp.
    pub fn new(body: EventBody) -> Self {
        IngestionEvent {
            id: None,
            timestamp: None,
            body,
        }
    }

    /// The event type string.
    pub fn event_type(&self) -> &'static str {
        self.body.event_type()
    }
}

impl Serialize for IngestionEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(id) = &self.id {
            map.serialize_entry("id", id)?;
        }
        map.serialize_entry("type", self.event_type())?;
        if let Some(ts) = &self.timestamp {
            map.serialize_entry("timestamp", ts)?;
        }
        match &self.body {
            EventBody::TraceCreate(b) => map.serialize_entry("body", b)?,
            EventBody::ObservationCreate(_, b)
            | EventBody::SpanUpdate(b)
            | EventBody::GenerationUpdate(b) => map.serialize_entry("body", b)?,
            EventBody::ScoreCreate(b) => map.serialize_entry("body", b)?,
        }
        map.end()
    }
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    timestamp: Option<String>,
    body: Value,
}

impl<'de> Deserialize<'de> for IngestionEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawEvent::deserialize(deserializer)?;
        let body = |v: Value| -> Result<ObservationBody, D::Error> {
            serde_json::from_value(v).map_err(de::Error::custom)
        };
        let parsed = match raw.event_type.as_str() {
            "trace-create" => {
                EventBody::TraceCreate(serde_json::from_value(raw.body).map_err(de::Error::custom)?)
            }
            "span-update" => EventBody::SpanUpdate(body(raw.body)?),
            "generation-update" => EventBody::GenerationUpdate(body(raw.body)?),
            "score-create" => {
                EventBody::ScoreCreate(serde_json::from_value(raw.body).map_err(de::Error::custom)?)
            }
            other => {
                let kind = other
                    .strip_suffix("-create")
                    .and_then(|t| t.parse::<ObservationType>().ok())
                    .ok_or_else(|| {
                        de::Error::custom(format!("unknown ingestion event type {other:?}"))
                    })?;
                EventBody::ObservationCreate(kind, body(raw.body)?)
            }
        };
        Ok(IngestionEvent {
            id: raw.id,
            timestamp: raw.timestamp,
            body: parsed,
        })
    }
}

/// A batch as sent to `POST /api/public/ingestion`: `{"batch": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestionBatch {
    /// The events.
    pub batch: Vec<IngestionEvent>,
}
