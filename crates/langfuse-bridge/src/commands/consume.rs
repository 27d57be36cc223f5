//! `langfuse-bridge consume`: a Kafka consumer group member that forwards what it reads like
//! `serve` forwards its spool (the same `Shaper` and sinks).
//!
//! Rounds: poll up to `--kafka-max-batch` messages; read each (its `langfuse-kind` header, or
//! `--kafka-encoding` for the Collector's messages); shape them into units; send every unit
//! until the destination accepted it or refused it for good (refusals and undecodable messages
//! go to the dead-letter files first); then commit, per partition still assigned, the offset
//! after the last message handled. Nothing is committed before the destination accepted
//! everything before it: a consumer that dies loses nothing, and what it had sent without
//! committing is sent again by the partition's next owner (at-least-once; envelope ids are
//! derived from partition and offset, so a re-sent event carries its first id).
//!
//! Rebalancing is cooperative (`cooperative-sticky`): partitions move one by one, and the
//! callbacks run only inside `poll`, between rounds, so a round in progress always finishes
//! before its partitions are given up. A round that outlives `max.poll.interval.ms` (the
//! destination down for longer) loses the group's assignment: its commit is refused and the
//! partitions' new owners read the messages again.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use langfuse_otel_core::Translator;
use langfuse_otel_core::translate::TranslateOptions;
use langfuse_otel_transport::{RetryPolicy, RoundBackoff};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::consume_args::{ConsumeArgs, KafkaEncoding};
use crate::serve::ServeError;
use crate::serve::config::{ConfigError, Destination as To};
use crate::shape::Shaper;
use crate::sinks::Sink;
use crate::sinks::dead_letter::{DeadLetters, KafkaPosition, Reason};
use crate::sources::kafka::{CONSUMER_DEFAULTS, ConsumeMetrics, GroupContext, Read, read_message};

