//! Who may use the bridge's HTTP listeners (`serve` and `ui`), attacked like a stranger on
//! the network and a hostile web page would: with keys configured the viewer, its API and
//! `/metrics` need them (`/health` stays open and says nothing about traces); a rebinding host
//! name gets 421; a cross-site `text/plain` POST gets 415 and a foreign `Origin` 403; a
//! non-loopback listen address without keys is refused at start. The browser test drives
//! headless Chromium with `bridge_access_browser.mjs` (set-up as in `viewer_browser.rs`).

use crate::bridge_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bridge_support::{
    Answer, RunningBridge, basic, bridge_binary, start, temp_dir, test_config, wait_until,
};
use integration_tests::browser::{self, CHROMIUM};
use langfuse_bridge::Bridge;
use langfuse_bridge::{Destination, ServeConfig};
use langfuse_local::Store;
use serde_json::json;

const PK: &str = "pk-lf-access";
const SK: &str = "sk-lf-access-very-secret";
const SECRET_PROMPT: &str = "the private prompt of user 7f3a";
const TRACE: &str = "5ec7e7000000000000000000000a0001";
const MARKER: &str = "5ec7e7000000000000000000000a00ff";

/// An OTLP/JSON export of one span in trace `trace` whose trace input is `input`.
fn span_json(trace: &str, input: &str) -> String {
    json!({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{
        "scope": {"name": "access-test"},
        "spans": [{
            "traceId": trace, "spanId": &trace[16..], "name": format!("span of {trace}"), "kind": 1,
            "startTimeUnixNano": "1767258000000000000", "endTimeUnixNano": "1767258000250000000",
            "attributes": [{"key": "langfuse.trace.input", "value": {"stringValue": input}}]
        }]
    }]}]})
    .to_string()
}

/// An ingestion batch creating trace `trace`.
fn ingestion_json(trace: &str) -> String {
    json!({"batch": [{"id": format!("event-{trace}"), "type": "trace-create",
        "timestamp": "2026-01-01T00:00:00.000Z",
        "body": {"id": trace, "name": "injected", "input": "injected"}}]})
    .to_string()
}

/// A score for trace `trace`.
fn score_json(trace: &str) -> String {
    json!({"id": format!("score-{trace}"), "traceId": trace, "name": "injected", "value": 1})
        .to_string()
}

/// One HTTP/1.1 exchange on a fresh connection, with exactly these headers (a `Host` naming
/// `addr` unless one is given) and `Connection: close`; the body is read to the end.
fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).expect("sending the request");
    let mut response = Vec::new();
    // A reset after the answer (the server did not read an unwanted body) is no failure.
    let _ = stream.read_to_end(&mut response);
    parse_response(&response)
}

