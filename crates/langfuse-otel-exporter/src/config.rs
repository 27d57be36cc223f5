//! Configuration: every environment variable the exporter and the processor read, in one place.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY` | Langfuse project keys; both set selects the Langfuse OTLP destination | unset |
//! | `LANGFUSE_BASE_URL` (then `LANGFUSE_HOST`) | Langfuse base URL | `https://cloud.langfuse.com` |
//! | `LANGFUSE_TIMEOUT` | seconds one export (all attempts) may take | 5 |
//! | `LANGFUSE_FLUSH_AT` | spans per export batch | 512 |
//! | `LANGFUSE_FLUSH_INTERVAL` | seconds between scheduled exports | 5 |
//! | `LANGFUSE_OFFLINE_PATH` | JSON-lines file of the offline destination | `langfuse-traces.jsonl` |
//! | `LANGFUSE_DEBUG` | `true` (any case) prints debug lines on standard error (see [`crate::Diagnostics`]) | false |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | full URL of a generic OTLP/HTTP traces endpoint (used as is) | unset |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | OTLP base URL (`/v1/traces` is appended) | unset |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` | `key=value,key2=value2` (values percent-decoded) | none |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` | `http/protobuf` or `http/json` | `http/protobuf` |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION` | `gzip` or `none` | `gzip` |
//! | `LANGFUSE_OTLP_MODE` | `passthrough` (spans as they are) or `canonical` (translated, re-encoded with `langfuse.*` attributes) for OTLP destinations | `passthrough` |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` | milliseconds (generic OTLP destination) | `LANGFUSE_TIMEOUT` |
//! | `OTEL_BSP_MAX_QUEUE_SIZE` | span-count bound of [`crate::BatchProcessor`]'s queue | 1,048,576 |
//! | `OTEL_BSP_SCHEDULE_DELAY` | milliseconds between scheduled exports (after `LANGFUSE_FLUSH_INTERVAL`) | 5000 |
//! | `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | spans per export (after `LANGFUSE_FLUSH_AT`) | 512 |
//!
//! The destination is chosen in this order: Langfuse keys → Langfuse OTLP; else an OTLP endpoint
//! → that collector; else the offline JSON-lines file. Builder settings always win over the
//! environment.
//!
//! Every reader takes an [`Env`], so tests can pass a map instead of the process environment:
//!
//! ```
//! use langfuse_otel_exporter::config::{Env, DestinationConfig, resolve_destination};
//!
//! let env = Env::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]);
//! match resolve_destination(&env).unwrap() {
//!     DestinationConfig::Otlp { endpoint, .. } => {
//!         assert_eq!(endpoint, "http://collector:4318/v1/traces")
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

use base64::Engine as _;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Langfuse Cloud (EU), the default base URL.
pub const DEFAULT_BASE_URL: &str = "https://cloud.langfuse.com";
/// Path of the Langfuse OTLP traces endpoint.
pub const LANGFUSE_OTLP_PATH: &str = "/api/public/otel/v1/traces";
/// Path of the Langfuse native ingestion endpoint.
pub const LANGFUSE_INGESTION_PATH: &str = "/api/public/ingestion";
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
pub enum ConfigError {
    /// An environment variable or setting has a value that cannot be parsed.
    #[error("invalid value for {name}: {reason}")]
    Invalid {
        /// The variable or setting.
        name: &'static str,
        /// What is wrong (never contains secret values).
        reason: String,
    },
    /// Only one of the two Langfuse keys is set.
    #[error("LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY must be set together")]
    PartialKeys,
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

/// A string that never shows in `Debug` or `Display` output (keys, header values).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for building a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A source of environment variables: the process environment or a fixed map.
#[derive(Debug, Clone, Default)]
pub struct Env {
    fixed: Option<HashMap<String, String>>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Env { fixed: None }
    }

    /// An empty environment (ignores the process environment).
    pub fn empty() -> Self {
        Env {
            fixed: Some(HashMap::new()),
        }
    }

    /// A fixed environment made of these pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env {
            fixed: Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// The trimmed, non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        let raw = match &self.fixed {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        }?;
        let trimmed = raw.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_string())
    }

    /// `TRACES_NAME` if set, else `NAME` (the OTLP signal-specific override rule).
    fn get_signal(&self, signal_specific: &str, generic: &str) -> Option<String> {
        self.get(signal_specific).or_else(|| self.get(generic))
    }

    fn parse<T: std::str::FromStr>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.get(name)
            .map(|v| {
                v.parse::<T>().map_err(|e| ConfigError::Invalid {
                    name,
                    reason: format!("{v:?}: {e}"),
                })
            })
            .transpose()
    }
}

