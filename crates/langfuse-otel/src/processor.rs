//! [`LangfuseSpanProcessor`]: copies propagated trace attributes onto every span at start, marks
//! the application root, keeps attribute keys unique, filters what is exported, and hands the
//! rest to the export pipeline.

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use langfuse_otel_core::keys;
use opentelemetry::trace::{Span as _, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use crate::propagation::{Propagated, baggage_key_values};

/// Instrumentation scope name of the SDK's spans (the same as the official SDKs).
pub const SCOPE_NAME: &str = keys::SCOPE_LANGFUSE_SDK;

/// A user-supplied export filter.
pub type ShouldExportSpan = Arc<dyn Fn(&SpanData) -> bool + Send + Sync>;

/// Marks a span started by this SDK, so `on_start` knows it is exported without inspecting
/// its scope. Set in a thread-local around the tracer call: `on_start` runs synchronously on
/// the starting thread, and a thread-local costs no context allocation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SdkSpanStart {
    /// The span links its own prompt: a propagated prompt must not override it.
    pub(crate) explicit_prompt: bool,
}

thread_local! {
    static SDK_START: Cell<Option<SdkSpanStart>> = const { Cell::new(None) };
}

/// Runs `start` (which starts exactly one span) with the SDK marker set.
pub(crate) fn with_sdk_start<R>(marker: SdkSpanStart, start: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            SDK_START.set(None);
        }
    }
    SDK_START.set(Some(marker));
    let _reset = Reset;
    start()
}

fn sdk_start() -> Option<SdkSpanStart> {
    SDK_START.get()
}

/// Set by the SDK's closures in their children's context: spans of this trace below it are not
/// application roots even if their parent has already ended (the official SDKs use the baggage
/// entry `langfuse_trace_id` for this; a context value does not leave the process).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppRootClaim(pub(crate) TraceId);

/// The default export rule of the official SDKs: the SDK's own spans, spans with any
/// `gen_ai.*` attribute, and spans of known LLM instrumentation scopes.
///
/// ```
/// use opentelemetry_sdk::trace::SpanData;
/// # fn check(span: &SpanData) -> bool {
/// langfuse_otel::is_default_export_span(span)
/// # }
/// ```
pub fn is_default_export_span(span: &SpanData) -> bool {
    keys::is_known_llm_scope(span.instrumentation_scope.name())
        || span
            .attributes
            .iter()
            .any(|kv| kv.key.as_str().starts_with("gen_ai."))
}

/// The span processor behind the client. Add it to your own `SdkTracerProvider` to send to
/// Langfuse next to your other exporters (see [`LangfuseBuilder::span_processor`]).
///
/// - `on_start`: copies attributes propagated with
///   [`propagate_attributes`](crate::propagate_attributes) (and incoming `langfuse_*` baggage)
///   onto the span, and marks the first exported span of a local subtree with
///   `langfuse.internal.is_app_root`.
/// - `on_end`: drops spans the export filter rejects (and SDK spans of another public key),
///   makes attribute keys unique (last write wins, at the first position), and forwards the
///   span to the wrapped processor.
///
/// [`LangfuseBuilder::span_processor`]: crate::LangfuseBuilder::span_processor
pub struct LangfuseSpanProcessor {
    next: Box<dyn SpanProcessor>,
    public_key: Option<String>,
    should_export: Option<ShouldExportSpan>,
    exported_open: Mutex<HashSet<u64>>,
    open_count: AtomicUsize,
}

impl fmt::Debug for LangfuseSpanProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LangfuseSpanProcessor")
            .field("next", &self.next)
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl LangfuseSpanProcessor {
    /// Wraps `next` (a batch processor with an exporter, or anything else). `public_key`
    /// rejects SDK spans recorded for another Langfuse project.
    ///
    /// ```
    /// use langfuse_otel::LangfuseSpanProcessor;
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
    /// let exporter = InMemorySpanExporter::default();
    /// let processor = LangfuseSpanProcessor::new(SimpleSpanProcessor::new(exporter), None);
    /// let provider = SdkTracerProvider::builder().with_span_processor(processor).build();
    /// # drop(provider);
    /// ```
    pub fn new(next: impl SpanProcessor + 'static, public_key: Option<String>) -> Self {
        Self {
            next: Box::new(next),
            public_key,
            should_export: None,
            exported_open: Mutex::new(HashSet::new()),
            open_count: AtomicUsize::new(0),
        }
    }

    /// Replaces the default export filter ([`is_default_export_span`]).
    pub fn with_should_export_span(mut self, filter: ShouldExportSpan) -> Self {
        self.should_export = Some(filter);
        self
    }

    fn should_export(&self, span: &SpanData) -> bool {
        if span.instrumentation_scope.name() == SCOPE_NAME {
            if let Some(ours) = &self.public_key {
                let other_project = span.instrumentation_scope.attributes().any(|kv| {
                    kv.key.as_str() == keys::SCOPE_ATTRIBUTE_PUBLIC_KEY
                        && matches!(&kv.value, opentelemetry::Value::String(theirs) if theirs.as_str() != ours)
                });
                if other_project {
                    return false;
                }
            }
        }
        match &self.should_export {
            Some(filter) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| filter(span)))
                .unwrap_or(false),
            None => is_default_export_span(span),
        }
    }

    fn is_open(&self, id: opentelemetry::trace::SpanId) -> bool {
        self.open_count.load(Ordering::Relaxed) > 0
            && self
                .exported_open
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&span_key(id))
    }

    fn expected_at_start(&self, span: &Span, sdk: Option<SdkSpanStart>) -> bool {
        if sdk.is_some() {
            return true;
        }
        span.exported_data()
            .is_some_and(|data| self.should_export(&data))
    }
}

