//! End-to-end benchmark of `serve` on loopback, in one process: sender threads post OTLP/HTTP
//! protobuf exports (100 spans each) to the bridge, which spools and forwards them to a local
//! upstream (`--to langfuse`, passthrough). Measured in the same run:
//!
//! - a **baseline**: a proxy that decodes each export, re-encodes it and forwards it with the
//!   same transport (no spool), on the same sender and upstream;
//! - the bridge with `--fsync interval` and with `--fsync always`;
//! - the bridge with `--to local`: the same exports spooled, translated and written into the
//!   embedded trace store, until the store holds every span (what local mode sustains).
//!
//! For each: sustained spans/s (first send to last span accepted upstream), CPU time of the
//! proxy's own threads per span (from `/proc/self/task/*/schedstat`, by thread name), p50/p99 time
//! to acknowledge a request, and the process's peak RSS (`VmHWM`, which includes the sender and
//! the upstream).
//!
//! Then `--to langfuse` with the assembly stage off and on (the default 10 s window) over the
//! same exports of 10 traces each: CPU per span on against off, the most traces held at once
//! (10,000 with the default 1000 requests) and the RSS then. A machine shared with other work (a VM) varies by a quarter
//! from one run to the next, so the pair (a fresh bridge with assembly off, then one with it
//! on) is run several times, alternating, and each ratio and their median are reported.
//!
//! `cargo bench -p langfuse-bridge --bench serve` (`BENCH_REQUESTS`, default 1000 per run;
//! `BENCH_ONLY=assembly` runs only the assembly comparison, for profiling it;
//! `BENCH_ASSEMBLE_WINDOW`, default 10, the window of the run with assembly on;
//! `BENCH_PAIRS`, default 3, how many off/on pairs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use langfuse_bridge::Bridge;
use langfuse_bridge::ServeConfig;
use langfuse_local::{Store, TraceFilter};
use langfuse_otel_transport::{ContentEncoding, HttpSender, Payload, RetryPolicy};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

mod common;

const SPANS_PER_REQUEST: u64 = 100;
const SENDERS: u64 = 4;

/// The protobuf export of the `SPANS_PER_REQUEST` spans from id `first`.
fn export(first: u64) -> Vec<u8> {
    common::export((first % 251) as u8, first..first + SPANS_PER_REQUEST).encode_to_vec()
}

/// Traces per request in the assembly runs: 1000 requests hold 10,000 distinct traces.
const TRACES_PER_REQUEST: u64 = 10;

/// The same spans as [`export`], spread over `TRACES_PER_REQUEST` distinct traces (the trace
/// id is the request's first span id and the group), the first span of each a root carrying
/// the user and session (what the assembly stage propagates).
fn export_many_traces(first: u64) -> Vec<u8> {
    common::export_in_traces(first, SPANS_PER_REQUEST, TRACES_PER_REQUEST).encode_to_vec()
}

/// Current RSS of the process (`VmRSS`), MiB.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The upstream: answers 200, counts bytes.
fn start_upstream(rt: &tokio::runtime::Runtime) -> (SocketAddr, Arc<AtomicU64>) {
    let bytes = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/api/public/otel/v1/traces",
            post(|State(b): State<Arc<AtomicU64>>, body: Bytes| async move {
                b.fetch_add(body.len() as u64, Ordering::Relaxed);
                ""
            }),
        )
        .with_state(Arc::clone(&bytes))
        // The bridge merges records into requests of up to 4 MiB.
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, bytes)
}

