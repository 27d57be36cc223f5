//! Coding-agent logs into `serve --to local` against the traces path with the same byte volume,
//! in one run on loopback: sender threads post OTLP/HTTP protobuf exports to an in-process
//! bridge, which spools them, assembles the turns (logs) or translates the spans (traces), and
//! writes the embedded trace store; a run ends when the store holds everything.
//!
//! - **logs**: Claude Code's log export of one turn (the `claude-no-enhanced` capture of
//!   `integration-tests/fixtures/agent-cli/`), with fresh session and prompt ids per export, so
//!   each export is one turn (a trace with its generations and tool);
//! - **traces**: exports of GenAI chat spans, as many spans per export as make the same number
//!   of bytes as one logs export.
//!
//! Reported: records (log records or spans) per second, MB/s of protobuf, observations stored
//! per second. `--agent-window` is 0.2 s (the last turns wait for it; the traces path has no
//! window).
//!
//! `cargo bench -p langfuse-bridge --bench agent_logs` (`BENCH_EXPORTS`, default 500).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use langfuse_bridge::{Bridge, ServeConfig};
use langfuse_local::{Store, TraceFilter};
use langfuse_otel_transport::{ContentEncoding, HttpSender, Payload, RetryPolicy};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;
use serde_json::Value;

mod common;

const SENDERS: usize = 4;

/// OTLP/JSON omits empty lists; the generated serde types want them.
fn with_empty_lists(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for key in ["arrayValue", "kvlistValue"] {
                if let Some(Value::Object(inner)) = m.get_mut(key) {
                    inner
                        .entry("values")
                        .or_insert_with(|| Value::Array(Vec::new()));
                }
            }
            m.values_mut().for_each(with_empty_lists);
        }
        Value::Array(a) => a.iter_mut().for_each(with_empty_lists),
        _ => {}
    }
}

/// `n` logs exports, each one turn with its own session and prompt ids; and the log records
/// in one.
fn logs_exports(n: usize) -> (Vec<Vec<u8>>, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../integration-tests/fixtures/agent-cli/claude-no-enhanced/logs-001.json");
    let text = std::fs::read_to_string(path).expect("the capture");
    let mut template: Value = serde_json::from_str(&text).expect("JSON");
    with_empty_lists(&mut template);
    let template = template.to_string();
    let request: ExportLogsServiceRequest = serde_json::from_str(&template).expect("a logs export");
    let records = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    let exports = (0..n)
        .map(|i| {
            let text = template
                .replace(
                    "5d0d94d6-9862-4410-9a97-16136edeb1dc",
                    &format!("{i:08x}-0000-4000-8000-000000000001"),
                )
                .replace(
                    "f4fa932b-b44b-4992-884a-71e800809cf4",
                    &format!("{i:08x}-0000-4000-8000-000000000002"),
                );
            serde_json::from_str::<ExportLogsServiceRequest>(&text)
                .expect("a logs export")
                .encode_to_vec()
        })
        .collect();
    (exports, records)
}

/// Trace exports of `spans` spans each, `n` of them (distinct span ids).
fn trace_exports(n: usize, spans: u64) -> Vec<Vec<u8>> {
    (0..n as u64)
        .map(|i| {
            common::export((i % 251) as u8, i * spans + 1..(i + 1) * spans + 1).encode_to_vec()
        })
        .collect()
}

struct Run {
    records_per_sec: f64,
    mb_per_sec: f64,
    observations_per_sec: f64,
    secs: f64,
}

/// Posts `bodies` to `path` of a fresh `--to local` bridge from `SENDERS` threads; waits until
/// the store holds `observations`.
fn run(path: &str, bodies: Vec<Vec<u8>>, records: usize, observations: u64) -> Run {
    let dir = std::env::temp_dir().join(format!(
        "bridge-bench-agents-{}-{}",
        path.replace('/', "_"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let mut config = ServeConfig::from_toml(
        "http = \"127.0.0.1:0\"\ngrpc = \"off\"\nto = \"local\"\nfsync = \"interval\"\nagent_window_secs = 0.2\n",
    )
    .expect("config");
    config.spool = dir.join("spool");
    config.db = dir.join("traces.db");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let bound = rt.block_on(Bridge::new(config).bind()).expect("bind");
    let url = format!("http://{}{path}", bound.http_addr());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = rt.spawn(bound.run(async {
        let _ = stop_rx.await;
    }));
    let store = Store::open(dir.join("traces.db")).expect("store");
    let all = TraceFilter {
        limit: 1_000_000,
        ..TraceFilter::default()
    };
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let bodies = Arc::new(bodies);
    let started = Instant::now();
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let bodies = Arc::clone(&bodies);
            let url = url.clone();
            std::thread::spawn(move || {
                let sender = HttpSender::builder(url)
                    .retry(RetryPolicy::disabled())
                    .build()
                    .expect("sender");
                for body in bodies.iter().skip(s).step_by(SENDERS) {
                    let payload = Payload::new(
                        body.clone(),
                        "application/x-protobuf",
                        ContentEncoding::Identity,
                        1,
                    );
                    let outcome = sender.send(&payload, Instant::now() + Duration::from_secs(30));
                    assert!(outcome.is_delivered(), "{outcome}");
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender");
    }
    loop {
        let stored: u64 = store
            .list_traces(&all)
            .map(|traces| traces.iter().map(|t| t.observation_count as u64).sum())
            .unwrap_or(0);
        if stored >= observations {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "never all stored ({stored} of {observations})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(());
    let _ = rt.block_on(task);
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        records_per_sec: records as f64 / secs,
        mb_per_sec: bytes as f64 / secs / 1e6,
        observations_per_sec: observations as f64 / secs,
        secs,
    }
}

fn main() {
    let n: usize = std::env::var("BENCH_EXPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let (logs, records_per_export) = logs_exports(n);
    let log_bytes: usize = logs.iter().map(Vec::len).sum();
    // As many spans per trace export as make the bytes of one logs export.
    let per_span = (common::export(1, 0..100).encode_to_vec().len() as f64) / 100.0;
    let spans = ((log_bytes as f64 / n as f64) / per_span).round().max(1.0) as u64;
    let traces = trace_exports(n, spans);
    let trace_bytes: usize = traces.iter().map(Vec::len).sum();
    // A turn of this capture: the trace's root, two generations, one tool.
    let logs_run = run("/v1/logs", logs, n * records_per_export, 4 * n as u64);
    let traces_run = run("/v1/traces", traces, n * spans as usize, n as u64 * spans);
    println!(
        "{n} exports each way, {SENDERS} sender threads, loopback, one process; logs {log_bytes} B ({records_per_export} records per export), traces {trace_bytes} B ({spans} spans per export)"
    );
    println!("| path | records/s | MB/s (protobuf) | observations stored/s | seconds |");
    println!("|---|---|---|---|---|");
    for (name, r) in [
        ("logs: Claude Code turns, assembled (`/v1/logs`)", &logs_run),
        ("traces: GenAI chat spans (`/v1/traces`)", &traces_run),
    ] {
        println!(
            "| {name} | {:.0} | {:.2} | {:.0} | {:.2} |",
            r.records_per_sec, r.mb_per_sec, r.observations_per_sec, r.secs
        );
    }
}
