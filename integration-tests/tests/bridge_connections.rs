//! Connections of `langfuse-bridge serve` as a process (issue 18): idle and stalled clients
//! cannot lock out `/health` and ingest (connection cap, header, body and idle timeouts, each
//! logged), SIGTERM honours `--shutdown-timeout` as the bound of the whole shutdown, and the
//! log level can be raised with `--log-level` or `RUST_LOG`.

#[path = "bridge/bridge_support/mod.rs"]
mod bridge_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bridge_support::{bridge_binary, export_bytes, temp_dir, wait_until};

/// A `langfuse-bridge serve` process whose log goes to a file.
struct BridgeProcess {
    child: Child,
    http: SocketAddr,
    log: PathBuf,
    dir: PathBuf,
}

impl BridgeProcess {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill({signal})");
    }

    /// Waits for the process to exit, at most `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("bridge log:\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where a run's bridge stores things and logs.
fn run_dir(tag: &str) -> PathBuf {
    let dir = temp_dir(tag);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Starts the binary with `args` after `serve`, the environment cleared but for `env`,
/// optionally under a soft open-files limit; `None` when it exits before listening (then
/// the exit status and log are returned as the error).
fn spawn(
    tag: &str,
    args: &[&str],
    env: &[(&str, &str)],
    open_files: Option<u64>,
) -> Result<BridgeProcess, (Option<ExitStatus>, String)> {
    let dir = run_dir(tag);
    let log = dir.join("bridge.log");
    let mut command = Command::new(bridge_binary());
    command
        .env_clear()
        .envs(env.iter().copied())
        .args(["serve", "--http", "127.0.0.1:0", "--spool"])
        .arg(dir.join("spool"))
        .arg("--db")
        .arg(dir.join("traces.db"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
    if let Some(soft) = open_files {
        let hard = open_files_limit().1;
        // SAFETY: only setrlimit(2), which is async-signal-safe, runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: soft.min(hard),
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().expect("start langfuse-bridge");
    let mut http = None;
    let up = wait_until(Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        http = text
            .lines()
            .find(|l| l.contains("langfuse-bridge listening"))
            .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("http=")))
            .and_then(|a| a.parse().ok());
        http.is_some() || child.try_wait().ok().flatten().is_some()
    });
    match http {
        Some(http) if up => Ok(BridgeProcess {
            child,
            http,
            log,
            dir,
        }),
        _ => {
            let _ = child.kill();
            let status = child.wait().ok();
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_dir_all(&dir);
            Err((status, text))
        }
    }
}

fn start(tag: &str, args: &[&str], env: &[(&str, &str)], open_files: Option<u64>) -> BridgeProcess {
    spawn(tag, args, env, open_files)
        .unwrap_or_else(|(status, log)| panic!("bridge did not come up ({status:?}):\n{log}"))
}

/// (soft, hard) open-files limits of this process.
fn open_files_limit() -> (u64, u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes into the struct we pass.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    (limit.rlim_cur, limit.rlim_max)
}

/// Lets this test process hold `needed` descriptors (the clients of the attack).
fn raise_own_open_files(needed: u64) {
    let (soft, hard) = open_files_limit();
    if soft >= needed {
        return;
    }
    assert!(
        hard >= needed,
        "the hard open-files limit {hard} is below {needed}"
    );
    let limit = libc::rlimit {
        rlim_cur: needed,
        rlim_max: hard,
    };
    // SAFETY: setrlimit(2) with a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
}

/// Sends `request` on a new connection and reads the whole answer (the request says
/// `Connection: close`), all within `timeout`; the status code and the answer.
fn exchange(addr: SocketAddr, request: &[u8], timeout: Duration) -> Result<(u16, String), String> {
    let end = Instant::now() + timeout;
    let left = || {
        end.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let mut stream =
        TcpStream::connect_timeout(&addr, left()).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_write_timeout(Some(left()))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request)
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        stream
            .set_read_timeout(Some(left()))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read after {} bytes: {e}", answer.len())),
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))?;
    Ok((status, text))
}

