//! Store benchmark (a bench binary: one large run, not criterion's repetitions).
//!
//! ```sh
//! cargo bench -p langfuse-local --bench store                 # 200,000 traces, 1,000,000 observations
//! STORE_BENCH_TRACES=20000 cargo bench -p langfuse-local --bench store   # a smaller run
//! ```
//!
//! Measures, on a fresh database in the system temp directory:
//! - ingest rate, in batches of 1,000 and of 10,000 events (one transaction each: a spool
//!   record's worth, and about one round of the bridge's forwarder under sustained load);
//! - baselines in the same run: serializing the same events to JSON lines (the SDK's offline
//!   file writer's work), and, per batch size, appending them as `(id, json)` rows to an
//!   unindexed SQLite table in the same transactions (the floor of any SQLite store);
//! - database bytes per observation after a checkpoint;
//! - p50/p99 latencies of filtered list queries (one page of 50), of the viewer's list page
//!   (list + count), and of a trace page's query, over random parameters.

use std::time::{Duration, Instant};

use langfuse_local::{ScoreCondition, SortKey, Store, TraceFilter};
use langfuse_otel_core::record::{
    EventBody, IngestionEvent, Level, ObservationBody, ObservationType, ScoreBody, TraceBody,
};
use langfuse_otel_core::time::format_iso_millis;
use serde_json::{Map, Value, json};

const OBSERVATIONS_PER_TRACE: usize = 5;

/// Builds a random filter of one kind.
type MakeFilter = Box<dyn Fn(&mut Rng) -> TraceFilter>;
/// Events per `ingest` call: about a spool record's worth (a light load), and about one
/// forwarding round of the bridge under sustained load (it reads up to 4 MiB of spool records
/// and hands the local store their events in one call).
const BATCHES: [usize; 2] = [1_000, 10_000];

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NAMES: [&str; 8] = [
    "support-bot",
    "rag-pipeline",
    "summarize",
    "classify",
    "agent-run",
    "translate",
    "extract",
    "chat",
];
const TAGS: [&str; 6] = ["prod", "beta", "rag", "support", "eval", "canary"];

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The events of one trace: trace-create, 5 observations, sometimes a score.
fn trace_events(i: usize, rng: &mut Rng, out: &mut Vec<IngestionEvent>) {
    let trace_id = format!("{:032x}", (i as u128) * 0x9e37_79b9_7f4a_7c15 + 1);
    let start = 1_767_225_600_000 + (i as i64) * 400 + rng.below(300) as i64;
    let ts = format_iso_millis(start);
    let mut tags = vec![TAGS[rng.below(6) as usize].to_owned()];
    if rng.below(2) == 0 {
        tags.push(TAGS[rng.below(6) as usize].to_owned());
    }
    out.push(IngestionEvent {
        id: None,
        timestamp: Some(ts.clone()),
        body: EventBody::TraceCreate(TraceBody {
            id: Some(trace_id.clone()),
            timestamp: Some(ts.clone()),
            name: Some(Some(NAMES[rng.below(8) as usize].to_owned())),
            user_id: Some(Some(format!("user-{}", rng.below(1_000)))),
            session_id: Some(Some(format!("session-{}", rng.below(20_000)))),
            input: Some(Some(json!(
                "How do I reset my password? Please help quickly."
            ))),
            output: Some(Some(json!("Go to Settings > Security > Reset password."))),
            tags: Some(Some(tags)),
            environment: "default".into(),
            ..TraceBody::default()
        }),
    });
    let root = format!("{:016x}", i * 8 + 1);
    let kinds = [
        ObservationType::Span,
        ObservationType::Retriever,
        ObservationType::Tool,
        ObservationType::Generation,
        ObservationType::Span,
    ];
    let mut t = start;
    for (k, kind) in kinds.iter().enumerate() {
        let id = format!("{:016x}", i * 8 + 1 + k);
        let duration = 5 + rng.below(if *kind == ObservationType::Generation {
            3_000
        } else {
            200
        }) as i64;
        let (obs_start, obs_end) = if k == 0 {
            (start, start + 4_000)
        } else {
            (t, t + duration)
        };
        t += duration;
        let error = rng.below(100) == 0;
        let mut body = ObservationBody {
            id,
            trace_id: Some(Some(trace_id.clone())),
            name: Some(Some(format!("{}-{k}", kind.as_str()))),
            start_time: Some(Some(format_iso_millis(obs_start))),
            end_time: Some(Some(format_iso_millis(obs_end))),
            parent_observation_id: Some(if k == 0 { None } else { Some(root.clone()) }),
            level: Some(Some(if error { Level::Error } else { Level::Default })),
            status_message: Some(error.then(|| "upstream timeout".to_owned())),
            input: Some(Some(json!({"query": "reset password", "k": 4}))),
            output: Some(Some(json!({"ok": true}))),
            environment: "default".into(),
            ..ObservationBody::default()
        };
        if *kind == ObservationType::Generation {
            body.model = Some(Some("gpt-4o-mini".into()));
            body.model_parameters = Some(Some(obj(json!({"temperature": 0.2}))));
            body.usage_details = Some(Some(obj(json!({
                "input": 100 + rng.below(2_000), "output": 20 + rng.below(500)
            }))));
            body.input = Some(Some(json!([
                {"role": "system", "content": "Answer using the documents."},
                {"role": "user", "content": "How do I reset my password?"}
            ])));
            body.output = Some(Some(
                json!({"role": "assistant", "content": "Settings > Security."}),
            ));
        }
        out.push(IngestionEvent::new(EventBody::ObservationCreate(
            *kind, body,
        )));
    }
    if rng.below(5) == 0 {
        out.push(IngestionEvent {
            id: None,
            timestamp: Some(ts),
            body: EventBody::ScoreCreate(ScoreBody {
                id: Some(format!("score-{i}")),
                name: "relevance".into(),
                value: json!(rng.below(1_000) as f64 / 1_000.0),
                trace_id: Some(trace_id),
                ..ScoreBody::default()
            }),
        });
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx]
}

