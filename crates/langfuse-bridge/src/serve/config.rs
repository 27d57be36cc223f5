//! The bridge's configuration: one struct, read from a TOML file (`--config`, unknown keys
//! rejected) and overridden by flags and environment variables (see `serve_args`).
//!
//! ```
//! use langfuse_bridge::{Destination, ServeConfig};
//!
//! let config = ServeConfig::from_toml(r#"
//!     to = "ingestion"
//!     upstream = "http://127.0.0.1:3000"
//!     fsync = "interval"
//! "#).unwrap();
//! assert_eq!(config.destination().unwrap(), Destination::Ingestion);
//! assert!(ServeConfig::from_toml("bogus = 1").is_err());
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use langfuse_otel_core::translate::Compatibility;
use serde::Deserialize;

use crate::sources::listener::{self, ConnectionLimits};
use langfuse_spool::{FsyncPolicy, SpoolConfig};

/// Where forwarded records go (`--to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Destination {
    /// Langfuse's OTLP endpoint under the upstream base URL (scores to `/api/public/scores`).
    Langfuse,
    /// Langfuse native ingestion under the upstream base URL: translated events.
    Ingestion,
    /// Any OTLP collector: the upstream is `http(s)://…/v1/traces` or `grpc://host:port`.
    Otlp,
    /// The embedded trace store (`store`), with the web viewer at `/` of the HTTP listener.
    Local,
    /// An Apache Kafka topic (`[kafka]`, `--kafka-*`; feature `kafka`), read by `consume`.
    Kafka,
}

impl FromStr for Destination {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "langfuse" => Ok(Destination::Langfuse),
            "ingestion" => Ok(Destination::Ingestion),
            "otlp" => Ok(Destination::Otlp),
            "local" => Ok(Destination::Local),
            "kafka" => Ok(Destination::Kafka),
            other => Err(format!(
                "unknown destination '{other}' (expected langfuse, ingestion, otlp, local or kafka)"
            )),
        }
    }
}

impl Destination {
    /// The name used for its spool cursor and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Destination::Langfuse => "langfuse",
            Destination::Ingestion => "ingestion",
            Destination::Otlp => "otlp",
            Destination::Local => "local",
            Destination::Kafka => "kafka",
        }
    }
}

/// What `--to langfuse` sends to the OTLP endpoint (`--otlp-mode`): core's one definition.
pub use langfuse_otel_core::OtlpMode;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format '{other}' (expected text or json)"
            )),
        }
    }
}

