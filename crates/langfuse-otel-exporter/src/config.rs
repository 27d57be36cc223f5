//! Configuration of the exporter and its processor, on the one settings model of
//! [`langfuse_otel_transport::settings`] (every variable, its default and its rule are listed
//! there; an invalid value gives the same message in the exporter and the SDK).
//!
//! # Where spans go
//!
//! The destination is resolved here, in this order; builder settings always win over the
//! environment:
//!
//! 1. [`LangfuseExporterBuilder::file`](crate::LangfuseExporterBuilder::file): the offline file;
//! 2. [`LangfuseExporterBuilder::otlp_endpoint`](crate::LangfuseExporterBuilder::otlp_endpoint),
//!    else `LANGFUSE_OTLP_ENDPOINT`: that OTLP collector (the exporter's own setting: the
//!    user's `OTEL_EXPORTER_OTLP_*` variables configure the user's own OTLP exporter and are
//!    never read here, so no collector receives every span twice);
//! 3. Langfuse keys (builder, else `LANGFUSE_PUBLIC_KEY` + `LANGFUSE_SECRET_KEY`): Langfuse's
//!    OTLP endpoint (or native ingestion with [`LangfuseExporterBuilder::ingestion`](crate::LangfuseExporterBuilder::ingestion));
//! 4. nothing configured: the offline JSON-lines file (`LANGFUSE_OFFLINE_PATH`, default
//!    `langfuse-traces.jsonl`), and one `offline-destination` warning saying so.
//!
//! ```
//! use langfuse_otel_exporter::config::{Env, DestinationConfig, resolve_destination};
//!
//! let env = Env::from_pairs([("LANGFUSE_OTLP_ENDPOINT", "http://collector:4318/v1/traces")]);
//! match resolve_destination(&env).unwrap() {
//!     DestinationConfig::Otlp { endpoint, .. } => {
//!         assert_eq!(endpoint, "http://collector:4318/v1/traces")
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! // The user's own OTLP exporter variables are not a destination of ours.
//! let env = Env::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]);
//! assert!(matches!(resolve_destination(&env).unwrap(), DestinationConfig::File { .. }));
//! ```

use std::path::PathBuf;
use std::time::Duration;

pub use langfuse_otel_transport::langfuse::{
    DEFAULT_BASE_URL, INGESTION_PATH as LANGFUSE_INGESTION_PATH, OTLP_PATH as LANGFUSE_OTLP_PATH,
};
pub use langfuse_otel_transport::langfuse_headers;
use langfuse_otel_transport::settings::{self, SettingError, Settings};
pub use langfuse_otel_transport::settings::{Env, Secret};

/// File of the offline destination when `LANGFUSE_OFFLINE_PATH` is unset.
pub const DEFAULT_OFFLINE_PATH: &str = "langfuse-traces.jsonl";
/// Default export timeout (all attempts of one export), as `LANGFUSE_TIMEOUT`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default spans per export batch.
pub const DEFAULT_MAX_EXPORT_BATCH: usize = 512;
/// Default delay between scheduled exports.
pub const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_secs(5);
/// Default span-count bound of the processor queue.
pub const DEFAULT_MAX_QUEUE_SPANS: usize = 1 << 20;
/// Default byte bound of the processor queue (estimated in-memory size of the queued spans).
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 256 << 20;

/// Why a configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A variable or builder value breaks its rule (the shared settings message).
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// A setting the exporter cannot use as given.
    #[error("invalid value for {name}: {reason}")]
    Invalid {
        /// The variable or setting.
        name: &'static str,
        /// What is wrong (never contains secret values).
        reason: String,
    },
    /// A protocol that is not compiled in (gRPC) or unknown.
    #[error(
        "unsupported OTLP protocol {0:?} (supported: http/protobuf, http/json, and grpc with the `grpc` feature)"
    )]
    UnsupportedProtocol(String),
    /// The offline file cannot be opened.
    #[error("cannot open offline file {path}: {reason}")]
    File {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
}

