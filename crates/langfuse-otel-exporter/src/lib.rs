//! # langfuse-otel-exporter
//!
//! An `opentelemetry_sdk` span exporter for Langfuse and any OTLP collector, a batching
//! processor that never loses spans silently, and an offline default that needs no account.
//!
//! | destination | chosen when | what is sent |
//! |---|---|---|
//! | Langfuse OTLP | keys given (builder or `LANGFUSE_PUBLIC_KEY`/`SECRET_KEY`) | OTLP protobuf + gzip to `{base}/api/public/otel/v1/traces`, Basic auth, `x-langfuse-*` headers |
//! | Langfuse native ingestion | keys and [`LangfuseExporterBuilder::ingestion`] | translated events to `{base}/api/public/ingestion` |
//! | any OTLP collector | an endpoint of its own (builder `.otlp_endpoint(..)` or `LANGFUSE_OTLP_ENDPOINT`; never the user's `OTEL_EXPORTER_OTLP_*`) | OTLP/HTTP protobuf or JSON, or OTLP/gRPC (`grpc` feature): the spans as they are, or in [`OtlpMode::Canonical`] translated and re-encoded with the `langfuse.*` convention |
//! | offline file | nothing configured (said once, warning `offline-destination`) | ingestion events as JSON lines (`langfuse-traces.jsonl`); [`offline::render_trace_file`] prints the trees |
//!
//! `export()` never needs an async runtime: it works under [`BatchProcessor`] (recommended:
//! a byte-bounded queue sized for bursts, exact drop counts), and equally under the SDK's
//! `BatchSpanProcessor` and `SimpleSpanProcessor`.
//!
//! ```
//! use langfuse_otel_exporter::{LangfuseExporter, offline};
//! use opentelemetry::trace::{Tracer, TracerProvider};
//!
//! let path = std::env::temp_dir().join(format!("lf-lib-doc-{}.jsonl", std::process::id()));
//! # std::fs::remove_file(&path).ok();
//! let exporter = LangfuseExporter::builder().without_env().file(&path).build().unwrap();
//! let stats = exporter.stats();
//! let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
//!     .with_span_processor(exporter.into_batch_processor())
//!     .build();
//! let tracer = provider.tracer("langfuse-sdk");
//! tracer.in_span("pipeline", |_| tracer.in_span("retrieve", |_| {}));
//! provider.shutdown().unwrap();
//!
//! assert_eq!(stats.snapshot().exported_spans, 2);
//! let tree = offline::render_trace_file(&path).unwrap();
//! assert!(tree.contains("└─ pipeline [span]"));
//! assert!(tree.contains("   └─ retrieve [span]"));
//! # std::fs::remove_file(path).ok();
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod builder;
pub mod canonical_exporter;
pub mod config;
mod exporter;
pub mod filter;
mod ingestion;
pub mod offline;
mod otlp;
pub mod processor;
pub mod stats;
mod wire;

pub use builder::LangfuseExporterBuilder;
pub use canonical_exporter::CanonicalExporter;
pub use config::{Compression, ConfigError, OtlpMode, OtlpProtocol};
pub use exporter::LangfuseExporter;
pub use filter::ExportFilter;
pub use ingestion::{MAX_BATCH_BYTES as MAX_INGESTION_BATCH_BYTES, new_event_id};
pub use langfuse_otel_transport::Diagnostics;
pub use langfuse_otel_transport::RetryPolicy;
pub use processor::{BatchProcessor, BatchProcessorBuilder};
pub use stats::{Stats, StatsSnapshot};
