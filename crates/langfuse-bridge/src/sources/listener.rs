//! The accept loop of the bridge's listeners (`serve`'s HTTP and gRPC, `ui`): any
//! [`axum::Router`] served over hyper with read timeouts, an idle timeout and one cap on the
//! connections of the whole process, so idle or stalled clients cannot take every file
//! descriptor and lock out a health check.
//!
//! | limit | what happens when it is hit |
//! |---|---|
//! | `header_read_timeout` | a new connection sent no complete request head in time, or a request head started and did not finish: the connection is closed |
//! | `body_read_timeout` | the body of a request stalled (no data for that long): `408` with `Connection: close` (gRPC: the stream fails) |
//! | `idle_timeout` | no request for that long on a kept-alive connection: it is closed |
//! | `max_connections` | a new connection makes the oldest idle one close (hyper's graceful shutdown: an idle one at once); when every one is busy, the new one is closed and the oldest is asked to close after its request (dropped if still open an idle timeout later) |
//!
//! Requests carry the peer address as [`axum::extract::ConnectInfo`]`<SocketAddr>`. Each
//! limit is logged when hit (warnings at most once per 10 s, with the number left out; idle
//! closes, which are ordinary, at debug level). An accept error (`EMFILE`: out of file
//! descriptors) is logged, makes the oldest idle connection close, and backs off instead of
//! spinning.
//!
//! Shutdown is in two steps, so the caller bounds it: [`Connections::drain`] stops the accept
//! loops and asks every connection to close gracefully (idle ones close at once, in-flight
//! requests finish); [`Connections::close_all`] drops what is still open.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

