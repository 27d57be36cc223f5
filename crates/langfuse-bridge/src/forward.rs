//! Forwarding: a thread per sink reads the spool in order, has the [`Shaper`] turn records
//! into upstream requests ([`Unit`]s), hands them to the [`Sink`] until each is accepted (or
//! refused for good), and only then commits the sink's cursor.
//!
//! Whatever a sink refuses for good, and whatever a shape cannot carry, is written to the
//! [dead-letter file](crate::sinks::dead_letter) with the reason before the cursor moves past
//! it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use langfuse_otel_transport::{RetryPolicy, RoundBackoff};

use crate::assemble::{Assembler, Emitted, Finisher, Piece};
use crate::metrics::Metrics;
use crate::shape::{MAX_BYTES, MAX_RECORDS, Shaper};
use crate::sinks::Sink;
use crate::sinks::dead_letter::{DeadLetters, Refusal};
use langfuse_spool::{Spool, SpoolReader, SpoolRecord};

/// Shared between the bridge and its forwarder.
pub struct ForwardControl {
    stopping: AtomicBool,
    drain_deadline: std::sync::Mutex<Option<Instant>>,
    wake: tokio::sync::Notify,
}

impl Default for ForwardControl {
    fn default() -> Self {
        ForwardControl {
            stopping: AtomicBool::new(false),
            drain_deadline: std::sync::Mutex::new(None),
            wake: tokio::sync::Notify::new(),
        }
    }
}

impl ForwardControl {
    /// Asks the forwarder to send what it can until `deadline`, then stop.
    pub fn stop(&self, deadline: Instant) {
        if let Ok(mut d) = self.drain_deadline.lock() {
            *d = Some(deadline);
        }
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
        self.wake.notify_one();
    }

    fn deadline(&self) -> Option<Instant> {
        if !self.stopping.load(Ordering::SeqCst) {
            return None;
        }
        self.drain_deadline.lock().ok().and_then(|d| *d)
    }
}

/// The forwarding loop of one destination.
pub struct Forwarder {
    /// Where records come from.
    pub reader: SpoolReader,
    /// The spool (for gauges).
    pub spool: Spool,
    /// Where units go.
    pub sink: Box<dyn Sink>,
    /// Records → units.
    pub shaper: Shaper,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Stop signal.
    pub control: Arc<ForwardControl>,
    /// Deadline of one send round.
    pub send_timeout: Duration,
    /// Records in flight at the last crash (sent again: possible duplicates).
    pub redelivered: u64,
    /// Where refused items go.
    pub dead_letters: DeadLetters,
    /// The assembly stage (`--assemble-window` above 0 with `--to langfuse`).
    pub assembly: Option<Assembly>,
    /// Whether the `events_only` refusal was explained in the log already.
    pub events_only_explained: AtomicBool,
    /// Request buffers whose sending is over, for the next requests (see [`SPARE`]).
    pub spare: Vec<Vec<u8>>,
}

/// How many sent request buffers a forwarder keeps for later requests: writing into memory
/// already in use, instead of fresh pages, is much of the cost of building large requests.
const SPARE: usize = 2;

/// The assembly stage of a forwarder: the held parts, and how an emitted trace becomes units.
pub struct Assembly {
    /// Parts held per trace.
    pub assembler: Assembler<Piece>,
    /// Emitted traces → units.
    pub finisher: Finisher,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Forwarder {
    /// What both loops start with: the redelivered records counted, and the wait between
    /// rounds an upstream did not accept (the shape every worker of the project uses: the
    /// exporter's batch processor, the SDK's score queue).
    fn start(&self) -> (Arc<Metrics>, RoundBackoff) {
        let metrics = Arc::clone(&self.metrics);
        metrics
            .redelivered_records
            .fetch_add(self.redelivered, Ordering::Relaxed);
        let backoff = RoundBackoff::new(RetryPolicy {
            max_attempts: 1,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            jitter: 0.1,
        });
        (metrics, backoff)
    }

    /// The next records of a round; `None` (after a pause) when the spool cannot be read.
    fn read_round(&mut self, runtime: &tokio::runtime::Runtime) -> Option<Vec<SpoolRecord>> {
        match self.reader.read(MAX_RECORDS, MAX_BYTES) {
            Ok(records) => Some(records),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the spool");
                self.pause(runtime, Duration::from_secs(1));
                None
            }
        }
    }

