//! The dead-letter file of `serve`: items a destination refused for good (an upstream's 4xx,
//! an event the local store cannot read, a kind the destination cannot carry) are written here
//! with the reason, durably, before the destination's cursor moves past them — never only
//! counted.
//!
//! On disk, beside the spool's segments (`DIR` is `--spool`):
//!
//! | path | content |
//! |---|---|
//! | `DIR/dead-letter/` | mode `0700` |
//! | `DIR/dead-letter/<YYYY-MM-DD>.jsonl` | mode `0600` (lines keep the client's `Authorization`, as the spool does, so that they can be replayed as that client); one JSON object per refused item or unit, appended, `fdatasync`ed before the cursor commit; the day (UTC) it was written |
//!
//! Each line ([`Entry`], format version 1):
//!
//! | key | value |
//! |---|---|
//! | `version` | `1` |
//! | `time` | when it was written (ISO-8601 UTC, ms) |
//! | `destination` | the forwarding destination (`langfuse`, `events`, `otlp`: the spool cursor's name) |
//! | `reason` | `upstream_rejected` (a final 4xx or gRPC error), `store_rejected` (the local store cannot take it), `unsupported_by_destination` (a kind the destination does not carry), `undecodable` (a spooled export that no longer decodes), `server_rules` (an observation the server's schema drops, left out under `--compat server`) |
//! | `detail` | the upstream's answer or the error, clipped to 1024 bytes |
//! | `kind` | what the body is, as a spool record kind: `otlp_protobuf`, `otlp_json`, `ingestion_batch` (`{"batch":[events]}`), `scores` (`[score, …]`) |
//! | `items` | spans, events or scores in it |
//! | `sequences` | `[first, last]`: the spool records of the forwarding round it came from |
//! | `authorization` | the client's `Authorization` header, when it sent one (absent: the configured keys were used) |
//! | `body` | JSON kinds: the body as sent, as a JSON value |
//! | `body_base64` | `otlp_protobuf` (and any body that is not JSON): the bytes, standard base64 |
//! | `kafka` | `consume` only: `{"topic", "partition", "offset"}` of the message it came from |
//!
//! Replaying a line means sending `body` to the destination's endpoint for `kind` (with
//! `authorization` when present), or appending it to the spool as a record of that kind.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use langfuse_otel_core::time::format_iso_millis;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use langfuse_spool::RecordKind;

/// The directory's name inside the spool directory.
pub const DIR_NAME: &str = "dead-letter";
/// The line format's version.
pub const VERSION: u32 = 1;
/// Longest `detail` kept, in bytes.
const MAX_DETAIL: usize = 1024;

/// Why items were refused for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The upstream refused them (a final 4xx, a gRPC error that is not retried).
    UpstreamRejected,
    /// The local store cannot take them.
    StoreRejected,
    /// The destination does not carry this kind (scores to an OTLP collector).
    UnsupportedByDestination,
    /// A spooled export that no longer decodes (only a decoder change gets here).
    Undecodable,
    /// Observations the Langfuse server's schema drops, left out of `--to ingestion`/`local`
    /// under `--compat server` (server parity): kept here, as the translator derived them.
    ServerRules,
}

impl Reason {
    /// The label in the file and in `langfuse_bridge_dead_lettered_items_total{reason}`.
    pub fn label(self) -> &'static str {
        match self {
            Reason::UpstreamRejected => "upstream_rejected",
            Reason::StoreRejected => "store_rejected",
            Reason::UnsupportedByDestination => "unsupported_by_destination",
            Reason::Undecodable => "undecodable",
            Reason::ServerRules => "server_rules",
        }
    }
}

/// Items refused for good, as they were sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub reason: Reason,
    /// The upstream's answer or the error (no secrets).
    pub detail: String,
    /// What `body` is.
    pub kind: RecordKind,
    /// The client's credentials (None: the configured ones).
    pub authorization: Option<String>,
    /// Spans, events or scores in it.
    pub items: usize,
    /// The body as sent (see [`Entry`] for the forms).
    pub body: Vec<u8>,
}

impl fmt::Debug for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refusal")
            .field("reason", &self.reason)
            .field("detail", &self.detail)
            .field("kind", &self.kind)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("items", &self.items)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// One line of a dead-letter file (see the [module docs](self)).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// When it was written (ISO-8601 UTC).
    pub time: String,
    /// The destination (spool cursor name).
    pub destination: String,
    /// [`Reason::label`].
    pub reason: String,
    /// The upstream's answer or the error, clipped.
    pub detail: String,
    /// `otlp_protobuf`, `otlp_json`, `ingestion_batch` or `scores`.
    pub kind: String,
    /// Items in it.
    pub items: u64,
    /// First and last spool sequence of the forwarding round.
    pub sequences: [u64; 2],
    /// The client's `Authorization`, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    /// The body as JSON (JSON kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// The body in base64 (protobuf, or a body that is not JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    /// Where `consume` read it: the Kafka message (absent for `serve`'s entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaPosition>,
}