/// Default [`ConnectionLimits::header_read_timeout`]: clients send a request head at once;
/// 10 s is generous on a slow link and short enough to shed silent connections.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ConnectionLimits::body_read_timeout`] (the longest pause inside a body).
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ConnectionLimits::idle_timeout`]: longer than most clients' pools keep a
/// connection (so the client, not the bridge, usually closes it first).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// File descriptors kept free of connections for the spool, the store, upstream clients and
/// the runtime.
pub const FD_RESERVE: u64 = 128;
/// The default connection cap never exceeds this, however high the descriptor limit.
pub const MAX_DEFAULT_CONNECTIONS: usize = 4096;

/// Warnings of one kind are logged at most this often.
const LOG_EVERY_MS: u64 = 10_000;
/// A connection asked to close that is idle and still open after this is dropped (an HTTP/2
/// peer that never answers the GOAWAY's ping).
const CLOSE_GRACE_MS: u64 = 1_000;
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The limits every connection of a [`Connections`] set lives under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most open connections, all listeners together.
    pub max_connections: usize,
    /// Time allowed for a request head: from the accept on a new connection, from its first
    /// byte on a kept-alive one.
    pub header_read_timeout: Duration,
    /// Longest pause while reading a request body.
    pub body_read_timeout: Duration,
    /// Longest time a kept-alive connection waits for its next request.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: default_max_connections(),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// The soft limit of open files of this process (`None` when it cannot be read).
pub fn open_files_limit() -> Option<u64> {
    // /proc rather than getrlimit: the crate forbids unsafe code.
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// The default cap: the open-files limit minus [`FD_RESERVE`] (a quarter of the limit when
/// it is small), at most [`MAX_DEFAULT_CONNECTIONS`]; 1024 is assumed when the limit is
/// unknown.
pub fn default_max_connections() -> usize {
    cap_for_limit(open_files_limit().unwrap_or(1024))
}

fn cap_for_limit(limit: u64) -> usize {
    let reserve = FD_RESERVE.min(limit / 4);
    let cap = limit.saturating_sub(reserve).max(1);
    usize::try_from(cap).map_or(MAX_DEFAULT_CONNECTIONS, |c| c.min(MAX_DEFAULT_CONNECTIONS))
}

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 (OTLP/HTTP, the Langfuse API, the viewer).
    Http1,
    /// HTTP/2 only (OTLP/gRPC).
    Http2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    Draining,
    Closing,
}

/// The open connections of a process's listeners, counted against one cap (clones share it).
#[derive(Clone)]
pub struct Connections(Arc<Shared>);

struct Shared {
    limits: ConnectionLimits,
    epoch: Instant,
    table: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    phase: watch::Sender<Phase>,
    log_cap: Throttle,
    log_refused: Throttle,
    log_header: Throttle,
    log_body: Throttle,
    log_accept: Throttle,
}

/// No read since the last request began.
const NONE: u64 = u64::MAX;

/// One connection's state, shared by its task, its I/O and its requests.
struct Conn {
    id: u64,
    peer: SocketAddr,
    accepted_ms: u64,
    in_flight: AtomicUsize,
    served: AtomicBool,
    idle_since_ms: AtomicU64,
    first_read_ms: AtomicU64,
    close_asked: AtomicBool,
    close: Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    Headers,
    Idle,
}

impl Conn {
    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    fn ask_close(&self) {
        if !self.close_asked.swap(true, Ordering::AcqRel) {
            self.close.notify_one();
        }
    }

    /// What has expired at `now`, and when to look again.
    fn check(
        &self,
        now: u64,
        limits: &ConnectionLimits,
        protocol: Protocol,
    ) -> (Option<Expiry>, u64) {
        let header = millis(limits.header_read_timeout);
        let idle = millis(limits.idle_timeout);
        let recheck = now.saturating_add(header.min(idle));
        if !self.idle() {
            // Busy: the body timeout guards it; a finished request restarts the idle clock.
            return (None, recheck);
        }
        let first_read = self.first_read_ms.load(Ordering::Acquire);
        let fresh = !self.served.load(Ordering::Acquire);
        let (deadline, kind) = match protocol {
            Protocol::Http1 if fresh => (self.accepted_ms.saturating_add(header), Expiry::Headers),
            Protocol::Http1 if first_read != NONE => {
                (first_read.saturating_add(header), Expiry::Headers)
            }
            // HTTP/2 reads pings and settings between requests: only silence from the start
            // is a header timeout.
            Protocol::Http2 if fresh && first_read == NONE => {
                (self.accepted_ms.saturating_add(header), Expiry::Headers)
            }
            _ => (
                self.idle_since_ms
                    .load(Ordering::Acquire)
                    .saturating_add(idle),
                Expiry::Idle,
            ),
        };
        if now >= deadline {
            (Some(kind), recheck)
        } else {
            (None, deadline)
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Lets one event of a kind be logged per [`LOG_EVERY_MS`], counting the others.
struct Throttle {
    next_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl Throttle {
    const fn new() -> Throttle {
        Throttle {
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(events not logged since the last one)` when this one may be logged.
    fn admit(&self, now: u64) -> Option<u64> {
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now + LOG_EVERY_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

impl Connections {
    /// An empty set under `limits`.
    pub fn new(limits: ConnectionLimits) -> Connections {
        if let Some(open_files) = open_files_limit()
            && (limits.max_connections as u64).saturating_add(FD_RESERVE) > open_files
        {
            tracing::warn!(
                max_connections = limits.max_connections,
                open_files,
                "the connection cap leaves fewer than {FD_RESERVE} descriptors of the open-files limit for the spool, the store and the upstream: raise the limit (ulimit -n) or lower max_connections"
            );
        }
        let (phase, _) = watch::channel(Phase::Serving);
        Connections(Arc::new(Shared {
            limits,
            epoch: Instant::now(),
            table: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            phase,
            log_cap: Throttle::new(),
            log_refused: Throttle::new(),
            log_header: Throttle::new(),
            log_body: Throttle::new(),
            log_accept: Throttle::new(),
        }))
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.table().len()
    }

    /// Stops the accept loops and asks every connection to close: idle ones close at once,
    /// in-flight requests finish first.
    pub fn drain(&self) {
        self.0.phase.send_if_modified(|p| {
            let changed = *p == Phase::Serving;
            if changed {
                *p = Phase::Draining;
            }
            changed
        });
    }

    /// Closes every connection now, finished or not (after [`Connections::drain`] ran out of
    /// time).
    pub fn close_all(&self) {
        self.0.phase.send_replace(Phase::Closing);
    }

    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        self.0
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        millis(self.0.epoch.elapsed())
    }

    fn instant_at(&self, ms: u64) -> tokio::time::Instant {
        let at = self
            .0
            .epoch
            .checked_add(Duration::from_millis(ms))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::time::Instant::from_std(at)
    }

    /// Registers a new connection, making room under the cap; `None`: close it.
    fn admit(&self, peer: SocketAddr) -> Option<Arc<Conn>> {
        let now = self.now_ms();
        let max = self.0.limits.max_connections.max(1);
        let mut table = self.table();
        let open = table.len();
        if open >= max {
            // The oldest first: a client that holds a connection longest has had its turn.
            let victim = table
                .values()
                .find(|c| c.idle() && !c.close_asked.load(Ordering::Acquire));
            // Victims close at once, but not before this returns: allow a few more meanwhile.
            let slack = max / 8 + 1;
            match victim {
                Some(victim) if open < max + slack => {
                    victim.ask_close();
                    if let Some(left_out) = self.0.log_cap.admit(now) {
                        tracing::warn!(
                            max_connections = max,
                            open,
                            earlier = left_out,
                            "connection limit reached: closing the oldest idle connection to serve a new one"
                        );
                    }
                }
                _ => {
                    if let Some(oldest) = table
                        .values()
                        .find(|c| !c.close_asked.load(Ordering::Acquire))
                    {
                        oldest.ask_close();
                    }
                    if let Some(left_out) = self.0.log_refused.admit(now) {
                        tracing::warn!(
                            max_connections = max,
                            open,
                            earlier = left_out,
                            "connection limit reached and no connection is idle: a new connection was closed; the oldest closes after its request"
                        );
                    }
                    return None;
                }
            }
        }
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id,
            peer,
            accepted_ms: now,
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(now),
            first_read_ms: AtomicU64::new(NONE),
            close_asked: AtomicBool::new(false),
            close: Notify::new(),
        });
        table.insert(id, Arc::clone(&conn));
        Some(conn)
    }

    fn remove(&self, id: u64) {
        self.table().remove(&id);
    }

    /// An accept failed for lack of resources: free a descriptor and say so.
    fn on_accept_error(&self, error: &io::Error, backoff: Duration) {
        let victim = self
            .table()
            .values()
            .find(|c| c.idle() && !c.close_asked.load(Ordering::Acquire))
            .cloned();
        if let Some(victim) = &victim {
            victim.ask_close();
        }
        if let Some(left_out) = self.0.log_accept.admit(self.now_ms()) {
            tracing::warn!(
                %error,
                open = self.len(),
                closing_idle = victim.is_some(),
                retry_in_ms = millis(backoff),
                earlier = left_out,
                "cannot accept a connection (out of file descriptors?); closing an idle connection and backing off"
            );
        }
    }
}

