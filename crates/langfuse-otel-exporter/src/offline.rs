//! The offline default: Langfuse ingestion events as JSON lines in a local file, and a
//! readable trace tree rendered from such a file.
//!
//! Each line is one ingestion event exactly as it would be sent to
//! `POST /api/public/ingestion` (`{"id","type","timestamp","body"}`), so a file can be replayed
//! to a Langfuse server later. Besides the exporter's span events, [`OfflineWriter`] appends
//! other events, such as the `score-create` events of the `langfuse-otel` client; the rendered
//! tree shows scores under their trace and observation; text from the events (names, ids,
//! models, comments) is shown with its control characters escaped
//! ([`escape_control`](langfuse_otel_core::terminal::escape_control)), so a span name cannot
//! drive the terminal that prints the tree. A file the exporter creates is readable by its
//! owner only (`0600`): it holds every prompt and answer.
//!
//! ```
//! use langfuse_otel_exporter::offline::render_trace_tree;
//!
//! let lines = r#"{"id":"1","type":"trace-create","timestamp":"2026-01-01T00:00:00.000Z","body":{"id":"t1","name":"rag"}}
//! {"id":"2","type":"span-create","timestamp":"2026-01-01T00:00:00.000Z","body":{"id":"a","traceId":"t1","name":"pipeline","startTime":"2026-01-01T00:00:00.000Z","endTime":"2026-01-01T00:00:01.500Z"}}
//! {"id":"3","type":"generation-create","timestamp":"2026-01-01T00:00:00.000Z","body":{"id":"b","traceId":"t1","parentObservationId":"a","name":"answer","model":"gpt-4o-mini","startTime":"2026-01-01T00:00:00.200Z","endTime":"2026-01-01T00:00:01.200Z","usageDetails":{"input":120,"output":40,"total":160}}}
//! "#;
//! let tree = render_trace_tree(lines.as_bytes()).unwrap();
//! assert_eq!(tree, "trace rag (t1)\n\
//!                   └─ pipeline [span] 1.50 s\n   \
//!                      └─ answer [generation] 1.00 s model=gpt-4o-mini usage=input:120 output:40 total:160\n");
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use langfuse_otel_core::record::IngestionEvent;
use langfuse_otel_core::terminal::{draw_tree, escape_control as esc};
use langfuse_otel_core::time::parse_iso_with_offset;
use langfuse_otel_core::translate::Translator;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::SpanData;
use serde_json::{Map, Value};

use crate::config::ConfigError;
use crate::ingestion::translate_events as translate_for_file;
use crate::stats::Stats;

/// Why a trace file cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// Reading failed.
    #[error("cannot read trace file: {0}")]
    Io(#[from] std::io::Error),
    /// A line is not a JSON object.
    #[error("line {line} is not an ingestion event: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// The parse error.
        reason: String,
    },
}

#[derive(Debug)]
pub(crate) struct FileSink {
    path: PathBuf,
    out: Mutex<BufWriter<File>>,
    translator: Mutex<Translator>,
}

impl FileSink {
    pub(crate) fn open(path: PathBuf) -> Result<Self, ConfigError> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        // The events hold prompts and answers: private to the owner, like the bridge's files.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(|e| ConfigError::File {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(FileSink {
            path,
            out: Mutex::new(BufWriter::new(file)),
            translator: Mutex::new(Translator::new()),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn export(
        &self,
        spans: &[SpanData],
        resource: &Resource,
        stats: &Stats,
    ) -> OTelSdkResult {
        let events = translate_for_file(&self.translator, spans, resource);
        let observations = events
            .iter()
            .filter(|e| crate::ingestion::is_span_event(e))
            .count() as u64;
        let result = self
            .out
            .lock()
            .map_err(|_| OTelSdkError::InternalFailure("offline file lock poisoned".into()))
            .and_then(|mut out| {
                for ev in &events {
                    out.write_all(ev.json.as_bytes())
                        .and_then(|()| out.write_all(b"\n"))
                        .map_err(|e| io_error(&self.path, &e))?;
                }
                out.flush().map_err(|e| io_error(&self.path, &e))
            });
        match result {
            Ok(()) => {
                stats.add_exported(observations);
                stats.add_sent_events(events.len() as u64);
                Ok(())
            }
            Err(e) => {
                stats.add_dropped(observations);
                Err(e)
            }
        }
    }

