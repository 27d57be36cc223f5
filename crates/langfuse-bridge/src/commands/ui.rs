//! `langfuse-bridge ui --db PATH --http ADDR`: the local web trace viewer
//! ([`langfuse_local::viewer`]) served alone, behind the bridge's access layer: with
//! `--public-key`/`--secret-key` the browser asks for them (user name = public key, password =
//! secret key); without keys it listens on loopback only (unless
//! `--allow-remote-without-auth`); other host names than loopback, IP addresses and
//! `--allowed-host` get 421.

use std::net::SocketAddr;
use std::path::PathBuf;

use langfuse_local::{Store, StoreError};

use crate::sources::access::{self, AccessError, AccessPolicy};
use crate::sources::listener;
#[derive(Debug, Clone, clap::Args)]
pub struct UiArgs {
    /// The trace store (created when missing).
    #[arg(long, default_value = langfuse_local::DEFAULT_DB_PATH)]
    pub db: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub http: SocketAddr,
    /// Connection limits.
    #[command(flatten)]
    pub connections: crate::serve::config::ConnectionArgs,
    /// The keys the browser must present.
    #[command(flatten)]
    pub keys: crate::serve::config::KeyArgs,
    /// Who may reach the listener.
    #[command(flatten)]
    pub exposure: crate::serve::config::ExposureArgs,
}

/// Why `ui` stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UiError {
    /// The store cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A connection limit is not valid.
    #[error(transparent)]
    Config(#[from] crate::serve::config::ConfigError),
    /// The listener would be open to more than the arguments allow.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// Binding or serving failed.
    #[error("http {addr}: {source}")]
    Io {
        /// The listen address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Serves the viewer on `args.http` until the process is stopped. `ready` receives the bound
/// address (useful with port 0).
pub async fn serve(args: &UiArgs, ready: impl FnOnce(SocketAddr)) -> Result<(), UiError> {
    let c = &args.connections;
    let limits = crate::serve::config::connection_limits(
        c.max_connections,
        c.header_read_timeout
            .unwrap_or(listener::DEFAULT_HEADER_READ_TIMEOUT.as_secs()),
        c.body_read_timeout
            .unwrap_or(listener::DEFAULT_BODY_READ_TIMEOUT.as_secs()),
        c.idle_timeout
            .unwrap_or(listener::DEFAULT_IDLE_TIMEOUT.as_secs()),
    )?;
    let keys = args.keys.keys()?;
    access::check_exposure(
        &[("HTTP", args.http)],
        keys.is_some(),
        args.exposure.allow_remote_without_auth,
    )?;
    let allowed_hosts = access::parse_allowed_hosts(&args.exposure.allowed_hosts)?;
    let store = Store::open(&args.db)?;
    let io = |source| UiError::Io {
        addr: args.http,
        source,
    };
    let tcp = tokio::net::TcpListener::bind(args.http).await.map_err(io)?;
    let addr = tcp.local_addr().map_err(io)?;
    let app = AccessPolicy::new(keys, addr)
        .allow_hosts(allowed_hosts)
        .protect(langfuse_local::viewer::router(store));
    ready(addr);
    let connections = listener::Connections::new(limits);
    listener::serve(tcp, app, listener::Protocol::Http1, connections).await;
    Ok(())
}

/// Runs `ui` on a fresh Tokio runtime (the blocking entry point of the command).
pub fn run(args: &UiArgs) -> Result<(), UiError> {
    // Connection limits say when they are hit: on stderr, at RUST_LOG's level (else info).
    let level = std::env::var("RUST_LOG")
        .ok()
        .filter(|l| !l.trim().is_empty());
    let filter = crate::logging::log_filter(level.as_deref().unwrap_or("info"))?;
    crate::logging::init_logging(crate::serve::config::LogFormat::Text, filter);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| UiError::Io {
            addr: args.http,
            source,
        })?;
    let sign_in = if args.keys.public_key.is_some() {
        "; sign in with the public key as user name and the secret key as password"
    } else {
        ""
    };
    runtime.block_on(serve(args, |addr| {
        println!(
            "langfuse-bridge ui: http://{addr}/ (store {}{sign_in})",
            langfuse_otel_core::terminal::escape_control(&args.db.display().to_string())
        );
    }))
}

/// The module docs' example, as a test (the module is internal to the crate).
#[cfg(test)]
mod doc_examples {
    #[test]
    fn the_router_mounts_behind_an_access_policy() {
        // Built, not run: it would serve forever.
        async fn demo() -> Result<(), Box<dyn std::error::Error>> {
            let store = langfuse_local::Store::open("langfuse-traces.db")?;
            // Mount at `/` on any axum listener, behind an access policy (the router itself
            // checks nothing).
            let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
            let policy = crate::sources::access::AccessPolicy::new(None, listener.local_addr()?);
            let app = policy.protect(langfuse_local::viewer::router(store));
            axum::serve(listener, app).await?;
            Ok(())
        }
        drop(demo());
    }
}
