//! [`LangfuseExporter`]: the `opentelemetry_sdk` span exporter and its builder.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::config::{self, Compression, OtlpMode, OtlpProtocol};
use crate::filter::ExportFilter;
use crate::ingestion::{Exported, IngestionTransport};
use crate::offline::FileSink;
use crate::otlp;
use crate::stats::Stats;
use crate::wire::{self, EncodedResource};
use langfuse_otel_transport::RetryPolicy;
use langfuse_otel_transport::{ContentEncoding, HttpSender, Outcome, Payload, Status};

/// Reused encoding buffers.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    raw: Vec<u8>,
    scratch: Vec<u8>,
    body: Vec<u8>,
}

use langfuse_otel_transport::Diagnostics;

/// What the exporter does with a batch: one variant per destination.
#[derive(Debug)]
pub(crate) enum Transport {
    Otlp {
        sender: HttpSender,
        protocol: OtlpProtocol,
        compression: Compression,
    },
    #[cfg(feature = "grpc")]
    Grpc(langfuse_otel_transport::GrpcSender),
    Ingestion(Box<IngestionTransport>),
    File(Arc<FileSink>),
}

/// An `opentelemetry_sdk` [`SpanExporter`] for Langfuse and any OTLP collector.
///
/// `export()` is synchronous inside (a blocking HTTP client, no async runtime), so it runs
/// under [`crate::BatchProcessor`], the SDK's `BatchSpanProcessor` and `SimpleSpanProcessor`
/// alike, on any thread. Its own HTTP calls run in a telemetry-suppressed context, so they
/// are never traced.
///
/// ```
/// use langfuse_otel_exporter::LangfuseExporter;
///
/// // No keys and no endpoint: the offline default, a JSON-lines file.
/// let dir = std::env::temp_dir().join(format!("lf-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let exporter = LangfuseExporter::builder()
///     .without_env()
///     .file(dir.join("traces.jsonl"))
///     .build()
///     .unwrap();
/// let stats = exporter.stats();
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
///     .with_span_processor(exporter.into_batch_processor())
///     .build();
/// provider.shutdown().unwrap();
/// assert_eq!(stats.snapshot().lost_spans(), 0);
/// ```
#[derive(Debug)]
pub struct LangfuseExporter {
    pub(crate) transport: Transport,
    pub(crate) resource: Resource,
    pub(crate) resource_attrs: ResourceAttributesWithSchema,
    pub(crate) encoded_resource: EncodedResource,
    pub(crate) buffers: Mutex<Buffers>,
    pub(crate) filter: ExportFilter,
    /// Whole trees: filtered ancestors of exported spans are kept (see [`crate::filter::WholeTrees`]).
    pub(crate) trees: crate::filter::WholeTrees,
    pub(crate) mode: OtlpMode,
    pub(crate) timeout: Duration,
    /// Batching settings from the same source as the rest (`without_env()` included).
    pub(crate) batch_settings: config::BatchSettings,
    pub(crate) retry: RetryPolicy,
    pub(crate) stats: Stats,
    pub(crate) diagnostics: Diagnostics,
    pub(crate) shut_down: AtomicBool,
}

impl LangfuseExporter {
    /// The counters (a shared handle: keep a clone before handing the exporter over).
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// A one-line description of the destination (URL or file path; never secrets).
    pub fn destination(&self) -> String {
        match &self.transport {
            Transport::Otlp { sender, .. } => format!("OTLP {}", sender.url()),
            #[cfg(feature = "grpc")]
            Transport::Grpc(sender) => format!("OTLP/gRPC {}", sender.url()),
            Transport::Ingestion(t) => format!("Langfuse ingestion {}", t.url()),
            Transport::File(f) => format!("file {}", f.path().display()),
        }
    }

    /// What OTLP destinations receive (see [`crate::LangfuseExporterBuilder::otlp_mode`]).
    pub fn otlp_mode(&self) -> OtlpMode {
        self.mode
    }

    /// A handle on the offline file, when that is the destination: other ingestion events
    /// (scores) can be appended to the same file through it, never interleaved with the
    /// exporter's own lines.
    pub fn offline_writer(&self) -> Option<crate::offline::OfflineWriter> {
        match &self.transport {
            Transport::File(f) => Some(crate::offline::OfflineWriter::from_sink(Arc::clone(f))),
            _ => None,
        }
    }