/// Everything `langfuse-bridge serve` needs. Field names are the TOML keys.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// OTLP/HTTP and Langfuse API listener.
    pub http: SocketAddr,
    /// OTLP/gRPC listener; `None` (`"off"` in the file) disables it.
    #[serde(deserialize_with = "grpc_listener")]
    pub grpc: Option<SocketAddr>,
    /// Destination; `None`: `langfuse` when an upstream or keys are configured, else `local`.
    pub to: Option<Destination>,
    /// Upstream base URL (Langfuse) or OTLP endpoint.
    pub upstream: Option<String>,
    /// What `--to langfuse` sends.
    pub otlp_mode: OtlpMode,
    /// Langfuse public key (with `secret_key`: clients must present these keys).
    pub public_key: Option<String>,
    /// Langfuse secret key.
    pub secret_key: Option<String>,
    /// Spool directory.
    pub spool: PathBuf,
    /// Spool sync policy.
    pub fsync: FsyncPolicy,
    /// Sync period under `fsync = "interval"` (milliseconds).
    pub fsync_interval_ms: u64,
    /// Largest spool size in bytes (429 beyond it).
    pub spool_max_bytes: u64,
    /// Largest request body as received (413 beyond it).
    pub max_body_bytes: usize,
    /// Largest request body after decompression (413 beyond it).
    pub max_decompressed_bytes: usize,
    /// Seconds the whole shutdown may take after SIGTERM/SIGINT: requests in progress
    /// finish, then forwarding (the rest stays spooled).
    pub shutdown_timeout_secs: u64,
    /// Seconds a client is told to wait when the spool is full (`Retry-After`).
    pub retry_after_secs: u64,
    /// Log format.
    pub log_format: LogFormat,
    /// Per-attempt-round deadline of upstream sends (seconds).
    pub upstream_timeout_secs: u64,
    /// Translation rules for `--to ingestion` and `--to local`.
    pub compat: Compatibility,
    /// The trace store of `--to local` (`--db`; the key `store` of earlier versions is read
    /// too).
    #[serde(alias = "store")]
    pub db: PathBuf,
    /// Most open connections, HTTP and gRPC together; `None`: the open-files limit minus a
    /// reserve (see `sources::listener::default_max_connections`).
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request head.
    pub header_read_timeout_secs: u64,
    /// Longest pause, in seconds, while a request body is read (408 beyond it).
    pub body_read_timeout_secs: u64,
    /// Seconds a kept-alive connection may wait for its next request.
    pub idle_timeout_secs: u64,
    /// Log filter: a level (`debug`) or `target=level` directives
    /// (`langfuse_bridge=debug,tower=warn`); `None`: `RUST_LOG`, else `info`.
    pub log_level: Option<String>,
    /// `/metrics` without credentials even when keys are configured.
    pub metrics_public: bool,
    /// Host names the HTTP listener answers to besides `localhost`, `*.localhost` and IP
    /// literals (others get 421: DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Listen beyond loopback without keys (refused otherwise).
    pub allow_remote_without_auth: bool,
    /// `--to langfuse`: seconds a trace must be quiet before its spans go out (trace
    /// assembly, see the bridge's `assemble` stage); 0 turns assembly off.
    pub assemble_window_secs: f64,
    /// Most traces the assembly stage holds; beyond it the quietest is emitted early.
    pub assemble_max_traces: usize,
    /// Seconds a coding-agent turn must be quiet before it is emitted as one trace.
    pub agent_window_secs: f64,
    /// Which coding-agent spans are kept.
    pub agent_spans: crate::assemble_agents::AgentSpans,
    /// What happens to log records that are not a coding agent's.
    pub logs: crate::assemble_agents::LogsMode,
    /// The Kafka client of `--to kafka` (TOML table `[kafka]`).
    pub kafka: crate::kafka::KafkaSettings,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys never reach logs or errors.
        f.debug_struct("ServeConfig")
            .field("http", &self.http)
            .field("grpc", &self.grpc)
            .field("to", &self.to)
            .field("upstream", &self.upstream)
            .field("otlp_mode", &self.otlp_mode)
            .field("public_key", &self.public_key)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("spool", &self.spool)
            .field("fsync", &self.fsync)
            .field("kafka", &self.kafka)
            .finish_non_exhaustive()
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            http: SocketAddr::from(([127, 0, 0, 1], 4318)),
            grpc: Some(SocketAddr::from(([127, 0, 0, 1], 4317))),
            to: None,
            upstream: None,
            otlp_mode: OtlpMode::Passthrough,
            public_key: None,
            secret_key: None,
            spool: PathBuf::from("./langfuse-bridge-spool"),
            fsync: FsyncPolicy::Always,
            fsync_interval_ms: 200,
            spool_max_bytes: 1 << 30,
            max_body_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
            shutdown_timeout_secs: 10,
            retry_after_secs: 1,
            log_format: LogFormat::Text,
            upstream_timeout_secs: 10,
            compat: Compatibility::Repair,
            db: PathBuf::from(langfuse_local::DEFAULT_DB_PATH),
            max_connections: None,
            header_read_timeout_secs: listener::DEFAULT_HEADER_READ_TIMEOUT.as_secs(),
            body_read_timeout_secs: listener::DEFAULT_BODY_READ_TIMEOUT.as_secs(),
            idle_timeout_secs: listener::DEFAULT_IDLE_TIMEOUT.as_secs(),
            log_level: None,
            metrics_public: false,
            allowed_hosts: Vec::new(),
            allow_remote_without_auth: false,
            assemble_window_secs: crate::assemble::DEFAULT_WINDOW.as_secs_f64(),
            assemble_max_traces: crate::assemble::DEFAULT_MAX_TRACES,
            agent_window_secs: 10.0,
            agent_spans: crate::assemble_agents::AgentSpans::Turns,
            logs: crate::assemble_agents::LogsMode::Agents,
            kafka: crate::kafka::KafkaSettings::default(),
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML file is not valid or has unknown keys.
    #[error("invalid configuration file: {}", .0.message())]
    Toml(#[source] toml::de::Error),
    /// The configuration file could not be read.
    #[error("cannot read the configuration file {}: {source}", .path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The local trace store could not be opened.
    #[error(transparent)]
    Store(#[from] langfuse_local::StoreError),
    /// The upstream's sender could not be set up.
    #[error("cannot set up the upstream: {0}")]
    Upstream(#[source] langfuse_otel_transport::TransportError),
    /// Settings that contradict each other or are missing.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The `grpc` key: an address, or `"off"` (as the flag takes).
fn grpc_listener<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.trim()
        .parse()
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("'{text}' is not an address or \"off\"")))
}

