//! The spool against a model of what must be readable after any sequence of appends, reads,
//! commits and crashes (with torn tails and restarts in between), on the real file system;
//! `crash` does the same on a simulated disk that loses unsynced data and fills up.

use std::collections::BTreeMap;
use std::path::PathBuf;

use proptest::prelude::*;

use super::*;

mod crash;
mod sim_fs;

fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("lf-spool-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn record(body: Vec<u8>, auth: Option<&str>) -> NewRecord {
    NewRecord {
        kind: RecordKind::OtlpProtobuf,
        authorization: auth.map(str::to_owned),
        body: bytes::Bytes::from(body),
        item_count: 1,
        received_unix_ms: 7,
    }
}

const DESTS: [&str; 2] = ["a", "b"];

#[derive(Debug, Clone)]
enum Op {
    /// Append records of these body sizes.
    Append(Vec<usize>),
    /// Destination reads up to n records.
    Read(usize, usize),
    /// Destination commits everything it has read.
    Commit(usize),
    /// Kill the process (drop everything), optionally leaving a torn partial frame (of this
    /// many bytes) at the end of the last segment, then reopen.
    Crash(Option<usize>),
    /// Stop, flip a byte in the payload of the n-th frame (modulo the frames that are not the
    /// very last one), reopen: exactly that record is lost and reported.
    Flip(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec(0usize..300, 1..4).prop_map(Op::Append),
        3 => (0usize..2, 1usize..6).prop_map(|(d, n)| Op::Read(d, n)),
        2 => (0usize..2).prop_map(Op::Commit),
        1 => prop::option::of(1usize..40).prop_map(Op::Crash),
        1 => (0usize..1000).prop_map(Op::Flip),
    ]
}

struct Model {
    /// Every acknowledged record: sequence → body.
    acked: BTreeMap<u64, Vec<u8>>,
    /// Per destination: committed sequence, sequences read since.
    committed: [u64; 2],
    read: [Vec<u64>; 2],
    /// Sequences destroyed by [`Op::Flip`].
    flipped: Vec<u64>,
}

impl Model {
    /// Destroyed records some destination has not committed: what recovery must report.
    fn lost(&self) -> u64 {
        let min = self.committed.iter().copied().min().unwrap_or(0);
        self.flipped.iter().filter(|s| **s > min).count() as u64
    }
}

/// Every frame of every segment: (path, payload offset, payload length, sequence), in order.
fn frames(dir: &std::path::Path) -> Vec<(PathBuf, usize, usize, u64)> {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    segs.sort();
    let mut out = Vec::new();
    for seg in segs {
        let data = std::fs::read(&seg).unwrap();
        let mut offset = 0;
        while let super::frame::Decoded::Frame(payload, len) = super::frame::decode(&data[offset..])
        {
            let record = <SpoolRecord as prost::Message>::decode(payload).unwrap();
            out.push((seg.clone(), offset + 8, payload.len(), record.sequence));
            offset += len;
        }
    }
    out
}

fn last_segment(dir: &std::path::Path) -> Option<PathBuf> {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    segs.sort();
    segs.pop()
}