    /// Runs until stopped (blocking; `runtime`, owned by the calling thread so that its
    /// `block_on` drives the timers, is used to wait for records and back off).
    pub fn run(mut self, runtime: &tokio::runtime::Runtime) {
        if let Some(assembly) = self.assembly.take() {
            return self.run_assembled(runtime, assembly);
        }
        let (metrics, mut backoff) = self.start();
        // The last sequence read (everything up to it is delivered or held by the coding-agent
        // stage).
        let mut read_upto = self.reader.committed();
        loop {
            self.update_gauges();
            let stop_at = self.control.deadline();
            if let Some(deadline) = stop_at
                && (!self.reader.has_more() || Instant::now() >= deadline)
            {
                // Held coding-agent turns go out now, ready or not.
                if self.shaper.holds_turns() {
                    let (units, refused) = self.shaper.turns(now_ms(), true);
                    if self.deliver(
                        runtime,
                        &mut backoff,
                        units,
                        refused,
                        (read_upto, read_upto),
                    ) {
                        self.commit(read_upto);
                    }
                }
                break;
            }
            let Some(records) = self.read_round(runtime) else {
                continue;
            };
            if records.is_empty() {
                if self.shaper.holds_turns() {
                    // Turns that became quiet while nothing new arrived.
                    let (units, refused) = self.shaper.turns(now_ms(), false);
                    if !units.is_empty() || !refused.is_empty() {
                        if !self.deliver(
                            runtime,
                            &mut backoff,
                            units,
                            refused,
                            (read_upto, read_upto),
                        ) {
                            break;
                        }
                        self.commit(read_upto);
                    }
                } else {
                    metrics.oldest_pending_ms.store(0, Ordering::Relaxed);
                }
                let control = Arc::clone(&self.control);
                let reader = &self.reader;
                // While turns are held, look again soon: they go out when quiet.
                let idle = if self.shaper.holds_turns() { 200 } else { 500 };
                runtime.block_on(async {
                    tokio::select! {
                        () = reader.wait() => {}
                        () = control.wake.notified() => {}
                        () = tokio::time::sleep(Duration::from_millis(idle)) => {}
                    }
                });
                continue;
            }
            let last = records.last().map_or(0, |r| r.sequence);
            metrics
                .oldest_pending_ms
                .store(records[0].received_unix_ms, Ordering::Relaxed);
            if let Err(e) = self.reader.mark_in_flight(last) {
                tracing::warn!(error = %e, "cannot record the in-flight mark");
            }
            let first = records.first().map_or(0, |r| r.sequence);
            let (units, refused) = self.shaper.prepare(&records, now_ms());
            drop(records);
            if !self.deliver(runtime, &mut backoff, units, refused, (first, last)) {
                break;
            }
            read_upto = last;
            self.commit(last);
        }
        self.update_gauges();
    }

    /// Commits the cursor up to `sequence`, but below the first record whose coding-agent
    /// items are still held (their turns are not delivered yet).
    fn commit(&mut self, sequence: u64) {
        let to = match self.shaper.held_from() {
            Some(held) => sequence.min(held.saturating_sub(1)),
            None => sequence,
        };
        if let Err(e) = self.reader.commit(to) {
            tracing::error!(error = %e, "cannot commit the cursor");
        }
    }