/// Serves `router` on `listener` until [`Connections::drain`] (then until its connections
/// are closed, or [`Connections::close_all`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    protocol: Protocol,
    connections: Connections,
) {
    let service = TowerToHyperService::new(router);
    let mut phase = connections.0.phase.subscribe();
    let mut tasks = JoinSet::new();
    let mut backoff = MIN_ACCEPT_BACKOFF;
    while *phase.borrow_and_update() == Phase::Serving {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = MIN_ACCEPT_BACKOFF;
                    if let Some(conn) = connections.admit(peer) {
                        // Small answers go out at once.
                        let _ = stream.set_nodelay(true);
                        tasks.spawn(serve_connection(
                            stream,
                            conn,
                            service.clone(),
                            protocol,
                            connections.clone(),
                        ));
                    }
                }
                // The peer gave up before the accept: nothing to do.
                Err(e) if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) => {}
                Err(e) => {
                    connections.on_accept_error(&e, backoff);
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = phase.changed() => {}
                    }
                    backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                }
            }
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

async fn serve_connection(
    stream: TcpStream,
    conn: Arc<Conn>,
    service: TowerToHyperService<Router>,
    protocol: Protocol,
    connections: Connections,
) {
    let io = TokioIo::new(TrackedIo {
        inner: stream,
        conn: Arc::clone(&conn),
        epoch: connections.0.epoch,
    });
    let requests = RequestService {
        inner: service,
        conn: Arc::clone(&conn),
        connections: connections.clone(),
        protocol,
    };
    match protocol {
        Protocol::Http1 => {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                // hyper's timer also runs while a kept-alive connection waits; ours tells
                // the idle wait from a slow request head.
                .header_read_timeout(None)
                .serve_connection(io, requests);
            drive(
                connection,
                |c| c.graceful_shutdown(),
                &conn,
                &connections,
                protocol,
            )
            .await;
        }
        Protocol::Http2 => {
            let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .serve_connection(io, requests);
            drive(
                connection,
                |c| c.graceful_shutdown(),
                &conn,
                &connections,
                protocol,
            )
            .await;
        }
    }
    connections.remove(conn.id);
}

