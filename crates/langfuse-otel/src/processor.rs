//! [`LangfuseSpanProcessor`]: copies propagated trace attributes, the environment and the
//! release onto every span at start, adopts agent runs started as new roots into the current
//! observation's trace, marks the application root, keeps attribute keys unique, filters what is
//! exported while keeping every exported tree whole, adds the `langfuse.*` attributes the
//! Langfuse server reads for signals it does not derive itself, and hands the rest to the export
//! pipeline.

use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use langfuse_otel_core::keys;
use langfuse_otel_exporter::filter::{WholeTrees, propagation_reach};
use opentelemetry::trace::{Span as _, SpanContext, SpanId, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue, StringValue, Value};
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
pub(crate) struct SdkSpanStart;

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

/// The default export rule (one definition, the exporter's): the SDK's own spans, spans with
/// any `gen_ai.*` attribute, spans of known LLM instrumentation scopes, and spans explicitly
/// marked as observations.
///
/// ```
/// use opentelemetry_sdk::trace::SpanData;
/// # fn check(span: &SpanData) -> bool {
/// langfuse_otel::is_default_export_span(span)
/// # }
/// ```
pub use langfuse_otel_exporter::filter::is_default_export_span;

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
/// - spans of other instrumentation also get the client's environment and release
///   ([`with_environment_and_release`](Self::with_environment_and_release)).
///
/// # Whole trees
///
/// The export filter drops spans without LLM work, but such a span may sit between an
/// observation and the LLM spans below it (a `#[tracing::instrument]` handler, an HTTP span).
/// The processor keeps a filtered span once a span below it was exported (children end before
/// their parents), so nothing that reaches Langfuse points to a parent that was never sent and a
/// request gets its root; leaves without LLM work (a database query) stay filtered. A child
/// that ends after its parent was dropped (a detached task) is re-parented to the nearest
/// ancestor that was kept. See [`WholeTrees`](langfuse_otel_exporter::filter::WholeTrees) for the bounds.
///
/// # One agent run, one trace
///
/// Some instrumentation starts its top span as a new root on purpose (rig's `invoke_agent`
/// span is created with `parent: None`), so an agent called inside
/// [`Langfuse::start_active_observation`](crate::Langfuse::start_active_observation) would start
/// a trace of its own, without the propagated user or session. When a span starts as a new
/// root while a Langfuse observation is the current context (an SDK observation, or an
/// exported span that is still open), the processor *adopts* it: the span and all spans of its
/// trace get the propagated attributes, and at the end they are handed to Langfuse with the
/// observation's trace id, the adopted root under the observation.
///
/// This is done when spans end, on the data handed to the Langfuse exporter only: a span's
/// trace id is fixed before any processor sees it (`opentelemetry_sdk` 0.33 lets a processor
/// add attributes at start, not change the span context). A custom `IdGenerator` could hand an
/// explicit root the current observation's trace id, but it cannot give the span a parent (it
/// would float at the top of the trace), a `Sampler` cannot change ids at all, and both need
/// installing on your provider; rewriting at the end needs nothing but this processor. Other
/// exporters on the same provider therefore still see the instrumentation's own trace. Turn it off with
/// [`adopt_new_roots(false)`](LangfuseSpanProcessor::adopt_new_roots). Limits: a
/// `tracing-opentelemetry` span starts when it is first entered (or when its first child or its
/// end needs it), so the observation must be current then; the adopted root keeps its own
/// sampling decision; the exporter-only set-up (no processor) cannot adopt.
///
/// # Signals the server does not read
///
/// Langfuse's OTLP endpoint derives the observation from the span's attributes, but it does not
/// read every current GenAI key. For spans of other instrumentation the processor adds the key
/// it does read: `langfuse.observation.completion_start_time` from
/// `gen_ai.response.time_to_first_chunk` (start time plus the delay), and
/// `langfuse.observation.level = ERROR` (with `error.type` as status message) from
/// `gen_ai.tool.call.outcome = error` or an `error.type` on a span whose status is not set.
/// Keys already present are never overwritten.
///
/// [`LangfuseBuilder::span_processor`]: crate::LangfuseBuilder::span_processor
pub struct LangfuseSpanProcessor {
    next: Box<dyn SpanProcessor>,
    public_key: Option<String>,
    should_export: Option<ShouldExportSpan>,
    exported_open: Mutex<HashSet<u64>>,
    open_count: AtomicUsize,
    trees: WholeTrees,
    /// `langfuse.environment` and `langfuse.release` for spans of other instrumentation.
    defaults: Vec<KeyValue>,
    adopt: bool,
    adoptions: Adoptions,
    /// Counted in [`propagation_reach`] as a processor on an application's provider.
    counted: bool,
}

/// Most adoptions remembered (oldest forgotten first).
const MAX_ADOPTIONS: usize = 4_096;

