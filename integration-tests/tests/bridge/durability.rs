//! Durability of `langfuse-bridge serve` as a process: a sender streams 50,000 spans (500
//! OTLP/HTTP requests of 100 spans) while the bridge is killed with SIGKILL in the middle and
//! restarted on the same spool. Every span the bridge acknowledged (answered 2xx) must reach
//! the upstream; spans delivered more than once are counted, reported, and must be within the
//! records the bridge reports as in flight at the crash.
//!
//! 1. The upstream is down during the whole stream and comes up after the restart.
//! 2. The upstream is up but slow, answers 503 and 429, and resets connections.

use crate::bridge_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bridge_support::{bridge_binary, export_bytes, get, metric, post, temp_dir, wait_until};
use integration_tests::receiver::{Action, Receiver, ReservedPort};

const REQUESTS: u64 = 500;
const SPANS_PER_REQUEST: u64 = 100;

/// Starts the bridge binary on `127.0.0.1:0` and returns it with the port it bound (read from
/// its "listening" log line: the port is bound once, by the bridge itself).
fn spawn_bridge(upstream: &str, spool: &std::path::Path, fsync: &str) -> (Child, u16) {
    let mut child = Command::new(bridge_binary())
        .env_clear()
        .args(["serve", "--http", "127.0.0.1:0"])
        .args(["--grpc", "off", "--to", "langfuse", "--upstream", upstream])
        .arg("--spool")
        .arg(spool)
        .args(["--fsync", fsync])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start langfuse-bridge");
    let stderr = child.stderr.take().expect("piped stderr");
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Set BRIDGE_TEST_LOG to a file path to keep the bridge's logs (appended across restarts).
        let mut log = std::env::var_os("BRIDGE_TEST_LOG").and_then(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
        });
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("langfuse-bridge listening")
                && let Some(port) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("http="))
                    .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
                    .map(|a| a.port())
            {
                let _ = port_tx.send(port);
            }
            if let Some(log) = log.as_mut() {
                let _ = writeln!(log, "{line}");
            }
        }
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the bridge logs the address it listens on");
    let up = wait_until(Duration::from_secs(30), || {
        get(&format!("http://127.0.0.1:{port}/health")).is_ok_and(|a| a.status == 200)
    });
    assert!(up, "bridge did not come up");
    (child, port)
}

struct Outcome {
    acknowledged: Vec<u64>,
    delivered: HashMap<u64, usize>,
    redelivered_records: f64,
}

fn span_id(hex: &str) -> u64 {
    u64::from_str_radix(hex, 16).unwrap_or(u64::MAX)
}

