//! `langfuse-bridge serve`: receives OTLP (HTTP and gRPC) and Langfuse API calls from any
//! language, appends each request to a durable [`spool`](crate::spool) before answering, and
//! forwards the records to Langfuse, Langfuse ingestion or an OTLP collector.
//!
//! The stages, each in its own module of the crate (see the crate docs for the picture):
//! `sources` (listeners, access, receive checks, the durable append) → spool (crate
//! `langfuse-spool`) → `shape` → `forward` → `sinks`. This module wires them together:
//! [`Bridge`] binds, [`BoundBridge::run`] serves until shutdown.
//!
//! **Memory:** one request costs at most 8 × `max_decompressed_bytes` (64 MiB by default, so
//! 512 MiB) over the idle process, from receipt to the destination, the local store's page
//! cache (up to 128 MiB) included: one 60 MiB attribute measured 431 MiB with `--to local`
//! (the copies: inflated body and decoded export on receipt; record, decoded export and the
//! translated trace and observation while forwarding; SQLite's bound text, row record and
//! pages while storing). `integration-tests/tests/bridge_local_safety.rs` checks it.
//!
//! The whole service runs in-process, so tests drive it like the binary:
//!
//! ```no_run
//! use langfuse_bridge::{Bridge, ServeConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ServeConfig::from_toml(r#"
//!     http = "127.0.0.1:0"
//!     grpc = "127.0.0.1:0"
//!     to = "ingestion"
//!     upstream = "http://127.0.0.1:3000"
//!     spool = "/tmp/bridge-spool"
//! "#)?;
//! let bridge = Bridge::new(config).bind().await?;
//! println!("OTLP/HTTP on {}", bridge.http_addr());
//! bridge.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod args;
pub mod config;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use langfuse_otel_core::Translator;
use langfuse_otel_core::translate::TranslateOptions;

pub use self::config::ServeConfig;
use crate::forward::{ForwardControl, Forwarder};
use crate::metrics::{self, Metrics};
use crate::shape::{Shape, Shaper};
use crate::sinks::{self, Sink};
use crate::sources::access::{self, AccessError, AccessPolicy};
use crate::sources::receive::Limits;
use crate::sources::receiver::Receiver;
use crate::sources::{grpc, http, listener};
use langfuse_spool::{Appender, AppenderThread, Spool, SpoolError};