impl ServeConfig {
    /// Parses a TOML document (unknown keys are errors).
    pub fn from_toml(text: &str) -> Result<ServeConfig, ConfigError> {
        toml::from_str(text).map_err(ConfigError::Toml)
    }

    /// The destination: `to`, or `langfuse` when an upstream or keys are configured, else
    /// `local`.
    pub fn destination(&self) -> Result<Destination, ConfigError> {
        match self.to {
            Some(d) => Ok(d),
            None if self.upstream.is_some() || self.public_key.is_some() => {
                Ok(Destination::Langfuse)
            }
            None => Ok(Destination::Local),
        }
    }

    /// The upstream URL the destination uses (Langfuse Cloud EU by default for Langfuse
    /// destinations).
    pub fn upstream_url(&self) -> Result<String, ConfigError> {
        let dest = self.destination()?;
        match (&self.upstream, dest) {
            (Some(u), _) => Ok(u.trim_end_matches('/').to_owned()),
            (None, Destination::Otlp) => Err(ConfigError::Invalid(
                "--to otlp needs --upstream (http(s)://…/v1/traces or grpc://host:port)".into(),
            )),
            (None, _) => Ok("https://cloud.langfuse.com".into()),
        }
    }

    /// Configured keys, if both are set; an error if only one is.
    pub fn keys(&self) -> Result<Option<(String, String)>, ConfigError> {
        match (&self.public_key, &self.secret_key) {
            (Some(p), Some(s)) => Ok(Some((p.clone(), s.clone()))),
            (None, None) => Ok(None),
            _ => Err(ConfigError::Invalid(
                "set both the public and the secret key, or neither".into(),
            )),
        }
    }

    /// The spool settings.
    pub fn spool_config(&self) -> SpoolConfig {
        SpoolConfig {
            fsync: self.fsync,
            fsync_interval: Duration::from_millis(self.fsync_interval_ms.max(1)),
            max_bytes: self.spool_max_bytes,
            // Several segments fit, so committed ones free space while others fill.
            segment_bytes: (self.spool_max_bytes / 8).clamp(4096, 32 << 20),
            ..SpoolConfig::new(&self.spool)
        }
    }

    /// The listeners' connection limits (zero timeouts or cap refused).
    pub fn connection_limits(&self) -> Result<ConnectionLimits, ConfigError> {
        connection_limits(
            self.max_connections,
            self.header_read_timeout_secs,
            self.body_read_timeout_secs,
            self.idle_timeout_secs,
        )
    }

