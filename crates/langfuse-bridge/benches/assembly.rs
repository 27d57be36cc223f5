//! The assembly stage alone, in one process without network or spool: 1000 protobuf exports
//! of 100 spans in 10 traces each (10,000 traces held at once) are split per trace and held,
//! then all emitted and written as the requests `--to langfuse` sends. Measured in the same
//! run: decoding each export and encoding it again with prost (what assembling decoded
//! messages costs at least), as the baseline.
//!
//! Each figure is the median of 5 rounds, CPU-bound on one thread (wall time).
//!
//! `cargo bench -p langfuse-bridge --bench assembly` (`BENCH_IDLE=10`: wait that many seconds
//! between holding and emitting, as the window does, to see what memory left idle costs when
//! it is read again).

use std::time::{Duration, Instant};

use langfuse_bridge::OtlpMode;
use langfuse_bridge::internal::{Assembler, Finisher, Piece, Unit, credentials_of, split};
use langfuse_spool::{RecordKind, SpoolRecord};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

mod common;

const EXPORTS: u64 = 1000;
const SPANS: u64 = 100;
const TRACES_PER_EXPORT: u64 = 10;

/// An export of `SPANS` spans from id `first` in `TRACES_PER_EXPORT` traces, the first span of
/// each a root with the user and session.
fn export(first: u64) -> Vec<u8> {
    common::export_in_traces(first, SPANS, TRACES_PER_EXPORT).encode_to_vec()
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn main() {
    let records: Vec<SpoolRecord> = (0..EXPORTS)
        .map(|r| SpoolRecord {
            sequence: r + 1,
            kind: RecordKind::OtlpProtobuf as i32,
            received_unix_ms: 0,
            authorization: Some("Basic cGstbGYtMTIzNDU2Nzg5MDpzay1sZi0xMjM0NTY3ODkw".into()),
            body: export(r * SPANS + 1).into(),
            item_count: SPANS as u32,
        })
        .collect();
    let spans = (EXPORTS * SPANS) as f64;
    let per_span = |d: Duration| d.as_secs_f64() * 1e6 / spans;

    let mut baseline = Vec::new();
    let (mut split_push, mut emit, mut write) = (Vec::new(), Vec::new(), Vec::new());
    let mut requests = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let mut bytes = 0;
        for record in &records {
            let request = ExportTraceServiceRequest::decode(&record.body[..]).expect("decodes");
            bytes += std::hint::black_box(request.encode_to_vec()).len();
        }
        std::hint::black_box(bytes);
        baseline.push(start.elapsed());

        let mut assembler: Assembler<Piece> = Assembler::new(Duration::from_secs(10), 100_000);
        let mut finisher = Finisher::new(OtlpMode::Passthrough, 10_000);
        let now = Instant::now();
        let start = Instant::now();
        for record in &records {
            let split = split(record).expect("an OTLP export");
            for (key, piece) in split.held {
                assembler.push(&key, record.sequence, piece, now);
            }
        }
        split_push.push(start.elapsed());
        assert_eq!(assembler.len() as u64, EXPORTS * TRACES_PER_EXPORT);

        if let Some(idle) = std::env::var("BENCH_IDLE")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            std::thread::sleep(Duration::from_secs(idle));
        }
        let start = Instant::now();
        let emitted = assembler.due(now + Duration::from_secs(11));
        emit.push(start.elapsed());

        let start = Instant::now();
        let (mut units, mut spare) = (Vec::new(), Vec::new());
        requests = 0;
        for trace in emitted {
            let pieces = trace.parts.into_iter().map(|p| p.item).collect();
            let auth = credentials_of(&trace.trace);
            finisher.finish(&trace.trace, auth, pieces, &mut units, &mut spare);
            // A full request is "sent": its buffer written again, as the forwarder does.
            if units.len() > 1 {
                for unit in units.drain(..units.len() - 1) {
                    requests += 1;
                    if let Unit::Otlp { body, .. } = unit {
                        spare.push(body);
                    }
                }
            }
        }
        requests += units.len();
        write.push(start.elapsed());
    }
    let (baseline, split_push, emit, write) = (
        median(baseline),
        median(split_push),
        median(emit),
        median(write),
    );
    let stage = split_push + emit + write;
    println!(
        "{EXPORTS} exports x {SPANS} spans in {TRACES_PER_EXPORT} traces each; {} traces held; median of 5 rounds",
        EXPORTS * TRACES_PER_EXPORT
    );
    println!("| step | CPU µs/span |");
    println!("|---|---|");
    println!(
        "| baseline: prost decode + encode | {:.3} |",
        per_span(baseline)
    );
    println!("| split per trace + hold | {:.3} |", per_span(split_push));
    println!("| emit the quiet traces | {:.3} |", per_span(emit));
    println!(
        "| write them as {requests} requests | {:.3} |",
        per_span(write)
    );
    println!(
        "| assembly stage in all | {:.3} ({:.2}x the baseline) |",
        per_span(stage),
        stage.as_secs_f64() / baseline.as_secs_f64()
    );
}
