//! The peers benchmark workload (`../shared/peers/README.md`) on langfuse-otel: 5 observations
//! per trace, exported over OTLP protobuf + gzip to `LANGFUSE_BASE_URL`, printing the harness's
//! JSON line.
//!
//! ```sh
//! cargo build --release --example peer_bench
//! target/release/examples/peer_bench --traces 20000 --mode export   # or noop / disabled
//! ```
//!
//! Modes: `export` (our `BatchProcessor` + `LangfuseExporter`), `noop` (the same processor and
//! batching, an exporter that discards each batch), `disabled` (the OpenTelemetry API no-op
//! tracer: the same instrumentation calls, nothing recorded). `OTEL_BSP_MAX_QUEUE_SIZE` sets
//! the span-count bound of the queue (the byte bound stays at its default).

use std::time::Instant;

use langfuse_otel_exporter::{BatchProcessor, LangfuseExporter, Stats};
use langfuse_otel_transport::langfuse::SDK_VERSION;
use opentelemetry::trace::{
    Span, TraceContextExt, Tracer, TracerProvider, noop::NoopTracerProvider,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

const TEXT_IN: &str = "Summarise the customer's issue and propose the next support step. The customer reports that the password reset email never arrives, even after three attempts, and the spam folder is empty. They use a company address behind a strict mail filter and would like to regain access before their meeting thi";
const TEXT_OUT: &str = "The reset emails are most likely blocked by the company mail filter. Ask the customer's IT team to allow-list our sender domain, then trigger a new reset. As an immediate workaround, offer an SMS verification code to the phone number on file so they can sign in before the meeting and change the pass";

/// Discards batches, counting spans (the `noop` mode).
#[derive(Debug, Default)]
struct DiscardExporter {
    spans: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl SpanExporter for DiscardExporter {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        self.spans
            .fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
        std::future::ready(Ok(()))
    }
}

/// One trace of the workload.
fn trace<T: Tracer>(tracer: &T, i: usize)
where
    T::Span: Send + Sync + 'static,
{
    let root = tracer
        .span_builder("bench-trace")
        .with_attributes([
            KeyValue::new("langfuse.internal.is_app_root", true),
            KeyValue::new("langfuse.observation.type", "span"),
            KeyValue::new("langfuse.observation.input", format!("{{\"i\": {i}}}")),
        ])
        .start(tracer);
    let cx = Context::current_with_span(root);
    let _active = cx.clone().attach();

    let mut gen_span = tracer
        .span_builder("llm-call")
        .with_attributes([
            KeyValue::new("langfuse.observation.type", "generation"),
            KeyValue::new("langfuse.observation.input", TEXT_IN),
            KeyValue::new("langfuse.observation.model.name", "gpt-4o-mini"),
            KeyValue::new(
                "langfuse.observation.model.parameters",
                r#"{"temperature": 0.2, "max_tokens": 256}"#,
            ),
        ])
        .start(tracer);
    gen_span.set_attribute(KeyValue::new("langfuse.observation.output", TEXT_OUT));
    gen_span.set_attribute(KeyValue::new(
        "langfuse.observation.usage_details",
        r#"{"input": 120, "output": 40, "total": 160}"#,
    ));
    gen_span.end();

    let mut tool = tracer
        .span_builder("search_docs")
        .with_attributes([
            KeyValue::new("langfuse.observation.type", "tool"),
            KeyValue::new(
                "langfuse.observation.input",
                r#"{"query": "reset password"}"#,
            ),
        ])
        .start(tracer);
    tool.set_attribute(KeyValue::new(
        "langfuse.observation.output",
        r#"{"hits": 3}"#,
    ));
    tool.end();

    for name in ["step-a", "step-b"] {
        let mut step = tracer
            .span_builder(name)
            .with_attributes([
                KeyValue::new("langfuse.observation.type", "span"),
                KeyValue::new("langfuse.observation.metadata.tenant", "\"acme\""),
                KeyValue::new("langfuse.observation.metadata.region", "\"eu-west-1\""),
                KeyValue::new("langfuse.observation.metadata.feature", "\"support-bot\""),
                KeyValue::new("langfuse.observation.metadata.attempt", "1"),
                KeyValue::new("langfuse.observation.metadata.ab_bucket", "\"B\""),
            ])
            .start(tracer);
        step.end();
    }
    cx.span().end();
}

struct Usage {
    user_s: f64,
    sys_s: f64,
    max_rss_kib: i64,
}

fn rusage() -> Usage {
    // SAFETY: getrusage only writes into the zero-initialised struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to an owned rusage; RUSAGE_SELF is a valid target.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return Usage {
            user_s: 0.0,
            sys_s: 0.0,
            max_rss_kib: 0,
        };
    }
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Usage {
        user_s: secs(ru.ru_utime),
        sys_s: secs(ru.ru_stime),
        max_rss_kib: ru.ru_maxrss,
    }
}

