//! Opening a spool: its directories, every segment scanned, torn tails cut, damage counted
//! and reported; and [`inspect`], the same reading without changing anything.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::{FsyncPolicy, SpoolConfig};
use crate::cursors::{self, CursorFile, Loaded};
use crate::error::SpoolError;
use crate::fs::{Fs, OpenMode, StdFs};
use crate::record::Cursor;
use crate::scan::{self, Damage, SegmentScan};
use crate::slots::{self, Opened, SlotFile};
use crate::state::{
    CURSORS, HIGH_WATER, HighWater, Index, SEGMENT_EXT, SEGMENTS, SegmentMeta, Shared, WriterState,
    segment_path, stem,
};

/// What opening the spool found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Records found on disk.
    pub records: u64,
    /// Bytes cut from segment ends (torn or corrupt frames).
    pub truncated_bytes: u64,
    /// Per destination: records handed to it before the restart but not committed (they are
    /// sent again, so they may arrive twice).
    pub in_flight: BTreeMap<String, u64>,
    /// Damage found, in spool order (see [`Damage`]).
    pub damage: Vec<Damage>,
    /// Records lost to the damage that not every destination had committed.
    pub lost_records: u64,
    /// Destinations whose cursor file held no valid position (they read from the oldest
    /// record kept: duplicates, no loss).
    pub damaged_cursors: Vec<String>,
}

impl Recovery {
    /// Whether nothing was found that lost records or needed skipping (a torn tail alone is
    /// what a crash leaves and counts as clean).
    pub fn is_clean(&self) -> bool {
        !self.damage.iter().any(Damage::is_loss) && self.damaged_cursors.is_empty()
    }

    /// Notes a destination's cursor as found (None: damaged).
    fn cursor_found(&mut self, destination: &str, cursor: Option<Cursor>) -> Cursor {
        let cursor = cursor.unwrap_or_else(|| {
            self.damaged_cursors.push(destination.to_owned());
            Cursor::default()
        });
        if cursor.in_flight_end > cursor.committed {
            self.in_flight.insert(
                destination.to_owned(),
                cursor.in_flight_end - cursor.committed,
            );
        }
        cursor
    }
}

