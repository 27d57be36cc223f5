//! [`LangfuseExporter`]: the `opentelemetry_sdk` span exporter and its builder.

use std::collections::HashSet;
use std::fmt;
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
    self, Compression, ConfigError, DestinationConfig, Env, LANGFUSE_INGESTION_PATH,
    LANGFUSE_OTLP_PATH, OtlpMode, OtlpProtocol, Secret,
};
use crate::filter::ExportFilter;
use crate::http::{HttpSender, Outcome, RetryPolicy};
use crate::ingestion::IngestionTransport;
use crate::offline::FileSink;
use crate::otlp;
use crate::stats::Stats;
use crate::wire::{self, EncodedResource};

/// Reused encoding buffers.
#[derive(Debug, Default)]
struct Buffers {
    raw: Vec<u8>,
    scratch: Vec<u8>,
    body: Vec<u8>,
}

/// The SDK name sent in `x-langfuse-sdk-name`.
pub const SDK_NAME: &str = "rust";
/// The SDK version sent in `x-langfuse-sdk-version` (this crate's version).
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where the exporter's warnings and debug lines go.
///
/// Warnings go to a function receiving one line of text; the default writes
/// `langfuse-otel: <message>` to standard error. Debug lines (resolved destination, one line per
/// export batch with its span count, result and duration, flush and shutdown results) are off
/// by default and cost one branch when off: they are only formatted when
/// [`with_debug`](Self::with_debug) turned them on (as `LANGFUSE_DEBUG=true` does). They go to
/// standard error as `langfuse: debug: <message>`, or to the sink given with
/// [`with_debug_sink`](Self::with_debug_sink). Neither kind of message ever contains keys or
/// header values.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use langfuse_otel_exporter::Diagnostics;
///
/// let lines = Arc::new(Mutex::new(Vec::<String>::new()));
/// let sink = lines.clone();
/// let diagnostics = Diagnostics::default()
///     .with_debug_sink(move |line| sink.lock().unwrap().push(line.to_owned()))
///     .with_debug(true);
/// diagnostics.debug(|| format!("flushed {} spans", 3));
/// assert_eq!(*lines.lock().unwrap(), ["flushed 3 spans"]);
///
/// let quiet = Diagnostics::default(); // debug off: the closure is never called
/// quiet.debug(|| unreachable!());
/// ```
#[derive(Clone)]
pub struct Diagnostics {
    sink: Arc<dyn Fn(&str) + Send + Sync>,
    debug_sink: Arc<dyn Fn(&str) + Send + Sync>,
    debug: bool,
    seen: Arc<Mutex<HashSet<String>>>,
}

impl Default for Diagnostics {
    fn default() -> Self {
        Diagnostics::new(|msg| eprintln!("langfuse-otel: {msg}"))
    }
}

impl fmt::Debug for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Diagnostics")
            .field("debug", &self.debug)
            .finish_non_exhaustive()
    }
}

impl Diagnostics {
    /// Warnings delivered to `sink`; debug lines off (to standard error once turned on).
    pub fn new(sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Diagnostics {
            sink: Arc::new(sink),
            debug_sink: Arc::new(|msg| eprintln!("langfuse: debug: {msg}")),
            debug: false,
            seen: Arc::default(),
        }
    }

    /// Turns debug lines on or off.
    pub fn with_debug(mut self, debug: bool) -> Self {
        self.debug = debug;
        self
    }

    /// Sends debug lines to `sink` (one call per line, without the `langfuse: debug: ` prefix)
    /// instead of standard error. Does not turn them on.
    pub fn with_debug_sink(mut self, sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.debug_sink = Arc::new(sink);
        self
    }

    /// Whether debug lines are on.
    pub fn is_debug(&self) -> bool {
        self.debug
    }

    /// Emits the debug line `message()` when debug lines are on; otherwise `message` is not
    /// called, so nothing is formatted.
    #[inline]
    pub fn debug(&self, message: impl FnOnce() -> String) {
        if self.debug {
            (self.debug_sink)(&message());
        }
    }

    /// Delivers the warning `message` the first time a warning of kind `key` is reported, so
    /// a recurring failure is reported once instead of flooding standard error.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use langfuse_otel_exporter::Diagnostics;
    /// let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    /// let sink = lines.clone();
    /// let diagnostics = Diagnostics::new(move |m| sink.lock().unwrap().push(m.to_owned()));
    /// diagnostics.warn_once("scores-dropped", "dropping 3 scores: HTTP 500");
    /// diagnostics.warn_once("scores-dropped", "dropping 1 score: HTTP 500");
    /// assert_eq!(*lines.lock().unwrap(), ["dropping 3 scores: HTTP 500"]);
    /// ```
    pub fn warn_once(&self, key: &str, message: &str) {
        self.once(key, message);
    }