/// Runs one connection to its end, applying the timeouts and close requests.
async fn drive<C>(
    connection: C,
    graceful: fn(Pin<&mut C>),
    conn: &Conn,
    connections: &Connections,
    protocol: Protocol,
) where
    C: Future<Output = Result<(), hyper::Error>>,
{
    let shared = &connections.0;
    let mut phase = shared.phase.subscribe();
    let mut connection = pin!(connection);
    let mut asked_at: Option<u64> = None;
    loop {
        let now = connections.now_ms();
        let current = *phase.borrow_and_update();
        if current == Phase::Closing {
            return;
        }
        if asked_at.is_none()
            && (current == Phase::Draining || conn.close_asked.load(Ordering::Acquire))
        {
            graceful(connection.as_mut());
            asked_at = Some(now);
        }
        let (expired, mut wake) = conn.check(now, &shared.limits, protocol);
        match expired {
            Some(Expiry::Headers) => {
                if let Some(left_out) = shared.log_header.admit(now) {
                    tracing::warn!(
                        timeout_secs = shared.limits.header_read_timeout.as_secs_f64(),
                        earlier = left_out,
                        "closed a connection that sent no complete request head in time (header read timeout)"
                    );
                }
                return;
            }
            Some(Expiry::Idle) if asked_at.is_none() => {
                tracing::debug!(
                    timeout_secs = shared.limits.idle_timeout.as_secs_f64(),
                    "closing an idle keep-alive connection (idle timeout)"
                );
                graceful(connection.as_mut());
                asked_at = Some(now);
            }
            _ => {}
        }
        // (While draining, the shutdown deadline bounds it instead.)
        if let Some(at) = asked_at
            && current == Phase::Serving
        {
            // Asked to close and still busy after a whole idle timeout: a client that does not
            // read its answer holds no slot for ever.
            let overdue = at.saturating_add(millis(shared.limits.idle_timeout));
            if now >= overdue {
                return;
            }
            wake = wake.min(overdue);
        }
        if let Some(at) = asked_at
            && conn.idle()
        {
            // Time for hyper to flush the last answer and close on its own first.
            let grace_end = at
                .max(conn.idle_since_ms.load(Ordering::Acquire))
                .saturating_add(CLOSE_GRACE_MS);
            if now >= grace_end {
                return;
            }
            wake = wake.min(grace_end);
        }
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = conn.close.notified() => {}
            _ = phase.changed() => {}
            () = tokio::time::sleep_until(connections.instant_at(wake)) => {}
        }
    }
}

