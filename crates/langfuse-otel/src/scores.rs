//! Scores: [`Score`] values and the background queue that posts them to
//! `POST /api/public/scores` as a JSON array (the Python SDK 5 transport), or appends them to
//! the offline file as `score-create` ingestion events.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use langfuse_otel_core::record::{EventBody, IngestionEvent, ScoreBody};
use langfuse_otel_exporter::offline::OfflineWriter;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::Config;
use crate::transport;
use crate::types::to_json_value;

/// Largest request body (bytes), as in the Python SDK.
const MAX_BATCH_BYTES: usize = 1_000_000;

/// The kind of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreDataType {
    /// A number.
    Numeric,
    /// 0 or 1.
    Boolean,
    /// One of a set of strings.
    Categorical,
}

impl ScoreDataType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Numeric => "NUMERIC",
            Self::Boolean => "BOOLEAN",
            Self::Categorical => "CATEGORICAL",
        }
    }
}

/// A score value: numbers and booleans are sent as floats, categories as strings.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreValue {
    /// A number.
    Number(f64),
    /// A category.
    Text(String),
}

impl From<f64> for ScoreValue {
    fn from(v: f64) -> Self {
        Self::Number(v)
    }
}
impl From<i64> for ScoreValue {
    fn from(v: i64) -> Self {
        Self::Number(v as f64)
    }
}
impl From<bool> for ScoreValue {
    fn from(v: bool) -> Self {
        Self::Number(if v { 1.0 } else { 0.0 })
    }
}
impl From<&str> for ScoreValue {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}
impl From<String> for ScoreValue {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

/// A score for a trace, an observation, or a session.
///
/// ```
/// use langfuse_otel::{Score, ScoreDataType};
/// let s = Score::categorical("tone", "friendly").comment("looks fine");
/// assert_eq!(s.get_data_type(), Some(ScoreDataType::Categorical));
/// let plain = Score::new("accuracy", 0.9); // no data type, like Python without data_type
/// assert_eq!(plain.get_data_type(), None);
/// ```
#[derive(Debug, Clone)]
pub struct Score {
    pub(crate) name: String,
    pub(crate) value: ScoreValue,
    pub(crate) data_type: Option<ScoreDataType>,
    pub(crate) id: Option<String>,
    pub(crate) trace_id: Option<String>,
    pub(crate) observation_id: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) dataset_run_id: Option<String>,
    pub(crate) comment: Option<String>,
    pub(crate) metadata: Option<Value>,
    pub(crate) config_id: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) timestamp: Option<SystemTime>,
}

impl Score {
    /// A score without an explicit data type (the server infers it).
    pub fn new(name: impl Into<String>, value: impl Into<ScoreValue>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            data_type: None,
            id: None,
            trace_id: None,
            observation_id: None,
            session_id: None,
            dataset_run_id: None,
            comment: None,
            metadata: None,
            config_id: None,
            environment: None,
            timestamp: None,
        }
    }

    /// A `NUMERIC` score.
    pub fn numeric(name: impl Into<String>, value: f64) -> Self {
        Self::new(name, value).data_type(ScoreDataType::Numeric)
    }

    /// A `BOOLEAN` score (sent as 1.0 / 0.0).
    pub fn boolean(name: impl Into<String>, value: bool) -> Self {
        Self::new(name, value).data_type(ScoreDataType::Boolean)
    }

    /// A `CATEGORICAL` score.
    pub fn categorical(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::new(name, ScoreValue::Text(value.into())).data_type(ScoreDataType::Categorical)
    }

    /// Sets the data type.
    pub fn data_type(mut self, data_type: ScoreDataType) -> Self {
        self.data_type = Some(data_type);
        self
    }

    /// The data type, if set.
    pub fn get_data_type(&self) -> Option<ScoreDataType> {
        self.data_type
    }

    /// Score id (default: 16 random hex characters); reuse one to update a score.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The trace scored.
    pub fn trace_id(mut self, id: impl Into<String>) -> Self {
        self.trace_id = Some(id.into());
        self
    }

    /// The observation scored (with its trace id).
    pub fn observation_id(mut self, id: impl Into<String>) -> Self {
        self.observation_id = Some(id.into());
        self
    }

    /// The session scored.
    pub fn session_id(mut self, id: impl Into<String>) -> Self {
        self.session_id = Some(id.into());
        self
    }

    /// The dataset run scored.
    pub fn dataset_run_id(mut self, id: impl Into<String>) -> Self {
        self.dataset_run_id = Some(id.into());
        self
    }

    /// Free-text comment.
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// Metadata (any `Serialize`).
    pub fn metadata<T: Serialize + ?Sized>(mut self, metadata: &T) -> Self {
        self.metadata = Some(to_json_value(metadata));
        self
    }

    /// Score config id.
    pub fn config_id(mut self, id: impl Into<String>) -> Self {
        self.config_id = Some(id.into());
        self
    }

    /// Environment (default: the client's).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Timestamp (default: now).
    pub fn timestamp(mut self, time: SystemTime) -> Self {
        self.timestamp = Some(time);
        self
    }

    /// The JSON object sent to `POST /api/public/scores` (camelCase keys, like Python).
    pub(crate) fn to_json(&self, default_id: String, default_env: Option<&str>) -> Value {
        let mut m = Map::new();
        m.insert(
            "id".into(),
            Value::String(self.id.clone().unwrap_or(default_id)),
        );
        let mut opt = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                m.insert(k.into(), Value::String(v.clone()));
            }
        };
        opt("traceId", &self.trace_id);
        opt("sessionId", &self.session_id);
        opt("observationId", &self.observation_id);
        opt("datasetRunId", &self.dataset_run_id);
        m.insert("name".into(), Value::String(self.name.clone()));
        m.insert(
            "value".into(),
            match &self.value {
                ScoreValue::Number(n) => {
                    serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
                }
                ScoreValue::Text(t) => Value::String(t.clone()),
            },
        );
        if let Some(c) = &self.comment {
            m.insert("comment".into(), Value::String(c.clone()));
        }
        if let Some(md) = &self.metadata {
            m.insert("metadata".into(), md.clone());
        }
        if let Some(c) = &self.config_id {
            m.insert("configId".into(), Value::String(c.clone()));
        }
        if let Some(t) = self.data_type {
            m.insert("dataType".into(), Value::String(t.as_str().into()));
        }
        if let Some(env) = self.environment.as_deref().or(default_env) {
            m.insert("environment".into(), Value::String(env.to_owned()));
        }
        let ts = self.timestamp.unwrap_or_else(SystemTime::now);
        m.insert(
            "timestamp".into(),
            Value::String(crate::time::iso_micros(ts)),
        );
        Value::Object(m)
    }
}