    /// Sends units until each is accepted or refused for good, and writes what is refused to
    /// the dead-letter file; `false` when stopped first (nothing may be committed then).
    fn deliver(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        backoff: &mut RoundBackoff,
        units: Vec<crate::shape::Unit>,
        mut refused: Vec<Refusal>,
        (first, last): (u64, u64),
    ) -> bool {
        let metrics = Arc::clone(&self.metrics);
        let counts = self.shaper.take_agent_counts();
        metrics
            .agent_turns
            .fetch_add(counts.turns, Ordering::Relaxed);
        if counts.agent_outside_turns > 0 {
            metrics.dropped("agent_outside_turns", counts.agent_outside_turns);
        }
        let unsupported: usize = refused.iter().map(|r| r.items).sum();
        if unsupported > 0 {
            metrics.dropped("unsupported_by_destination", unsupported as u64);
        }
        for mut unit in units {
            if !self.send_until_done(runtime, backoff, &mut unit, &mut refused) {
                return false;
            }
            if let crate::shape::Unit::Otlp { body, .. } = unit
                && self.spare.len() < SPARE
                && body.capacity() >= 64 << 10
            {
                self.spare.push(body);
            }
        }
        // Refused items are on disk before the cursor moves past them.
        refused.is_empty() || self.dead_letter(runtime, &refused, (first, last))
    }

    /// Sends one unit until it is accepted or refused for good; `false` when stopped first
    /// (nothing may be committed then).
    fn send_until_done(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        backoff: &mut RoundBackoff,
        unit: &mut crate::shape::Unit,
        refused: &mut Vec<Refusal>,
    ) -> bool {
        let metrics = Arc::clone(&self.metrics);
        loop {
            let stop_at = self.control.deadline();
            let mut deadline = Instant::now() + self.send_timeout;
            if let Some(stop) = stop_at {
                deadline = deadline.min(stop);
            }
            let mut sent = self.sink.send(unit, deadline);
            refused.append(&mut sent.refused);
            if sent.delivered > 0 {
                metrics
                    .forwarded_items
                    .fetch_add(sent.delivered as u64, Ordering::Relaxed);
                metrics.forwarded_requests.fetch_add(1, Ordering::Relaxed);
            }
            if sent.rejected > 0 {
                metrics.dropped("upstream_rejected", sent.rejected as u64);
            }
            match sent.retry {
                None => {
                    metrics.upstream_reachable.store(1, Ordering::Relaxed);
                    backoff.succeeded();
                    return true;
                }
                Some(retry) => {
                    metrics.forward_retries.fetch_add(1, Ordering::Relaxed);
                    metrics.upstream_reachable.store(0, Ordering::Relaxed);
                    tracing::warn!(reason = %retry.reason, items = unit.items(), "upstream did not accept; will retry");
                    if self.control.deadline().is_some_and(|d| Instant::now() >= d) {
                        // Nothing committed: after a restart the round is sent (and
                        // refused) again.
                        return false;
                    }
                    let now = Instant::now();
                    let until = backoff.failed(now, retry.delay);
                    self.pause(runtime, until - now);
                }
            }
        }
    }

    /// Writes refused items to the dead-letter file, trying again until it works or the
    /// bridge stops (then `false`: the records stay uncommitted and are sent again after a
    /// restart, so nothing is lost unwritten).
    fn dead_letter(
        &self,
        runtime: &tokio::runtime::Runtime,
        refused: &[Refusal],
        sequences: (u64, u64),
    ) -> bool {
        loop {
            match self.dead_letters.write(refused, sequences, now_ms()) {
                Ok(path) => {
                    self.explain_events_only(refused);
                    for r in refused {
                        self.metrics.dead_lettered(r.reason.label(), r.items as u64);
                        tracing::warn!(
                            reason = r.reason.label(),
                            items = r.items,
                            kind = crate::sinks::dead_letter::kind_label(r.kind),
                            detail = %r.detail,
                            file = %path.display(),
                            "items refused for good were written to the dead-letter file"
                        );
                    }
                    return true;
                }
                Err(e) => {
                    tracing::error!(error = %e, items = refused.len(), "cannot write the dead-letter file; will retry before moving on");
                    if self.control.deadline().is_some_and(|d| Instant::now() >= d) {
                        return false;
                    }
                    self.pause(runtime, Duration::from_secs(1));
                }
            }
        }
    }