/// The OTLP encoding of a generic collector destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// `application/x-protobuf` (`http/protobuf`).
    #[default]
    HttpProtobuf,
    /// OTLP/JSON, `application/json` (`http/json`).
    HttpJson,
    /// OTLP/gRPC (`grpc`); needs the `grpc` cargo feature. Collectors only (Langfuse does not
    /// accept gRPC).
    Grpc,
}

impl OtlpProtocol {
    /// Parses `LANGFUSE_OTLP_PROTOCOL` values.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.to_ascii_lowercase().as_str() {
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            "http/json" => Ok(OtlpProtocol::HttpJson),
            "grpc" if cfg!(feature = "grpc") => Ok(OtlpProtocol::Grpc),
            other => Err(ConfigError::UnsupportedProtocol(other.to_string())),
        }
    }
}

pub use langfuse_otel_core::OtlpMode;

/// Parses `LANGFUSE_OTLP_MODE` values (`passthrough`, `canonical`; empty is passthrough).
pub fn parse_otlp_mode(value: &str) -> Result<OtlpMode, ConfigError> {
    if value.trim().is_empty() {
        return Ok(OtlpMode::Passthrough);
    }
    value
        .parse()
        .map_err(
            |e: langfuse_otel_core::canonical::UnknownOtlpMode| ConfigError::Invalid {
                name: "LANGFUSE_OTLP_MODE",
                reason: format!("{:?} (supported: passthrough, canonical)", e.0),
            },
        )
}

/// The mode from `LANGFUSE_OTLP_MODE` (default passthrough).
pub fn otlp_mode_from_env(env: &Env) -> Result<OtlpMode, ConfigError> {
    settings::OTLP_MODE
        .choice(env)?
        .map_or(Ok(OtlpMode::Passthrough), parse_otlp_mode)
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// No compression.
    None,
    /// gzip at this level (0–9). The Langfuse OTLP endpoint decodes only gzip.
    Gzip(u32),
}

/// The default gzip level: 1. On OTLP span batches it costs about a sixth of level 6's CPU
/// for output only slightly larger, and compression is the largest per-span cost of export.
pub const DEFAULT_GZIP_LEVEL: u32 = 1;

impl Default for Compression {
    fn default() -> Self {
        Compression::Gzip(DEFAULT_GZIP_LEVEL)
    }
}

impl Compression {
    /// Parses `LANGFUSE_OTLP_COMPRESSION` values (`gzip`, `none`).
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.to_ascii_lowercase().as_str() {
            "gzip" => Ok(Compression::default()),
            "none" | "" => Ok(Compression::None),
            other => Err(ConfigError::Invalid {
                name: "LANGFUSE_OTLP_COMPRESSION",
                reason: format!("{other:?} (supported: gzip, none)"),
            }),
        }
    }
}

/// Where spans go, as resolved from settings and environment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DestinationConfig {
    /// Langfuse's OTLP endpoint `{base_url}/api/public/otel/v1/traces` (protobuf, Basic auth).
    LangfuseOtlp {
        /// Base URL without trailing slash.
        base_url: String,
        /// Public key.
        public_key: String,
        /// Secret key.
        secret_key: Secret,
    },
    /// Langfuse's native ingestion endpoint `{base_url}/api/public/ingestion`.
    LangfuseIngestion {
        /// Base URL without trailing slash.
        base_url: String,
        /// Public key.
        public_key: String,
        /// Secret key.
        secret_key: Secret,
    },
    /// Any OTLP/HTTP collector, spans passed through as they are.
    Otlp {
        /// Full traces URL.
        endpoint: String,
        /// Encoding.
        protocol: OtlpProtocol,
        /// Extra headers (values are secret: they often carry tokens).
        headers: Vec<(String, Secret)>,
    },
    /// The offline default: ingestion events as JSON lines in a local file.
    File {
        /// The file (appended to).
        path: PathBuf,
    },
}

/// The Langfuse base URL from `LANGFUSE_BASE_URL`, then `LANGFUSE_HOST`, else Cloud.
pub fn base_url(env: &Env) -> String {
    settings::BASE_URL
        .text(env)
        .or_else(|| settings::HOST.text(env))
        .map_or_else(
            || DEFAULT_BASE_URL.to_string(),
            |u| u.trim_end_matches('/').to_string(),
        )
}

