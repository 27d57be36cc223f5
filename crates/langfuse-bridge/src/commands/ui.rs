//! The local web trace viewer: an axum [`Router`] over a [`Store`], and the `ui` command
//! that serves it alone (`langfuse-bridge ui --db PATH --http ADDR`) behind the
//! [`crate::sources::access`] layer: with `--public-key`/`--secret-key` the browser asks for
//! them (user name = public key, password = secret key); without keys it listens on loopback
//! only (unless `--allow-remote-without-auth`); other host names than loopback, IP addresses
//! and `--allowed-host` get 421.
//!
//! The page is one HTML file, one stylesheet and one script, embedded in the binary
//! (`include_str!`, no CDN, no build step). The script builds every element with
//! `textContent`, never `innerHTML` with data, and the responses carry a Content Security
//! Policy without inline scripts, so a prompt containing `<script>` is shown, not run.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the viewer (hash routes `#/traces`, `#/trace/ID`, `#/sessions`, `#/session/ID`, `#/users`) |
//! | `GET /assets/app.js`, `/assets/app.css` | script and stylesheet |
//! | `GET /api/traces?name=&user=&session=&tag=&since=&until=&level=&score=&sort=&order=&limit=&offset=` | `{"traces":[…],"total":N,"totalCapped":bool}` (counts stop at 1,000) |
//! | `GET /api/traces/{id}` | one trace with observations and scores (404 when unknown) |
//! | `GET /api/sessions`, `/api/users` (`limit`, `offset`) | session and user summaries |
//! | `GET /api/sessions/{id}` | the session's traces in order, with input and output |
//! | `GET /api/changes` | `{"seq":N}`: grows when new data arrives (the page polls it) |
//!
//! `/api/traces` takes at most [`MAX_FILTER_CONDITIONS`] `tag` and `score` parameters
//! together (400 beyond). A failing query answers 500 with a generic message; the store's
//! error (which names the database file) goes to the log, never into an answer.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use langfuse_store::{MAX_FILTER_CONDITIONS, Store, StoreError, TraceFilter};
use serde::Serialize;

use crate::commands::traces::{parse_level, parse_time};
use crate::sources::access::{self, AccessError, AccessPolicy, Secret};
use crate::sources::listener;

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");

/// Same-origin only, no inline script or style: user data can never become code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Arguments of `ui`.
#[derive(Debug, Clone, clap::Args)]
pub struct UiArgs {
    /// The trace store (created when missing).
    #[arg(long, default_value = langfuse_store::DEFAULT_DB_PATH)]
    pub db: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub http: SocketAddr,
    /// Connection limits.
    #[command(flatten)]
    pub connections: crate::serve::config::ConnectionArgs,
    /// Public key: with the secret key, the viewer asks for them (Basic auth: user name =
    /// public key, password = secret key).
    #[arg(long, value_name = "KEY", env = "LANGFUSE_PUBLIC_KEY")]
    pub public_key: Option<String>,
    /// Secret key (never printed).
    #[arg(
        long,
        value_name = "KEY",
        env = "LANGFUSE_SECRET_KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<Secret>,
    /// Who may reach the listener.
    #[command(flatten)]
    pub exposure: crate::serve::config::ExposureArgs,
}