    /// The export timeout (all attempts of one export).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The retry settings (the processor backs off between re-queued attempts with them).
    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The batching settings read with the rest of the configuration.
    pub(crate) fn batch_settings(&self) -> &config::BatchSettings {
        &self.batch_settings
    }

    /// The warnings and debug lines sink.
    pub(crate) fn diagnostics(&self) -> &Diagnostics {
        &self.diagnostics
    }

    fn export_now(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        match self.export_batch(batch, None, false) {
            Ok(()) => Ok(()),
            Err(Failure::Final(e) | Failure::Retry(_, e)) => Err(e),
        }
    }

    /// Exports `batch` within the export timeout (and `cap`, when given). With `requeue`, a
    /// batch that could not be delivered in time but may be later comes back as
    /// [`Failure::Retry`] (nothing counted as lost); without it, it is dropped and counted.
    pub(crate) fn export_batch(
        &self,
        batch: Vec<SpanData>,
        cap: Option<Instant>,
        requeue: bool,
    ) -> Result<(), Failure> {
        if self.shut_down.load(Ordering::Acquire) {
            self.stats.add_dropped(batch.len() as u64);
            return Err(Failure::Final(OTelSdkError::AlreadyShutdown));
        }
        let total = batch.len();
        let mut spans = batch;
        crate::filter::propagation_reach::check(&spans, &self.diagnostics);
        if !matches!(self.filter, ExportFilter::All) {
            // Whole trees: filtered ancestors of exported spans are kept (see WholeTrees).
            self.trees.retain(&mut spans, &self.filter);
        }
        self.stats.add_filtered((total - spans.len()) as u64);
        if spans.is_empty() {
            self.diagnostics
                .debug(|| format!("export: all {total} spans filtered out, nothing sent"));
            return Ok(());
        }
        let started = Instant::now();
        let deadline = cap.map_or(started + self.timeout, |c| c.min(started + self.timeout));
        let exported = spans.len();
        // Last status answered, for the debug line.
        let mut status = None;
        let sent = match &self.transport {
            Transport::Otlp {
                sender,
                protocol,
                compression,
            } => self.send_otlp(
                sender,
                *protocol,
                *compression,
                &spans,
                deadline,
                &mut status,
            ),
            #[cfg(feature = "grpc")]
            Transport::Grpc(sender) => {
                match self.encode_otlp(&spans, OtlpProtocol::HttpProtobuf, Compression::None) {
                    Ok((body, _)) => {
                        let payload = Payload::new(
                            body,
                            langfuse_otel_transport::PROTOBUF,
                            ContentEncoding::Identity,
                            spans.len(),
                        );
                        let outcome = sender.send(&payload, deadline);
                        self.recycle(payload.body, false);
                        self.settle(sender.url(), spans.len() as u64, outcome, &mut status)
                    }
                    Err(e) => {
                        self.stats.add_dropped(spans.len() as u64);
                        Sent::Final(OTelSdkError::InternalFailure(format!(
                            "encoding failed: {e}"
                        )))
                    }
                }
            }
            Transport::Ingestion(t) => {
                let outcome = match t.switched_to() {
                    Some(_) => Exported::SwitchToOtlp,
                    None => t.export(
                        &spans,
                        &self.resource,
                        deadline,
                        &self.stats,
                        &self.diagnostics,
                    ),
                };
                match (outcome, t.switched_to()) {
                    (Exported::Done(Ok(())), _) => Sent::Ok,
                    (Exported::Done(Err(e)), _) => Sent::Final(e),
                    // Langfuse v4 refused spans on ingestion: the same Langfuse over OTLP.
                    (Exported::SwitchToOtlp, Some((sender, compression))) => self.send_otlp(
                        sender,
                        OtlpProtocol::HttpProtobuf,
                        compression,
                        &spans,
                        deadline,
                        &mut status,
                    ),
                    (Exported::SwitchToOtlp, None) => Sent::Final(OTelSdkError::InternalFailure(
                        "ingestion switched to OTLP without an OTLP sender".into(),
                    )),
                }
            }
            Transport::File(f) => match f.export(&spans, &self.resource, &self.stats) {
                Ok(()) => Sent::Ok,
                Err(e) => Sent::Final(e),
            },
        };
        let result = match sent {
            Sent::Ok => Ok(()),
            Sent::Final(e) => Err(Failure::Final(e)),
            Sent::Undelivered(e) if requeue => Err(Failure::Retry(spans, e)),
            Sent::Undelivered(e) => {
                self.stats.add_dropped(exported as u64);
                self.diagnostics.warn_once(
                    "spans-dropped",
                    &format!("dropping {exported} spans: {e} (counted in Stats::dropped_spans)"),
                );
                Err(Failure::Final(e))
            }
        };
        if matches!(result, Err(Failure::Final(_))) {
            self.stats.add_failed_export(1);
        }
        self.diagnostics.debug(|| {
            let r = match &result {
                Ok(()) => Ok(()),
                Err(Failure::Final(e)) => Err(OTelSdkError::InternalFailure(e.to_string())),
                Err(Failure::Retry(_, e)) => Err(OTelSdkError::InternalFailure(format!(
                    "{e}; kept in the queue for a later attempt"
                ))),
            };
            export_debug_line(
                exported,
                total - exported,
                &self.destination(),
                &r,
                status,
                started.elapsed(),
            )
        });
        result
    }

