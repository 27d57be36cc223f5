//! The spool on a simulated disk against a model, under `FsyncPolicy::Always`: random
//! appends, reads, commits, in-flight marks, power failures (unsynced data and directory
//! entries lost or torn), full disks and damaged frames.
//!
//! | invariant | checked |
//! |---|---|
//! | an acknowledged append survives a crash | every read returns exactly the acknowledged records after the destination's position |
//! | nothing is delivered that was not appended | the same, with the bodies compared |
//! | committed records are not delivered again | reads after a crash start after the committed sequence |
//! | a full disk refuses cleanly | an append fails with `DiskFull` exactly when its frames do not fit, changes no size, leaves no partial frame (the segment files hold exactly the spool's bytes, every one ending on a frame), and `refusal` says so |
//! | commits free a full disk | an append that fits after commits freed space succeeds (same rule) |
//! | damage is reported | recovery's lost records are the damaged ones not committed by all; a crash alone loses nothing |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;

use super::sim_fs::SimFs;
use super::{DESTS, record};
use crate::frame::{self, Decoded};
use crate::scan;
use crate::{FsyncPolicy, NewRecord, Recovery, Spool, SpoolConfig, SpoolError, SpoolReader};

const ROOT: &str = "/sim";
const DIR: &str = "/sim/spool";

#[derive(Debug, Clone)]
enum Op {
    /// Append records of these body sizes.
    Append(Vec<usize>),
    /// Destination reads up to n records.
    Read(usize, usize),
    /// Destination commits everything it has read.
    Commit(usize),
    /// Destination marks everything it has read as in flight.
    MarkInFlight(usize),
    /// Power failure (what was lost or torn chosen by the seed), then reopen.
    Crash(u64),
    /// The disk fills up: this many bytes stay free.
    DiskFull(u64),
    /// The disk has room again.
    FreeDisk,
    /// Stop, damage a byte in the payload of the n-th frame (modulo the frames that are not
    /// the very last one), reopen.
    Flip(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => prop::collection::vec(0usize..300, 1..4).prop_map(Op::Append),
        3 => (0usize..2, 1usize..6).prop_map(|(d, n)| Op::Read(d, n)),
        2 => (0usize..2).prop_map(Op::Commit),
        1 => (0usize..2).prop_map(Op::MarkInFlight),
        2 => any::<u64>().prop_map(Op::Crash),
        1 => (0u64..1500).prop_map(Op::DiskFull),
        1 => Just(Op::FreeDisk),
        1 => (0usize..1000).prop_map(Op::Flip),
    ]
}

#[derive(Default)]
struct Model {
    /// Every acknowledged record not damaged since: sequence → body.
    acked: BTreeMap<u64, Vec<u8>>,
    /// Per destination: committed sequence.
    committed: [u64; 2],
    /// Per destination: sequences read since the last commit or restart.
    read: [Vec<u64>; 2],
    /// Per destination: the highest in-flight mark since the last commit.
    in_flight_end: [u64; 2],
    /// Sequences destroyed by [`Op::Flip`].
    flipped: Vec<u64>,
}

impl Model {
    /// Destroyed records some destination has not committed: what recovery must report.
    fn lost(&self) -> u64 {
        let min = self.committed.iter().copied().min().unwrap_or(0);
        self.flipped.iter().filter(|s| **s > min).count() as u64
    }

    fn read_position(&self, d: usize) -> u64 {
        self.read[d].last().copied().unwrap_or(self.committed[d])
    }
}

/// Bytes the frames of `records` take when appended from sequence `first`.
fn frames_len(records: &[NewRecord], first: u64) -> u64 {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (frame::HEADER_LEN + prost::Message::encoded_len(&r.to_stored(first + i as u64))) as u64
        })
        .sum()
}

fn segments_dir() -> PathBuf {
    Path::new(DIR).join("segments")
}

/// Every valid frame of every segment on the simulated disk: (path, payload offset, payload
/// length, sequence), in order.
fn frames(fs: &SimFs) -> Vec<(PathBuf, usize, usize, u64)> {
    let mut out = Vec::new();
    for (path, data) in fs.files_in(&segments_dir()) {
        let mut offset = 0;
        while let Decoded::Frame(payload, len) = frame::decode(&data[offset..]) {
            let Some((record, _)) = scan::frame_at(&data, offset) else {
                break;
            };
            out.push((path.clone(), offset + 8, payload.len(), record.sequence));
            offset += len;
        }
    }
    out
}