    /// The loop with the [assembly stage](crate::assemble): records are split per trace and
    /// held until the trace is quiet; the cursor moves only below the oldest record with a
    /// part not yet delivered (and below held coding-agent turns), so held records stay in the
    /// spool (a restart reads them again).
    fn run_assembled(mut self, runtime: &tokio::runtime::Runtime, mut assembly: Assembly) {
        let (metrics, mut backoff) = self.start();
        let mut last_read = self.reader.committed();
        let mut in_flight = last_read;
        // Due traces are collected every `emit_every`, so that they share requests.
        let emit_every = assembly.assembler.emit_every();
        let mut next_emit = Instant::now();
        loop {
            self.update_gauges();
            let stopping = self.control.deadline();
            if let Some(deadline) = stopping
                && ((!self.reader.has_more()
                    && assembly.assembler.is_empty()
                    && !self.shaper.holds_turns())
                    || Instant::now() >= deadline)
            {
                break;
            }
            let Some(records) = self.read_round(runtime) else {
                continue;
            };
            let now = Instant::now();
            let first = self.reader.committed() + 1;
            // Units that skip assembly (scores, other signals), then the emitted traces.
            let mut units: Vec<crate::shape::Unit> = Vec::new();
            let mut refused: Vec<Refusal> = Vec::new();
            let mut emitted: Vec<Emitted<Piece>> = Vec::new();
            let mut max_sent = 0;
            for record in &records {
                last_read = record.sequence;
                match crate::assemble::split(record) {
                    Some(split) => {
                        if !split.now.is_empty() {
                            max_sent = max_sent.max(record.sequence);
                            units.extend(split.now);
                        }
                        for (key, piece) in split.held {
                            emitted.extend(assembly.assembler.push(
                                &key,
                                record.sequence,
                                piece,
                                now,
                            ));
                        }
                    }
                    None => {
                        let (more, mut refusals) =
                            self.shaper.prepare(std::slice::from_ref(record), now_ms());
                        max_sent = max_sent.max(record.sequence);
                        units.extend(more);
                        refused.append(&mut refusals);
                    }
                }
            }
            if !records.is_empty() {
                metrics
                    .oldest_pending_ms
                    .store(records[0].received_unix_ms, Ordering::Relaxed);
            }
            drop(records);
            if self.shaper.holds_turns() {
                let (more, mut refusals) = self.shaper.turns(now_ms(), stopping.is_some());
                units.extend(more);
                refused.append(&mut refusals);
            }
            if !emitted.is_empty() {
                metrics
                    .assembled_early
                    .fetch_add(emitted.len() as u64, Ordering::Relaxed);
            }
            match stopping {
                Some(_) => emitted.extend(assembly.assembler.drain()),
                None if now >= next_emit => {
                    emitted.extend(assembly.assembler.due(now));
                    next_emit = now + emit_every;
                }
                None => {}
            }
            // What goes out may be re-sent after a crash: marked before it is sent.
            for trace in &emitted {
                for part in &trace.parts {
                    max_sent = max_sent.max(part.sequence);
                }
            }
            metrics
                .assembly_held_traces
                .store(assembly.assembler.len() as u64, Ordering::Relaxed);
            if max_sent > in_flight {
                in_flight = max_sent;
                if let Err(e) = self.reader.mark_in_flight(in_flight) {
                    tracing::warn!(error = %e, "cannot record the in-flight mark");
                }
            }
            // Emitted traces go out together, their spans written into as few requests as the
            // credentials and the size bound allow; a request is sent once full, before the
            // next is written, so that its buffer is written again (warm memory) instead of
            // fresh pages for every request of a large emission.
            let mut emitted = emitted.into_iter().peekable();
            let mut stopped = false;
            loop {
                let mut released: Vec<u64> = Vec::new();
                for trace in emitted.by_ref() {
                    let auth = crate::assemble::credentials_of(&trace.trace);
                    let mut pieces: Vec<Piece> = Vec::with_capacity(trace.parts.len());
                    for part in trace.parts {
                        released.push(part.sequence);
                        pieces.push(part.item);
                    }
                    assembly.finisher.finish(
                        &trace.trace,
                        auth,
                        pieces,
                        &mut units,
                        &mut self.spare,
                    );
                    if units
                        .iter()
                        .map(crate::shape::Unit::body_len)
                        .sum::<usize>()
                        >= MAX_BYTES
                    {
                        break;
                    }
                }
                if (!units.is_empty() || !refused.is_empty())
                    && !self.deliver(
                        runtime,
                        &mut backoff,
                        std::mem::take(&mut units),
                        std::mem::take(&mut refused),
                        (first, last_read),
                    )
                {
                    stopped = true;
                    break;
                }
                assembly.assembler.release_sequences(&released);
                if emitted.peek().is_none() {
                    break;
                }
            }
            if stopped {
                break;
            }
            metrics
                .duplicate_spans
                .store(assembly.finisher.duplicates, Ordering::Relaxed);
            let held = [assembly.assembler.low_water(), self.shaper.held_from()];
            let commit = held
                .iter()
                .flatten()
                .map(|l| l.saturating_sub(1))
                .fold(last_read, u64::min);
            if commit > self.reader.committed()
                && let Err(e) = self.reader.commit(commit)
            {
                tracing::error!(error = %e, "cannot commit the cursor");
            }
            if !self.reader.has_more() {
                let mut wait =
                    assembly
                        .assembler
                        .next_due()
                        .map_or(Duration::from_millis(500), |due| {
                            due.max(next_emit)
                                .saturating_duration_since(Instant::now())
                                .min(Duration::from_millis(500))
                        });
                if self.shaper.holds_turns() {
                    wait = wait.min(Duration::from_millis(200));
                }
                let control = Arc::clone(&self.control);
                let reader = &self.reader;
                runtime.block_on(async {
                    tokio::select! {
                        () = reader.wait() => {}
                        () = control.wake.notified() => {}
                        () = tokio::time::sleep(wait) => {}
                    }
                });
            }
        }
        self.update_gauges();
    }

