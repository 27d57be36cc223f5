//! The `serve` command line. Every flag has an environment variable; flags and variables
//! override the TOML file given with `--config`, which overrides the defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::config::{
    ConfigError, ConnectionArgs, Destination, ExposureArgs, LogFormat, ServeConfig,
    TranslationArgs, UpstreamArgs,
};
use crate::logging::init_logging;

pub use crate::logging::log_filter;
use langfuse_spool::FsyncPolicy;

/// Arguments of `langfuse-bridge serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (keys as in the flags, with `_` for `-`; unknown keys are errors).
    #[arg(long, value_name = "FILE", env = "LANGFUSE_BRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// OTLP/HTTP and Langfuse API listener [default: 127.0.0.1:4318].
    #[arg(long, value_name = "ADDR", env = "LANGFUSE_BRIDGE_HTTP")]
    pub http: Option<SocketAddr>,
    /// OTLP/gRPC listener, or `off` [default: 127.0.0.1:4317].
    #[arg(long, value_name = "ADDR", env = "LANGFUSE_BRIDGE_GRPC")]
    pub grpc: Option<String>,
    /// Destination: langfuse, ingestion, otlp, local or kafka [default: langfuse when an upstream or keys are set, else local].
    #[arg(long, value_name = "DEST", env = "LANGFUSE_BRIDGE_TO")]
    pub to: Option<Destination>,
    /// Where and as whom records are forwarded.
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    /// How records are translated on the way out.
    #[command(flatten)]
    pub translation: TranslationArgs,
    /// `--to langfuse`: seconds a trace must be quiet before it is sent (trace assembly: trace
    /// attributes on every span, a span sent twice within it sent once, legacy ingestion
    /// folded); 0 turns it off [default: 10].
    #[arg(long, value_name = "SECS", env = "LANGFUSE_BRIDGE_ASSEMBLE_WINDOW")]
    pub assemble_window: Option<f64>,
    /// Most traces held by the assembly stage; beyond it the quietest is sent early
    /// [default: 100000].
    #[arg(long, value_name = "N", env = "LANGFUSE_BRIDGE_ASSEMBLE_MAX_TRACES")]
    pub assemble_max_traces: Option<usize>,
    /// Spool directory [default: ./langfuse-bridge-spool].
    #[arg(long, value_name = "DIR", env = "LANGFUSE_BRIDGE_SPOOL")]
    pub spool: Option<PathBuf>,
    /// When the spool syncs to disk: always (before every answer), interval or never [default: always].
    #[arg(long, value_name = "POLICY", env = "LANGFUSE_BRIDGE_FSYNC")]
    pub fsync: Option<FsyncPolicy>,
    /// Largest spool size in bytes; beyond it clients get 429 [default: 1 GiB].
    #[arg(long, value_name = "BYTES", env = "LANGFUSE_BRIDGE_SPOOL_MAX_BYTES")]
    pub spool_max_bytes: Option<u64>,
    /// Largest request body in bytes [default: 16 MiB].
    #[arg(long, value_name = "BYTES", env = "LANGFUSE_BRIDGE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest decompressed request body in bytes [default: 64 MiB].
    #[arg(
        long,
        value_name = "BYTES",
        env = "LANGFUSE_BRIDGE_MAX_DECOMPRESSED_BYTES"
    )]
    pub max_decompressed_bytes: Option<usize>,
    /// Seconds the whole shutdown may take after SIGTERM/SIGINT: requests in progress finish,
    /// then what is spooled is forwarded; the rest stays spooled [default: 10].
    #[arg(long, value_name = "SECS", env = "LANGFUSE_BRIDGE_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Option<u64>,
    /// Log format: text or json [default: text].
    #[arg(long, value_name = "FORMAT", env = "LANGFUSE_BRIDGE_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Serve `/metrics` without credentials even when keys are configured.
    #[arg(long, env = "LANGFUSE_BRIDGE_METRICS_PUBLIC")]
    pub metrics_public: bool,
    /// Who may reach the listeners.
    #[command(flatten)]
    pub exposure: ExposureArgs,
    /// Log filter: a level (trace, debug, info, warn, error, off) or `target=level` directives
    /// separated by commas [default: RUST_LOG, else info].
    #[arg(long, value_name = "FILTER", env = "LANGFUSE_BRIDGE_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Connection limits.
    #[command(flatten)]
    pub connections: ConnectionArgs,
    /// Coding agents (Claude Code, Codex CLI, Gemini CLI).
    #[command(flatten)]
    pub agents: crate::assemble_agents::AgentArgs,
    /// The Kafka client of `--to kafka`.
    #[command(flatten)]
    pub kafka: crate::kafka::KafkaArgs,
}