/// Why `consume` could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// A configuration that cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// librdkafka refused the configuration, or the subscription.
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The `/health` and `/metrics` listener.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// A running consumer: its metrics, and the switch that stops it.
pub struct ConsumeHandle {
    /// What it counts.
    pub metrics: Arc<ConsumeMetrics>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ConsumeHandle {
    /// Asks the loop to stop after the round in progress (a round still retrying is abandoned
    /// without committing), leaves the group and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the consumer loop on its own thread.
///
/// # Errors
/// A configuration librdkafka or the destination refuses.
pub fn start(args: &ConsumeArgs) -> Result<ConsumeHandle, ConsumeError> {
    let settings = args.kafka_settings();
    let config = args.destination_config()?;
    let options = settings
        .client_options()
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    if args.kafka_group.trim().is_empty() {
        return Err(ConfigError::Invalid("--kafka-group must not be empty".into()).into());
    }
    let destination: Box<dyn Sink> = if config.destination()? == To::Local {
        let store = langfuse_local::Store::open(&config.db)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Box::new(crate::sinks::LocalSink::new(store))
    } else {
        crate::sinks::from_config(&config)?
    };
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&args.dead_letter)
            .map_err(|e| {
                ConfigError::Invalid(format!(
                    "--dead-letter '{}': {e}",
                    args.dead_letter.display()
                ))
            })?;
    }
    let metrics = Arc::new(ConsumeMetrics::default());
    let mut client = ClientConfig::new();
    for (key, value) in CONSUMER_DEFAULTS {
        client.set(*key, *value);
    }
    for (key, value) in options {
        client.set(key, value);
    }
    client.set("group.id", &args.kafka_group);
    let consumer: BaseConsumer<GroupContext> = client.create_with_context(GroupContext {
        metrics: Arc::clone(&metrics),
        topic: settings.topic.clone(),
    })?;
    consumer.subscribe(&[&settings.topic])?;
    let translator = Translator::with_options(TranslateOptions {
        compatibility: config.compat,
        ..TranslateOptions::default()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let worker = Worker {
        shaper: Shaper::new(destination.shape(), translator),
        destination,
        consumer,
        metrics: Arc::clone(&metrics),
        stop: Arc::clone(&stop),
        dead_letters: DeadLetters::new(&args.dead_letter, "kafka"),
        topic: settings.topic,
        encoding: args.kafka_encoding,
        forward_credentials: settings.forward_credentials,
        max_batch: args.kafka_max_batch.max(1),
        send_timeout: Duration::from_secs(config.upstream_timeout_secs.max(1)),
    };
    let thread = std::thread::Builder::new()
        .name("kafka-consume".into())
        .spawn(move || worker.run())
        .map_err(|source| ServeError::Start {
            what: "the consumer thread",
            source,
        })?;
    Ok(ConsumeHandle {
        metrics,
        stop,
        thread: Some(thread),
    })
}

struct Worker {
    consumer: BaseConsumer<GroupContext>,
    destination: Box<dyn Sink>,
    shaper: Shaper,
    metrics: Arc<ConsumeMetrics>,
    stop: Arc<AtomicBool>,
    dead_letters: DeadLetters,
    topic: String,
    encoding: KafkaEncoding,
    forward_credentials: bool,
    max_batch: usize,
    send_timeout: Duration,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Worker {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn run(mut self) {
        let mut backoff = RoundBackoff::new(RetryPolicy {
            max_attempts: 1,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            jitter: 0.1,
        });
        while !self.stopping() {
            let batch = self.poll_batch();
            if batch.is_empty() {
                continue;
            }
            if !self.handle(batch, &mut backoff) {
                break;
            }
        }
        // Leaving the group hands the partitions over at once (revocation callback).
        self.consumer.unsubscribe();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !self.assigned().is_empty() {
            let _ = self.consumer.poll(Duration::from_millis(100));
        }
    }

    fn assigned(&self) -> BTreeSet<i32> {
        self.metrics
            .assigned
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }

    fn poll_batch(&self) -> Vec<Read> {
        let mut batch = Vec::new();
        let mut wait = Duration::from_millis(200);
        while batch.len() < self.max_batch {
            match self.consumer.poll(wait) {
                None => break,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "Kafka consumer error");
                    break;
                }
                Some(Ok(message)) => {
                    batch.push(read_message(
                        &message,
                        self.encoding,
                        self.forward_credentials,
                    ));
                }
            }
            wait = Duration::ZERO;
        }
        batch
    }

    /// One round; `false` when stopped before it completed (nothing committed).
    fn handle(&mut self, batch: Vec<Read>, backoff: &mut RoundBackoff) -> bool {
        // Per partition: the last offset handled and how many messages.
        let mut last: BTreeMap<i32, (i64, u64)> = BTreeMap::new();
        let mut records = Vec::with_capacity(batch.len());
        let mut undecodable = Vec::new();
        for read in batch {
            let (offset, count) = last.entry(read.partition).or_insert((read.offset, 0));
            *offset = (*offset).max(read.offset);
            *count += 1;
            match read.record {
                Ok(record) => records.push(record),
                Err(refusal) => undecodable.push((read.partition, read.offset, refusal)),
            }
        }
        let handled = (records.len() + undecodable.len()) as u64;
        let first = records.first().map_or(0, |r| r.sequence);
        let last_sequence = records.last().map_or(0, |r| r.sequence);
        let (units, mut refused) = self.shaper.prepare(&records, now_ms());
        drop(records);
        for mut unit in units {
            loop {
                let mut sent = self
                    .destination
                    .send(&mut unit, Instant::now() + self.send_timeout);
                refused.append(&mut sent.refused);
                self.metrics
                    .forwarded_items
                    .fetch_add(sent.delivered as u64, Ordering::Relaxed);
                let Some(retry) = sent.retry else {
                    backoff.succeeded();
                    break;
                };
                self.metrics.forward_retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(reason = %retry.reason, items = unit.items(), "the destination did not accept; will retry");
                let now = Instant::now();
                let until = backoff.failed(now, retry.delay);
                if !self.pause(until - now) {
                    return false;
                }
            }
        }
        for (partition, offset, refusal) in &undecodable {
            self.metrics
                .undecodable_messages
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(partition, offset, detail = %refusal.detail, "an undecodable Kafka message goes to the dead-letter file");
            let position = KafkaPosition {
                topic: self.topic.clone(),
                partition: *partition,
                offset: *offset,
            };
            let refusal = std::slice::from_ref(refusal);
            if !self.durably(|letters| letters.write_kafka(refusal, &position, now_ms())) {
                return false;
            }
            self.metrics.dead_lettered(Reason::Undecodable.label(), 1);
        }
        if !refused.is_empty() {
            if !self.durably(|letters| letters.write(&refused, (first, last_sequence), now_ms())) {
                return false;
            }
            for r in &refused {
                self.metrics.dead_lettered(r.reason.label(), r.items as u64);
            }
        }
        self.metrics.messages.fetch_add(handled, Ordering::Relaxed);
        self.commit(&last);
        true
    }

    /// Writes to the dead-letter files until it works; `false` when stopped first.
    fn durably(
        &self,
        write: impl Fn(
            &DeadLetters,
        )
            -> Result<std::path::PathBuf, crate::sinks::dead_letter::DeadLetterError>,
    ) -> bool {
        loop {
            match write(&self.dead_letters) {
                Ok(_) => return true,
                Err(e) => {
                    tracing::error!(error = %e, "cannot write the dead-letter file; will retry before committing");
                    if !self.pause(Duration::from_secs(1)) {
                        return false;
                    }
                }
            }
        }
    }

    /// Waits `wait`; `false` when asked to stop.
    fn pause(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if self.stopping() {
                return false;
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        !self.stopping()
    }

    /// Commits the offset after each partition's last handled message, for the partitions
    /// this member still holds.
    fn commit(&self, last: &BTreeMap<i32, (i64, u64)>) {
        let assigned = self.assigned();
        let mut list = TopicPartitionList::new();
        let mut messages = 0u64;
        for (partition, (offset, count)) in last {
            if !assigned.contains(partition) {
                continue;
            }
            if list
                .add_partition_offset(&self.topic, *partition, Offset::Offset(offset + 1))
                .is_ok()
            {
                messages += count;
            }
        }
        if list.count() == 0 {
            return;
        }
        match self.consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => {
                self.metrics.commits.fetch_add(1, Ordering::Relaxed);
                self.metrics
                    .committed_messages
                    .fetch_add(messages, Ordering::Relaxed);
            }
            Err(e) => {
                self.metrics.failed_commits.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "the group refused the offset commit; the partitions' next owner reads those messages again");
            }
        }
    }
}

