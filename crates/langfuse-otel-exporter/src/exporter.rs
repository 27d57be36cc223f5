//! [`LangfuseExporter`]: the `opentelemetry_sdk` span exporter and its builder.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::config::{
    self, Compression, ConfigError, DEFAULT_BASE_URL, DestinationConfig, Env,
    LANGFUSE_INGESTION_PATH, LANGFUSE_OTLP_PATH, OtlpMode, OtlpProtocol, Secret,
};
use crate::filter::ExportFilter;
use crate::http::RetryPolicy;
use crate::ingestion::IngestionTransport;
use crate::offline::FileSink;
use crate::otlp;
use crate::stats::Stats;
use crate::wire::{self, EncodedResource};
use langfuse_otel_transport::settings::{self, Settings};
use langfuse_otel_transport::{ContentEncoding, HttpSender, Outcome, Payload, Status};

/// Reused encoding buffers.
#[derive(Debug, Default)]
struct Buffers {
    raw: Vec<u8>,
    scratch: Vec<u8>,
    body: Vec<u8>,
}

pub use langfuse_otel_transport::Diagnostics;
pub use langfuse_otel_transport::langfuse::{SDK_NAME, SDK_VERSION};

/// What the exporter does with a batch: one variant per destination.
#[derive(Debug)]
enum Transport {
    Otlp {
        sender: HttpSender,
        protocol: OtlpProtocol,
        compression: Compression,
    },
    #[cfg(feature = "grpc")]
    Grpc(langfuse_otel_transport::GrpcSender),
    Ingestion(IngestionTransport),
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
    transport: Transport,
    resource: Resource,
    resource_attrs: ResourceAttributesWithSchema,
    encoded_resource: EncodedResource,
    buffers: Mutex<Buffers>,
    filter: ExportFilter,
    mode: OtlpMode,
    timeout: Duration,
    /// Batching settings from the same source as the rest (`without_env()` included).
    batch_settings: config::BatchSettings,
    retry: RetryPolicy,
    stats: Stats,
    diagnostics: Diagnostics,
    shut_down: AtomicBool,
}

impl LangfuseExporter {
    /// A builder; unset settings come from the environment at [`LangfuseExporterBuilder::build`].
    pub fn builder() -> LangfuseExporterBuilder {
        LangfuseExporterBuilder::default()
    }

