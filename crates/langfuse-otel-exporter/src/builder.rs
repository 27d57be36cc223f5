//! [`LangfuseExporterBuilder`]: every setting of the exporter, and where spans go. The
//! destination is resolved here and only here: builder values first, then the settings read
//! from the environment through [`crate::config::destination_from`] (the order is documented in
//! [`crate::config`]).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use langfuse_otel_transport::settings::{self, Settings};
use langfuse_otel_transport::{Diagnostics, HttpSender};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

use crate::config::{
    self, Compression, ConfigError, DEFAULT_BASE_URL, DestinationConfig, Env,
    LANGFUSE_INGESTION_PATH, LANGFUSE_OTLP_PATH, OtlpMode, OtlpProtocol, Secret,
};
use crate::exporter::{LangfuseExporter, Transport};
use crate::filter::ExportFilter;
use crate::ingestion::IngestionTransport;
use crate::offline::FileSink;
use crate::stats::Stats;
use crate::wire::EncodedResource;
use langfuse_otel_transport::RetryPolicy;

impl LangfuseExporter {
    /// A builder; unset settings come from the environment at [`LangfuseExporterBuilder::build`].
    pub fn builder() -> LangfuseExporterBuilder {
        LangfuseExporterBuilder::default()
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
    /// (needs keys). Langfuse v4 (Cloud since 2026-11-16, self-hosted v4 by default) accepts
    /// only scores there: on its refusal the exporter says so once and sends that batch and
    /// every later one over OTLP to the same Langfuse, so nothing is lost; self-hosted v3
    /// takes everything.
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
            None => config::otlp_mode_from_env(&env)?,
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
                Transport::Ingestion(Box::new(IngestionTransport::new(
                    http(
                        format!("{base_url}{LANGFUSE_INGESTION_PATH}"),
                        headers.clone(),
                    )?,
                    http(format!("{base_url}{LANGFUSE_OTLP_PATH}"), headers)?,
                    compression,
                    self.max_ingestion_batch_bytes
                        .unwrap_or(crate::ingestion::MAX_BATCH_BYTES),
                )))
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
            trees: crate::filter::WholeTrees::default(),
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
