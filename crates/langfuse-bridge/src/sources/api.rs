//! The rest of Langfuse's public API, for the calls the SDKs make besides sending data
//! (`auth_check()` → `GET /api/public/projects`, `get_prompt()`, datasets, reading traces, …).
//!
//! - **With a Langfuse upstream** (`--to langfuse`, `--to ingestion`): every `/api/public/*`
//!   request the bridge does not take itself is passed through to the upstream with the
//!   client's own credentials and headers (hop-by-hop ones and `Host` excepted), the request
//!   body up to `--max-body-bytes` (413 beyond), the answer streamed back as it arrives (at
//!   most `--max-decompressed-bytes`; a longer one is cut and the cut logged), each call
//!   bounded by the upstream timeout (504 when the upstream does not answer, 502 when it cannot
//!   be reached). Bodies are never logged. `GET /api/public/health` is the upstream's own.
//! - **Local mode** (and `--to otlp`): `GET /api/public/projects` answers the one local project,
//!   so `auth_check()` succeeds; `/api/public/health` answers `OK`; every other call gets 404
//!   with a Langfuse-shaped error body (`{"error":"NotFoundError","message":…}`) saying the
//!   bridge does not serve it here.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use serde_json::json;

use langfuse_local::viewer::json_response;

/// Where the API calls go.
#[derive(Debug, Clone)]
pub enum Api {
    /// Passed through to this Langfuse base URL.
    Upstream(Arc<Upstream>),
    /// Answered locally (local mode, or an upstream that is not Langfuse).
    Local,
}

/// A Langfuse upstream for passthrough.
#[derive(Debug)]
pub struct Upstream {
    base: String,
    agent: ureq::Agent,
    max_request: usize,
    max_response: u64,
}

impl Upstream {
    /// Passthrough to `base` (a Langfuse base URL without trailing `/`).
    pub fn new(base: &str, timeout: Duration, max_request: usize, max_response: u64) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .build()
            .into();
        Upstream {
            base: base.trim_end_matches('/').to_owned(),
            agent,
            max_request,
            max_response,
        }
    }
}

/// The API routes (more specific routes of the receiver win over these).
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/api/public/health", get(health))
        .route("/api/public/{*rest}", any(call))
        .with_state(api)
}

fn not_served(path: &str) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({
            "error": "NotFoundError",
            "message": format!(
                "langfuse-bridge in local mode does not serve {path}: it takes OTLP, ingestion and scores, and answers /api/public/projects and /api/public/health; point LANGFUSE_BASE_URL at Langfuse for the rest"
            ),
        }),
    )
}

async fn health(State(api): State<Api>, request: Request) -> Response {
    match api {
        Api::Local => json_response(
            StatusCode::OK,
            &json!({"status": "OK", "version": concat!("langfuse-bridge ", env!("CARGO_PKG_VERSION"))}),
        ),
        Api::Upstream(upstream) => pass(upstream, request).await,
    }
}

async fn call(State(api): State<Api>, request: Request) -> Response {
    match api {
        Api::Local => {
            let path = request.uri().path().to_owned();
            if path == "/api/public/projects" && request.method() == axum::http::Method::GET {
                json_response(
                    StatusCode::OK,
                    &json!({"data": [{
                        "id": "local",
                        "name": "langfuse-bridge local mode",
                        "organization": {"id": "local", "name": "local"},
                        "metadata": {},
                    }]}),
                )
            } else {
                not_served(&path)
            }
        }
        Api::Upstream(upstream) => pass(upstream, request).await,
    }
}

/// Request headers not passed on (hop-by-hop, and the ones the client library sets itself).
const SKIPPED: [&str; 8] = [
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "proxy-authorization",
    "content-length",
];

async fn pass(upstream: Arc<Upstream>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, upstream.max_request).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"message": "request body over the limit"}),
            );
        }
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let url = format!("{}{path_and_query}", upstream.base);
    let method = parts.method.clone();
    let headers = parts.headers.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let (head_tx, head_rx) = tokio::sync::oneshot::channel::<Result<(u16, HeaderMap), u16>>();
    tokio::task::spawn_blocking(move || {
        forward_blocking(&upstream, &method, &url, &headers, body, head_tx, tx);
    });
    match head_rx.await {
        Ok(Ok((status, headers))) => {
            let mut response = Response::new(Body::new(ChannelBody { rx }));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            *response.headers_mut() = headers;
            response
        }
        Ok(Err(status)) => json_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            &json!({"message": if status == 504 {
                "the Langfuse upstream did not answer in time"
            } else {
                "the Langfuse upstream cannot be reached"
            }}),
        ),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// The answer's body: chunks from the blocking reader as they arrive.
struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|r| r.map(http_body::Frame::data)))
    }
}

#[allow(clippy::too_many_arguments)]
fn forward_blocking(
    upstream: &Upstream,
    method: &axum::http::Method,
    url: &str,
    headers: &HeaderMap,
    body: Bytes,
    head: tokio::sync::oneshot::Sender<Result<(u16, HeaderMap), u16>>,
    chunks: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut builder = ureq::http::Request::builder()
        .method(method.as_str())
        .uri(url);
    for (name, value) in headers {
        if SKIPPED.contains(&name.as_str()) {
            continue;
        }
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let request = match builder.body(body.to_vec()) {
        Ok(r) => r,
        Err(_) => {
            let _ = head.send(Err(502));
            return;
        }
    };
    let mut response = match upstream.agent.run(request) {
        Ok(r) => r,
        Err(e) => {
            let timed_out = matches!(e, ureq::Error::Timeout(_));
            tracing::warn!(error = %e, "API passthrough: the upstream did not answer");
            let _ = head.send(Err(if timed_out { 504 } else { 502 }));
            return;
        }
    };
    let mut out = HeaderMap::new();
    for (name, value) in response.headers() {
        let skip = matches!(
            name.as_str(),
            "connection" | "keep-alive" | "transfer-encoding" | "content-length"
        );
        if !skip
            && let (Ok(n), Ok(v)) = (
                header::HeaderName::from_bytes(name.as_str().as_bytes()),
                header::HeaderValue::from_bytes(value.as_bytes()),
            )
        {
            out.append(n, v);
        }
    }
    if head.send(Ok((response.status().as_u16(), out))).is_err() {
        return;
    }
    let mut reader = response
        .body_mut()
        .with_config()
        .limit(upstream.max_response)
        .reader();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => {
                if chunks
                    .blocking_send(Ok(Bytes::copy_from_slice(&buffer[..n])))
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "API passthrough: the answer was cut");
                let _ = chunks.blocking_send(Err(e));
                return;
            }
        }
    }
}
