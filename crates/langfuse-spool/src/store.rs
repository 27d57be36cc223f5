//! The spool's files: segments of framed records, destination cursors, recovery.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prost::Message;

use super::frame::{self, HEADER_LEN};
use super::record::{Cursor, RecordKind, SpoolRecord};
use super::scan::{self, Damage, SegmentScan};
use super::slots::{self, Opened, SlotFile};
use super::{FsyncPolicy, SpoolConfig, SpoolError};

const SEGMENTS: &str = "segments";
const CURSORS: &str = "cursors";
const SEGMENT_EXT: &str = "seg";
const CURSOR_EXT: &str = "cursor";
const HIGH_WATER: &str = "high-water";
/// How often the high-water mark is written while appending.
const HIGH_WATER_PERIOD: Duration = Duration::from_secs(1);
/// How long a refused append keeps the spool "not ready" without a new one.
const REFUSAL_MEMORY: Duration = Duration::from_secs(5);

/// What a client sent, to be appended.
#[derive(Debug, Clone)]
pub struct NewRecord {
    /// What the body is.
    pub kind: RecordKind,
    /// The client's `Authorization` header to forward with (None: configured credentials).
    pub authorization: Option<String>,
    /// The uncompressed body.
    pub body: bytes::Bytes,
    /// Spans or events in the body.
    pub item_count: u32,
    /// When it was accepted (Unix ms).
    pub received_unix_ms: i64,
}

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
}

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

#[derive(Debug, Clone, Copy)]
struct SegmentMeta {
    bytes: u64,
    /// Sequence of its last record (first - 1 while empty).
    last_seq: u64,
}

struct HighWater {
    file: SlotFile,
    written: u64,
    at: Instant,
}

struct Writer {
    /// The segment being appended to: (first sequence, file).
    active: Option<(u64, File)>,
    /// The durable high-water mark (None when it could not be created).
    high_water: Option<HighWater>,
    next_seq: u64,
    /// Whether the segment directory changed since the last sync.
    dir_dirty: bool,
    /// Whether data was written since the last sync.
    data_dirty: bool,
    scratch: Vec<u8>,
}

struct Index {
    segments: BTreeMap<u64, SegmentMeta>,
    total_bytes: u64,
    cursors: BTreeMap<String, Cursor>,
}

pub(super) struct Shared {
    config: SpoolConfig,
    writer: Mutex<Writer>,
    index: Mutex<Index>,
    visible: AtomicU64,
    pub(super) notify: tokio::sync::Notify,
    /// The error of the last refused append, while it is in effect.
    refusal: Mutex<Option<(SpoolError, Instant)>>,
}

/// The durable spool (see the [module docs](super)). Cheap to clone; all clones share one
/// spool. Appends are serialized; each destination reads through its own [`SpoolReader`].
#[derive(Clone)]
pub struct Spool {
    pub(super) shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the data half-updated in a way later
    // calls misread (every update is a few assignments), so the poison is ignored.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(SEGMENTS)
        .join(format!("{first:020}.{SEGMENT_EXT}"))
}

fn cursor_path(dir: &Path, destination: &str) -> PathBuf {
    dir.join(CURSORS)
        .join(format!("{destination}.{CURSOR_EXT}"))
}

fn create_private_dir(path: &Path) -> io::Result<bool> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

fn private_file(path: &Path, append: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).mode(0o600);
    if append {
        options.append(true).read(true);
    } else {
        options.write(true).truncate(true);
    }
    options.open(path)
}

