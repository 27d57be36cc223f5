//! Append throughput of the spool (what the bridge does per accepted request), with the
//! delivered records committed outside the measured time so the disk use stays bounded.
//!
//! `cargo bench -p langfuse-spool --bench append`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use langfuse_spool::{FsyncPolicy, NewRecord, RecordKind, Spool, SpoolConfig};

/// Appends between two (unmeasured) commits.
const CHUNK: u64 = 256;

fn dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lf-spool-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn record(len: usize) -> NewRecord {
    NewRecord {
        kind: RecordKind::OtlpProtobuf,
        authorization: Some("Basic cGstbGYtMTIzOnNrLWxmLTQ1Ng==".to_owned()),
        body: bytes::Bytes::from(vec![0x5a; len]),
        item_count: 10,
        received_unix_ms: 1_700_000_000_000,
    }
}

/// Measures `iters` appends of `batch` records of `len` bytes under `fsync`.
fn appends(tag: &str, fsync: FsyncPolicy, batch: usize, len: usize, iters: u64) -> Duration {
    let dir = dir(tag);
    let config = SpoolConfig {
        fsync,
        segment_bytes: 4 << 20,
        ..SpoolConfig::new(&dir)
    };
    let (spool, _) = Spool::open(config, &["upstream"]).expect("open");
    let mut reader = spool.reader("upstream").expect("reader");
    let records: Vec<NewRecord> = (0..batch).map(|_| record(len)).collect();
    let mut elapsed = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = CHUNK.min(iters - done);
        let start = Instant::now();
        let mut last = 0;
        for _ in 0..n {
            last = *spool
                .append(&records)
                .expect("append")
                .last()
                .expect("sequence");
        }
        elapsed += start.elapsed();
        reader.commit(last).expect("commit");
        done += n;
    }
    drop((reader, spool));
    let _ = std::fs::remove_dir_all(&dir);
    elapsed
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.measurement_time(Duration::from_secs(5));
    for (name, batch, len) in [("1x1KiB", 1, 1024), ("64x256B", 64, 256)] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("never/{name}"), |b| {
            b.iter_custom(|iters| appends(name, FsyncPolicy::Never, batch, len, iters));
        });
    }
    group.sample_size(10);
    group.throughput(Throughput::Elements(64));
    group.bench_function("always/64x1KiB", |b| {
        b.iter_custom(|iters| appends("always", FsyncPolicy::Always, 64, 1024, iters));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