    /// Checks everything that can be checked before starting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.keys()?;
        if self.destination()? == Destination::Local {
            return Ok(());
        }
        if self.destination()? == Destination::Kafka {
            if !cfg!(feature = "kafka") {
                return Err(ConfigError::Invalid(
                    "--to kafka: this langfuse-bridge was built without the `kafka` feature".into(),
                ));
            }
            return self
                .kafka
                .client_options()
                .map(drop)
                .map_err(|e| ConfigError::Invalid(e.to_string()));
        }
        let url = self.upstream_url()?;
        let lower = url.to_ascii_lowercase();
        let ok = lower.starts_with("http://")
            || lower.starts_with("https://")
            || (self.destination()? == Destination::Otlp && lower.starts_with("grpc://"));
        if !ok {
            return Err(ConfigError::Invalid(format!(
                "unsupported upstream URL scheme in '{url}'"
            )));
        }
        if self.max_body_bytes == 0 || self.max_decompressed_bytes == 0 {
            return Err(ConfigError::Invalid("body limits must be positive".into()));
        }
        let listeners = std::iter::once(self.http).chain(self.grpc);
        if let Some((host, port)) = url_host_port(&url)
            && let Some(own) = listeners.into_iter().find(|l| is_listener(*l, &host, port))
        {
            // An easy slip: the SDKs read LANGFUSE_BASE_URL too, and point it at the bridge.
            return Err(ConfigError::Invalid(format!(
                "the upstream '{url}' is this bridge's own listener {own}: it would forward \
                 everything to itself (is LANGFUSE_BASE_URL, meant for the SDKs, set in the \
                 bridge's environment?); set --upstream to Langfuse or the collector"
            )));
        }
        Ok(())
    }
}

/// Connection limits from a cap (`None`: the default) and timeouts in seconds.
pub fn connection_limits(
    max_connections: Option<usize>,
    header_read_timeout_secs: u64,
    body_read_timeout_secs: u64,
    idle_timeout_secs: u64,
) -> Result<ConnectionLimits, ConfigError> {
    for (name, secs) in [
        ("header_read_timeout_secs", header_read_timeout_secs),
        ("body_read_timeout_secs", body_read_timeout_secs),
        ("idle_timeout_secs", idle_timeout_secs),
    ] {
        if secs == 0 {
            return Err(ConfigError::Invalid(format!(
                "{name} must be at least 1 second"
            )));
        }
    }
    let max_connections = match max_connections {
        Some(0) => {
            return Err(ConfigError::Invalid(
                "max_connections must be at least 1".into(),
            ));
        }
        Some(n) => n,
        None => listener::default_max_connections(),
    };
    Ok(ConnectionLimits {
        max_connections,
        header_read_timeout: Duration::from_secs(header_read_timeout_secs),
        body_read_timeout: Duration::from_secs(body_read_timeout_secs),
        idle_timeout: Duration::from_secs(idle_timeout_secs),
    })
}

/// The host and port of an `http(s)://` or `grpc://` URL (the scheme's default port when none
/// is written; `None` for a `grpc://` URL without one or an unreadable authority).
fn url_host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let port = match (port, scheme.to_ascii_lowercase().as_str()) {
        (Some(p), _) => p.parse().ok()?,
        (None, "http") => 80,
        (None, "https") => 443,
        (None, _) => return None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// Whether `host:port` reaches `listener` on this machine.
fn is_listener(listener: SocketAddr, host: &str, port: u16) -> bool {
    if listener.port() != port {
        return false;
    }
    let ip = match host {
        "localhost" => return listener.ip().is_loopback() || listener.ip().is_unspecified(),
        _ => match host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip,
            Err(_) => return false,
        },
    };
    ip == listener.ip()
        || ((ip.is_loopback() || ip.is_unspecified())
            && (listener.ip().is_loopback() || listener.ip().is_unspecified()))
}

/// Who may reach the HTTP listener (`serve` and `ui`, same flags): besides the keys, the host
/// names it answers to and whether it may listen beyond loopback without keys.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ExposureArgs {
    /// A host name the listener answers to besides localhost and IP addresses
    /// (repeatable; others get 421, against DNS rebinding).
    #[arg(
        long = "allowed-host",
        value_name = "NAME",
        env = "LANGFUSE_BRIDGE_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// Listen on a non-loopback address without keys: anyone who reaches it reads every trace.
    #[arg(long, env = "LANGFUSE_BRIDGE_ALLOW_REMOTE_WITHOUT_AUTH")]
    pub allow_remote_without_auth: bool,
}