fn valid_destination(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Spool {
    /// Opens (or creates) the spool in `config.dir` for the given destinations: cuts torn
    /// tails, finds every record, reads the destinations' cursors.
    pub fn open(
        config: SpoolConfig,
        destinations: &[&str],
    ) -> Result<(Spool, Recovery), SpoolError> {
        for d in destinations {
            if !valid_destination(d) {
                return Err(SpoolError::InvalidDestination((*d).to_owned()));
            }
        }
        let dir = config.dir.clone();
        let io_err = SpoolError::from_io;
        let mut created = false;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .map_err(|e| io_err("cannot create the spool's parent", e))?;
        }
        created |= create_private_dir(&dir).map_err(|e| io_err("cannot create the spool", e))?;
        created |= create_private_dir(&dir.join(SEGMENTS))
            .map_err(|e| io_err("cannot create the segment directory", e))?;
        created |= create_private_dir(&dir.join(CURSORS))
            .map_err(|e| io_err("cannot create the cursor directory", e))?;
        if created && config.fsync == FsyncPolicy::Always {
            for d in [dir.join(SEGMENTS), dir.join(CURSORS), dir.clone()] {
                sync_dir(&d).map_err(|e| io_err("cannot sync the spool directory", e))?;
            }
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent).map_err(|e| io_err("cannot sync the spool's parent", e))?;
            }
        }

        let durable = config.fsync == FsyncPolicy::Always;
        let mut recovery = Recovery::default();
        let mut cursors = BTreeMap::new();
        for d in destinations {
            let initial = Cursor::default().encode_to_vec();
            let (_, opened) = SlotFile::open(&cursor_path(&dir, d), &initial, durable)
                .map_err(|e| SpoolError::from_io("cannot open a cursor", e))?;
            let cursor = match opened {
                Opened::Value(v) => Cursor::decode(v.as_slice()).ok(),
                Opened::Created => Some(Cursor::default()),
                Opened::Damaged => None,
            };
            let cursor = cursor.unwrap_or_else(|| {
                recovery.damaged_cursors.push((*d).to_owned());
                Cursor::default()
            });
            if cursor.in_flight_end > cursor.committed {
                recovery
                    .in_flight
                    .insert((*d).to_owned(), cursor.in_flight_end - cursor.committed);
            }
            cursors.insert((*d).to_owned(), cursor);
        }
        let high_water = match SlotFile::open(&dir.join(HIGH_WATER), &0u64.to_le_bytes(), durable) {
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
        let high = cursors
            .values()
            .map(|c| c.committed.max(c.in_flight_end))
            .chain(high_water.as_ref().map(|h| h.written))
            .max()
            .unwrap_or(0);
        let min_committed = cursors.values().map(|c| c.committed).min().unwrap_or(0);

        let analysis = analyse(&dir, min_committed, high)
            .map_err(|e| io_err("cannot recover a segment", e))?;
        let mut segments = BTreeMap::new();
        let mut total_bytes = 0;
        let mut last_seq = 0u64;
        for (first, scan) in &analysis.segments {
            let path = segment_path(&dir, *first);
            if scan.torn > 0 {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| io_err("cannot cut a torn segment tail", e))?;
                file.set_len(scan.valid_end)
                    .map_err(|e| io_err("cannot cut a torn segment tail", e))?;
                if config.fsync != FsyncPolicy::Never {
                    file.sync_all()
                        .map_err(|e| io_err("cannot cut a torn segment tail", e))?;
                }
            }
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
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
                let file = private_file(&segment_path(&dir, first), true)
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
            let _ = fs::remove_file(segment_path(&dir, first));
        }

        let shared = Arc::new(Shared {
            writer: Mutex::new(Writer {
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
        });
        let spool = Spool { shared };
        spool.collect_garbage(min_committed);
        Ok((spool, recovery))
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &SpoolConfig {
        &self.shared.config
    }

    /// Appends records in one write; under [`FsyncPolicy::Always`] they are on disk (data and
    /// any new segment's directory entry) when this returns. Returns their sequences.
    ///
    /// Fails with [`SpoolError::Full`] when they would take the spool over its size limit or
    /// the disk is full; nothing of them is then kept.
    ///
    /// A refused append (full, or an I/O error) makes [`refusal`](Self::refusal) report it
    /// until an append succeeds, garbage collection frees space, or a few seconds pass
    /// without another refusal.
    pub fn append(&self, records: &[NewRecord]) -> Result<Vec<u64>, SpoolError> {
        let result = self.append_records(records);
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

    fn append_records(&self, records: &[NewRecord]) -> Result<Vec<u64>, SpoolError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let config = &self.shared.config;
        let mut writer = lock(&self.shared.writer);
        let w = &mut *writer;
        let first_seq = w.next_seq;
        w.scratch.clear();
        let mut payload = Vec::new();
        for (i, r) in records.iter().enumerate() {
            payload.clear();
            SpoolRecord {
                sequence: first_seq + i as u64,
                kind: r.kind as i32,
                received_unix_ms: r.received_unix_ms,
                authorization: r.authorization.clone(),
                body: r.body.clone(),
                item_count: r.item_count,
            }
            .encode(&mut payload)
            .map_err(SpoolError::Encode)?;
            frame::encode_into(&payload, &mut w.scratch);
        }
        let len = w.scratch.len() as u64;
        {
            let index = lock(&self.shared.index);
            if index.total_bytes.saturating_add(len) > config.max_bytes {
                return Err(SpoolError::Full {
                    needed: len,
                    used: index.total_bytes,
                    limit: config.max_bytes,
                });
            }
        }
        // Rotate when the active segment is full.
        let rotate = match &w.active {
            None => true,
            Some((first, _)) => {
                let index = lock(&self.shared.index);
                index
                    .segments
                    .get(first)
                    .is_none_or(|m| m.bytes >= config.segment_bytes)
            }
        };
        if rotate {
            if let Some((_, old)) = w.active.take()
                && w.data_dirty
                && config.fsync != FsyncPolicy::Never
            {
                old.sync_data()
                    .map_err(|e| SpoolError::from_io("cannot sync a segment", e))?;
            }
            let path = segment_path(&config.dir, first_seq);
            let file = private_file(&path, true)
                .map_err(|e| SpoolError::from_io("cannot create a segment", e))?;
            w.active = Some((first_seq, file));
            w.dir_dirty = true;
            lock(&self.shared.index).segments.insert(
                first_seq,
                SegmentMeta {
                    bytes: 0,
                    last_seq: first_seq - 1,
                },
            );
        }
        let Some((active_first, file)) = w.active.as_mut() else {
            return Err(SpoolError::Invalid("no active segment"));
        };
        let active_first = *active_first;
        let before = lock(&self.shared.index)
            .segments
            .get(&active_first)
            .map_or(0, |m| m.bytes);
        if let Err(e) = file.write_all(&w.scratch) {
            // Leave no partial frame behind (a full disk must not tear the segment).
            let _ = file.set_len(before);
            return Err(SpoolError::from_io("cannot write a segment", e));
        }
        w.data_dirty = true;
        let last = first_seq + records.len() as u64 - 1;
        if config.fsync == FsyncPolicy::Always
            && let Err(e) = sync_writer(w, &config.dir)
        {
            if let Some((_, file)) = w.active.as_mut() {
                let _ = file.set_len(before);
            }
            return Err(e);
        }
        w.next_seq = last + 1;
        {
            let mut index = lock(&self.shared.index);
            index.total_bytes += len;
            if let Some(meta) = index.segments.get_mut(&active_first) {
                meta.bytes += len;
                meta.last_seq = last;
            }
        }
        self.shared.visible.fetch_max(last, Ordering::AcqRel);
        if let Some(h) = w.high_water.as_mut()
            && h.at.elapsed() >= HIGH_WATER_PERIOD
        {
            // In place, no sync: a stale mark only misses the newest records' loss.
            if h.file.write(&last.to_le_bytes(), false).is_ok() {
                h.written = last;
            }
            h.at = Instant::now();
        }
        drop(writer);
        self.shared.notify.notify_waiters();
        Ok((first_seq..=last).collect())
    }

    /// Makes everything appended so far durable (the `interval` policy's timer, shutdown).
    pub fn sync(&self) -> Result<(), SpoolError> {
        let mut writer = lock(&self.shared.writer);
        sync_writer(&mut writer, &self.shared.config.dir)?;
        let last = writer.next_seq - 1;
        if let Some(h) = writer.high_water.as_mut()
            && h.written < last
        {
            h.file
                .write(&last.to_le_bytes(), true)
                .map_err(|e| SpoolError::from_io("cannot write the high-water mark", e))?;
            h.written = last;
            h.at = Instant::now();
        }
        Ok(())
    }

    /// A reader for `destination` (one of those the spool was opened with), positioned after
    /// the destination's committed cursor.
    pub fn reader(&self, destination: &str) -> Result<SpoolReader, SpoolError> {
        let index = lock(&self.shared.index);
        let cursor = index
            .cursors
            .get(destination)
            .copied()
            .ok_or_else(|| SpoolError::InvalidDestination(destination.to_owned()))?;
        drop(index);
        let (file, _) = SlotFile::open(
            &cursor_path(&self.shared.config.dir, destination),
            &cursor.encode_to_vec(),
            self.shared.config.fsync == FsyncPolicy::Always,
        )
        .map_err(|e| SpoolError::from_io("cannot open a cursor", e))?;
        Ok(SpoolReader {
            spool: self.clone(),
            destination: destination.to_owned(),
            next_seq: cursor.committed + 1,
            committed: cursor.committed,
            cursor: file,
            position: None,
        })
    }

    /// Current sizes.
    pub fn stats(&self) -> SpoolStats {
        let index = lock(&self.shared.index);
        let last = self.shared.visible.load(Ordering::Acquire);
        let min_committed = index
            .cursors
            .values()
            .map(|c| c.committed)
            .min()
            .unwrap_or(last);
        SpoolStats {
            bytes: index.total_bytes,
            backlog_records: last.saturating_sub(min_committed),
            last_sequence: last,
        }
    }

    fn collect_garbage(&self, min_committed: u64) {
        let mut writer = lock(&self.shared.writer);
        let mut index = lock(&self.shared.index);
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
            if fs::remove_file(segment_path(&self.shared.config.dir, first)).is_ok()
                || !segment_path(&self.shared.config.dir, first).exists()
            {
                index.segments.remove(&first);
                index.total_bytes -= bytes;
                freed = true;
            }
        }
        drop(index);
        if freed {
            // Room again: the next append may well fit.
            *lock(&self.shared.refusal) = None;
        }
    }
}

