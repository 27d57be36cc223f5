//! `langfuse-bridge dead-letter list|replay SPOOL`: the items `serve` kept in
//! `SPOOL/dead-letter/` because a destination refused them for good
//! ([format](crate::sinks::dead_letter)).
//!
//! - `list` prints one line per entry (time, destination, reason, kind, items, the upstream's
//!   answer); `--json` prints the entries without their bodies and credentials.
//! - `replay` sends every entry again, as the client that sent it (its own `Authorization`,
//!   else the configured keys), to `--to` (default: the destination it was refused by) at
//!   `--upstream`. Legacy ingestion batches replayed `--to langfuse` are converted for
//!   Langfuse v4, as `serve --to langfuse` does. Entries delivered are removed from the files;
//!   entries refused again stay (with the new answer printed). Run it with the bridge stopped,
//!   or accept that entries the bridge appends during the replay are kept as they are.
//!
//! ```text
//! $ langfuse-bridge dead-letter list ./langfuse-bridge-spool
//! 2026-12-07T10:00:00.000Z langfuse upstream_rejected otlp_json 4 items: 400 refused …
//! 1 entries, 4 items
//! $ langfuse-bridge dead-letter replay ./langfuse-bridge-spool --upstream https://cloud.langfuse.com
//! replayed 1 entries (4 items); 0 entries still refused
//! ```

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use langfuse_otel_core::record::IngestionEvent;
use serde_json::{Value, json};

use crate::serve::config::{Destination, ServeConfig};
use crate::shape::{Event, Shape, Unit, legacy_units};
use crate::sinks::Sink;
use crate::sinks::dead_letter::{DIR_NAME, DeadLetters, Entry};

/// Arguments of `dead-letter`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeadLetterArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DeadLetterCommand,
}

/// The `dead-letter` commands.
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum DeadLetterCommand {
    /// List the entries of `SPOOL/dead-letter/`.
    List(ListArgs),
    /// Send the entries again; delivered ones are removed.
    Replay(ReplayArgs),
}

/// Arguments of `dead-letter list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// The spool directory (`serve --spool`).
    #[arg(value_name = "SPOOL")]
    pub dir: PathBuf,
    /// One JSON object per entry (without body and credentials).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `dead-letter replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The spool directory (`serve --spool`).
    #[arg(value_name = "SPOOL")]
    pub dir: PathBuf,
    /// Where to send: langfuse, ingestion or otlp [default: the destination that refused it].
    #[arg(long, value_name = "DEST")]
    pub to: Option<Destination>,
    /// Where and as whom (the keys serve entries without the client's own credentials).
    #[command(flatten)]
    pub upstream: crate::serve::config::UpstreamArgs,
    /// Seconds one entry may take to send (retries included).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
}

/// Why a dead-letter command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeadLetterCmdError {
    /// The files could not be read or rewritten.
    #[error(transparent)]
    File(#[from] crate::sinks::dead_letter::DeadLetterError),
    /// The destination could not be set up.
    #[error(transparent)]
    Config(#[from] crate::serve::config::ConfigError),
    /// A file could not be rewritten.
    #[error("cannot rewrite '{}': {source}", path.display())]
    Rewrite {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join(DIR_NAME))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The report of `dead-letter list`.
pub fn list(args: &ListArgs) -> Result<String, DeadLetterCmdError> {
    let entries = DeadLetters::read_all(&args.dir)?;
    let mut out = String::new();
    let mut items = 0;
    for e in &entries {
        items += e.items;
        if args.json {
            let line = json!({"time": e.time, "destination": e.destination, "reason": e.reason,
                "kind": e.kind, "items": e.items, "sequences": e.sequences, "detail": e.detail});
            let _ = writeln!(out, "{line}");
        } else {
            let detail: String = e.detail.chars().take(160).collect();
            let _ = writeln!(
                out,
                "{} {} {} {} {} items: {}",
                e.time,
                e.destination,
                e.reason,
                e.kind,
                e.items,
                langfuse_otel_core::terminal::escape_control(&detail)
            );
        }
    }
    if !args.json {
        let _ = writeln!(out, "{} entries, {items} items", entries.len());
    }
    Ok(out)
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Entries delivered (and removed).
    pub delivered: usize,
    /// Their items.
    pub items: u64,
    /// Entries refused again, with the new answer.
    pub refused: Vec<String>,
}

impl Replayed {
    /// One line per entry refused again, then the summary.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for r in &self.refused {
            let _ = writeln!(
                out,
                "still refused: {}",
                langfuse_otel_core::terminal::escape_control(r)
            );
        }
        let _ = writeln!(
            out,
            "replayed {} entries ({} items); {} entries still refused",
            self.delivered,
            self.items,
            self.refused.len()
        );
        out
    }
}