/// The Langfuse keys of a listener (`serve` and `ui`): with both set, every client, and the
/// viewer's browser, must present them (Basic auth: user name = public key, password = secret
/// key); `serve` also forwards with them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KeyArgs {
    /// Langfuse public key.
    #[arg(long, value_name = "KEY", env = "LANGFUSE_PUBLIC_KEY")]
    pub public_key: Option<String>,
    /// Langfuse secret key (never printed).
    #[arg(
        long,
        value_name = "KEY",
        env = "LANGFUSE_SECRET_KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<crate::sources::access::Secret>,
}

impl KeyArgs {
    /// The keys, if both are given; an error if only one is.
    pub fn keys(&self) -> Result<Option<(&str, &str)>, crate::sources::access::AccessError> {
        match (&self.public_key, &self.secret_key) {
            (Some(p), Some(s)) => Ok(Some((p.as_str(), s.expose()))),
            (None, None) => Ok(None),
            _ => Err(crate::sources::access::AccessError::PartialKeys),
        }
    }
}

/// Where and as whom records are forwarded (`serve`, `consume`, `dead-letter replay`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UpstreamArgs {
    /// Langfuse base URL, or the OTLP endpoint (`http(s)://…/v1/traces`, `grpc://host:port`).
    #[arg(long, value_name = "URL", env = "LANGFUSE_BASE_URL")]
    pub upstream: Option<String>,
    /// The keys (for `serve`, clients must present them too).
    #[command(flatten)]
    pub keys: KeyArgs,
}

impl UpstreamArgs {
    /// The secret key as text (it is forwarded with).
    pub fn secret_key(&self) -> Option<String> {
        self.keys.secret_key.as_ref().map(|s| s.expose().to_owned())
    }
}

/// How records are translated on the way out (`serve` and `consume`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TranslationArgs {
    /// What `--to langfuse` sends: passthrough (spans as received) or canonical.
    #[arg(long, value_name = "MODE", env = "LANGFUSE_BRIDGE_OTLP_MODE")]
    pub otlp_mode: Option<OtlpMode>,
    /// Translation rules for `--to ingestion` and `--to local`: repair or server [default: repair].
    #[arg(long, value_name = "RULES", env = "LANGFUSE_BRIDGE_COMPAT")]
    pub compat: Option<Compatibility>,
    /// The trace store of `--to local` (its viewer is served at `/` by `serve`), as `--db` of
    /// `import`, `traces` and `ui` [default: langfuse-traces.db].
    #[arg(long, value_name = "PATH", env = "LANGFUSE_BRIDGE_DB", alias = "store")]
    pub db: Option<PathBuf>,
}

/// Connection limits of the listeners (`serve` and `ui`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectionArgs {
    /// Most open connections, all listeners together [default: the open-files limit minus 128, at most 4096].
    #[arg(long, value_name = "N", env = "LANGFUSE_BRIDGE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request head [default: 10].
    #[arg(long, value_name = "SECS", env = "LANGFUSE_BRIDGE_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Option<u64>,
    /// Longest pause in seconds while a request body is read; 408 beyond it [default: 30].
    #[arg(long, value_name = "SECS", env = "LANGFUSE_BRIDGE_BODY_READ_TIMEOUT")]
    pub body_read_timeout: Option<u64>,
    /// Seconds a kept-alive connection may wait for its next request [default: 60].
    #[arg(long, value_name = "SECS", env = "LANGFUSE_BRIDGE_IDLE_TIMEOUT")]
    pub idle_timeout: Option<u64>,
}