fn run_ops(ops: Vec<Op>, max_bytes: u64) {
    let dir = temp_dir("model");
    let config = SpoolConfig {
        fsync: FsyncPolicy::Never,
        max_bytes,
        segment_bytes: 600,
        ..SpoolConfig::new(&dir)
    };
    let (mut spool, _) = Spool::open(config.clone(), &DESTS).unwrap();
    let mut readers: Vec<SpoolReader> = DESTS.iter().map(|d| spool.reader(d).unwrap()).collect();
    let mut model = Model {
        acked: BTreeMap::new(),
        committed: [0, 0],
        read: [Vec::new(), Vec::new()],
        flipped: Vec::new(),
    };
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
                match spool.append(&records) {
                    Ok(seqs) => {
                        for (seq, r) in seqs.into_iter().zip(&records) {
                            assert!(model.acked.insert(seq, r.body.to_vec()).is_none());
                        }
                    }
                    Err(e) => {
                        assert!(e.is_full(), "unexpected error {e}");
                        // Full only when the frames do not fit; nothing was kept.
                        let needed: usize = records
                            .iter()
                            .enumerate()
                            .map(|(i, r)| {
                                let stored = SpoolRecord {
                                    sequence: before.last_sequence + 1 + i as u64,
                                    kind: r.kind as i32,
                                    received_unix_ms: r.received_unix_ms,
                                    authorization: r.authorization.clone(),
                                    body: r.body.clone(),
                                    item_count: r.item_count,
                                };
                                8 + prost::Message::encoded_len(&stored)
                            })
                            .sum();
                        assert!(before.bytes + needed as u64 > max_bytes);
                        assert_eq!(spool.stats(), before);
                    }
                }
            }
            Op::Read(d, n) => {
                let got = readers[d].read(n, usize::MAX).unwrap();
                // In order, right after what was read or committed, with the acked bodies.
                let mut expect_after = model.read[d].last().copied().unwrap_or(model.committed[d]);
                let want: Vec<u64> = model
                    .acked
                    .range(expect_after + 1..)
                    .take(n)
                    .map(|(s, _)| *s)
                    .collect();
                let got_seqs: Vec<u64> = got.iter().map(|r| r.sequence).collect();
                assert_eq!(got_seqs, want, "destination {d} read");
                for r in &got {
                    assert_eq!(r.body.as_ref(), model.acked[&r.sequence].as_slice());
                    assert_eq!(r.authorization.as_deref(), Some("Basic secret"));
                    assert!(r.sequence > expect_after);
                    expect_after = r.sequence;
                }
                model.read[d].extend(got_seqs);
            }
            Op::Commit(d) => {
                if let Some(last) = model.read[d].last().copied() {
                    readers[d].commit(last).unwrap();
                    model.committed[d] = last;
                    model.read[d].clear();
                }
            }
            Op::Crash(tear) => {
                drop(readers);
                drop(spool);
                if let (Some(n), Some(seg)) = (tear, last_segment(&dir)) {
                    // A write cut short by the crash: part of a frame that was never acked.
                    let mut partial = Vec::new();
                    super::frame::encode_into(&[0xab; 64], &mut partial);
                    partial.truncate(n.min(partial.len() - 1));
                    let mut data = std::fs::read(&seg).unwrap();
                    data.extend_from_slice(&partial);
                    std::fs::write(&seg, data).unwrap();
                }
                let (s, recovery) = Spool::open(config.clone(), &DESTS).unwrap();
                spool = s;
                if let Some(n) = tear {
                    assert!(recovery.truncated_bytes <= n as u64);
                }
                assert_eq!(recovery.lost_records, model.lost(), "{:?}", recovery.damage);
                readers = DESTS.iter().map(|d| spool.reader(d).unwrap()).collect();
                // What was read but not committed is read again.
                model.read = [Vec::new(), Vec::new()];
            }
            Op::Flip(n) => {
                drop(readers);
                drop(spool);
                let all = frames(&dir);
                // The very last frame is left alone: damage there is a torn tail whose loss
                // only a recent high-water mark would show.
                if all.len() > 1 {
                    let (seg, at, len, seq) = all[n % (all.len() - 1)].clone();
                    let mut data = std::fs::read(&seg).unwrap();
                    data[at + len / 2] ^= 0x5a;
                    std::fs::write(&seg, data).unwrap();
                    model.acked.remove(&seq);
                    model.flipped.push(seq);
                }
                let (s, recovery) = Spool::open(config.clone(), &DESTS).unwrap();
                spool = s;
                assert_eq!(recovery.lost_records, model.lost(), "{:?}", recovery.damage);
                readers = DESTS.iter().map(|d| spool.reader(d).unwrap()).collect();
                model.read = [Vec::new(), Vec::new()];
            }
        }
        // Committed by everyone is gone from disk eventually; nothing acked and uncommitted
        // by someone is ever lost (checked by the reads above); sizes stay within the limit.
        assert!(spool.stats().bytes <= max_bytes);
    }
    // Finally everything acked and not committed is readable by each destination.
    for (d, reader) in readers.iter_mut().enumerate() {
        let mut all = Vec::new();
        loop {
            let got = reader.read(100, usize::MAX).unwrap();
            if got.is_empty() {
                break;
            }
            all.extend(got.iter().map(|r| r.sequence));
        }
        let after = model.read[d].last().copied().unwrap_or(model.committed[d]);
        let want: Vec<u64> = model.acked.range(after + 1..).map(|(s, _)| *s).collect();
        assert_eq!(all, want, "destination {d} final read");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn every_acknowledged_record_survives_any_sequence_of_operations(
        ops in prop::collection::vec(op(), 1..60)
    ) {
        run_ops(ops, 1 << 20);
    }

    #[test]
    fn a_bounded_spool_rejects_what_does_not_fit_and_loses_nothing(
        ops in prop::collection::vec(op(), 1..60)
    ) {
        run_ops(ops, 2000);
    }
}