    /// The counters (a shared handle: keep a clone before handing the exporter over).
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// This exporter inside a [`crate::BatchProcessor`] with the batching settings read when
    /// the exporter was built (so `without_env()` reaches them too), sharing one [`Stats`]
    /// (queue drops and export results in one place). A batch that cannot be delivered within
    /// the export timeout goes back to the queue and is retried (see [`crate::processor`]).
    pub fn into_batch_processor(self) -> crate::BatchProcessor<LangfuseExporter> {
        let stats = self.stats();
        let diagnostics = self.diagnostics.clone();
        let settings = self.batch_settings.clone();
        crate::BatchProcessor::builder(self)
            .settings(settings)
            .stats(stats)
            .diagnostics(diagnostics)
            .build()
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

    /// What OTLP destinations receive (see [`LangfuseExporterBuilder::otlp_mode`]).
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
        if !matches!(self.filter, ExportFilter::All) {
            spans.retain(|s| self.filter.accepts(s));
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
            Transport::Ingestion(t) => match t.export(
                &spans,
                &self.resource,
                deadline,
                &self.stats,
                &self.diagnostics,
            ) {
                Ok(()) => Sent::Ok,
                Err(e) => Sent::Final(e),
            },
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
            (OtlpMode::Canonical, OtlpProtocol::HttpProtobuf) => {
                let req = otlp::canonical_request(spans, &self.resource);
                bufs.raw.clear();
                prost::Message::encode(&req, &mut bufs.raw).map_err(|e| e.to_string())?;
            }
            (OtlpMode::Canonical, OtlpProtocol::HttpJson) => {
                let req = otlp::canonical_request(spans, &self.resource);
                bufs.raw = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
            }
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

/// Builder of [`LangfuseExporter`]; settings not given here come from the environment
/// (see [`crate::config`]) unless [`without_env`](Self::without_env) is called.
#[derive(Debug, Default)]
pub struct LangfuseExporterBuilder {
    ignore_env: bool,
    env: Option<Env>,
    base_url: Option<String>,
    keys: Option<(String, Secret)>,
    ingestion: bool,
    otlp_endpoint: Option<String>,
    protocol: Option<OtlpProtocol>,
    headers: Vec<(String, Secret)>,
    file: Option<PathBuf>,
    timeout: Option<Duration>,
    attempt_timeout: Option<Duration>,
    compression: Option<Compression>,
    retry: Option<RetryPolicy>,
    filter: Option<ExportFilter>,
    mode: Option<OtlpMode>,
    diagnostics: Option<Diagnostics>,
    debug: Option<bool>,
    max_ingestion_batch_bytes: Option<usize>,
}

impl LangfuseExporterBuilder {
    /// Ignores the process environment: only the builder's settings count.
    pub fn without_env(mut self) -> Self {
        self.ignore_env = true;
        self
    }

    /// Reads the settings the builder does not give from `env` instead of the process
    /// environment (a fixed map in tests, or settings gathered elsewhere).
    ///
    /// ```
    /// use langfuse_otel_exporter::{LangfuseExporter, config::Env};
    /// let env = Env::from_pairs([("LANGFUSE_OTLP_ENDPOINT", "http://127.0.0.1:4318/v1/traces")]);
    /// let exporter = LangfuseExporter::builder().env(env).build().unwrap();
    /// assert_eq!(exporter.destination(), "OTLP http://127.0.0.1:4318/v1/traces");
    /// ```
    pub fn env(mut self, env: Env) -> Self {
        self.env = Some(env);
        self
    }

    /// Sends to Langfuse over OTLP with these project keys.
    pub fn langfuse(
        mut self,
        public_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        self.keys = Some((public_key.into(), Secret::new(secret_key)));
        self
    }

    /// The Langfuse base URL (default `LANGFUSE_BASE_URL`, `LANGFUSE_HOST`, then Cloud).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Sends translated events to Langfuse's native ingestion endpoint instead of OTLP
    /// (needs keys; Langfuse Cloud accepts only scores there since 2026-11-16, self-hosted
    /// servers still accept everything).
    pub fn ingestion(mut self) -> Self {
        self.ingestion = true;
        self
    }

    /// Sends to any OTLP/HTTP collector: the full traces URL (`http://host:4318/v1/traces`).
    pub fn otlp_endpoint(mut self, url: impl Into<String>) -> Self {
        self.otlp_endpoint = Some(url.into());
        self
    }

    /// The OTLP encoding of a collector destination (default protobuf).
    pub fn protocol(mut self, protocol: OtlpProtocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// Adds a request header (its value is treated as a secret).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), Secret::new(value)));
        self
    }

    /// Writes ingestion events as JSON lines to `path` (the offline destination).
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Time one export may take, all retries included (default `LANGFUSE_TIMEOUT`, 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Time one HTTP attempt may take (default: the whole remaining export timeout).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Request compression (default gzip level 1; see [`config::DEFAULT_GZIP_LEVEL`]).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// Retry settings.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The export filter (default: the official SDKs' filter).
    pub fn filter(mut self, filter: ExportFilter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// What OTLP destinations receive: the spans as they are (default, or
    /// `LANGFUSE_OTLP_MODE`) or canonical spans with one convention.
    ///
    /// ```
    /// use langfuse_otel_exporter::{LangfuseExporter, config::OtlpMode};
    /// let exporter = LangfuseExporter::builder()
    ///     .without_env()
    ///     .otlp_endpoint("http://127.0.0.1:4318/v1/traces")
    ///     .otlp_mode(OtlpMode::Canonical)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(exporter.otlp_mode(), OtlpMode::Canonical);
    /// ```
    pub fn otlp_mode(mut self, mode: OtlpMode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Exports only spans for which `predicate` is true.
    pub fn filter_fn(self, predicate: impl Fn(&SpanData) -> bool + Send + Sync + 'static) -> Self {
        self.filter(ExportFilter::Custom(Arc::new(predicate)))
    }

    /// Where warnings and debug lines go (default standard error).
    pub fn diagnostics(mut self, diagnostics: Diagnostics) -> Self {
        self.diagnostics = Some(diagnostics);
        self
    }

    /// Debug lines on standard error (or the [`Diagnostics`] debug sink): the destination at
    /// build time, then one line per export batch (span count, destination, result and HTTP
    /// status, duration) and the shutdown result. Default: `LANGFUSE_DEBUG=true`, else off.
    /// Keys and header values are never printed.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use langfuse_otel_exporter::{Diagnostics, LangfuseExporter};
    ///
    /// let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    /// let sink = lines.clone();
    /// let exporter = LangfuseExporter::builder()
    ///     .without_env()
    ///     .langfuse("pk-lf-1234", "sk-lf-secret")
    ///     .base_url("http://127.0.0.1:9")
    ///     .diagnostics(Diagnostics::default().with_debug_sink(move |l| sink.lock().unwrap().push(l.to_owned())))
    ///     .debug(true)
    ///     .build()
    ///     .unwrap();
    /// let lines = lines.lock().unwrap();
    /// assert!(lines[0].starts_with("exporter: OTLP http://127.0.0.1:9/api/public/otel/v1/traces"));
    /// assert!(!lines.iter().any(|l| l.contains("sk-lf-secret")));
    /// # drop(exporter);
    /// ```
    pub fn debug(mut self, debug: bool) -> Self {
        self.debug = Some(debug);
        self
    }

    /// Largest native ingestion request body (default 3.5 MB, the documented limit).
    pub fn max_ingestion_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_ingestion_batch_bytes = Some(bytes.max(1024));
        self
    }

    /// Builds the exporter. Settings not given to the builder come from the environment
    /// (unless [`without_env`](Self::without_env)), validated by the shared rules of
    /// [`langfuse_otel_transport::settings`]; see [`crate::config`] for where spans go.
    pub fn build(self) -> Result<LangfuseExporter, ConfigError> {
        let env = match (&self.env, self.ignore_env) {
            (Some(env), _) => env.clone(),
            (None, true) => Env::empty(),
            (None, false) => Env::process(),
        };
        let settings = Settings::read(&env)?;
        let diagnostics = self.diagnostics.clone().unwrap_or_default();
        let debug = self
            .debug
            .unwrap_or_else(|| diagnostics.is_debug() || settings.debug);
        let diagnostics = diagnostics.with_debug(debug);
        let base_url = self
            .base_url
            .clone()
            .or_else(|| settings.base_url.clone())
            .map_or_else(
                || DEFAULT_BASE_URL.to_string(),
                |u| u.trim_end_matches('/').to_string(),
            );
        let destination = if let Some(path) = self.file.clone() {
            DestinationConfig::File { path }
        } else if let Some(endpoint) = self.otlp_endpoint.clone() {
            DestinationConfig::Otlp {
                endpoint,
                protocol: self.protocol.unwrap_or_default(),
                headers: Vec::new(),
            }
        } else if let Some((public_key, secret_key)) = self.keys.clone() {
            DestinationConfig::LangfuseOtlp {
                base_url: base_url.clone(),
                public_key,
                secret_key,
            }
        } else {
            let mut d = config::destination_from(&settings)?;
            match &mut d {
                DestinationConfig::Otlp { protocol, .. } => {
                    if let Some(p) = self.protocol {
                        *protocol = p;
                    }
                }
                DestinationConfig::LangfuseOtlp { base_url: b, .. } => b.clone_from(&base_url),
                DestinationConfig::File { path } if !self.ingestion => {
                    diagnostics.warn_once(
                        "offline-destination",
                        &format!(
                            "no Langfuse keys (LANGFUSE_PUBLIC_KEY/LANGFUSE_SECRET_KEY) and no \
                             LANGFUSE_OTLP_ENDPOINT: writing spans to the offline file {}",
                            path.display()
                        ),
                    );
                }
                _ => {}
            }
            d
        };
        let destination = match (self.ingestion, destination) {
            (
                true,
                DestinationConfig::LangfuseOtlp {
                    base_url,
                    public_key,
                    secret_key,
                },
            ) => DestinationConfig::LangfuseIngestion {
                base_url,
                public_key,
                secret_key,
            },
            (true, _) => {
                return Err(ConfigError::Invalid {
                    name: "ingestion",
                    reason: "the native ingestion destination needs Langfuse keys".into(),
                });
            }
            (false, d) => d,
        };
        let timeout = match self.timeout {
            Some(t) => settings::TIMEOUT.check_duration(t)?,
            None => settings.timeout.unwrap_or(config::DEFAULT_TIMEOUT),
        };
        let compression = match self.compression {
            Some(c) => c,
            None => config::compression(&env)?,
        };
        let retry = self.retry.unwrap_or_default();
        let mode = match self.mode {
            Some(m) => m,
            None => OtlpMode::from_env(&env)?,
        };
        let http = |url: String, headers: Vec<(String, Secret)>| {
            HttpSender::builder(url)
                .headers(headers)
                .retry(retry.clone())
                .attempt_timeout(self.attempt_timeout)
                .build()
                .map_err(|e| ConfigError::Invalid {
                    name: "endpoint",
                    reason: e.to_string(),
                })
        };
        let transport = match destination {
            DestinationConfig::LangfuseOtlp {
                base_url,
                public_key,
                secret_key,
            } => {
                let mut headers = config::langfuse_headers(&public_key, &secret_key);
                headers.extend(self.headers.clone());
                Transport::Otlp {
                    sender: http(format!("{base_url}{LANGFUSE_OTLP_PATH}"), headers)?,
                    protocol: OtlpProtocol::HttpProtobuf,
                    compression,
                }
            }
            DestinationConfig::LangfuseIngestion {
                base_url,
                public_key,
                secret_key,
            } => {
                let mut headers = config::langfuse_headers(&public_key, &secret_key);
                headers.extend(self.headers.clone());
                Transport::Ingestion(IngestionTransport::new(
                    http(format!("{base_url}{LANGFUSE_INGESTION_PATH}"), headers)?,
                    self.max_ingestion_batch_bytes
                        .unwrap_or(crate::ingestion::MAX_BATCH_BYTES),
                ))
            }
            DestinationConfig::Otlp {
                endpoint,
                protocol: OtlpProtocol::Grpc,
                mut headers,
            } => {
                headers.extend(self.headers.clone());
                grpc_transport(
                    endpoint,
                    headers,
                    compression,
                    retry.clone(),
                    self.attempt_timeout,
                )?
            }
            DestinationConfig::Otlp {
                endpoint,
                protocol,
                mut headers,
            } => {
                headers.extend(self.headers.clone());
                Transport::Otlp {
                    sender: http(endpoint, headers)?,
                    protocol,
                    compression,
                }
            }
            DestinationConfig::File { path } => Transport::File(Arc::new(FileSink::open(path)?)),
        };
        let resource = Resource::builder_empty().build();
        let resource_attrs = ResourceAttributesWithSchema::from(&resource);
        let exporter = LangfuseExporter {
            transport,
            encoded_resource: EncodedResource::new(&resource_attrs),
            buffers: Mutex::default(),
            resource_attrs,
            resource,
            filter: self.filter.unwrap_or_default(),
            mode,
            timeout,
            batch_settings: config::BatchSettings::from_settings(&settings),
            retry,
            stats: Stats::default(),
            diagnostics,
            shut_down: AtomicBool::new(false),
        };
        exporter.diagnostics.debug(|| {
            format!(
                "exporter: {}, timeout {:?}, compression {:?}",
                exporter.destination(),
                exporter.timeout,
                compression
            )
        });
        Ok(exporter)
    }
}

#[cfg(feature = "grpc")]
fn grpc_transport(
    endpoint: String,
    headers: Vec<(String, Secret)>,
    compression: Compression,
    retry: RetryPolicy,
    attempt_timeout: Option<Duration>,
) -> Result<Transport, ConfigError> {
    langfuse_otel_transport::GrpcSender::new(
        endpoint,
        headers,
        compression != Compression::None,
        retry,
        attempt_timeout,
    )
    .map(Transport::Grpc)
    .map_err(|e| ConfigError::Invalid {
        name: "LANGFUSE_OTLP_ENDPOINT",
        reason: e.to_string(),
    })
}

#[cfg(not(feature = "grpc"))]
fn grpc_transport(
    _endpoint: String,
    _headers: Vec<(String, Secret)>,
    _compression: Compression,
    _retry: RetryPolicy,
    _attempt_timeout: Option<Duration>,
) -> Result<Transport, ConfigError> {
    Err(ConfigError::UnsupportedProtocol("grpc".into()))
}

/// `ok` or the error, for debug lines.
pub(crate) fn result_text(result: &OTelSdkResult) -> String {
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