/// The baseline proxy: decode, re-encode, forward (one upstream request per request).
fn start_baseline(
    rt: &tokio::runtime::Runtime,
    upstream: SocketAddr,
    spans: Arc<AtomicU64>,
) -> SocketAddr {
    let sender = Arc::new(
        HttpSender::builder(format!("http://{upstream}/api/public/otel/v1/traces"))
            .retry(RetryPolicy::disabled())
            .build()
            .expect("sender"),
    );
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sender = Arc::clone(&sender);
            let spans = Arc::clone(&spans);
            async move {
                let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                    return axum::http::StatusCode::BAD_REQUEST;
                };
                let n: usize = request
                    .resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .map(|s| s.spans.len())
                    .sum();
                let encoded = request.encode_to_vec();
                let ok = tokio::task::spawn_blocking(move || {
                    let payload = Payload::new(
                        encoded,
                        "application/x-protobuf",
                        ContentEncoding::Identity,
                        n,
                    );
                    sender
                        .send(&payload, Instant::now() + Duration::from_secs(10))
                        .is_delivered()
                })
                .await
                .unwrap_or(false);
                if ok {
                    spans.fetch_add(n as u64, Ordering::Relaxed);
                    axum::http::StatusCode::OK
                } else {
                    axum::http::StatusCode::BAD_GATEWAY
                }
            }
        }),
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind baseline");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// CPU seconds of this process's threads whose name starts with one of `prefixes` (the
/// scheduler's nanosecond count, `/proc/self/task/*/schedstat`).
fn thread_cpu(prefixes: &[&str]) -> f64 {
    let mut total_ns = 0u64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !prefixes.iter().any(|p| name.trim().starts_with(p)) {
            continue;
        }
        // The first field is the time spent running, in nanoseconds.
        total_ns += std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0);
    }
    total_ns as f64 / 1e9
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Run {
    spans_per_sec: f64,
    cpu_us_per_span: f64,
    /// CPU µs per span of each thread-name prefix of `cpu_prefixes` (and the forwarder's
    /// threads apart from the receiving ones).
    cpu_parts: Vec<(String, f64)>,
    p50_ms: f64,
    p99_ms: f64,
    rss_mib: f64,
}

/// Sends `requests` exports from `SENDERS` threads to `url`; waits until `delivered()` reaches
/// every span; measures CPU of the threads named `cpu_prefixes`.
fn drive(url: &str, requests: u64, cpu_prefixes: &[&str], delivered: &dyn Fn() -> u64) -> Run {
    drive_with(url, requests, cpu_prefixes, delivered, export)
}

/// [`drive`] with the exports `body(first span id)`.
fn drive_with(
    url: &str,
    requests: u64,
    cpu_prefixes: &[&str],
    delivered: &dyn Fn() -> u64,
    body: fn(u64) -> Vec<u8>,
) -> Run {
    let bodies: Vec<Vec<u8>> = (0..requests)
        .map(|r| body(r * SPANS_PER_REQUEST + 1))
        .collect();
    let bodies = Arc::new(bodies);
    let cpu_before = thread_cpu(cpu_prefixes);
    let parts: Vec<&str> = ["bridge-rt", "bridge-forward", "spool-appender"]
        .into_iter()
        .filter(|p| cpu_prefixes.iter().any(|c| p.starts_with(c)))
        .collect();
    let parts_before: Vec<f64> = parts.iter().map(|p| thread_cpu(&[p])).collect();
    let base = delivered();
    let started = Instant::now();
    let handles: Vec<_> = (0..SENDERS)
        .map(|s| {
            let bodies = Arc::clone(&bodies);
            let url = url.to_owned();
            std::thread::Builder::new()
                .name("sender".into())
                .spawn(move || {
                    let sender = HttpSender::builder(url)
                        .retry(RetryPolicy::disabled())
                        .build()
                        .expect("sender");
                    let mut latencies = Vec::new();
                    for (i, body) in bodies.iter().enumerate() {
                        if i as u64 % SENDERS != s {
                            continue;
                        }
                        let payload = Payload::new(
                            body.clone(),
                            "application/x-protobuf",
                            ContentEncoding::Identity,
                            100,
                        );
                        let t = Instant::now();
                        let outcome =
                            sender.send(&payload, Instant::now() + Duration::from_secs(30));
                        assert!(outcome.is_delivered(), "{outcome}");
                        latencies.push(t.elapsed());
                    }
                    latencies
                })
                .expect("spawn sender")
        })
        .collect();
    let mut latencies: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("sender"))
        .collect();
    let want = base + requests * SPANS_PER_REQUEST;
    while delivered() < want {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "spans never all delivered"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = thread_cpu(cpu_prefixes) - cpu_before;
    let spans = (requests * SPANS_PER_REQUEST) as f64;
    let cpu_parts = parts
        .iter()
        .zip(parts_before)
        .map(|(p, before)| ((*p).to_owned(), (thread_cpu(&[p]) - before) / spans * 1e6))
        .collect();
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0;
    Run {
        spans_per_sec: spans / elapsed,
        cpu_us_per_span: cpu / spans * 1e6,
        cpu_parts,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        rss_mib: peak_rss_mib(),
    }
}