    /// Appends `events` as lines, all under one lock, then flushes.
    fn write_events(&self, events: &[IngestionEvent]) -> std::io::Result<()> {
        let mut text = Vec::new();
        for ev in events {
            serde_json::to_writer(&mut text, ev)?;
            text.push(b'\n');
        }
        let mut out = self
            .out
            .lock()
            .map_err(|_| std::io::Error::other("offline file lock poisoned"))?;
        out.write_all(&text)?;
        out.flush()
    }

    pub(crate) fn flush(&self) -> OTelSdkResult {
        match self.out.lock() {
            Ok(mut out) => out.flush().map_err(|e| io_error(&self.path, &e)),
            Err(_) => Err(OTelSdkError::InternalFailure(
                "offline file lock poisoned".into(),
            )),
        }
    }
}

/// Appends ingestion events (such as `score-create`) to an offline file, one JSON line each.
///
/// Get the writer of an exporter's own file with
/// [`LangfuseExporter::offline_writer`](crate::LangfuseExporter::offline_writer): its lines
/// and the exporter's then never interleave. [`OfflineWriter::open`] opens any file for
/// appending.
///
/// ```
/// use langfuse_otel_core::record::{EventBody, IngestionEvent, ScoreBody};
/// use langfuse_otel_exporter::offline::{OfflineWriter, render_trace_file};
///
/// let path = std::env::temp_dir().join(format!("lf-writer-doc-{}.jsonl", std::process::id()));
/// # std::fs::remove_file(&path).ok();
/// let writer = OfflineWriter::open(&path).unwrap();
/// let score = ScoreBody {
///     name: "helpfulness".into(),
///     value: serde_json::json!(0.9),
///     trace_id: Some("t1".into()),
///     comment: Some("auto-evaluated".into()),
///     ..ScoreBody::default()
/// };
/// writer.write_events(&[IngestionEvent::new(EventBody::ScoreCreate(score))]).unwrap();
/// assert_eq!(
///     render_trace_file(&path).unwrap(),
///     "trace (t1)\n└─ score helpfulness = 0.9 (auto-evaluated)\n"
/// );
/// # std::fs::remove_file(path).ok();
/// ```
#[derive(Debug, Clone)]
pub struct OfflineWriter {
    sink: Arc<FileSink>,
}