impl UiArgs {
    /// The keys, if both are given; an error if only one is.
    pub fn keys(&self) -> Result<Option<(&str, &str)>, AccessError> {
        match (&self.public_key, &self.secret_key) {
            (Some(p), Some(s)) => Ok(Some((p.as_str(), s.expose()))),
            (None, None) => Ok(None),
            _ => Err(AccessError::PartialKeys),
        }
    }
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

/// The viewer's routes over `store`, to mount at `/`.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(app_js))
        .route("/assets/app.css", get(app_css))
        .route("/api/traces", get(list_traces))
        .route("/api/traces/{id}", get(one_trace))
        .route("/api/sessions", get(list_sessions))
        .route("/api/sessions/{id}", get(one_session))
        .route("/api/users", get(list_users))
        .route("/api/changes", get(changes))
        .with_state(store)
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
    let keys = args.keys()?;
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
        .protect(router(store));
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
    let sign_in = if args.public_key.is_some() {
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

fn with_headers(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn index() -> Response {
    with_headers("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    with_headers("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    with_headers("text/css; charset=utf-8", APP_CSS)
}

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let mut response = crate::sources::http::json_response(status, value);
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn error_response(status: StatusCode, message: &str) -> Response {
    json_response(status, &serde_json::json!({ "error": message }))
}

/// Runs a store query off the async threads.
async fn blocking<T: Serialize + Send + 'static>(
    store: Store,
    query: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(move || query(&store)).await {
        Ok(Ok(value)) => json_response(StatusCode::OK, &value),
        Ok(Err(e)) => store_error_response(&e),
        Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "query task failed"),
    }
}

/// The answer to a failed store call: the error is logged (it names the database file and
/// SQLite's message), the client gets a generic message.
fn store_error_response(e: &StoreError) -> Response {
    if let StoreError::TooManyConditions { limit, .. } = e {
        return error_response(
            StatusCode::BAD_REQUEST,
            &format!("at most {limit} tag and score filters are allowed"),
        );
    }
    tracing::error!(error = %e, "a viewer query failed");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the trace store failed; see the server log",
    )
}

/// Decodes `application/x-www-form-urlencoded` pairs (`+` is a space, `%XX` a byte).
fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len()
                    && bytes[i + 1].is_ascii_hexdigit()
                    && bytes[i + 2].is_ascii_hexdigit() =>
                {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("0");
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The trace filter of `/api/traces` query parameters; empty values are ignored.
fn filter_from_query(raw: Option<&str>) -> Result<TraceFilter, String> {
    let mut filter = TraceFilter::default();
    for (key, value) in query_pairs(raw) {
        let value = value.trim().to_owned();
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "name" => filter.name = Some(value),
            "user" => filter.user_id = Some(value),
            "session" => filter.session_id = Some(value),
            "tag" => filter.tags.push(value),
            "since" => filter.since_ms = Some(parse_time(&value)?),
            "until" => filter.until_ms = Some(parse_time(&value)?),
            "level" => filter.min_level = Some(parse_level(&value)?),
            "score" => filter.scores.push(value.parse()?),
            "sort" => filter.sort = value.parse()?,
            "order" => filter.ascending = value == "asc",
            "limit" => {
                filter.limit = value
                    .parse::<u32>()
                    .map_err(|_| format!("limit {value:?} is not a number"))?
                    .min(500);
            }
            "offset" => {
                filter.offset = value
                    .parse()
                    .map_err(|_| format!("offset {value:?} is not a number"))?;
            }
            _ => {}
        }
    }
    if filter.limit == 0 {
        filter.limit = 50;
    }
    if filter.conditions() > MAX_FILTER_CONDITIONS {
        return Err(format!(
            "at most {MAX_FILTER_CONDITIONS} tag and score filters are allowed ({} given)",
            filter.conditions()
        ));
    }
    Ok(filter)
}

/// The viewer counts matching traces up to this many ("1000+" beyond).
const COUNT_CAP: u64 = 1_000;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TracePage {
    traces: Vec<langfuse_store::TraceSummary>,
    total: u64,
    total_capped: bool,
    limit: u32,
    offset: u32,
}

async fn list_traces(State(store): State<Store>, RawQuery(raw): RawQuery) -> Response {
    let filter = match filter_from_query(raw.as_deref()) {
        Ok(f) => f,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e),
    };
    blocking(store, move |s| {
        let total = s.count_traces_up_to(&filter, COUNT_CAP)?;
        Ok(TracePage {
            traces: s.list_traces(&filter)?,
            total,
            total_capped: total >= COUNT_CAP,
            limit: filter.limit,
            offset: filter.offset,
        })
    })
    .await
}

