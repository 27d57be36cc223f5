//! Kafka between bridges: `serve --to kafka` → a topic of 3 partitions → `consume` processes
//! of one group → `--to ingestion` receivers, all on 127.0.0.1, with the broker of
//! [`integration_tests::kafka_broker`] (librdkafka's mock cluster: see there why not the JVM
//! broker).
//!
//! Every expectation is derived from what the test sent: the span ids and trace ids of the
//! exports it built, and the messages it wrote itself.
//!
//! Set `KAFKA_TEST_LOG=DIR` to keep the processes' logs. Run alone with
//! `cargo test -p integration-tests --test bridge kafka::`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::bridge_support::{bridge_binary, get, metric, post, temp_dir, wait_until};
use integration_tests::kafka_broker::KafkaBroker;
use integration_tests::receiver::{Action, Receiver};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const TOPIC: &str = "otlp_spans";
/// The consumers' session timeout: how long a dead member keeps its partitions.
const SESSION_TIMEOUT_MS: u64 = 4000;
/// The consumers' `--kafka-max-batch`: the most messages one has sent without committing.
const MAX_BATCH: usize = 100;

/// A `langfuse-bridge` process and the address of its HTTP listener.
struct Process {
    child: Child,
    http: SocketAddr,
}

impl Process {
    /// Starts `langfuse-bridge ARGS` (JSON logs, HTTP listener on port 0) and waits for the
    /// log line that names its listener.
    fn start(tag: &str, args: &[String]) -> Process {
        let mut child = Command::new(bridge_binary())
            .env_clear()
            .args(args)
            .args(["--log-format", "json", "--log-level", "info"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start langfuse-bridge");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let log = std::env::var_os("KAFKA_TEST_LOG").map(|dir| {
            let dir = PathBuf::from(dir);
            let _ = std::fs::create_dir_all(&dir);
            dir.join(format!("{tag}-{}.log", child.id()))
        });
        std::thread::spawn(move || {
            use std::io::Write;
            let mut file = log.and_then(|p| std::fs::File::create(p).ok());
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(f) = &mut file {
                    let _ = writeln!(f, "{line}");
                }
                if !sent
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(addr) = v["fields"]["http"].as_str()
                    && let Ok(addr) = addr.parse::<SocketAddr>()
                {
                    sent = tx.send(addr).is_ok();
                }
            }
        });
        let http = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{tag} did not report its listener"));
        Process { child, http }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    fn metrics(&self) -> String {
        get(&self.url("/metrics"))
            .map(|a| String::from_utf8_lossy(&a.body).into_owned())
            .unwrap_or_default()
    }

    fn value(&self, series: &str) -> f64 {
        metric(&self.metrics(), series).unwrap_or(0.0)
    }