/// Resolves the destination from the environment alone (see the module docs for the order).
pub fn resolve_destination(env: &Env) -> Result<DestinationConfig, ConfigError> {
    destination_from(&Settings::read(env)?)
}

/// Resolves the destination from settings already read.
pub fn destination_from(s: &Settings) -> Result<DestinationConfig, ConfigError> {
    if let Some(endpoint) = &s.otlp_endpoint {
        return Ok(DestinationConfig::Otlp {
            endpoint: endpoint.clone(),
            protocol: s
                .otlp_protocol
                .map(OtlpProtocol::parse)
                .transpose()?
                .unwrap_or_default(),
            headers: s.otlp_headers.clone(),
        });
    }
    if let Some((public_key, secret_key)) = s.keys.clone() {
        return Ok(DestinationConfig::LangfuseOtlp {
            base_url: s
                .base_url
                .clone()
                .unwrap_or_else(|| DEFAULT_BASE_URL.into()),
            public_key,
            secret_key,
        });
    }
    Ok(DestinationConfig::File {
        path: s
            .offline_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_OFFLINE_PATH)),
    })
}

/// Whether `LANGFUSE_DEBUG` turns debug lines on: only `true` (any case) does, like the
/// official SDKs.
///
/// ```
/// use langfuse_otel_exporter::config::{Env, debug};
/// assert!(debug(&Env::from_pairs([("LANGFUSE_DEBUG", "True")])));
/// assert!(!debug(&Env::from_pairs([("LANGFUSE_DEBUG", "1")])));
/// assert!(!debug(&Env::empty()));
/// ```
pub fn debug(env: &Env) -> bool {
    settings::DEBUG.flag(env).unwrap_or(false)
}

/// The export timeout: `LANGFUSE_TIMEOUT` (s), else 5 s.
pub fn timeout(env: &Env) -> Result<Duration, ConfigError> {
    Ok(settings::TIMEOUT.duration(env)?.unwrap_or(DEFAULT_TIMEOUT))
}

