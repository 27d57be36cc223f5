//! The logs path on arbitrary bytes: an OTLP logs export decoded as protobuf or OTLP/JSON, its
//! records of coding agents assembled into turns (with the agent spans of the same bytes read
//! as a trace export), every turn emitted and translated, the other records turned into events.
//! Nothing may panic; every emitted turn translates.
//!
//! `cargo fuzz run logs_decode` (nightly), from `fuzz/`.

#![no_main]

use langfuse_otel_core::agents::{self, AssembleOptions, TurnAssembler};
use langfuse_otel_core::otlp::{self, Format};
use langfuse_otel_core::{canonical, translate_batch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = if selector & 1 == 0 {
        Format::Protobuf
    } else {
        Format::Json
    };
    let options = AssembleOptions::default()
        .with_window_ms(i64::from(selector >> 4))
        .with_keep_agent_spans(selector & 2 == 2);
    let mut assembler = TurnAssembler::new(options);
    if let Ok(batch) = otlp::decode_logs_as(format, body) {
        let records = batch.record_count();
        let rest = assembler.push_logs(batch, 1, None, 0);
        assert!(rest.record_count() <= records);
        let (events, left_out) = agents::log_events(&rest);
        assert_eq!(events.span_count() + left_out, rest.record_count());
        let _ = translate_batch(&events);
    }
    if let Ok(spans) = otlp::decode_as(format, body) {
        let _ = assembler.push_spans(spans, 2, None, 0);
    }
    let mut turns = assembler.ready(i64::from(selector & 0x0c) * 1_000);
    turns.extend(assembler.drain());
    assert_eq!(assembler.pending_items(), 0);
    assert_eq!(assembler.held_from(), None);
    for turn in turns {
        let _ = translate_batch(&turn.batch);
        let _ = canonical::canonical_request(&turn.batch);
    }
});
