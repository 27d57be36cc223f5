//! What the spool's parts share: the file layout, the index of segments and cursors, the
//! writer's state, and the one value that holds them ([`Shared`]).
//!
//! Lock order: `writer` before `index`; `refusal` alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::config::SpoolConfig;
use crate::error::SpoolError;
use crate::fs::{Fs, FsFile};
use crate::record::Cursor;
use crate::slots::SlotFile;

pub(crate) const SEGMENTS: &str = "segments";
pub(crate) const CURSORS: &str = "cursors";
pub(crate) const SEGMENT_EXT: &str = "seg";
pub(crate) const CURSOR_EXT: &str = "cursor";
pub(crate) const HIGH_WATER: &str = "high-water";

pub(crate) fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(SEGMENTS)
        .join(format!("{first:020}.{SEGMENT_EXT}"))
}

pub(crate) fn cursor_path(dir: &Path, destination: &str) -> PathBuf {
    dir.join(CURSORS)
        .join(format!("{destination}.{CURSOR_EXT}"))
}

/// `name` without its `.ext`, if it has that extension.
pub(crate) fn stem<'a>(name: &'a str, ext: &str) -> Option<&'a str> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    (!stem.is_empty()).then_some(stem)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the data half-updated in a way later
    // calls misread (every update is a few assignments), so the poison is ignored.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One segment as far as appends completed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentMeta {
    /// Bytes written by successful appends (readers read no further).
    pub bytes: u64,
    /// Sequence of its last record (first - 1 while empty).
    pub last_seq: u64,
}

/// The segments kept and every destination's position.
pub(crate) struct Index {
    /// By first sequence.
    pub segments: BTreeMap<u64, SegmentMeta>,
    pub total_bytes: u64,
    pub cursors: BTreeMap<String, Cursor>,
}

impl Index {
    /// The sequence every destination committed (`default` without destinations).
    pub fn committed_by_all(&self, default: u64) -> u64 {
        self.cursors
            .values()
            .map(|c| c.committed)
            .min()
            .unwrap_or(default)
    }
}

/// The durable high-water mark and when it was last written.
pub(crate) struct HighWater {
    pub file: SlotFile,
    pub written: u64,
    pub at: Instant,
}

/// The appending side.
pub(crate) struct WriterState {
    /// The segment being appended to: (first sequence, file).
    pub active: Option<(u64, Box<dyn FsFile>)>,
    /// The durable high-water mark (None when it could not be created).
    pub high_water: Option<HighWater>,
    pub next_seq: u64,
    /// Whether the segment directory changed since the last sync.
    pub dir_dirty: bool,
    /// Whether data was written since the last sync.
    pub data_dirty: bool,
    /// Frames of the append being built.
    pub scratch: Vec<u8>,
}

/// Everything one open spool holds.
pub(crate) struct Shared {
    pub config: SpoolConfig,
    pub fs: Arc<dyn Fs>,
    pub writer: Mutex<WriterState>,
    pub index: Mutex<Index>,
    /// The last sequence readers may read.
    pub visible: AtomicU64,
    pub notify: tokio::sync::Notify,
    /// The error of the last refused append, while it is in effect.
    pub refusal: Mutex<Option<(SpoolError, Instant)>>,
}
