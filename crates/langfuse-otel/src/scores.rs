//! Scores: [`Score`] values and the background queue that posts them to
//! `POST /api/public/scores` as a JSON array (the Python SDK 5 transport), or appends them to
//! the offline file as `score-create` ingestion events.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use langfuse_otel_core::record::{EventBody, IngestionEvent, ScoreBody};
use langfuse_otel_exporter::offline::OfflineWriter;
use serde::Serialize;
use serde_json::{Map, Value};

use langfuse_otel_transport::{JsonBatchSender, JsonItem, RetryPolicy, RoundBackoff};

use crate::types::to_json_value;

/// The kind of a score: the one definition of the record model (`NUMERIC`, `BOOLEAN`,
/// `CATEGORICAL`, and Langfuse's `TEXT` and `CORRECTION`).
pub use langfuse_otel_core::record::ScoreDataType;

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
            Value::String(langfuse_otel_core::time::format_iso_micros(ts)),
        );
        Value::Object(m)
    }
}

enum Msg {
    Score(Value),
    /// Send what is queued now (one delivery attempt), then answer.
    Flush(Sender<()>),
    /// Send what is queued, retrying until delivered or the deadline; drop (and count) the
    /// rest; then answer.
    Drain(Instant, Sender<()>),
    Shutdown,
}

/// Counters of the score queue, readable while it runs ([`crate::Langfuse::score_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScoreStats {
    /// Scores the destination accepted (or the offline file took).
    pub sent: u64,
    /// Scores lost: queue full, rejected for good, or undelivered at shutdown.
    pub dropped: u64,
    /// Requests sent again after a retryable failure.
    pub retried: u64,
}

#[derive(Debug, Default)]
pub(crate) struct ScoreCounters {
    sent: AtomicU64,
    dropped: AtomicU64,
    retried: AtomicU64,
}

impl ScoreCounters {
    pub(crate) fn snapshot(&self) -> ScoreStats {
        ScoreStats {
            sent: self.sent.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
        }
    }
}

/// Default most scores queued at once (waiting or being retried); past it new scores are
/// dropped, counted and warned about once.
pub const DEFAULT_MAX_QUEUED_SCORES: usize = 100_000;

/// The background sender: batches of `flush_at` (15) or every `flush_interval` (1 s; 0 sends
/// each score as it comes). Scores that cannot be delivered in time stay queued (oldest first,
/// within the queue's bound) and are retried with backoff, like spans.
#[derive(Debug)]
pub(crate) struct ScoreQueue {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<ScoreCounters>,
    shutdown_timeout: Duration,
}

/// Where a batch of scores goes.
enum ScoreOutput {
    Http(JsonBatchSender),
    File(OfflineWriter),
}

/// What the score queue needs of the client's configuration.
#[derive(Debug, Clone)]
pub(crate) struct ScoreSettings {
    /// Which endpoint takes the scores.
    pub(crate) transport: ScoreTransport,
    /// Deadline of one delivery round, and of the final drain.
    pub(crate) timeout: Duration,
    /// Scores per batch.
    pub(crate) flush_at: usize,
    /// Longest wait of a queued score (0 sends each as it comes).
    pub(crate) flush_interval: Duration,
    /// Most scores queued at once.
    pub(crate) max_queued: usize,
    /// Where warnings and debug lines go.
    pub(crate) diagnostics: langfuse_otel_exporter::Diagnostics,
}

impl ScoreQueue {
    /// Starts the sender thread: scores go to `offline` when given, else over HTTP.
    pub(crate) fn start(
        config: ScoreSettings,
        sender: JsonBatchSender,
        offline: Option<OfflineWriter>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let destination = match offline {
            Some(w) => ScoreOutput::File(w),
            None => ScoreOutput::Http(sender),
        };
        let counters = Arc::new(ScoreCounters::default());
        let shutdown_timeout = config.timeout;
        let worker = Worker {
            counters: Arc::clone(&counters),
            flush_at: config.flush_at,
            interval: config.flush_interval,
            max_queued: config.max_queued,
            config,
            destination,
            pending: VecDeque::new(),
            oldest: None,
            backoff: RoundBackoff::new(RetryPolicy::default()),
        };
        let thread = std::thread::Builder::new()
            .name("langfuse-scores".into())
            .spawn(move || worker.run(rx))?;
        Ok(Self {
            tx,
            thread: Some(thread),
            counters,
            shutdown_timeout,
        })
    }

