//! [`Spool`], the handle the bridge holds: open, append, sync, readers, sizes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::config::SpoolConfig;
use crate::cursors;
use crate::error::SpoolError;
use crate::fs::{Fs, StdFs};
use crate::reader::SpoolReader;
use crate::record::NewRecord;
use crate::recovery::{self, Recovery};
use crate::state::{Shared, lock};
use crate::writer;

/// How long a refused append keeps the spool "not ready" without a new one.
const REFUSAL_MEMORY: Duration = Duration::from_secs(5);

/// Sizes of the spool right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Bytes in segment files.
    pub bytes: u64,
    /// Records not yet committed by every destination.
    pub backlog_records: u64,
    /// Sequence of the last appended record.
    pub last_sequence: u64,
}

/// The durable spool (see the [crate docs](crate)). Cheap to clone; all clones share one
/// spool. Appends are serialized; each destination reads through its own [`SpoolReader`].
#[derive(Clone)]
pub struct Spool {
    shared: Arc<Shared>,
}

impl Spool {
    /// Opens (or creates) the spool in `config.dir` for the given destinations: cuts torn
    /// tails, finds every record, reads the destinations' cursors.
    pub fn open(
        config: SpoolConfig,
        destinations: &[&str],
    ) -> Result<(Spool, Recovery), SpoolError> {
        Spool::open_on(Arc::new(StdFs), config, destinations)
    }

    /// [`open`](Self::open) on the file system `fs`.
    pub(crate) fn open_on(
        fs: Arc<dyn Fs>,
        config: SpoolConfig,
        destinations: &[&str],
    ) -> Result<(Spool, Recovery), SpoolError> {
        let recovered = recovery::open(config, destinations, fs)?;
        let spool = Spool {
            shared: Arc::new(recovered.shared),
        };
        cursors::collect_garbage(&spool.shared, recovered.min_committed);
        Ok((spool, recovered.recovery))
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &SpoolConfig {
        &self.shared.config
    }

    /// Appends records in one write; under [`FsyncPolicy::Always`](crate::FsyncPolicy::Always)
    /// they are on disk (data and any new segment's directory entry) when this returns.
    /// Returns their sequences.
    ///
    /// Fails with [`SpoolError::Full`] when they would take the spool over its size limit, or
    /// [`SpoolError::DiskFull`] when the disk is full; nothing of them is then kept.
    ///
    /// A refused append (full, or an I/O error) makes [`refusal`](Self::refusal) report it
    /// until an append succeeds, garbage collection frees space, or a few seconds pass
    /// without another refusal.
    pub fn append(&self, records: &[NewRecord]) -> Result<Vec<u64>, SpoolError> {
        let result = writer::append(&self.shared, records);
        let mut refusal = lock(&self.shared.refusal);
        match &result {
            Ok(_) => *refusal = None,
            // What could never fit says nothing about the spool.
            Err(SpoolError::Full { needed, limit, .. }) if needed > limit => {}
            Err(e) => *refusal = Some((e.clone(), Instant::now())),
        }
        result
    }

    /// Why appends are refused right now (a full spool or disk, an I/O error), if they are:
    /// the error of the last refused append, unless an append succeeded or garbage collection
    /// freed space since, and for at most a few seconds without another refusal.
    pub fn refusal(&self) -> Option<SpoolError> {
        lock(&self.shared.refusal)
            .as_ref()
            .filter(|(_, at)| at.elapsed() < REFUSAL_MEMORY)
            .map(|(e, _)| e.clone())
    }

    /// Makes everything appended so far durable (the `interval` policy's timer, shutdown).
    pub fn sync(&self) -> Result<(), SpoolError> {
        writer::sync(&self.shared)
    }

    /// A reader for `destination` (one of those the spool was opened with), positioned after
    /// the destination's committed cursor.
    pub fn reader(&self, destination: &str) -> Result<SpoolReader, SpoolError> {
        SpoolReader::open(Arc::clone(&self.shared), destination)
    }

    /// Current sizes.
    pub fn stats(&self) -> SpoolStats {
        let index = lock(&self.shared.index);
        let last = self.shared.visible.load(Ordering::Acquire);
        SpoolStats {
            bytes: index.total_bytes,
            backlog_records: last.saturating_sub(index.committed_by_all(last)),
            last_sequence: last,
        }
    }
}