/// Why the bridge could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The spool cannot be opened.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// A listener cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// A thread or runtime of the bridge could not start.
    #[error("cannot start {what}")]
    Start {
        /// What could not start.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A listener's task ended abnormally (it panicked or was cancelled).
    #[error("a listener stopped abnormally")]
    Listener(#[source] tokio::task::JoinError),
    /// The listeners would be open to more than the configuration allows.
    #[error(transparent)]
    Access(#[from] AccessError),
}

/// The bridge, configured but not yet listening.
pub struct Bridge {
    config: ServeConfig,
}

impl Bridge {
    /// A bridge with this configuration.
    pub fn new(config: ServeConfig) -> Bridge {
        Bridge { config }
    }

    /// Opens the spool and binds the listeners.
    pub async fn bind(self) -> Result<BoundBridge, ServeError> {
        let config = self.config;
        let keys = config.keys()?;
        let listeners: Vec<_> = std::iter::once(("HTTP", config.http))
            .chain(config.grpc.map(|addr| ("gRPC", addr)))
            .collect();
        access::check_exposure(&listeners, keys.is_some(), config.allow_remote_without_auth)?;
        let allowed_hosts = access::parse_allowed_hosts(&config.allowed_hosts)?;
        let mut viewer = None;
        config.validate()?;
        let destination: Box<dyn Sink> = if config.destination()? == config::Destination::Local {
            let store =
                langfuse_local::Store::open(&config.db).map_err(config::ConfigError::from)?;
            viewer = Some(store.clone());
            Box::new(sinks::LocalSink::new(store))
        } else {
            sinks::from_config(&config)?
        };
        let cursor = match destination.shape() {
            Shape::Langfuse(_) => "langfuse",
            Shape::Events => "events",
            Shape::OtlpOnly => "otlp",
            Shape::Kafka => "kafka",
        };
        let (spool, recovery) = Spool::open(config.spool_config(), &[cursor])?;
        if recovery.truncated_bytes > 0 {
            tracing::warn!(bytes = recovery.truncated_bytes, "cut a torn spool tail");
        }
        for damage in &recovery.damage {
            tracing::warn!(
                lost_records = damage.lost_records(),
                "spool damage: {damage}"
            );
        }
        if !recovery.is_clean() {
            tracing::warn!(
                lost_records = recovery.lost_records,
                damaged_cursors = ?recovery.damaged_cursors,
                "the spool was damaged; records after the damage are forwarded (see `langfuse-bridge spool verify`)"
            );
        }
        tracing::info!(records = recovery.records, "spool opened");
        let redelivered = recovery.in_flight.get(cursor).copied().unwrap_or(0);
        let reader = spool.reader(cursor)?;
        let (appender, appender_thread) = Appender::start(spool.clone())?;
        let connection_limits = config.connection_limits()?;
        let metrics = Arc::new(Metrics::new());
        let receiver = Arc::new(Receiver {
            appender,
            auth: crate::sources::auth::Auth::new(
                keys.as_ref().map(|(p, s)| (p.as_str(), s.as_str())),
            ),
            metrics: Arc::clone(&metrics),
            limits: Limits {
                max_body_bytes: config.max_body_bytes,
                max_decompressed_bytes: config.max_decompressed_bytes,
            },
            spool: spool.clone(),
            retry_after_secs: config.retry_after_secs.max(1),
            keep_metrics: destination.shape() == Shape::OtlpOnly,
            store: viewer.clone(),
            dead_letter_dir: config.spool.join(crate::sinks::dead_letter::DIR_NAME),
        });
        let http = tokio::net::TcpListener::bind(config.http)
            .await
            .map_err(|source| ServeError::Bind {
                addr: config.http,
                source,
            })?;
        let http_addr = http.local_addr().map_err(|source| ServeError::Bind {
            addr: config.http,
            source,
        })?;
        let access = access_policy(&config, keys.as_ref(), http_addr, allowed_hosts, &metrics);
        let grpc = match config.grpc {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind { addr, source })?,
            ),
            None => None,
        };
        let translator = Translator::with_options(TranslateOptions {
            compatibility: config.compat,
            ..TranslateOptions::default()
        });
        let destination_shape = destination.shape();
        let forwarder = Forwarder {
            reader,
            spool,
            shaper: Shaper::new(destination_shape, translator).with_agents(
                crate::assemble_agents::AgentStage::configured(
                    config.agent_window_secs,
                    config.agent_spans,
                    config.logs,
                ),
            ),
            sink: destination,
            metrics: Arc::clone(&metrics),
            control: Arc::new(ForwardControl::default()),
            send_timeout: Duration::from_secs(config.upstream_timeout_secs.max(1)),
            redelivered,
            dead_letters: crate::sinks::dead_letter::DeadLetters::new(&config.spool, cursor),
            assembly: assembly(&config, destination_shape),
            events_only_explained: std::sync::atomic::AtomicBool::new(false),
            spare: Vec::new(),
        };
        Ok(BoundBridge {
            http,
            access,
            grpc,
            viewer,
            receiver,
            appender_thread,
            forwarder,
            metrics,
            shutdown_timeout: Duration::from_secs(config.shutdown_timeout_secs),
            connection_limits,
            api: api(&config)?,
        })
    }

    /// Binds and runs until `shutdown` resolves (see [`BoundBridge::run`]).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        self.bind().await?.run(shutdown).await
    }
}

/// The access layer of the HTTP listener; refusals at the receiving endpoints are counted like
/// the receivers' own (`langfuse_bridge_rejected_requests_total` is about receiving).
fn access_policy(
    config: &ServeConfig,
    keys: Option<&(String, String)>,
    http_addr: SocketAddr,
    allowed_hosts: Vec<String>,
    metrics: &Arc<Metrics>,
) -> AccessPolicy {
    let metrics = Arc::clone(metrics);
    AccessPolicy::new(keys.map(|(p, s)| (p.as_str(), s.as_str())), http_addr)
        .metrics_public(config.metrics_public)
        .allow_hosts(allowed_hosts)
        .on_refused(Arc::new(move |path, refusal, elapsed| {
            if let Some(endpoint) = metrics::Endpoint::from_path(path) {
                metrics.received(endpoint);
                metrics.rejected(endpoint, refusal.reason(), elapsed);
            }
        }))
}

/// A bridge with its listeners bound.
pub struct BoundBridge {
    http: tokio::net::TcpListener,
    /// Keys, allowed hosts and own origin, in front of everything `http` serves.
    access: AccessPolicy,
    /// The store whose viewer is mounted at `/` (`--to local`).
    viewer: Option<langfuse_local::Store>,
    grpc: Option<tokio::net::TcpListener>,
    receiver: Arc<Receiver>,
    appender_thread: AppenderThread,
    forwarder: Forwarder,
    metrics: Arc<Metrics>,
    shutdown_timeout: Duration,
    connection_limits: listener::ConnectionLimits,
    /// The rest of the Langfuse API: passthrough or local answers.
    api: crate::sources::api::Api,
}

