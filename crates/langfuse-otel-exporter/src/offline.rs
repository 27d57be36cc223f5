//! The offline default: Langfuse ingestion events as JSON lines in a local file, and a
//! readable trace tree rendered from such a file.
//!
//! Each line is one ingestion event exactly as it would be sent to
//! `POST /api/public/ingestion` (`{"id","type","timestamp","body"}`), so a file can be replayed
//! to a Langfuse server later.
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
use std::sync::Mutex;

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
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| ConfigError::File {
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
        let observations = events.iter().filter(|e| e.is_observation).count() as u64;
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

    pub(crate) fn flush(&self) -> OTelSdkResult {
        match self.out.lock() {
            Ok(mut out) => out.flush().map_err(|e| io_error(&self.path, &e)),
            Err(_) => Err(OTelSdkError::InternalFailure(
                "offline file lock poisoned".into(),
            )),
        }
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
/// merged into their observation. Empty lines are skipped.
pub fn render_trace_tree(reader: impl BufRead) -> Result<String, OfflineError> {
    let mut trace_order: Vec<String> = Vec::new();
    let mut trace_names: HashMap<String, String> = HashMap::new();
    let mut observations: HashMap<String, Observation> = HashMap::new();
    let mut obs_order: Vec<String> = Vec::new();
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
            let _ = writeln!(out, "trace ({trace})");
        } else {
            let _ = writeln!(out, "trace {name} ({trace})");
        }
        let roots = children
            .get(&(trace.clone(), None))
            .cloned()
            .unwrap_or_default();
        render_level(&mut out, &roots, "", &observations, &children, trace);
    }
    Ok(out)
}

fn start_ms(o: &Observation) -> Option<i64> {
    o.body
        .get("startTime")
        .and_then(Value::as_str)
        .and_then(parse_iso_with_offset)
}

fn render_level(
    out: &mut String,
    ids: &[&String],
    prefix: &str,
    observations: &HashMap<String, Observation>,
    children: &HashMap<(String, Option<String>), Vec<&String>>,
    trace: &str,
) {
    for (i, id) in ids.iter().enumerate() {
        let last = i + 1 == ids.len();
        let o = &observations[*id];
        let name = o
            .body
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)");
        let _ = write!(
            out,
            "{prefix}{} {name} [{}]",
            if last { "└─" } else { "├─" },
            o.kind
        );
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
            let _ = write!(out, " model={model}");
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
                        .map(|(k, v)| format!("{k}:{v}")),
                )
                .collect();
            let _ = write!(out, " usage={}", parts.join(" "));
        }
        if let Some(level) = o.body.get("level").and_then(Value::as_str)
            && level != "DEFAULT"
        {
            let _ = write!(out, " level={level}");
        }
        out.push('\n');
        let key = (trace.to_string(), Some((*id).clone()));
        if let Some(kids) = children.get(&key) {
            let next = format!("{prefix}{}", if last { "   " } else { "│  " });
            render_level(out, kids, &next, observations, children, trace);
        }
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
    fn bad_lines_are_reported_with_their_number() {
        let err = render_trace_tree("\n{}\nnot json\n".as_bytes()).unwrap_err();
        assert!(matches!(err, OfflineError::Line { line: 3, .. }));
    }
}
