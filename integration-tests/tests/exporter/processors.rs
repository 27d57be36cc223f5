//! The exporter under each span processor (ours, the SDK's thread-based batch processor and
//! the simple processor): no panic, no reactor needed, everything delivered; plus the
//! queue-overflow, flush and shutdown deadline behaviour of ours.

use std::time::{Duration, Instant};

use integration_tests::receiver::{Action, Receiver};
use langfuse_otel_exporter::config::BatchSettings;
use langfuse_otel_exporter::processor::estimated_size;
use langfuse_otel_exporter::{BatchProcessor, Diagnostics, LangfuseExporter, RetryPolicy};
use opentelemetry::trace::{Span, TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SimpleSpanProcessor, SpanProcessor,
};

fn exporter(rx: &Receiver) -> LangfuseExporter {
    LangfuseExporter::builder()
        .without_env()
        .langfuse("pk", "sk")
        .base_url(rx.base_url())
        .timeout(Duration::from_secs(3))
        .retry(RetryPolicy {
            initial_backoff: Duration::from_millis(20),
            ..RetryPolicy::default()
        })
        .diagnostics(Diagnostics::new(|_| {}))
        .build()
        .unwrap()
}

/// Creates `n` traces of a root with two children; returns the hex span ids created, sorted.
fn make_traces(provider: &SdkTracerProvider, n: usize) -> Vec<String> {
    let tracer = provider.tracer("langfuse-sdk");
    let mut ids = Vec::new();
    for i in 0..n {
        tracer.in_span(format!("root-{i}"), |cx| {
            ids.push(cx.span().span_context().span_id().to_string());
            for c in ["child-a", "child-b"] {
                let mut s = tracer.start(c);
                ids.push(s.span_context().span_id().to_string());
                s.end();
            }
        });
    }
    ids.sort();
    ids
}

fn settings() -> BatchSettings {
    BatchSettings {
        max_export_batch: 16,
        schedule_delay: Duration::from_millis(50),
        ..BatchSettings::default()
    }
}

#[test]
fn under_our_batch_processor_everything_is_delivered() {
    let rx = Receiver::start(|_, i| {
        if i == 1 {
            Action::status(503)
        } else {
            Action::ok()
        }
    });
    let e = exporter(&rx);
    let stats = e.stats();
    let p = BatchProcessor::builder(e)
        .settings(settings())
        .stats(stats.clone())
        .build();
    let provider = SdkTracerProvider::builder().with_span_processor(p).build();
    let ids = make_traces(&provider, 40);
    provider.shutdown().unwrap();
    assert_eq!(rx.delivered_span_ids(), ids);
    let s = stats.snapshot();
    assert_eq!((s.exported_spans, s.lost_spans()), (120, 0));
}

#[test]
fn under_the_sdk_batch_span_processor_everything_is_delivered() {
    let rx = Receiver::start(|_, _| Action::ok());
    let e = exporter(&rx);
    let stats = e.stats();
    let p = BatchSpanProcessor::builder(e)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(10_000)
                .with_scheduled_delay(Duration::from_millis(50))
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder().with_span_processor(p).build();
    let ids = make_traces(&provider, 40);
    provider.shutdown().unwrap();
    assert_eq!(rx.delivered_span_ids(), ids);
    assert_eq!(stats.snapshot().exported_spans, 120);
}

#[test]
fn under_the_sdk_async_runtime_batch_processor_everything_is_delivered() {
    use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor as AsyncBsp;
    let rx = Receiver::start(|_, i| {
        if i == 0 {
            Action::status(503)
        } else {
            Action::ok()
        }
    });
    let e = exporter(&rx);
    let stats = e.stats();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ids = rt.block_on(async move {
        let p = AsyncBsp::builder(e, opentelemetry_sdk::runtime::Tokio)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(10_000)
                    .with_scheduled_delay(Duration::from_millis(50))
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder().with_span_processor(p).build();
        let ids = make_traces(&provider, 40);
        // The SDK documents shutdown as blocking: run it off the async workers.
        tokio::task::spawn_blocking(move || provider.shutdown())
            .await
            .unwrap()
            .unwrap();
        ids
    });
    assert_eq!(rx.delivered_span_ids(), ids);
    let s = stats.snapshot();
    assert_eq!(
        (s.exported_spans, s.dropped_spans, s.retried_requests),
        (120, 0, 1)
    );
}