fn health_request() -> Vec<u8> {
    b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".to_vec()
}

fn export_request(first: u64) -> Vec<u8> {
    let body = export_bytes(first, 3);
    let mut request = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

/// Reads from `stream` until it is closed by the peer (`Ok(bytes read)`) or `timeout`.
fn read_until_closed(stream: &mut TcpStream, timeout: Duration) -> Result<Vec<u8>, String> {
    let end = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("still open after {timeout:?}; read {got:?}"));
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            // A reset is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(got),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

#[test]
fn idle_connections_beyond_the_open_files_limit_do_not_lock_out_health_and_ingest() {
    const IDLE: usize = 1_100;
    raise_own_open_files(IDLE as u64 + 256);
    let bridge = start(
        "conn-idle",
        &["--grpc", "off", "--to", "local"],
        &[],
        Some(1024),
    );

    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        match TcpStream::connect_timeout(&bridge.http, Duration::from_secs(5)) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("idle connection {i} could not connect: {e}"),
        }
    }

    let started = Instant::now();
    let mut health = Err(String::from("not tried"));
    while started.elapsed() < Duration::from_secs(5) {
        health = exchange(
            bridge.http,
            &health_request(),
            Duration::from_secs(5) - started.elapsed().min(Duration::from_secs(5)),
        );
        if health.is_ok() {
            break;
        }
    }
    let health_after = started.elapsed();
    let (status, answer) = health.unwrap_or_else(|e| {
        panic!("/health did not answer within 5 s with {IDLE} idle connections open: {e}")
    });
    assert_eq!(status, 200, "{answer}");
    eprintln!("/health answered after {health_after:?} with {IDLE} idle connections");

    let (status, answer) = exchange(bridge.http, &export_request(1), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("the export got no answer: {e}"));
    assert_eq!(status, 200, "the export is accepted: {answer}");

    assert!(
        wait_until(Duration::from_secs(5), || bridge
            .log()
            .contains("connection limit reached")),
        "the log says the cap was hit"
    );
    drop(idle);
}

