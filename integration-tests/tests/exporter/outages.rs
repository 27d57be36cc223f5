//! No loss across upstream outages within the queue's budget: batches that cannot be delivered
//! within their export timeout go back to the queue and are retried until delivered; spans are
//! lost only when the budget is full, counted exactly and warned about once. Real receivers on
//! 127.0.0.1; "down" means nothing listens on the port (connection refused).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::receiver::{Action, Receiver, ReservedPort};
use langfuse_otel_exporter::config::BatchSettings;
use langfuse_otel_exporter::{BatchProcessor, Diagnostics, ExportFilter, LangfuseExporter};
use opentelemetry::trace::{Tracer, TracerProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;

fn messages() -> (Diagnostics, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    (
        Diagnostics::new(move |m| sink.lock().unwrap().push(m.to_string())),
        seen,
    )
}

fn exporter(base_url: &str, timeout: Duration, diagnostics: Diagnostics) -> LangfuseExporter {
    LangfuseExporter::builder()
        .without_env()
        .langfuse("pk-lf-test", "sk-lf-test")
        .base_url(base_url)
        .timeout(timeout)
        .filter(ExportFilter::All)
        .diagnostics(diagnostics)
        .build()
        .unwrap()
}

/// Produces `n` spans named `s{i}` through `provider`, `per_burst` at a time, `pause` apart.
fn produce(provider: &SdkTracerProvider, n: usize, per_burst: usize, pause: Duration) {
    let tracer = provider.tracer("outage-test");
    for i in 0..n {
        tracer.in_span(format!("s{i}"), |_| {});
        if (i + 1) % per_burst == 0 {
            std::thread::sleep(pause);
        }
    }
}

fn delivered_count(rx: &Receiver, skip_first: usize) -> (usize, usize) {
    let mut ids = HashSet::new();
    let mut total = 0;
    for r in rx
        .requests()
        .iter()
        .skip(skip_first)
        .filter(|r| r.acknowledged())
    {
        let spans = r.span_ids();
        total += spans.len();
        ids.extend(spans);
    }
    (ids.len(), total)
}

#[test]
fn an_upstream_down_for_60_seconds_loses_none_of_100000_spans() {
    let upstream = ReservedPort::new();
    let base_url = upstream.base_url();
    let (diagnostics, warnings) = messages();
    let exporter = exporter(&base_url, Duration::from_secs(5), diagnostics);
    let stats = exporter.stats();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(exporter.into_batch_processor())
        .build();
    let started = Instant::now();
    // 100,000 spans over about 50 s while nothing listens.
    produce(&provider, 100_000, 2_000, Duration::from_secs(1));
    let down_for = Duration::from_secs(60);
    std::thread::sleep(down_for.saturating_sub(started.elapsed()));
    assert_eq!(stats.snapshot().exported_spans, 0, "the upstream was down");
    let rx = Receiver::start_with(upstream.listen(), |_, _| Action::ok());
    provider
        .shutdown_with_timeout(Duration::from_secs(60))
        .unwrap();
    let s = stats.snapshot();
    assert_eq!(delivered_count(&rx, 0).0, 100_000);
    assert_eq!((s.exported_spans, s.lost_spans()), (100_000, 0), "{s:?}");
    assert!(warnings.lock().unwrap().is_empty(), "{warnings:?}");
}

#[test]
fn the_first_three_replies_slower_than_the_export_timeout_lose_nothing() {
    let rx = Receiver::start(|_, i| {
        if i < 3 {
            Action::Delay(Duration::from_millis(1500), Box::new(Action::ok()))
        } else {
            Action::ok()
        }
    });
    let (diagnostics, _) = messages();
    let exporter = exporter(&rx.base_url(), Duration::from_secs(1), diagnostics);
    let stats = exporter.stats();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(exporter.into_batch_processor())
        .build();
    produce(&provider, 10_000, 10_000, Duration::ZERO);
    provider
        .shutdown_with_timeout(Duration::from_secs(30))
        .unwrap();
    // The slow replies reached nobody (the client had given up): count only the others.
    assert_eq!(delivered_count(&rx, 3).0, 10_000);
    let s = stats.snapshot();
    assert_eq!((s.exported_spans, s.lost_spans()), (10_000, 0), "{s:?}");
}

#[test]
fn an_outage_past_the_budget_drops_exactly_the_shortfall_with_one_warning() {
    let upstream = ReservedPort::new();
    let (diagnostics, warnings) = messages();
    let exporter = exporter(
        &upstream.base_url(),
        Duration::from_millis(300),
        diagnostics.clone(),
    );
    let stats = exporter.stats();
    let processor = BatchProcessor::builder(exporter)
        .settings(BatchSettings {
            max_export_batch: 100,
            max_queue_spans: 1_000,
            schedule_delay: Duration::from_millis(20),
            ..BatchSettings::default()
        })
        .stats(stats.clone())
        .diagnostics(diagnostics)
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    produce(&provider, 3_000, 100, Duration::from_millis(5));
    // Down until the queue overflowed and an export has failed.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(stats.snapshot().queue_dropped_spans >= 2_000 && stats.snapshot().failed_exports >= 1)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let rx = Receiver::start_with(upstream.listen(), |_, _| Action::ok());
    provider
        .shutdown_with_timeout(Duration::from_secs(30))
        .unwrap();
    let s = stats.snapshot();
    let (distinct, total) = delivered_count(&rx, 0);
    assert_eq!((distinct, total), (1_000, 1_000));
    assert_eq!(s.exported_spans, 1_000);
    assert_eq!(s.queue_dropped_spans, 2_000, "{s:?}");
    assert_eq!(s.dropped_spans, 0, "{s:?}");
    let warnings = warnings.lock().unwrap();
    let full: Vec<_> = warnings
        .iter()
        .filter(|w| w.contains("queue full"))
        .collect();
    assert_eq!(full.len(), 1, "{warnings:?}");
}

#[test]
fn spans_still_undelivered_at_the_shutdown_deadline_are_counted_and_warned_once() {
    let upstream = ReservedPort::new();
    let (diagnostics, warnings) = messages();
    let exporter = exporter(
        &upstream.base_url(),
        Duration::from_millis(200),
        diagnostics,
    );
    let stats = exporter.stats();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(exporter.into_batch_processor())
        .build();
    produce(&provider, 700, 700, Duration::ZERO);
    let started = Instant::now();
    let _ = provider.shutdown_with_timeout(Duration::from_secs(2));
    assert!(started.elapsed() < Duration::from_secs(3));
    let s = stats.snapshot();
    assert_eq!((s.exported_spans, s.dropped_spans), (0, 700), "{s:?}");
    let warnings = warnings.lock().unwrap();
    assert_eq!(
        warnings
            .iter()
            .filter(|w| w.contains("shutdown deadline"))
            .count(),
        1,
        "{warnings:?}"
    );
}