    /// The request body for `spans` and its `Content-Encoding`, built in reused buffers.
    fn encode_otlp(
        &self,
        spans: &[SpanData],
        protocol: OtlpProtocol,
        compression: Compression,
    ) -> Result<(Vec<u8>, Option<&'static str>), String> {
        let mut bufs = self.buffers.lock().unwrap_or_else(|p| p.into_inner());
        let bufs = &mut *bufs;
        match (self.mode, protocol) {
            (_, OtlpProtocol::Grpc) => return Err("gRPC is not an HTTP encoding".into()),
            (OtlpMode::Passthrough, OtlpProtocol::HttpProtobuf) => {
                wire::encode_request(
                    spans,
                    &self.encoded_resource,
                    &mut bufs.raw,
                    &mut bufs.scratch,
                );
            }
            (OtlpMode::Passthrough, OtlpProtocol::HttpJson) => {
                let req = otlp::request(spans.to_vec(), &self.resource_attrs);
                bufs.raw = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
            }
            // Canonical (and any mode added later: re-encoded, never raw).
            (_, OtlpProtocol::HttpProtobuf) => {
                let req = otlp::canonical_request(spans, &self.resource);
                bufs.raw.clear();
                prost::Message::encode(&req, &mut bufs.raw).map_err(|e| e.to_string())?;
            }
            (_, OtlpProtocol::HttpJson) => {
                let req = otlp::canonical_request(spans, &self.resource);
                bufs.raw = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
            }
        }
        match compression {
            Compression::None => Ok((std::mem::take(&mut bufs.raw), None)),
            Compression::Gzip(level) => {
                let mut body = std::mem::take(&mut bufs.body);
                body.clear();
                let body = otlp::gzip_into(&bufs.raw, level, body).map_err(|e| e.to_string())?;
                Ok((body, Some("gzip")))
            }
        }
    }

    /// Returns a body buffer for reuse.
    fn recycle(&self, body: Vec<u8>, compressed: bool) {
        let mut bufs = self.buffers.lock().unwrap_or_else(|p| p.into_inner());
        if compressed {
            bufs.body = body;
        } else {
            bufs.raw = body;
        }
    }

