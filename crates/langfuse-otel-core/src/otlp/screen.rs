//! Screening an export before it is acknowledged, with the decoder's own rules: an export is
//! either refused as a whole (it does not decode), or kept without the spans the decoder
//! refuses (OTLP's partial success), so that whatever is acknowledged decodes later.
//!
//! | body | refused as a whole | span refused, the rest kept |
//! |---|---|---|
//! | protobuf | not an `ExportTraceServiceRequest` | an empty trace or span id (absent after the server's `toObject`) |
//! | OTLP/JSON | not JSON; `resourceSpans`, `scopeSpans`, `spans` or resource/scope `attributes` not a list | no `traceId`/`spanId`, an unusable `parentSpanId`, span or event `attributes`/`events` not a list |
//!
//! When spans are refused, [`Screened::body`] holds the export without them, in the same
//! encoding; otherwise the body is kept as received (no re-encoding on the common path).
//!
//! ```
//! use langfuse_otel_core::otlp::{self, Format};
//!
//! let export = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[
//!     {"traceId":"f7a0e8d1f86e1d6a80854c2106aa25fb","spanId":"99180b94af7b795a","name":"kept"},
//!     {"traceId":"f7a0e8d1f86e1d6a80854c2106aa25fb","name":"no span id"}]}]}]}"#;
//! let screened = otlp::screen(Format::Json, export).unwrap();
//! assert_eq!((screened.spans, screened.rejected.spans), (1, 1));
//! assert!(screened.rejected.reason.unwrap().contains("spans[1]: spanId:absent"));
//! let kept = otlp::decode_as(Format::Json, &screened.body.unwrap()).unwrap();
//! assert_eq!(kept.span_count(), 1);
//! ```

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::Value;

use super::{DecodeError, Format, json, proto};

/// Spans refused by [`screen`] or [`screen_request`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejected {
    /// How many.
    pub spans: usize,
    /// Why the first one was refused (`resourceSpans[0].scopeSpans[0].spans[3]: spanId:absent`);
    /// `None` when none was.
    pub reason: Option<String>,
}

impl Rejected {
    fn add(&mut self, reason: impl FnOnce() -> String) {
        self.spans += 1;
        if self.reason.is_none() {
            self.reason = Some(reason());
        }
    }

    /// A message for the client (OTLP's `error_message`): how many spans were refused and why
    /// the first one was.
    pub fn message(&self) -> String {
        let spans = if self.spans == 1 { "span" } else { "spans" };
        match &self.reason {
            Some(reason) => format!("{} {spans} refused; the first: {reason}", self.spans),
            None => format!("{} {spans} refused", self.spans),
        }
    }
}

/// An export that decodes, possibly without some of its spans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Screened {
    /// Spans kept.
    pub spans: usize,
    /// Spans refused.
    pub rejected: Rejected,
    /// The export without the refused spans, in the same encoding; `None` when no span was
    /// refused (the body decodes as it is).
    pub body: Option<Vec<u8>>,
}

/// Screens a decompressed export of a declared format (see the [`otlp`](crate::otlp) module docs): `Err`
/// when it does not decode at all, else the spans kept and refused.
pub fn screen(format: Format, bytes: &[u8]) -> Result<Screened, DecodeError> {
    match format {
        Format::Protobuf => {
            let mut request = ExportTraceServiceRequest::decode(bytes)
                .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
            let (spans, rejected) = screen_request(&mut request);
            let body = (rejected.spans > 0).then(|| request.encode_to_vec());
            Ok(Screened {
                spans,
                rejected,
                body,
            })
        }
        Format::Json => screen_json(bytes),
    }
}

/// Removes the spans of a decoded protobuf request that [`super::decode_protobuf`] would
/// refuse; returns the spans kept and those removed. The request then decodes.
pub fn screen_request(request: &mut ExportTraceServiceRequest) -> (usize, Rejected) {
    let mut kept = 0;
    let mut rejected = Rejected::default();
    for (ri, rs) in request.resource_spans.iter_mut().enumerate() {
        for (si, ss) in rs.scope_spans.iter_mut().enumerate() {
            // The common case (every id present) only reads.
            if ss.spans.iter().all(|s| proto::id_problem(s).is_none()) {
                kept += ss.spans.len();
                continue;
            }
            let mut pi = 0;
            ss.spans.retain(|span| {
                let problem = proto::id_problem(span);
                if let Some(problem) = problem {
                    rejected.add(|| {
                        format!("resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]: {problem}")
                    });
                } else {
                    kept += 1;
                }
                pi += 1;
                problem.is_none()
            });
        }
    }
    (kept, rejected)
}

