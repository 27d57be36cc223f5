//! A small fault-injecting HTTP/1.1 receiver on 127.0.0.1 for exporter tests.
//!
//! Each test scripts it with a function from the request (and its 0-based index) to an
//! [`Action`]: answer with a status, answer late, or break the connection. Every request whose
//! body was read is recorded with the status it was answered with, so a test can compute the
//! exact set of spans or events that were acknowledged.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the receiver does with one request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Answer with this status, extra headers and body.
    Respond {
        /// HTTP status.
        status: u16,
        /// Extra response headers.
        headers: Vec<(String, String)>,
        /// Response body.
        body: Vec<u8>,
    },
    /// Wait, then do the inner action (the client may have given up by then).
    Delay(Duration, Box<Action>),
    /// Close the connection after reading only the request head (reset mid-request).
    ResetMidRequest,
}

impl Action {
    /// `status` with an empty JSON body.
    pub fn status(status: u16) -> Action {
        Action::Respond {
            status,
            headers: Vec::new(),
            body: b"{}".to_vec(),
        }
    }

    /// 200 OK.
    pub fn ok() -> Action {
        Action::status(200)
    }

    /// `status` with a `Retry-After` header.
    pub fn retry_after(status: u16, value: &str) -> Action {
        Action::Respond {
            status,
            headers: vec![("retry-after".into(), value.into())],
            body: b"{}".to_vec(),
        }
    }

    /// The status the client is finally answered with (None when the connection breaks).
    fn final_status(&self) -> Option<u16> {
        match self {
            Action::Respond { status, .. } => Some(*status),
            Action::Delay(_, inner) => inner.final_status(),
            Action::ResetMidRequest => None,
        }
    }
}

/// One received request (body already gunzipped when `Content-Encoding: gzip`).
#[derive(Debug, Clone)]
pub struct Request {
    /// Request path.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: Vec<u8>,
    /// Status it was answered with; `None` if the connection was broken instead.
    pub answered: Option<u16>,
}

impl Request {
    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether it was answered with a 2xx status.
    pub fn acknowledged(&self) -> bool {
        self.answered.is_some_and(|s| (200..300).contains(&s))
    }

    /// Span ids of an OTLP body (protobuf or JSON).
    pub fn span_ids(&self) -> Vec<String> {
        match langfuse_otel_core::otlp::decode(&self.body) {
            Ok(batch) => batch
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
                .map(|s| s.span_id.to_string())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The events of a native ingestion body (`{"batch":[...]}`).
    pub fn ingestion_events(&self) -> Vec<serde_json::Value> {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("batch").and_then(|b| b.as_array()).cloned())
            .unwrap_or_default()
    }
}

type Script = dyn Fn(&Request, usize) -> Action + Send + Sync;

/// The running receiver; stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Starts on a free port, answering each request with `script(request, index)`.
    ///
    /// The script is called twice per request with the same 0-based index: first with the
    /// head only (empty body; only [`Action::ResetMidRequest`] is acted on then), then with
    /// the full request. It should depend on the index and the request only.
    pub fn start(script: impl Fn(&Request, usize) -> Action + Send + Sync + 'static) -> Receiver {
        Self::start_on(0, script)
    }

    /// Starts on `port` (0 = any free port).
    pub fn start_on(
        port: u16,
        script: impl Fn(&Request, usize) -> Action + Send + Sync + 'static,
    ) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind receiver");
        Self::start_with(listener, script)
    }

    /// Starts on a listener the test bound (see [`ReservedPort::listen`]).
    pub fn start_with(
        listener: TcpListener,
        script: impl Fn(&Request, usize) -> Action + Send + Sync + 'static,
    ) -> Receiver {
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let counter = Arc::new(AtomicUsize::new(0));
        let accept = {
            let requests = Arc::clone(&requests);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let requests = Arc::clone(&requests);
                            let script = Arc::clone(&script);
                            let counter = Arc::clone(&counter);
                            std::thread::spawn(move || {
                                serve(stream, &requests, &*script, &counter);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        Receiver {
            addr,
            requests,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Distinct span ids of all acknowledged OTLP requests, sorted.
    pub fn delivered_span_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .requests()
            .iter()
            .filter(|r| r.acknowledged())
            .flat_map(Request::span_ids)
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// A port held for a test and not listening yet: connections to it are refused (an upstream
/// that is down) until [`ReservedPort::listen`] turns the same socket into a listener (the
/// upstream comes back). The port is bound once and never released in between, so no other
/// test can take it.
#[derive(Debug)]
pub struct ReservedPort {
    socket: socket2::Socket,
    port: u16,
}

impl ReservedPort {
    /// Binds `127.0.0.1:0` without listening.
    pub fn new() -> ReservedPort {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        let addr: std::net::SocketAddr = "127.0.0.1:0".parse().expect("address");
        socket.bind(&addr.into()).expect("bind a reserved port");
        let port = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.port())
            .expect("bound address");
        ReservedPort { socket, port }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts listening on the reserved port.
    pub fn listen(self) -> TcpListener {
        self.socket
            .listen(1024)
            .expect("listen on the reserved port");
        self.socket.into()
    }
}

impl Default for ReservedPort {
    fn default() -> Self {
        ReservedPort::new()
    }
}

fn serve(
    stream: TcpStream,
    requests: &Mutex<Vec<Request>>,
    script: &Script,
    counter: &AtomicUsize,
) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let index = counter.fetch_add(1, Ordering::SeqCst);
        let head_only = Request {
            path: path.clone(),
            headers: headers.clone(),
            body: Vec::new(),
            answered: None,
        };
        let action = script(&head_only, index);
        if matches!(action, Action::ResetMidRequest) {
            if let Ok(mut r) = requests.lock() {
                r.push(head_only);
            }
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if headers
            .iter()
            .any(|(k, v)| k == "content-encoding" && v.contains("gzip"))
        {
            let mut out = Vec::new();
            if flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut out)
                .is_ok()
            {
                body = out;
            }
        }
        let req = Request {
            path,
            headers,
            body,
            answered: action.final_status(),
        };
        // The script sees the full request for body-dependent answers (207 bodies).
        let action = script(&req, index);
        let req = Request {
            answered: action.final_status(),
            ..req
        };
        if let Ok(mut r) = requests.lock() {
            r.push(req);
        }
        if !respond(&mut writer, &action) {
            return;
        }
    }
}

/// Writes the answer; false when the connection should be closed.
fn respond(writer: &mut TcpStream, action: &Action) -> bool {
    match action {
        Action::Delay(d, inner) => {
            std::thread::sleep(*d);
            respond(writer, inner)
        }
        Action::ResetMidRequest => {
            let _ = writer.shutdown(Shutdown::Both);
            false
        }
        Action::Respond {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let mut out = head.into_bytes();
            out.extend_from_slice(body);
            writer.write_all(&out).is_ok()
        }
    }
}
