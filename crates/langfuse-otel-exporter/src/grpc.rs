//! OTLP/gRPC to collectors (feature `grpc`): tonic, driven by a private Tokio runtime on its own
//! thread.
//!
//! `export()` hands the request to that thread and waits on a standard channel, so it still
//! needs no runtime of the caller's and works from inside one too (a `block_on` there would
//! panic). Langfuse itself does not accept gRPC; this is for collectors.
//!
//! Retried gRPC codes: `UNAVAILABLE` (includes connection refused/reset), `RESOURCE_EXHAUSTED`,
//! `DEADLINE_EXCEEDED`, `ABORTED`, `CANCELLED`, with the same backoff and deadline as HTTP.

use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataValue};

use crate::config::Secret;
use crate::http::{Outcome, RetryPolicy};
use crate::stats::Stats;

struct Job {
    request: ExportTraceServiceRequest,
    timeout: Duration,
    reply: mpsc::SyncSender<Result<(), tonic::Status>>,
}

/// A gRPC trace service endpoint.
pub(crate) struct GrpcSender {
    endpoint: String,
    jobs: Mutex<mpsc::Sender<Job>>,
    retry: RetryPolicy,
    attempt_timeout: Option<Duration>,
}

impl std::fmt::Debug for GrpcSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcSender")
            .field("endpoint", &self.endpoint)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl GrpcSender {
    pub(crate) fn new(
        endpoint: String,
        headers: Vec<(String, Secret)>,
        gzip: bool,
        retry: RetryPolicy,
        attempt_timeout: Option<Duration>,
    ) -> Result<Self, String> {
        let channel_endpoint = tonic::transport::Endpoint::from_shared(endpoint.clone())
            .map_err(|e| format!("invalid gRPC endpoint {endpoint:?}: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the gRPC runtime: {e}"))?;
        let (tx, rx) = mpsc::channel::<Job>();
        let mut metadata = Vec::new();
        for (k, v) in headers {
            if let (Ok(key), Ok(value)) = (
                MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()),
                MetadataValue::try_from(v.expose()),
            ) {
                metadata.push((key, value));
            }
        }
        std::thread::Builder::new()
            .name("langfuse-otel-grpc".into())
            .spawn(move || {
                let _suppressed = opentelemetry::Context::enter_telemetry_suppressed_scope();
                let channel = {
                    let _enter = runtime.enter();
                    channel_endpoint.connect_lazy()
                };
                while let Ok(job) = rx.recv() {
                    let mut client = TraceServiceClient::new(channel.clone());
                    if gzip {
                        client = client.send_compressed(CompressionEncoding::Gzip);
                    }
                    let mut req = tonic::Request::new(job.request);
                    req.set_timeout(job.timeout);
                    for (k, v) in &metadata {
                        req.metadata_mut().insert(k.clone(), v.clone());
                    }
                    let result = runtime.block_on(async {
                        match tokio::time::timeout(job.timeout, client.export(req)).await {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err(status)) => Err(status),
                            Err(_) => Err(tonic::Status::deadline_exceeded("attempt timed out")),
                        }
                    });
                    let _ = job.reply.send(result);
                }
            })
            .map_err(|e| format!("cannot start the gRPC thread: {e}"))?;
        Ok(GrpcSender {
            endpoint,
            jobs: Mutex::new(tx),
            retry,
            attempt_timeout,
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.endpoint
    }

    /// Sends `request` until it is delivered, finally rejected, or `deadline` passes.
    pub(crate) fn send(
        &self,
        request: &ExportTraceServiceRequest,
        deadline: Instant,
        stats: &Stats,
    ) -> Outcome {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let Some(remaining) = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            else {
                return Outcome::GaveUp {
                    reason: "export timeout reached".into(),
                    timed_out: true,
                };
            };
            let per_attempt = self.attempt_timeout.map_or(remaining, |t| t.min(remaining));
            let (reply_tx, reply_rx) = mpsc::sync_channel(1);
            let job = Job {
                request: request.clone(),
                timeout: per_attempt,
                reply: reply_tx,
            };
            let sent = self
                .jobs
                .lock()
                .map(|tx| tx.send(job).is_ok())
                .unwrap_or(false);
            if !sent {
                return Outcome::Rejected {
                    status: 0,
                    message: "the gRPC thread has stopped".into(),
                };
            }
            let status = match reply_rx.recv_timeout(per_attempt + Duration::from_millis(200)) {
                Ok(Ok(())) => {
                    return Outcome::Delivered {
                        status: 200,
                        body: Vec::new(),
                    };
                }
                Ok(Err(status)) => status,
                Err(_) => tonic::Status::deadline_exceeded("no answer from the gRPC thread"),
            };
            let retryable = matches!(
                status.code(),
                Code::Unavailable
                    | Code::ResourceExhausted
                    | Code::DeadlineExceeded
                    | Code::Aborted
                    | Code::Cancelled
            );
            let reason = format!("gRPC {:?}: {}", status.code(), status.message());
            if !retryable {
                return Outcome::Rejected {
                    status: 0,
                    message: reason,
                };
            }
            if attempt >= self.retry.max_attempts {
                return Outcome::GaveUp {
                    reason: format!("{reason} after {attempt} attempts"),
                    timed_out: false,
                };
            }
            let delay = self.retry.backoff(attempt);
            if Instant::now() + delay >= deadline {
                return Outcome::GaveUp {
                    reason: format!("{reason}; the next attempt would pass the export timeout"),
                    timed_out: true,
                };
            }
            stats.add_retried(1);
            std::thread::sleep(delay);
        }
    }
}