#[test]
fn a_torn_tail_is_cut_on_open() {
    let dir = temp_dir("torn");
    let config = SpoolConfig::new(&dir);
    let (spool, _) = Spool::open(config.clone(), &["a"]).unwrap();
    spool.append(&[record(b"one".to_vec(), None)]).unwrap();
    drop(spool);
    let seg = last_segment(&dir).unwrap();
    let good = std::fs::metadata(&seg).unwrap().len();
    let mut data = std::fs::read(&seg).unwrap();
    data.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
    std::fs::write(&seg, data).unwrap();
    let (spool, recovery) = Spool::open(config, &["a"]).unwrap();
    assert_eq!(recovery.truncated_bytes, 6);
    assert_eq!(recovery.records, 1);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), good);
    // Appends continue after the cut.
    assert_eq!(
        spool.append(&[record(b"two".to_vec(), None)]).unwrap(),
        vec![2]
    );
    let mut reader = spool.reader("a").unwrap();
    let bodies: Vec<_> = reader
        .read(10, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(bodies, vec![&b"one"[..], &b"two"[..]]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn spool_files_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("perm");
    let (spool, _) = Spool::open(SpoolConfig::new(&dir), &["a"]).unwrap();
    spool
        .append(&[record(b"x".to_vec(), Some("Basic abc"))])
        .unwrap();
    let mut reader = spool.reader("a").unwrap();
    reader.read(1, usize::MAX).unwrap();
    reader.mark_in_flight(1).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("segments")), 0o700);
    assert_eq!(mode(&last_segment(&dir).unwrap()), 0o600);
    assert_eq!(mode(&dir.join("cursors/a.cursor")), 0o600);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn records_in_flight_at_a_crash_are_reported_as_possible_duplicates() {
    let dir = temp_dir("inflight");
    let config = SpoolConfig::new(&dir);
    let (spool, _) = Spool::open(config.clone(), &["a"]).unwrap();
    let records: Vec<_> = (0..5).map(|i| record(vec![i], None)).collect();
    spool.append(&records).unwrap();
    let mut reader = spool.reader("a").unwrap();
    reader.read(2, usize::MAX).unwrap();
    reader.mark_in_flight(2).unwrap();
    reader.commit(2).unwrap();
    reader.read(3, usize::MAX).unwrap();
    reader.mark_in_flight(5).unwrap();
    drop((reader, spool));
    let (spool, recovery) = Spool::open(config, &["a"]).unwrap();
    assert_eq!(recovery.in_flight.get("a"), Some(&3));
    let mut reader = spool.reader("a").unwrap();
    let seqs: Vec<u64> = reader
        .read(10, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.sequence)
        .collect();
    assert_eq!(seqs, vec![3, 4, 5]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sequences_continue_after_every_segment_was_committed_and_deleted() {
    let dir = temp_dir("seq");
    let config = SpoolConfig {
        segment_bytes: 10,
        ..SpoolConfig::new(&dir)
    };
    let (spool, _) = Spool::open(config.clone(), &["a"]).unwrap();
    spool.append(&[record(vec![1; 20], None)]).unwrap();
    spool.append(&[record(vec![2; 20], None)]).unwrap();
    let mut reader = spool.reader("a").unwrap();
    reader.read(10, usize::MAX).unwrap();
    reader.commit(2).unwrap();
    drop((reader, spool));
    let (spool, _) = Spool::open(config, &["a"]).unwrap();
    assert_eq!(spool.append(&[record(vec![3], None)]).unwrap(), vec![3]);
    let mut reader = spool.reader("a").unwrap();
    let seqs: Vec<u64> = reader
        .read(10, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.sequence)
        .collect();
    assert_eq!(seqs, vec![3]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn read_all(reader: &mut SpoolReader) -> Vec<u64> {
    let mut all = Vec::new();
    loop {
        let got = reader.read(100, usize::MAX).unwrap();
        if got.is_empty() {
            return all;
        }
        all.extend(got.iter().map(|r| r.sequence));
    }
}

#[test]
fn a_cursor_of_the_previous_format_keeps_its_position() {
    let dir = temp_dir("legacy");
    let config = SpoolConfig::new(&dir);
    let (spool, _) = Spool::open(config.clone(), &["a"]).unwrap();
    let records: Vec<_> = (0..4).map(|i| record(vec![i], None)).collect();
    spool.append(&records).unwrap();
    drop(spool);
    // What earlier versions wrote: one frame holding the cursor, via a renamed temporary file.
    let mut old = Vec::new();
    super::frame::encode_into(
        &prost::Message::encode_to_vec(&Cursor {
            committed: 2,
            in_flight_end: 3,
        }),
        &mut old,
    );
    std::fs::write(dir.join("cursors/a.cursor"), &old).unwrap();
    let (spool, recovery) = Spool::open(config.clone(), &["a"]).unwrap();
    assert_eq!(recovery.in_flight.get("a"), Some(&1));
    let mut reader = spool.reader("a").unwrap();
    assert_eq!(read_all(&mut reader), vec![3, 4]);
    reader.commit(3).unwrap();
    drop((reader, spool));
    let (spool, _) = Spool::open(config, &["a"]).unwrap();
    assert_eq!(read_all(&mut spool.reader("a").unwrap()), vec![4]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_spool_is_refusing_until_delivery_frees_space() {
    let dir = temp_dir("refusal");
    let config = SpoolConfig {
        max_bytes: 300,
        ..SpoolConfig::new(&dir)
    };
    let (spool, _) = Spool::open(config, &["a"]).unwrap();
    spool.append(&[record(vec![1; 200], None)]).unwrap();
    assert_eq!(spool.refusal(), None);
    let full = spool.append(&[record(vec![2; 200], None)]).unwrap_err();
    assert!(full.is_full());
    assert_eq!(spool.refusal(), Some(full));
    // A record that could never fit says nothing about the spool's state.
    let mut reader = spool.reader("a").unwrap();
    assert_eq!(read_all(&mut reader), vec![1]);
    reader.commit(1).unwrap();
    assert_eq!(spool.refusal(), None);
    assert_eq!(
        spool.append(&[record(vec![2; 200], None)]).unwrap(),
        vec![2]
    );
    assert!(spool.append(&[record(vec![3; 400], None)]).is_err());
    assert_eq!(spool.refusal(), None);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Appends `n` records of 100 bytes one by one into segments of about 5 records.
fn spool_with_segments(tag: &str, n: u8) -> (PathBuf, SpoolConfig, Vec<PathBuf>) {
    let dir = temp_dir(tag);
    let config = SpoolConfig {
        segment_bytes: 500,
        ..SpoolConfig::new(&dir)
    };
    let (spool, _) = Spool::open(config.clone(), &["a"]).unwrap();
    for i in 0..n {
        spool.append(&[record(vec![i; 100], None)]).unwrap();
    }
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    segs.sort();
    (dir, config, segs)
}

#[test]
fn deleted_and_truncated_segments_are_reported_and_reading_goes_on_after_them() {
    let (dir, config, segs) = spool_with_segments("missing", 20);
    assert_eq!(segs.len(), 4, "{segs:?}");
    // Segment 2 (records 6..=10) deleted, segment 3 (11..=15) cut after its 2nd frame.
    std::fs::remove_file(&segs[1]).unwrap();
    let frames = frames(&dir);
    let third: Vec<_> = frames.iter().filter(|f| f.0 == segs[2]).collect();
    let cut = third[2].1 - 8;
    let data = std::fs::read(&segs[2]).unwrap();
    std::fs::write(&segs[2], &data[..cut]).unwrap();
    let inspection = inspect(&dir).unwrap();
    assert_eq!(inspection.recovery.lost_records, 5 + 3);
    // Read-only: nothing changed.
    assert_eq!(std::fs::read(&segs[2]).unwrap().len(), cut);
    let (spool, recovery) = Spool::open(config, &["a"]).unwrap();
    assert_eq!(recovery.lost_records, 8, "{:?}", recovery.damage);
    assert_eq!(recovery.damage, inspection.recovery.damage);
    assert!(!recovery.is_clean());
    let mut reader = spool.reader("a").unwrap();
    let want: Vec<u64> = (1..=5).chain(11..=12).chain(16..=20).collect();
    assert_eq!(read_all(&mut reader), want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_last_segment_cut_on_a_frame_boundary_is_found_from_the_cursor_or_the_high_water_mark() {
    let (dir, config, segs) = spool_with_segments("lastcut", 8);
    {
        let (spool, _) = Spool::open(config.clone(), &["a"]).unwrap();
        let mut reader = spool.reader("a").unwrap();
        reader.read(3, usize::MAX).unwrap();
        reader.commit(3).unwrap();
        // Handed to the destination up to 8 (then the bridge stops).
        reader.read(10, usize::MAX).unwrap();
        reader.mark_in_flight(8).unwrap();
    }
    let last = segs.last().unwrap();
    let all = frames(&dir);
    let in_last: Vec<_> = all.iter().filter(|f| &f.0 == last).collect();
    let data = std::fs::read(last).unwrap();
    std::fs::write(last, &data[..in_last[1].1 - 8]).unwrap();
    let (spool, recovery) = Spool::open(config.clone(), &["a"]).unwrap();
    assert_eq!(
        recovery.damage,
        vec![Damage::Missing {
            after_segment: Some(6),
            first: 7,
            last: 8
        }]
    );
    // Sequences are never reused.
    assert_eq!(spool.append(&[record(vec![9], None)]).unwrap(), vec![9]);
    let mut reader = spool.reader("a").unwrap();
    assert_eq!(read_all(&mut reader), vec![4, 5, 6, 9]);
    drop((reader, spool));

    // Nothing handed out: the high-water mark written at shutdown tells.
    let (dir, config, segs) = spool_with_segments("lastcut-hw", 8);
    {
        let (spool, _) = Spool::open(config.clone(), &["a"]).unwrap();
        spool.sync().unwrap();
    }
    let last = segs.last().unwrap();
    let data = std::fs::read(last).unwrap();
    let all = frames(&dir);
    let in_last: Vec<_> = all.iter().filter(|f| &f.0 == last).collect();
    std::fs::write(last, &data[..in_last[2].1 - 8]).unwrap();
    let (_, recovery) = Spool::open(config, &["a"]).unwrap();
    assert_eq!(recovery.lost_records, 1, "{:?}", recovery.damage);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damage_appearing_while_running_is_skipped_by_the_reader() {
    let (dir, config, segs) = spool_with_segments("live", 10);
    let (spool, _) = Spool::open(config, &["a"]).unwrap();
    let mut reader = spool.reader("a").unwrap();
    assert_eq!(read_all(&mut reader).len(), 10);
    drop(reader);
    // Flip the header of record 2 and the payload of record 7 under the running spool.
    let frames = frames(&dir);
    for (seq, at) in [(2u64, 0usize), (7, 30)] {
        let f = frames.iter().find(|f| f.3 == seq).unwrap();
        let mut data = std::fs::read(&f.0).unwrap();
        data[f.1 - 8 + at] ^= 0xff;
        std::fs::write(&f.0, data).unwrap();
    }
    let mut reader = spool.reader("a").unwrap();
    assert_eq!(read_all(&mut reader), vec![1, 3, 4, 5, 6, 8, 9, 10]);
    assert!(segs.len() > 1);
    let _ = std::fs::remove_dir_all(&dir);
}
