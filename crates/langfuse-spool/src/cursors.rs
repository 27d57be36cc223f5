//! Destination cursors: their files (two-slot files written in place, see the slots module),
//! commits, and the garbage collection a commit allows.
//!
//! A commit writes 64 bytes in place into a file allocated when the spool was opened, so it
//! needs no new block and works on a full disk; the segments every destination committed
//! past are then deleted, which is what frees a full disk again.

use std::path::Path;

use prost::Message;

use crate::config::FsyncPolicy;
use crate::error::SpoolError;
use crate::fs::Fs;
use crate::record::Cursor;
use crate::slots::{self, Opened, SlotFile};
use crate::state::{CURSOR_EXT, CURSORS, Shared, cursor_path, lock, segment_path, stem};

/// A destination's cursor file, open for writing.
#[derive(Debug)]
pub(crate) struct CursorFile(SlotFile);

/// What a cursor file held when opened.
pub(crate) enum Loaded {
    /// A valid cursor (or a new file holding the default one).
    Cursor(Cursor),
    /// No valid cursor: rewritten holding the default one.
    Damaged,
}

impl CursorFile {
    /// Opens (creating, migrating or repairing it) the cursor file of `destination`; a new or
    /// repaired file holds `initial`.
    pub fn open(
        fs: &dyn Fs,
        dir: &Path,
        destination: &str,
        initial: Cursor,
        durable: bool,
    ) -> Result<(CursorFile, Loaded), SpoolError> {
        let (file, opened) = SlotFile::open(
            fs,
            &cursor_path(dir, destination),
            &initial.encode_to_vec(),
            durable,
        )
        .map_err(|e| SpoolError::from_io("cannot open a cursor", e))?;
        let loaded = match opened {
            Opened::Value(v) => {
                Cursor::decode(v.as_slice()).map_or(Loaded::Damaged, Loaded::Cursor)
            }
            Opened::Created => Loaded::Cursor(initial),
            Opened::Damaged => Loaded::Damaged,
        };
        Ok((CursorFile(file), loaded))
    }

    /// Stores `cursor` in place (`durable`: synced before returning).
    pub fn write(&mut self, cursor: Cursor, durable: bool) -> Result<(), SpoolError> {
        self.0
            .write(&cursor.encode_to_vec(), durable)
            .map_err(|e| SpoolError::from_io("cannot write a cursor", e))
    }
}

/// Every cursor file in `dir` read without changing any, by destination name; None for a
/// file without a valid cursor.
pub(crate) fn read_all(
    fs: &dyn Fs,
    dir: &Path,
) -> Result<Vec<(String, Option<Cursor>)>, SpoolError> {
    let io_err = SpoolError::from_io;
    let mut names: Vec<String> = match fs.list(&dir.join(CURSORS)) {
        Ok(names) => names
            .iter()
            .filter_map(|n| stem(n, CURSOR_EXT).map(str::to_owned))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err("cannot list the cursors", e)),
    };
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let contents = slots::read(fs, &cursor_path(dir, &name))
            .map_err(|e| io_err("cannot read a cursor", e))?;
        let cursor = match contents {
            slots::Contents::Current { value, .. } | slots::Contents::Legacy(value) => {
                Cursor::decode(value.as_slice()).ok()
            }
            slots::Contents::Absent => Some(Cursor::default()),
            slots::Contents::Damaged => None,
        };
        out.push((name, cursor));
    }
    Ok(out)
}

/// Notes in the index that `destination` committed `sequence` (its file already says so),
/// then deletes the segments every destination committed past.
pub(crate) fn committed(shared: &Shared, destination: &str, sequence: u64) {
    let min = {
        let mut index = lock(&shared.index);
        if let Some(c) = index.cursors.get_mut(destination) {
            c.committed = sequence;
        }
        index.committed_by_all(sequence)
    };
    collect_garbage(shared, min);
}

/// Whether a commit is synced before it returns.
pub(crate) fn durable(shared: &Shared) -> bool {
    shared.config.fsync == FsyncPolicy::Always
}

/// Deletes the segments whose records every destination committed (`min_committed`).
pub(crate) fn collect_garbage(shared: &Shared, min_committed: u64) {
    let mut writer = lock(&shared.writer);
    let mut index = lock(&shared.index);
    // A fully committed active segment is closed, so that it can go too (a small spool
    // would otherwise never free its only segment); the next append starts a new one.
    if let Some((first, _)) = &writer.active
        && index
            .segments
            .get(first)
            .is_some_and(|m| m.bytes > 0 && m.last_seq <= min_committed)
    {
        writer.active = None;
        writer.data_dirty = false;
    }
    let active = writer.active.as_ref().map(|(f, _)| *f);
    drop(writer);
    let done: Vec<(u64, u64)> = index
        .segments
        .iter()
        .filter(|(first, m)| Some(**first) != active && m.last_seq <= min_committed)
        .map(|(first, m)| (*first, m.bytes))
        .collect();
    let mut freed = false;
    for (first, bytes) in done {
        let path = segment_path(&shared.config.dir, first);
        if shared.fs.remove(&path).is_ok() || !shared.fs.exists(&path) {
            index.segments.remove(&first);
            index.total_bytes -= bytes;
            freed = true;
        }
    }
    drop(index);
    if freed {
        // Room again: the next append may well fit.
        *lock(&shared.refusal) = None;
    }
}