    /// Reports `message` the first time `key` is seen (repeats of a failure are counted in
    /// [`Stats`], not logged again).
    pub(crate) fn once(&self, key: &str, message: &str) {
        // Bounded: past MAX_DISTINCT kinds, new kinds are counted in Stats only.
        const MAX_DISTINCT: usize = 256;
        let first = self
            .seen
            .lock()
            .map(|mut s| s.len() < MAX_DISTINCT && s.insert(key.to_string()))
            .unwrap_or(true);
        if first {
            (self.sink)(message);
        }
    }
}

/// What the exporter does with a batch: one variant per destination.
#[derive(Debug)]
enum Transport {
    Otlp {
        sender: HttpSender,
        protocol: OtlpProtocol,
        compression: Compression,
    },
    #[cfg(feature = "grpc")]
    Grpc(crate::grpc::GrpcSender),
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
    trees: crate::filter::WholeTrees,
    mode: OtlpMode,
    timeout: Duration,
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

    /// This exporter inside a [`crate::BatchProcessor`] with settings from the environment,
    /// sharing one [`Stats`] (queue drops and export results in one place).
    pub fn into_batch_processor(self) -> crate::BatchProcessor<LangfuseExporter> {
        let stats = self.stats();
        let diagnostics = self.diagnostics.clone();
        crate::BatchProcessor::builder(self)
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

    fn export_now(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if self.shut_down.load(Ordering::Acquire) {
            self.stats.add_dropped(batch.len() as u64);
            return Err(OTelSdkError::AlreadyShutdown);
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
        let deadline = started + self.timeout;
        let exported = spans.len();
        // Last HTTP status answered, for the debug line.
        let mut status = None;
        let result = match &self.transport {
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
                let n = spans.len() as u64;
                let req = match self.mode {
                    OtlpMode::Passthrough => otlp::request(spans, &self.resource_attrs),
                    OtlpMode::Canonical => otlp::canonical_request(&spans, &self.resource),
                };
                let outcome = sender.send(&req, deadline, &self.stats);
                self.settle(sender.url(), n, outcome, &mut status)
            }
            Transport::Ingestion(t) => t.export(
                &spans,
                &self.resource,
                deadline,
                &self.stats,
                &self.diagnostics,
            ),
            Transport::File(f) => f.export(&spans, &self.resource, &self.stats),
        };
        if result.is_err() {
            self.stats.add_failed_export(1);
        }
        self.diagnostics.debug(|| {
            export_debug_line(
                exported,
                total - exported,
                &self.destination(),
                &result,
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
        status: &mut Option<u16>,
    ) -> OTelSdkResult {
        let n = spans.len() as u64;
        let (body, encoding) = match self.encode_otlp(spans, protocol, compression) {
            Ok(b) => b,
            Err(e) => {
                self.stats.add_dropped(n);
                return Err(OTelSdkError::InternalFailure(format!(
                    "encoding failed: {e}"
                )));
            }
        };
        let outcome = sender.post(&body, encoding, deadline, &self.stats);
        self.recycle(body, encoding.is_some());
        match outcome {
            Outcome::TooLarge if spans.len() >= 2 => {
                let (a, b) = spans.split_at(spans.len() / 2);
                let ra = self.send_otlp(sender, protocol, compression, a, deadline, status);
                let rb = self.send_otlp(sender, protocol, compression, b, deadline, status);
                ra.and(rb)
            }
            other => self.settle(sender.url(), n, other, status),
        }
    }

    /// Counts and reports the final outcome of sending `n` spans to `url`.
    fn settle(
        &self,
        url: &str,
        n: u64,
        outcome: Outcome,
        status: &mut Option<u16>,
    ) -> OTelSdkResult {
        match &outcome {
            Outcome::Delivered { status: s, .. } | Outcome::Rejected { status: s, .. }
                if *s != 0 =>
            {
                *status = Some(*s);
            }
            Outcome::TooLarge => *status = Some(413),
            _ => {}
        }
        match outcome {
            Outcome::Delivered { .. } => {
                self.stats.add_exported(n);
                self.stats.add_requests(1);
                Ok(())
            }
            Outcome::TooLarge => {
                self.stats.add_dropped(n);
                let msg = format!("{url} answered 413 for a single span; the span is dropped");
                self.diagnostics.once("otlp-413-single", &msg);
                Err(OTelSdkError::InternalFailure(msg))
            }
            Outcome::Rejected { status, message } => {
                self.stats.add_dropped(n);
                let msg = if status == 0 {
                    format!("export to {url} failed: {message}")
                } else {
                    format!("{url} rejected an export with HTTP {status}: {message}")
                };
                self.diagnostics
                    .once(&format!("otlp-rejected-{status}"), &msg);
                Err(OTelSdkError::InternalFailure(msg))
            }
            Outcome::GaveUp { reason, timed_out } => {
                self.stats.add_dropped(n);
                let msg = format!("export to {url} gave up: {reason}");
                self.diagnostics.once("otlp-gave-up", &msg);
                if timed_out {
                    Err(OTelSdkError::Timeout(self.timeout))
                } else {
                    Err(OTelSdkError::InternalFailure(msg))
                }
            }
        }
    }
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

    /// Builds the exporter.
    pub fn build(self) -> Result<LangfuseExporter, ConfigError> {
        let env = if self.ignore_env {
            Env::empty()
        } else {
            Env::process()
        };
        let diagnostics = self.diagnostics.clone().unwrap_or_default();
        let debug = self
            .debug
            .unwrap_or_else(|| diagnostics.is_debug() || config::debug(&env));
        let diagnostics = diagnostics.with_debug(debug);
        let base_url = self
            .base_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| config::base_url(&env));
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
            let mut d = config::resolve_destination(&env)?;
            if let (DestinationConfig::Otlp { protocol, .. }, Some(p)) = (&mut d, self.protocol) {
                *protocol = p;
            }
            if let DestinationConfig::LangfuseOtlp { base_url: b, .. } = &mut d {
                b.clone_from(&base_url);
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
        let generic = matches!(destination, DestinationConfig::Otlp { .. });
        let timeout = match self.timeout {
            Some(t) => t,
            None => config::timeout(&env, generic)?,
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
        let transport = match destination {
            DestinationConfig::LangfuseOtlp {
                base_url,
                public_key,
                secret_key,
            } => {
                let mut headers = config::langfuse_headers(&public_key, &secret_key);
                headers.extend(self.headers);
                Transport::Otlp {
                    sender: HttpSender::new(
                        format!("{base_url}{LANGFUSE_OTLP_PATH}"),
                        headers,
                        otlp::content_type(OtlpProtocol::HttpProtobuf),
                        retry,
                        self.attempt_timeout,
                    ),
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
                headers.extend(self.headers);
                Transport::Ingestion(IngestionTransport::new(
                    HttpSender::new(
                        format!("{base_url}{LANGFUSE_INGESTION_PATH}"),
                        headers,
                        "application/json",
                        retry.clone(),
                        self.attempt_timeout,
                    ),
                    retry,
                    self.max_ingestion_batch_bytes
                        .unwrap_or(crate::ingestion::MAX_BATCH_BYTES),
                ))
            }
            DestinationConfig::Otlp {
                endpoint,
                protocol: OtlpProtocol::Grpc,
                mut headers,
            } => {
                headers.extend(self.headers);
                grpc_transport(endpoint, headers, compression, retry, self.attempt_timeout)?
            }
            DestinationConfig::Otlp {
                endpoint,
                protocol,
                mut headers,
            } => {
                headers.extend(self.headers);
                Transport::Otlp {
                    sender: HttpSender::new(
                        endpoint,
                        headers,
                        otlp::content_type(protocol),
                        retry,
                        self.attempt_timeout,
                    ),
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
            trees: crate::filter::WholeTrees::default(),
            mode,
            timeout,
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
    crate::grpc::GrpcSender::new(
        endpoint,
        headers,
        compression != Compression::None,
        retry,
        attempt_timeout,
    )
    .map(Transport::Grpc)
    .map_err(|reason| ConfigError::Invalid {
        name: "OTEL_EXPORTER_OTLP_ENDPOINT",
        reason,
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
    status: Option<u16>,
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
        line.push_str(&format!(" (HTTP {status})"));
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
    fn ingestion_without_keys_is_a_config_error() {
        let r = LangfuseExporter::builder()
            .without_env()
            .otlp_endpoint("http://x/v1/traces")
            .ingestion()
            .build();
        assert!(r.is_err());
    }
}
