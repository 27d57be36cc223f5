//! `langfuse-bridge import FILE.jsonl --db PATH`: loads a JSON-lines file of Langfuse ingestion
//! events (the SDK's offline file, e.g. what `cargo run --example quickstart` wrote) into the
//! local trace store, so `traces` and `ui` can show it. Importing the same file twice changes
//! nothing (upserts by id).

use std::fs::File;
use std::io::{self, BufReader};
use std::path::PathBuf;

use langfuse_local::Store;
use langfuse_local::ingest::IngestReport;
use langfuse_otel_core::terminal::escape_control as esc;

/// Arguments of `import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// JSON-lines file of ingestion events (`-` for standard input).
    pub file: PathBuf,
    /// The trace store (created when missing).
    #[arg(long, default_value = langfuse_local::DEFAULT_DB_PATH)]
    pub db: PathBuf,
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportCmdError {
    /// The input file cannot be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The store cannot be opened.
    #[error(transparent)]
    Store(#[from] langfuse_local::StoreError),
    /// Reading or parsing the input failed.
    #[error("{path}: {source}")]
    Import {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: langfuse_local::ingest::ImportError,
    },
}

/// Runs `import`, returning what was written.
pub fn run(args: &ImportArgs) -> Result<IngestReport, ImportCmdError> {
    let store = Store::open(&args.db)?;
    let result = if args.file.as_os_str() == "-" {
        store.import_json_lines(io::stdin().lock())
    } else {
        let file = File::open(&args.file).map_err(|source| ImportCmdError::Open {
            path: args.file.clone(),
            source,
        })?;
        store.import_json_lines(BufReader::new(file))
    };
    result.map_err(|source| ImportCmdError::Import {
        path: args.file.clone(),
        source,
    })
}

/// The one-line summary printed after an import (control characters escaped).
pub fn summary(args: &ImportArgs, report: &IngestReport) -> String {
    format!(
        "imported {} trace events, {} observation events and {} scores into {} ({} traces updated{})",
        report.traces,
        report.observations,
        report.scores,
        esc(&args.db.display().to_string()),
        report.touched_traces,
        if report.skipped > 0 {
            format!(", {} events without id skipped", report.skipped)
        } else {
            String::new()
        }
    )
}
