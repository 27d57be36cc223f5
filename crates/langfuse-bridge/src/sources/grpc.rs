//! The OTLP/gRPC listener: `TraceService/Export`, `LogsService/Export` and
//! `MetricsService/Export` (gzip accepted), answered after the durable append (metrics are
//! spooled only for a destination that takes them). Errors map to gRPC codes: `UNAUTHENTICATED`, `INVALID_ARGUMENT`,
//! `RESOURCE_EXHAUSTED` with a `RetryInfo` delay (spool full), `UNAVAILABLE`; an oversized
//! message is refused by tonic with `OUT_OF_RANGE`/`RESOURCE_EXHAUSTED` before decoding.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Request, Response, Status};

use super::receive::ReceiveError;
use super::receiver::Receiver;
use crate::metrics::Endpoint;
use langfuse_spool::RecordKind;

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
            let mut message = request.into_inner();
            // The forwarder's id rules: the spans it would refuse are left out (partial success).
            let (spans, rejected) = langfuse_otel_core::otlp::screen_request(&mut message);
            if spans == 0 && rejected.spans > 0 {
                return Err(ReceiveError::Malformed(format!(
                    "invalid OTLP trace export: {}",
                    rejected.message()
                )));
            }
            let spans = u32::try_from(spans).unwrap_or(u32::MAX);
            let body = Bytes::from(message.encode_to_vec());
            state
                .append(RecordKind::OtlpProtobuf, auth, body, spans)
                .await?;
            Ok::<_, ReceiveError>((spans, rejected))
        }
        .await;
        match result {
            Ok((spans, rejected)) => {
                state
                    .metrics
                    .accepted(Endpoint::Grpc, u64::from(spans), started.elapsed());
                let partial_success = (rejected.spans > 0).then(|| {
                    state
                        .metrics
                        .rejected_spans(Endpoint::Grpc, rejected.spans as u64);
                    tracing::warn!(
                        spans = rejected.spans,
                        reason = rejected.reason.as_deref().unwrap_or_default(),
                        "spans refused, the rest of the export kept"
                    );
                    opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess {
                        rejected_spans: i64::try_from(rejected.spans).unwrap_or(i64::MAX),
                        error_message: rejected.message(),
                    }
                });
                Ok(Response::new(ExportTraceServiceResponse {
                    partial_success,
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

/// The gRPC `LogsService` over the shared receiver state (Gemini CLI's default transport).
pub struct GrpcLogsService(pub Arc<Receiver>);

/// The gRPC `MetricsService`: answered, spooled only when the destination takes metrics.
pub struct GrpcMetricsService(pub Arc<Receiver>);

/// The logs service with gzip accepted and the decompressed-size limit applied.
pub fn logs_service(state: Arc<Receiver>) -> LogsServiceServer<GrpcLogsService> {
    let limit = state.limits.max_decompressed_bytes;
    LogsServiceServer::new(GrpcLogsService(state))
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit)
}

/// The metrics service with gzip accepted and the decompressed-size limit applied.
pub fn metrics_service(state: Arc<Receiver>) -> MetricsServiceServer<GrpcMetricsService> {
    let limit = state.limits.max_decompressed_bytes;
    MetricsServiceServer::new(GrpcMetricsService(state))
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit)
}

/// Authenticates and (when `spool`) appends one decoded export of `kind` holding `items`.
async fn export_signal<T: Message>(
    state: &Receiver,
    endpoint: Endpoint,
    request: Request<T>,
    kind: RecordKind,
    count: impl FnOnce(&T) -> u32,
    spool: bool,
) -> Result<(), Status> {
    let started = Instant::now();
    state.metrics.received(endpoint);
    let result = async {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let auth = state.auth.check(header)?;
        let message = request.into_inner();
        let items = count(&message);
        if spool {
            state
                .append(kind, auth, Bytes::from(message.encode_to_vec()), items)
                .await?;
        }
        Ok::<_, ReceiveError>(items)
    }
    .await;
    match result {
        Ok(items) => {
            state
                .metrics
                .accepted(endpoint, u64::from(items), started.elapsed());
            Ok(())
        }
        Err(e) => {
            state
                .metrics
                .rejected(endpoint, e.reason(), started.elapsed());
            Err(to_status(state, &e))
        }
    }
}

#[tonic::async_trait]
impl LogsService for GrpcLogsService {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let count = |m: &ExportLogsServiceRequest| {
            let n: usize = m
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len())
                .sum();
            u32::try_from(n).unwrap_or(u32::MAX)
        };
        export_signal(
            &self.0,
            Endpoint::GrpcLogs,
            request,
            RecordKind::OtlpLogsProtobuf,
            count,
            true,
        )
        .await?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for GrpcMetricsService {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let spool = self.0.keep_metrics;
        export_signal(
            &self.0,
            Endpoint::GrpcMetrics,
            request,
            RecordKind::OtlpMetricsProtobuf,
            super::receive::metric_count,
            spool,
        )
        .await?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}