fn valid_destination(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The highest sequence any cursor or the high-water mark mentions, and the sequence every
/// destination committed.
fn marks(cursors: &BTreeMap<String, Cursor>, high_water: u64) -> (u64, u64) {
    let high = cursors
        .values()
        .map(|c| c.committed.max(c.in_flight_end))
        .chain([high_water])
        .max()
        .unwrap_or(0);
    let min_committed = cursors.values().map(|c| c.committed).min().unwrap_or(0);
    (high, min_committed)
}

/// What [`open`] recovered: the spool's state, the report, and the sequence every destination
/// committed (for the first garbage collection).
pub(crate) struct Recovered {
    pub shared: Shared,
    pub recovery: Recovery,
    pub min_committed: u64,
}

/// Opens (or creates) the spool in `config.dir` for `destinations` on `fs`: cuts torn tails,
/// finds every record, reads the destinations' cursors.
pub(crate) fn open(
    config: SpoolConfig,
    destinations: &[&str],
    fs: Arc<dyn Fs>,
) -> Result<Recovered, SpoolError> {
    for d in destinations {
        if !valid_destination(d) {
            return Err(SpoolError::InvalidDestination((*d).to_owned()));
        }
    }
    let dir = config.dir.clone();
    let io_err = SpoolError::from_io;
    let durable = config.fsync == FsyncPolicy::Always;
    create_dirs(&*fs, &dir, durable)?;

    let mut recovery = Recovery::default();
    let mut cursors = BTreeMap::new();
    for d in destinations {
        let (_, loaded) = CursorFile::open(&*fs, &dir, d, Cursor::default(), durable)?;
        let cursor = match loaded {
            Loaded::Cursor(c) => Some(c),
            Loaded::Damaged => None,
        };
        cursors.insert((*d).to_owned(), recovery.cursor_found(d, cursor));
    }
    let high_water = match SlotFile::open(&*fs, &dir.join(HIGH_WATER), &0u64.to_le_bytes(), durable)
    {
        Ok((file, opened)) => {
            let value = match opened {
                Opened::Value(v) => high_water_value(&v),
                _ => 0,
            };
            Some(HighWater {
                file,
                written: value,
                at: Instant::now(),
            })
        }
        Err(e) => {
            // Without it only a truncated last segment goes unnoticed; appends still work.
            tracing::warn!(error = %e, "cannot open the spool's high-water mark");
            None
        }
    };
    let (high, min_committed) = marks(&cursors, high_water.as_ref().map_or(0, |h| h.written));

    let analysis = analyse(&*fs, &dir, min_committed, high)
        .map_err(|e| io_err("cannot recover a segment", e))?;
    let mut segments = BTreeMap::new();
    let mut total_bytes = 0;
    let mut last_seq = 0u64;
    for (first, scan) in &analysis.segments {
        let path = segment_path(&dir, *first);
        if scan.torn > 0 {
            cut_torn_tail(
                &*fs,
                &path,
                scan.valid_end,
                config.fsync != FsyncPolicy::Never,
            )
            .map_err(|e| io_err("cannot cut a torn segment tail", e))?;
        }
        fs.make_private(&path)
            .map_err(|e| io_err("cannot recover a segment", e))?;
        recovery.truncated_bytes += scan.torn;
        recovery.records += scan.records;
        last_seq = last_seq.max(scan.last_seq);
        total_bytes += scan.valid_end;
        segments.insert(
            *first,
            SegmentMeta {
                bytes: scan.valid_end,
                last_seq: scan.last_seq,
            },
        );
    }
    recovery.lost_records = analysis.damage.iter().map(Damage::lost_records).sum();
    recovery.damage = analysis.damage;
    // Never reuse a sequence that may have been appended and delivered (envelope ids
    // derive from it).
    let next_seq = last_seq.max(high) + 1;

    // Reuse the last segment for appends when nothing after it would be out of order.
    let mut active = None;
    if let Some((&first, meta)) = segments.iter().next_back() {
        let reusable = meta.bytes < config.segment_bytes
            && (meta.last_seq + 1 == next_seq || (meta.bytes == 0 && first == next_seq));
        if reusable {
            let file = fs
                .open(&segment_path(&dir, first), OpenMode::Append)
                .map_err(|e| io_err("cannot open the last segment", e))?;
            active = Some((first, file));
        }
    }
    // Empty segments that are not reused only confuse later readers.
    let empty: Vec<u64> = segments
        .iter()
        .filter(|(first, m)| m.bytes == 0 && active.as_ref().is_none_or(|(a, _)| a != *first))
        .map(|(first, _)| *first)
        .collect();
    for first in empty {
        segments.remove(&first);
        let _ = fs.remove(&segment_path(&dir, first));
    }
    // The reused segment may have been created by an append that failed before syncing the
    // directory: its entry must be durable before an append to it is acknowledged.
    if config.fsync != FsyncPolicy::Never {
        fs.sync_dir(&dir.join(SEGMENTS))
            .map_err(|e| io_err("cannot sync the segment directory", e))?;
    }

    let shared = Shared {
        writer: Mutex::new(WriterState {
            active,
            high_water,
            next_seq,
            dir_dirty: false,
            data_dirty: false,
            scratch: Vec::new(),
        }),
        index: Mutex::new(Index {
            segments,
            total_bytes,
            cursors,
        }),
        visible: AtomicU64::new(next_seq - 1),
        notify: tokio::sync::Notify::new(),
        refusal: Mutex::new(None),
        config,
        fs,
    };
    Ok(Recovered {
        shared,
        recovery,
        min_committed,
    })
}

/// Creates the spool's directories (owner-only) and, when `durable`, makes new ones durable.
fn create_dirs(fs: &dyn Fs, dir: &Path, durable: bool) -> Result<(), SpoolError> {
    let io_err = SpoolError::from_io;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        fs.create_dir_all(parent)
            .map_err(|e| io_err("cannot create the spool's parent", e))?;
    }
    let mut created = fs
        .create_private_dir(dir)
        .map_err(|e| io_err("cannot create the spool", e))?;
    created |= fs
        .create_private_dir(&dir.join(SEGMENTS))
        .map_err(|e| io_err("cannot create the segment directory", e))?;
    created |= fs
        .create_private_dir(&dir.join(CURSORS))
        .map_err(|e| io_err("cannot create the cursor directory", e))?;
    if created && durable {
        for d in [dir.join(SEGMENTS), dir.join(CURSORS), dir.to_path_buf()] {
            fs.sync_dir(&d)
                .map_err(|e| io_err("cannot sync the spool directory", e))?;
        }
        if let Some(parent) = parent {
            fs.sync_dir(parent)
                .map_err(|e| io_err("cannot sync the spool's parent", e))?;
        }
    }
    Ok(())
}

