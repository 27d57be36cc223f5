//! Finding frames again after damage, and the damage report of a whole spool.
//!
//! A frame is trusted when its length fits, its CRC matches, its payload decodes as a
//! [`SpoolRecord`] and its sequence continues the segment's order. After a frame that fails,
//! the next trusted frame is searched: first right after the failed frame as its header
//! describes it (damage inside one payload costs exactly that record), then byte by byte, with
//! a sequence no larger than the bytes in between could have held (in-place damage does not
//! move frames). Bytes after which no frame is found are a torn tail.

use std::fmt;

use prost::Message;

use crate::frame::{self, Decoded, HEADER_LEN};
use crate::record::SpoolRecord;

/// The smallest frame: a header and a record holding only its sequence (tag and one byte).
const MIN_FRAME: u64 = HEADER_LEN as u64 + 2;

/// One damaged place in the spool (see [`Recovery::damage`](crate::Recovery::damage)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// Bytes inside a segment that hold no valid frame, followed by valid ones: skipped,
    /// reading resumes at the next valid frame.
    Corrupt {
        /// The segment (its first sequence, as in its file name).
        segment: u64,
        /// Where the damage starts in the segment file.
        offset: u64,
        /// Bytes skipped.
        bytes: u64,
        /// Records lost that not every destination had committed.
        lost_records: u64,
    },
    /// The end of a segment holding no valid frame: cut when the spool is opened (a write
    /// torn by a crash, or damage at the end). The records it held, when known, are reported
    /// as [`Damage::Missing`].
    TornTail {
        /// The segment.
        segment: u64,
        /// Where the cut is.
        offset: u64,
        /// Bytes cut.
        bytes: u64,
    },
    /// Sequences that were appended (a later segment, a cursor or the high-water mark says so)
    /// but that no segment holds any more: a segment deleted or truncated, or a tail cut.
    Missing {
        /// The segment they should follow (None: before the first segment).
        after_segment: Option<u64>,
        /// First missing sequence (not committed by every destination).
        first: u64,
        /// Last missing sequence.
        last: u64,
    },
}

impl Damage {
    /// Records lost to this damage that not every destination had committed.
    pub fn lost_records(&self) -> u64 {
        match self {
            Damage::Corrupt { lost_records, .. } => *lost_records,
            Damage::TornTail { .. } => 0,
            Damage::Missing { first, last, .. } => last - first + 1,
        }
    }

    /// Whether this is more than the torn tail a crash leaves.
    pub fn is_loss(&self) -> bool {
        !matches!(self, Damage::TornTail { .. })
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Corrupt {
                segment,
                offset,
                bytes,
                lost_records,
            } => write!(
                f,
                "segment {segment:020}.seg: {bytes} damaged bytes at offset {offset} skipped, {lost_records} records lost"
            ),
            Damage::TornTail {
                segment,
                offset,
                bytes,
            } => write!(
                f,
                "segment {segment:020}.seg: torn tail of {bytes} bytes at offset {offset}"
            ),
            Damage::Missing {
                after_segment,
                first,
                last,
            } => {
                write!(
                    f,
                    "sequences {first}..={last} missing ({} records lost)",
                    last - first + 1
                )?;
                match after_segment {
                    Some(s) => write!(
                        f,
                        " after segment {s:020}.seg: a segment truncated, cut or deleted"
                    ),
                    None => write!(f, " before the first segment: a segment deleted"),
                }
            }
        }
    }
}

/// A trusted frame at `offset` of `data`: its record and its length.
pub(super) fn frame_at(data: &[u8], offset: usize) -> Option<(SpoolRecord, usize)> {
    match frame::decode(data.get(offset..)?) {
        Decoded::Frame(payload, len) => SpoolRecord::decode(payload).ok().map(|r| (r, len)),
        _ => None,
    }
}

/// The sequence a payload starts with, cheaply (prost writes field 1 first).
fn leading_sequence(payload: &[u8]) -> Option<u64> {
    if payload.first() != Some(&0x08) {
        return None;
    }
    let mut value = 0u64;
    for (i, b) in payload[1..].iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// After a frame at `from` failed: the offset and sequence of the next trusted frame whose
/// sequence is at least `expected`, or None (the rest is a torn tail).
pub(super) fn resync(data: &[u8], from: usize, expected: u64) -> Option<(usize, u64)> {
    let plausible = |offset: usize, seq: u64| {
        let span = (offset - from) as u64;
        seq >= expected && seq <= expected.saturating_add(span / MIN_FRAME + 1)
    };
    // Damage inside one payload: the frame after it is where the header says.
    if let Some((len, _)) = frame::header(&data[from..]) {
        let next = from.saturating_add(HEADER_LEN).saturating_add(len);
        if next < data.len()
            && let Some((r, _)) = frame_at(data, next)
            && plausible(next, r.sequence)
        {
            return Some((next, r.sequence));
        }
    }
    let mut offset = from + 1;
    while offset + HEADER_LEN < data.len() {
        let rest = &data[offset..];
        if let Some((len, _)) = frame::header(rest)
            && len <= rest.len() - HEADER_LEN
            && leading_sequence(&rest[HEADER_LEN..HEADER_LEN + len])
                .is_some_and(|seq| plausible(offset, seq))
            && let Some((r, _)) = frame_at(data, offset)
            && plausible(offset, r.sequence)
        {
            return Some((offset, r.sequence));
        }
        offset += 1;
    }
    None
}

/// A region skipped inside a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Skipped {
    pub offset: u64,
    pub bytes: u64,
    /// The first sequence it may have held.
    pub expected: u64,
    /// The sequence of the frame after it.
    pub resumed: u64,
}

