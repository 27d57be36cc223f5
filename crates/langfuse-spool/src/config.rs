//! Where and how the spool keeps records.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

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
    /// [`SpoolError::Full`](crate::SpoolError::Full)).
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