enum Msg {
    Score(Value),
    Flush(Sender<()>),
    Shutdown,
}

/// The background sender: batches of `flush_at` (15) or every `flush_interval` (1 s).
#[derive(Debug)]
pub(crate) struct ScoreQueue {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

/// Where a batch of scores goes.
enum Destination {
    Http(ureq::Agent),
    File(OfflineWriter),
}

impl ScoreQueue {
    /// Starts the sender thread: scores go to `offline` when given, else over HTTP.
    pub(crate) fn start(
        config: Config,
        client: ureq::Agent,
        offline: Option<OfflineWriter>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let destination = match offline {
            Some(w) => Destination::File(w),
            None => Destination::Http(client),
        };
        let thread = std::thread::Builder::new()
            .name("langfuse-scores".into())
            .spawn(move || run(rx, config, destination))?;
        Ok(Self {
            tx,
            thread: Some(thread),
        })
    }

    pub(crate) fn push(&self, score: Value) {
        let _ = self.tx.send(Msg::Score(score));
    }

    /// Asks the sender to send what is queued; the receiver hears when it is done.
    pub(crate) fn start_flush(&self) -> Option<Receiver<()>> {
        let (done_tx, done_rx) = mpsc::channel();
        self.tx.send(Msg::Flush(done_tx)).ok()?;
        Some(done_rx)
    }
}

impl Drop for ScoreQueue {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(rx: Receiver<Msg>, config: Config, destination: Destination) {
    let flush_at = config.flush_at.unwrap_or(15);
    let interval = config.flush_interval.unwrap_or(Duration::from_secs(1));
    let mut pending: Vec<Value> = Vec::new();
    let mut deadline = Instant::now() + interval;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(Msg::Score(s)) => {
                pending.push(s);
                if pending.len() >= flush_at {
                    send(&destination, &config, &mut pending);
                    deadline = Instant::now() + interval;
                }
            }
            Ok(Msg::Flush(done)) => {
                send(&destination, &config, &mut pending);
                let _ = done.send(());
            }
            Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                send(&destination, &config, &mut pending);
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                send(&destination, &config, &mut pending);
                deadline = Instant::now() + interval;
            }
        }
    }
}

/// How scores reach Langfuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoreTransport {
    /// `POST /api/public/scores` with a JSON array of scores (the Python SDK 5; the default).
    #[default]
    Scores,
    /// `POST /api/public/ingestion` with `score-create` events, at most 100 per request (the
    /// JS SDK 5).
    Ingestion,
}

/// Sends `pending` to its destination.
fn send(destination: &Destination, config: &Config, pending: &mut Vec<Value>) {
    match destination {
        Destination::Http(agent) => post(agent, config, pending),
        Destination::File(writer) => write_offline(writer, config, pending),
    }
}

