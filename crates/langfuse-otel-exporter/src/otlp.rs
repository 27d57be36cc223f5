//! OTLP requests through `opentelemetry_proto` (the JSON path and the reference for
//! [`crate::wire`]), gzip, content types.

use std::io::Write;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::SpanData;

use crate::config::OtlpProtocol;

/// Builds the OTLP request for one batch of one resource.
pub(crate) fn request(
    spans: Vec<SpanData>,
    resource: &ResourceAttributesWithSchema,
) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(spans, resource),
    }
}

/// The canonical OTLP request for one batch (see `langfuse_otel_core::canonical`).
pub(crate) fn canonical_request(
    spans: &[SpanData],
    resource: &opentelemetry_sdk::Resource,
) -> ExportTraceServiceRequest {
    let batch = langfuse_otel_core::otlp::batch_from_span_data(spans, resource);
    langfuse_otel_core::canonical::canonical_request(&batch)
}

/// gzip-compresses `data` into `out` (appended).
pub(crate) fn gzip_into(data: &[u8], level: u32, out: Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::new(level.min(9)));
    enc.write_all(data)?;
    enc.finish()
}

/// The content type of a protocol.
pub(crate) fn content_type(protocol: OtlpProtocol) -> &'static str {
    match protocol {
        OtlpProtocol::HttpProtobuf => "application/x-protobuf",
        OtlpProtocol::HttpJson => "application/json",
        OtlpProtocol::Grpc => "application/grpc",
    }
}
