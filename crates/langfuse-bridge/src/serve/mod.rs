//! `langfuse-bridge serve`: receives OTLP (HTTP and gRPC) and Langfuse API calls from any
//! language, appends each request to a durable [`spool`](crate::spool) before answering, and
//! forwards the records to Langfuse, Langfuse ingestion or an OTLP collector.
//!
//! | module | what |
//! |---|---|
//! | [`config`] | [`ServeConfig`]: TOML file, flags, environment |
//! | [`args`] | the `serve` command line |
//! | [`receive`] | the receive path: limits, decompression, content types, validation |
//! | [`auth`] | configured keys or each client's credentials |
//! | [`http`], [`grpc`] | the listeners |
//! | [`forward`] | spool → units → [`Destination`] → cursor commit |
//! | [`destination`] | Langfuse, ingestion and OTLP destinations over `langfuse-otel-transport`; the local store (its viewer mounted at `/`) |
//! | [`metrics`] | `/metrics` |
//!
//! The whole service runs in-process, so tests drive it like the binary:
//!
//! ```no_run
//! use langfuse_bridge::serve::{Bridge, config::ServeConfig};
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
pub mod auth;
pub mod config;
pub mod destination;
pub mod forward;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod receive;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use langfuse_otel_core::Translator;
use langfuse_otel_core::translate::TranslateOptions;

pub use self::config::ServeConfig;
pub use self::forward::{Destination, Shape, Unit};
use self::forward::{ForwardControl, Forwarder, Shaper};
use self::metrics::Metrics;
use self::receive::Limits;
use crate::spool::{Appender, AppenderThread, Spool, SpoolError};

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
    /// A server failed while running.
    #[error("server error: {0}")]
    Server(String),
}

/// State shared by the listeners.
pub struct Receiver {
    appender: Appender,
    auth: auth::Auth,
    metrics: Arc<Metrics>,
    limits: Limits,
    spool: Spool,
    retry_after_secs: u64,
}

/// The bridge, configured but not yet listening.
pub struct Bridge {
    config: ServeConfig,
    destination: Option<Box<dyn Destination>>,
}

/// A new UUID v4 (score ids the client did not give).
pub fn new_id() -> String {
    langfuse_otel_transport::new_uuid()
}

impl Bridge {
    /// A bridge with this configuration.
    pub fn new(config: ServeConfig) -> Bridge {
        Bridge {
            config,
            destination: None,
        }
    }

    /// Forwards to `destination` instead of the configured upstream (a local store, a test
    /// double). Its [`Destination::shape`] decides what it receives.
    pub fn with_destination(mut self, destination: Box<dyn Destination>) -> Bridge {
        self.destination = Some(destination);
        self
    }