    pub(crate) fn push(&self, score: Value) {
        if self.tx.send(Msg::Score(score)).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Asks the sender to send what is queued; the receiver hears when it is done.
    pub(crate) fn start_flush(&self) -> Option<Receiver<()>> {
        let (done_tx, done_rx) = mpsc::channel();
        self.tx.send(Msg::Flush(done_tx)).ok()?;
        Some(done_rx)
    }

    /// Asks the sender to deliver everything by `deadline` (retrying), dropping and counting
    /// what is left then; the receiver hears when it is done.
    pub(crate) fn start_drain(&self, deadline: Instant) -> Option<Receiver<()>> {
        let (done_tx, done_rx) = mpsc::channel();
        self.tx.send(Msg::Drain(deadline, done_tx)).ok()?;
        Some(done_rx)
    }

    pub(crate) fn stats(&self) -> ScoreStats {
        self.counters.snapshot()
    }
}

impl Drop for ScoreQueue {
    fn drop(&mut self) {
        if let Some(done) = self.start_drain(Instant::now() + self.shutdown_timeout) {
            let _ = done.recv_timeout(self.shutdown_timeout + Duration::from_secs(1));
        }
        let _ = self.tx.send(Msg::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    config: ScoreSettings,
    destination: ScoreOutput,
    counters: Arc<ScoreCounters>,
    flush_at: usize,
    interval: Duration,
    max_queued: usize,
    /// Serialized scores, oldest first.
    pending: VecDeque<Value>,
    /// When the oldest waiting score arrived (schedules the interval send).
    oldest: Option<Instant>,
    /// The wait after a round that delivered nothing (the exporter's and forwarder's shape).
    backoff: RoundBackoff,
}

impl Worker {
    fn run(mut self, rx: Receiver<Msg>) {
        loop {
            let now = Instant::now();
            // Nothing queued: block until a message, no timer (an idle worker costs no CPU).
            let wake = if self.pending.is_empty() {
                None
            } else if let Some(t) = self.backoff.retry_at() {
                Some(t)
            } else if self.pending.len() >= self.flush_at {
                Some(now)
            } else {
                self.oldest.map(|t| t + self.interval)
            };
            let msg = match wake {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(t) if t <= now => Err(RecvTimeoutError::Timeout),
                Some(t) => rx.recv_timeout(t - now),
            };
            match msg {
                Ok(Msg::Score(s)) => self.enqueue(s),
                Ok(Msg::Flush(done)) => {
                    self.send(None);
                    let _ = done.send(());
                }
                Ok(Msg::Drain(deadline, done)) => {
                    self.drain(deadline);
                    let _ = done.send(());
                }
                Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    self.drain(Instant::now() + self.config.timeout);
                    return;
                }
                Err(RecvTimeoutError::Timeout) => self.send(None),
            }
        }
    }

    fn enqueue(&mut self, score: Value) {
        if self.pending.len() >= self.max_queued {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            let message = format!(
                "score queue full ({} scores max); dropping scores, counted in ScoreStats::dropped",
                self.max_queued
            );
            tracing::warn!(target: "langfuse", "{message}");
            self.config
                .diagnostics
                .warn_once("score-queue-full", &message);
            return;
        }
        if self.pending.is_empty() {
            self.oldest = Some(Instant::now());
        }
        self.pending.push_back(score);
    }

    /// Retries until everything is delivered or `deadline` passes, then drops what is left.
    fn drain(&mut self, deadline: Instant) {
        while !self.pending.is_empty() && Instant::now() < deadline {
            if let Some(t) = self.backoff.retry_at() {
                let now = Instant::now();
                if t > now {
                    std::thread::sleep((t - now).min(deadline - now));
                    continue;
                }
            }
            self.send(Some(deadline));
        }
        let lost = self.pending.len();
        if lost > 0 {
            self.pending.clear();
            self.counters
                .dropped
                .fetch_add(lost as u64, Ordering::Relaxed);
            let message = format!(
                "dropping {lost} scores not delivered before the shutdown deadline \
                 (counted in ScoreStats::dropped)"
            );
            tracing::warn!(target: "langfuse", "{message}");
            self.config
                .diagnostics
                .warn_once("scores-dropped", &message);
        }
    }

    /// One delivery attempt of everything queued; what may still be delivered stays queued.
    fn send(&mut self, cap: Option<Instant>) {
        if self.pending.is_empty() {
            return;
        }
        let scores: Vec<Value> = self.pending.drain(..).collect();
        self.oldest = None;
        let undelivered = match &self.destination {
            ScoreOutput::Http(sender) => post(sender, &self.config, &self.counters, scores, cap),
            ScoreOutput::File(writer) => {
                write_offline(writer, &self.config, &self.counters, scores);
                Vec::new()
            }
        };
        if undelivered.is_empty() {
            self.backoff.succeeded();
            return;
        }
        // Back to the front, oldest first, then back off.
        for s in undelivered.into_iter().rev() {
            self.pending.push_front(s);
        }
        self.oldest = Some(Instant::now());
        self.backoff.failed(Instant::now(), None);
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
        timestamp: Some(timestamp.unwrap_or_else(|| {
            langfuse_otel_core::time::format_iso_micros(std::time::SystemTime::now())
        })),
        body: EventBody::ScoreCreate(body),
    })
}

/// Appends `pending` to the offline file as `score-create` events.
fn write_offline(
    writer: &OfflineWriter,
    config: &ScoreSettings,
    counters: &ScoreCounters,
    pending: Vec<Value>,
) {
    let started = Instant::now();
    let n = pending.len();
    let events: Vec<IngestionEvent> = pending.into_iter().filter_map(score_event).collect();
    let result = writer.write_events(&events);
    match &result {
        Ok(()) => counters.sent.fetch_add(n as u64, Ordering::Relaxed),
        Err(_) => counters.dropped.fetch_add(n as u64, Ordering::Relaxed),
    };
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

/// Posts `pending` in bodies of at most 1 MB (100 events for ingestion), within the timeout
/// (and `cap`); returns the scores that may still be delivered later. Rejected ones are
/// dropped, counted and reported once.
fn post(
    sender: &JsonBatchSender,
    config: &ScoreSettings,
    counters: &ScoreCounters,
    pending: Vec<Value>,
    cap: Option<Instant>,
) -> Vec<Value> {
    let started = Instant::now();
    let deadline = cap.map_or(started + config.timeout, |c| {
        c.min(started + config.timeout)
    });
    let n = pending.len();
    let mut originals = std::collections::HashMap::with_capacity(n);
    let mut items = Vec::with_capacity(n);
    for (i, score) in pending.into_iter().enumerate() {
        let item = match config.transport {
            ScoreTransport::Scores => score.clone(),
            ScoreTransport::Ingestion => serde_json::json!({
                "id": langfuse_otel_exporter::new_event_id(),
                "type": "score-create",
                "timestamp": langfuse_otel_core::time::format_iso_micros(std::time::SystemTime::now()),
                "body": score.clone(),
            }),
        };
        let id = match config.transport {
            ScoreTransport::Ingestion => item["id"].as_str().unwrap_or_default().to_owned(),
            ScoreTransport::Scores => i.to_string(),
        };
        let json = serde_json::to_string(&item).unwrap_or_default();
        originals.insert(id.clone(), score);
        items.push(JsonItem::new(id, "score", json));
    }
    let report = sender.send(items, deadline);
    counters
        .sent
        .fetch_add(report.delivered.len() as u64, Ordering::Relaxed);
    counters
        .retried
        .fetch_add(u64::from(report.retries), Ordering::Relaxed);
    if !report.rejected.is_empty() {
        counters
            .dropped
            .fetch_add(report.rejected.len() as u64, Ordering::Relaxed);
        let reason = &report.rejected[0].1;
        let message = format!("dropping {} scores: {reason}", report.rejected.len());
        tracing::warn!(target: "langfuse", "{message}");
        config.diagnostics.warn_once("scores-dropped", &message);
    }
    config.diagnostics.debug(|| {
        let url = sender.http().url();
        let outcome = match (&report.last_error, report.last_status) {
            (None, Some(status)) => format!("ok ({status})"),
            (None, None) => "ok".to_string(),
            (Some(e), _) if report.undelivered.is_empty() => format!("failed: {e}"),
            (Some(e), _) => format!("not delivered yet, kept queued: {e}"),
        };
        format!(
            "scores: {n} to {url}: {outcome} in {:.1} ms",
            started.elapsed().as_secs_f64() * 1000.0
        )
    });
    report
        .undelivered
        .into_iter()
        .filter_map(|item| originals.remove(&item.id))
        .collect()
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
