//! The HTTP listener (axum): OTLP/HTTP, Langfuse's OTLP, ingestion and scores endpoints,
//! `/health` and `/metrics`. Every accepting answer is sent after the durable append.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use serde_json::{Value, json};

use super::receive::{self, ReceiveError};
use super::receiver::{Receiver, now_ms};
use crate::metrics::Endpoint;
use langfuse_local::viewer::json_response;
use langfuse_spool::RecordKind;

/// The routes, over the shared receiver state.
pub fn router(state: Arc<Receiver>) -> Router {
    Router::new()
        .route("/v1/traces", post(otlp_http))
        .route("/v1/logs", post(otlp_logs))
        .route("/v1/metrics", post(otlp_metrics))
        .route("/api/public/otel/v1/traces", post(langfuse_otlp))
        .route("/api/public/ingestion", post(ingestion))
        .route("/api/public/scores", post(scores))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Counts a request's outcome and answers it: `accepted` gives the items accepted and the
/// answer; an error gets its status (and `Retry-After` when the spool is full).
fn settle<T>(
    state: &Receiver,
    endpoint: Endpoint,
    started: Instant,
    result: Result<T, ReceiveError>,
    accepted: impl FnOnce(T) -> (u64, Response),
) -> Response {
    match result {
        Ok(value) => {
            let (items, response) = accepted(value);
            state.metrics.accepted(endpoint, items, started.elapsed());
            response
        }
        Err(e) => {
            state
                .metrics
                .rejected(endpoint, e.reason(), started.elapsed());
            error_response(state, &e)
        }
    }
}

fn error_response(state: &Receiver, e: &ReceiveError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = json_response(status, &json!({ "message": e.to_string() }));
    if matches!(e, ReceiveError::SpoolFull | ReceiveError::Unavailable)
        && let Ok(v) = HeaderValue::from_str(&state.retry_after_secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    if matches!(e, ReceiveError::Unauthorized) {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"langfuse-bridge\""),
        );
    }
    // Answered before the body was read: the connection cannot carry another request, so
    // say so, or a client's pool may send its next request into a closing socket.
    if matches!(
        e,
        ReceiveError::Unauthorized | ReceiveError::BodyTooLarge { .. }
    ) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads the body within the limit (413 beyond it, also for chunked bodies).
async fn read_body(
    state: &Receiver,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, ReceiveError> {
    let limit = state.limits.max_body_bytes;
    let declared = header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    let mut body = body;
    if declared.is_some_and(|n| n > limit as u64) {
        // Answered before the body is read: let the client finish sending (lingering close).
        crate::sources::linger::discard(body).await;
        return Err(ReceiveError::BodyTooLarge { limit });
    }
    match Limited::new(&mut body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            crate::sources::linger::discard(body).await;
            Err(ReceiveError::BodyTooLarge { limit })
        }
        Err(_) => Err(ReceiveError::Malformed(
            "cannot read the request body".into(),
        )),
    }
}

/// Authenticates, reads and decompresses a request body.
async fn prepare(
    state: &Receiver,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Option<String>, Bytes), ReceiveError> {
    let auth = match state.auth.check(header_str(headers, header::AUTHORIZATION)) {
        Ok(auth) => auth,
        Err(e) => {
            // Answered before the body is read: let the client finish sending.
            crate::sources::linger::discard(body).await;
            return Err(e);
        }
    };
    let raw = read_body(state, headers, body).await?;
    let decoded = receive::decompress(
        raw,
        header_str(headers, header::CONTENT_ENCODING),
        state.limits,
    )?;
    Ok((auth, decoded))
}

async fn otlp(
    state: Arc<Receiver>,
    endpoint: Endpoint,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    state.metrics.received(endpoint);
    let result = async {
        let kind = receive::otlp_kind(header_str(&headers, header::CONTENT_TYPE))?;
        let (auth, body) = prepare(&state, &headers, body).await?;
        let checked = receive::check_otlp(kind, body)?;
        state
            .append(kind, auth, checked.body, checked.spans)
            .await?;
        Ok::<_, ReceiveError>((kind, checked.spans, checked.rejected))
    }
    .await;
    settle(
        &state,
        endpoint,
        started,
        result,
        |(kind, spans, rejected)| {
            let response = {
                // OTLP's partial success: the refused spans are counted and named, the rest kept.
                let partial = (rejected.spans > 0).then(|| {
                    state
                        .metrics
                        .rejected_spans(endpoint, rejected.spans as u64);
                    tracing::warn!(
                        spans = rejected.spans,
                        reason = rejected.reason.as_deref().unwrap_or_default(),
                        "spans refused, the rest of the export kept"
                    );
                    (rejected.spans, rejected.message())
                });
                if kind == RecordKind::OtlpProtobuf {
                    // An ExportTraceServiceResponse (empty without partial success).
                    use opentelemetry_proto::tonic::collector::trace::v1 as collector;
                    let response = collector::ExportTraceServiceResponse {
                        partial_success: partial.map(|(spans, message)| {
                            collector::ExportTracePartialSuccess {
                                rejected_spans: i64::try_from(spans).unwrap_or(i64::MAX),
                                error_message: message,
                            }
                        }),
                    };
                    (
                        [(header::CONTENT_TYPE, "application/x-protobuf")],
                        Bytes::from(prost::Message::encode_to_vec(&response)),
                    )
                        .into_response()
                } else {
                    let body = match partial {
                        // int64 is a string in OTLP/JSON.
                        Some((spans, message)) => json!({"partialSuccess": {
                            "rejectedSpans": spans.to_string(), "errorMessage": message
                        }}),
                        None => json!({}),
                    };
                    json_response(StatusCode::OK, &body)
                }
            };
            (u64::from(spans), response)
        },
    )
}

/// `POST /v1/logs` and `POST /v1/metrics`: the same limits, credentials and spool rules as
/// traces. Logs are always spooled (the forwarder assembles coding-agent turns from them);
/// metrics only when the destination takes them (`--to otlp`), else validated and answered.
async fn otlp_signal(
    state: Arc<Receiver>,
    signal: receive::Signal,
    endpoint: Endpoint,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    state.metrics.received(endpoint);
    let result = async {
        let trace_kind = receive::otlp_kind(header_str(&headers, header::CONTENT_TYPE))?;
        let kind = receive::signal_kind(signal, trace_kind);
        let (auth, body) = prepare(&state, &headers, body).await?;
        let items = match signal {
            receive::Signal::Metrics => receive::check_metrics(kind, &body)?,
            _ => receive::check_logs(kind, &body)?,
        };
        if signal != receive::Signal::Metrics || state.keep_metrics {
            state.append(kind, auth, body, items).await?;
        }
        Ok::<_, ReceiveError>((trace_kind, items))
    }
    .await;
    settle(&state, endpoint, started, result, |(kind, items)| {
        let response = {
            if kind == RecordKind::OtlpProtobuf {
                // The Export*ServiceResponse without partial success: an empty message.
                (
                    [(header::CONTENT_TYPE, "application/x-protobuf")],
                    Bytes::new(),
                )
                    .into_response()
            } else {
                json_response(StatusCode::OK, &json!({}))
            }
        };
        (u64::from(items), response)
    })
}

async fn otlp_logs(State(state): State<Arc<Receiver>>, headers: HeaderMap, body: Body) -> Response {
    otlp_signal(
        state,
        receive::Signal::Logs,
        Endpoint::OtlpHttpLogs,
        headers,
        body,
    )
    .await
}

async fn otlp_metrics(
    State(state): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    otlp_signal(
        state,
        receive::Signal::Metrics,
        Endpoint::OtlpHttpMetrics,
        headers,
        body,
    )
    .await
}

async fn otlp_http(State(state): State<Arc<Receiver>>, headers: HeaderMap, body: Body) -> Response {
    otlp(state, Endpoint::OtlpHttp, headers, body).await
}

async fn langfuse_otlp(
    State(state): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    otlp(state, Endpoint::LangfuseOtlp, headers, body).await
}

async fn ingestion(State(state): State<Arc<Receiver>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let endpoint = Endpoint::Ingestion;
    state.metrics.received(endpoint);
    let result = async {
        receive::check_json_content_type(header_str(&headers, header::CONTENT_TYPE))?;
        let (auth, body) = prepare(&state, &headers, body).await?;
        let (valid, verdicts) = receive::split_ingestion(&body)?;
        let count = u32::try_from(valid.len()).unwrap_or(u32::MAX);
        if !valid.is_empty() {
            let stored = serde_json::to_vec(&json!({ "batch": valid }))
                .map_err(|e| ReceiveError::Malformed(e.to_string()))?;
            state
                .append(RecordKind::IngestionBatch, auth, Bytes::from(stored), count)
                .await?;
        }
        Ok::<_, ReceiveError>((verdicts, count))
    }
    .await;
    settle(&state, endpoint, started, result, |(verdicts, count)| {
        let response = {
            let mut successes = Vec::new();
            let mut errors = Vec::new();
            for v in verdicts {
                match v.error {
                    None => successes.push(json!({"id": v.id, "status": 201})),
                    Some(message) => errors.push(json!({
                        "id": v.id, "status": 400, "message": "Invalid request data", "error": message
                    })),
                }
            }
            json_response(
                StatusCode::MULTI_STATUS,
                &json!({"successes": successes, "errors": errors}),
            )
        };
        (u64::from(count), response)
    })
}

async fn scores(State(state): State<Arc<Receiver>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let endpoint = Endpoint::Scores;
    state.metrics.received(endpoint);
    let result = async {
        receive::check_json_content_type(header_str(&headers, header::CONTENT_TYPE))?;
        let (auth, body) = prepare(&state, &headers, body).await?;
        let single = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let scores = receive::parse_scores(&body)?;
        let ids: Vec<Value> = scores.iter().map(|s| s["id"].clone()).collect();
        let count = u32::try_from(scores.len()).unwrap_or(u32::MAX);
        let stored =
            serde_json::to_vec(&scores).map_err(|e| ReceiveError::Malformed(e.to_string()))?;
        state
            .append(RecordKind::Scores, auth, Bytes::from(stored), count)
            .await?;
        Ok::<_, ReceiveError>((single, ids))
    }
    .await;
    settle(&state, endpoint, started, result, |(single, ids)| {
        let response = {
            if single {
                json_response(StatusCode::OK, &json!({"id": ids[0]}))
            } else {
                json_response(
                    StatusCode::ACCEPTED,
                    &json!({"message": "Accepted", "ids": ids}),
                )
            }
        };
        (ids.len() as u64, response)
    })
}

async fn health(State(state): State<Arc<Receiver>>) -> Response {
    let stats = state.spool.stats();
    let reachable = match state
        .metrics
        .upstream_reachable
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        1 => Value::Bool(true),
        0 => Value::Bool(false),
        _ => Value::Null,
    };
    let not_ready = not_ready_reasons(&state);
    let mut body = json!({
        "status": if not_ready.is_empty() { "ok" } else { "not ready" },
        "ready": not_ready.is_empty(),
        "not_ready": not_ready,
        "upstream_reachable": reachable,
        "backlog_records": stats.backlog_records,
        "spool_bytes": stats.bytes,
        // Refused for good and kept for `langfuse-bridge dead-letter list|replay`.
        "dead_lettered_items": state.metrics.dead_lettered_total(),
        "dead_letter_files": dead_letter_files(&state),
    });
    if let Some(first) = not_ready.first() {
        body["reason"] = json!(first);
        return json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
    }
    json_response(StatusCode::OK, &body)
}