    /// Opens the spool and binds the listeners.
    pub async fn bind(self) -> Result<BoundBridge, ServeError> {
        let config = self.config;
        let mut viewer = None;
        let destination = match self.destination {
            Some(d) => d,
            None => {
                config.validate()?;
                if config.destination()? == config::Destination::Local {
                    let store = langfuse_store::Store::open(&config.store).map_err(|e| {
                        ServeError::Config(config::ConfigError::Invalid(e.to_string()))
                    })?;
                    viewer = Some(store.clone());
                    Box::new(destination::LocalDestination::new(store))
                } else {
                    destination::from_config(&config)?
                }
            }
        };
        let cursor = match destination.shape() {
            Shape::Langfuse(_) => "langfuse",
            Shape::Events => "events",
            Shape::OtlpOnly => "otlp",
        };
        let (spool, recovery) = Spool::open(config.spool_config(), &[cursor])?;
        if recovery.truncated_bytes > 0 {
            tracing::warn!(bytes = recovery.truncated_bytes, "cut a torn spool tail");
        }
        tracing::info!(records = recovery.records, "spool opened");
        let redelivered = recovery.in_flight.get(cursor).copied().unwrap_or(0);
        let reader = spool.reader(cursor)?;
        let (appender, appender_thread) = Appender::start(spool.clone())?;
        let keys = config.keys()?;
        let metrics = Arc::new(Metrics::new());
        let receiver = Arc::new(Receiver {
            appender,
            auth: auth::Auth::new(keys.as_ref().map(|(p, s)| (p.as_str(), s.as_str()))),
            metrics: Arc::clone(&metrics),
            limits: Limits {
                max_body_bytes: config.max_body_bytes,
                max_decompressed_bytes: config.max_decompressed_bytes,
            },
            spool: spool.clone(),
            retry_after_secs: config.retry_after_secs.max(1),
        });
        let http = tokio::net::TcpListener::bind(config.http)
            .await
            .map_err(|source| ServeError::Bind {
                addr: config.http,
                source,
            })?;
        let grpc = match config.grpc {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind { addr, source })?,
            ),
            None => None,
        };
        let translator = Translator::with_options(TranslateOptions {
            compatibility: config.compat.into(),
            ..TranslateOptions::default()
        });
        let forwarder = Forwarder {
            reader,
            spool,
            shaper: Shaper::new(destination.shape(), translator),
            destination,
            metrics: Arc::clone(&metrics),
            control: Arc::new(ForwardControl::default()),
            send_timeout: Duration::from_secs(config.upstream_timeout_secs.max(1)),
            redelivered,
            dead_letters: crate::dead_letter::DeadLetters::new(&config.spool, cursor),
        };
        Ok(BoundBridge {
            http,
            grpc,
            viewer,
            receiver,
            appender_thread,
            forwarder,
            metrics,
            shutdown_timeout: Duration::from_secs(config.shutdown_timeout_secs),
        })
    }

    /// Binds and runs until `shutdown` resolves (see [`BoundBridge::run`]).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        self.bind().await?.run(shutdown).await
    }
}

/// A bridge with its listeners bound.
pub struct BoundBridge {
    http: tokio::net::TcpListener,
    /// The store whose viewer is mounted at `/` (`--to local`).
    viewer: Option<langfuse_store::Store>,
    grpc: Option<tokio::net::TcpListener>,
    receiver: Arc<Receiver>,
    appender_thread: AppenderThread,
    forwarder: Forwarder,
    metrics: Arc<Metrics>,
    shutdown_timeout: Duration,
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

    /// Serves until `shutdown` resolves; then stops accepting, forwards what it can within
    /// the shutdown timeout, syncs the spool and returns (the rest stays spooled).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let BoundBridge {
            http,
            grpc,
            viewer,
            receiver,
            appender_thread,
            forwarder,
            metrics: _,
            shutdown_timeout,
        } = self;
        let control = Arc::clone(&forwarder.control);
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
            })
            .map_err(|e| ServeError::Server(format!("cannot start the forwarder: {e}")))?;

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let mut app = http::router(Arc::clone(&receiver));
        if let Some(store) = viewer {
            app = app.merge(crate::ui::router(store));
        }
        let http_server = axum::serve(http, app).with_graceful_shutdown(wait_stop(stop_rx.clone()));
        let http_task = tokio::spawn(async move { http_server.await });
        let grpc_task = grpc.map(|listener| {
            let service = grpc::service(Arc::clone(&receiver));
            let stop = wait_stop(stop_rx.clone());
            tokio::spawn(async move {
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(
                        tonic::transport::server::TcpIncoming::from(listener),
                        stop,
                    )
                    .await
            })
        });
        drop(receiver);
        shutdown.await;
        tracing::info!("shutting down: no new requests; forwarding what is spooled");
        let _ = stop_tx.send(true);
        let mut failure = None;
        match http_task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(format!("HTTP server: {e}")),
            Err(e) => failure = Some(format!("HTTP server task: {e}")),
        }
        if let Some(task) = grpc_task {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failure = Some(format!("gRPC server: {e}")),
                Err(e) => failure = Some(format!("gRPC server task: {e}")),
            }
        }
        control.stop(Instant::now() + shutdown_timeout);
        let _ = tokio::task::spawn_blocking(move || {
            let _ = forward_thread.join();
            appender_thread.join();
        })
        .await;
        tracing::info!("stopped");
        match failure {
            Some(f) => Err(ServeError::Server(f)),
            None => Ok(()),
        }
    }
}
