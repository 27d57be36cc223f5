//! Reading: one [`SpoolReader`] per destination, in sequence order, skipping damage and
//! missing sequences with a log line, committing what the destination accepted.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::cursors::{self, CursorFile};
use crate::error::SpoolError;
use crate::frame::{self, HEADER_LEN};
use crate::fs::{FsFile, OpenMode};
use crate::record::{Cursor, SpoolRecord};
use crate::scan;
use crate::state::{Shared, lock, segment_path};

/// Bytes read ahead at once.
const READ_AHEAD: usize = 256 * 1024;

/// One destination's view of the spool: reads records in order, commits what the
/// destination accepted.
///
/// It reads a segment only up to the length the index knows (what successful appends wrote),
/// so it never sees a frame that a failed append is about to cut; within that length a frame
/// that does not verify is damage, skipped to the next valid frame (logged with the records
/// lost), and sequences that no segment holds are skipped the same way.
pub struct SpoolReader {
    shared: Arc<Shared>,
    destination: String,
    next_seq: u64,
    committed: u64,
    cursor: CursorFile,
    /// Open segment.
    position: Option<Position>,
}

/// Where a reader is in a segment, with bytes read ahead (always within the segment's
/// known length, so never stale).
struct Position {
    first: u64,
    file: Box<dyn FsFile>,
    offset: u64,
    /// Sequence of the last record read in this segment (first - 1 before any).
    last_seq: u64,
    /// `(offset, last_seq)` before the last record returned.
    before_last: (u64, u64),
    buffer: Vec<u8>,
    buffer_start: u64,
}

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
            self.file.read_at(&mut self.buffer, at)?;
            self.buffer_start = at;
        }
        let from = (at - self.buffer_start) as usize;
        Ok(&self.buffer[from..from + len])
    }
}

impl SpoolReader {
    /// A reader for `destination` positioned after its committed cursor.
    pub(crate) fn open(shared: Arc<Shared>, destination: &str) -> Result<SpoolReader, SpoolError> {
        let cursor = lock(&shared.index)
            .cursors
            .get(destination)
            .copied()
            .ok_or_else(|| SpoolError::InvalidDestination(destination.to_owned()))?;
        // The index holds what the file held when the spool was opened, or was committed
        // through it since: the file's value is not read again.
        let (file, _) = CursorFile::open(
            &*shared.fs,
            &shared.config.dir,
            destination,
            cursor,
            cursors::durable(&shared),
        )?;
        Ok(SpoolReader {
            shared,
            destination: destination.to_owned(),
            next_seq: cursor.committed + 1,
            committed: cursor.committed,
            cursor: file,
            position: None,
        })
    }

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
        self.shared.visible.load(Ordering::Acquire) >= self.next_seq
    }

    /// Waits until [`has_more`](Self::has_more) (returns at once if so).
    pub async fn wait(&self) {
        loop {
            let notified = self.shared.notify.notified();
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
        let visible = self.shared.visible.load(Ordering::Acquire);
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
            let index = lock(&self.shared.index);
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
        let path = segment_path(&self.shared.config.dir, first);
        let file = self
            .shared
            .fs
            .open(&path, OpenMode::Read)
            .map_err(|e| SpoolError::from_io("cannot open a segment", e))?;
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
                let index = lock(&self.shared.index);
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
            .read_at(&mut rest, at)
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
        self.cursor.write(
            Cursor {
                committed: self.committed,
                in_flight_end: end,
            },
            false,
        )
    }

    /// Commits every record up to `sequence` as accepted by the destination; segments every
    /// destination has committed are deleted. The cursor is written in place (see the
    /// [crate docs](crate)), so this works on a full disk and frees its space.
    pub fn commit(&mut self, sequence: u64) -> Result<(), SpoolError> {
        if sequence <= self.committed {
            return Ok(());
        }
        self.cursor.write(
            Cursor {
                committed: sequence,
                in_flight_end: sequence,
            },
            cursors::durable(&self.shared),
        )?;
        self.committed = sequence;
        cursors::committed(&self.shared, &self.destination, sequence);
        // An open handle would keep a collected segment's blocks allocated.
        if let Some(pos) = &self.position
            && !lock(&self.shared.index).segments.contains_key(&pos.first)
        {
            self.position = None;
        }
        Ok(())
    }
}