    /// The one clear error when the upstream refuses ingestion events as Langfuse v4 does in
    /// its `events_only` write mode (logged once per run).
    fn explain_events_only(&self, refused: &[Refusal]) {
        const EVENTS_ONLY: &str = "Event type not accepted";
        if refused.iter().any(|r| r.detail.contains(EVENTS_ONLY))
            && !self.events_only_explained.swap(true, Ordering::Relaxed)
        {
            tracing::error!(
                "the upstream runs Langfuse v4 in its events_only write mode (Langfuse Cloud, and \
                 self-hosted v4 by default): it refuses trace and observation events on \
                 /api/public/ingestion (\"{EVENTS_ONLY}\"). `--to ingestion` cannot reach it; \
                 `--to langfuse` (the default with an upstream) converts them to OTLP. The \
                 refused events are kept in the dead-letter file: send them with \
                 `langfuse-bridge dead-letter replay SPOOL --to langfuse`"
            );
        }
    }

    fn pause(&self, runtime: &tokio::runtime::Runtime, wait: Duration) {
        let control = Arc::clone(&self.control);
        runtime.block_on(async {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = control.wake.notified() => {}
            }
        });
    }

    fn update_gauges(&self) {
        let stats = self.spool.stats();
        self.metrics
            .spool_bytes
            .store(stats.bytes, Ordering::Relaxed);
        self.metrics
            .spool_records
            .store(stats.backlog_records, Ordering::Relaxed);
    }
}