fn run_loop<T: Tracer>(tracer: &T, traces: usize) -> f64
where
    T::Span: Send + Sync + 'static,
{
    let t0 = Instant::now();
    for i in 0..traces {
        trace(tracer, i);
    }
    t0.elapsed().as_secs_f64()
}

fn main() {
    let mut traces: usize = std::env::var("PEER_BENCH_TRACES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let mut mode = "export".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--traces" => traces = args.next().and_then(|v| v.parse().ok()).unwrap_or(traces),
            "--mode" => mode = args.next().unwrap_or(mode),
            other => {
                eprintln!("peer_bench: unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    let scope = InstrumentationScope::builder("langfuse-sdk")
        .with_version(SDK_VERSION)
        .build();

    // Set-up (not timed).
    let discarded = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (provider, stats): (Option<SdkTracerProvider>, Option<Stats>) = match mode.as_str() {
        "export" => {
            // PEER_BENCH_GZIP_LEVEL (0-9) compares compression levels; default: the crate's (1).
            let mut builder = LangfuseExporter::builder();
            if let Some(level) = std::env::var("PEER_BENCH_GZIP_LEVEL")
                .ok()
                .and_then(|v| v.parse::<u32>().ok())
            {
                builder = builder.compression(langfuse_otel_exporter::Compression::Gzip(level));
            }
            let exporter = match builder.build() {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("peer_bench: {e}");
                    std::process::exit(2);
                }
            };
            let stats = exporter.stats();
            let provider = SdkTracerProvider::builder()
                .with_span_processor(exporter.into_batch_processor())
                .build();
            (Some(provider), Some(stats))
        }
        "noop" => {
            let stats = Stats::default();
            let exporter = DiscardExporter {
                spans: discarded.clone(),
            };
            let processor = BatchProcessor::builder(exporter)
                .stats(stats.clone())
                .build();
            let provider = SdkTracerProvider::builder()
                .with_span_processor(processor)
                .build();
            (Some(provider), Some(stats))
        }
        "disabled" => (None, None),
        other => {
            eprintln!("peer_bench: unknown mode {other:?} (export, noop, disabled)");
            std::process::exit(2);
        }
    };

    let u0 = rusage();
    let t0 = Instant::now();
    let loop_wall = match &provider {
        Some(p) => run_loop(&p.tracer_with_scope(scope), traces),
        None => run_loop(&NoopTracerProvider::new().tracer_with_scope(scope), traces),
    };
    if let Some(p) = &provider
        && let Err(e) = p.shutdown()
    {
        eprintln!("peer_bench: shutdown: {e}");
    }
    let wall = t0.elapsed().as_secs_f64();
    let u1 = rusage();

    let user = u1.user_s - u0.user_s;
    let sys = u1.sys_s - u0.sys_s;
    let cpu = user + sys;
    let obs = traces * 5;
    let snap = stats.map(|s| s.snapshot());
    let line = serde_json::json!({
        "sdk": "langfuse-otel",
        "sdk_version": SDK_VERSION,
        "mode": mode,
        "traces": traces,
        "observations": obs,
        "wall_s": (wall * 1e4).round() / 1e4,
        "loop_wall_s": (loop_wall * 1e4).round() / 1e4,
        "cpu_user_s": (user * 1e4).round() / 1e4,
        "cpu_sys_s": (sys * 1e4).round() / 1e4,
        "cpu_s": (cpu * 1e4).round() / 1e4,
        "peak_rss_mb": (u1.max_rss_kib as f64 / 1024.0 * 10.0).round() / 10.0,
        "obs_per_wall_s": (obs as f64 / wall).round(),
        "obs_per_cpu_s": if cpu > 0.0 { Some((obs as f64 / cpu).round()) } else { None },
        "exporter_spans": match mode.as_str() {
            "noop" => Some(discarded.load(std::sync::atomic::Ordering::Relaxed)),
            _ => snap.map(|s| s.exported_spans),
        },
        "lost_spans": snap.map(|s| s.lost_spans()),
        "requests": snap.map(|s| s.requests),
        "retried_requests": snap.map(|s| s.retried_requests),
    });
    println!("{line}");
}
