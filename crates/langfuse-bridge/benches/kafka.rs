//! Kafka between bridges on this machine, one run: a broker (librdkafka's mock cluster, in
//! its own process so that its CPU is counted apart), `serve --to kafka`, and `consume`
//! processes of the release binary. Measured:
//!
//! 1. **produce**: exports posted by 4 senders to `serve --to kafka` until the sink has
//!    forwarded every span (the broker acknowledged it): spans/s, serve's CPU per span, its
//!    peak RSS;
//! 2. **bare consume** (the baseline): a librdkafka consumer that reads every message of the
//!    topic and does nothing with it (20 passes from the beginning, for enough CPU ticks);
//! 3. **consume** with 1 consumer `--to otlp` (forwarded as received), 1 consumer
//!    `--to ingestion` (translated), 2 consumers `--to ingestion`: the topic's backlog drained
//!    into a local receiver, 3 times each with a new group: spans/s (from the first assignment
//!    to the last span received), CPU per span of the consumer processes, against the bare
//!    consume;
//! 4. **latency**: serve and 2 consumers running, exports paced at `BENCH_RATE` spans/s for
//!    10 s: p50/p99 from a trace's post to its spans' arrival at the receiver.
//!
//! The broker's CPU is given per phase, apart. CPU is read from `/proc/<pid>/stat`, peak RSS
//! from `VmHWM` of each process.
//!
//! `cargo bench -p langfuse-bridge --features kafka --bench kafka` (`BENCH_EXPORTS`, default
//! 300 exports of 100 spans, about 3 MiB per partition: the mock broker keeps 5 MiB per
//! partition, so the consume phases' backlog must stay under it; `BENCH_RATE`, default 5000
//! spans/s).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use langfuse_otel_transport::{ContentEncoding, HttpSender, Payload, RetryPolicy};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

mod common;

const TOPIC: &str = "otlp_spans";
const PARTITIONS: i32 = 3;
const TRACES_PER_EXPORT: u64 = 10;
const SPANS_PER_TRACE: u64 = 10;
const SPANS_PER_EXPORT: u64 = TRACES_PER_EXPORT * SPANS_PER_TRACE;
const SENDERS: u64 = 4;
const USER_HZ: f64 = 100.0;
/// Times the bare consume reads the topic (it costs too little per pass for 10 ms ticks).
const BARE_PASSES: u32 = 20;
/// Times each consume phase drains the topic, each time with a new group.
const CONSUME_ROUNDS: usize = 3;

/// Export `n`: `TRACES_PER_EXPORT` traces of `SPANS_PER_TRACE` chat spans, trace ids from `n`.
fn export(n: u64) -> Vec<u8> {
    let first = n * SPANS_PER_EXPORT + 1;
    let mut request = common::export(0, first..first + SPANS_PER_EXPORT);
    for scope in &mut request.resource_spans[0].scope_spans {
        for (i, span) in scope.spans.iter_mut().enumerate() {
            span.trace_id = trace_id(n * TRACES_PER_EXPORT + i as u64 / SPANS_PER_TRACE);
        }
    }
    request.encode_to_vec()
}

fn trace_id(t: u64) -> Vec<u8> {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&t.to_be_bytes());
    id[15] = 1;
    id.to_vec()
}

/// (CPU seconds, peak RSS MiB) of a live process.
fn proc_stats(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let cpu = stat.rsplit_once(')').map_or(0.0, |(_, rest)| {
        let f: Vec<&str> = rest.split_whitespace().collect();
        let t = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        (t(11) + t(12)) as f64 / USER_HZ
    });
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0);
    (cpu, rss)
}

/// A child process; killed when dropped.
struct Proc {
    child: Child,
    http: Option<SocketAddr>,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stats(&self) -> (f64, f64) {
        proc_stats(self.pid())
    }

