//! OTLP/gRPC against a real tonic collector on 127.0.0.1 (feature `grpc`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use integration_tests::receiver::ReservedPort;
use integration_tests::spans::{span_ids, spans};
use langfuse_otel_exporter::{Diagnostics, LangfuseExporter, OtlpMode, OtlpProtocol, RetryPolicy};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_sdk::trace::SpanExporter;
use tonic::codec::CompressionEncoding;

#[derive(Default)]
struct Collector {
    calls: AtomicUsize,
    fail_first: usize,
    span_ids: Arc<Mutex<Vec<String>>>,
    api_keys: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            return Err(tonic::Status::unavailable("warming up"));
        }
        if let Some(k) = request
            .metadata()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
        {
            self.api_keys.lock().unwrap().push(k.to_string());
        }
        let request = request.into_inner();
        self.requests.lock().unwrap().push(request.clone());
        let ids = request
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .map(|s| {
                s.span_id
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            })
            .collect::<Vec<_>>();
        self.span_ids.lock().unwrap().extend(ids);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

struct Running {
    _runtime: tokio::runtime::Runtime,
    port: u16,
    span_ids: Arc<Mutex<Vec<String>>>,
    api_keys: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

impl Running {
    fn delivered(&self) -> Vec<String> {
        let mut v = self.span_ids.lock().unwrap().clone();
        v.sort();
        v.dedup();
        v
    }
}

fn start_collector(fail_first: usize) -> Running {
    let collector = Collector {
        fail_first,
        ..Collector::default()
    };
    let span_ids = collector.span_ids.clone();
    let api_keys = collector.api_keys.clone();
    let requests = collector.requests.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = bound_listener(&runtime);
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(collector).accept_compressed(CompressionEncoding::Gzip),
            )
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    Running {
        _runtime: runtime,
        port,
        span_ids,
        api_keys,
        requests,
    }
}

fn grpc_exporter(port: u16, timeout: Duration) -> LangfuseExporter {
    grpc_exporter_in(port, timeout, OtlpMode::Passthrough)
}

fn grpc_exporter_in(port: u16, timeout: Duration, mode: OtlpMode) -> LangfuseExporter {
    LangfuseExporter::builder()
        .otlp_mode(mode)
        .without_env()
        .otlp_endpoint(format!("http://127.0.0.1:{port}"))
        .protocol(OtlpProtocol::Grpc)
        .header("x-api-key", "secret-k")
        .timeout(timeout)
        .retry(RetryPolicy {
            initial_backoff: Duration::from_millis(30),
            ..RetryPolicy::default()
        })
        .diagnostics(Diagnostics::new(|_| {}))
        .build()
        .unwrap()
}

#[test]
fn a_grpc_collector_receives_every_span_and_the_headers() {
    let c = start_collector(0);
    let e = grpc_exporter(c.port, Duration::from_secs(5));
    futures_executor::block_on(e.export(spans(0..6))).unwrap();
    futures_executor::block_on(e.export(spans(6..9))).unwrap();
    assert_eq!(c.delivered(), span_ids(0..9));
    assert_eq!(
        c.api_keys.lock().unwrap().as_slice(),
        ["secret-k", "secret-k"]
    );
    assert_eq!(e.stats().snapshot().exported_spans, 9);
    assert!(!format!("{e:?}").contains("secret-k"));
}

#[test]
fn grpc_unavailable_then_recovery_delivers_everything() {
    let c = start_collector(2);
    let e = grpc_exporter(c.port, Duration::from_secs(5));
    futures_executor::block_on(e.export(spans(0..5))).unwrap();
    assert_eq!(c.delivered(), span_ids(0..5));
    let s = e.stats().snapshot();
    assert!(s.retried_requests >= 2, "{s:?}");
    assert_eq!(s.dropped_spans, 0);
}

#[test]
fn an_unreachable_grpc_collector_drops_exactly_the_batch() {
    let down = ReservedPort::new();
    let e = grpc_exporter(down.port(), Duration::from_millis(500));
    assert!(futures_executor::block_on(e.export(spans(0..7))).is_err());
    assert_eq!(e.stats().snapshot().dropped_spans, 7);
}

/// Canonical mode over gRPC: what the collector receives translates back to the records of
/// the original GenAI spans.
#[test]
fn a_grpc_collector_receives_canonical_spans() {
    let c = start_collector(0);
    let e = grpc_exporter_in(c.port, Duration::from_secs(5), OtlpMode::Canonical);
    let spans = integration_tests::spans::genai_agent_run();
    futures_executor::block_on(e.export(spans.clone())).unwrap();
    let requests = c.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let received = langfuse_otel_core::otlp::batch_from_request(requests[0].clone());
    let resource = opentelemetry_sdk::Resource::builder_empty().build();
    let original = langfuse_otel_core::otlp::batch_from_span_data(&spans, &resource);
    if let Some(d) = integration_tests::events::canonical_round_trip_diff(&original, &received) {
        panic!("canonical spans over gRPC translate differently: {d}");
    }
}

/// Answers the first call UNAVAILABLE with a `google.rpc.RetryInfo` asking for `delay`, then OK;
/// records when each call arrived.
struct Throttling {
    delay: Duration,
    calls: Arc<Mutex<Vec<std::time::Instant>>>,
}

#[tonic::async_trait]
impl TraceService for Throttling {
    async fn export(
        &self,
        _request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut calls = self.calls.lock().unwrap();
        calls.push(std::time::Instant::now());
        if calls.len() == 1 {
            let details = langfuse_otel_transport::grpc::retry_info_details(14, "busy", self.delay);
            return Err(tonic::Status::with_details(
                tonic::Code::Unavailable,
                "busy",
                details.into(),
            ));
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[test]
fn a_grpc_retry_waits_the_delay_the_server_asked_for() {
    let delay = Duration::from_millis(1500);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = bound_listener(&runtime);
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(Throttling {
                    delay,
                    calls: calls.clone(),
                })
                .accept_compressed(CompressionEncoding::Gzip),
            )
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    // The exporter's own backoff starts at 30 ms: only the server's delay explains the gap.
    let e = grpc_exporter(port, Duration::from_secs(10));
    futures_executor::block_on(e.export(spans(0..3))).unwrap();
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 2);
    let gap = calls[1] - calls[0];
    assert!(gap >= delay && gap < delay * 2, "{gap:?}");
    assert_eq!(e.stats().snapshot().exported_spans, 3);
}

/// A listener on 127.0.0.1, bound once (port 0) for a server on `runtime`.
fn bound_listener(runtime: &tokio::runtime::Runtime) -> tokio::net::TcpListener {
    let _enter = runtime.enter();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    tokio::net::TcpListener::from_std(listener).unwrap()
}
