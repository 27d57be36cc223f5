//! # langfuse-local
//!
//! Local mode in one home: the trace store, the filters parsed from text ([`params`]), and the
//! web trace viewer (`viewer`, feature `viewer`: an axum router the bridge serves at `/` of
//! `serve --to local` and with `langfuse-bridge ui`).
//!
//! The store is an embedded trace store for local mode: Langfuse ingestion events in, the traces,
//! observations and scores Langfuse would show out, in one SQLite file (bundled SQLite, no
//! system library, WAL journal so a viewer reads while an ingester writes).
//!
//! - **Writes** ([`Store::ingest`]) take the ingestion events of the core's record model
//!   ([`IngestionEvent`]), one transaction per batch. They are idempotent upserts by id — a
//!   replay never duplicates — and merge like Langfuse's ingestion worker (see [`ingest`]).
//! - **Roll-ups** per trace (latency, tokens, cost, error and observation counts) are kept in the
//!   trace's row by every batch that touches it, so list queries read one row per trace.
//! - **Cost**: a generation without cost but with usage and a known model gets an estimate
//!   from the bundled [`price`] table, marked `costEstimated`.
//! - **Queries** ([`Store::list_traces`], [`Store::trace`], [`Store::sessions`], [`Store::users`])
//!   return serializable views whose JSON uses Langfuse's public API field names (camelCase).
//! - **Files** ([`file`](mod@file)): the database and its `-wal`/`-shm` are readable by their owner only
//!   (`0600`); a file deleted or replaced under the open store is detected before a batch is
//!   committed ([`StoreError::FileDeleted`], [`StoreError::FileReplaced`]), never written into
//!   the void.
//!
//! ```
//! use langfuse_otel_core::record::IngestionEvent;
//! use langfuse_local::{Store, TraceFilter};
//!
//! let dir = std::env::temp_dir().join(format!("langfuse-local-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let store = Store::open(dir.join("traces.db")).unwrap();
//! let events: Vec<IngestionEvent> = [
//!     r#"{"type":"trace-create","timestamp":"2026-01-01T00:00:00.000Z","body":{"id":"t1","name":"rag","userId":"u1","tags":["b","a"]}}"#,
//!     r#"{"type":"generation-create","body":{"id":"o1","traceId":"t1","name":"answer","model":"gpt-4o-mini","startTime":"2026-01-01T00:00:00.000Z","endTime":"2026-01-01T00:00:01.500Z","usageDetails":{"input":1000,"output":200}}}"#,
//! ]
//! .iter()
//! .map(|line| serde_json::from_str(line).unwrap())
//! .collect();
//! store.ingest(&events).unwrap();
//! store.ingest(&events).unwrap(); // a replay changes nothing
//!
//! let traces = store.list_traces(&TraceFilter::default()).unwrap();
//! assert_eq!(traces.len(), 1);
//! assert_eq!(traces[0].latency, Some(1.5));
//! assert_eq!(traces[0].tags, ["a", "b"]);
//! assert!(traces[0].cost_estimated);
//! let trace = store.trace("t1").unwrap().unwrap();
//! assert_eq!(trace.observations[0].model.as_deref(), Some("gpt-4o-mini"));
//! # std::fs::remove_dir_all(&dir).ok();
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod file;
pub mod ingest;
pub mod params;
pub mod price;
pub mod query;
mod schema;
#[cfg(feature = "viewer")]
pub mod viewer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use langfuse_otel_core::record::IngestionEvent;
use rusqlite::Connection;

pub use ingest::IngestReport;
pub use query::{
    MAX_FILTER_CONDITIONS, ObservationView, ScoreCondition, ScoreOp, ScoreView, SessionSummary,
    SortKey, TraceDetail, TraceFilter, TraceSummary, UserSummary,
};

