//! Appending: frames built in memory, written to the active segment in one write, synced
//! once for everything appended together (group commit), a new segment started when the
//! active one is full, and nothing of a refused append left behind.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use prost::Message;

use crate::config::FsyncPolicy;
use crate::error::SpoolError;
use crate::frame;
use crate::fs::OpenMode;
use crate::record::NewRecord;
use crate::state::{SEGMENTS, SegmentMeta, Shared, WriterState, lock, segment_path};

/// How often the high-water mark is written while appending.
const HIGH_WATER_PERIOD: Duration = Duration::from_secs(1);

/// Appends `records` in one write (see [`Spool::append`](crate::Spool::append)).
pub(crate) fn append(shared: &Shared, records: &[NewRecord]) -> Result<Vec<u64>, SpoolError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let config = &shared.config;
    let mut writer = lock(&shared.writer);
    let w = &mut *writer;
    let first_seq = w.next_seq;
    w.scratch.clear();
    let mut payload = Vec::new();
    for (i, r) in records.iter().enumerate() {
        payload.clear();
        r.to_stored(first_seq + i as u64)
            .encode(&mut payload)
            .map_err(SpoolError::Encode)?;
        frame::encode_into(&payload, &mut w.scratch);
    }
    let len = w.scratch.len() as u64;
    {
        let index = lock(&shared.index);
        if index.total_bytes.saturating_add(len) > config.max_bytes {
            return Err(SpoolError::Full {
                needed: len,
                used: index.total_bytes,
                limit: config.max_bytes,
            });
        }
    }
    let rotate = match &w.active {
        None => true,
        Some((first, _)) => lock(&shared.index)
            .segments
            .get(first)
            .is_none_or(|m| m.bytes >= config.segment_bytes),
    };
    if rotate {
        start_segment(shared, w, first_seq)?;
    }
    let Some((active_first, file)) = w.active.as_mut() else {
        return Err(SpoolError::Invalid("no active segment"));
    };
    let active_first = *active_first;
    let before = lock(&shared.index)
        .segments
        .get(&active_first)
        .map_or(0, |m| m.bytes);
    if let Err(e) = file.append(&w.scratch) {
        // Leave no partial frame behind (a full disk must not tear the segment), not even
        // after a crash: the part written may reach the disk, so the cut must too.
        let _ = file.set_len(before);
        if config.fsync == FsyncPolicy::Always {
            let _ = file.sync_data();
        }
        return Err(SpoolError::from_io("cannot write a segment", e));
    }
    w.data_dirty = true;
    let last = first_seq + records.len() as u64 - 1;
    if config.fsync == FsyncPolicy::Always
        && let Err(e) = sync_segments(shared, w)
    {
        if let Some((_, file)) = w.active.as_mut() {
            let _ = file.set_len(before);
        }
        return Err(e);
    }
    w.next_seq = last + 1;
    {
        let mut index = lock(&shared.index);
        index.total_bytes += len;
        if let Some(meta) = index.segments.get_mut(&active_first) {
            meta.bytes += len;
            meta.last_seq = last;
        }
    }
    shared.visible.fetch_max(last, Ordering::AcqRel);
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
    shared.notify.notify_waiters();
    Ok((first_seq..=last).collect())
}

/// Closes the active segment (synced unless the policy is `never`) and starts one whose
/// first record is `first_seq`.
fn start_segment(shared: &Shared, w: &mut WriterState, first_seq: u64) -> Result<(), SpoolError> {
    let config = &shared.config;
    if let Some((_, old)) = w.active.take()
        && w.data_dirty
        && config.fsync != FsyncPolicy::Never
    {
        old.sync_data()
            .map_err(|e| SpoolError::from_io("cannot sync a segment", e))?;
    }
    let path = segment_path(&config.dir, first_seq);
    let file = shared
        .fs
        .open(&path, OpenMode::Append)
        .map_err(|e| SpoolError::from_io("cannot create a segment", e))?;
    w.active = Some((first_seq, file));
    w.dir_dirty = true;
    lock(&shared.index).segments.insert(
        first_seq,
        SegmentMeta {
            bytes: 0,
            last_seq: first_seq - 1,
        },
    );
    Ok(())
}

/// Makes everything appended so far durable, and the high-water mark current (see
/// [`Spool::sync`](crate::Spool::sync)).
pub(crate) fn sync(shared: &Shared) -> Result<(), SpoolError> {
    let mut writer = lock(&shared.writer);
    sync_segments(shared, &mut writer)?;
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

/// Syncs the active segment's data and the segment directory, where they changed.
fn sync_segments(shared: &Shared, w: &mut WriterState) -> Result<(), SpoolError> {
    if w.data_dirty {
        if let Some((_, file)) = &w.active {
            file.sync_data()
                .map_err(|e| SpoolError::from_io("cannot sync a segment", e))?;
        }
        w.data_dirty = false;
    }
    if w.dir_dirty {
        shared
            .fs
            .sync_dir(&shared.config.dir.join(SEGMENTS))
            .map_err(|e| SpoolError::from_io("cannot sync the segment directory", e))?;
        w.dir_dirty = false;
    }
    Ok(())
}