async fn one_trace(State(store): State<Store>, Path(id): Path<String>) -> Response {
    match tokio::task::spawn_blocking(move || store.trace(&id)).await {
        Ok(Ok(Some(trace))) => json_response(StatusCode::OK, &trace),
        Ok(Ok(None)) => error_response(StatusCode::NOT_FOUND, "no such trace"),
        Ok(Err(e)) => store_error_response(&e),
        Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "query task failed"),
    }
}

fn page(raw: Option<&str>) -> (u32, u32) {
    let mut limit = 100;
    let mut offset = 0;
    for (k, v) in query_pairs(raw) {
        match k.as_str() {
            "limit" => limit = v.parse::<u32>().unwrap_or(100).clamp(1, 500),
            "offset" => offset = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    (limit, offset)
}

async fn list_sessions(State(store): State<Store>, RawQuery(raw): RawQuery) -> Response {
    let (limit, offset) = page(raw.as_deref());
    blocking(store, move |s| s.sessions(limit, offset)).await
}

async fn list_users(State(store): State<Store>, RawQuery(raw): RawQuery) -> Response {
    let (limit, offset) = page(raw.as_deref());
    blocking(store, move |s| s.users(limit, offset)).await
}

/// A session page: its traces oldest first, each with input and output.
async fn one_session(State(store): State<Store>, Path(id): Path<String>) -> Response {
    blocking(store, move |s| {
        let filter = TraceFilter {
            session_id: Some(id),
            ascending: true,
            limit: 200,
            ..TraceFilter::default()
        };
        let mut traces = Vec::new();
        for summary in s.list_traces(&filter)? {
            if let Some(detail) = s.trace(&summary.id)? {
                traces.push(serde_json::json!({
                    "id": summary.id,
                    "name": summary.name,
                    "timestamp": summary.timestamp,
                    "userId": summary.user_id,
                    "latency": summary.latency,
                    "totalCost": summary.total_cost,
                    "level": summary.level,
                    "input": detail.input,
                    "output": detail.output,
                }));
            }
        }
        Ok(traces)
    })
    .await
}

async fn changes(State(store): State<Store>) -> Response {
    blocking(store, |s| Ok(serde_json::json!({ "seq": s.change_seq()? }))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_percent_and_plus_decoded() {
        let pairs = query_pairs(Some("name=a+b&score=rel%3E%3D0.5&tag=%ZZ&x"));
        assert_eq!(pairs[0], ("name".into(), "a b".into()));
        assert_eq!(pairs[1], ("score".into(), "rel>=0.5".into()));
        assert_eq!(pairs[2], ("tag".into(), "%ZZ".into()));
        assert_eq!(pairs[3], ("x".into(), String::new()));
    }

    #[test]
    fn filter_parameters_map_to_the_store_filter() {
        let f = filter_from_query(Some(
            "user=u1&tag=a&tag=b&level=error&sort=cost&order=asc&limit=9999",
        ))
        .unwrap();
        assert_eq!(f.user_id.as_deref(), Some("u1"));
        assert_eq!(f.tags, ["a", "b"]);
        assert_eq!(f.sort, langfuse_store::SortKey::Cost);
        assert!(f.ascending);
        assert_eq!(f.limit, 500);
        assert!(filter_from_query(Some("score=broken")).is_err());
    }
}

/// The module docs' example, as a test (the module is internal to the crate).
#[cfg(test)]
mod doc_examples {
    #[test]
    fn the_router_mounts_behind_an_access_policy() {
        // Built, not run: it would serve forever.
        async fn demo() -> Result<(), Box<dyn std::error::Error>> {
            let store = langfuse_store::Store::open("langfuse-traces.db")?;
            // Mount at `/` on any axum listener, behind an access policy (the router itself
            // checks nothing).
            let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
            let policy = crate::sources::access::AccessPolicy::new(None, listener.local_addr()?);
            let app = policy.protect(super::router(store));
            axum::serve(listener, app).await?;
            Ok(())
        }
        drop(demo());
    }
}
