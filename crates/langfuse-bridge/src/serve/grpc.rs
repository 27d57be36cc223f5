//! The OTLP/gRPC listener: `TraceService/Export` (gzip accepted), answered after the durable
//! append. Errors map to gRPC codes: `UNAUTHENTICATED`, `INVALID_ARGUMENT`,
//! `RESOURCE_EXHAUSTED` with a `RetryInfo` delay (spool full), `UNAVAILABLE`; an oversized
//! message is refused by tonic with `OUT_OF_RANGE`/`RESOURCE_EXHAUSTED` before decoding.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Request, Response, Status};

use super::Receiver;
use super::metrics::Endpoint;
use super::receive::{self, ReceiveError};
use crate::spool::RecordKind;

/// The gRPC service over the shared receiver state.
pub struct GrpcTraceService(pub Arc<Receiver>);

/// The tonic service with gzip accepted and the decompressed-size limit applied.
pub fn service(state: Arc<Receiver>) -> TraceServiceServer<GrpcTraceService> {
    let limit = state.limits.max_decompressed_bytes;
    TraceServiceServer::new(GrpcTraceService(state))
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit)
}

fn to_status(state: &Receiver, e: &ReceiveError) -> Status {
    match e {
        ReceiveError::Unauthorized => Status::unauthenticated(e.to_string()),
        ReceiveError::Malformed(_) | ReceiveError::UnsupportedMediaType(_) => {
            Status::invalid_argument(e.to_string())
        }
        ReceiveError::BodyTooLarge { .. } | ReceiveError::DecompressedTooLarge { .. } => {
            Status::out_of_range(e.to_string())
        }
        ReceiveError::SpoolFull | ReceiveError::Unavailable => {
            let code = if matches!(e, ReceiveError::SpoolFull) {
                Code::ResourceExhausted
            } else {
                Code::Unavailable
            };
            let details = langfuse_otel_transport::grpc::retry_info_details(
                code as i32,
                &e.to_string(),
                Duration::from_secs(state.retry_after_secs),
            );
            Status::with_details(code, e.to_string(), Bytes::from(details))
        }
    }
}

#[tonic::async_trait]
impl TraceService for GrpcTraceService {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let state = &self.0;
        let started = Instant::now();
        state.metrics.received(Endpoint::Grpc);
        let result = async {
            let header = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            let auth = state.auth.check(header)?;
            let message = request.into_inner();
            let spans = u32::try_from(receive::span_count(&message)).unwrap_or(u32::MAX);
            let body = Bytes::from(message.encode_to_vec());
            state
                .append(RecordKind::OtlpProtobuf, auth, body, spans)
                .await?;
            Ok::<_, ReceiveError>(spans)
        }
        .await;
        match result {
            Ok(spans) => {
                state
                    .metrics
                    .accepted(Endpoint::Grpc, u64::from(spans), started.elapsed());
                Ok(Response::new(ExportTraceServiceResponse {
                    partial_success: None,
                }))
            }
            Err(e) => {
                state
                    .metrics
                    .rejected(Endpoint::Grpc, e.reason(), started.elapsed());
                Err(to_status(state, &e))
            }
        }
    }
}