#[test]
fn out_of_descriptors_an_accept_error_is_logged_and_an_idle_connection_makes_room() {
    const IDLE: usize = 100;
    // A cap above the descriptor limit: accepts fail with EMFILE before the cap is reached.
    let bridge = start(
        "conn-emfile",
        &[
            "--grpc",
            "off",
            "--to",
            "local",
            "--max-connections",
            "1000",
        ],
        &[],
        Some(64),
    );
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|i| {
            TcpStream::connect_timeout(&bridge.http, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect();
    let (status, answer) = exchange(bridge.http, &health_request(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("/health did not answer out of descriptors: {e}"));
    assert_eq!(status, 200, "{answer}");
    let log = bridge.log();
    assert!(log.contains("cannot accept a connection"), "{log}");
    assert!(
        log.matches("cannot accept a connection").count() <= 2,
        "rate-limited:\n{log}"
    );
    drop(idle);
}

#[test]
fn a_stalled_body_gets_408_and_a_stalled_head_is_closed() {
    let bridge = start(
        "conn-stall",
        &[
            "--grpc",
            "off",
            "--to",
            "local",
            "--body-read-timeout",
            "1",
            "--header-read-timeout",
            "1",
        ],
        &[],
        None,
    );
    // A body promised 1000 bytes long that stops after 10.
    let mut stalled = TcpStream::connect(bridge.http).expect("connect");
    stalled
        .write_all(
            b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n\
              Content-Length: 1000\r\n\r\n0123456789",
        )
        .expect("write");
    let started = Instant::now();
    let answer = read_until_closed(&mut stalled, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("the stalled body was not timed out: {e}"));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "answer: {answer:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // A request head that stops in the middle.
    let mut slow_head = TcpStream::connect(bridge.http).expect("connect");
    slow_head
        .write_all(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("write");
    let started = Instant::now();
    read_until_closed(&mut slow_head, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("the stalled head was not timed out: {e}"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let log = bridge.log();
    assert!(log.contains("body read timeout"), "{log}");
    assert!(log.contains("header read timeout"), "{log}");
    // The bridge still serves.
    let (status, _) =
        exchange(bridge.http, &health_request(), Duration::from_secs(5)).expect("health");
    assert_eq!(status, 200);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_and_grpc_gets_the_same_limits() {
    let grpc_listener_log = "grpc=Some(";
    let bridge = start(
        "conn-keepalive",
        &[
            "--grpc",
            "127.0.0.1:0",
            "--to",
            "local",
            "--idle-timeout",
            "1",
            "--header-read-timeout",
            "1",
        ],
        &[],
        None,
    );
    // One request on a kept-alive connection, then silence.
    let mut kept = TcpStream::connect(bridge.http).expect("connect");
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("write");
    let answer = read_until_closed(&mut kept, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("the idle keep-alive connection stayed open: {e}"));
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{answer:?}"
    );

    // The gRPC listener: a connection that never sends the HTTP/2 preface is closed too.
    let log = bridge.log();
    let grpc: SocketAddr = log
        .lines()
        .find(|l| l.contains("langfuse-bridge listening"))
        .and_then(|l| l.split(grpc_listener_log).nth(1))
        .and_then(|rest| rest.split(')').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no gRPC address in the log:\n{log}"));
    let mut silent = TcpStream::connect(grpc).expect("connect gRPC");
    let started = Instant::now();
    read_until_closed(&mut silent, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("a silent gRPC connection stayed open: {e}"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// An upstream that accepts connections and never answers.
struct SilentUpstream {
    addr: SocketAddr,
    accepted: Arc<Mutex<Vec<TcpStream>>>,
}

impl SilentUpstream {
    fn start() -> SilentUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let held = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                held.lock().unwrap().push(stream);
            }
        });
        SilentUpstream { addr, accepted }
    }

    fn connections(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }
}

#[test]
fn sigterm_exits_within_the_shutdown_timeout_with_an_idle_client_and_a_silent_upstream() {
    let upstream = SilentUpstream::start();
    let url = format!("http://{}", upstream.addr);
    let mut bridge = start(
        "conn-sigterm",
        &[
            "--grpc",
            "off",
            "--to",
            "langfuse",
            "--upstream",
            &url,
            "--shutdown-timeout",
            "2",
        ],
        &[],
        None,
    );
    // A backlog: exports the upstream never takes.
    for first in [1, 10, 20] {
        let (status, answer) =
            exchange(bridge.http, &export_request(first), Duration::from_secs(10)).expect("export");
        assert_eq!(status, 200, "{answer}");
    }
    // The forwarder is inside a send that will not be answered.
    assert!(wait_until(Duration::from_secs(10), || upstream
        .connections()
        > 0));
    // An idle keep-alive client.
    let mut idle = TcpStream::connect(bridge.http).expect("connect");
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("write");
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).expect("answer");
    assert_eq!(&first, b"HTTP/1.1 200");

    let started = Instant::now();
    bridge.signal(libc::SIGTERM);
    let status = bridge.wait_exit(Duration::from_secs(30));
    let took = started.elapsed();
    eprintln!("SIGTERM with --shutdown-timeout 2: exited after {took:?} ({status:?})");
    let status = status.expect("the bridge exited");
    assert!(
        took < Duration::from_millis(3_500),
        "the shutdown took {took:?}, more than the 2 s timeout and a margin"
    );
    assert!(status.success(), "{status:?}");
    assert!(
        bridge.log().contains("stay spooled"),
        "the log says what was not delivered stays spooled:\n{}",
        bridge.log()
    );
}

fn debug_lines(log: &str) -> usize {
    log.lines().filter(|l| l.contains(" DEBUG ")).count()
}

/// Starts, then stops with SIGTERM, the bridge; its whole log.
fn log_of_a_run(tag: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut base = vec!["--grpc", "off", "--to", "local"];
    base.extend_from_slice(args);
    let mut bridge = start(tag, &base, env, None);
    bridge.signal(libc::SIGTERM);
    bridge.wait_exit(Duration::from_secs(20)).expect("exited");
    bridge.log()
}

#[test]
fn the_log_level_is_raised_by_the_flag_and_by_rust_log() {
    let info = log_of_a_run("log-default", &[], &[]);
    assert_eq!(debug_lines(&info), 0, "info by default:\n{info}");

    let env = log_of_a_run("log-env", &[], &[("RUST_LOG", "debug")]);
    assert!(debug_lines(&env) > 0, "RUST_LOG=debug:\n{env}");

    let targets = log_of_a_run(
        "log-targets",
        &[],
        &[("RUST_LOG", "langfuse_bridge=debug,tower=warn")],
    );
    assert!(
        targets
            .lines()
            .any(|l| l.contains(" DEBUG ") && l.contains("langfuse_bridge")),
        "RUST_LOG=langfuse_bridge=debug:\n{targets}"
    );
    assert!(
        !targets
            .lines()
            .any(|l| l.contains(" DEBUG ") && !l.contains("langfuse_bridge")),
        "only the listed target is raised:\n{targets}"
    );

    let flag = log_of_a_run("log-flag", &["--log-level", "debug"], &[]);
    assert!(debug_lines(&flag) > 0, "--log-level debug:\n{flag}");
    let flag_wins = log_of_a_run(
        "log-flag-wins",
        &["--log-level", "info"],
        &[("RUST_LOG", "debug")],
    );
    assert_eq!(
        debug_lines(&flag_wins),
        0,
        "the flag beats RUST_LOG:\n{flag_wins}"
    );

    let toml_dir = run_dir("log-toml");
    let toml = toml_dir.join("bridge.toml");
    std::fs::write(&toml, "log_level = \"debug\"\n").expect("config");
    let from_file = log_of_a_run(
        "log-file",
        &["--config", toml.to_str().expect("utf-8")],
        &[],
    );
    assert!(
        debug_lines(&from_file) > 0,
        "log_level in the file:\n{from_file}"
    );
    let _ = std::fs::remove_dir_all(&toml_dir);
}

#[test]
fn an_invalid_log_level_is_a_clear_configuration_error() {
    let (status, log) = match spawn(
        "log-bogus",
        &["--grpc", "off", "--log-level", "bogus"],
        &[],
        None,
    ) {
        Ok(_) => panic!("the bridge started with --log-level bogus"),
        Err(failure) => failure,
    };
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{log}");
    assert!(log.contains("log level 'bogus'"), "{log}");
    assert!(log.starts_with("error: "), "{log}");
}

#[test]
fn the_ui_command_has_the_same_limits() {
    let dir = run_dir("conn-ui");
    let mut child = Command::new(bridge_binary())
        .env_clear()
        .args([
            "ui",
            "--http",
            "127.0.0.1:0",
            "--header-read-timeout",
            "1",
            "--db",
        ])
        .arg(dir.join("traces.db"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start langfuse-bridge ui");
    let mut first_line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut first_line,
    )
    .expect("the ui says where it listens");
    let addr: Option<SocketAddr> = first_line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok());
    let result = std::panic::catch_unwind(|| {
        let addr = addr.unwrap_or_else(|| panic!("no address in {first_line:?}"));
        let mut silent = TcpStream::connect(addr).expect("connect");
        let started = Instant::now();
        read_until_closed(&mut silent, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("a silent connection to the viewer stayed open: {e}"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let (status, _) = exchange(
            addr,
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            Duration::from_secs(5),
        )
        .expect("the viewer answers");
        assert_eq!(status, 200);
    });
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