/// Where a bridge run forwards to.
enum Sink {
    /// The local upstream, passthrough (`--to langfuse`).
    Upstream(SocketAddr),
    /// The embedded trace store (`--to local`): spool, translate, store.
    Local,
}

fn bridge_run(sink: Sink, fsync: &str, requests: u64) -> Run {
    bridge_run_with(sink, fsync, requests, 0.0, export).0
}

/// A bridge run with the assembly window `window` (seconds, 0 off) and the exports `body`;
/// also the most traces the assembly stage held at once, and the process's RSS then minus its
/// RSS before the run (MiB).
fn bridge_run_with(
    sink: Sink,
    fsync: &str,
    requests: u64,
    window: f64,
    body: fn(u64) -> Vec<u8>,
) -> (Run, u64, f64) {
    let name = match sink {
        Sink::Upstream(_) => "upstream",
        Sink::Local => "local",
    };
    let dir = std::env::temp_dir().join(format!(
        "bridge-bench-{name}-{fsync}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let destination = match sink {
        Sink::Upstream(upstream) => {
            format!("to = \"langfuse\"\nupstream = \"http://{upstream}\"\n")
        }
        Sink::Local => "to = \"local\"\n".to_owned(),
    };
    let mut config = ServeConfig::from_toml(&format!(
        "http = \"127.0.0.1:0\"\ngrpc = \"127.0.0.1:0\"\n{destination}fsync = \"{fsync}\"\n"
    ))
    .expect("config");
    config.spool = dir.join("spool");
    config.db = dir.join("traces.db");
    config.assemble_window_secs = window;
    let rss_before = rss_mib();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bridge-rt")
        .enable_all()
        .build()
        .expect("runtime");
    let bound = rt.block_on(Bridge::new(config).bind()).expect("bind");
    let url = format!("http://{}/v1/traces", bound.http_addr());
    let metrics = bound.metrics();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = rt.spawn(bound.run(async {
        let _ = stop_rx.await;
    }));
    let held = std::cell::Cell::new((0u64, 0.0f64));
    let run = match sink {
        Sink::Upstream(_) => drive_with(
            &url,
            requests,
            &["bridge", "spool-appender"],
            &|| {
                let now = metrics.assembly_held_traces.load(Ordering::Relaxed);
                if now > held.get().0 {
                    held.set((now, rss_mib() - rss_before));
                }
                metrics.forwarded_items.load(Ordering::Relaxed)
            },
            body,
        ),
        Sink::Local => {
            // Done when the store holds every span as an observation (a second reader of the
            // same file, as the viewer is).
            let store = Store::open(dir.join("traces.db")).expect("store");
            let all = TraceFilter {
                limit: 10_000,
                ..TraceFilter::default()
            };
            drive(&url, requests, &["bridge", "spool-appender"], &|| {
                std::thread::sleep(Duration::from_millis(20));
                store
                    .list_traces(&all)
                    .map(|traces| traces.iter().map(|t| t.observation_count as u64).sum())
                    .unwrap_or(0)
            })
        }
    };
    let _ = stop_tx.send(());
    let _ = rt.block_on(task);
    let _ = std::fs::remove_dir_all(&dir);
    let (max_held, rss_held) = held.get();
    (run, max_held, rss_held)
}

fn main() {
    let requests: u64 = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let upstream_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("upstream")
        .enable_all()
        .build()
        .expect("runtime");
    let (upstream, _bytes) = start_upstream(&upstream_rt);
    let baseline_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("baseline")
        .enable_all()
        .build()
        .expect("runtime");
    let baseline_spans = Arc::new(AtomicU64::new(0));
    let baseline = start_baseline(&baseline_rt, upstream, Arc::clone(&baseline_spans));
    let only_assembly = std::env::var("BENCH_ONLY").as_deref() == Ok("assembly");
    let window: f64 = std::env::var("BENCH_ASSEMBLE_WINDOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0);
    // Warm-up (connections, allocator).
    let _ = drive(
        &format!("http://{baseline}/v1/traces"),
        40,
        &["baseline"],
        &|| baseline_spans.load(Ordering::Relaxed),
    );
    let others = (!only_assembly).then(|| {
        let base = drive(
            &format!("http://{baseline}/v1/traces"),
            requests,
            &["baseline"],
            &|| baseline_spans.load(Ordering::Relaxed),
        );
        let interval = bridge_run(Sink::Upstream(upstream), "interval", requests);
        let always = bridge_run(Sink::Upstream(upstream), "always", requests);
        let local = bridge_run(Sink::Local, "interval", requests);
        (base, interval, always, local)
    });
    // Assembly off and on over the same exports (10 traces per request; the default 10 s
    // window holds every trace of a run open at once), pair after pair.
    let pairs: usize = std::env::var("BENCH_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let mut assembly = Vec::new();
    for _ in 0..pairs {
        let (off, _, _) = bridge_run_with(
            Sink::Upstream(upstream),
            "interval",
            requests,
            0.0,
            export_many_traces,
        );
        let (on, held, rss_held) = bridge_run_with(
            Sink::Upstream(upstream),
            "interval",
            requests,
            window,
            export_many_traces,
        );
        assembly.push((off, on, held, rss_held));
    }
    let ratio = |(off, on, ..): &(Run, Run, u64, f64)| on.cpu_us_per_span / off.cpu_us_per_span;
    let mut order: Vec<usize> = (0..pairs).collect();
    order.sort_by(|&a, &b| ratio(&assembly[a]).total_cmp(&ratio(&assembly[b])));
    let median = &assembly[order[pairs / 2]];
    let (off, on) = (&median.0, &median.1);
    println!(
        "{} requests x {SPANS_PER_REQUEST} spans, {SENDERS} sender threads, loopback, one process",
        requests
    );
    println!(
        "| run | spans/s | CPU µs/span (proxy threads) | vs baseline | ack p50 ms | ack p99 ms | peak RSS MiB (process) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut runs: Vec<(&str, &Run)> = Vec::new();
    if let Some((base, interval, always, local)) = &others {
        runs.extend([
            ("decode+re-encode passthrough (baseline)", base),
            ("bridge --fsync interval", interval),
            ("bridge --fsync always", always),
            (
                "bridge --to local --fsync interval (spool, translate, store)",
                local,
            ),
        ]);
    }
    runs.extend([
        (
            "bridge --fsync interval, 10 traces/request, --assemble-window 0 (the median pair)",
            off,
        ),
        (
            "bridge --fsync interval, 10 traces/request, assembly on (the median pair; spans/s include the window)",
            on,
        ),
    ]);
    let base_cpu = others.as_ref().map_or(f64::NAN, |o| o.0.cpu_us_per_span);
    for (name, r) in runs {
        let vs_baseline = if base_cpu.is_nan() {
            "-".to_owned()
        } else {
            format!("{:.2}x", r.cpu_us_per_span / base_cpu)
        };
        println!(
            "| {name} | {:.0} | {:.2} | {vs_baseline} | {:.2} | {:.2} | {:.0} |",
            r.spans_per_sec, r.cpu_us_per_span, r.p50_ms, r.p99_ms, r.rss_mib
        );
    }
    for (i, pair) in assembly.iter().enumerate() {
        let (off, on, held, rss_held) = pair;
        for (name, r) in [("off", off), ("on", on)] {
            let parts: Vec<String> = r
                .cpu_parts
                .iter()
                .map(|(p, us)| format!("{p} {us:.2}"))
                .collect();
            println!(
                "pair {}: assembly {name}: CPU µs/span by thread: {}",
                i + 1,
                parts.join(", ")
            );
        }
        println!(
            "pair {}: assembly on (--assemble-window {window}) vs off (same exports): CPU per span {:.2}x; at most {held} traces held at once, process RSS then {rss_held:.0} MiB above its RSS before the run",
            i + 1,
            ratio(pair)
        );
    }
    let ratios: Vec<String> = assembly
        .iter()
        .map(|p| format!("{:.2}x", ratio(p)))
        .collect();
    println!(
        "assembly on vs off, CPU per span: median {:.2}x of {pairs} pairs ({})",
        ratio(median),
        ratios.join(", ")
    );
}