    fn send_otlp(
        &self,
        sender: &HttpSender,
        protocol: OtlpProtocol,
        compression: Compression,
        spans: &[SpanData],
        deadline: Instant,
        status: &mut Option<Status>,
    ) -> Sent {
        let n = spans.len();
        let (body, encoding) = match self.encode_otlp(spans, protocol, compression) {
            Ok(b) => b,
            Err(e) => {
                self.stats.add_dropped(n as u64);
                return Sent::Final(OTelSdkError::InternalFailure(format!(
                    "encoding failed: {e}"
                )));
            }
        };
        let payload = Payload::new(
            body,
            otlp::content_type(protocol),
            if encoding.is_some() {
                ContentEncoding::Gzip
            } else {
                ContentEncoding::Identity
            },
            n,
        );
        let outcome = sender.send(&payload, deadline);
        self.recycle(payload.body, encoding.is_some());
        match outcome {
            Outcome::Rejected {
                status: Some(Status::Http(413)),
                ..
            } if spans.len() >= 2 => {
                *status = Some(Status::Http(413));
                let (a, b) = spans.split_at(spans.len() / 2);
                let ra = self.send_otlp(sender, protocol, compression, a, deadline, status);
                let rb = self.send_otlp(sender, protocol, compression, b, deadline, status);
                match (ra, rb) {
                    (Sent::Ok, Sent::Ok) => Sent::Ok,
                    (Sent::Final(e), _) | (_, Sent::Final(e)) => Sent::Final(e),
                    // Half delivered: the other half cannot go back to the queue alone, so it
                    // is dropped and counted.
                    (Sent::Undelivered(e), Sent::Ok) => {
                        self.stats.add_dropped(a.len() as u64);
                        Sent::Final(e)
                    }
                    (Sent::Ok, Sent::Undelivered(e)) => {
                        self.stats.add_dropped(b.len() as u64);
                        Sent::Final(e)
                    }
                    (Sent::Undelivered(e), Sent::Undelivered(_)) => Sent::Undelivered(e),
                }
            }
            other => self.settle(sender.url(), n as u64, other, status),
        }
    }

    /// Counts and reports the outcome of sending `n` spans to `url`. Undelivered spans are
    /// not counted here: the caller keeps or drops them.
    fn settle(&self, url: &str, n: u64, outcome: Outcome, status: &mut Option<Status>) -> Sent {
        if let Some(s) = outcome.status() {
            *status = Some(s);
        }
        self.stats
            .add_retried(u64::from(outcome.attempts().saturating_sub(1)));
        match outcome {
            Outcome::Delivered { .. } => {
                self.stats.add_exported(n);
                self.stats.add_requests(1);
                Sent::Ok
            }
            Outcome::Rejected { status, reason, .. } => {
                self.stats.add_dropped(n);
                let msg = format!("{url} rejected an export: {reason}");
                let kind = match status {
                    Some(Status::Http(413)) => "otlp-413-single".to_string(),
                    Some(s) => format!("otlp-rejected-{s}"),
                    None => "otlp-rejected".to_string(),
                };
                self.diagnostics.warn_once(&kind, &msg);
                Sent::Final(OTelSdkError::InternalFailure(msg))
            }
            Outcome::Undelivered {
                reason, timed_out, ..
            } => {
                if timed_out {
                    Sent::Undelivered(OTelSdkError::Timeout(self.timeout))
                } else {
                    Sent::Undelivered(OTelSdkError::InternalFailure(format!(
                        "export to {url} gave up: {reason}"
                    )))
                }
            }
            _ => Sent::Final(OTelSdkError::InternalFailure(format!(
                "export to {url}: unknown outcome"
            ))),
        }
    }
}

/// How sending one batch ended.
pub(crate) enum Sent {
    Ok,
    Final(OTelSdkError),
    Undelivered(OTelSdkError),
}

/// Why [`LangfuseExporter::export_batch`] did not deliver a batch.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Given up (and counted).
    Final(OTelSdkError),
    /// Not delivered in time, nothing counted: the spans, to be queued again.
    Retry(Vec<SpanData>, OTelSdkError),
}

impl SpanExporter for LangfuseExporter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        // The work is done here, synchronously, so the returned future is ready: no reactor.
        let _suppressed = Context::enter_telemetry_suppressed_scope();
        std::future::ready(self.export_now(batch))
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let result = self.force_flush();
        self.diagnostics.debug(|| {
            let s = self.stats.snapshot();
            format!(
                "exporter shut down ({}): {}; {} spans exported, {} lost in total",
                self.destination(),
                result_text(&result),
                s.exported_spans,
                s.lost_spans()
            )
        });
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        match &self.transport {
            Transport::File(f) => f.flush(),
            _ => Ok(()),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.clone();
        self.resource_attrs = ResourceAttributesWithSchema::from(resource);
        self.encoded_resource = EncodedResource::new(&self.resource_attrs);
    }
}

/// `ok` or the error, for debug lines.
fn result_text(result: &OTelSdkResult) -> String {
    match result {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("failed: {e}"),
    }
}

