//! The bridge's receive path on arbitrary bytes: decompression within limits, content-type
//! dispatch, OTLP validation, ingestion and score parsing, then the forwarder's shaping of the
//! accepted record (translation with a long-lived translator, canonical re-encoding). Nothing
//! may panic or allocate beyond the limits.
//!
//! `cargo fuzz run bridge_receive` (nightly), from `fuzz/`.

#![no_main]

use bytes::Bytes;
use langfuse_bridge::OtlpMode;
use langfuse_bridge::internal::{Shape, Shaper};
use langfuse_bridge::internal::receive::{self, Limits};
use langfuse_spool::{RecordKind, SpoolRecord};
use langfuse_otel_core::Translator;
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_body_bytes: 1 << 20,
    max_decompressed_bytes: 4 << 20,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let encoding = if selector & 1 == 1 { Some("gzip") } else { None };
    let Ok(mut body) = receive::decompress(Bytes::copy_from_slice(body), encoding, LIMITS) else {
        return;
    };
    assert!(body.len() <= LIMITS.max_decompressed_bytes);
    let (kind, items) = match (selector >> 1) % 4 {
        0 | 1 => {
            let content_type = if selector & 2 == 0 {
                "application/x-protobuf"
            } else {
                "application/json"
            };
            let Ok(kind) = receive::otlp_kind(Some(content_type)) else {
                return;
            };
            match receive::check_otlp(kind, body) {
                Ok(checked) => {
                    // What is acknowledged decodes in the forwarder.
                    let format = receive::otlp_format(kind).expect("an OTLP kind");
                    let batch = langfuse_otel_core::otlp::decode_as(format, &checked.body)
                        .expect("an accepted export decodes");
                    assert_eq!(batch.span_count(), checked.spans as usize);
                    body = checked.body;
                    (kind, checked.spans)
                }
                Err(_) => return,
            }
        }
        2 => match receive::split_ingestion(&body) {
            Ok((valid, _)) => (RecordKind::IngestionBatch, valid.len() as u32),
            Err(_) => return,
        },
        _ => match receive::parse_scores(&body) {
            Ok(scores) => (RecordKind::Scores, scores.len() as u32),
            Err(_) => return,
        },
    };
    let record = SpoolRecord {
        sequence: 1,
        kind: kind as i32,
        received_unix_ms: 0,
        authorization: None,
        body,
        item_count: items,
    };
    for shape in [
        Shape::Events,
        Shape::Langfuse(OtlpMode::Canonical),
        Shape::Langfuse(OtlpMode::Passthrough),
        Shape::OtlpOnly,
    ] {
        let _ = Shaper::new(shape, Translator::new()).prepare(std::slice::from_ref(&record), 0);
    }
});