/// Compression from `LANGFUSE_OTLP_COMPRESSION`, else gzip level 1.
pub fn compression(env: &Env) -> Result<Compression, ConfigError> {
    settings::OTLP_COMPRESSION
        .choice(env)?
        .map(Compression::parse)
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Batching settings of [`crate::BatchProcessor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSettings {
    /// Spans per export call.
    pub max_export_batch: usize,
    /// Time between scheduled exports of a partial batch.
    pub schedule_delay: Duration,
    /// Most spans queued at once.
    pub max_queue_spans: usize,
    /// Most bytes (estimated in-memory size) queued at once.
    pub max_queue_bytes: usize,
    /// Deadline of `force_flush` (and of `shutdown` when called without one).
    pub flush_timeout: Duration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            max_export_batch: DEFAULT_MAX_EXPORT_BATCH,
            schedule_delay: DEFAULT_SCHEDULE_DELAY,
            max_queue_spans: DEFAULT_MAX_QUEUE_SPANS,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            flush_timeout: Duration::from_secs(30),
        }
    }
}

impl BatchSettings {
    /// Defaults overridden by `LANGFUSE_FLUSH_AT`, `LANGFUSE_FLUSH_INTERVAL`, then `OTEL_BSP_*`
    /// (flush interval 0: export as soon as spans arrive).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(BatchSettings::from_settings(&Settings::read(env)?))
    }

    /// Defaults overridden by settings already read.
    pub fn from_settings(s: &Settings) -> Self {
        let mut b = BatchSettings::default();
        if let Some(n) = s.span_batch_size() {
            b.max_export_batch = n;
        }
        if let Some(d) = s.span_schedule_delay() {
            b.schedule_delay = d;
        }
        if let Some(n) = s.max_queue_size {
            b.max_queue_spans = n;
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_select_langfuse_otlp_with_base_url_fallbacks() {
        let env = Env::from_pairs([
            ("LANGFUSE_PUBLIC_KEY", "pk"),
            ("LANGFUSE_SECRET_KEY", "sk"),
            ("LANGFUSE_HOST", "http://h:3000/"),
        ]);
        assert_eq!(
            resolve_destination(&env).unwrap(),
            DestinationConfig::LangfuseOtlp {
                base_url: "http://h:3000".into(),
                public_key: "pk".into(),
                secret_key: Secret::new("sk"),
            }
        );
    }

    #[test]
    fn one_key_alone_is_an_error() {
        let env = Env::from_pairs([("LANGFUSE_PUBLIC_KEY", "pk")]);
        assert_eq!(
            resolve_destination(&env),
            Err(ConfigError::Setting(SettingError::PartialKeys))
        );
    }

    #[test]
    fn nothing_configured_is_the_offline_file() {
        assert_eq!(
            resolve_destination(&Env::empty()).unwrap(),
            DestinationConfig::File {
                path: PathBuf::from(DEFAULT_OFFLINE_PATH)
            }
        );
    }

    #[test]
    fn the_users_otel_exporter_variables_never_select_a_destination() {
        let env = Env::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318/"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b/x"),
        ]);
        assert!(matches!(
            resolve_destination(&env).unwrap(),
            DestinationConfig::File { .. }
        ));
    }

    #[test]
    fn the_exporters_own_otlp_variables_select_a_collector() {
        let env = Env::from_pairs([
            ("LANGFUSE_OTLP_ENDPOINT", "http://b/x"),
            ("LANGFUSE_OTLP_PROTOCOL", "http/json"),
            ("LANGFUSE_OTLP_HEADERS", "a=1, b=x%20y"),
        ]);
        let DestinationConfig::Otlp {
            endpoint,
            protocol,
            headers,
        } = resolve_destination(&env).unwrap()
        else {
            panic!("not otlp")
        };
        assert_eq!(endpoint, "http://b/x");
        assert_eq!(protocol, OtlpProtocol::HttpJson);
        assert_eq!(headers[1].1.expose(), "x y");
    }

    #[cfg(not(feature = "grpc"))]
    #[test]
    fn grpc_without_the_feature_is_reported() {
        let env = Env::from_pairs([
            ("LANGFUSE_OTLP_ENDPOINT", "http://a:4317"),
            ("LANGFUSE_OTLP_PROTOCOL", "grpc"),
        ]);
        assert!(matches!(
            resolve_destination(&env),
            Err(ConfigError::UnsupportedProtocol(_))
        ));
    }

    #[test]
    fn an_invalid_timeout_is_the_shared_settings_error() {
        let env = Env::from_pairs([("LANGFUSE_TIMEOUT", "2")]);
        assert_eq!(timeout(&env).unwrap(), Duration::from_secs(2));
        let e = timeout(&Env::from_pairs([("LANGFUSE_TIMEOUT", "x")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value for LANGFUSE_TIMEOUT: \"x\" (expected a positive number of seconds)"
        );
    }

    #[test]
    fn batch_settings_read_langfuse_then_bsp_variables() {
        let env = Env::from_pairs([
            ("LANGFUSE_FLUSH_AT", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "7"),
            ("OTEL_BSP_SCHEDULE_DELAY", "250"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "1000000"),
        ]);
        let s = BatchSettings::from_env(&env).unwrap();
        assert_eq!(s.max_export_batch, 100);
        assert_eq!(s.schedule_delay, Duration::from_millis(250));
        assert_eq!(s.max_queue_spans, 1_000_000);
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let d = DestinationConfig::LangfuseOtlp {
            base_url: "u".into(),
            public_key: "pk".into(),
            secret_key: Secret::new("sk-very-secret"),
        };
        assert!(!format!("{d:?}").contains("very-secret"));
    }

    #[test]
    fn compression_values() {
        assert_eq!(Compression::parse("GZIP").unwrap(), Compression::Gzip(1));
        assert_eq!(Compression::parse("none").unwrap(), Compression::None);
        assert!(Compression::parse("zstd").is_err());
    }
}