/// A score as the `score-create` ingestion event the server derives from it: the envelope
/// carries the score's timestamp, the body the score (the ingestion schema has no timestamp).
fn score_event(score: Value) -> Option<IngestionEvent> {
    let timestamp = score
        .get("timestamp")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let body: ScoreBody = serde_json::from_value(score).ok()?;
    Some(IngestionEvent {
        id: Some(langfuse_otel_exporter::new_event_id()),
        timestamp: Some(
            timestamp.unwrap_or_else(|| crate::time::iso_micros(std::time::SystemTime::now())),
        ),
        body: EventBody::ScoreCreate(body),
    })
}

/// Appends `pending` to the offline file as `score-create` events.
fn write_offline(writer: &OfflineWriter, config: &Config, pending: &mut Vec<Value>) {
    if pending.is_empty() {
        return;
    }
    let started = Instant::now();
    let n = pending.len();
    let events: Vec<IngestionEvent> = pending.drain(..).filter_map(score_event).collect();
    let result = writer.write_events(&events);
    if let Err(e) = &result {
        let message = format!(
            "dropping {n} scores: writing {}: {e}",
            writer.path().display()
        );
        tracing::warn!(target: "langfuse", "{message}");
        config
            .diagnostics
            .warn_once("scores-offline-failed", &message);
    }
    config.diagnostics.debug(|| {
        format!(
            "scores: {} score-create events to file {}: {} in {:.1} ms",
            events.len(),
            writer.path().display(),
            match &result {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("failed: {e}"),
            },
            started.elapsed().as_secs_f64() * 1000.0
        )
    });
}

/// Posts `pending` in bodies of at most 1 MB; a single oversized score is dropped.
fn post(client: &ureq::Agent, config: &Config, pending: &mut Vec<Value>) {
    let (path, open, close, max_items): (&str, &[u8], &[u8], usize) = match config.score_transport {
        ScoreTransport::Scores => (transport::SCORES_PATH, b"[", b"]", usize::MAX),
        ScoreTransport::Ingestion => (transport::INGESTION_PATH, b"{\"batch\":[", b"]}", 100),
    };
    let mut batch: Vec<u8> = Vec::new();
    let mut count = 0usize;
    let flush = |batch: &mut Vec<u8>, count: &mut usize| {
        if *count == 0 {
            return;
        }
        batch.extend_from_slice(close);
        let started = Instant::now();
        let result = transport::post_json(client, config, path, std::mem::take(batch));
        if let Err(e) = &result {
            // Data loss: visible without a `tracing` subscriber (once per kind), like the
            // exporter's own drop warnings.
            let message = format!("dropping {count} scores: {e}");
            tracing::warn!(target: "langfuse", "{message}");
            config.diagnostics.warn_once("scores-send-failed", &message);
        }
        config.diagnostics.debug(|| {
            format!(
                "scores: {count} to {}{path}: {} in {:.1} ms",
                config.base_url.trim_end_matches('/'),
                match &result {
                    Ok(status) => format!("ok (HTTP {status})"),
                    Err(e) => format!("failed: {e}"),
                },
                started.elapsed().as_secs_f64() * 1000.0
            )
        });
        *count = 0;
    };
    for score in pending.drain(..) {
        let item = match config.score_transport {
            ScoreTransport::Scores => score,
            ScoreTransport::Ingestion => serde_json::json!({
                "id": langfuse_otel_exporter::new_event_id(),
                "type": "score-create",
                "timestamp": crate::time::iso_micros(std::time::SystemTime::now()),
                "body": score,
            }),
        };
        let bytes = serde_json::to_vec(&item).unwrap_or_default();
        let overhead = open.len() + close.len();
        if bytes.len() + overhead > MAX_BATCH_BYTES {
            let message = format!("dropping a score larger than {MAX_BATCH_BYTES} bytes");
            tracing::warn!(target: "langfuse", "{message}");
            config.diagnostics.warn_once("score-too-large", &message);
            continue;
        }
        if count > 0
            && (batch.len() + bytes.len() + overhead > MAX_BATCH_BYTES || count >= max_items)
        {
            flush(&mut batch, &mut count);
        }
        if count == 0 {
            batch.extend_from_slice(open);
        } else {
            batch.push(b',');
        }
        batch.extend_from_slice(&bytes);
        count += 1;
    }
    flush(&mut batch, &mut count);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn uuids_are_version_4() {
        let u = langfuse_otel_exporter::new_event_id();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn json_matches_the_python_shape() {
        let s = Score::boolean("helpful", true)
            .trace_id("t1")
            .comment("c")
            .timestamp(UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(
            serde_json::to_string(&s.to_json("abc".into(), Some("staging"))).unwrap(),
            r#"{"id":"abc","traceId":"t1","name":"helpful","value":1.0,"comment":"c","dataType":"BOOLEAN","environment":"staging","timestamp":"1970-01-01T00:00:01Z"}"#
        );
    }
}