fn destination_of(entry: &Entry) -> Destination {
    match entry.destination.as_str() {
        "events" => Destination::Ingestion,
        "otlp" => Destination::Otlp,
        _ => Destination::Langfuse,
    }
}

/// The units an entry becomes for `shape`.
fn units(entry: &Entry, shape: Shape) -> Vec<Unit> {
    let Some(body) = entry.body_bytes() else {
        return Vec::new();
    };
    let auth = entry.authorization.clone();
    match entry.kind.as_str() {
        "otlp_protobuf" | "otlp_json" => vec![Unit::Otlp {
            signal: crate::sources::receive::Signal::Traces,
            body,
            content_type: if entry.kind == "otlp_json" {
                "application/json"
            } else {
                "application/x-protobuf"
            },
            authorization: auth,
            spans: entry.items as usize,
        }],
        "scores" => match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Array(scores)) => vec![Unit::Scores {
                scores,
                authorization: auth,
            }],
            Ok(one) => vec![Unit::Scores {
                scores: vec![one],
                authorization: auth,
            }],
            Err(_) => Vec::new(),
        },
        "ingestion_batch" => {
            let events: Vec<Value> = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("batch").and_then(Value::as_array).cloned())
                .unwrap_or_default();
            match shape {
                // Langfuse v4 takes legacy ingestion as spans and scores.
                Shape::Langfuse(_) => {
                    let parsed: Vec<IngestionEvent> = events
                        .into_iter()
                        .filter_map(|e| serde_json::from_value(e).ok())
                        .collect();
                    legacy_units(&parsed, auth)
                }
                _ => vec![Unit::Events {
                    events: events.into_iter().map(Event::Sent).collect(),
                    authorization: auth,
                }],
            }
        }
        _ => Vec::new(),
    }
}

/// Replays every entry (see the [module docs](self)).
pub fn replay(args: &ReplayArgs) -> Result<Replayed, DeadLetterCmdError> {
    let mut sinks: Vec<(Destination, Box<dyn Sink>)> = Vec::new();
    let mut result = Replayed::default();
    for path in files(&args.dir) {
        let entries = DeadLetters::read(&path)?;
        let mut keep: Vec<Entry> = Vec::new();
        for entry in &entries {
            let to = args.to.unwrap_or_else(|| destination_of(entry));
            if !sinks.iter().any(|(d, _)| *d == to) {
                let mut config = ServeConfig {
                    to: Some(to),
                    upstream: args.upstream.upstream.clone(),
                    public_key: args.upstream.keys.public_key.clone(),
                    secret_key: args.upstream.secret_key(),
                    ..ServeConfig::default()
                };
                config.upstream_timeout_secs = args.timeout.clamp(1, 3600);
                sinks.push((to, crate::sinks::from_config(&config)?));
            }
            let Some((_, sink)) = sinks.iter_mut().find(|(d, _)| *d == to) else {
                continue;
            };
            let units = units(entry, sink.shape());
            let mut failure = units
                .is_empty()
                .then(|| format!("a {} entry cannot be replayed to {to:?}", entry.kind));
            for mut unit in units {
                let sent = sink.send(
                    &mut unit,
                    Instant::now() + Duration::from_secs(args.timeout.max(1)),
                );
                if let Some(r) = sent.refused.first() {
                    failure = Some(r.detail.clone());
                } else if let Some(retry) = sent.retry {
                    failure = Some(retry.reason);
                }
                if failure.is_some() {
                    break;
                }
            }
            match failure {
                None => {
                    result.delivered += 1;
                    result.items += entry.items;
                }
                Some(answer) => {
                    result.refused.push(format!(
                        "{} {} {} items: {answer}",
                        entry.time, entry.kind, entry.items
                    ));
                    keep.push(entry.clone());
                }
            }
        }
        // Entries appended while replaying are kept as they are.
        let now = DeadLetters::read(&path)?;
        keep.extend(now.into_iter().skip(entries.len()));
        rewrite(&path, &keep)?;
    }
    Ok(result)
}

/// Replaces `path` by `entries` (removed when none): a new file renamed over it.
fn rewrite(path: &Path, entries: &[Entry]) -> Result<(), DeadLetterCmdError> {
    let err = |source| DeadLetterCmdError::Rewrite {
        path: path.to_owned(),
        source,
    };
    if entries.is_empty() {
        return fs::remove_file(path).map_err(err);
    }
    let tmp = path.with_extension("jsonl.tmp");
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    for e in entries {
        let line = serde_json::to_string(e).map_err(|e| err(std::io::Error::other(e)))?;
        writeln!(file, "{line}").map_err(err)?;
    }
    file.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}