fn screen_json(bytes: &[u8]) -> Result<Screened, DecodeError> {
    let mut root: Value =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
    let whole = match json::batch_from_json(&root) {
        Ok(batch) => {
            return Ok(Screened {
                spans: batch.span_count(),
                ..Screened::default()
            });
        }
        Err(e) => e,
    };
    let rejected = remove_refused_json_spans(&mut root);
    if rejected.spans == 0 {
        // Not a span's fault: the export's structure.
        return Err(whole);
    }
    let batch = json::batch_from_json(&root)?;
    let body = serde_json::to_vec(&root).map_err(|e| DecodeError::Json(e.to_string()))?;
    Ok(Screened {
        spans: batch.span_count(),
        rejected,
        body: Some(body),
    })
}

/// Removes every span the OTLP/JSON decoder refuses, where the lists are lists (anything else
/// is left for the decoder to report).
fn remove_refused_json_spans(root: &mut Value) -> Rejected {
    let mut rejected = Rejected::default();
    let list = |v: &mut Value, key: &str| match v.get_mut(key) {
        Some(Value::Array(items)) => Some(std::mem::take(items)),
        _ => None,
    };
    let Some(mut resource_spans) = list(root, "resourceSpans") else {
        return rejected;
    };
    for (ri, rs) in resource_spans.iter_mut().enumerate() {
        let Some(mut scope_spans) = list(rs, "scopeSpans") else {
            continue;
        };
        for (si, ss) in scope_spans.iter_mut().enumerate() {
            let Some(spans) = list(ss, "spans") else {
                continue;
            };
            let mut kept = Vec::with_capacity(spans.len());
            for (pi, span) in spans.into_iter().enumerate() {
                let at = format!("resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]");
                match json::span_problem(&span, &at) {
                    None => kept.push(span),
                    Some(problem) => rejected.add(|| match problem {
                        DecodeError::Shape(m) => m,
                        other => format!("{at}: {other}"),
                    }),
                }
            }
            ss["spans"] = Value::Array(kept);
        }
        rs["scopeSpans"] = Value::Array(scope_spans);
    }
    root["resourceSpans"] = Value::Array(resource_spans);
    rejected
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::decode_as;
    use opentelemetry_proto::tonic::trace::v1 as pb;

    fn request(spans: Vec<pb::Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![pb::ResourceSpans {
                scope_spans: vec![pb::ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn span(id: u8) -> pb::Span {
        pb::Span {
            trace_id: vec![1; 16],
            span_id: vec![id; 8],
            name: format!("s{id}"),
            ..Default::default()
        }
    }

    #[test]
    fn a_span_with_an_empty_id_is_refused_and_the_rest_kept() {
        let mut spans: Vec<pb::Span> = (1..=10).map(span).collect();
        spans.insert(
            4,
            pb::Span {
                span_id: vec![],
                ..span(99)
            },
        );
        let body = request(spans).encode_to_vec();
        assert!(decode_as(Format::Protobuf, &body).is_err());
        let screened = screen(Format::Protobuf, &body).unwrap();
        assert_eq!((screened.spans, screened.rejected.spans), (10, 1));
        assert_eq!(
            screened.rejected.reason.as_deref(),
            Some("resourceSpans[0].scopeSpans[0].spans[4]: spanId:absent")
        );
        let kept = decode_as(Format::Protobuf, &screened.body.unwrap()).unwrap();
        assert_eq!(kept.span_count(), 10);
    }

    #[test]
    fn a_valid_export_is_kept_as_received() {
        let body = request((1..=3).map(span).collect()).encode_to_vec();
        let screened = screen(Format::Protobuf, &body).unwrap();
        assert_eq!(
            screened,
            Screened {
                spans: 3,
                ..Screened::default()
            }
        );
    }

    #[test]
    fn json_span_faults_are_per_span_and_structure_faults_whole() {
        let export = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"aa","spanId":"bb","attributes":{"not":"a list"}},
            {"traceId":"aa","spanId":"cc"},
            {"spanId":"dd"}]}]}]}"#;
        let screened = screen(Format::Json, export).unwrap();
        assert_eq!((screened.spans, screened.rejected.spans), (1, 2));
        assert_eq!(
            screened.rejected.reason.as_deref(),
            Some("resourceSpans[0].scopeSpans[0].spans[0].attributes is not an array")
        );
        let kept = decode_as(Format::Json, &screened.body.unwrap()).unwrap();
        assert_eq!(kept.resource_spans[0].scope_spans[0].spans[0].span_id, "cc");
        assert!(screen(Format::Json, br#"{"resourceSpans":{}}"#).is_err());
        assert!(
            screen(
                Format::Json,
                br#"{"resourceSpans":[{"resource":{"attributes":7},"scopeSpans":[]}]}"#
            )
            .is_err()
        );
        assert!(screen(Format::Json, b"\x0a\x7b").is_err());
    }
}