#[test]
fn under_the_simple_span_processor_everything_is_delivered() {
    let rx = Receiver::start(|_, _| Action::ok());
    let e = exporter(&rx);
    let stats = e.stats();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(SimpleSpanProcessor::new(e))
        .build();
    let ids = make_traces(&provider, 10);
    provider.shutdown().unwrap();
    assert_eq!(rx.delivered_span_ids(), ids);
    assert_eq!(stats.snapshot().exported_spans, 30);
    // One request per span.
    assert_eq!(rx.requests().len(), 30);
}

#[test]
fn a_full_queue_drops_and_counts_exactly_the_overflow() {
    let rx = Receiver::start(|_, _| Action::ok());
    let e = exporter(&rx);
    let stats = e.stats();
    let warnings = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = warnings.clone();
    // The worker never runs on its own (long delay, large batch): only 10 spans fit.
    let p = BatchProcessor::builder(e)
        .settings(BatchSettings {
            max_export_batch: 1000,
            schedule_delay: Duration::from_secs(3600),
            max_queue_spans: 10,
            ..BatchSettings::default()
        })
        .stats(stats.clone())
        .diagnostics(Diagnostics::new(move |m| {
            sink.lock().unwrap().push(m.into())
        }))
        .build();
    let provider = SdkTracerProvider::builder().with_span_processor(p).build();
    let tracer = provider.tracer("langfuse-sdk");
    for i in 0..25 {
        tracer.in_span(format!("s{i}"), |_| {});
    }
    provider.force_flush().unwrap();
    let delivered = rx.delivered_span_ids().len() as u64;
    let s = stats.snapshot();
    assert_eq!(delivered, 10);
    assert_eq!(s.queue_dropped_spans, 25 - delivered);
    assert_eq!(s.exported_spans, delivered);
    assert_eq!(warnings.lock().unwrap().len(), 1, "one warning only");
    provider.shutdown().unwrap();
}

#[test]
fn the_queue_is_bounded_by_bytes_too() {
    let rx = Receiver::start(|_, _| Action::ok());
    let e = exporter(&rx);
    let stats = e.stats();
    let one = estimated_size(&integration_tests::spans::span(0, 1000));
    let p = BatchProcessor::builder(e)
        .settings(BatchSettings {
            max_export_batch: 1000,
            schedule_delay: Duration::from_secs(3600),
            max_queue_bytes: one * 3 + one / 2,
            ..BatchSettings::default()
        })
        .stats(stats.clone())
        .diagnostics(Diagnostics::new(|_| {}))
        .build();
    for i in 0..8 {
        p.on_end(integration_tests::spans::span(i, 1000));
    }
    p.force_flush().unwrap();
    assert_eq!(rx.delivered_span_ids().len(), 3);
    assert_eq!(stats.snapshot().queue_dropped_spans, 5);
    p.shutdown().unwrap();
}

#[test]
fn force_flush_and_shutdown_return_timeouts_instead_of_hanging() {
    let rx = Receiver::start(|_, _| Action::Delay(Duration::from_secs(2), Box::new(Action::ok())));
    let e = exporter(&rx);
    let p = BatchProcessor::builder(e)
        .settings(BatchSettings {
            flush_timeout: Duration::from_millis(200),
            ..settings()
        })
        .diagnostics(Diagnostics::new(|_| {}))
        .build();
    p.on_end(integration_tests::spans::span(0, 0));
    let t = Instant::now();
    assert!(matches!(p.force_flush(), Err(OTelSdkError::Timeout(_))));
    assert!(t.elapsed() < Duration::from_millis(700));
    let t = Instant::now();
    assert!(matches!(
        p.shutdown_with_timeout(Duration::from_millis(200)),
        Err(OTelSdkError::Timeout(_))
    ));
    assert!(t.elapsed() < Duration::from_millis(700));
}

#[test]
fn spans_ended_after_shutdown_are_counted_as_dropped() {
    let rx = Receiver::start(|_, _| Action::ok());
    let e = exporter(&rx);
    let stats = e.stats();
    let p = BatchProcessor::builder(e)
        .settings(settings())
        .stats(stats.clone())
        .build();
    p.shutdown().unwrap();
    p.on_end(integration_tests::spans::span(0, 0));
    assert_eq!(stats.snapshot().queue_dropped_spans, 1);
    assert!(matches!(p.shutdown(), Err(OTelSdkError::AlreadyShutdown)));
}