/// A Kafka message's place (`consume`'s entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaPosition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The message's offset in it.
    pub offset: i64,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("time", &self.time)
            .field("destination", &self.destination)
            .field("reason", &self.reason)
            .field("detail", &self.detail)
            .field("kind", &self.kind)
            .field("items", &self.items)
            .field("sequences", &self.sequences)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl Entry {
    /// The body's bytes as they were sent.
    pub fn body_bytes(&self) -> Option<Vec<u8>> {
        match (&self.body, &self.body_base64) {
            (_, Some(b64)) => base64::engine::general_purpose::STANDARD.decode(b64).ok(),
            (Some(json), None) => serde_json::to_vec(json).ok(),
            (None, None) => None,
        }
    }
}

/// Why a dead-letter file could not be written or read. Messages name files by role.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeadLetterError {
    /// An I/O failure.
    #[error("dead-letter file I/O error: {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A line that is not an [`Entry`].
    #[error("dead-letter line {line} is not an entry: {source}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> DeadLetterError {
    move |source| DeadLetterError::Io { what, source }
}

/// The dead-letter files of one destination.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    dir: PathBuf,
    destination: String,
}

impl DeadLetters {
    /// The files in `spool_dir/dead-letter/` for `destination` (created on the first write).
    pub fn new(spool_dir: &Path, destination: &str) -> DeadLetters {
        DeadLetters {
            dir: spool_dir.join(DIR_NAME),
            destination: destination.to_owned(),
        }
    }

    /// Appends one line per refusal to the day's file and syncs it (and the directory when
    /// the file is new): on `Ok`, the lines survive a crash.
    pub fn write(
        &self,
        refusals: &[Refusal],
        sequences: (u64, u64),
        now_ms: i64,
    ) -> Result<PathBuf, DeadLetterError> {
        self.write_entries(refusals, sequences, None, now_ms)
    }

    /// As [`write`](Self::write), for refusals of one Kafka message (`consume`): the entries
    /// carry its topic, partition and offset, and the offset as both sequences.
    #[cfg(feature = "kafka")]
    pub fn write_kafka(
        &self,
        refusals: &[Refusal],
        position: &KafkaPosition,
        now_ms: i64,
    ) -> Result<PathBuf, DeadLetterError> {
        let offset = u64::try_from(position.offset).unwrap_or(0);
        self.write_entries(refusals, (offset, offset), Some(position), now_ms)
    }

    fn write_entries(
        &self,
        refusals: &[Refusal],
        sequences: (u64, u64),
        position: Option<&KafkaPosition>,
        now_ms: i64,
    ) -> Result<PathBuf, DeadLetterError> {
        let time = format_iso_millis(now_ms);
        let mut lines = Vec::new();
        for refusal in refusals {
            let mut entry = self.entry(refusal, sequences, &time);
            entry.kafka = position.cloned();
            // An Entry is strings, numbers and parsed JSON: it always serializes.
            serde_json::to_writer(&mut lines, &entry)
                .map_err(|e| io_err("serializing an entry")(io::Error::other(e)))?;
            lines.push(b'\n');
        }
        let created = match fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(io_err("creating the directory")(e)),
        };
        if created && let Some(parent) = self.dir.parent() {
            sync_dir(parent).map_err(io_err("syncing the spool directory"))?;
        }
        let path = self.dir.join(format!("{}.jsonl", &time[..10]));
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("opening the file"))?;
        // A file created by hand or by an older version keeps the spool's privacy.
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_err("setting the file's mode"))?;
        file.write_all(&lines).map_err(io_err("writing"))?;
        file.sync_data().map_err(io_err("syncing the file"))?;
        if !existed {
            sync_dir(&self.dir).map_err(io_err("syncing the directory"))?;
        }
        Ok(path)
    }

    fn entry(&self, refusal: &Refusal, sequences: (u64, u64), time: &str) -> Entry {
        let json = match refusal.kind {
            RecordKind::OtlpProtobuf => None,
            _ => serde_json::from_slice::<Value>(&refusal.body).ok(),
        };
        let body_base64 = json
            .is_none()
            .then(|| base64::engine::general_purpose::STANDARD.encode(&refusal.body));
        Entry {
            version: VERSION,
            time: time.to_owned(),
            destination: self.destination.clone(),
            reason: refusal.reason.label().to_owned(),
            detail: clip(&refusal.detail, MAX_DETAIL),
            kind: kind_label(refusal.kind).to_owned(),
            items: refusal.items as u64,
            sequences: [sequences.0, sequences.1],
            authorization: refusal.authorization.clone(),
            body: json,
            body_base64,
            kafka: None,
        }
    }

    /// Reads every entry of one file (blank lines skipped).
    pub fn read(path: &Path) -> Result<Vec<Entry>, DeadLetterError> {
        let file = File::open(path).map_err(io_err("opening the file"))?;
        let mut entries = Vec::new();
        for (i, line) in io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(io_err("reading"))?;
            if line.trim().is_empty() {
                continue;
            }
            entries.push(
                serde_json::from_str(&line).map_err(|source| DeadLetterError::Line {
                    line: i + 1,
                    source,
                })?,
            );
        }
        Ok(entries)
    }

    /// Every entry of every file in `spool_dir/dead-letter/`, oldest file first.
    pub fn read_all(spool_dir: &Path) -> Result<Vec<Entry>, DeadLetterError> {
        let dir = spool_dir.join(DIR_NAME);
        let mut files: Vec<PathBuf> = match fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err("listing the directory")(e)),
        };
        files.sort();
        let mut entries = Vec::new();
        for file in files {
            entries.extend(Self::read(&file)?);
        }
        Ok(entries)
    }
}