/// Runs `consume` until SIGTERM or SIGINT.
///
/// # Errors
/// A configuration that cannot work, or a listener that cannot bind.
pub fn run(args: &ConsumeArgs) -> Result<(), ConsumeError> {
    let level = args
        .log_level
        .clone()
        .or_else(|| {
            std::env::var("RUST_LOG")
                .ok()
                .filter(|f| !f.trim().is_empty())
        })
        .unwrap_or_else(|| "info".into());
    let filter = crate::logging::log_filter(&level)?;
    crate::logging::init_logging(args.log_format.unwrap_or_default(), filter);
    let listen: Option<SocketAddr> = if args.http == "off" {
        None
    } else {
        Some(args.http.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "--http: '{}' is not an address or `off`",
                args.http
            ))
        })?)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|source| ServeError::Start {
            what: "the runtime",
            source,
        })?;
    let handle = start(args)?;
    let metrics = Arc::clone(&handle.metrics);
    let topic = args.kafka_settings().topic;
    let group = args.kafka_group.clone();
    let served = runtime.block_on(async move {
        let listener = match listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind { addr, source })?,
            ),
            None => None,
        };
        if let Some(l) = &listener {
            tracing::info!(http = %l.local_addr().map_err(|source| ServeError::Bind { addr: listen.unwrap_or(([127, 0, 0, 1], 0).into()), source })?, topic, group, "langfuse-bridge consume running");
        }
        let shutdown = crate::serve::args::shutdown_signal();
        match listener {
            Some(listener) => {
                let app = router(metrics, topic, group);
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                    .map_err(|source| ServeError::Start {
                        what: "the metrics listener",
                        source,
                    })?;
            }
            None => shutdown.await,
        }
        Ok::<(), ServeError>(())
    });
    handle.stop();
    Ok(served?)
}

/// `/health` and `/metrics` of `consume`.
pub fn router(metrics: Arc<ConsumeMetrics>, topic: String, group: String) -> axum::Router {
    use axum::routing::get;
    let state = Arc::new((metrics, topic, group));
    axum::Router::new()
        .route(
            "/health",
            get(
                |axum::extract::State(s): axum::extract::State<
                    Arc<(Arc<ConsumeMetrics>, String, String)>,
                >| async move {
                    let assigned: Vec<i32> =
                        s.0.assigned
                            .lock()
                            .map(|a| a.iter().copied().collect())
                            .unwrap_or_default();
                    let body = serde_json::json!({
                        "status": "ok",
                        "topic": s.1,
                        "group": s.2,
                        "assigned_partitions": assigned,
                        "messages": s.0.messages.load(Ordering::Relaxed),
                        "committed_messages": s.0.committed_messages.load(Ordering::Relaxed),
                    });
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body.to_string(),
                    )
                },
            ),
        )
        .route(
            "/metrics",
            get(
                |axum::extract::State(s): axum::extract::State<
                    Arc<(Arc<ConsumeMetrics>, String, String)>,
                >| async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        s.0.render(&s.1, &s.2),
                    )
                },
            ),
        )
        .with_state(state)
}