/// The debug line of one export batch: span count, destination, result with the last HTTP
/// status, duration.
fn export_debug_line(
    exported: usize,
    filtered: usize,
    destination: &str,
    result: &OTelSdkResult,
    status: Option<Status>,
    elapsed: Duration,
) -> String {
    let mut line = format!("export: {exported} spans");
    if filtered > 0 {
        line.push_str(&format!(" ({filtered} filtered out)"));
    }
    line.push_str(&format!(" to {destination}: "));
    match result {
        Ok(()) => line.push_str("ok"),
        Err(_) => line.push_str("failed"),
    }
    if let Some(status) = status {
        line.push_str(&format!(" ({status})"));
    }
    if let Err(e) = result {
        line.push_str(&format!(": {e}"));
    }
    line.push_str(&format!(" in {:.1} ms", elapsed.as_secs_f64() * 1000.0));
    line
}

/// Basic auth and the `x-langfuse-*` headers.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    #[test]
    fn debug_output_has_no_secrets() {
        let e = LangfuseExporter::builder()
            .without_env()
            .langfuse("pk-lf-1", "sk-lf-topsecret")
            .base_url("http://127.0.0.1:9")
            .header("x-api-key", "hdr-secret")
            .build()
            .unwrap();
        let dbg = format!("{e:?}");
        assert!(
            !dbg.contains("topsecret") && !dbg.contains("hdr-secret"),
            "{dbg}"
        );
        let token = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "pk-lf-1:sk-lf-topsecret",
        );
        assert!(!dbg.contains(&token));
        assert_eq!(
            e.destination(),
            "OTLP http://127.0.0.1:9/api/public/otel/v1/traces"
        );
    }

    #[test]
    fn spans_exported_after_shutdown_are_counted_as_dropped() {
        let path = std::env::temp_dir().join(format!("lf-shut-{}.jsonl", std::process::id()));
        let e = LangfuseExporter::builder()
            .without_env()
            .file(&path)
            .filter(ExportFilter::All)
            .build()
            .unwrap();
        e.shutdown().unwrap();
        let span = opentelemetry_sdk::trace::SpanData {
            span_context: opentelemetry::trace::SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: opentelemetry::trace::SpanKind::Internal,
            name: "x".into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes: vec![],
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: opentelemetry::trace::Status::Unset,
            instrumentation_scope: Default::default(),
        };
        let r = futures_executor::block_on(e.export(vec![span]));
        assert!(matches!(r, Err(OTelSdkError::AlreadyShutdown)));
        assert_eq!(e.stats().snapshot().dropped_spans, 1);
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn with_no_keys_and_no_endpoint_the_offline_file_is_used_and_said_once() {
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = Arc::clone(&lines);
        let path =
            std::env::temp_dir().join(format!("lf-offline-said-{}.jsonl", std::process::id()));
        let env = Env::from_pairs([("LANGFUSE_OFFLINE_PATH", path.display().to_string())]);
        let diagnostics = Diagnostics::new(move |m| sink.lock().unwrap().push(m.to_owned()));
        for _ in 0..2 {
            let e = LangfuseExporter::builder()
                .env(env.clone())
                .diagnostics(diagnostics.clone())
                .build()
                .unwrap();
            assert_eq!(e.destination(), format!("file {}", path.display()));
        }
        let said = lines.lock().unwrap().clone();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains(&format!(
                "writing spans to the offline file {}",
                path.display()
            )),
            "{said:?}"
        );
        // An explicit file is what the user asked for: nothing to say.
        let quiet = Arc::new(Mutex::new(Vec::<String>::new()));
        let q = Arc::clone(&quiet);
        LangfuseExporter::builder()
            .without_env()
            .file(&path)
            .diagnostics(Diagnostics::new(move |m| {
                q.lock().unwrap().push(m.to_owned())
            }))
            .build()
            .unwrap();
        assert!(quiet.lock().unwrap().is_empty());
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn ingestion_without_keys_is_a_config_error() {
        let r = LangfuseExporter::builder()
            .without_env()
            .otlp_endpoint("http://x/v1/traces")
            .ingestion()
            .build();
        assert!(r.is_err());
    }
}
