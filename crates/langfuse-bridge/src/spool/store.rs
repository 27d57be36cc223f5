//! The spool's files: segments of framed records, destination cursors, recovery.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use prost::Message;

use super::frame::{self, Decoded, HEADER_LEN};
use super::record::{Cursor, RecordKind, SpoolRecord};
use super::{FsyncPolicy, SpoolConfig, SpoolError};

const SEGMENTS: &str = "segments";
const CURSORS: &str = "cursors";
const SEGMENT_EXT: &str = "seg";
const CURSOR_EXT: &str = "cursor";

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
pub struct Recovery {
    /// Records found on disk.
    pub records: u64,
    /// Bytes cut from segment ends (torn or corrupt frames).
    pub truncated_bytes: u64,
    /// Per destination: records handed to it before the restart but not committed (they are
    /// sent again, so they may arrive twice).
    pub in_flight: BTreeMap<String, u64>,
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

struct Writer {
    /// The segment being appended to: (first sequence, file).
    active: Option<(u64, File)>,
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
        let io_err = |what: &str, e: io::Error| SpoolError::Io(format!("{what}: {e}"));
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

        let mut recovery = Recovery::default();
        let mut cursors = BTreeMap::new();
        for d in destinations {
            let cursor = read_cursor(&cursor_path(&dir, d));
            if cursor.in_flight_end > cursor.committed {
                recovery
                    .in_flight
                    .insert((*d).to_owned(), cursor.in_flight_end - cursor.committed);
            }
            cursors.insert((*d).to_owned(), cursor);
        }