    /// Partitions assigned now (`/health` of `consume`).
    fn assigned(&self) -> Vec<i64> {
        get(&self.url("/health"))
            .ok()
            .and_then(|a| serde_json::from_slice::<serde_json::Value>(&a.body).ok())
            .and_then(|v| v["assigned_partitions"].as_array().cloned())
            .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect())
            .unwrap_or_default()
    }

    /// SIGTERM, then wait.
    fn stop(mut self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(brokers: &str, spool: &Path) -> Process {
    let args: Vec<String> = [
        "serve",
        "--http",
        "127.0.0.1:0",
        "--grpc",
        "off",
        "--to",
        "kafka",
        "--kafka-brokers",
        brokers,
        "--fsync",
        "never",
        "--spool",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([spool.display().to_string()])
    .collect();
    Process::start("serve", &args)
}

fn consume(brokers: &str, group: &str, upstream: &str, dir: &Path, extra: &[&str]) -> Process {
    let mut args: Vec<String> = [
        "consume",
        "--kafka-brokers",
        brokers,
        "--kafka-group",
        group,
        "--to",
        "ingestion",
        "--upstream",
        upstream,
        "--http",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend([
        "--dead-letter".to_owned(),
        dir.display().to_string(),
        "--kafka-max-batch".to_owned(),
        MAX_BATCH.to_string(),
        "--kafka-option".to_owned(),
        format!("session.timeout.ms={SESSION_TIMEOUT_MS}"),
        "--kafka-option".to_owned(),
        "heartbeat.interval.ms=500".to_owned(),
    ]);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    Process::start("consume", &args)
}

/// Trace `t`'s id: `t` in the first 8 bytes, a marker in the last.
fn trace_id(t: u64) -> Vec<u8> {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&t.to_be_bytes());
    id[15] = 0x4b;
    id.to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Span `i` of trace `t` (nonzero; `i == 0` is the root).
fn span_id(t: u64, i: u64) -> u64 {
    t * 10_000 + i + 1
}

/// Spans `first..first+n` of trace `t`; every span but the root is the root's child.
fn spans(t: u64, first: u64, n: u64) -> Vec<Span> {
    (first..first + n)
        .map(|i| Span {
            trace_id: trace_id(t),
            span_id: span_id(t, i).to_be_bytes().to_vec(),
            parent_span_id: if i == 0 {
                Vec::new()
            } else {
                span_id(t, 0).to_be_bytes().to_vec()
            },
            name: format!("step {i}"),
            start_time_unix_nano: 1_767_258_000_000_000_000 + i,
            end_time_unix_nano: 1_767_258_000_250_000_000 + i,
            ..Span::default()
        })
        .collect()
}

fn export(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "kafka-test".into(),
                    ..InstrumentationScope::default()
                }),
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// A workload: `traces` traces of `parts` × `per_part` spans, each part in its own export
/// slot, parts of one trace spread over `clients` clients (so a trace reaches the bridge in
/// several requests from several clients), `parts_per_export` parts per request.
struct Workload {
    traces: std::ops::Range<u64>,
    parts: u64,
    per_part: u64,
    clients: u64,
    parts_per_export: usize,
}

impl Workload {
    /// The exports each client sends, in order.
    fn exports(&self) -> Vec<Vec<Vec<u8>>> {
        let mut per_client: Vec<Vec<(u64, u64)>> = vec![Vec::new(); self.clients as usize];
        for j in 0..self.parts {
            for t in self.traces.clone() {
                per_client[((t + j) % self.clients) as usize].push((t, j));
            }
        }
        per_client
            .into_iter()
            .map(|parts| {
                parts
                    .chunks(self.parts_per_export)
                    .map(|chunk| {
                        let spans = chunk
                            .iter()
                            .flat_map(|&(t, j)| spans(t, j * self.per_part, self.per_part))
                            .collect();
                        export(spans).encode_to_vec()
                    })
                    .collect()
            })
            .collect()
    }

    /// Every span id (hex) with its trace id (hex).
    fn span_ids(&self) -> BTreeMap<String, String> {
        self.traces
            .clone()
            .flat_map(|t| {
                (0..self.parts * self.per_part)
                    .map(move |i| (hex(&span_id(t, i).to_be_bytes()), hex(&trace_id(t))))
            })
            .collect()
    }
}

/// Posts every client's exports from its own thread (retrying until accepted); returns when
/// all are accepted. `during` runs on the calling thread meanwhile.
fn send_all(url: &str, clients: Vec<Vec<Vec<u8>>>, during: impl FnOnce()) {
    let threads: Vec<_> = clients
        .into_iter()
        .map(|exports| {
            let url = url.to_owned();
            std::thread::spawn(move || {
                for body in exports {
                    let deadline = Instant::now() + Duration::from_secs(120);
                    loop {
                        match post(&url, &[("content-type", "application/x-protobuf")], &body) {
                            Ok(a) if a.status == 200 => break,
                            other => {
                                assert!(
                                    Instant::now() < deadline,
                                    "export not accepted: {:?}",
                                    other.map(|a| a.status)
                                );
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                }
            })
        })
        .collect();
    during();
    for t in threads {
        t.join().expect("client thread");
    }
}

/// The values of `langfuse_bridge_kafka_consumer_lag{…}` (one per assigned partition).
fn lags(metrics: &str) -> Vec<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with("langfuse_bridge_kafka_consumer_lag{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse().ok())
        .collect()
}

/// What the receivers got: per observation id, how many events and at which receivers.
#[derive(Default)]
struct Delivered {
    /// Observation id → (events, receivers that got it).
    observations: HashMap<String, (usize, BTreeSet<usize>)>,
    /// Trace id → receivers that got any of its observations.
    traces: HashMap<String, BTreeSet<usize>>,
}

impl Delivered {
    fn collect(receivers: &[&Receiver]) -> Delivered {
        let mut d = Delivered::default();
        for (n, receiver) in receivers.iter().enumerate() {
            for request in receiver.requests().iter().filter(|r| r.acknowledged()) {
                for event in request.ingestion_events() {
                    if event["type"] == "trace-create" {
                        continue;
                    }
                    let body = &event["body"];
                    let (Some(id), Some(trace)) = (body["id"].as_str(), body["traceId"].as_str())
                    else {
                        continue;
                    };
                    let entry = d.observations.entry(id.to_owned()).or_default();
                    entry.0 += 1;
                    entry.1.insert(n);
                    d.traces.entry(trace.to_owned()).or_default().insert(n);
                }
            }
        }
        d
    }

    fn missing(&self, expected: &BTreeMap<String, String>) -> usize {
        expected
            .keys()
            .filter(|id| !self.observations.contains_key(*id))
            .count()
    }

    fn duplicates(&self) -> usize {
        self.observations.values().map(|(n, _)| n - 1).sum()
    }
}

fn wait_for_all(receivers: &[&Receiver], expected: &BTreeMap<String, String>, limit: Duration) {
    let done = wait_until(limit, || {
        Delivered::collect(receivers).missing(expected) == 0
    });
    if !done {
        let missing = Delivered::collect(receivers).missing(expected);
        panic!("{missing} of {} spans never arrived", expected.len());
    }
}

/// Waits until the group's consumers hold all `partitions` between them.
fn wait_for_assignment(consumers: &[&Process], partitions: usize, limit: Duration) -> Duration {
    let start = Instant::now();
    let ok = wait_until(limit, || {
        let all: BTreeSet<i64> = consumers.iter().flat_map(|c| c.assigned()).collect();
        let each = consumers.iter().all(|c| !c.assigned().is_empty());
        all.len() == partitions && each
    });
    assert!(
        ok,
        "the group did not settle: {:?}",
        consumers.iter().map(|c| c.assigned()).collect::<Vec<_>>()
    );
    start.elapsed()
}

#[test]
fn spans_from_several_clients_reach_two_consumers_with_each_trace_in_one() {
    let broker = KafkaBroker::start(TOPIC, 3).expect("broker");
    let brokers = broker.bootstrap_servers();
    let receivers = [
        Receiver::start(|_, _| Action::ok()),
        Receiver::start(|_, _| Action::ok()),
    ];
    let dir = temp_dir("kafka-main");
    let bridge = serve(&brokers, &dir.join("spool"));
    let consumers: Vec<Process> = receivers
        .iter()
        .enumerate()
        .map(|(n, r)| {
            consume(
                &brokers,
                "main",
                &r.base_url(),
                &dir.join(format!("c{n}")),
                &[],
            )
        })
        .collect();
    // Both members hold partitions before the first span: nothing moves mid-stream.
    wait_for_assignment(
        &consumers.iter().collect::<Vec<_>>(),
        3,
        Duration::from_secs(60),
    );
    // 2,000 traces × 50 spans = 100,000 spans, each trace in 5 requests from 4 clients.
    let workload = Workload {
        traces: 0..2000,
        parts: 5,
        per_part: 10,
        clients: 4,
        parts_per_export: 10,
    };
    let expected = workload.span_ids();
    assert_eq!(expected.len(), 100_000);
    let started = Instant::now();
    send_all(&bridge.url("/v1/traces"), workload.exports(), || {});
    let accepted = started.elapsed();
    wait_for_all(
        &receivers.iter().collect::<Vec<_>>(),
        &expected,
        Duration::from_secs(300),
    );
    let delivered_in = started.elapsed();
    let delivered = Delivered::collect(&receivers.iter().collect::<Vec<_>>());
    assert_eq!(delivered.missing(&expected), 0);
    // Each trace's spans were in one partition, read by one consumer: one receiver each.
    let split: Vec<_> = delivered
        .traces
        .iter()
        .filter(|(_, at)| at.len() > 1)
        .collect();
    assert!(split.is_empty(), "traces split over consumers: {split:?}");
    // Both consumers did work (three partitions, two members).
    for n in 0..2 {
        assert!(
            delivered.traces.values().any(|at| at.contains(&n)),
            "consumer {n} got nothing"
        );
    }
    // No failure happened: nothing was sent twice.
    assert_eq!(delivered.duplicates(), 0);
    // The bridge committed its cursor: its spool backlog drains to zero.
    assert!(wait_until(Duration::from_secs(30), || {
        metric(&bridge.metrics(), "langfuse_bridge_spool_records") == Some(0.0)
    }));
    let committed: f64 = consumers
        .iter()
        .map(|c| c.value("langfuse_bridge_kafka_committed_messages_total"))
        .sum();
    let handled: f64 = consumers
        .iter()
        .map(|c| c.value("langfuse_bridge_kafka_messages_total"))
        .sum();
    // Every message handled was committed (one message per trace part: 2,000 × 5 at most,
    // fewer when parts of a trace shared a request).
    assert!(wait_until(Duration::from_secs(10), || {
        let committed: f64 = consumers
            .iter()
            .map(|c| c.value("langfuse_bridge_kafka_committed_messages_total"))
            .sum();
        committed
            == consumers
                .iter()
                .map(|c| c.value("langfuse_bridge_kafka_messages_total"))
                .sum::<f64>()
    }));
    // Every partition's lag is reported by the consumer holding it, and drains to 0.
    assert!(
        wait_until(Duration::from_secs(15), || {
            let lags: Vec<f64> = consumers.iter().flat_map(|c| lags(&c.metrics())).collect();
            lags.len() == 3 && lags.iter().all(|l| *l == 0.0)
        }),
        "lags: {:?}",
        consumers
            .iter()
            .map(|c| lags(&c.metrics()))
            .collect::<Vec<_>>()
    );
    for c in &consumers {
        assert!(c.value("langfuse_bridge_kafka_rebalances_total") >= 1.0);
    }
    eprintln!(
        "100,000 spans: accepted by serve in {accepted:?}, all delivered after {delivered_in:?}; {handled} messages, {committed} committed"
    );
    bridge.stop();
    for c in consumers {
        c.stop();
    }
}

#[test]
fn a_consumer_killed_mid_stream_loses_nothing_and_its_partitions_move() {
    let broker = KafkaBroker::start(TOPIC, 3).expect("broker");
    let brokers = broker.bootstrap_servers();
    // The first consumer's destination answers a second late, so that it is killed in the
    // middle of a round: what it sent without committing is sent again by the survivor.
    let receivers = [
        Receiver::start(|_, _| Action::Delay(Duration::from_secs(1), Box::new(Action::ok()))),
        Receiver::start(|_, _| Action::ok()),
    ];
    let dir = temp_dir("kafka-kill");
    let bridge = serve(&brokers, &dir.join("spool"));
    let mut consumers: Vec<Option<Process>> = receivers
        .iter()
        .enumerate()
        .map(|(n, r)| {
            Some(consume(
                &brokers,
                "kill",
                &r.base_url(),
                &dir.join(format!("c{n}")),
                &[],
            ))
        })
        .collect();
    wait_for_assignment(
        &consumers.iter().flatten().collect::<Vec<_>>(),
        3,
        Duration::from_secs(60),
    );
    let workload = Workload {
        traces: 0..600,
        parts: 5,
        per_part: 10,
        clients: 3,
        parts_per_export: 5,
    };
    let expected = workload.span_ids();
    let mut takeover = Duration::ZERO;
    let mut killed_partitions = Vec::new();
    send_all(&bridge.url("/v1/traces"), workload.exports(), || {
        // Kill the first consumer in the middle of a round: after a round of it was
        // committed, once its next request reached its receiver (which answers a second
        // later, so that round cannot have been committed).
        let victim = consumers[0].as_ref().expect("consumer 0");
        assert!(wait_until(Duration::from_secs(60), || {
            victim.value("langfuse_bridge_kafka_committed_messages_total") >= 1.0
        }));
        let sent_before = receivers[0].requests().len();
        assert!(wait_until(Duration::from_secs(60), || {
            receivers[0].requests().len() > sent_before
        }));
        killed_partitions = victim.assigned();
        let mut victim = consumers[0].take().expect("consumer 0");
        victim.child.kill().expect("kill -9");
        let _ = victim.child.wait();
        let killed_at = Instant::now();
        let survivor = consumers[1].as_ref().expect("consumer 1");
        assert!(
            wait_until(Duration::from_secs(60), || survivor.assigned().len() == 3),
            "the survivor never got all partitions: {:?}",
            survivor.assigned()
        );
        takeover = killed_at.elapsed();
    });
    wait_for_all(
        &receivers.iter().collect::<Vec<_>>(),
        &expected,
        Duration::from_secs(180),
    );
    let delivered = Delivered::collect(&receivers.iter().collect::<Vec<_>>());
    assert_eq!(delivered.missing(&expected), 0);
    // Only what the killed consumer had sent without committing is sent again: at most one
    // round of it (MAX_BATCH messages, each at most one whole trace).
    let duplicates = delivered.duplicates();
    let bound = MAX_BATCH * (workload.parts * workload.per_part) as usize;
    // The round it was killed in had reached its receiver: sent again, so counted twice.
    assert!(duplicates > 0, "the killed round was not sent again");
    assert!(
        duplicates <= bound,
        "{duplicates} duplicate spans, more than one uncommitted round ({bound})"
    );
    // The coordinator gives up the dead member once its session timed out (checked every
    // second), then rebalances: the mock coordinator waits up to the session timeout less a
    // second for members to rejoin (the JVM broker moves on as soon as the survivor rejoined,
    // one heartbeat later), plus the survivor's assignment and our health poll.
    let session = Duration::from_millis(SESSION_TIMEOUT_MS);
    assert!(
        takeover
            <= session
                + Duration::from_secs(1)
                + (session - Duration::from_secs(1))
                + Duration::from_secs(3),
        "takeover took {takeover:?}"
    );
    eprintln!(
        "kill -9 of a consumer holding {killed_partitions:?}: survivor held all 3 partitions after {takeover:?}; {duplicates} duplicate spans of {}",
        expected.len()
    );
    bridge.stop();
    for c in consumers.into_iter().flatten() {
        c.stop();
    }
}

#[test]
fn a_broker_down_for_30_s_loses_nothing_the_spool_holds_the_backlog() {
    let broker = KafkaBroker::start(TOPIC, 3).expect("broker");
    let brokers = broker.bootstrap_servers();
    let receiver = Receiver::start(|_, _| Action::ok());
    let dir = temp_dir("kafka-outage");
    let bridge = serve(&brokers, &dir.join("spool"));
    let consumer = consume(
        &brokers,
        "outage",
        &receiver.base_url(),
        &dir.join("c"),
        &[],
    );
    wait_for_assignment(&[&consumer], 3, Duration::from_secs(60));
    let workload = Workload {
        traces: 0..400,
        parts: 5,
        per_part: 10,
        clients: 2,
        parts_per_export: 5,
    };
    let expected = workload.span_ids();
    let exports = workload.exports();
    // First half, broker down, second half, 30 s, broker back.
    let (first, second): (Vec<_>, Vec<_>) = exports
        .into_iter()
        .map(|mut e| {
            let rest = e.split_off(e.len() / 2);
            (e, rest)
        })
        .unzip();
    send_all(&bridge.url("/v1/traces"), first, || {});
    broker.stop().expect("broker down");
    let down_at = Instant::now();
    send_all(&bridge.url("/v1/traces"), second, || {});
    // Everything sent while the broker is down is held by the spool.
    let mut backlog = 0.0;
    assert!(wait_until(Duration::from_secs(20), || {
        backlog = metric(&bridge.metrics(), "langfuse_bridge_spool_records").unwrap_or(0.0);
        backlog > 0.0
    }));
    let remaining = Duration::from_secs(30).saturating_sub(down_at.elapsed());
    std::thread::sleep(remaining);
    let still = metric(&bridge.metrics(), "langfuse_bridge_spool_records").unwrap_or(0.0);
    assert!(
        still > 0.0,
        "the backlog left the spool while the broker was down"
    );
    broker.restart().expect("broker up");
    wait_for_all(&[&receiver], &expected, Duration::from_secs(180));
    assert!(wait_until(Duration::from_secs(30), || {
        metric(&bridge.metrics(), "langfuse_bridge_spool_records") == Some(0.0)
    }));
    let delivered = Delivered::collect(&[&receiver]);
    eprintln!(
        "broker down 30 s: spool backlog {still} records at the end of the outage; all {} spans delivered, {} duplicates",
        expected.len(),
        delivered.duplicates()
    );
    bridge.stop();
    consumer.stop();
}

/// Every line of the dead-letter files under `dir` (`DIR/dead-letter/<day>.jsonl`).
fn dead_letters(dir: &Path) -> Vec<serde_json::Value> {
    let Ok(files) = std::fs::read_dir(dir.join("dead-letter")) else {
        return Vec::new();
    };
    files
        .filter_map(Result::ok)
        .filter_map(|f| std::fs::read_to_string(f.path()).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect::<Vec<serde_json::Value>>()
        })
        .collect()
}

/// Produces `payload` as the Collector's Kafka exporter does (key: the trace id in hex, no
/// headers), to `partition` of `topic`; waits for the broker's acknowledgement.
fn produce(producer: &BaseProducer, topic: &str, partition: i32, key: &str, payload: &[u8]) {
    producer
        .send(
            BaseRecord::to(topic)
                .partition(partition)
                .key(key)
                .payload(payload),
        )
        .map_err(|(e, _)| e)
        .expect("produce");
    producer
        .flush(Duration::from_secs(30))
        .expect("broker acknowledged");
}

#[test]
fn collector_messages_are_consumed_like_ours_and_garbage_is_dead_lettered() {
    let broker = KafkaBroker::start("collector_proto", 3).expect("broker");
    broker.create_topic("collector_json", 3).expect("topic");
    let brokers = broker.bootstrap_servers();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    // Partition 0 of the protobuf topic: a good trace, a message that is not OTLP, another
    // good trace; the JSON topic gets the same traces as OTLP/JSON.
    let traces = [7u64, 8, 9];
    let body = |t: u64| export(spans(t, 0, 4));
    produce(
        &producer,
        "collector_proto",
        0,
        &hex(&trace_id(traces[0])),
        &body(traces[0]).encode_to_vec(),
    );
    let garbage = b"this is not an OTLP export \xff\xfe".to_vec();
    produce(&producer, "collector_proto", 0, "garbage", &garbage);
    for &t in &traces[1..] {
        produce(
            &producer,
            "collector_proto",
            0,
            &hex(&trace_id(t)),
            &body(t).encode_to_vec(),
        );
    }
    for &t in &traces {
        let json = serde_json::to_vec(&body(t)).expect("OTLP/JSON");
        produce(&producer, "collector_json", 1, &hex(&trace_id(t)), &json);
    }
    let expected: BTreeMap<String, String> = traces
        .iter()
        .flat_map(|&t| (0..4).map(move |i| (hex(&span_id(t, i).to_be_bytes()), hex(&trace_id(t)))))
        .collect();
    let dir = temp_dir("kafka-collector");
    for (topic, encoding) in [
        ("collector_proto", "otlp_proto"),
        ("collector_json", "otlp_json"),
    ] {
        let receiver = Receiver::start(|_, _| Action::ok());
        let letters = dir.join(topic);
        let consumer = consume(
            &brokers,
            &format!("group-{topic}"),
            &receiver.base_url(),
            &letters,
            &["--kafka-topic", topic, "--kafka-encoding", encoding],
        );
        wait_for_all(&[&receiver], &expected, Duration::from_secs(60));
        let delivered = Delivered::collect(&[&receiver]);
        assert_eq!(delivered.duplicates(), 0, "{topic}");
        if topic == "collector_proto" {
            // The garbage is in the dead-letter file with its place; the partition moved on
            // past it (the traces after it arrived) and its offset was committed.
            let entries = dead_letters(&letters);
            assert_eq!(entries.len(), 1, "{entries:?}");
            let entry = &entries[0];
            assert_eq!(entry["reason"], "undecodable");
            assert_eq!(entry["kafka"]["topic"], topic);
            assert_eq!(entry["kafka"]["partition"], 0);
            assert_eq!(entry["kafka"]["offset"], 1);
            use base64::Engine;
            let body = base64::engine::general_purpose::STANDARD
                .decode(entry["body_base64"].as_str().expect("body_base64"))
                .expect("base64");
            assert_eq!(body, garbage);
            assert!(wait_until(Duration::from_secs(10), || {
                consumer.value("langfuse_bridge_kafka_committed_messages_total") == 4.0
            }));
            assert_eq!(
                consumer.value("langfuse_bridge_kafka_undecodable_messages_total"),
                1.0
            );
        } else {
            assert!(dead_letters(&letters).is_empty());
        }
        consumer.stop();
    }
}