fn report(label: &str, mut samples: Vec<Duration>) {
    let p50 = percentile(&mut samples, 0.50);
    let p99 = percentile(&mut samples, 0.99);
    println!(
        "{label:<58} n={:<5} p50 {:>8.3} ms   p99 {:>8.3} ms",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let traces: usize = std::env::var("STORE_BENCH_TRACES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = std::env::temp_dir().join(format!("langfuse-local-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    // Events are generated in chunks (same seed for every pass) and only the operation on
    // them is timed, so the workload never has to fit in memory at once.
    let observations = traces * OBSERVATIONS_PER_TRACE;
    let chunk_traces = 20_000;
    let passes = |batch_size: usize, op: &mut dyn FnMut(&[IngestionEvent])| -> (Duration, usize) {
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        let mut total = Duration::ZERO;
        let mut count = 0;
        let mut start = 0;
        while start < traces {
            let end = (start + chunk_traces).min(traces);
            let mut events = Vec::with_capacity((end - start) * 7);
            for i in start..end {
                trace_events(i, &mut rng, &mut events);
            }
            count += events.len();
            let started = Instant::now();
            for batch in events.chunks(batch_size) {
                op(batch);
            }
            total += started.elapsed();
            start = end;
        }
        (total, count)
    };
    let rate = |time: Duration| observations as f64 / time.as_secs_f64();

    // Baseline: JSON lines, the offline file writer's work.
    let mut bytes = 0usize;
    let (json_time, event_count) = passes(BATCHES[0], &mut |batch| {
        for e in batch {
            bytes += serde_json::to_string(e).expect("serialize").len() + 1;
        }
    });
    println!("workload: {traces} traces, {observations} observations, {event_count} events");
    println!(
        "baseline  JSON lines serialization: {:>9.0} observations/s ({:.1} MB)",
        rate(json_time),
        bytes as f64 / 1e6
    );

    // Per batch size, in fresh databases: the floor of any SQLite store (each event appended
    // as one `(id, json)` row to an unindexed table, same transactions), then the store.
    let mut store = None;
    for &batch_size in &BATCHES {
        let bare_path = dir.join(format!("bare-{batch_size}.db"));
        let mut conn = rusqlite::Connection::open(&bare_path).expect("bare db");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
        )
        .expect("bare schema");
        let (bare_time, _) = passes(batch_size, &mut |batch| {
            let tx = conn.transaction().expect("tx");
            {
                let mut stmt = tx
                    .prepare_cached("INSERT INTO events (body) VALUES (?1)")
                    .expect("prepare");
                for e in batch {
                    stmt.execute([serde_json::to_string(e).expect("serialize")])
                        .expect("insert");
                }
            }
            tx.commit().expect("commit");
        });
        drop(conn);
        let _ = std::fs::remove_file(&bare_path);

        let path = dir.join(format!("store-{batch_size}.db"));
        let ingested = Store::open(&path).expect("store");
        let (ingest_time, _) = passes(batch_size, &mut |batch| {
            ingested.ingest(batch).expect("ingest");
        });
        println!(
            "batches of {batch_size:>6} events: store ingest {:>9.0} observations/s ({:.0} events/s, {:.1} s); \
             baseline bare SQLite appends {:>9.0} observations/s",
            rate(ingest_time),
            event_count as f64 / ingest_time.as_secs_f64(),
            ingest_time.as_secs_f64(),
            rate(bare_time),
        );
        // The queries run on the first database; the others are removed.
        if store.is_none() {
            store = Some(ingested);
        } else {
            drop(ingested);
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
    let store = store.expect("one batch size");
    store.checkpoint().expect("checkpoint");
    let db_bytes = store.database_bytes().expect("size");
    println!(
        "store     database: {:.1} MB, {:.0} bytes per observation (trace rows, scores and indexes included)",
        db_bytes as f64 / 1e6,
        db_bytes as f64 / observations as f64
    );

    // Replay one batch: upserts, no growth.
    let before = store.count_traces(&TraceFilter::default()).expect("count");
    let mut replay = Vec::new();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for i in 0..100.min(traces) {
        trace_events(i, &mut rng, &mut replay);
    }
    store.ingest(&replay).expect("replay");
    assert_eq!(
        before,
        store.count_traces(&TraceFilter::default()).expect("count")
    );

    let runs = 300;
    let mut rng = Rng(42);
    let filters: Vec<(&str, MakeFilter)> = vec![
        ("list: newest 50", Box::new(|_| TraceFilter::default())),
        (
            "list: --user U (1 of 1,000)",
            Box::new(|r| TraceFilter {
                user_id: Some(format!("user-{}", r.below(1_000))),
                ..TraceFilter::default()
            }),
        ),
        (
            "list: --session S",
            Box::new(|r| TraceFilter {
                session_id: Some(format!("session-{}", r.below(20_000))),
                ..TraceFilter::default()
            }),
        ),
        (
            "list: --name N --tag T",
            Box::new(|r| TraceFilter {
                name: Some(NAMES[r.below(8) as usize].to_owned()),
                tags: vec![TAGS[r.below(6) as usize].to_owned()],
                ..TraceFilter::default()
            }),
        ),
        (
            "list: --level ERROR",
            Box::new(|_| TraceFilter {
                min_level: Some(Level::Error),
                ..TraceFilter::default()
            }),
        ),
        (
            "list: --score relevance>=X",
            Box::new(|r| TraceFilter {
                scores: vec![
                    format!("relevance>={}", r.below(100) as f64 / 100.0)
                        .parse::<ScoreCondition>()
                        .expect("condition"),
                ],
                ..TraceFilter::default()
            }),
        ),
        (
            "list: --since (last 10%) sorted by cost",
            Box::new(move |_| TraceFilter {
                since_ms: Some(1_767_225_600_000 + (traces as i64) * 360),
                sort: SortKey::Cost,
                ..TraceFilter::default()
            }),
        ),
        (
            "list: sorted by latency, page 20",
            Box::new(|_| TraceFilter {
                sort: SortKey::Latency,
                offset: 1_000,
                ..TraceFilter::default()
            }),
        ),
    ];
    for (label, make) in &filters {
        let samples = (0..runs)
            .map(|_| {
                let f = make(&mut rng);
                let started = Instant::now();
                let page = store.list_traces(&f).expect("list");
                std::hint::black_box(page);
                started.elapsed()
            })
            .collect();
        report(label, samples);
    }
    for (label, make) in filters.iter().take(4) {
        let samples = (0..runs)
            .map(|_| {
                let f = make(&mut rng);
                let started = Instant::now();
                std::hint::black_box(store.list_traces(&f).expect("list"));
                std::hint::black_box(store.count_traces_up_to(&f, 1_000).expect("count"));
                started.elapsed()
            })
            .collect();
        report(
            &format!("viewer page (list + count to 1,000): {label}"),
            samples,
        );
    }
    let samples = (0..1_000)
        .map(|_| {
            let i = rng.below(traces as u64) as u128;
            let id = format!("{:032x}", i * 0x9e37_79b9_7f4a_7c15 + 1);
            let started = Instant::now();
            let trace = store.trace(&id).expect("trace").expect("exists");
            assert_eq!(trace.observations.len(), OBSERVATIONS_PER_TRACE);
            started.elapsed()
        })
        .collect();
    report("trace page: trace + observations + scores", samples);

    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