/// An adopted trace: where its spans go, and the attributes they inherit.
#[derive(Debug, Clone)]
struct Adoption {
    trace_id: TraceId,
    root: SpanId,
    parent: SpanId,
    propagated: Option<Arc<[KeyValue]>>,
}

#[derive(Debug, Default)]
struct Adoptions {
    any: AtomicBool,
    map: RwLock<(HashMap<TraceId, Adoption>, VecDeque<TraceId>)>,
}

impl Adoptions {
    fn get(&self, trace: TraceId) -> Option<Adoption> {
        if !self.any.load(Ordering::Relaxed) {
            return None;
        }
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.0.get(&trace).cloned()
    }

    fn insert(&self, trace: TraceId, adoption: Adoption) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.0.insert(trace, adoption).is_none() {
            map.1.push_back(trace);
            while map.0.len() > MAX_ADOPTIONS {
                match map.1.pop_front() {
                    Some(old) => {
                        map.0.remove(&old);
                    }
                    None => break,
                }
            }
        }
        self.any.store(true, Ordering::Relaxed);
    }
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
        propagation_reach::processor_attached();
        Self {
            next: Box::new(next),
            public_key,
            should_export: None,
            exported_open: Mutex::new(HashSet::new()),
            open_count: AtomicUsize::new(0),
            trees: WholeTrees::default(),
            defaults: Vec::new(),
            adopt: true,
            adoptions: Adoptions::default(),
            counted: true,
        }
    }

    /// The processor of the client's own provider: it sees only the SDK's spans, so it does
    /// not count as a processor other instrumentation's spans reach.
    pub(crate) fn internal(mut self) -> Self {
        if self.counted {
            propagation_reach::processor_detached();
            self.counted = false;
        }
        self
    }

    /// Writes `langfuse.environment` and `langfuse.release` on every span of other
    /// instrumentation (the SDK's own spans carry them already). A propagated environment
    /// ([`PropagatedAttributes::environment`](crate::PropagatedAttributes::environment)) wins.
    /// [`LangfuseBuilder::span_processor`](crate::LangfuseBuilder::span_processor) sets them
    /// from the client's configuration (`LANGFUSE_TRACING_ENVIRONMENT`, `LANGFUSE_RELEASE`).
    ///
    /// ```
    /// use langfuse_otel::LangfuseSpanProcessor;
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};
    /// let processor = LangfuseSpanProcessor::new(SimpleSpanProcessor::new(InMemorySpanExporter::default()), None)
    ///     .with_environment_and_release(Some("staging".into()), Some("v1.2".into()));
    /// # drop(processor);
    /// ```
    pub fn with_environment_and_release(
        mut self,
        environment: Option<String>,
        release: Option<String>,
    ) -> Self {
        self.defaults.clear();
        if let Some(env) = environment {
            self.defaults
                .push(KeyValue::new(keys::LANGFUSE_ENVIRONMENT, env));
        }
        if let Some(rel) = release {
            self.defaults
                .push(KeyValue::new(keys::LANGFUSE_RELEASE, rel));
        }
        self
    }

    /// Whether a span started as a new root while a Langfuse observation is current is adopted
    /// into that observation's trace (default `true`; see ["One agent run, one trace"](LangfuseSpanProcessor#one-agent-run-one-trace)).
    pub fn adopt_new_roots(mut self, adopt: bool) -> Self {
        self.adopt = adopt;
        self
    }

    /// Replaces the default export filter ([`is_default_export_span`]).
    pub fn with_should_export_span(mut self, filter: ShouldExportSpan) -> Self {
        self.should_export = Some(filter);
        self
    }

    /// An SDK span recorded for another Langfuse project: never sent, not even as an ancestor.
    fn other_project(&self, span: &SpanData) -> bool {
        span.instrumentation_scope.name() == SCOPE_NAME
            && self.public_key.as_ref().is_some_and(|ours| {
                span.instrumentation_scope.attributes().any(|kv| {
                    kv.key.as_str() == keys::SCOPE_ATTRIBUTE_PUBLIC_KEY
                        && matches!(&kv.value, opentelemetry::Value::String(theirs) if theirs.as_str() != ours)
                })
            })
    }

    fn should_export(&self, span: &SpanData) -> bool {
        if self.other_project(span) {
            return false;
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

impl Drop for LangfuseSpanProcessor {
    fn drop(&mut self) {
        if self.counted {
            propagation_reach::processor_detached();
        }
    }
}

impl LangfuseSpanProcessor {
    /// Adopts `span` (a new root of another instrumentation) into the trace of the current
    /// observation, if there is one. Returns whether it did.
    fn try_adopt(&self, span: &mut Span, trace_id: TraceId) -> bool {
        let current = Context::current();
        let cur = current.span().span_context().clone();
        if !cur.is_valid() || cur.trace_id() == trace_id {
            return false;
        }
        let observation = current
            .get::<AppRootClaim>()
            .is_some_and(|c| c.0 == cur.trace_id())
            || self.is_open(cur.span_id());
        if !observation {
            return false;
        }
        let propagated = current.get::<Propagated>().map(|p| p.key_values.clone());
        if let Some(kvs) = &propagated {
            span.set_attributes(kvs.iter().cloned());
        }
        self.adoptions.insert(
            trace_id,
            Adoption {
                trace_id: cur.trace_id(),
                root: span.span_context().span_id(),
                parent: cur.span_id(),
                propagated,
            },
        );
        true
    }
}

/// The baggage and propagated attributes of `cx`, for a span the SDK builds (the processor
/// adds them to other instrumentation's spans; the SDK's own carry them even on a provider
/// without it). A propagated prompt is left out when the span links its own.
pub(crate) fn push_start_attributes(
    attrs: &mut Vec<KeyValue>,
    cx: &Context,
    explicit_prompt: bool,
) {
    if !opentelemetry::baggage::BaggageExt::baggage(cx).is_empty() {
        attrs.extend(baggage_key_values(cx));
    }
    if let Some(p) = cx.get::<Propagated>() {
        for kv in p.key_values.iter() {
            let prompt_key = kv.key.as_str() == keys::LANGFUSE_OBSERVATION_PROMPT_NAME
                || kv.key.as_str() == keys::LANGFUSE_OBSERVATION_PROMPT_VERSION;
            if !(explicit_prompt && prompt_key) {
                attrs.push(kv.clone());
            }
        }
    }
}

/// Adds the `langfuse.*` attributes the Langfuse server reads for signals a span carries under
/// keys it does not read (the core's [`conventions`](langfuse_otel_core::conventions)):
/// completion start time from `gen_ai.response.time_to_first_chunk`, ERROR level from a
/// reported tool failure. Keys already present are kept.
fn add_server_signals(span: &mut SpanData) {
    use langfuse_otel_core::conventions::{completion_start_from_ttft, tool_failure_level};
    if let Some(at) = completion_start_from_ttft(span.start_time, &span.attributes) {
        span.attributes.push(KeyValue::new(
            keys::LANGFUSE_OBSERVATION_COMPLETION_START_TIME,
            at,
        ));
    }
    if let Some(failure) = tool_failure_level(&span.attributes, &span.status) {
        span.attributes.push(KeyValue::new(
            keys::LANGFUSE_OBSERVATION_LEVEL,
            failure.level.as_str(),
        ));
        if let Some(message) = failure.status_message {
            span.attributes.push(KeyValue::new(
                keys::LANGFUSE_OBSERVATION_STATUS_MESSAGE,
                Value::String(StringValue::from(message)),
            ));
        }
    }
}

fn span_key(id: opentelemetry::trace::SpanId) -> u64 {
    u64::from_be_bytes(id.to_bytes())
}

impl SpanProcessor for LangfuseSpanProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        let sdk = sdk_start();
        let trace_id = span.span_context().trace_id();
        // The SDK's own spans got the baggage, propagated attributes, environment and release
        // when they were built (see `push_start_attributes`).
        let mut adopted = false;
        if sdk.is_none() {
            if !self.defaults.is_empty() {
                span.set_attributes(self.defaults.iter().cloned());
            }
            let baggage = baggage_key_values(cx);
            if !baggage.is_empty() {
                span.set_attributes(baggage);
            }
            if let Some(p) = cx.get::<Propagated>() {
                span.set_attributes(p.key_values.iter().cloned());
            } else if let Some(a) = self.adoptions.get(trace_id) {
                // A span below an adopted root: its context lost the observation's values.
                adopted = true;
                if let Some(kvs) = &a.propagated {
                    span.set_attributes(kvs.iter().cloned());
                }
            } else if self.adopt && !cx.span().span_context().is_valid() {
                adopted = self.try_adopt(span, trace_id);
            }
        }

        // App root: the first exported span of a local subtree. Below an SDK observation the
        // context carries a claim for the trace, so nothing else needs checking; otherwise an
        // exported parent must still be open in this process. Adopted spans sit below an
        // observation.
        let claimed = adopted || cx.get::<AppRootClaim>().is_some_and(|c| c.0 == trace_id);
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
        if let Some(a) = self.adoptions.get(span.span_context.trace_id()) {
            let sc = &span.span_context;
            span.span_context = SpanContext::new(
                a.trace_id,
                sc.span_id(),
                sc.trace_flags(),
                sc.is_remote(),
                sc.trace_state().clone(),
            );
            if span.span_context.span_id() == a.root {
                span.parent_span_id = a.parent;
                span.parent_span_is_remote = false;
            }
        }
        if self.other_project(&span) {
            return;
        }
        let accepted = self.should_export(&span);
        if !self.trees.decide(&mut span, accepted) {
            return;
        }
        if span.instrumentation_scope.name() != SCOPE_NAME {
            add_server_signals(&mut span);
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