        let mut firsts: Vec<u64> = fs::read_dir(dir.join(SEGMENTS))
            .map_err(|e| io_err("cannot list the segments", e))?
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                if path.extension()? != SEGMENT_EXT {
                    return None;
                }
                path.file_stem()?.to_str()?.parse().ok()
            })
            .collect();
        firsts.sort_unstable();

        let mut segments = BTreeMap::new();
        let mut total_bytes = 0;
        let mut last_seq = 0u64;
        for first in &firsts {
            let path = segment_path(&dir, *first);
            let (meta, cut, count) = recover_segment(&path, *first, config.fsync)
                .map_err(|e| io_err("cannot recover a segment", e))?;
            recovery.truncated_bytes += cut;
            recovery.records += count;
            last_seq = last_seq.max(meta.last_seq);
            total_bytes += meta.bytes;
            segments.insert(*first, meta);
        }
        let committed_max = cursors.values().map(|c| c.committed).max().unwrap_or(0);
        let next_seq = last_seq.max(committed_max) + 1;

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

        let min_committed = cursors.values().map(|c| c.committed).min().unwrap_or(0);
        let shared = Arc::new(Shared {
            writer: Mutex::new(Writer {
                active,
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
    pub fn append(&self, records: &[NewRecord]) -> Result<Vec<u64>, SpoolError> {
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
            .map_err(|e| SpoolError::Io(format!("cannot encode a record: {e}")))?;
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
            return Err(SpoolError::Io("no active segment".into()));
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
        drop(writer);
        self.shared.notify.notify_waiters();
        Ok((first_seq..=last).collect())
    }

    /// Makes everything appended so far durable (the `interval` policy's timer, shutdown).
    pub fn sync(&self) -> Result<(), SpoolError> {
        let mut writer = lock(&self.shared.writer);
        sync_writer(&mut writer, &self.shared.config.dir)
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
        Ok(SpoolReader {
            spool: self.clone(),
            destination: destination.to_owned(),
            next_seq: cursor.committed + 1,
            committed: cursor.committed,
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
        for (first, bytes) in done {
            if fs::remove_file(segment_path(&self.shared.config.dir, first)).is_ok()
                || !segment_path(&self.shared.config.dir, first).exists()
            {
                index.segments.remove(&first);
                index.total_bytes -= bytes;
            }
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

/// Validates a segment; cuts it at the first frame that does not verify. Returns its meta,
/// the bytes cut and the records kept.
fn recover_segment(
    path: &Path,
    first: u64,
    fsync: FsyncPolicy,
) -> io::Result<(SegmentMeta, u64, u64)> {
    let data = fs::read(path)?;
    let mut offset = 0usize;
    let mut expected = first;
    while let Decoded::Frame(payload, len) = frame::decode(&data[offset..]) {
        match SpoolRecord::decode(payload) {
            Ok(r) if r.sequence == expected => {
                offset += len;
                expected += 1;
            }
            _ => break,
        }
    }
    let cut = (data.len() - offset) as u64;
    if cut > 0 {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(offset as u64)?;
        if fsync != FsyncPolicy::Never {
            file.sync_all()?;
        }
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok((
        SegmentMeta {
            bytes: offset as u64,
            last_seq: expected - 1,
        },
        cut,
        expected - first,
    ))
}

fn read_cursor(path: &Path) -> Cursor {
    match fs::read(path) {
        Ok(data) => match frame::decode(&data) {
            Decoded::Frame(payload, _) => Cursor::decode(payload).unwrap_or_default(),
            _ => Cursor::default(),
        },
        Err(_) => Cursor::default(),
    }
}

/// One destination's view of the spool: reads records in order, commits what the
/// destination accepted.
pub struct SpoolReader {
    spool: Spool,
    destination: String,
    next_seq: u64,
    committed: u64,
    /// Open segment: (first sequence, reader, offset).
    position: Option<(u64, BufReader<File>, u64)>,
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
                Some(record) => {
                    bytes += record.body.len();
                    self.next_seq = record.sequence + 1;
                    out.push(record);
                }
                None => {
                    // Not in the current segment: move to the one that holds next_seq.
                    if !self.open_segment_for(self.next_seq)? {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Opens the segment holding `seq` (or the first one after it); false if none.
    fn open_segment_for(&mut self, seq: u64) -> Result<bool, SpoolError> {
        let target = {
            let index = lock(&self.spool.shared.index);
            let containing = index
                .segments
                .range(..=seq)
                .next_back()
                .filter(|(_, m)| m.last_seq >= seq)
                .map(|(f, _)| *f);
            containing.or_else(|| index.segments.range(seq + 1..).next().map(|(f, _)| *f))
        };
        let Some(first) = target else {
            return Ok(false);
        };
        if self.position.as_ref().is_some_and(|(f, _, _)| *f == first) {
            // Already there and nothing readable: a later segment must hold it.
            let index = lock(&self.spool.shared.index);
            let Some((next, _)) = index.segments.range(first + 1..).next() else {
                return Ok(false);
            };
            let next = *next;
            drop(index);
            return self.open_at(next);
        }
        self.open_at(first)
    }

    fn open_at(&mut self, first: u64) -> Result<bool, SpoolError> {
        let path = segment_path(&self.spool.shared.config.dir, first);
        let file =
            File::open(&path).map_err(|e| SpoolError::from_io("cannot open a segment", e))?;
        self.position = Some((first, BufReader::with_capacity(256 * 1024, file), 0));
        Ok(true)
    }

    /// The next record at or after `next_seq` in the open segment, or None at its end.
    fn read_one(&mut self) -> Result<Option<SpoolRecord>, SpoolError> {
        loop {
            let Some((_, reader, offset)) = self.position.as_mut() else {
                return Ok(None);
            };
            let mut header = [0u8; HEADER_LEN];
            match reader.read_exact(&mut header) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    // Partial header: rewind so a later read sees the whole frame.
                    reader
                        .seek(SeekFrom::Start(*offset))
                        .map_err(|e| SpoolError::from_io("cannot read a segment", e))?;
                    return Ok(None);
                }
                Err(e) => return Err(SpoolError::from_io("cannot read a segment", e)),
            }
            let Some((len, crc)) = frame::header(&header) else {
                return Ok(None);
            };
            if len > frame::MAX_PAYLOAD {
                return Ok(None);
            }
            let mut payload = vec![0u8; len];
            if let Err(e) = reader.read_exact(&mut payload) {
                reader
                    .seek(SeekFrom::Start(*offset))
                    .map_err(|e| SpoolError::from_io("cannot read a segment", e))?;
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    return Ok(None);
                }
                return Err(SpoolError::from_io("cannot read a segment", e));
            }
            if crc32fast::hash(&payload) != crc {
                return Ok(None);
            }
            *offset += (HEADER_LEN + len) as u64;
            let record = SpoolRecord::decode(payload.as_slice())
                .map_err(|e| SpoolError::Io(format!("undecodable record: {e}")))?;
            if record.sequence >= self.next_seq {
                return Ok(Some(record));
            }
        }
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
    /// destination has committed are deleted.
    pub fn commit(&mut self, sequence: u64) -> Result<(), SpoolError> {
        if sequence <= self.committed {
            return Ok(());
        }
        self.committed = sequence;
        let durable = self.spool.shared.config.fsync == FsyncPolicy::Always;
        self.write_cursor(
            Cursor {
                committed: sequence,
                in_flight_end: sequence,
            },
            durable,
        )?;
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
        Ok(())
    }

    fn write_cursor(&self, cursor: Cursor, durable: bool) -> Result<(), SpoolError> {
        let dir = &self.spool.shared.config.dir;
        let path = cursor_path(dir, &self.destination);
        let tmp = path.with_extension("tmp");
        let mut data = Vec::new();
        frame::encode_into(&cursor.encode_to_vec(), &mut data);
        let result = (|| -> io::Result<()> {
            let mut file = private_file(&tmp, false)?;
            file.write_all(&data)?;
            if durable {
                file.sync_data()?;
            }
            fs::rename(&tmp, &path)?;
            if durable {
                sync_dir(&dir.join(CURSORS))?;
            }
            Ok(())
        })();
        result.map_err(|e| SpoolError::from_io("cannot write a cursor", e))
    }
}
