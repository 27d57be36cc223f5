//! The durable spool of `langfuse-bridge serve`: what a client sent is appended here before
//! the bridge answers 2xx, and stays until every destination accepted it.
//!
//! On disk (`DIR` is `--spool`, created with mode `0700`, files `0600` since records keep the
//! clients' credentials):
//!
//! | path | content |
//! |---|---|
//! | `DIR/segments/<first sequence>.seg` | frames `u32 length, u32 CRC-32, SpoolRecord` (schema: `proto/langfuse_bridge_spool.proto`) |
//! | `DIR/cursors/<destination>.cursor` | one frame holding that destination's `Cursor` (committed, in flight) |
//!
//! | rule | how |
//! |---|---|
//! | acknowledged means durable | [`Appender::append`] returns after the write and, under [`FsyncPolicy::Always`], after `fdatasync` of the segment and `fsync` of a new segment's directory; concurrent appends share one sync (group commit) |
//! | a crash leaves no garbage | [`Spool::open`] reads every segment and cuts it at the first frame whose length, checksum, payload or sequence does not verify |
//! | nothing expires by age | records are deleted only with their segment, once every destination committed past it |
//! | bounded size | an append that would exceed [`SpoolConfig::max_bytes`], or that hits a full disk, fails with [`SpoolError::Full`] and leaves no partial frame |
//! | at-least-once with known duplicates | a destination marks what it hands upstream as in flight, then commits after the upstream accepted; after a crash [`Recovery::in_flight`] says how many records may arrive twice |
//!
//! ```
//! use langfuse_bridge::spool::{FsyncPolicy, NewRecord, RecordKind, Spool, SpoolConfig};
//!
//! let dir = std::env::temp_dir().join(format!("spool-doc-{}", std::process::id()));
//! let config = SpoolConfig { fsync: FsyncPolicy::Never, ..SpoolConfig::new(&dir) };
//! let (spool, _) = Spool::open(config.clone(), &["upstream"]).unwrap();
//! let record = NewRecord {
//!     kind: RecordKind::OtlpJson,
//!     authorization: None,
//!     body: bytes::Bytes::from_static(b"{\"resourceSpans\":[]}"),
//!     item_count: 0,
//!     received_unix_ms: 0,
//! };
//! assert_eq!(spool.append(&[record.clone(), record]).unwrap(), vec![1, 2]);
//! let mut reader = spool.reader("upstream").unwrap();
//! let records = reader.read(10, 1 << 20).unwrap();
//! reader.commit(records[0].sequence).unwrap();
//! drop((reader, spool));
//! // After a restart only the uncommitted record is read again.
//! let (spool, recovery) = Spool::open(config, &["upstream"]).unwrap();
//! assert_eq!(recovery.records, 2);
//! let mut reader = spool.reader("upstream").unwrap();
//! assert_eq!(reader.read(10, 1 << 20).unwrap()[0].sequence, 2);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

mod appender;
mod frame;
mod record;
mod scan;
mod slots;
mod store;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub use self::appender::{Appender, AppenderThread};
pub use self::record::{Cursor, RecordKind, SpoolRecord};
pub use self::scan::Damage;
pub use self::store::{Inspection, NewRecord, Recovery, Spool, SpoolReader, SpoolStats, inspect};

/// When appended data is flushed to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Before every acknowledgement (group commit): survives power loss.
    #[default]
    Always,
    /// Every [`SpoolConfig::fsync_interval`]: survives `kill -9`, may lose the last interval
    /// on power loss.
    Interval,
    /// Never (the OS writes back): survives `kill -9` only.
    Never,
}

impl FromStr for FsyncPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "interval" => Ok(FsyncPolicy::Interval),
            "never" => Ok(FsyncPolicy::Never),
            other => Err(format!(
                "unknown fsync policy '{other}' (expected always, interval or never)"
            )),
        }
    }
}

/// Where and how the spool keeps records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// The spool directory.
    pub dir: PathBuf,
    /// When data reaches stable storage.
    pub fsync: FsyncPolicy,
    /// Sync period under [`FsyncPolicy::Interval`].
    pub fsync_interval: Duration,
    /// Largest total size of the segment files (appends beyond it fail with
    /// [`SpoolError::Full`]).
    pub max_bytes: u64,
    /// Size at which a new segment is started.
    pub segment_bytes: u64,
}

impl SpoolConfig {
    /// Defaults: `always`, 200 ms interval, 1 GiB, 32 MiB segments.
    pub fn new(dir: impl AsRef<Path>) -> SpoolConfig {
        SpoolConfig {
            dir: dir.as_ref().to_path_buf(),
            fsync: FsyncPolicy::Always,
            fsync_interval: Duration::from_millis(200),
            max_bytes: 1 << 30,
            segment_bytes: 32 << 20,
        }
    }
}

/// Why the spool could not do something. Messages name files by role, never their content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// No room: the size limit or a full disk. The client should retry later.
    #[error("the spool is full ({used} of {limit} bytes used, {needed} more needed)")]
    Full {
        /// Bytes the append needed.
        needed: u64,
        /// Bytes in use.
        used: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The disk is full.
    #[error("the spool's disk is full: {0}")]
    DiskFull(String),
    /// Any other I/O failure.
    #[error("spool I/O error: {0}")]
    Io(String),
    /// A destination name that is not `[A-Za-z0-9_-]{1,64}` or was not opened.
    #[error("invalid spool destination '{0}'")]
    InvalidDestination(String),
    /// The spool's writer stopped.
    #[error("the spool is closed")]
    Closed,
}

impl SpoolError {
    fn from_io(what: &str, e: std::io::Error) -> SpoolError {
        if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
            SpoolError::DiskFull(format!("{what}: {e}"))
        } else {
            SpoolError::Io(format!("{what}: {e}"))
        }
    }

    /// Whether the client should be told to retry later (HTTP 429 / gRPC `RESOURCE_EXHAUSTED`).
    pub fn is_full(&self) -> bool {
        matches!(self, SpoolError::Full { .. } | SpoolError::DiskFull(_))
    }
}

#[cfg(test)]
mod tests;
