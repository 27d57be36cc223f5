//! The spool against a model of what must be readable after any sequence of appends, reads,
//! commits and crashes (with torn tails and restarts in between).

use std::collections::BTreeMap;
use std::path::PathBuf;

use proptest::prelude::*;

use super::*;

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
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec(0usize..300, 1..4).prop_map(Op::Append),
        3 => (0usize..2, 1usize..6).prop_map(|(d, n)| Op::Read(d, n)),
        2 => (0usize..2).prop_map(Op::Commit),
        1 => prop::option::of(1usize..40).prop_map(Op::Crash),
    ]
}

struct Model {
    /// Every acknowledged record: sequence → body.
    acked: BTreeMap<u64, Vec<u8>>,
    /// Per destination: committed sequence, sequences read since.
    committed: [u64; 2],
    read: [Vec<u64>; 2],
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
                readers = DESTS.iter().map(|d| spool.reader(d).unwrap()).collect();
                // What was read but not committed is read again.
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