/// The per-connection service: counts requests in flight, times out stalled bodies.
#[derive(Clone)]
struct RequestService {
    inner: TowerToHyperService<Router>,
    conn: Arc<Conn>,
    connections: Connections,
    protocol: Protocol,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for RequestService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let guard = RequestGuard::begin(Arc::clone(&self.conn), self.connections.clone());
        let stalled = Arc::new(AtomicBool::new(false));
        let timeout = self.connections.0.limits.body_read_timeout;
        let mut request = request.map(|body| {
            Body::new(StallTimeout {
                inner: body,
                timeout,
                sleep: None,
                stalled: Arc::clone(&stalled),
            })
        });
        // As `axum::serve(..).into_make_service_with_connect_info` would: layers may ask.
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(self.conn.peer));
        let answer = hyper::service::Service::call(&self.inner, request);
        let connections = self.connections.clone();
        let protocol = self.protocol;
        Box::pin(async move {
            let response = match answer.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let response = if stalled.load(Ordering::Acquire) {
                let shared = &connections.0;
                if let Some(left_out) = shared.log_body.admit(connections.now_ms()) {
                    tracing::warn!(
                        timeout_secs = shared.limits.body_read_timeout.as_secs_f64(),
                        earlier = left_out,
                        "a request body stalled (body read timeout)"
                    );
                }
                match protocol {
                    Protocol::Http1 => body_timeout_response(shared.limits.body_read_timeout),
                    // gRPC reports the failed stream in its own status.
                    Protocol::Http2 => response,
                }
            } else {
                response
            };
            Ok(response.map(|body| {
                Body::new(GuardedBody {
                    inner: body,
                    _guard: guard,
                })
            }))
        })
    }
}

fn body_timeout_response(timeout: Duration) -> Response<Body> {
    let body = serde_json::json!({
        "error": format!(
            "the request body stalled for more than {} s",
            timeout.as_secs_f64()
        )
    })
    .to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // The rest of the body may still come: the connection cannot carry another request.
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request in flight on its connection until its answer is sent (or dropped).
struct RequestGuard {
    conn: Arc<Conn>,
    connections: Connections,
}

impl RequestGuard {
    fn begin(conn: Arc<Conn>, connections: Connections) -> RequestGuard {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.served.store(true, Ordering::Release);
        conn.first_read_ms.store(NONE, Ordering::Release);
        RequestGuard { conn, connections }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.conn.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.conn
                .idle_since_ms
                .store(self.connections.now_ms(), Ordering::Release);
            self.conn.first_read_ms.store(NONE, Ordering::Release);
            // The connection's task sleeps until the next deadline: let it see the new one.
            self.conn.close.notify_waiters();
        }
    }
}

/// A response body that keeps its request counted until it is sent.
struct GuardedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body stalled for longer than the body read timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled for more than {0:?}")]
pub struct BodyStalled(pub Duration);

/// A request body that fails with [`BodyStalled`] when no data comes for `timeout`.
struct StallTimeout {
    inner: Incoming,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    stalled: Arc<AtomicBool>,
}