    fn get(&self, path: &str) -> String {
        let Some(addr) = self.http else {
            return String::new();
        };
        let mut stream = match std::net::TcpStream::connect(addr) {
            Ok(s) => s,
            Err(_) => return String::new(),
        };
        let _ = write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        );
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut out);
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    }

    fn metric(&self, series: &str) -> f64 {
        self.get("/metrics")
            .lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0)
    }

    fn assigned(&self) -> usize {
        serde_json::from_str::<serde_json::Value>(&self.get("/health"))
            .ok()
            .and_then(|v| v["assigned_partitions"].as_array().map(Vec::len))
            .unwrap_or(0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the bridge binary with `args`, waiting for the log line naming its listener.
fn bridge(args: &[&str]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_langfuse-bridge"))
        .env_clear()
        .args(args)
        .args([
            "--log-format",
            "json",
            "--log-level",
            "warn,langfuse_bridge=info",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start langfuse-bridge");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(addr) = v["fields"]["http"].as_str().and_then(|a| a.parse().ok())
            {
                sent = tx.send(addr).is_ok();
            }
        }
    });
    let http = rx.recv_timeout(Duration::from_secs(60)).ok();
    assert!(http.is_some(), "langfuse-bridge {args:?} did not start");
    Proc { child, http }
}

/// The receiver of `consume`: counts spans (OTLP) or observation events (ingestion) and the
/// first arrival of each trace.
#[derive(Default)]
struct Received {
    spans: AtomicU64,
    arrivals: Mutex<HashMap<String, Instant>>,
}

fn start_receiver(rt: &tokio::runtime::Runtime) -> (SocketAddr, Arc<Received>) {
    let received = Arc::new(Received::default());
    let app = Router::new()
        .route(
            "/v1/traces",
            post(|State(r): State<Arc<Received>>, body: Bytes| async move {
                if let Ok(req) = ExportTraceServiceRequest::decode(body) {
                    let n: usize = req
                        .resource_spans
                        .iter()
                        .flat_map(|rs| &rs.scope_spans)
                        .map(|ss| ss.spans.len())
                        .sum();
                    r.spans.fetch_add(n as u64, Ordering::Relaxed);
                }
                ""
            }),
        )
        .route(
            "/api/public/ingestion",
            post(|State(r): State<Arc<Received>>, body: Bytes| async move {
                let now = Instant::now();
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                    let mut arrivals = r.arrivals.lock().expect("arrivals");
                    for e in v["batch"].as_array().into_iter().flatten() {
                        if e["type"] == "trace-create" {
                            continue;
                        }
                        r.spans.fetch_add(1, Ordering::Relaxed);
                        if let Some(t) = e["body"]["traceId"].as_str() {
                            arrivals.entry(t.to_owned()).or_insert(now);
                        }
                    }
                }
                "{}"
            }),
        )
        .with_state(Arc::clone(&received))
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind receiver");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, received)
}