/// The default database file of local mode.
pub const DEFAULT_DB_PATH: &str = "langfuse-traces.db";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error (opening, a full disk, a corrupt file, …).
    #[error("trace store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The file was written by a newer version of this crate.
    #[error(
        "trace store {path}: schema version {found} is newer than this program's ({supported})"
    )]
    SchemaVersion {
        /// The database file.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The version this crate writes.
        supported: i64,
    },
    /// An internal lock was poisoned by a panic in another thread.
    #[error("trace store {0}: lock poisoned")]
    Poisoned(PathBuf),
    /// The database file cannot be created, inspected or made private.
    #[error("trace store {path}: {source}")]
    File {
        /// The database file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database file was deleted while the store had it open: nothing is committed into
    /// the unlinked file (it would vanish with the process).
    #[error(
        "trace store {path}: the database file was deleted while in use; nothing more is written \
         (restart to create a new one)"
    )]
    FileDeleted {
        /// The database file.
        path: PathBuf,
    },
    /// Another file took the database file's path while the store had it open.
    #[error(
        "trace store {path}: the database file was replaced by another file while in use; \
         nothing more is written (restart to open the new one)"
    )]
    FileReplaced {
        /// The database file.
        path: PathBuf,
    },
    /// A trace filter with more tag and score conditions than [`MAX_FILTER_CONDITIONS`].
    #[error("a trace filter holds {found} tag and score conditions; at most {limit} are allowed")]
    TooManyConditions {
        /// Conditions in the filter.
        found: usize,
        /// The bound.
        limit: usize,
    },
}

impl StoreError {
    /// Whether the database file was deleted or replaced under the open store (writing
    /// cannot go on until the store is opened again).
    pub fn is_file_lost(&self) -> bool {
        matches!(
            self,
            StoreError::FileDeleted { .. } | StoreError::FileReplaced { .. }
        )
    }
}

const SCHEMA_VERSION: i64 = 1;

/// A trace store: one SQLite file, shared by clones (`Store` is cheap to clone and `Send +
/// Sync`). Writes go through one connection, reads through another, so a viewer's queries do
/// not wait for an ingest transaction (WAL).
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    /// The file opened, to notice another one (or none) at `path` later.
    identity: file::FileIdentity,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl Store {
    /// Opens (or creates) the store at `path`, creating the schema when new. The file and its
    /// `-wal`/`-shm` are made private to their owner (see [`file`](mod@file)).
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let file_err = |source| StoreError::File {
            path: path.clone(),
            source,
        };
        file::prepare(&path).map_err(file_err)?;
        let identity = file::identity(&path).map_err(file_err)?;
        let writer = Connection::open(&path).map_err(err)?;
        configure(&writer).map_err(err)?;
        // Journal files left by an earlier, more permissive version.
        file::tighten(&path).map_err(file_err)?;
        writer.execute_batch(schema::SCHEMA).map_err(err)?;
        let found: i64 = writer
            .query_row(
                "SELECT value FROM store_meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaVersion {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let reader = Connection::open(&path).map_err(err)?;
        configure(&reader).map_err(err)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                identity,
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Checks that the database file is still the one opened: [`StoreError::FileDeleted`] or
    /// [`StoreError::FileReplaced`] when not (every batch is checked before its commit).
    pub fn check_file(&self) -> Result<(), StoreError> {
        let path = &self.inner.path;
        match file::state(path, self.inner.identity) {
            Ok(file::FileState::Same) => Ok(()),
            Ok(file::FileState::Deleted) => Err(StoreError::FileDeleted { path: path.clone() }),
            Ok(file::FileState::Replaced) => Err(StoreError::FileReplaced { path: path.clone() }),
            Err(source) => Err(StoreError::File {
                path: path.clone(),
                source,
            }),
        }
    }

    /// A counter that grows with every ingested batch that changed something; a viewer polls
    /// it to learn that new traces arrived.
    pub fn change_seq(&self) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        let seq: i64 = conn
            .query_row(
                "SELECT value FROM store_meta WHERE key = 'change_seq'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.sqlite(e))?;
        Ok(u64::try_from(seq).unwrap_or(0))
    }

    /// Size of the database in bytes (pages in use times page size, WAL excluded).
    pub fn database_bytes(&self) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        let bytes: i64 = conn
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.sqlite(e))?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    /// Writes the WAL back into the database file (useful before measuring or copying it).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(|e| self.sqlite(e))
    }

    fn writer(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.inner
            .writer
            .lock()
            .map_err(|_| StoreError::Poisoned(self.inner.path.clone()))
    }

    fn reader(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.inner
            .reader
            .lock()
            .map_err(|_| StoreError::Poisoned(self.inner.path.clone()))
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.inner.path.clone(),
            source,
        }
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    // WAL: readers never block the writer; NORMAL sync is durable across application crashes
    // (an OS crash may lose the last transactions, never corrupt the file). Random ids make
    // every insert touch a random index page: a page cache of up to 128 MiB per connection
    // (allocated as used) and checkpoints every 32 MiB of WAL keep large ingests off the disk.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = OFF;
         PRAGMA cache_size = -131072;
         PRAGMA wal_autocheckpoint = 8192;
         PRAGMA temp_store = MEMORY;",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}