impl ServeArgs {
    /// The configuration: defaults, then the `--config` file, then flags and variables.
    pub fn to_config(&self) -> Result<ServeConfig, ConfigError> {
        let mut config = match &self.config {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                        path: path.clone(),
                        source,
                    })?;
                ServeConfig::from_toml(&text)?
            }
            None => ServeConfig::default(),
        };
        // RUST_LOG beats the file, the flag beats RUST_LOG.
        if let Ok(filter) = std::env::var("RUST_LOG")
            && !filter.trim().is_empty()
        {
            config.log_level = Some(filter);
        }
        macro_rules! set {
            ($($field:ident => $target:ident),* $(,)?) => {
                $(if let Some(v) = &self.$field { config.$target = v.clone().into(); })*
            };
        }
        set!(
            http => http,
            spool => spool,
            fsync => fsync,
            spool_max_bytes => spool_max_bytes,
            max_body_bytes => max_body_bytes,
            max_decompressed_bytes => max_decompressed_bytes,
            shutdown_timeout => shutdown_timeout_secs,
            assemble_window => assemble_window_secs,
            assemble_max_traces => assemble_max_traces,
            log_format => log_format,
        );
        if let Some(upstream) = &self.upstream.upstream {
            config.upstream = Some(upstream.clone());
        }
        if let Some(public_key) = &self.upstream.keys.public_key {
            config.public_key = Some(public_key.clone());
        }
        if let Some(secret_key) = self.upstream.secret_key() {
            config.secret_key = Some(secret_key);
        }
        if let Some(mode) = self.translation.otlp_mode {
            config.otlp_mode = mode;
        }
        if let Some(compat) = self.translation.compat {
            config.compat = compat;
        }
        if let Some(db) = &self.translation.db {
            config.db = db.clone();
        }
        if self.log_level.is_some() {
            config.log_level.clone_from(&self.log_level);
        }
        self.connections.apply(&mut config);
        if let Some(secs) = self.agents.agent_window {
            config.agent_window_secs = secs;
        }
        if let Some(spans) = self.agents.agent_spans {
            config.agent_spans = spans;
        }
        if let Some(logs) = self.agents.logs {
            config.logs = logs;
        }
        self.kafka.apply(&mut config.kafka);
        if let Some(to) = self.to {
            config.to = Some(to);
        }
        config.metrics_public |= self.metrics_public;
        config.allow_remote_without_auth |= self.exposure.allow_remote_without_auth;
        config
            .allowed_hosts
            .extend(self.exposure.allowed_hosts.iter().cloned());
        if let Some(grpc) = &self.grpc {
            config.grpc = if grpc == "off" {
                None
            } else {
                Some(grpc.parse().map_err(|_| {
                    ConfigError::Invalid(format!("--grpc: '{grpc}' is not an address or `off`"))
                })?)
            };
        }
        Ok(config)
    }
}

/// Runs `serve` until SIGTERM or SIGINT.
pub fn run(args: &ServeArgs) -> Result<(), super::ServeError> {
    let config = args.to_config().map_err(super::ServeError::from)?;
    let filter = log_filter(config.log_level.as_deref().unwrap_or("info"))
        .map_err(super::ServeError::from)?;
    init_logging(config.log_format, filter);
    tracing::debug!(?config, "configuration");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| super::ServeError::Start {
            what: "the runtime",
            source,
        })?;
    runtime.block_on(async move {
        let bridge = super::Bridge::new(config).bind().await?;
        tracing::info!(http = %bridge.http_addr(), grpc = ?bridge.grpc_addr(), "langfuse-bridge listening");
        bridge.run(shutdown_signal()).await
    })?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("serve-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bridge.toml");
        std::fs::write(
            &file,
            "to = \"otlp\"\nupstream = \"grpc://127.0.0.1:4317\"\nfsync = \"never\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file),
            fsync: Some(FsyncPolicy::Interval),
            grpc: Some("off".into()),
            ..ServeArgs::default()
        };
        let config = args.to_config().unwrap();
        assert_eq!(config.to, Some(Destination::Otlp));
        assert_eq!(config.fsync, FsyncPolicy::Interval);
        assert_eq!(config.grpc, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn log_filters_take_levels_and_target_directives_and_refuse_anything_else() {
        use tracing::Level;
        let f = log_filter("langfuse_bridge=debug,tower=warn").unwrap();
        assert!(f.would_enable("langfuse_bridge::serve", &Level::DEBUG));
        assert!(!f.would_enable("tower::buffer", &Level::INFO));
        assert!(
            !f.would_enable("hyper", &Level::ERROR),
            "unlisted targets are off"
        );
        let f = log_filter(" DEBUG ").unwrap();
        assert!(f.would_enable("anything", &Level::DEBUG));
        assert!(!f.would_enable("anything", &Level::TRACE));
        for bad in ["bogus", "", " , ", "=debug", "langfuse_bridge=loud"] {
            let err = log_filter(bad).unwrap_err().to_string();
            assert!(err.contains("log level"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn access_flags_add_to_the_file() {
        let dir = std::env::temp_dir().join(format!("serve-args-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bridge.toml");
        std::fs::write(
            &file,
            "metrics_public = true\nallowed_hosts = [\"bridge.internal\"]\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file),
            exposure: ExposureArgs {
                allowed_hosts: vec!["bridge.lan".into()],
                allow_remote_without_auth: true,
            },
            ..ServeArgs::default()
        };
        let config = args.to_config().unwrap();
        assert!(config.metrics_public && config.allow_remote_without_auth);
        assert_eq!(config.allowed_hosts, ["bridge.internal", "bridge.lan"]);
        let defaults = ServeArgs::default().to_config().unwrap();
        assert!(!defaults.metrics_public && !defaults.allow_remote_without_auth);
        assert!(defaults.allowed_hosts.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