fn cut_torn_tail(fs: &dyn Fs, path: &Path, valid_end: u64, sync: bool) -> std::io::Result<()> {
    let file = fs.open(path, OpenMode::ReadWrite)?;
    file.set_len(valid_end)?;
    if sync {
        file.sync_all()?;
    }
    Ok(())
}

/// Every segment of a spool scanned, and the damage found.
struct Analysis {
    segments: Vec<(u64, SegmentScan)>,
    damage: Vec<Damage>,
}

fn list_segments(fs: &dyn Fs, dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut firsts: Vec<u64> = fs
        .list(&dir.join(SEGMENTS))?
        .iter()
        .filter_map(|name| stem(name, SEGMENT_EXT)?.parse().ok())
        .collect();
    firsts.sort_unstable();
    Ok(firsts)
}

/// Reads every segment (without changing any): valid records, damage skipped, torn tails,
/// sequences missing between `committed_by_all` and `high_water`.
fn analyse(
    fs: &dyn Fs,
    dir: &Path,
    committed_by_all: u64,
    high_water: u64,
) -> std::io::Result<Analysis> {
    let mut segments = Vec::new();
    for first in list_segments(fs, dir)? {
        let data = fs.read(&segment_path(dir, first))?;
        segments.push((first, scan::scan_segment(&data, first)));
    }
    let refs: Vec<(u64, &SegmentScan)> = segments.iter().map(|(f, s)| (*f, s)).collect();
    let damage = scan::damage_report(&refs, committed_by_all, high_water);
    Ok(Analysis { segments, damage })
}

fn high_water_value(value: &[u8]) -> u64 {
    value
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// What [`inspect`] found in a spool directory (the report of `langfuse-bridge spool verify`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inspection {
    /// Segment files.
    pub segments: usize,
    /// Bytes in segment files.
    pub bytes: u64,
    /// The valid records' sequences (None when there are none).
    pub sequences: Option<(u64, u64)>,
    /// Every destination's cursor found in `cursors/`.
    pub cursors: BTreeMap<String, Cursor>,
    /// The high-water mark (0 when absent).
    pub high_water: u64,
    /// What opening the spool would find (`truncated_bytes`: what it would cut).
    pub recovery: Recovery,
}

/// Reads the spool in `dir` without changing anything and reports what
/// [`Spool::open`](crate::Spool::open) would find, for every destination that has a cursor.
pub fn inspect(dir: &Path) -> Result<Inspection, SpoolError> {
    inspect_with(&StdFs, dir)
}

/// [`inspect`] on `fs`.
pub(crate) fn inspect_with(fs: &dyn Fs, dir: &Path) -> Result<Inspection, SpoolError> {
    let io_err = SpoolError::from_io;
    if !fs.is_dir(&dir.join(SEGMENTS)) {
        return Err(SpoolError::Invalid(
            "not a spool directory (no segments/ in it)",
        ));
    }
    let mut inspection = Inspection::default();
    for (name, cursor) in cursors::read_all(fs, dir)? {
        let cursor = inspection.recovery.cursor_found(&name, cursor);
        inspection.cursors.insert(name, cursor);
    }
    inspection.high_water = match slots::read(fs, &dir.join(HIGH_WATER))
        .map_err(|e| io_err("cannot read the high-water mark", e))?
    {
        slots::Contents::Current { value, .. } => high_water_value(&value),
        _ => 0,
    };
    let (high, min_committed) = marks(&inspection.cursors, inspection.high_water);
    let analysis =
        analyse(fs, dir, min_committed, high).map_err(|e| io_err("cannot read a segment", e))?;
    inspection.segments = analysis.segments.len();
    for (first, scan) in &analysis.segments {
        inspection.bytes += scan.valid_end + scan.torn;
        inspection.recovery.records += scan.records;
        inspection.recovery.truncated_bytes += scan.torn;
        if scan.records > 0 {
            let (lo, hi) = inspection.sequences.unwrap_or((u64::MAX, 0));
            let start = scan
                .skipped
                .first()
                .filter(|s| s.offset == 0)
                .map_or(*first, |s| s.resumed);
            inspection.sequences = Some((lo.min(start), hi.max(scan.last_seq)));
        }
    }
    inspection.recovery.lost_records = analysis.damage.iter().map(Damage::lost_records).sum();
    inspection.recovery.damage = analysis.damage;
    Ok(inspection)
}