impl http_body::Body for StallTimeout {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.sleep = None;
                    this.stalled.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(Box::new(BodyStalled(timeout)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A TCP stream that notes when the bytes of a request head begin to arrive.
struct TrackedIo {
    inner: TcpStream,
    conn: Arc<Conn>,
    epoch: Instant,
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(())))
            && buf.filled().len() > before
            && this.conn.first_read_ms.load(Ordering::Relaxed) == NONE
        {
            this.conn
                .first_read_ms
                .store(millis(this.epoch.elapsed()), Ordering::Release);
        }
        result
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 40_000))
    }

    #[test]
    fn the_default_cap_leaves_descriptors_for_the_rest() {
        assert_eq!(cap_for_limit(1024), 1024 - 128);
        assert_eq!(cap_for_limit(256), 256 - 64);
        assert_eq!(cap_for_limit(1 << 20), MAX_DEFAULT_CONNECTIONS);
        assert_eq!(cap_for_limit(u64::MAX), MAX_DEFAULT_CONNECTIONS);
        assert_eq!(cap_for_limit(0), 1);
    }

    #[test]
    fn a_throttle_logs_the_first_event_then_counts_the_rest() {
        let t = Throttle::new();
        assert_eq!(t.admit(5), Some(0));
        assert_eq!(t.admit(6), None);
        assert_eq!(t.admit(7), None);
        assert_eq!(t.admit(5 + LOG_EVERY_MS), Some(2));
    }

    #[test]
    fn an_idle_connection_expires_by_the_idle_timeout_and_a_started_head_by_the_header_timeout() {
        let limits = ConnectionLimits {
            max_connections: 10,
            header_read_timeout: Duration::from_secs(2),
            body_read_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(5),
        };
        let connections = Connections::new(limits);
        let conn = connections.admit(peer()).unwrap();
        // A new connection must send its head within the header timeout.
        assert_eq!(conn.check(1_000, &limits, Protocol::Http1).0, None);
        assert_eq!(
            conn.check(2_000, &limits, Protocol::Http1).0,
            Some(Expiry::Headers)
        );
        // After a request it may wait for the idle timeout…
        drop(RequestGuard::begin(Arc::clone(&conn), connections.clone()));
        let since = conn.idle_since_ms.load(Ordering::Acquire);
        assert_eq!(conn.check(since + 4_000, &limits, Protocol::Http1).0, None);
        assert_eq!(
            conn.check(since + 5_000, &limits, Protocol::Http1).0,
            Some(Expiry::Idle)
        );
        // …unless a head started arriving: then the header timeout counts from its first byte.
        conn.first_read_ms.store(since + 100, Ordering::Release);
        assert_eq!(
            conn.check(since + 2_100, &limits, Protocol::Http1).0,
            Some(Expiry::Headers)
        );
        // HTTP/2 reads between requests are pings, not heads.
        assert_eq!(conn.check(since + 2_100, &limits, Protocol::Http2).0, None);
        // A request in flight never expires here.
        let _busy = RequestGuard::begin(Arc::clone(&conn), connections.clone());
        assert_eq!(conn.check(since + 60_000, &limits, Protocol::Http1).0, None);
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_is_asked_to_close() {
        let limits = ConnectionLimits {
            max_connections: 2,
            ..ConnectionLimits::default()
        };
        let connections = Connections::new(limits);
        let first = connections.admit(peer()).unwrap();
        let second = connections.admit(peer()).unwrap();
        let _busy = RequestGuard::begin(Arc::clone(&first), connections.clone());
        assert!(connections.admit(peer()).is_some(), "room is made");
        assert!(!first.close_asked.load(Ordering::Acquire), "busy: kept");
        assert!(
            second.close_asked.load(Ordering::Acquire),
            "the oldest idle one goes"
        );
        // Nothing idle left: a new connection is refused and the oldest asked to finish.
        let third_busy = connections.table().values().last().cloned().unwrap();
        let _busy3 = RequestGuard::begin(third_busy, connections.clone());
        connections.remove(second.id);
        assert!(connections.admit(peer()).is_none());
        assert!(first.close_asked.load(Ordering::Acquire));
    }
}

/// The examples of this module's docs, as tests (the module is internal to the crate).
#[cfg(test)]
mod doc_examples {
    #[test]
    fn the_module_example_compiles() {
        // Built, not run: it would serve until drained.
        use crate::sources::listener::{ConnectionLimits, Connections, Protocol, serve};

        async fn demo() -> std::io::Result<()> {
            let app = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
            let connections = Connections::new(ConnectionLimits::default());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let server = tokio::spawn(serve(listener, app, Protocol::Http1, connections.clone()));
            // … later: stop accepting, let requests finish, then close the rest.
            connections.drain();
            if tokio::time::timeout(std::time::Duration::from_secs(5), server)
                .await
                .is_err()
            {
                connections.close_all();
            }
            Ok(())
        }
        drop(demo());
    }
}
