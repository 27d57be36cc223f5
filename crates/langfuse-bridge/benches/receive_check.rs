//! The receive path's validation alone, per export: the check before the one-decode-path change
//! (decode the protobuf message and count its spans; JSON fully decoded) against
//! [`receive::check_otlp`] (the forwarder's decoder with its id rules, the export kept as
//! received when every span passes), on the `serve` benchmark's 100-span exports.
//!
//! Both run alternately in batches and the fastest batch of each is kept, so that the load of
//! a shared machine does not favour either.
//!
//! `cargo bench -p langfuse-bridge --bench receive_check` (`BENCH_ROUNDS`, default 20000).

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use langfuse_bridge::internal::receive;
use langfuse_otel_core::otlp;
use langfuse_spool::RecordKind;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

mod common;

/// Mean µs per call of `before` and `after`: each run in 10 alternating batches of
/// `rounds / 10` calls after a warm-up, the fastest batch kept (the machine's other load only
/// ever adds time).
fn compare(rounds: u32, mut before: impl FnMut(), mut after: impl FnMut()) -> (f64, f64) {
    let batch = (rounds / 10).max(1);
    let run = |f: &mut dyn FnMut()| {
        let started = Instant::now();
        for _ in 0..batch {
            f();
        }
        started.elapsed().as_secs_f64() * 1e6 / f64::from(batch)
    };
    run(&mut before);
    run(&mut after);
    let (mut best_before, mut best_after) = (f64::MAX, f64::MAX);
    for _ in 0..10 {
        best_before = best_before.min(run(&mut before));
        best_after = best_after.min(run(&mut after));
    }
    (best_before, best_after)
}

fn main() {
    let rounds: u32 = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let request = common::export(7, 1..101);
    let protobuf = Bytes::from(request.encode_to_vec());
    let json = Bytes::from(serde_json::to_vec(&request).expect("OTLP/JSON"));
    // Both checks accept the bodies and count the same spans.
    assert_eq!(
        receive::check_otlp(RecordKind::OtlpProtobuf, protobuf.clone())
            .expect("valid")
            .spans,
        100
    );
    assert_eq!(
        receive::check_otlp(RecordKind::OtlpJson, json.clone())
            .expect("valid")
            .spans,
        100
    );
    let (before_pb, after_pb) = compare(
        rounds,
        || {
            let request =
                ExportTraceServiceRequest::decode(black_box(&protobuf[..])).expect("valid");
            black_box(receive::span_count(&request));
        },
        || {
            black_box(
                receive::check_otlp(RecordKind::OtlpProtobuf, black_box(protobuf.clone())).ok(),
            );
        },
    );
    let (before_json, after_json) = compare(
        rounds / 4,
        || {
            black_box(
                otlp::decode_json(black_box(&json[..]))
                    .ok()
                    .map(|b| b.span_count()),
            );
        },
        || {
            black_box(receive::check_otlp(RecordKind::OtlpJson, black_box(json.clone())).ok());
        },
    );
    println!(
        "100-span export ({} bytes protobuf, {} bytes OTLP/JSON), µs per check (fastest of 10 alternating batches)",
        protobuf.len(),
        json.len()
    );
    println!("| body | before (decode, count) µs | after (check_otlp) µs | change |");
    println!("|---|---|---|---|");
    for (name, before, after) in [
        ("protobuf", before_pb, after_pb),
        ("OTLP/JSON", before_json, after_json),
    ] {
        println!(
            "| {name} | {before:.2} | {after:.2} | {:+.1} % |",
            (after / before - 1.0) * 100.0
        );
    }
}