fn sync_writer(w: &mut Writer, dir: &Path) -> Result<(), SpoolError> {
    if w.data_dirty {
        if let Some((_, file)) = &w.active {
            file.sync_data()
                .map_err(|e| SpoolError::from_io("cannot sync a segment", e))?;
        }
        w.data_dirty = false;
    }
    if w.dir_dirty {
        sync_dir(&dir.join(SEGMENTS))
            .map_err(|e| SpoolError::from_io("cannot sync the segment directory", e))?;
        w.dir_dirty = false;
    }
    Ok(())
}

/// Every segment of a spool scanned, and the damage found.
struct Analysis {
    segments: Vec<(u64, SegmentScan)>,
    damage: Vec<Damage>,
}

fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut firsts: Vec<u64> = fs::read_dir(dir.join(SEGMENTS))?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension()? != SEGMENT_EXT {
                return None;
            }
            path.file_stem()?.to_str()?.parse().ok()
        })
        .collect();
    firsts.sort_unstable();
    Ok(firsts)
}

/// Reads every segment (without changing any): valid records, damage skipped, torn tails,
/// sequences missing between `committed_by_all` and `high_water`.
fn analyse(dir: &Path, committed_by_all: u64, high_water: u64) -> io::Result<Analysis> {
    let mut segments = Vec::new();
    for first in list_segments(dir)? {
        let data = fs::read(segment_path(dir, first))?;
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
/// [`Spool::open`] would find, for every destination that has a cursor.
pub fn inspect(dir: &Path) -> Result<Inspection, SpoolError> {
    let io_err = SpoolError::from_io;
    if !dir.join(SEGMENTS).is_dir() {
        return Err(SpoolError::Invalid(
            "not a spool directory (no segments/ in it)",
        ));
    }
    let mut inspection = Inspection::default();
    let mut names: Vec<String> = match fs::read_dir(dir.join(CURSORS)) {
        Ok(entries) => entries
            .filter_map(|e| {
                let path = e.ok()?.path();
                if path.extension()? != CURSOR_EXT {
                    return None;
                }
                Some(path.file_stem()?.to_str()?.to_owned())
            })
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err("cannot list the cursors", e)),
    };
    names.sort();
    for name in names {
        let contents =
            slots::read(&cursor_path(dir, &name)).map_err(|e| io_err("cannot read a cursor", e))?;
        let cursor = match contents {
            slots::Contents::Current { value, .. } | slots::Contents::Legacy(value) => {
                Cursor::decode(value.as_slice()).ok()
            }
            slots::Contents::Absent => Some(Cursor::default()),
            slots::Contents::Damaged => None,
        };
        let cursor = cursor.unwrap_or_else(|| {
            inspection.recovery.damaged_cursors.push(name.clone());
            Cursor::default()
        });
        if cursor.in_flight_end > cursor.committed {
            inspection
                .recovery
                .in_flight
                .insert(name.clone(), cursor.in_flight_end - cursor.committed);
        }
        inspection.cursors.insert(name, cursor);
    }
    inspection.high_water = match slots::read(&dir.join(HIGH_WATER))
        .map_err(|e| io_err("cannot read the high-water mark", e))?
    {
        slots::Contents::Current { value, .. } => high_water_value(&value),
        _ => 0,
    };
    let high = inspection
        .cursors
        .values()
        .map(|c| c.committed.max(c.in_flight_end))
        .chain([inspection.high_water])
        .max()
        .unwrap_or(0);
    let min_committed = inspection
        .cursors
        .values()
        .map(|c| c.committed)
        .min()
        .unwrap_or(0);
    let analysis =
        analyse(dir, min_committed, high).map_err(|e| io_err("cannot read a segment", e))?;
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

/// One destination's view of the spool: reads records in order, commits what the
/// destination accepted.
///
/// It reads a segment only up to the length the index knows (what successful appends wrote),
/// so it never sees a frame that a failed append is about to cut; within that length a frame
/// that does not verify is damage, skipped to the next valid frame (logged with the records
/// lost), and sequences that no segment holds are skipped the same way.
pub struct SpoolReader {
    spool: Spool,
    destination: String,
    next_seq: u64,
    committed: u64,
    cursor: SlotFile,
    /// Open segment.
    position: Option<Position>,
}

/// Where a reader is in a segment, with bytes read ahead (always within the segment's
/// known length, so never stale).
struct Position {
    first: u64,
    file: File,
    offset: u64,
    /// Sequence of the last record read in this segment (first - 1 before any).
    last_seq: u64,
    /// `(offset, last_seq)` before the last record returned.
    before_last: (u64, u64),
    buffer: Vec<u8>,
    buffer_start: u64,
}

/// Bytes read ahead at once.
const READ_AHEAD: usize = 256 * 1024;

impl Position {
    /// Bytes `[at, at + len)` of the segment, which must lie within `extent`.
    fn bytes(&mut self, at: u64, len: usize, extent: u64) -> io::Result<&[u8]> {
        let end = at + len as u64;
        if end > extent {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "beyond the segment",
            ));
        }
        let cached = at >= self.buffer_start && end <= self.buffer_start + self.buffer.len() as u64;
        if !cached {
            let want = (len.max(READ_AHEAD) as u64).min(extent - at) as usize;
            self.buffer.resize(want, 0);
            self.file.read_exact_at(&mut self.buffer, at)?;
            self.buffer_start = at;
        }
        let from = (at - self.buffer_start) as usize;
        Ok(&self.buffer[from..from + len])
    }
}