/// The segment files hold exactly the spool's bytes, each ending on a whole frame.
fn assert_no_partial_frame(fs: &SimFs, spool: &Spool) {
    let files = fs.files_in(&segments_dir());
    let on_disk: u64 = files.values().map(|d| d.len() as u64).sum();
    assert_eq!(on_disk, spool.stats().bytes, "segment bytes on disk");
    for (path, data) in &files {
        let first: u64 = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
            .expect("a segment name");
        assert_eq!(
            scan::scan_segment(data, first).torn,
            0,
            "{path:?} ends torn"
        );
    }
}

fn open(fs: &SimFs, config: &SpoolConfig) -> (Spool, Recovery, Vec<SpoolReader>) {
    let (spool, recovery) =
        Spool::open_on(Arc::new(fs.clone()), config.clone(), &DESTS).expect("reopen");
    let readers = DESTS.iter().map(|d| spool.reader(d).unwrap()).collect();
    (spool, recovery, readers)
}

fn check_recovery(recovery: &Recovery, model: &Model, torn_at_most: u64) {
    assert_eq!(recovery.lost_records, model.lost(), "{:?}", recovery.damage);
    if model.flipped.is_empty() {
        assert!(recovery.is_clean(), "{recovery:?}");
    }
    assert!(recovery.damaged_cursors.is_empty(), "{recovery:?}");
    assert!(
        recovery.truncated_bytes <= torn_at_most,
        "{} bytes cut, {torn_at_most} unsynced bytes kept",
        recovery.truncated_bytes
    );
    for (d, name) in DESTS.iter().enumerate() {
        let reported = recovery.in_flight.get(*name).copied().unwrap_or(0);
        assert!(
            reported <= model.in_flight_end[d].saturating_sub(model.committed[d]),
            "{name}: {reported} in flight"
        );
    }
}