impl BoundBridge {
    /// The HTTP listener's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The gRPC listener's address, if enabled.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The bridge's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Serves until `shutdown` resolves; then, within the shutdown timeout in all: stops
    /// accepting, closes idle connections at once, lets in-flight requests finish (closing
    /// what is still open at the deadline), forwards what it can, syncs the spool and returns
    /// (the rest stays spooled).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let BoundBridge {
            http,
            access,
            grpc,
            viewer,
            receiver,
            appender_thread,
            forwarder,
            metrics: _,
            shutdown_timeout,
            connection_limits,
            api,
        } = self;
        let control = Arc::clone(&forwarder.control);
        let (forward_done, forward_ended) = tokio::sync::oneshot::channel::<()>();
        let forward_thread = std::thread::Builder::new()
            .name("bridge-forwarder".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                {
                    Ok(rt) => forwarder.run(&rt),
                    Err(e) => tracing::error!(error = %e, "cannot start the forwarder runtime"),
                }
                let _ = forward_done.send(());
            })
            .map_err(|source| ServeError::Start {
                what: "the forwarder",
                source,
            })?;

        tracing::info!(
            max_connections = connection_limits.max_connections,
            header_read_timeout_secs = connection_limits.header_read_timeout.as_secs(),
            body_read_timeout_secs = connection_limits.body_read_timeout.as_secs(),
            idle_timeout_secs = connection_limits.idle_timeout.as_secs(),
            "connection limits"
        );
        let connections = listener::Connections::new(connection_limits);
        let mut app = http::router(Arc::clone(&receiver)).merge(crate::sources::api::router(api));
        if let Some(store) = viewer {
            app = app.merge(langfuse_local::viewer::router(store));
        }
        let app = access.protect(app);
        let mut servers = tokio::task::JoinSet::new();
        servers.spawn(listener::serve(
            http,
            app,
            listener::Protocol::Http1,
            connections.clone(),
        ));
        if let Some(listener) = grpc {
            let routes = tonic::service::Routes::new(grpc::service(Arc::clone(&receiver)))
                .add_service(grpc::logs_service(Arc::clone(&receiver)))
                .add_service(grpc::metrics_service(Arc::clone(&receiver)))
                .prepare()
                .into_axum_router();
            servers.spawn(listener::serve(
                listener,
                routes,
                listener::Protocol::Http2,
                connections.clone(),
            ));
        }
        drop(receiver);
        shutdown.await;
        let deadline = Instant::now() + shutdown_timeout;
        tracing::info!(
            timeout_secs = shutdown_timeout.as_secs(),
            "shutting down: no new requests; forwarding what is spooled"
        );
        connections.drain();
        let mut failure = None;
        let mut record = |result: Result<(), tokio::task::JoinError>| {
            if let Err(e) = result {
                failure = Some(e);
            }
        };
        let drained = tokio::time::timeout_at(deadline.into(), async {
            while let Some(result) = servers.join_next().await {
                record(result);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                open = connections.len(),
                "requests still in progress at the shutdown deadline; closing their connections"
            );
            connections.close_all();
            while let Some(result) = servers.join_next().await {
                record(result);
            }
        }
        control.stop(deadline);
        // The forwarder may be inside a send to an upstream that does not answer: it gets the
        // rest of the time; what it has not delivered stays spooled.
        if tokio::time::timeout_at(deadline.into(), forward_ended)
            .await
            .is_ok()
        {
            let _ = forward_thread.join();
        } else {
            tracing::warn!(
                "the upstream did not answer before the shutdown deadline; undelivered records stay spooled"
            );
        }
        let _ = tokio::task::spawn_blocking(move || appender_thread.join()).await;
        tracing::info!("stopped");
        match failure {
            Some(e) => Err(ServeError::Listener(e)),
            None => Ok(()),
        }
    }
}

/// The assembly stage for `--to langfuse` with a window above 0 (see [`crate::assemble`]).
fn assembly(config: &ServeConfig, shape: crate::shape::Shape) -> Option<crate::forward::Assembly> {
    let crate::shape::Shape::Langfuse(mode) = shape else {
        return None;
    };
    let window = config.assemble_window_secs;
    if !(window.is_finite() && window > 0.0) {
        return None;
    }
    Some(crate::forward::Assembly {
        assembler: crate::assemble::Assembler::new(
            Duration::from_secs_f64(window.min(86_400.0)),
            config.assemble_max_traces,
        ),
        finisher: crate::assemble::Finisher::new(mode, config.assemble_max_traces.clamp(1, 10_000)),
    })
}

/// Where the rest of the Langfuse API goes: a Langfuse upstream (`--to langfuse`, `--to
/// ingestion`) gets it passed through; local mode and a collector answer locally.
fn api(config: &ServeConfig) -> Result<crate::sources::api::Api, ServeError> {
    use crate::sources::api::{Api, Upstream};
    Ok(match config.destination()? {
        config::Destination::Langfuse | config::Destination::Ingestion => {
            Api::Upstream(Arc::new(Upstream::new(
                &config.upstream_url()?,
                Duration::from_secs(config.upstream_timeout_secs.max(1) * 3),
                config.max_body_bytes,
                config.max_decompressed_bytes as u64,
            )))
        }
        _ => Api::Local,
    })
}