/// Posts `bodies` from `SENDERS` threads; `pace`: one export per `pace` per sender. Returns
/// the send time of each export.
fn send(url: &str, bodies: Arc<Vec<Vec<u8>>>, pace: Option<Duration>) -> Vec<(u64, Instant)> {
    let handles: Vec<_> = (0..SENDERS)
        .map(|s| {
            let bodies = Arc::clone(&bodies);
            let url = url.to_owned();
            std::thread::spawn(move || {
                let sender = HttpSender::builder(url)
                    .retry(RetryPolicy::disabled())
                    .build()
                    .expect("sender");
                let start = Instant::now();
                let mut sent = Vec::new();
                for (i, body) in bodies.iter().enumerate() {
                    if i as u64 % SENDERS != s {
                        continue;
                    }
                    if let Some(pace) = pace {
                        let due = start + pace * (i as u32 / SENDERS as u32);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let payload = Payload::new(
                        body.clone(),
                        "application/x-protobuf",
                        ContentEncoding::Identity,
                        SPANS_PER_EXPORT as usize,
                    );
                    let at = Instant::now();
                    let outcome = sender.send(&payload, at + Duration::from_secs(30));
                    assert!(outcome.is_delivered(), "{outcome}");
                    sent.push((i as u64, at));
                }
                sent
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("sender"))
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < end, "{what}: not done in {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Messages in the topic (sum of the partitions' high watermarks). The mock broker keeps at
/// most 5 MiB per partition (older message sets are deleted, like `retention.bytes`): a run
/// whose backlog outgrew that could never be read whole, so it stops here.
fn topic_messages(brokers: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("consumer");
    (0..PARTITIONS)
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks(TOPIC, p, Duration::from_secs(10))
                .expect("watermarks");
            assert_eq!(
                low, 0,
                "the broker dropped the oldest messages of partition {p} (5 MiB per partition): lower BENCH_EXPORTS"
            );
            high
        })
        .sum()
}

/// `--broker`: runs the broker until standard input closes; prints its bootstrap servers.
fn broker_main() {
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, PARTITIONS, 1).expect("topic");
    println!("{}", cluster.bootstrap_servers());
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
}

/// `--bare-consume BROKERS MESSAGES PASSES`: reads the topic's MESSAGES messages PASSES times
/// from the beginning of each partition (assigned, no group) and does nothing with them;
/// prints `elapsed_s cpu_s rss_mib` over all passes, from the first message.
fn bare_consume_main(args: &[String]) {
    let [brokers, messages, passes] = args else {
        panic!("--bare-consume BROKERS MESSAGES PASSES");
    };
    let messages: i64 = messages.parse().expect("MESSAGES");
    let passes: u32 = passes.parse().expect("PASSES");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-bare")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut started = None;
    let mut cpu_start = 0.0;
    let mut bytes = 0usize;
    for _ in 0..passes {
        let mut list = rdkafka::TopicPartitionList::new();
        for p in 0..PARTITIONS {
            list.add_partition_offset(TOPIC, p, rdkafka::Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&list).expect("assign");
        let mut seen = 0i64;
        let mut progress = Instant::now();
        while seen < messages {
            assert!(
                progress.elapsed() < Duration::from_secs(30),
                "bare consume: {seen} of {messages} messages, then nothing for 30 s"
            );
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                progress = Instant::now();
                if started.is_none() {
                    started = Some(Instant::now());
                    cpu_start = proc_stats(std::process::id()).0;
                }
                bytes += m.payload().map_or(0, <[u8]>::len);
                seen += 1;
            }
        }
    }
    let elapsed = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    let (cpu, rss) = proc_stats(std::process::id());
    println!("{elapsed} {} {rss} {bytes}", cpu - cpu_start);
}

struct Phase {
    name: String,
    spans_per_sec: f64,
    cpu_us_per_span: f64,
    rss_mib: f64,
    broker_cpu_us_per_span: f64,
}

/// Drains the topic with `n` consume processes `--to DEST`; from the first assignment to the
/// last span at the receiver.
fn consume_phase(
    brokers: &str,
    broker_pid: u32,
    rt: &tokio::runtime::Runtime,
    n: usize,
    dest: &str,
    total: u64,
    round: usize,
) -> Phase {
    let (addr, received) = start_receiver(rt);
    let upstream = if dest == "otlp" {
        format!("http://{addr}/v1/traces")
    } else {
        format!("http://{addr}")
    };
    let group = format!("bench-{dest}-{n}-{round}");
    let dir = std::env::temp_dir().join(format!("kafka-bench-{}-{group}", std::process::id()));
    let consumers: Vec<Proc> = (0..n)
        .map(|i| {
            let letters = dir.join(i.to_string());
            bridge(&[
                "consume",
                "--kafka-brokers",
                brokers,
                "--kafka-group",
                &group,
                "--to",
                dest,
                "--upstream",
                &upstream,
                "--http",
                "127.0.0.1:0",
                "--dead-letter",
                letters.to_str().expect("path"),
            ])
        })
        .collect();
    wait_for("assignment", Duration::from_secs(60), || {
        consumers.iter().any(|c| c.assigned() > 0)
    });
    let started = Instant::now();
    let cpu0: f64 = consumers.iter().map(|c| c.stats().0).sum();
    let broker0 = proc_stats(broker_pid).0;
    wait_for("consume", Duration::from_secs(600), || {
        received.spans.load(Ordering::Relaxed) >= total
    });
    let elapsed = started.elapsed().as_secs_f64();
    let stats: Vec<(f64, f64)> = consumers.iter().map(Proc::stats).collect();
    let cpu: f64 = stats.iter().map(|s| s.0).sum::<f64>() - cpu0;
    let _ = std::fs::remove_dir_all(&dir);
    Phase {
        name: format!("consume ×{n} --to {dest}"),
        spans_per_sec: total as f64 / elapsed,
        cpu_us_per_span: cpu / total as f64 * 1e6,
        rss_mib: stats.iter().map(|s| s.1).fold(0.0, f64::max),
        broker_cpu_us_per_span: (proc_stats(broker_pid).0 - broker0) / total as f64 * 1e6,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--broker") => return broker_main(),
        Some("--bare-consume") => return bare_consume_main(&args[2..]),
        _ => {}
    }
    let exports: u64 = std::env::var("BENCH_EXPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let rate: u64 = std::env::var("BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let total = exports * SPANS_PER_EXPORT;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let me = std::env::current_exe().expect("bench executable");
    let mut broker = Command::new(&me)
        .arg("--broker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("broker");
    let broker_pid = broker.id();
    let mut line = String::new();
    BufReader::new(broker.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("bootstrap servers");
    let brokers = line.trim().to_owned();
    let mut phases = Vec::new();

    // 1. produce
    let spool = std::env::temp_dir().join(format!("kafka-bench-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    let serve = bridge(&[
        "serve",
        "--http",
        "127.0.0.1:0",
        "--grpc",
        "off",
        "--to",
        "kafka",
        "--kafka-brokers",
        &brokers,
        "--fsync",
        "interval",
        "--spool",
        spool.to_str().expect("path"),
    ]);
    let url = format!("http://{}/v1/traces", serve.http.expect("listener"));
    let bodies = Arc::new((0..exports).map(export).collect::<Vec<_>>());
    let (cpu0, _) = serve.stats();
    let broker0 = proc_stats(broker_pid).0;
    let started = Instant::now();
    send(&url, bodies, None);
    wait_for("produce", Duration::from_secs(600), || {
        serve.metric("langfuse_bridge_forwarded_items_total") >= total as f64
    });
    let elapsed = started.elapsed().as_secs_f64();
    let (cpu, rss) = serve.stats();
    phases.push(Phase {
        name: "serve --to kafka".into(),
        spans_per_sec: total as f64 / elapsed,
        cpu_us_per_span: (cpu - cpu0) / total as f64 * 1e6,
        rss_mib: rss,
        broker_cpu_us_per_span: (proc_stats(broker_pid).0 - broker0) / total as f64 * 1e6,
    });
    let messages = topic_messages(&brokers);

    // 2. bare consume
    let broker0 = proc_stats(broker_pid).0;
    let out = Command::new(&me)
        .args([
            "--bare-consume",
            &brokers,
            &messages.to_string(),
            &BARE_PASSES.to_string(),
        ])
        .output()
        .expect("bare consume");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    assert!(
        f.len() >= 3,
        "bare consume printed {text:?}, {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = (total * u64::from(BARE_PASSES)) as f64;
    phases.push(Phase {
        name: "bare consume (baseline)".into(),
        spans_per_sec: read / f[0],
        cpu_us_per_span: f[1] / read * 1e6,
        rss_mib: f[2],
        broker_cpu_us_per_span: (proc_stats(broker_pid).0 - broker0) / read * 1e6,
    });

    // 3. consume
    for (n, dest) in [(1, "otlp"), (1, "ingestion"), (2, "ingestion")] {
        let runs: Vec<Phase> = (0..CONSUME_ROUNDS)
            .map(|round| consume_phase(&brokers, broker_pid, &rt, n, dest, total, round))
            .collect();
        let k = runs.len() as f64;
        phases.push(Phase {
            name: runs[0].name.clone(),
            // Total spans over total time: the harmonic mean of the rounds' rates.
            spans_per_sec: k / runs.iter().map(|r| 1.0 / r.spans_per_sec).sum::<f64>(),
            cpu_us_per_span: runs.iter().map(|r| r.cpu_us_per_span).sum::<f64>() / k,
            rss_mib: runs.iter().map(|r| r.rss_mib).fold(0.0, f64::max),
            broker_cpu_us_per_span: runs.iter().map(|r| r.broker_cpu_us_per_span).sum::<f64>() / k,
        });
    }

    // 4. latency: serve and two consumers live, paced.
    let (addr, received) = start_receiver(&rt);
    let letters = std::env::temp_dir().join(format!("kafka-bench-live-{}", std::process::id()));
    let live: Vec<Proc> = (0..2)
        .map(|i| {
            let dir = letters.join(i.to_string());
            bridge(&[
                "consume",
                "--kafka-brokers",
                &brokers,
                "--kafka-group",
                "bench-live",
                "--to",
                "ingestion",
                "--upstream",
                &format!("http://{addr}"),
                "--http",
                "127.0.0.1:0",
                "--dead-letter",
                dir.to_str().expect("path"),
                // A fetch that finds no data waits the whole fetch.wait.max.ms on the mock
                // broker, even when data arrives meanwhile (the JVM broker answers as soon as
                // it does): measure the bridge, not that wait.
                "--kafka-option",
                "fetch.wait.max.ms=10",
            ])
        })
        .collect();
    // Both hold partitions, and the backlog is read, before the paced load starts.
    wait_for("live group", Duration::from_secs(60), || {
        live.iter().all(|c| c.assigned() > 0) && received.spans.load(Ordering::Relaxed) >= total
    });
    let base = received.spans.load(Ordering::Relaxed);
    let paced_exports = (rate * 10 / SPANS_PER_EXPORT).max(SENDERS);
    let pace = Duration::from_secs_f64(SENDERS as f64 * SPANS_PER_EXPORT as f64 / rate as f64);
    let bodies = Arc::new(
        (exports..exports + paced_exports)
            .map(export)
            .collect::<Vec<_>>(),
    );
    let sent = send(&url, bodies, Some(pace));
    wait_for("live delivery", Duration::from_secs(120), || {
        received.spans.load(Ordering::Relaxed) >= base + paced_exports * SPANS_PER_EXPORT
    });
    let arrivals = received.arrivals.lock().expect("arrivals").clone();
    let mut latencies: Vec<f64> = Vec::new();
    for (n, at) in sent {
        for t in 0..TRACES_PER_EXPORT {
            let id: String = trace_id((exports + n) * TRACES_PER_EXPORT + t)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if let Some(arrived) = arrivals.get(&id) {
                latencies.push(arrived.saturating_duration_since(at).as_secs_f64() * 1000.0);
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    drop(live);
    drop(serve);
    let _ = std::fs::remove_dir_all(&spool);
    let _ = std::fs::remove_dir_all(&letters);

    println!(
        "Kafka between bridges: {total} spans ({exports} exports of {TRACES_PER_EXPORT} traces × {SPANS_PER_TRACE} spans), topic of {PARTITIONS} partitions, {messages} messages"
    );
    println!(
        "{:<28} {:>10} {:>14} {:>9} {:>16}",
        "phase", "spans/s", "CPU µs/span", "RSS MiB", "broker µs/span"
    );
    for p in &phases {
        println!(
            "{:<28} {:>10.0} {:>14.2} {:>9.1} {:>16.2}",
            p.name, p.spans_per_sec, p.cpu_us_per_span, p.rss_mib, p.broker_cpu_us_per_span
        );
    }
    let bare = phases[1].cpu_us_per_span;
    for p in &phases[2..] {
        println!(
            "{}: {:.1}× the bare consume's CPU per span",
            p.name,
            p.cpu_us_per_span / bare
        );
    }
    println!(
        "end to end (serve → Kafka → 2 consumers → receiver, {rate} spans/s paced, {} traces): p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        pct(0.5),
        pct(0.99)
    );
    drop(broker.stdin.take());
    let _ = broker.wait();
}