fn run_ops(ops: Vec<Op>, max_bytes: u64) {
    let fs = SimFs::new(&[Path::new(ROOT)]);
    let config = SpoolConfig {
        fsync: FsyncPolicy::Always,
        max_bytes,
        segment_bytes: 600,
        ..SpoolConfig::new(DIR)
    };
    let (mut spool, _, mut readers) = open(&fs, &config);
    let mut model = Model::default();
    let mut fill = 0u8;
    for op in ops {
        match op {
            Op::Append(sizes) => {
                let records: Vec<NewRecord> = sizes
                    .iter()
                    .map(|n| {
                        fill = fill.wrapping_add(1);
                        record(vec![fill; *n], Some("Basic secret"))
                    })
                    .collect();
                let before = spool.stats();
                let first = before.last_sequence + 1;
                let needed = frames_len(&records, first);
                let disk_full = fs.capacity().is_some_and(|c| fs.used() + needed > c);
                match spool.append(&records) {
                    Ok(seqs) => {
                        assert!(before.bytes + needed <= max_bytes, "over the limit");
                        assert!(!disk_full, "appended beyond the disk's capacity");
                        let want: Vec<u64> = (first..first + records.len() as u64).collect();
                        assert_eq!(seqs, want);
                        for (seq, r) in seqs.into_iter().zip(&records) {
                            assert!(model.acked.insert(seq, r.body.to_vec()).is_none());
                        }
                    }
                    Err(e) => {
                        if before.bytes + needed > max_bytes {
                            assert!(matches!(e, SpoolError::Full { .. }), "{e}");
                        } else {
                            assert!(disk_full, "refused with room: {e}");
                            assert!(matches!(e, SpoolError::DiskFull { .. }), "{e}");
                        }
                        assert_eq!(spool.stats(), before);
                        if needed <= max_bytes {
                            assert_eq!(spool.refusal(), Some(e));
                        }
                    }
                }
            }
            Op::Read(d, n) => {
                let got = readers[d].read(n, usize::MAX).unwrap();
                let want: Vec<u64> = model
                    .acked
                    .range(model.read_position(d) + 1..)
                    .take(n)
                    .map(|(s, _)| *s)
                    .collect();
                let got_seqs: Vec<u64> = got.iter().map(|r| r.sequence).collect();
                assert_eq!(got_seqs, want, "destination {d} read");
                for r in &got {
                    assert_eq!(r.body.as_ref(), model.acked[&r.sequence].as_slice());
                }
                model.read[d].extend(got_seqs);
            }
            Op::Commit(d) => {
                if let Some(last) = model.read[d].last().copied() {
                    readers[d].commit(last).unwrap();
                    model.committed[d] = last;
                    model.in_flight_end[d] = last;
                    model.read[d].clear();
                }
            }
            Op::MarkInFlight(d) => {
                if let Some(last) = model.read[d].last().copied() {
                    readers[d].mark_in_flight(last).unwrap();
                    model.in_flight_end[d] = model.in_flight_end[d].max(last);
                }
            }
            Op::Crash(seed) => {
                drop(readers);
                drop(spool);
                let report = fs.crash(seed);
                let torn: u64 = report
                    .unsynced_kept
                    .iter()
                    .filter(|(p, _)| p.parent() == Some(segments_dir().as_path()))
                    .map(|(_, n)| n)
                    .sum();
                let recovery;
                (spool, recovery, readers) = open(&fs, &config);
                check_recovery(&recovery, &model, torn);
                model.read = [Vec::new(), Vec::new()];
            }
            Op::DiskFull(free) => fs.set_capacity(Some(fs.used() + free)),
            Op::FreeDisk => fs.set_capacity(None),
            Op::Flip(n) => {
                drop(readers);
                drop(spool);
                let all = frames(&fs);
                // The very last frame is left alone: damage there is a torn tail whose loss
                // only a recent high-water mark would show.
                let mut cut_at_most = 0;
                if all.len() > 1 {
                    let (path, at, len, seq) = all[n % (all.len() - 1)].clone();
                    fs.corrupt(&path, at + len / 2, 0x5a);
                    model.acked.remove(&seq);
                    model.flipped.push(seq);
                    // The last frame of its segment: a tail to cut.
                    cut_at_most = (frame::HEADER_LEN + len) as u64;
                }
                let recovery;
                (spool, recovery, readers) = open(&fs, &config);
                check_recovery(&recovery, &model, cut_at_most);
                model.read = [Vec::new(), Vec::new()];
            }
        }
        assert!(spool.stats().bytes <= max_bytes);
        assert_no_partial_frame(&fs, &spool);
    }
    // Finally everything acknowledged and not committed is readable by each destination.
    fs.set_capacity(None);
    for (d, reader) in readers.iter_mut().enumerate() {
        let mut all = Vec::new();
        loop {
            let got = reader.read(100, usize::MAX).unwrap();
            if got.is_empty() {
                break;
            }
            all.extend(got.iter().map(|r| r.sequence));
        }
        let want: Vec<u64> = model
            .acked
            .range(model.read_position(d) + 1..)
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(all, want, "destination {d} final read");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn acknowledged_records_survive_crashes_and_full_disks(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        run_ops(ops, 1 << 20);
    }

    #[test]
    fn a_bounded_spool_on_a_full_disk_refuses_cleanly_and_loses_nothing(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        run_ops(ops, 3000);
    }
}

#[test]
fn a_full_disk_refuses_without_a_partial_frame_until_commits_free_it() {
    let fs = SimFs::new(&[Path::new(ROOT)]);
    let config = SpoolConfig {
        segment_bytes: 600,
        ..SpoolConfig::new(DIR)
    };
    let (spool, _, mut readers) = open(&fs, &config);
    let body = |b: u8| record(vec![b; 300], None);
    for b in 0..4 {
        spool.append(&[body(b)]).unwrap();
    }
    // Room for one frame and a half.
    let needed = frames_len(&[body(9)], spool.stats().last_sequence + 1);
    fs.set_capacity(Some(fs.used() + needed * 3 / 2));
    spool.append(&[body(4)]).unwrap();
    let before = spool.stats();
    let err = spool.append(&[body(5), body(6)]).unwrap_err();
    assert!(matches!(err, SpoolError::DiskFull { .. }), "{err}");
    assert!(err.is_full());
    assert_eq!(spool.refusal(), Some(err));
    assert_eq!(spool.stats(), before);
    assert_no_partial_frame(&fs, &spool);
    // A crash now brings back nothing of the refused append, whatever it keeps.
    drop((readers, spool));
    for seed in 0..16 {
        fs.crash(seed);
        let (spool, recovery, _) = open(&fs, &config);
        assert!(recovery.is_clean(), "{recovery:?}");
        assert_eq!(spool.stats(), before, "seed {seed}");
    }
    let (spool, _, readers_again) = open(&fs, &config);
    readers = readers_again;
    // Still full; delivery to both destinations frees every segment.
    assert!(spool.append(&[body(5), body(6)]).is_err());
    for reader in &mut readers {
        let got = reader.read(100, usize::MAX).unwrap();
        assert_eq!(got.len() as u64, before.last_sequence);
        reader.commit(before.last_sequence).unwrap();
    }
    assert_eq!(spool.refusal(), None);
    assert_eq!(spool.stats().bytes, 0);
    let first = before.last_sequence + 1;
    assert_eq!(
        spool.append(&[body(5), body(6)]).unwrap(),
        vec![first, first + 1]
    );
    assert_no_partial_frame(&fs, &spool);
}
