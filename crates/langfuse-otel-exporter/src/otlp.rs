//! Encoding `SpanData` batches as OTLP requests (protobuf or JSON, optionally gzip).

use std::io::Write;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::SpanData;
use prost::Message;

use crate::config::{Compression, OtlpProtocol};

/// Builds the OTLP request for one batch of one resource.
pub(crate) fn request(
    spans: Vec<SpanData>,
    resource: &ResourceAttributesWithSchema,
) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(spans, resource),
    }
}

/// Number of spans in a request.
pub(crate) fn span_count(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

/// Splits a request into two of about half the spans each (`None` for fewer than 2 spans).
pub(crate) fn split(
    req: ExportTraceServiceRequest,
) -> Option<(ExportTraceServiceRequest, ExportTraceServiceRequest)> {
    let total = span_count(&req);
    if total < 2 {
        return None;
    }
    let mut want = total / 2;
    let mut first = Vec::new();
    let mut second = Vec::new();
    for rs in req.resource_spans {
        let mut a = ResourceSpans {
            resource: rs.resource.clone(),
            scope_spans: Vec::new(),
            schema_url: rs.schema_url.clone(),
        };
        let mut b = ResourceSpans {
            resource: rs.resource,
            scope_spans: Vec::new(),
            schema_url: rs.schema_url,
        };
        for mut ss in rs.scope_spans {
            if want == 0 {
                b.scope_spans.push(ss);
            } else if ss.spans.len() <= want {
                want -= ss.spans.len();
                a.scope_spans.push(ss);
            } else {
                let rest = ss.spans.split_off(want);
                want = 0;
                b.scope_spans.push(ScopeSpans {
                    scope: ss.scope.clone(),
                    spans: rest,
                    schema_url: ss.schema_url.clone(),
                });
                a.scope_spans.push(ss);
            }
        }
        if !a.scope_spans.is_empty() {
            first.push(a);
        }
        if !b.scope_spans.is_empty() {
            second.push(b);
        }
    }
    Some((
        ExportTraceServiceRequest {
            resource_spans: first,
        },
        ExportTraceServiceRequest {
            resource_spans: second,
        },
    ))
}

/// The request body and its `Content-Encoding`.
pub(crate) fn encode(
    req: &ExportTraceServiceRequest,
    protocol: OtlpProtocol,
    compression: Compression,
) -> Result<(Vec<u8>, Option<&'static str>), String> {
    let raw = match protocol {
        OtlpProtocol::HttpProtobuf => req.encode_to_vec(),
        OtlpProtocol::HttpJson => serde_json::to_vec(req).map_err(|e| e.to_string())?,
    };
    match compression {
        Compression::None => Ok((raw, None)),
        Compression::Gzip(level) => {
            Ok((gzip(&raw, level).map_err(|e| e.to_string())?, Some("gzip")))
        }
    }
}

/// gzip-compresses `data`.
pub(crate) fn gzip(data: &[u8], level: u32) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::new(level.min(9)),
    );
    enc.write_all(data)?;
    enc.finish()
}

/// The content type of a protocol.
pub(crate) fn content_type(protocol: OtlpProtocol) -> &'static str {
    match protocol {
        OtlpProtocol::HttpProtobuf => "application/x-protobuf",
        OtlpProtocol::HttpJson => "application/json",
    }
}
