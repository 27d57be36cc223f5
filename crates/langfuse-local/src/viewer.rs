//! The local web trace viewer: an axum [`Router`] over a [`Store`] (feature `viewer`). The
//! bridge serves it at `/` of `serve --to local` and alone with `langfuse-bridge ui --db PATH --http ADDR`, behind its access layer: with `--public-key`/`--secret-key` the browser asks for
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
//! `/api/traces` takes at most [`MAX_FILTER_CONDITIONS`](crate::MAX_FILTER_CONDITIONS) `tag` and `score` parameters
//! together (400 beyond). A failing query answers 500 with a generic message; the store's
//! error (which names the database file) goes to the log, never into an answer.

//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use langfuse_local::Store;
//!
//! let store = Store::open("langfuse-traces.db")?;
//! // The router checks nothing: keep it on loopback, or put an access layer in front.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, langfuse_local::viewer::router(store)).await?;
//! # Ok(()) }
//! ```

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::params;
use crate::{Store, StoreError, TraceFilter};

const INDEX_HTML: &str = include_str!("viewer/index.html");
const APP_JS: &str = include_str!("viewer/app.js");
const APP_CSS: &str = include_str!("viewer/app.css");

/// Same-origin only, no inline script or style: user data can never become code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Arguments of `ui`.
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

/// `value` as a JSON answer with `status`, marked `nosniff` (`null` if it cannot be
/// serialized, which a `serde_json::Value` always can): the one JSON answer of the viewer's
/// API, which the bridge's receiving endpoints use too.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
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

/// The viewer counts matching traces up to this many ("1000+" beyond).
const COUNT_CAP: u64 = 1_000;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TracePage {
    traces: Vec<crate::TraceSummary>,
    total: u64,
    total_capped: bool,
    limit: u32,
    offset: u32,
}

async fn list_traces(State(store): State<Store>, RawQuery(raw): RawQuery) -> Response {
    let filter = match params::filter_from_query(raw.as_deref()) {
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

async fn list_sessions(State(store): State<Store>, RawQuery(raw): RawQuery) -> Response {
    let (limit, offset) = params::page_from_query(raw.as_deref());
    blocking(store, move |s| s.sessions(limit, offset)).await
}

async fn list_users(State(store): State<Store>, RawQuery(raw): RawQuery) -> Response {
    let (limit, offset) = params::page_from_query(raw.as_deref());
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