/// What one segment holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SegmentScan {
    /// End of the last valid frame (the segment is cut here when `torn > 0`).
    pub valid_end: u64,
    /// Bytes after `valid_end`.
    pub torn: u64,
    /// Sequence of the last valid record (first - 1 when none).
    pub last_seq: u64,
    /// Valid records.
    pub records: u64,
    /// Damage skipped in the middle.
    pub skipped: Vec<Skipped>,
}

/// Reads every frame of a segment whose file name says it starts at `first`.
pub(super) fn scan_segment(data: &[u8], first: u64) -> SegmentScan {
    let mut offset = 0usize;
    let mut expected = first;
    let mut records = 0;
    let mut skipped = Vec::new();
    while offset < data.len() {
        if let Some((r, len)) = frame_at(data, offset)
            && r.sequence == expected
        {
            offset += len;
            expected += 1;
            records += 1;
            continue;
        }
        match resync(data, offset, expected) {
            Some((next, seq)) => {
                skipped.push(Skipped {
                    offset: offset as u64,
                    bytes: (next - offset) as u64,
                    expected,
                    resumed: seq,
                });
                offset = next;
                expected = seq;
            }
            None => break,
        }
    }
    SegmentScan {
        valid_end: offset as u64,
        torn: (data.len() - offset) as u64,
        last_seq: expected - 1,
        records,
        skipped,
    }
}

/// Sequences of `[first, last]` above `committed`: `(first, last)` or None.
pub(super) fn uncommitted(first: u64, last: u64, committed: u64) -> Option<(u64, u64)> {
    let first = first.max(committed + 1);
    (first <= last).then_some((first, last))
}

/// The damage of segments scanned in order (`(first, scan)`), given the sequence every
/// destination committed (`committed_by_all`) and the highest sequence known to have been
/// appended (`high_water`).
pub(super) fn damage_report(
    segments: &[(u64, &SegmentScan)],
    committed_by_all: u64,
    high_water: u64,
) -> Vec<Damage> {
    let mut damage = Vec::new();
    // Sequences up to what everyone committed were collected or may be: not lost.
    let mut covered = committed_by_all;
    let mut previous = None;
    for (first, scan) in segments {
        if let Some((a, b)) = uncommitted(covered + 1, first.saturating_sub(1), committed_by_all) {
            damage.push(Damage::Missing {
                after_segment: previous,
                first: a,
                last: b,
            });
        }
        for s in &scan.skipped {
            let lost = uncommitted(s.expected, s.resumed.saturating_sub(1), committed_by_all)
                .map_or(0, |(a, b)| b - a + 1);
            damage.push(Damage::Corrupt {
                segment: *first,
                offset: s.offset,
                bytes: s.bytes,
                lost_records: lost,
            });
        }
        if scan.torn > 0 {
            damage.push(Damage::TornTail {
                segment: *first,
                offset: scan.valid_end,
                bytes: scan.torn,
            });
        }
        covered = covered.max(scan.last_seq).max(first.saturating_sub(1));
        previous = Some(*first);
    }
    if let Some((a, b)) = uncommitted(covered + 1, high_water, committed_by_all) {
        damage.push(Damage::Missing {
            after_segment: previous,
            first: a,
            last: b,
        });
    }
    damage
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(first: u64, n: u64) -> (Vec<u8>, Vec<usize>) {
        let mut data = Vec::new();
        let mut starts = Vec::new();
        for seq in first..first + n {
            starts.push(data.len());
            let record = SpoolRecord {
                sequence: seq,
                body: bytes::Bytes::from(vec![seq as u8; 40]),
                ..SpoolRecord::default()
            };
            frame::encode_into(&record.encode_to_vec(), &mut data);
        }
        (data, starts)
    }

    #[test]
    fn a_flipped_byte_costs_one_record_wherever_it_is() {
        let (clean, starts) = segment(10, 8);
        for at in 0..clean.len() {
            let mut data = clean.clone();
            data[at] ^= 0x41;
            let scan = scan_segment(&data, 10);
            let hit = starts.iter().rposition(|s| *s <= at).unwrap();
            if hit == starts.len() - 1 {
                // The last frame: nothing valid after it, a torn tail.
                assert_eq!(scan.records, 7, "flip at {at}");
                assert_eq!(scan.valid_end, starts[hit] as u64);
                continue;
            }
            assert_eq!(scan.records, 7, "flip at {at}");
            assert_eq!(scan.torn, 0);
            assert_eq!(
                scan.skipped,
                vec![Skipped {
                    offset: starts[hit] as u64,
                    bytes: (starts[hit + 1] - starts[hit]) as u64,
                    expected: 10 + hit as u64,
                    resumed: 11 + hit as u64,
                }],
                "flip at {at}"
            );
            assert_eq!(scan.last_seq, 17);
        }
    }

    #[test]
    fn gaps_between_segments_and_after_the_last_are_missing_records() {
        let (a, _) = segment(1, 5);
        let (c, _) = segment(20, 5);
        let sa = scan_segment(&a, 1);
        let sc = scan_segment(&c, 20);
        let report = damage_report(&[(1, &sa), (20, &sc)], 0, 30);
        assert_eq!(
            report,
            vec![
                Damage::Missing {
                    after_segment: Some(1),
                    first: 6,
                    last: 19
                },
                Damage::Missing {
                    after_segment: Some(20),
                    first: 25,
                    last: 30
                },
            ]
        );
        // Committed by everyone: garbage collection, not loss.
        assert_eq!(damage_report(&[(20, &sc)], 19, 24), vec![]);
        assert_eq!(
            damage_report(&[(20, &sc)], 10, 24)[0],
            Damage::Missing {
                after_segment: None,
                first: 11,
                last: 19
            }
        );
    }
}