/// The OTLP encoding of a generic collector destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
    /// Parses `OTEL_EXPORTER_OTLP_PROTOCOL` values.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.to_ascii_lowercase().as_str() {
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            "http/json" => Ok(OtlpProtocol::HttpJson),
            "grpc" if cfg!(feature = "grpc") => Ok(OtlpProtocol::Grpc),
            other => Err(ConfigError::UnsupportedProtocol(other.to_string())),
        }
    }
}

/// What an OTLP destination receives (`LANGFUSE_OTLP_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpMode {
    /// The spans as they are (the default).
    #[default]
    Passthrough,
    /// The spans translated to Langfuse records and re-encoded with the canonical
    /// `langfuse.*` attributes, so any backend gets one convention whatever produced the
    /// spans (see `langfuse_otel_core::canonical`; translating them again yields the same
    /// records).
    Canonical,
}

impl OtlpMode {
    /// Parses `LANGFUSE_OTLP_MODE` values (`passthrough`, `canonical`).
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "passthrough" | "" => Ok(OtlpMode::Passthrough),
            "canonical" => Ok(OtlpMode::Canonical),
            other => Err(ConfigError::Invalid {
                name: "LANGFUSE_OTLP_MODE",
                reason: format!("{other:?} (supported: passthrough, canonical)"),
            }),
        }
    }

    /// The mode from `LANGFUSE_OTLP_MODE` (default passthrough).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        env.get("LANGFUSE_OTLP_MODE")
            .map_or(Ok(OtlpMode::Passthrough), |v| OtlpMode::parse(&v))
    }
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Parses `OTEL_EXPORTER_OTLP_COMPRESSION` values (`gzip`, `none`).
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.to_ascii_lowercase().as_str() {
            "gzip" => Ok(Compression::default()),
            "none" | "" => Ok(Compression::None),
            other => Err(ConfigError::Invalid {
                name: "OTEL_EXPORTER_OTLP_COMPRESSION",
                reason: format!("{other:?} (supported: gzip, none)"),
            }),
        }
    }
}

/// Where spans go, as resolved from settings and environment.
#[derive(Debug, Clone, PartialEq)]
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
    let url = env
        .get("LANGFUSE_BASE_URL")
        .or_else(|| env.get("LANGFUSE_HOST"))
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
    url.trim_end_matches('/').to_string()
}

/// The Langfuse keys, if both are set.
pub fn langfuse_keys(env: &Env) -> Result<Option<(String, Secret)>, ConfigError> {
    match (
        env.get("LANGFUSE_PUBLIC_KEY"),
        env.get("LANGFUSE_SECRET_KEY"),
    ) {
        (Some(pk), Some(sk)) => Ok(Some((pk, Secret::new(sk)))),
        (None, None) => Ok(None),
        _ => Err(ConfigError::PartialKeys),
    }
}

