//! Counters and histograms of the bridge, rendered in the Prometheus text format at
//! `GET /metrics`. Labels come from fixed sets; no credential or payload value is ever a label.
//!
//! | series | type | labels |
//! |---|---|---|
//! | `langfuse_bridge_received_requests_total` | counter | `endpoint` |
//! | `langfuse_bridge_received_items_total` | counter | `endpoint` (spans, events or scores in accepted requests) |
//! | `langfuse_bridge_accepted_requests_total` | counter | `endpoint` |
//! | `langfuse_bridge_rejected_requests_total` | counter | `reason` |
//! | `langfuse_bridge_forwarded_items_total` | counter | |
//! | `langfuse_bridge_forwarded_requests_total` | counter | |
//! | `langfuse_bridge_forward_retries_total` | counter | |
//! | `langfuse_bridge_dropped_items_total` | counter | `reason` (`upstream_rejected`, `unsupported_by_destination`) |
//! | `langfuse_bridge_rejected_spans_total` | counter | `endpoint` (spans left out of acknowledged exports: OTLP partial success) |
//! | `langfuse_bridge_dead_lettered_items_total` | counter | `reason` (items written to the dead-letter file, see [`crate::sinks::dead_letter`]) |
//! | `langfuse_bridge_redelivered_records_total` | counter | records in flight at the last crash, sent again (possible duplicates) |
//! | `langfuse_bridge_assembled_early_total` | counter | traces the assembly stage emitted before their window ended (`--assemble-max-traces` reached) |
//! | `langfuse_bridge_duplicate_spans_total` | counter | spans sent twice within the assembly window, sent once |
//! | `langfuse_bridge_assembly_traces` | gauge | traces held by the assembly stage |
//! | `langfuse_bridge_spool_bytes`, `langfuse_bridge_spool_records` | gauge | |
//! | `langfuse_bridge_forward_lag_seconds` | gauge | age of the oldest record not yet accepted upstream |
//! | `langfuse_bridge_request_duration_seconds` | histogram | `endpoint` (time to acknowledge) |

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Receiving endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/traces`.
    OtlpHttp,
    /// `POST /api/public/otel/v1/traces`.
    LangfuseOtlp,
    /// `POST /api/public/ingestion`.
    Ingestion,
    /// `POST /api/public/scores`.
    Scores,
    /// gRPC `TraceService/Export`.
    Grpc,
    /// `POST /v1/logs`.
    OtlpHttpLogs,
    /// `POST /v1/metrics`.
    OtlpHttpMetrics,
    /// gRPC `LogsService/Export`.
    GrpcLogs,
    /// gRPC `MetricsService/Export`.
    GrpcMetrics,
}

const ENDPOINTS: [Endpoint; 9] = [
    Endpoint::OtlpHttp,
    Endpoint::LangfuseOtlp,
    Endpoint::Ingestion,
    Endpoint::Scores,
    Endpoint::Grpc,
    Endpoint::OtlpHttpLogs,
    Endpoint::OtlpHttpMetrics,
    Endpoint::GrpcLogs,
    Endpoint::GrpcMetrics,
];

impl Endpoint {
    /// The receiving endpoint served at `path` of the HTTP listener.
    pub fn from_path(path: &str) -> Option<Endpoint> {
        match path {
            "/v1/traces" => Some(Endpoint::OtlpHttp),
            "/api/public/otel/v1/traces" => Some(Endpoint::LangfuseOtlp),
            "/api/public/ingestion" => Some(Endpoint::Ingestion),
            "/api/public/scores" => Some(Endpoint::Scores),
            "/v1/logs" => Some(Endpoint::OtlpHttpLogs),
            "/v1/metrics" => Some(Endpoint::OtlpHttpMetrics),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Endpoint::OtlpHttp => "otlp_http",
            Endpoint::LangfuseOtlp => "langfuse_otlp",
            Endpoint::Ingestion => "ingestion",
            Endpoint::Scores => "scores",
            Endpoint::Grpc => "otlp_grpc",
            Endpoint::OtlpHttpLogs => "otlp_http_logs",
            Endpoint::OtlpHttpMetrics => "otlp_http_metrics",
            Endpoint::GrpcLogs => "otlp_grpc_logs",
            Endpoint::GrpcMetrics => "otlp_grpc_metrics",
        }
    }
}

const REASONS: [&str; 9] = [
    "body_too_large",
    "decompressed_too_large",
    "malformed",
    "unsupported_media_type",
    "unauthorized",
    "spool_full",
    "unavailable",
    "misdirected_host",
    "foreign_origin",
];

const DROP_REASONS: [&str; 3] = [
    "upstream_rejected",
    "unsupported_by_destination",
    "agent_outside_turns",
];

/// Reasons of `langfuse_bridge_dead_lettered_items_total` (see [`crate::sinks::dead_letter::Reason`]).
const DEAD_LETTER_REASONS: [&str; 5] = [
    "upstream_rejected",
    "store_rejected",
    "unsupported_by_destination",
    "undecodable",
    "server_rules",
];

/// Upper bounds of the latency histogram (seconds).
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// All metrics of one bridge.
#[derive(Default)]
pub struct Metrics {
    received_requests: [AtomicU64; ENDPOINTS.len()],
    received_items: [AtomicU64; ENDPOINTS.len()],
    accepted_requests: [AtomicU64; ENDPOINTS.len()],
    rejected: [AtomicU64; REASONS.len()],
    latency: [Histogram; ENDPOINTS.len()],
    /// Items accepted upstream.
    pub forwarded_items: AtomicU64,
    /// Upstream requests accepted.
    pub forwarded_requests: AtomicU64,
    /// Upstream attempts that will be retried.
    pub forward_retries: AtomicU64,
    dropped: [AtomicU64; DROP_REASONS.len()],
    /// Records re-sent after a restart that may already have been delivered.
    pub redelivered_records: AtomicU64,
    /// Coding-agent turns assembled (and follow-ups).
    pub agent_turns: AtomicU64,
    rejected_spans: [AtomicU64; ENDPOINTS.len()],
    dead_lettered: [AtomicU64; DEAD_LETTER_REASONS.len()],
    /// Spool size.
    pub spool_bytes: AtomicU64,
    /// Records not yet accepted upstream.
    pub spool_records: AtomicU64,
    /// Receive time (Unix ms) of the oldest record not yet accepted, 0 when none.
    pub oldest_pending_ms: AtomicI64,
    /// 1 after a delivered request, 0 after a failed attempt, -1 before any.
    pub upstream_reachable: AtomicI64,
    /// Traces the assembly stage emitted early (bound reached).
    pub assembled_early: AtomicU64,
    /// Spans dropped as sent twice within the assembly window (a running total).
    pub duplicate_spans: AtomicU64,
    /// Traces held by the assembly stage.
    pub assembly_held_traces: AtomicU64,
}

fn index(endpoint: Endpoint) -> usize {
    ENDPOINTS.iter().position(|e| *e == endpoint).unwrap_or(0)
}

impl Metrics {
    /// Items written to the dead-letter file since the start, all reasons.
    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// A fresh set.
    pub fn new() -> Metrics {
        let m = Metrics::default();
        m.upstream_reachable.store(-1, Ordering::Relaxed);
        m
    }

    /// A request arrived.
    pub fn received(&self, endpoint: Endpoint) {
        self.received_requests[index(endpoint)].fetch_add(1, Ordering::Relaxed);
    }

    /// A request was acknowledged with `items` items, `elapsed` after it arrived.
    pub fn accepted(&self, endpoint: Endpoint, items: u64, elapsed: Duration) {
        let i = index(endpoint);
        self.accepted_requests[i].fetch_add(1, Ordering::Relaxed);
        self.received_items[i].fetch_add(items, Ordering::Relaxed);
        self.observe(endpoint, elapsed);
    }

    /// A request was rejected.
    pub fn rejected(&self, endpoint: Endpoint, reason: &str, elapsed: Duration) {
        if let Some(i) = REASONS.iter().position(|r| *r == reason) {
            self.rejected[i].fetch_add(1, Ordering::Relaxed);
        }
        self.observe(endpoint, elapsed);
    }

    /// Items were dropped for good.
    pub fn dropped(&self, reason: &str, items: u64) {
        if let Some(i) = DROP_REASONS.iter().position(|r| *r == reason) {
            self.dropped[i].fetch_add(items, Ordering::Relaxed);
        }
    }

    /// Spans left out of an acknowledged export (OTLP partial success).
    pub fn rejected_spans(&self, endpoint: Endpoint, spans: u64) {
        self.rejected_spans[index(endpoint)].fetch_add(spans, Ordering::Relaxed);
    }

    /// Items written to the dead-letter file, by reason label.
    pub fn dead_lettered(&self, reason: &str, items: u64) {
        if let Some(i) = DEAD_LETTER_REASONS.iter().position(|r| *r == reason) {
            self.dead_lettered[i].fetch_add(items, Ordering::Relaxed);
        }
    }

    /// Items written to the dead-letter file for `reason` so far.
    pub fn dead_lettered_count(&self, reason: &str) -> u64 {
        DEAD_LETTER_REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.dead_lettered[i].load(Ordering::Relaxed))
    }

    /// Rejected requests for `reason` so far.
    pub fn rejected_count(&self, reason: &str) -> u64 {
        REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.rejected[i].load(Ordering::Relaxed))
    }

    fn observe(&self, endpoint: Endpoint, elapsed: Duration) {
        let h = &self.latency[index(endpoint)];
        let secs = elapsed.as_secs_f64();
        if let Some(b) = BUCKETS.iter().position(|b| secs <= *b) {
            h.counts[b].fetch_add(1, Ordering::Relaxed);
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The Prometheus text exposition.
    pub fn render(&self, now_ms: i64) -> String {
        let mut out = String::with_capacity(8192);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let family = |name: &str, kind: &str, help: &str, out: &mut String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        for (name, help, values) in [
            (
                "langfuse_bridge_received_requests_total",
                "Requests received.",
                &self.received_requests,
            ),
            (
                "langfuse_bridge_received_items_total",
                "Spans, events or scores in acknowledged requests.",
                &self.received_items,
            ),
            (
                "langfuse_bridge_accepted_requests_total",
                "Requests acknowledged after the durable append.",
                &self.accepted_requests,
            ),
        ] {
            family(name, "counter", help, &mut out);
            for e in ENDPOINTS {
                let _ = writeln!(
                    out,
                    "{name}{{endpoint=\"{}\"}} {}",
                    e.label(),
                    load(&values[index(e)])
                );
            }
        }
        family(
            "langfuse_bridge_rejected_requests_total",
            "counter",
            "Requests rejected, by reason.",
            &mut out,
        );
        for (i, r) in REASONS.iter().enumerate() {
            let _ = writeln!(
                out,
                "langfuse_bridge_rejected_requests_total{{reason=\"{r}\"}} {}",
                load(&self.rejected[i])
            );
        }
        for (name, help, value) in [
            (
                "langfuse_bridge_forwarded_items_total",
                "Items accepted upstream.",
                &self.forwarded_items,
            ),
            (
                "langfuse_bridge_forwarded_requests_total",
                "Upstream requests accepted.",
                &self.forwarded_requests,
            ),
            (
                "langfuse_bridge_forward_retries_total",
                "Upstream sends that will be retried.",
                &self.forward_retries,
            ),
            (
                "langfuse_bridge_redelivered_records_total",
                "Records in flight at the last crash, sent again (possible duplicates).",
                &self.redelivered_records,
            ),
            (
                "langfuse_bridge_assembled_early_total",
                "Traces the assembly stage emitted before their window ended.",
                &self.assembled_early,
            ),
            (
                "langfuse_bridge_duplicate_spans_total",
                "Spans sent twice within the assembly window, sent once.",
                &self.duplicate_spans,
            ),
            (
                "langfuse_bridge_agent_turns_total",
                "Coding-agent turns assembled and handed to the destination (follow-ups of late items included).",
                &self.agent_turns,
            ),
        ] {
            family(name, "counter", help, &mut out);
            let _ = writeln!(out, "{name} {}", load(value));
        }
        family(
            "langfuse_bridge_dropped_items_total",
            "counter",
            "Items dropped for good, by reason.",
            &mut out,
        );
        for (i, r) in DROP_REASONS.iter().enumerate() {
            let _ = writeln!(
                out,
                "langfuse_bridge_dropped_items_total{{reason=\"{r}\"}} {}",
                load(&self.dropped[i])
            );
        }
        let name = "langfuse_bridge_rejected_spans_total";
        family(
            name,
            "counter",
            "Spans left out of acknowledged exports (OTLP partial success).",
            &mut out,
        );
        for e in ENDPOINTS {
            let _ = writeln!(
                out,
                "{name}{{endpoint=\"{}\"}} {}",
                e.label(),
                load(&self.rejected_spans[index(e)])
            );
        }
        let name = "langfuse_bridge_dead_lettered_items_total";
        family(
            name,
            "counter",
            "Items written to the dead-letter file, by reason.",
            &mut out,
        );
        for (i, r) in DEAD_LETTER_REASONS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}{{reason=\"{r}\"}} {}",
                load(&self.dead_lettered[i])
            );
        }
        for (name, help, value) in [
            (
                "langfuse_bridge_spool_bytes",
                "Bytes in spool segments.",
                &self.spool_bytes,
            ),
            (
                "langfuse_bridge_spool_records",
                "Records not yet accepted upstream.",
                &self.spool_records,
            ),
            (
                "langfuse_bridge_assembly_traces",
                "Traces held by the assembly stage.",
                &self.assembly_held_traces,
            ),
        ] {
            family(name, "gauge", help, &mut out);
            let _ = writeln!(out, "{name} {}", load(value));
        }
        let oldest = self.oldest_pending_ms.load(Ordering::Relaxed);
        let lag = if oldest > 0 {
            (now_ms - oldest).max(0) as f64 / 1000.0
        } else {
            0.0
        };
        family(
            "langfuse_bridge_forward_lag_seconds",
            "gauge",
            "Age of the oldest record not yet accepted upstream.",
            &mut out,
        );
        let _ = writeln!(out, "langfuse_bridge_forward_lag_seconds {lag}");
        let name = "langfuse_bridge_request_duration_seconds";
        family(
            name,
            "histogram",
            "Time from request arrival to answer.",
            &mut out,
        );
        for e in ENDPOINTS {
            let h = &self.latency[index(e)];
            let mut cumulative = 0;
            for (b, upper) in BUCKETS.iter().enumerate() {
                cumulative += load(&h.counts[b]);
                let _ = writeln!(
                    out,
                    "{name}_bucket{{endpoint=\"{}\",le=\"{upper}\"}} {cumulative}",
                    e.label()
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{endpoint=\"{}\",le=\"+Inf\"}} {}",
                e.label(),
                load(&h.count)
            );
            let _ = writeln!(
                out,
                "{name}_sum{{endpoint=\"{}\"}} {}",
                e.label(),
                load(&h.sum_micros) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "{name}_count{{endpoint=\"{}\"}} {}",
                e.label(),
                load(&h.count)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_series_is_rendered() {
        let m = Metrics::new();
        m.received(Endpoint::Grpc);
        m.accepted(Endpoint::Grpc, 3, Duration::from_millis(2));
        m.rejected(Endpoint::OtlpHttp, "malformed", Duration::from_millis(1));
        let text = m.render(0);
        for series in [
            "langfuse_bridge_received_requests_total{endpoint=\"otlp_grpc\"} 1",
            "langfuse_bridge_received_items_total{endpoint=\"otlp_grpc\"} 3",
            "langfuse_bridge_rejected_requests_total{reason=\"malformed\"} 1",
            "langfuse_bridge_forwarded_items_total 0",
            "langfuse_bridge_spool_bytes 0",
            "langfuse_bridge_forward_lag_seconds 0",
            "langfuse_bridge_request_duration_seconds_bucket{endpoint=\"otlp_grpc\",le=\"0.0025\"} 1",
            "langfuse_bridge_dropped_items_total{reason=\"upstream_rejected\"} 0",
            "langfuse_bridge_rejected_spans_total{endpoint=\"otlp_http\"} 0",
            "langfuse_bridge_dead_lettered_items_total{reason=\"store_rejected\"} 0",
        ] {
            assert!(text.contains(series), "missing {series} in\n{text}");
        }
    }
}