/// The `kind` label of a record kind.
pub fn kind_label(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::OtlpProtobuf => "otlp_protobuf",
        RecordKind::OtlpJson => "otlp_json",
        RecordKind::IngestionBatch => "ingestion_batch",
        RecordKind::Scores => "scores",
        RecordKind::OtlpLogsProtobuf => "otlp_logs_protobuf",
        RecordKind::OtlpLogsJson => "otlp_logs_json",
        RecordKind::OtlpMetricsProtobuf => "otlp_metrics_protobuf",
        RecordKind::OtlpMetricsJson => "otlp_metrics_json",
        _ => "unspecified",
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// At most `max` bytes of `s`, cut on a character boundary.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dead-letter-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn lines_are_private_self_describing_and_read_back() {
        let spool = temp("private");
        let letters = DeadLetters::new(&spool, "otlp");
        let refusals = [
            Refusal {
                reason: Reason::UpstreamRejected,
                detail: "x".repeat(5000),
                kind: RecordKind::OtlpProtobuf,
                authorization: Some("Basic c2VjcmV0".into()),
                items: 3,
                body: vec![0x0a, 0x7b, 0xff],
            },
            Refusal {
                reason: Reason::StoreRejected,
                detail: "unknown ingestion event type".into(),
                kind: RecordKind::IngestionBatch,
                authorization: None,
                items: 1,
                body: br#"{"batch":[{"id":"e","type":"nope","body":{}}]}"#.to_vec(),
            },
        ];
        let path = letters.write(&refusals, (4, 5), 0).unwrap();
        assert_eq!(path, spool.join("dead-letter/1970-01-01.jsonl"));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&letters.dir), 0o700);
        let entries = DeadLetters::read_all(&spool).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].kind, "otlp_protobuf");
        assert_eq!(entries[0].body_bytes().unwrap(), vec![0x0a, 0x7b, 0xff]);
        assert_eq!(entries[0].authorization.as_deref(), Some("Basic c2VjcmV0"));
        assert!(entries[0].detail.len() <= MAX_DETAIL + 3);
        assert_eq!(entries[0].sequences, [4, 5]);
        assert_eq!(entries[1].reason, "store_rejected");
        assert_eq!(
            entries[1].body.as_ref().unwrap()["batch"][0]["type"],
            "nope"
        );
        assert!(!format!("{:?}", entries[0]).contains("c2VjcmV0"));
        fs::remove_dir_all(&spool).unwrap();
    }
}

/// The examples of this module's docs, as tests (the module is internal to the crate).
#[cfg(test)]
mod doc_examples {
    #[test]
    fn a_refusal_written_is_read_back_with_its_reason_and_body() {
        use crate::sinks::dead_letter::{DeadLetters, Reason, Refusal};
        use langfuse_spool::RecordKind;

        let dir = std::env::temp_dir().join(format!("dead-letter-doc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap(); // the spool directory
        let letters = DeadLetters::new(&dir, "langfuse");
        let refusal = Refusal {
            reason: Reason::UpstreamRejected,
            detail: "HTTP 400: invalid score".into(),
            kind: RecordKind::Scores,
            authorization: None,
            items: 1,
            body: br#"[{"name":"quality","value":"x"}]"#.to_vec(),
        };
        letters
            .write(&[refusal], (7, 9), 1_767_258_000_000)
            .unwrap();
        let entries = DeadLetters::read(&letters.dir.join("2026-01-01.jsonl")).unwrap();
        assert_eq!(entries[0].reason, "upstream_rejected");
        assert_eq!(entries[0].body.as_ref().unwrap()[0]["name"], "quality");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