/// Parses `key=value,key2=value2` (W3C baggage-like, values percent-decoded).
pub fn parse_headers(value: &str) -> Result<Vec<(String, Secret)>, ConfigError> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = item.split_once('=').ok_or_else(|| ConfigError::Invalid {
            name: "OTEL_EXPORTER_OTLP_HEADERS",
            reason: "an entry has no '='".to_string(),
        })?;
        let key = k.trim();
        if key.is_empty() {
            return Err(ConfigError::Invalid {
                name: "OTEL_EXPORTER_OTLP_HEADERS",
                reason: "an entry has an empty key".to_string(),
            });
        }
        out.push((key.to_string(), Secret::new(percent_decode(v.trim()))));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hi = (bytes[i + 1] as char).to_digit(16);
            let lo = (bytes[i + 2] as char).to_digit(16);
            if let (Some(h), Some(l)) = (hi, lo) {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Resolves the destination from the environment alone (see the module docs for the order).
pub fn resolve_destination(env: &Env) -> Result<DestinationConfig, ConfigError> {
    if let Some((public_key, secret_key)) = langfuse_keys(env)? {
        return Ok(DestinationConfig::LangfuseOtlp {
            base_url: base_url(env),
            public_key,
            secret_key,
        });
    }
    let configured = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        || env.get("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
    if configured {
        let protocol = env
            .get_signal(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            )
            .map(|p| OtlpProtocol::parse(&p))
            .transpose()?
            .unwrap_or_default();
        // gRPC endpoints carry no path; HTTP base URLs get the traces path.
        let endpoint = env
            .get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| {
                env.get("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| {
                    if protocol == OtlpProtocol::Grpc {
                        base
                    } else {
                        format!("{}/v1/traces", base.trim_end_matches('/'))
                    }
                })
            })
            .unwrap_or_default();
        let headers = env
            .get_signal(
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "OTEL_EXPORTER_OTLP_HEADERS",
            )
            .map(|h| parse_headers(&h))
            .transpose()?
            .unwrap_or_default();
        return Ok(DestinationConfig::Otlp {
            endpoint,
            protocol,
            headers,
        });
    }
    Ok(DestinationConfig::File {
        path: env
            .get("LANGFUSE_OFFLINE_PATH")
            .map_or_else(|| PathBuf::from(DEFAULT_OFFLINE_PATH), PathBuf::from),
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
    env.get("LANGFUSE_DEBUG")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The export timeout: `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` (ms) for generic OTLP
/// destinations, else `LANGFUSE_TIMEOUT` (s), else 5 s.
pub fn timeout(env: &Env, generic_otlp: bool) -> Result<Duration, ConfigError> {
    if generic_otlp {
        let ms = match env.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") {
            Some(_) => env.parse::<u64>("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")?,
            None => env.parse::<u64>("OTEL_EXPORTER_OTLP_TIMEOUT")?,
        };
        if let Some(ms) = ms {
            return Ok(Duration::from_millis(ms));
        }
    }
    Ok(env
        .parse::<f64>("LANGFUSE_TIMEOUT")?
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64))
}

/// Compression from `OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION`, else gzip level 1.
pub fn compression(env: &Env) -> Result<Compression, ConfigError> {
    env.get_signal(
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
    )
    .map(|c| Compression::parse(&c))
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
    /// Defaults overridden by `LANGFUSE_FLUSH_AT`, `LANGFUSE_FLUSH_INTERVAL`, then `OTEL_BSP_*`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mut s = BatchSettings::default();
        if let Some(n) = env
            .parse::<usize>("LANGFUSE_FLUSH_AT")?
            .or(env.parse::<usize>("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")?)
        {
            s.max_export_batch = n.max(1);
        }
        if let Some(secs) = env.parse::<f64>("LANGFUSE_FLUSH_INTERVAL")? {
            if secs.is_finite() && secs > 0.0 {
                s.schedule_delay = Duration::from_secs_f64(secs);
            }
        } else if let Some(ms) = env.parse::<u64>("OTEL_BSP_SCHEDULE_DELAY")? {
            s.schedule_delay = Duration::from_millis(ms.max(1));
        }
        if let Some(n) = env.parse::<usize>("OTEL_BSP_MAX_QUEUE_SIZE")? {
            s.max_queue_spans = n.max(1);
        }
        Ok(s)
    }
}

/// The headers of every request to Langfuse: Basic auth (`public:secret`), SDK name and
/// version, public key, and `x-langfuse-ingestion-version: 4` (without it Langfuse Cloud delays
/// OTLP ingestion by minutes). Values are [`Secret`]s: the authorization one is.
///
/// ```
/// use langfuse_otel_exporter::config::{Secret, langfuse_headers};
/// let headers = langfuse_headers("pk-lf-test", &Secret::new("sk-lf-test"));
/// assert_eq!(headers[0].0, "authorization");
/// assert_eq!(headers[0].1.expose(), "Basic cGstbGYtdGVzdDpzay1sZi10ZXN0");
/// ```
pub fn langfuse_headers(public_key: &str, secret_key: &Secret) -> Vec<(String, Secret)> {
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{public_key}:{}", secret_key.expose()));
    vec![
        (
            "authorization".into(),
            Secret::new(format!("Basic {token}")),
        ),
        ("x-langfuse-sdk-name".into(), Secret::new(crate::SDK_NAME)),
        (
            "x-langfuse-sdk-version".into(),
            Secret::new(crate::SDK_VERSION),
        ),
        ("x-langfuse-public-key".into(), Secret::new(public_key)),
        ("x-langfuse-ingestion-version".into(), Secret::new("4")),
    ]
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
        assert_eq!(resolve_destination(&env), Err(ConfigError::PartialKeys));
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
    fn traces_variables_override_generic_ones() {
        let env = Env::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318/"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b/x"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1, b=x%20y"),
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
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]);
        assert!(matches!(
            resolve_destination(&env),
            Err(ConfigError::UnsupportedProtocol(_))
        ));
    }

    #[test]
    fn timeouts_come_from_the_right_variable() {
        let env = Env::from_pairs([
            ("LANGFUSE_TIMEOUT", "2"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "700"),
        ]);
        assert_eq!(timeout(&env, false).unwrap(), Duration::from_secs(2));
        assert_eq!(timeout(&env, true).unwrap(), Duration::from_millis(700));
        assert!(timeout(&Env::from_pairs([("LANGFUSE_TIMEOUT", "x")]), false).is_err());
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