impl OfflineWriter {
    /// Opens `path` for appending (created if missing).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, ConfigError> {
        Ok(OfflineWriter {
            sink: Arc::new(FileSink::open(path.into())?),
        })
    }

    pub(crate) fn from_sink(sink: Arc<FileSink>) -> Self {
        OfflineWriter { sink }
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        self.sink.path()
    }

    /// Appends `events`, one JSON line each, and flushes them to the file.
    pub fn write_events(&self, events: &[IngestionEvent]) -> std::io::Result<()> {
        self.sink.write_events(events)
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> OTelSdkError {
    OTelSdkError::InternalFailure(format!("writing {}: {e}", path.display()))
}

/// Renders the trace file at `path` (see [`render_trace_tree`]).
pub fn render_trace_file(path: impl AsRef<Path>) -> Result<String, OfflineError> {
    render_trace_tree(BufReader::new(File::open(path)?))
}

#[derive(Debug, Default)]
struct Observation {
    kind: String,
    body: Map<String, Value>,
}

/// Renders the traces of a JSON-lines file of ingestion events as indented trees: one
/// `trace <name> (<id>)` line per trace, then its observations nested by parent, in start
/// order, each with its type, duration, model and usage when present. Update events are
/// merged into their observation. Scores (`score-create`) are listed first under the
/// observation they score, else under their trace, as `score <name> = <value> (<comment>)`
/// (a later event with the same score id replaces an earlier one); scores of no trace come
/// last under `scores without a trace`. Empty lines are skipped.
pub fn render_trace_tree(reader: impl BufRead) -> Result<String, OfflineError> {
    let mut trace_order: Vec<String> = Vec::new();
    let mut trace_names: HashMap<String, String> = HashMap::new();
    let mut observations: HashMap<String, Observation> = HashMap::new();
    let mut obs_order: Vec<String> = Vec::new();
    let mut scores: HashMap<String, Map<String, Value>> = HashMap::new();
    let mut score_order: Vec<String> = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let ev: Value = serde_json::from_str(&line).map_err(|e| OfflineError::Line {
            line: i + 1,
            reason: e.to_string(),
        })?;
        let kind = ev.get("type").and_then(Value::as_str).unwrap_or_default();
        let Some(body) = ev.get("body").and_then(Value::as_object) else {
            continue;
        };
        let id = body.get("id").and_then(Value::as_str).unwrap_or_default();
        if kind == "trace-create" {
            if !trace_names.contains_key(id) {
                trace_order.push(id.to_string());
                trace_names.insert(id.to_string(), String::new());
            }
            if let Some(name) = body.get("name").and_then(Value::as_str) {
                trace_names.insert(id.to_string(), name.to_string());
            }
            continue;
        }
        let Some(obs_kind) = kind
            .strip_suffix("-create")
            .or(kind.strip_suffix("-update"))
        else {
            continue;
        };
        if obs_kind == "score" {
            // Scores without an id cannot be updated: each line is its own score.
            let key = if id.is_empty() {
                format!("#{i}")
            } else {
                id.to_string()
            };
            if scores.insert(key.clone(), body.clone()).is_none() {
                score_order.push(key);
            }
            continue;
        }
        let entry = observations.entry(id.to_string()).or_insert_with(|| {
            obs_order.push(id.to_string());
            Observation::default()
        });
        if kind.ends_with("-create") || entry.kind.is_empty() {
            entry.kind = obs_kind.to_string();
        }
        for (k, v) in body {
            if !v.is_null() {
                entry.body.insert(k.clone(), v.clone());
            }
        }
    }
    // Traces only seen through observations still get a heading.
    for id in &obs_order {
        if let Some(t) = observations[id].body.get("traceId").and_then(Value::as_str)
            && !trace_names.contains_key(t)
        {
            trace_order.push(t.to_string());
            trace_names.insert(t.to_string(), String::new());
        }
    }
    // Scores go under their observation when it is in the file, else under their trace.
    let mut attached: HashMap<(String, Option<String>), Vec<String>> = HashMap::new();
    let mut traceless: Vec<String> = Vec::new();
    for key in &score_order {
        let b = &scores[key];
        let str_of = |k: &str| b.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
        let line = score_text(b);
        if let Some(obs) = str_of("observationId").filter(|o| observations.contains_key(*o)) {
            let trace = observations[obs]
                .body
                .get("traceId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            attached
                .entry((trace, Some(obs.to_string())))
                .or_default()
                .push(line);
        } else if let Some(trace) = str_of("traceId") {
            if !trace_names.contains_key(trace) {
                trace_order.push(trace.to_string());
                trace_names.insert(trace.to_string(), String::new());
            }
            attached
                .entry((trace.to_string(), None))
                .or_default()
                .push(line);
        } else {
            traceless.push(line);
        }
    }
    let mut children: HashMap<(String, Option<String>), Vec<&String>> = HashMap::new();
    for id in &obs_order {
        let b = &observations[id].body;
        let trace = b
            .get("traceId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let parent = b
            .get("parentObservationId")
            .and_then(Value::as_str)
            .filter(|p| observations.contains_key(*p))
            .map(str::to_string);
        children.entry((trace, parent)).or_default().push(id);
    }
    for list in children.values_mut() {
        list.sort_by_key(|id| start_ms(&observations[*id]).unwrap_or(i64::MAX));
    }
    let mut out = String::new();
    for trace in &trace_order {
        let name = &trace_names[trace];
        if name.is_empty() {
            let _ = writeln!(out, "trace ({})", esc(trace));
        } else {
            let _ = writeln!(out, "trace {} ({})", esc(name), esc(trace));
        }
        let roots = children
            .get(&(trace.clone(), None))
            .cloned()
            .unwrap_or_default();
        let tree = Tree {
            observations: &observations,
            children: &children,
            scores: &attached,
            trace,
        };
        let trace_scores = attached
            .get(&(trace.clone(), None))
            .map_or(&[][..], Vec::as_slice);
        out.push_str(&draw_tree(&tree.rows(trace_scores, &roots)));
    }
    if !traceless.is_empty() {
        out.push_str("scores without a trace\n");
        let rows: Vec<(usize, &String)> = traceless.iter().map(|line| (0, line)).collect();
        out.push_str(&draw_tree(&rows));
    }
    Ok(out)
}

/// `score <name> = <value> (<comment>)`, plus the session or dataset run it scores.
fn score_text(body: &Map<String, Value>) -> String {
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)");
    let value = match body.get("value") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "?".to_string(),
    };
    let mut line = format!("score {} = {}", esc(name), esc(&value));
    if let Some(c) = body.get("comment").and_then(Value::as_str) {
        let _ = write!(line, " ({})", esc(c));
    }
    for (key, label) in [("sessionId", "session"), ("datasetRunId", "dataset run")] {
        if let Some(v) = body.get(key).and_then(Value::as_str) {
            let _ = write!(line, " {label}={}", esc(v));
        }
    }
    line
}