impl SpoolReader {
    /// The destination's name.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The last committed sequence.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Whether records after the read position are available now.
    pub fn has_more(&self) -> bool {
        self.spool.shared.visible.load(Ordering::Acquire) >= self.next_seq
    }

    /// Waits until [`has_more`](Self::has_more) (returns at once if so).
    pub async fn wait(&self) {
        loop {
            let notified = self.spool.shared.notify.notified();
            if self.has_more() {
                return;
            }
            notified.await;
        }
    }

    /// Reads up to `max_records` records (and, after the first, up to about `max_bytes` of
    /// bodies) after the read position; empty when none are available.
    pub fn read(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<SpoolRecord>, SpoolError> {
        let visible = self.spool.shared.visible.load(Ordering::Acquire);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while out.len() < max_records
            && self.next_seq <= visible
            && (out.is_empty() || bytes < max_bytes)
        {
            match self.read_one()? {
                Some(record) if record.sequence <= visible => {
                    bytes += record.body.len();
                    self.next_seq = record.sequence + 1;
                    out.push(record);
                }
                Some(_) => {
                    // Appended after `visible` was loaded: read it next time.
                    if let Some(pos) = self.position.as_mut() {
                        (pos.offset, pos.last_seq) = pos.before_last;
                    }
                    break;
                }
                None => {
                    // Not in the current segment: move to the one that holds next_seq.
                    match self.open_segment_for(self.next_seq)? {
                        Some(first) if first > self.next_seq => {
                            self.skip_missing(first - 1);
                        }
                        Some(_) => {}
                        None => {
                            // Appended (visible) yet in no segment: lost.
                            self.skip_missing(visible);
                            break;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn skip_missing(&mut self, last: u64) {
        if last >= self.next_seq {
            tracing::warn!(
                destination = %self.destination,
                first = self.next_seq,
                last,
                records = last - self.next_seq + 1,
                "spool records missing (a segment truncated or deleted): skipped"
            );
            self.next_seq = last + 1;
        }
    }

    /// Opens the segment holding `seq` (or the first one after it); returns its first
    /// sequence, None if there is none.
    fn open_segment_for(&mut self, seq: u64) -> Result<Option<u64>, SpoolError> {
        let target = {
            let index = lock(&self.spool.shared.index);
            let containing = index
                .segments
                .range(..=seq)
                .next_back()
                .filter(|(_, m)| m.last_seq >= seq)
                .map(|(f, _)| *f);
            match containing {
                // Already read to its end: a later segment must hold it.
                Some(f) if self.position.as_ref().is_some_and(|p| p.first == f) => {
                    index.segments.range(f + 1..).next().map(|(f, _)| *f)
                }
                Some(f) => Some(f),
                None => index.segments.range(seq + 1..).next().map(|(f, _)| *f),
            }
        };
        let Some(first) = target else {
            return Ok(None);
        };
        let path = segment_path(&self.spool.shared.config.dir, first);
        let file =
            File::open(&path).map_err(|e| SpoolError::from_io("cannot open a segment", e))?;
        self.position = Some(Position {
            first,
            file,
            offset: 0,
            last_seq: first - 1,
            before_last: (0, first - 1),
            buffer: Vec::new(),
            buffer_start: 0,
        });
        Ok(Some(first))
    }

    /// The next record at or after `next_seq` in the open segment, or None at its end.
    fn read_one(&mut self) -> Result<Option<SpoolRecord>, SpoolError> {
        let read_err = |e| SpoolError::from_io("cannot read a segment", e);
        loop {
            let Some(pos) = self.position.as_mut() else {
                return Ok(None);
            };
            let extent = {
                let index = lock(&self.spool.shared.index);
                match index.segments.get(&pos.first) {
                    Some(meta) => meta.bytes,
                    None => {
                        drop(index);
                        self.position = None;
                        return Ok(None);
                    }
                }
            };
            if pos.offset >= extent {
                return Ok(None);
            }
            let at = pos.offset;
            let mut record = None;
            if at + HEADER_LEN as u64 <= extent {
                let header = pos.bytes(at, HEADER_LEN, extent).map_err(read_err)?;
                if let Some((len, _)) = frame::header(header)
                    && len <= frame::MAX_PAYLOAD
                    && at + (HEADER_LEN + len) as u64 <= extent
                {
                    let data = pos.bytes(at, HEADER_LEN + len, extent).map_err(read_err)?;
                    record = scan::frame_at(data, 0)
                        .filter(|(r, _)| r.sequence > pos.last_seq)
                        .map(|(r, _)| (r, HEADER_LEN + len));
                }
            }
            let Some((record, len)) = record else {
                // Within the known length every frame was written whole: this is damage.
                self.skip_damage(extent)?;
                continue;
            };
            pos.before_last = (pos.offset, pos.last_seq);
            pos.offset += len as u64;
            pos.last_seq = record.sequence;
            if record.sequence >= self.next_seq {
                return Ok(Some(record));
            }
        }
    }

    /// Moves past damage at the read position to the next valid frame of the segment (or its
    /// end), logging what was lost.
    fn skip_damage(&mut self, extent: u64) -> Result<(), SpoolError> {
        let Some(pos) = self.position.as_mut() else {
            return Ok(());
        };
        let at = pos.offset;
        let rest_len =
            usize::try_from(extent - at).map_err(|_| SpoolError::Invalid("segment too large"))?;
        let mut rest = vec![0u8; rest_len];
        pos.file
            .read_exact_at(&mut rest, at)
            .map_err(|e| SpoolError::from_io("cannot read a segment", e))?;
        let expected = pos.last_seq + 1;
        let (skip, resumed) = match scan::resync(&rest, 0, expected) {
            Some((offset, seq)) => (offset as u64, Some(seq)),
            None => (extent - at, None),
        };
        let lost = resumed.map(|seq| {
            scan::uncommitted(
                expected,
                seq.saturating_sub(1),
                self.next_seq.saturating_sub(1),
            )
            .map_or(0, |(a, b)| b - a + 1)
        });
        tracing::warn!(
            destination = %self.destination,
            segment = pos.first,
            offset = at,
            bytes = skip,
            records = lost,
            "damaged spool frames skipped"
        );
        pos.offset = at + skip;
        if let Some(seq) = resumed {
            pos.last_seq = seq - 1;
        }
        Ok(())
    }

    /// Notes that records up to `end` are being handed to the destination (a crash before the
    /// commit re-sends them: they are reported as possible duplicates after the restart).
    pub fn mark_in_flight(&mut self, end: u64) -> Result<(), SpoolError> {
        self.write_cursor(
            Cursor {
                committed: self.committed,
                in_flight_end: end,
            },
            false,
        )
    }

    /// Commits every record up to `sequence` as accepted by the destination; segments every
    /// destination has committed are deleted. The cursor is written in place (see the
    /// [module docs](super)), so this works on a full disk and frees its space.
    pub fn commit(&mut self, sequence: u64) -> Result<(), SpoolError> {
        if sequence <= self.committed {
            return Ok(());
        }
        let durable = self.spool.shared.config.fsync == FsyncPolicy::Always;
        self.write_cursor(
            Cursor {
                committed: sequence,
                in_flight_end: sequence,
            },
            durable,
        )?;
        self.committed = sequence;
        let min = {
            let mut index = lock(&self.spool.shared.index);
            if let Some(c) = index.cursors.get_mut(&self.destination) {
                c.committed = sequence;
            }
            index
                .cursors
                .values()
                .map(|c| c.committed)
                .min()
                .unwrap_or(sequence)
        };
        self.spool.collect_garbage(min);
        // An open handle would keep a collected segment's blocks allocated.
        if let Some(pos) = &self.position
            && !lock(&self.spool.shared.index)
                .segments
                .contains_key(&pos.first)
        {
            self.position = None;
        }
        Ok(())
    }

    fn write_cursor(&mut self, cursor: Cursor, durable: bool) -> Result<(), SpoolError> {
        self.cursor
            .write(&cursor.encode_to_vec(), durable)
            .map_err(|e| SpoolError::from_io("cannot write a cursor", e))
    }
}