impl ConnectionArgs {
    /// Writes the flags given into `config`.
    pub fn apply(&self, config: &mut ServeConfig) {
        if self.max_connections.is_some() {
            config.max_connections = self.max_connections;
        }
        if let Some(secs) = self.header_read_timeout {
            config.header_read_timeout_secs = secs;
        }
        if let Some(secs) = self.body_read_timeout {
            config.body_read_timeout_secs = secs;
        }
        if let Some(secs) = self.idle_timeout {
            config.idle_timeout_secs = secs;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_that_is_the_bridge_itself_is_refused() {
        let mut c = ServeConfig::default();
        for own in [
            "http://127.0.0.1:4318",
            "http://localhost:4318/",
            "http://[::1]:4318",
            "http://user@127.0.0.1:4318/path",
        ] {
            c.upstream = Some(own.into());
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains("own listener"), "{own}: {err}");
        }
        c.to = Some(Destination::Otlp);
        c.upstream = Some("grpc://127.0.0.1:4317".into());
        assert!(c.validate().is_err(), "the gRPC listener too");
        for other in [
            "http://127.0.0.1:3000",
            "http://langfuse:4318",
            "https://cloud.langfuse.com",
            "grpc://127.0.0.1:4319",
        ] {
            c.to = None;
            if other.starts_with("grpc") {
                c.to = Some(Destination::Otlp);
            }
            c.upstream = Some(other.into());
            assert!(c.validate().is_ok(), "{other}");
        }
    }

    #[test]
    fn connection_limits_come_from_the_file_and_zero_is_refused() {
        let c = ServeConfig::from_toml(
            "max_connections = 50\nheader_read_timeout_secs = 2\nbody_read_timeout_secs = 3\n\
             idle_timeout_secs = 4\nlog_level = \"debug\"\n",
        )
        .unwrap();
        let limits = c.connection_limits().unwrap();
        assert_eq!(limits.max_connections, 50);
        assert_eq!(limits.header_read_timeout, Duration::from_secs(2));
        assert_eq!(limits.body_read_timeout, Duration::from_secs(3));
        assert_eq!(limits.idle_timeout, Duration::from_secs(4));
        assert_eq!(c.log_level.as_deref(), Some("debug"));
        let defaults = ServeConfig::default().connection_limits().unwrap();
        assert_eq!(
            defaults.max_connections,
            listener::default_max_connections()
        );
        for zero in [
            "max_connections = 0",
            "header_read_timeout_secs = 0",
            "body_read_timeout_secs = 0",
            "idle_timeout_secs = 0",
        ] {
            let err = ServeConfig::from_toml(zero)
                .unwrap()
                .connection_limits()
                .unwrap_err();
            assert!(err.to_string().contains("at least"), "{zero}: {err}");
        }
    }

    #[test]
    fn the_store_is_db_and_grpc_may_be_off_in_the_file() {
        let c = ServeConfig::from_toml("db = \"a.db\"\ngrpc = \"off\"").unwrap();
        assert_eq!((c.db.to_str(), c.grpc), (Some("a.db"), None));
        // The key of earlier versions still reads.
        let c = ServeConfig::from_toml("store = \"b.db\"\ngrpc = \"127.0.0.1:9\"").unwrap();
        assert_eq!(c.db.to_str(), Some("b.db"));
        assert_eq!(c.grpc, Some(SocketAddr::from(([127, 0, 0, 1], 9))));
        assert!(ServeConfig::from_toml("grpc = \"nowhere\"").is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = ServeConfig::from_toml("htp = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("htp"), "{err}");
    }

    #[test]
    fn the_destination_defaults_to_langfuse_when_an_upstream_is_set() {
        let mut c = ServeConfig::default();
        assert_eq!(c.destination().unwrap(), Destination::Local);
        c.upstream = Some("http://x".into());
        assert_eq!(c.destination().unwrap(), Destination::Langfuse);
    }

    #[test]
    fn the_secret_key_never_shows_in_debug_output() {
        let c = ServeConfig {
            secret_key: Some("sk-lf-very-secret".into()),
            ..ServeConfig::default()
        };
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
