//! Trace assembly at the wire level on arbitrary bytes: a protobuf trace export cut per trace
//! ([`langfuse_otel_core::otlp::wire::split_by_trace`]), the parts of each trace written back as
//! one export ([`langfuse_otel_core::otlp::wire::assemble`]) and each part alone. Nothing may
//! panic; what a decoder reads, the splitter reads too, into all its spans; and from such an
//! input (the bridge assembles only exports that decoded on receipt) what is written decodes,
//! with every span once per id.
//!
//! `cargo fuzz run wire_assemble` (nightly), from `fuzz/`.

#![no_main]

use langfuse_otel_core::otlp::wire;
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(parts) = wire::split_by_trace(data) else {
        // What a decoder reads, the splitter reads too.
        assert!(ExportTraceServiceRequest::decode(data).is_err());
        return;
    };
    let spans: usize = parts.iter().map(wire::TracePart::span_count).sum();
    let mut body = Vec::new();
    let mut written = 0;
    for part in &parts {
        // Each trace twice: the second time every span is a duplicate.
        let assembled = wire::assemble(&[part, part], &mut body);
        assert_eq!(assembled.spans + assembled.duplicates, 2 * part.span_count());
        written += assembled.spans;
    }
    let Ok(request) = ExportTraceServiceRequest::decode(data) else {
        return;
    };
    let count = |r: &ExportTraceServiceRequest| -> usize {
        r.resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum()
    };
    assert_eq!(spans, count(&request));
    for part in &parts {
        let alone = ExportTraceServiceRequest::decode(&part.to_export()[..]);
        assert_eq!(alone.map(|r| count(&r)).ok(), Some(part.span_count()));
    }
    let out = ExportTraceServiceRequest::decode(&body[..]).expect("the assembled export decodes");
    assert_eq!(count(&out), written);
});