/// The dead-letter files waiting in the spool directory (entries not replayed yet).
fn dead_letter_files(state: &Receiver) -> usize {
    std::fs::read_dir(&state.dead_letter_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
                .count()
        })
        .unwrap_or(0)
}

/// Why the bridge cannot carry requests through now (empty when ready). No paths or internal
/// error text: `/health` is open to anyone who reaches the port; the log has the details.
fn not_ready_reasons(state: &Receiver) -> Vec<String> {
    let mut reasons = Vec::new();
    // The spool refuses appends (full, or an I/O error): requests get 429/503.
    if let Some(refusal) = state.spool.refusal() {
        reasons.push(refusal.to_string());
    }
    if let Some(store) = &state.store
        && let Err(e) = store.check_file()
    {
        reasons.push(
            if e.is_file_lost() {
                "the local store's database file was deleted or replaced; restart the bridge"
            } else {
                "the local store's database file cannot be checked"
            }
            .to_owned(),
        );
    }
    reasons
}

async fn metrics(State(state): State<Arc<Receiver>>) -> Response {
    let stats = state.spool.stats();
    state
        .metrics
        .spool_bytes
        .store(stats.bytes, std::sync::atomic::Ordering::Relaxed);
    state
        .metrics
        .spool_records
        .store(stats.backlog_records, std::sync::atomic::Ordering::Relaxed);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(now_ms()),
    )
        .into_response()
}
