//! [`CanonicalExporter`]: canonical `langfuse.*` spans for any `SpanExporter`.
//!
//! [`LangfuseExporter`](crate::LangfuseExporter) in canonical mode builds the OTLP request
//! itself, for its own transports. This wrapper instead turns each batch into canonical spans
//! as `SpanData` ([`langfuse_otel_core::canonical::canonical_span_data`]) and hands them to the
//! exporter you already configured — `opentelemetry-otlp`'s HTTP or tonic gRPC exporter with
//! your TLS, headers and timeouts, or any other — so every span reaches your backend with one
//! convention, whatever instrumentation produced it. Translating what arrives yields the
//! records of the original spans (the canonical round trip).
//!
//! ```
//! use langfuse_otel_exporter::CanonicalExporter;
//! use opentelemetry::trace::{Tracer as _, TracerProvider as _};
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
//!
//! let memory = InMemorySpanExporter::default();
//! let provider = SdkTracerProvider::builder()
//!     .with_span_processor(SimpleSpanProcessor::new(CanonicalExporter::new(memory.clone())))
//!     .build();
//! provider.tracer("my-llm-client").in_span("chat gpt-4o", |cx| {
//!     use opentelemetry::trace::TraceContextExt as _;
//!     cx.span().set_attribute(opentelemetry::KeyValue::new("gen_ai.operation.name", "chat"));
//! });
//! provider.force_flush().unwrap();
//! let spans = memory.get_finished_spans().unwrap();
//! assert!(spans[0].attributes.iter().any(|kv| kv.key.as_str() == "langfuse.observation.type"
//!     && kv.value.as_str() == "generation"));
//! ```

use std::fmt;
use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::filter::{ExportFilter, WholeTrees};

/// A [`SpanExporter`] that exports canonical `langfuse.*` spans through `inner` (see the
/// [module docs](self)). Every span is passed on (filter: [`ExportFilter::All`]) unless
/// [`with_filter`](Self::with_filter) says otherwise; filtered ancestors of exported spans are
/// kept ([`WholeTrees`]).
pub struct CanonicalExporter<E> {
    inner: E,
    resource: Resource,
    filter: ExportFilter,
    trees: WholeTrees,
}

impl<E: fmt::Debug> fmt::Debug for CanonicalExporter<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CanonicalExporter")
            .field("inner", &self.inner)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl<E: SpanExporter> CanonicalExporter<E> {
    /// Wraps `inner`; every span is exported.
    pub fn new(inner: E) -> Self {
        CanonicalExporter {
            inner,
            resource: Resource::builder_empty().build(),
            filter: ExportFilter::All,
            trees: WholeTrees::default(),
        }
    }

    /// Exports only the spans `filter` accepts (and their ancestors).
    pub fn with_filter(mut self, filter: ExportFilter) -> Self {
        self.filter = filter;
        self
    }

    /// The wrapped exporter.
    pub fn inner(&self) -> &E {
        &self.inner
    }
}

impl<E: SpanExporter> SpanExporter for CanonicalExporter<E> {
    async fn export(&self, mut batch: Vec<SpanData>) -> OTelSdkResult {
        if !matches!(self.filter, ExportFilter::All) {
            self.trees.retain(&mut batch, &self.filter);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let canonical = langfuse_otel_core::canonical::canonical_span_data(&batch, &self.resource);
        drop(batch);
        self.inner.export(canonical).await
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.clone();
        self.inner.set_resource(resource);
    }
}