/// Streams, kills and restarts the bridge; `upstream_early` starts the upstream before the
/// stream (else after the restart).
fn crash_run(tag: &str, fsync: &str, upstream_early: bool, script: fn(usize) -> Action) -> Outcome {
    let reserved = ReservedPort::new();
    let upstream_url = reserved.base_url();
    let mut reserved = Some(reserved);
    let spool = temp_dir(tag);
    let script_fn = move |_: &integration_tests::receiver::Request, i: usize| script(i);
    let mut upstream = upstream_early
        .then(|| reserved.take())
        .flatten()
        .map(|r| Receiver::start_with(r.listen(), script_fn));
    let (mut bridge, port) = spawn_bridge(&upstream_url, &spool, fsync);
    // The restarted bridge binds a new port; the sender follows it.
    let bridge_port = Arc::new(AtomicU16::new(port));

    let acknowledged = Arc::new(Mutex::new(Vec::<u64>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let acknowledged = Arc::clone(&acknowledged);
        let done = Arc::clone(&done);
        let bridge_port = Arc::clone(&bridge_port);
        std::thread::spawn(move || {
            for r in 0..REQUESTS {
                let first = r * SPANS_PER_REQUEST + 1;
                let body = export_bytes(first, SPANS_PER_REQUEST);
                loop {
                    let port = bridge_port.load(Ordering::SeqCst);
                    let url = format!("http://127.0.0.1:{port}/v1/traces");
                    match post(&url, &[("content-type", "application/x-protobuf")], &body) {
                        Ok(a) if (200..300).contains(&a.status) => {
                            acknowledged
                                .lock()
                                .unwrap()
                                .extend(first..first + SPANS_PER_REQUEST);
                            break;
                        }
                        // Refused: the request never reached a bridge; send it again.
                        Err(e) if e.to_ascii_lowercase().contains("refused") => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        // Cut or answered otherwise: not acknowledged; move on.
                        _ => break,
                    }
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    // Kill -9 in the middle of the stream.
    let half = (REQUESTS * SPANS_PER_REQUEST / 2) as usize;
    assert!(wait_until(Duration::from_secs(300), || acknowledged
        .lock()
        .unwrap()
        .len()
        >= half));
    bridge.kill().expect("SIGKILL the bridge");
    let _ = bridge.wait();
    let (mut bridge, port) = spawn_bridge(&upstream_url, &spool, fsync);
    bridge_port.store(port, Ordering::SeqCst);
    sender.join().expect("sender");
    assert!(done.load(Ordering::SeqCst));
    let upstream = upstream.get_or_insert_with(|| {
        let reserved = reserved
            .take()
            .expect("the upstream's port is still reserved");
        Receiver::start_with(reserved.listen(), script_fn)
    });

    let acknowledged = acknowledged.lock().unwrap().clone();
    let delivered = || -> HashMap<u64, usize> {
        let mut counts = HashMap::new();
        for r in upstream.requests().iter().filter(|r| r.acknowledged()) {
            for id in r.span_ids() {
                *counts.entry(span_id(&id)).or_insert(0) += 1;
            }
        }
        counts
    };
    let all_there = wait_until(Duration::from_secs(180), || {
        let d = delivered();
        acknowledged.iter().all(|id| d.contains_key(id))
    });
    let metrics = get(&format!("http://127.0.0.1:{port}/metrics"))
        .map(|a| String::from_utf8_lossy(&a.body).into_owned())
        .unwrap_or_default();
    let redelivered_records =
        metric(&metrics, "langfuse_bridge_redelivered_records_total").unwrap_or(-1.0);
    let _ = bridge.kill();
    let _ = bridge.wait();
    let _ = std::fs::remove_dir_all(&spool);
    assert!(all_there, "{tag}: acknowledged spans missing upstream");
    Outcome {
        acknowledged,
        delivered: delivered(),
        redelivered_records,
    }
}

fn report(tag: &str, o: &Outcome) -> usize {
    let duplicates: usize = o.delivered.values().map(|n| n - 1).sum();
    let missing = o
        .acknowledged
        .iter()
        .filter(|id| !o.delivered.contains_key(id))
        .count();
    // Written to the real stdout so every run shows the figures.
    use std::io::Write;
    let _ = writeln!(
        std::io::stdout(),
        "{tag}: {} spans sent, {} acknowledged, {} delivered, {missing} acknowledged but missing, {duplicates} delivered twice (bridge reported {} records in flight at the crash)",
        REQUESTS * SPANS_PER_REQUEST,
        o.acknowledged.len(),
        o.delivered.len(),
        o.redelivered_records
    );
    assert_eq!(missing, 0);
    duplicates
}

#[test]
fn every_acknowledged_span_survives_kill_9_while_the_upstream_is_down() {
    let o = crash_run("down", "always", false, |_| Action::ok());
    let duplicates = report("upstream down, fsync always", &o);
    // Nothing was forwarded before the crash, so nothing can arrive twice.
    assert_eq!(duplicates, 0);
    assert!(o.acknowledged.len() as u64 >= REQUESTS * SPANS_PER_REQUEST / 2);
}

#[test]
fn every_acknowledged_span_survives_kill_9_with_a_slow_failing_upstream() {
    fn flaky(i: usize) -> Action {
        match i % 7 {
            0 => Action::status(503),
            1 => Action::retry_after(429, "0"),
            2 => Action::ResetMidRequest,
            3 => Action::Delay(Duration::from_millis(150), Box::new(Action::ok())),
            _ => Action::ok(),
        }
    }
    let o = crash_run("flaky", "interval", true, flaky);
    let duplicates = report("upstream slow/503/429/reset, fsync interval", &o);
    // Only what was in flight at the crash may arrive twice (each record holds 100 spans).
    assert!(o.redelivered_records >= 0.0);
    assert!(
        duplicates as f64 <= o.redelivered_records * SPANS_PER_REQUEST as f64,
        "{duplicates} duplicates, {} records in flight",
        o.redelivered_records
    );
}