fn span_key(id: opentelemetry::trace::SpanId) -> u64 {
    u64::from_be_bytes(id.to_bytes())
}

impl SpanProcessor for LangfuseSpanProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        let baggage = baggage_key_values(cx);
        if !baggage.is_empty() {
            span.set_attributes(baggage);
        }
        let sdk = sdk_start();
        if let Some(p) = cx.get::<Propagated>() {
            let explicit_prompt = sdk.is_some_and(|m| m.explicit_prompt);
            for kv in p.key_values.iter() {
                let prompt_key = kv.key.as_str() == keys::LANGFUSE_OBSERVATION_PROMPT_NAME
                    || kv.key.as_str() == keys::LANGFUSE_OBSERVATION_PROMPT_VERSION;
                if !(explicit_prompt && prompt_key) {
                    span.set_attribute(kv.clone());
                }
            }
        }

        // App root: the first exported span of a local subtree. Below an SDK observation the
        // context carries a claim for the trace, so nothing else needs checking; otherwise an
        // exported parent must still be open in this process.
        let trace_id = span.span_context().trace_id();
        let claimed = cx.get::<AppRootClaim>().is_some_and(|c| c.0 == trace_id);
        if !claimed && self.expected_at_start(span, sdk) {
            let parent = cx.span().span_context().clone();
            let parent_exported = parent.is_valid() && self.is_open(parent.span_id());
            if sdk.is_none() {
                // Foreign spans have no claim for their children: remember them while open.
                let mut open = self.exported_open.lock().unwrap_or_else(|e| e.into_inner());
                if open.insert(span_key(span.span_context().span_id())) {
                    self.open_count.fetch_add(1, Ordering::Relaxed);
                }
            }
            if !parent_exported {
                span.set_attribute(KeyValue::new(keys::LANGFUSE_INTERNAL_IS_APP_ROOT, true));
            }
        }
        self.next.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        if self.open_count.load(Ordering::Relaxed) > 0 {
            let mut open = self.exported_open.lock().unwrap_or_else(|e| e.into_inner());
            if open.remove(&span_key(span.span_context.span_id())) {
                self.open_count.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if !self.should_export(&span) {
            return;
        }
        dedupe_attributes(&mut span.attributes);
        self.next.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.next.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.next.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.next.set_resource(resource);
    }
}

/// Keeps one attribute per key: the last value, at the position of the first occurrence (how a
/// Python dict behaves when a key is written twice).
pub(crate) fn dedupe_attributes(attrs: &mut Vec<KeyValue>) {
    let n = attrs.len();
    if !has_duplicate_keys(attrs) {
        return;
    }
    let mut out: Vec<KeyValue> = Vec::with_capacity(n);
    for kv in attrs.drain(..) {
        match out.iter_mut().find(|o| o.key == kv.key) {
            Some(slot) => slot.value = kv.value,
            None => out.push(kv),
        }
    }
    *attrs = out;
}

/// Whether two attributes share a key. Keys of different lengths differ, so when all lengths
/// are distinct (the usual case) no pair is compared.
fn has_duplicate_keys(attrs: &[KeyValue]) -> bool {
    let mut lengths = 0u128;
    let mut lengths_distinct = true;
    for kv in attrs {
        // Lengths are folded modulo 128: a shared bit only means "compare the pairs".
        let bit = 1u128 << (kv.key.as_str().len() % 128);
        if lengths & bit != 0 {
            lengths_distinct = false;
            break;
        }
        lengths |= bit;
    }
    if lengths_distinct {
        return false;
    }
    attrs
        .iter()
        .enumerate()
        .any(|(i, a)| attrs[i + 1..].iter().any(|b| a.key == b.key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_keep_the_last_value_at_the_first_position() {
        let mut attrs = vec![
            KeyValue::new("a", 1),
            KeyValue::new("b", 2),
            KeyValue::new("a", 3),
        ];
        dedupe_attributes(&mut attrs);
        assert_eq!(attrs, vec![KeyValue::new("a", 3), KeyValue::new("b", 2)]);
    }

    #[test]
    fn keys_of_equal_length_are_compared_and_distinct_ones_kept() {
        let mut attrs = vec![
            KeyValue::new("ab", 1),
            KeyValue::new("cd", 2),
            KeyValue::new("x".repeat(130), 3),
            KeyValue::new("yy", 4),
        ];
        let before = attrs.clone();
        dedupe_attributes(&mut attrs);
        assert_eq!(attrs, before);
        let mut attrs = vec![
            KeyValue::new("x".repeat(130), 1),
            KeyValue::new("zz", 2),
            KeyValue::new("x".repeat(130), 3),
        ];
        dedupe_attributes(&mut attrs);
        assert_eq!(
            attrs,
            vec![KeyValue::new("x".repeat(130), 3), KeyValue::new("zz", 2)]
        );
    }
}