fn parse_response(response: &[u8]) -> Answer {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no response head in {:?}",
                String::from_utf8_lossy(response)
            )
        });
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = response[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

fn text(answer: &Answer) -> String {
    String::from_utf8_lossy(&answer.body).into_owned()
}

fn no_cors_headers(answer: &Answer, what: &str) {
    assert!(
        answer
            .headers
            .iter()
            .all(|(k, _)| !k.starts_with("access-control-")),
        "{what}: CORS headers in {:?}",
        answer.headers
    );
}

/// An in-process bridge whose spool and store directories go when it is dropped.
struct LocalBridge {
    bridge: Option<RunningBridge>,
    dirs: Vec<PathBuf>,
}

impl std::ops::Deref for LocalBridge {
    type Target = RunningBridge;

    fn deref(&self) -> &RunningBridge {
        self.bridge.as_ref().expect("running")
    }
}

impl Drop for LocalBridge {
    fn drop(&mut self) {
        if let Some(bridge) = self.bridge.take() {
            bridge.stop();
        }
        for dir in &self.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `serve --to local` in-process, with a fresh store; `keys` configured when given.
fn local_bridge(
    tag: &str,
    keys: Option<(&str, &str)>,
    tweak: impl FnOnce(&mut ServeConfig),
) -> (LocalBridge, PathBuf) {
    let mut config = test_config(tag, "http://unused", "local");
    config.to = Some(Destination::Local);
    config.upstream = None;
    let dir = temp_dir(&format!("{tag}-store"));
    std::fs::create_dir_all(&dir).expect("store dir");
    config.db = dir.join("traces.db");
    if let Some((p, s)) = keys {
        config.public_key = Some(p.into());
        config.secret_key = Some(s.into());
    }
    tweak(&mut config);
    let db = config.db.clone();
    let dirs = vec![dir, config.spool.clone()];
    let bridge = LocalBridge {
        bridge: Some(start(Bridge::new(config))),
        dirs,
    };
    (bridge, db)
}

/// Sends one span the way an SDK does (no Origin) and waits until the store has its trace.
fn send_and_wait(bridge: &RunningBridge, db: &Path, trace: &str, credentials: Option<&str>) {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(c) = credentials {
        headers.push(("Authorization", c));
    }
    let body = span_json(trace, SECRET_PROMPT);
    let answer = raw(bridge.http, "POST", "/v1/traces", &headers, body.as_bytes());
    assert_eq!(answer.status, 200, "{}", text(&answer));
    assert!(
        wait_until(Duration::from_secs(20), || stored(db, trace)),
        "trace {trace} never reached the store"
    );
}

fn stored(db: &Path, trace: &str) -> bool {
    Store::open(db)
        .and_then(|s| s.trace(trace))
        .is_ok_and(|t| t.is_some())
}

/// After `marker` is stored, everything sent before it has been forwarded: `refused` must
/// then be absent.
fn assert_never_stored(
    bridge: &RunningBridge,
    db: &Path,
    credentials: Option<&str>,
    refused: &[&str],
) {
    send_and_wait(bridge, db, MARKER, credentials);
    for trace in refused {
        assert!(!stored(db, trace), "refused trace {trace} was stored");
    }
}

#[test]
fn with_keys_the_viewer_its_api_and_metrics_need_them_and_health_says_nothing_private() {
    let (bridge, db) = local_bridge("access-keys", Some((PK, SK)), |_| {});
    let right = basic(PK, SK);
    send_and_wait(&bridge, &db, TRACE, Some(&right));
    let wrong = basic(PK, "sk-lf-wrong");
    let paths = [
        "/".to_owned(),
        "/assets/app.js".to_owned(),
        "/api/traces".to_owned(),
        format!("/api/traces/{TRACE}"),
        "/api/sessions".to_owned(),
        "/api/users".to_owned(),
        "/api/changes".to_owned(),
        "/metrics".to_owned(),
    ];
    for path in &paths {
        for (what, headers) in [
            ("no credentials", vec![]),
            ("wrong secret", vec![("Authorization", wrong.as_str())]),
            ("lower-case scheme", vec![("Authorization", "basic x")]),
        ] {
            let answer = raw(bridge.http, "GET", path, &headers, b"");
            assert_eq!(answer.status, 401, "{path} with {what}: {}", text(&answer));
            let challenge = answer.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.starts_with("Basic realm="),
                "{path}: challenge {challenge:?}"
            );
            assert!(!text(&answer).contains(SECRET_PROMPT) && !text(&answer).contains(TRACE));
        }
        let answer = raw(bridge.http, "GET", path, &[("Authorization", &right)], b"");
        assert_eq!(answer.status, 200, "{path} with the keys");
    }
    let detail = raw(
        bridge.http,
        "GET",
        &format!("/api/traces/{TRACE}"),
        &[("Authorization", &right)],
        b"",
    );
    assert!(
        text(&detail).contains(SECRET_PROMPT),
        "the keys read the trace"
    );
    let health = raw(bridge.http, "GET", "/health", &[], b"");
    assert_eq!(health.status, 200);
    for private in [SECRET_PROMPT, TRACE, PK, SK, "span of"] {
        assert!(!text(&health).contains(private), "/health shows {private}");
    }
    // Refusals at a receiving endpoint are counted like the receivers' own (the viewer's not).
    let unsent = raw(
        bridge.http,
        "POST",
        "/v1/traces",
        &[("Content-Type", "application/json")],
        span_json(MARKER, "x").as_bytes(),
    );
    assert_eq!(unsent.status, 401);
    assert_eq!(bridge.metrics.rejected_count("unauthorized"), 1);
}

#[test]
fn metrics_public_opens_metrics_and_nothing_else() {
    let (bridge, _db) = local_bridge("access-metrics", Some((PK, SK)), |c| {
        c.metrics_public = true;
    });
    let metrics = raw(bridge.http, "GET", "/metrics", &[], b"");
    assert_eq!(metrics.status, 200);
    assert!(text(&metrics).contains("langfuse_bridge_received_requests_total"));
    assert!(!text(&metrics).contains(SK));
    for path in ["/", "/api/traces", "/api/changes"] {
        assert_eq!(
            raw(bridge.http, "GET", path, &[], b"").status,
            401,
            "{path}"
        );
    }
}

#[test]
fn a_rebinding_host_name_gets_421_from_serve_and_allowed_hosts_are_served() {
    let (bridge, db) = local_bridge("access-rebind", None, |c| {
        c.allowed_hosts = vec!["bridge.internal".into()];
    });
    send_and_wait(&bridge, &db, TRACE, None);
    let port = bridge.http.port();
    let evil = format!("evil.example:{port}");
    for path in [
        "/",
        "/api/traces",
        &format!("/api/traces/{TRACE}"),
        "/metrics",
        "/health",
    ] {
        let answer = raw(bridge.http, "GET", path, &[("Host", &evil)], b"");
        assert_eq!(answer.status, 421, "{path}: {}", text(&answer));
        assert!(!text(&answer).contains(SECRET_PROMPT));
        assert!(text(&answer).contains("--allowed-host"), "says what to do");
    }
    // The page at the rebinding name posts same-origin JSON: no preflight, still refused.
    let injected = "5ec7e7000000000000000000000b0001";
    let answer = raw(
        bridge.http,
        "POST",
        "/v1/traces",
        &[
            ("Host", &evil),
            ("Origin", &format!("http://{evil}")),
            ("Content-Type", "application/json"),
        ],
        span_json(injected, "injected").as_bytes(),
    );
    assert_eq!(answer.status, 421);
    for host in [
        format!("localhost:{port}"),
        format!("viewer.localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("bridge.internal:{port}"),
    ] {
        let answer = raw(bridge.http, "GET", "/api/traces", &[("Host", &host)], b"");
        assert_eq!(answer.status, 200, "{host}");
    }
    assert_eq!(
        bridge.metrics.rejected_count("misdirected_host"),
        1,
        "the POST"
    );
    assert_never_stored(&bridge, &db, None, &[injected]);
}

#[test]
fn cross_site_text_plain_posts_get_415_and_foreign_origins_403() {
    let (bridge, db) = local_bridge("access-csrf", None, |_| {});
    let port = bridge.http.port();
    let own = format!("http://127.0.0.1:{port}");
    let mut refused = Vec::new();
    let mut n = 0u32;
    let mut next_trace = || {
        n += 1;
        format!("5ec7e7000000000000000000000c{n:04x}")
    };
    type Body = fn(&str) -> String;
    let endpoints: [(&str, Body); 4] = [
        ("/v1/traces", |t| span_json(t, "injected")),
        ("/api/public/otel/v1/traces", |t| span_json(t, "injected")),
        ("/api/public/ingestion", ingestion_json),
        ("/api/public/scores", score_json),
    ];
    for (path, body) in endpoints {
        // What a page elsewhere can send without a preflight.
        for content_type in [
            "text/plain;charset=application/json",
            "text/plain; charset=application/json",
            "text/plain",
            "application/x-www-form-urlencoded; x=application/json",
        ] {
            let trace = next_trace();
            let answer = raw(
                bridge.http,
                "POST",
                path,
                &[("Content-Type", content_type)],
                body(&trace).as_bytes(),
            );
            assert_eq!(
                answer.status,
                415,
                "{path} {content_type}: {}",
                text(&answer)
            );
            no_cors_headers(&answer, path);
            refused.push(trace);
        }
        // A correct JSON type from a foreign origin.
        for origin in [
            "http://127.0.0.1:1",
            "http://evil.example",
            &format!("http://evil.example:{port}"),
            "null",
        ] {
            let trace = next_trace();
            let answer = raw(
                bridge.http,
                "POST",
                path,
                &[("Content-Type", "application/json"), ("Origin", origin)],
                body(&trace).as_bytes(),
            );
            assert_eq!(
                answer.status,
                403,
                "{path} from {origin}: {}",
                text(&answer)
            );
            no_cors_headers(&answer, path);
            refused.push(trace);
        }
        // Preflights do not succeed.
        let preflight = raw(
            bridge.http,
            "OPTIONS",
            path,
            &[
                ("Origin", "http://127.0.0.1:1"),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ],
            b"",
        );
        assert!(!(200..300).contains(&preflight.status), "{path} preflight");
        no_cors_headers(&preflight, path);
    }
    // The bridge's own origin and exact JSON types with parameters are served.
    let own_trace = "5ec7e7000000000000000000000d0001";
    let answer = raw(
        bridge.http,
        "POST",
        "/v1/traces",
        &[
            ("Content-Type", "Application/JSON; charset=utf-8"),
            ("Origin", &own),
        ],
        span_json(own_trace, "own").as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}", text(&answer));
    no_cors_headers(&answer, "own origin");
    let read = raw(
        bridge.http,
        "GET",
        "/api/traces",
        &[("Origin", "http://127.0.0.1:1")],
        b"",
    );
    assert_eq!(read.status, 200);
    no_cors_headers(&read, "/api/traces");
    // 4 endpoints: 4 foreign POSTs and a preflight each.
    assert_eq!(bridge.metrics.rejected_count("foreign_origin"), 20);
    let refused: Vec<&str> = refused.iter().map(String::as_str).collect();
    assert_never_stored(&bridge, &db, None, &refused);
    assert!(stored(&db, own_trace));
}

/// A `langfuse-bridge` process, killed on drop; its output lines arrive on channels.
struct Process {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs the binary with `args` and `env` (keys from the test's own environment removed).
fn spawn(args: &[&str], env: &[(&str, &str)]) -> Process {
    let mut command = Command::new(bridge_binary());
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in [
        "LANGFUSE_PUBLIC_KEY",
        "LANGFUSE_SECRET_KEY",
        "LANGFUSE_BASE_URL",
        "LANGFUSE_BRIDGE_ALLOWED_HOSTS",
        "LANGFUSE_BRIDGE_ALLOW_REMOTE_WITHOUT_AUTH",
    ] {
        command.env_remove(var);
    }
    // Plain log lines (the start-up line is parsed).
    command.env("NO_COLOR", "1").envs(env.iter().copied());
    let mut child = command.spawn().expect("starting langfuse-bridge");
    let stdout = lines(child.stdout.take().expect("stdout"));
    let stderr = lines(child.stderr.take().expect("stderr"));
    Process {
        child,
        stdout,
        stderr,
    }
}

/// Waits for the process to exit; its status code and standard error.
fn exit_of(mut process: Process) -> (Option<i32>, String) {
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = process.child.try_wait().expect("waiting") {
            break status;
        }
        assert!(
            Instant::now() < end,
            "still running after 30 s: it started instead of refusing"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr: Vec<String> =
        std::iter::from_fn(|| process.stderr.recv_timeout(Duration::from_secs(5)).ok()).collect();
    (status.code(), stderr.join("\n"))
}

/// Waits for a line of `rx` containing `needle`; panics after 30 s.
fn line_with(rx: &mpsc::Receiver<String>, needle: &str) -> String {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line with {needle:?}: {e}"),
        }
    }
}

/// The port of the `http=ADDR` field or `http://ADDR/` in a start-up line.
fn port_in(line: &str) -> u16 {
    let addr = line
        .split_whitespace()
        .find_map(|w| {
            w.strip_prefix("http=")
                .or_else(|| w.strip_prefix("http://"))
                .map(|a| a.trim_end_matches('/'))
        })
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    addr.parse::<SocketAddr>()
        .unwrap_or_else(|_| panic!("no address in {line:?}"))
        .port()
}

fn serve_args<'a>(spool: &'a str, db: &'a str, http: &'a str, grpc: &'a str) -> Vec<&'a str> {
    vec![
        "serve", "--to", "local", "--http", http, "--grpc", grpc, "--spool", spool, "--db", db,
    ]
}

#[test]
fn serve_refuses_a_non_loopback_address_without_keys() {
    let dir = temp_dir("access-exposed");
    std::fs::create_dir_all(&dir).unwrap();
    let spool = dir.join("spool");
    let spool = spool.to_str().unwrap();
    let db = dir.join("traces.db");
    let db = db.to_str().unwrap();
    for (http, grpc, listener) in [
        ("0.0.0.0:0", "off", "HTTP"),
        ("[::]:0", "off", "HTTP"),
        ("127.0.0.1:0", "0.0.0.0:0", "gRPC"),
    ] {
        let args = serve_args(spool, db, http, grpc);
        let (code, stderr) = exit_of(spawn(&args, &[]));
        assert_eq!(code, Some(2), "{http} {grpc}: {stderr}");
        assert!(
            stderr.contains("refusing to listen")
                && stderr.contains(&format!("({listener})"))
                && stderr.contains("--public-key")
                && stderr.contains("--allow-remote-without-auth"),
            "{http} {grpc}: {stderr}"
        );
    }
    assert!(
        !Path::new(db).exists(),
        "nothing was opened before refusing"
    );
    // Allowed explicitly, or with keys: it serves (on every address, loopback included).
    let mut allowed = serve_args(spool, db, "0.0.0.0:0", "0.0.0.0:0");
    allowed.push("--allow-remote-without-auth");
    let keyed = serve_args(spool, db, "0.0.0.0:0", "0.0.0.0:0");
    for (args, env) in [
        (allowed, vec![]),
        (
            keyed,
            vec![("LANGFUSE_PUBLIC_KEY", PK), ("LANGFUSE_SECRET_KEY", SK)],
        ),
    ] {
        let process = spawn(&args, &env);
        let port = port_in(&line_with(&process.stderr, "langfuse-bridge listening"));
        let health = raw(
            SocketAddr::from(([127, 0, 0, 1], port)),
            "GET",
            "/health",
            &[],
            b"",
        );
        assert_eq!(health.status, 200);
        drop(process);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `langfuse-bridge ui` over `db`; the process and its port.
fn start_ui(db: &Path, http: &str, extra: &[&str], env: &[(&str, &str)]) -> (Process, u16) {
    let mut args = vec!["ui", "--http", http, "--db", db.to_str().unwrap()];
    args.extend_from_slice(extra);
    let process = spawn(&args, env);
    let line = line_with(&process.stdout, "http://");
    assert!(!line.contains(SK), "the secret key printed: {line}");
    (process, port_in(&line))
}

#[test]
fn ui_refuses_a_non_loopback_address_without_keys() {
    let dir = temp_dir("access-ui-exposed");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("traces.db");
    let (code, stderr) = exit_of(spawn(
        &["ui", "--http", "0.0.0.0:0", "--db", db.to_str().unwrap()],
        &[],
    ));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to listen") && stderr.contains("--allow-remote-without-auth"),
        "{stderr}"
    );
    let (allowed, _) = start_ui(&db, "0.0.0.0:0", &["--allow-remote-without-auth"], &[]);
    drop(allowed);
    let (keyed, port) = start_ui(
        &db,
        "0.0.0.0:0",
        &[],
        &[("LANGFUSE_PUBLIC_KEY", PK), ("LANGFUSE_SECRET_KEY", SK)],
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(raw(addr, "GET", "/api/traces", &[], b"").status, 401);
    drop(keyed);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ui_answers_a_rebinding_host_with_421_and_asks_for_its_keys() {
    let (bridge, db) = local_bridge("access-ui", None, |_| {});
    send_and_wait(&bridge, &db, TRACE, None);
    let (plain, port) = start_ui(&db, "127.0.0.1:0", &[], &[]);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let evil = format!("evil.example:{port}");
    for path in ["/", "/api/traces", &format!("/api/traces/{TRACE}")] {
        let answer = raw(addr, "GET", path, &[("Host", &evil)], b"");
        assert_eq!(answer.status, 421, "{path}");
        assert!(!text(&answer).contains(SECRET_PROMPT));
    }
    assert_eq!(raw(addr, "GET", "/api/traces", &[], b"").status, 200);
    drop(plain);
    let (_lan_ui, port) = start_ui(&db, "127.0.0.1:0", &["--allowed-host", "viewer.lan"], &[]);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let lan = raw(
        addr,
        "GET",
        "/api/traces",
        &[("Host", &format!("viewer.lan:{port}"))],
        b"",
    );
    assert_eq!(lan.status, 200);
    assert!(text(&lan).contains(TRACE));
    // With keys: Basic auth, the secret never printed.
    let (keyed, port) = start_ui(
        &db,
        "127.0.0.1:0",
        &["--public-key", PK],
        &[("LANGFUSE_SECRET_KEY", SK)],
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for path in [
        "/",
        "/api/traces",
        &format!("/api/traces/{TRACE}"),
        "/api/changes",
    ] {
        let answer = raw(addr, "GET", path, &[], b"");
        assert_eq!(answer.status, 401, "{path}");
        assert!(
            answer
                .header("www-authenticate")
                .is_some_and(|c| c.starts_with("Basic realm="))
        );
        let right = basic(PK, SK);
        assert_eq!(
            raw(addr, "GET", path, &[("Authorization", &right)], b"").status,
            200
        );
    }
    drop(keyed);
}

#[test]
fn a_page_of_another_origin_can_neither_read_nor_write_and_the_viewer_works_with_and_without_keys()
{
    let work = browser::prepare();

    let (open, open_db) = local_bridge("access-browser-open", None, |_| {});
    send_and_wait(&open, &open_db, TRACE, None);
    let right = basic(PK, SK);
    let (keyed, keyed_db) = local_bridge("access-browser-keyed", Some((PK, SK)), |_| {});
    send_and_wait(&keyed, &keyed_db, TRACE, Some(&right));
    let (_ui, ui_port) = start_ui(&open_db, "127.0.0.1:0", &[], &[]);

    let attacks = json!({
        "fetch": "a77ac000000000000000000000000001",
        "ingestion": "a77ac000000000000000000000000002",
        "form": "a77ac000000000000000000000000003",
        "cors": "a77ac000000000000000000000000004",
        "rebinding": "a77ac000000000000000000000000005",
    });
    let bodies: HashMap<String, String> = attacks
        .as_object()
        .expect("attacks")
        .iter()
        .map(|(k, id)| {
            let id = id.as_str().expect("id");
            let body = if k == "ingestion" {
                ingestion_json(id)
            } else {
                span_json(id, "injected by a page")
            };
            (k.clone(), body)
        })
        .collect();
    let expect = json!({
        "open": open.url(),
        "keyed": keyed.url(),
        "ui": format!("http://127.0.0.1:{ui_port}"),
        "publicKey": PK,
        "secretKey": SK,
        "secret": SECRET_PROMPT,
        "trace": TRACE,
        "bodies": bodies,
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bridge_access_browser.mjs");
    let runner = work.join("bridge_access_browser.mjs");
    std::fs::copy(&script, &runner).expect("copying the browser script");
    let out = Command::new("node")
        .arg(&runner)
        .env("CHROMIUM", CHROMIUM)
        .env("EXPECT", expect.to_string())
        .current_dir(&work)
        .output()
        .expect("running node");
    assert!(
        out.status.success(),
        "browser checks failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let refused: Vec<&str> = attacks
        .as_object()
        .expect("attacks")
        .values()
        .filter_map(|v| v.as_str())
        .collect();
    assert_never_stored(&open, &open_db, None, &refused);
}