fn start_ms(o: &Observation) -> Option<i64> {
    o.body
        .get("startTime")
        .and_then(Value::as_str)
        .and_then(parse_iso_with_offset)
}

/// One trace's observations, their children and the scores attached to them.
struct Tree<'a> {
    observations: &'a HashMap<String, Observation>,
    children: &'a HashMap<(String, Option<String>), Vec<&'a String>>,
    scores: &'a HashMap<(String, Option<String>), Vec<String>>,
    trace: &'a str,
}

impl Tree<'_> {
    /// The rows of one trace's tree in pre-order: `scores` first, then the observations
    /// `roots` with their scores and subtrees (iterative: any depth).
    fn rows(&self, scores: &[String], roots: &[&String]) -> Vec<(usize, String)> {
        let mut rows: Vec<(usize, String)> = scores.iter().map(|s| (0, s.clone())).collect();
        let mut stack: Vec<(&String, usize)> = roots.iter().rev().map(|id| (*id, 0)).collect();
        while let Some((id, depth)) = stack.pop() {
            rows.push((depth, self.observation_text(id)));
            let key = (self.trace.to_string(), Some(id.clone()));
            if let Some(scores) = self.scores.get(&key) {
                rows.extend(scores.iter().map(|s| (depth + 1, s.clone())));
            }
            if let Some(kids) = self.children.get(&key) {
                stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
            }
        }
        rows
    }

    /// One observation's row: name, type, duration, model, usage, level.
    fn observation_text(&self, id: &String) -> String {
        let mut out = String::new();
        let o = &self.observations[id];
        let name = o
            .body
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)");
        let _ = write!(out, "{} [{}]", esc(name), esc(&o.kind));
        let end = o
            .body
            .get("endTime")
            .and_then(Value::as_str)
            .and_then(parse_iso_with_offset);
        if let (Some(s), Some(e)) = (start_ms(o), end) {
            let ms = e - s;
            if ms >= 1000 {
                let _ = write!(out, " {:.2} s", ms as f64 / 1000.0);
            } else {
                let _ = write!(out, " {ms} ms");
            }
        }
        if let Some(model) = o.body.get("model").and_then(Value::as_str) {
            let _ = write!(out, " model={}", esc(model));
        }
        if let Some(usage) = o.body.get("usageDetails").and_then(Value::as_object)
            && !usage.is_empty()
        {
            let sorted: BTreeMap<&String, &Value> = usage.iter().collect();
            let parts: Vec<String> = ["input", "output", "total"]
                .iter()
                .filter_map(|k| usage.get(*k).map(|v| format!("{k}:{v}")))
                .chain(
                    sorted
                        .iter()
                        .filter(|(k, _)| !["input", "output", "total"].contains(&k.as_str()))
                        .map(|(k, v)| format!("{}:{v}", esc(k))),
                )
                .collect();
            let _ = write!(out, " usage={}", parts.join(" "));
        }
        if let Some(level) = o.body.get("level").and_then(Value::as_str)
            && level != "DEFAULT"
        {
            let _ = write!(out, " level={}", esc(level));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_merge_and_unknown_parents_become_roots() {
        let lines = r#"{"type":"span-create","body":{"id":"a","traceId":"t","name":"x","parentObservationId":"gone"}}
{"type":"span-update","body":{"id":"a","name":"renamed"}}
"#;
        let tree = render_trace_tree(lines.as_bytes()).unwrap();
        assert_eq!(tree, "trace (t)\n└─ renamed [span]\n");
    }

    #[test]
    fn scores_show_under_their_observation_else_their_trace() {
        let lines = r#"{"type":"trace-create","body":{"id":"t","name":"bot"}}
{"type":"span-create","body":{"id":"a","traceId":"t","name":"root","startTime":"2026-01-01T00:00:00Z"}}
{"type":"generation-create","body":{"id":"b","traceId":"t","parentObservationId":"a","name":"llm","startTime":"2026-01-01T00:00:01Z"}}
{"type":"score-create","body":{"id":"s1","traceId":"t","name":"helpfulness","value":0.9,"comment":"auto"}}
{"type":"score-create","body":{"id":"s2","traceId":"t","observationId":"b","name":"relevance","value":0.5}}
{"type":"score-create","body":{"id":"s2","traceId":"t","observationId":"b","name":"relevance","value":0.87}}
{"type":"score-create","body":{"id":"s3","traceId":"t","observationId":"gone","name":"tone","value":"friendly"}}
{"type":"score-create","body":{"id":"s4","traceId":"u","name":"late","value":1}}
{"type":"score-create","body":{"id":"s5","sessionId":"chat-7","name":"csat","value":4}}
"#;
        let tree = render_trace_tree(lines.as_bytes()).unwrap();
        let want = [
            "trace bot (t)",
            "├─ score helpfulness = 0.9 (auto)",
            "├─ score tone = friendly",
            "└─ root [span]",
            "   └─ llm [generation]",
            "      └─ score relevance = 0.87",
            "trace (u)",
            "└─ score late = 1",
            "scores without a trace",
            "└─ score csat = 4 session=chat-7",
        ];
        assert_eq!(tree.lines().collect::<Vec<_>>(), want, "{tree}");
    }

    #[test]
    fn control_characters_from_events_are_escaped() {
        let lines = r#"{"type":"trace-create","body":{"id":"t\u001b]0;x\u0007","name":"a\u001b[2Jb"}}
{"type":"span-create","body":{"id":"a","traceId":"t\u001b]0;x\u0007","name":"n\r\nforged [span]","model":"m\u009b1m"}}
{"type":"score-create","body":{"id":"s","traceId":"t\u001b]0;x\u0007","name":"q\u0007","value":"v\u001b","comment":"c\n"}}
"#;
        let tree = render_trace_tree(lines.as_bytes()).unwrap();
        assert!(
            !tree.chars().any(|c| c.is_control() && c != '\n'),
            "{tree:?}"
        );
        assert_eq!(tree.lines().count(), 3, "{tree}");
        assert!(tree.contains("n\\r\\nforged [span]"), "{tree}");
        assert!(tree.contains("a\\u{1b}[2Jb"), "{tree}");
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let err = render_trace_tree("\n{}\nnot json\n".as_bytes()).unwrap_err();
        assert!(matches!(err, OfflineError::Line { line: 3, .. }));
    }
}
