//! Which spans are exported: the official SDKs' default filter, or a predicate of yours, and
//! [`WholeTrees`], which keeps the filtered ancestors of exported spans so every tree that
//! reaches Langfuse is whole.

use std::fmt;
use std::sync::Arc;

use langfuse_otel_core::keys::{LANGFUSE_OBSERVATION_TYPE, is_known_llm_scope};
use opentelemetry_sdk::trace::SpanData;

pub use langfuse_otel_core::keys::KNOWN_LLM_SCOPES;

/// The default filter (the one definition, used by the exporter, the SDK's span processor and
/// [`CanonicalExporter`](crate::CanonicalExporter)): as the official SDKs, a span is exported
/// when its scope is a known LLM scope (see [`KNOWN_LLM_SCOPES`], the SDK's own `langfuse-sdk`
/// included; `ai` matches exactly only) or any attribute key starts with `gen_ai.`; and a span
/// explicitly marked as an observation (`langfuse.observation.type`) whatever its scope.
///
/// Other `langfuse.*` keys do not count: the span processor copies propagated trace attributes
/// (`langfuse.user.id`, `langfuse.environment`, …) onto every span, which must not make an HTTP
/// or database span an observation.
pub fn is_default_export_span(span: &SpanData) -> bool {
    is_known_llm_scope(span.instrumentation_scope.name())
        || span.attributes.iter().any(|kv| {
            let k = kv.key.as_str();
            k.starts_with("gen_ai.") || k == LANGFUSE_OBSERVATION_TYPE
        })
}

/// The export filter: which spans an exporter sends.
#[derive(Clone, Default)]
pub enum ExportFilter {
    /// [`is_default_export_span`].
    #[default]
    Default,
    /// Every span.
    All,
    /// A predicate of yours (it must not panic; a panic is caught and the span dropped).
    Custom(Arc<dyn Fn(&SpanData) -> bool + Send + Sync>),
}

impl fmt::Debug for ExportFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportFilter::Default => f.write_str("Default"),
            ExportFilter::All => f.write_str("All"),
            ExportFilter::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl ExportFilter {
    /// Whether `span` passes.
    pub fn accepts(&self, span: &SpanData) -> bool {
        match self {
            ExportFilter::Default => is_default_export_span(span),
            ExportFilter::All => true,
            ExportFilter::Custom(f) => {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(span))).unwrap_or(false)
            }
        }
    }
}

/// Whole trees: no exported span points to a parent that is never exported.
///
/// The export filter drops spans without LLM work, but such a span may sit between an
/// observation and the LLM spans below it (a `#[tracing::instrument]` handler, an HTTP server
/// span). Dropping it would leave its children pointing to a parent Langfuse never receives:
/// the tree falls apart and the request has no root. [`WholeTrees`] fixes that with two rules,
/// relying on children ending before their parents (which `tracing` and the SDK guarantee for
/// spans that are not detached):
///
/// 1. **Keep the ancestors.** When a span is exported, its parent is remembered as *needed*;
///    when the parent ends, it is exported even though the filter rejected it, and its own
///    parent becomes needed in turn. So a request's top span is kept (the trace gets its root)
///    as soon as anything below it is LLM work; leaves with no LLM work (a database query)
///    stay filtered.
/// 2. **Re-parent the late child.** A child that ends *after* its parent (a detached task) finds
///    the parent already dropped. Dropped spans are remembered with their parent, so the child
///    is re-parented to the nearest ancestor that was not dropped (and that ancestor becomes
///    needed); with none left, the child becomes a root of its trace.
///
/// Parents in another process (remote parents) are never waited for. Memory is bounded: at
/// most `capacity` needed and `capacity` dropped entries are kept, the oldest forgotten first
/// (a forgotten needed entry means a very long-lived ancestor is filtered after all; a
/// forgotten dropped entry means a child ending much later keeps its original parent id).
///
/// ```
/// use langfuse_otel_exporter::filter::WholeTrees;
/// let trees = WholeTrees::new(WholeTrees::DEFAULT_CAPACITY);
/// assert_eq!(trees.pending(), (0, 0));
/// ```
#[derive(Debug)]
pub struct WholeTrees {
    capacity: usize,
    state: std::sync::Mutex<TreeState>,
}

/// Span identity inside one process: span ids are random, the trace id's low half makes a
/// collision of two traces impossible in practice.
type SpanKey = u64;

fn key(trace: opentelemetry::trace::TraceId, span: opentelemetry::trace::SpanId) -> SpanKey {
    let t = u128::from_be_bytes(trace.to_bytes()) as u64;
    u64::from_be_bytes(span.to_bytes()) ^ t.rotate_left(17)
}

/// A hasher for keys that are already random: the value is its own hash.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type IdBuild = std::hash::BuildHasherDefault<IdHasher>;

#[derive(Debug, Default)]
struct TreeState {
    needed: std::collections::HashSet<SpanKey, IdBuild>,
    needed_order: std::collections::VecDeque<SpanKey>,
    /// Dropped span -> its parent span id.
    dropped: std::collections::HashMap<SpanKey, opentelemetry::trace::SpanId, IdBuild>,
    dropped_order: std::collections::VecDeque<SpanKey>,
}

impl TreeState {
    fn add_needed(&mut self, k: SpanKey, capacity: usize) {
        if self.needed.insert(k) {
            self.needed_order.push_back(k);
            while self.needed.len() > capacity {
                match self.needed_order.pop_front() {
                    Some(old) => {
                        self.needed.remove(&old);
                    }
                    None => break,
                }
            }
        }
        // Entries already removed from the set are skipped lazily: keep the order queue short.
        if self.needed_order.len() > capacity.saturating_mul(2) {
            let needed = &self.needed;
            self.needed_order.retain(|k| needed.contains(k));
        }
    }

    fn add_dropped(&mut self, k: SpanKey, parent: opentelemetry::trace::SpanId, capacity: usize) {
        if self.dropped.insert(k, parent).is_none() {
            self.dropped_order.push_back(k);
            while self.dropped.len() > capacity {
                match self.dropped_order.pop_front() {
                    Some(old) => {
                        self.dropped.remove(&old);
                    }
                    None => break,
                }
            }
        }
    }
}

impl WholeTrees {
    /// Default bound of each table (needed ancestors, dropped spans): 65,536 entries, about
    /// 2 MiB at most.
    pub const DEFAULT_CAPACITY: usize = 65_536;

    /// Tables bounded to `capacity` entries each (at least 1).
    pub fn new(capacity: usize) -> Self {
        WholeTrees {
            capacity: capacity.max(1),
            state: std::sync::Mutex::default(),
        }
    }

    /// Decides whether `span` (which the export filter `accepted` or not) is exported, in the
    /// order spans end. An exported span may be re-parented (its `parent_span_id` rewritten) to
    /// the nearest ancestor that was not dropped.
    pub fn decide(&self, span: &mut SpanData, accepted: bool) -> bool {
        use opentelemetry::trace::SpanId;
        let trace = span.span_context.trace_id();
        let own = key(trace, span.span_context.span_id());
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let needed = !st.needed.is_empty() && st.needed.remove(&own);
        if !(accepted || needed) {
            st.add_dropped(own, span.parent_span_id, self.capacity);
            return false;
        }
        let mut parent = span.parent_span_id;
        if parent == SpanId::INVALID {
            return true;
        }
        if !st.dropped.is_empty() {
            let mut hops = 0;
            while let Some(p) = st.dropped.get(&key(trace, parent)) {
                parent = *p;
                hops += 1;
                if parent == SpanId::INVALID || hops > self.capacity {
                    break;
                }
            }
            if parent != span.parent_span_id {
                span.parent_span_id = parent;
                // The new parent is local (dropped spans were ours) unless the chain ended at
                // the dropped root's remote parent, which keeps the original flag.
            }
        }
        if parent != SpanId::INVALID && !span.parent_span_is_remote {
            st.add_needed(key(trace, parent), self.capacity);
        }
        true
    }

    /// Runs [`decide`](Self::decide) over a batch in order, keeping the exported spans.
    pub fn retain(&self, batch: &mut Vec<SpanData>, filter: &ExportFilter) {
        batch.retain_mut(|span| {
            let accepted = filter.accepts(span);
            self.decide(span, accepted)
        });
    }

    /// Entries held: (needed ancestors, dropped spans).
    pub fn pending(&self) -> (usize, usize) {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (st.needed.len(), st.dropped.len())
    }
}

impl Default for WholeTrees {
    fn default() -> Self {
        WholeTrees::new(Self::DEFAULT_CAPACITY)
    }
}

/// Whether `propagate_attributes` can reach spans of other instrumentation: it needs a
/// `LangfuseSpanProcessor` (crate `langfuse-otel`) on the provider those spans come from. The
/// processor counts itself here; `propagate_attributes` marks its use; an exporter that receives
/// spans of other instrumentation while attributes were propagated and no processor is installed
/// warns once (through its [`Diagnostics`](crate::Diagnostics)).
///
/// ```
/// use langfuse_otel_exporter::filter::propagation_reach;
/// propagation_reach::processor_attached();
/// assert!(propagation_reach::processors() >= 1);
/// propagation_reach::processor_detached();
/// ```
pub mod propagation_reach {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use opentelemetry_sdk::trace::SpanData;

    use crate::Diagnostics;

    static PROCESSORS: AtomicUsize = AtomicUsize::new(0);
    static USED: AtomicBool = AtomicBool::new(false);

    /// Scope name of the Langfuse SDK's own spans (always reached).
    const SDK_SCOPE: &str = langfuse_otel_core::keys::SCOPE_LANGFUSE_SDK;

    /// A processor that propagates attributes to every span of its provider was created.
    pub fn processor_attached() {
        PROCESSORS.fetch_add(1, Ordering::Relaxed);
    }

    /// Such a processor was dropped.
    pub fn processor_detached() {
        let _ = PROCESSORS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Live processors.
    pub fn processors() -> usize {
        PROCESSORS.load(Ordering::Relaxed)
    }

    /// `propagate_attributes` was called.
    pub fn note_used() {
        if !USED.load(Ordering::Relaxed) {
            USED.store(true, Ordering::Relaxed);
        }
    }

    /// Whether `propagate_attributes` was called in this process.
    pub fn used() -> bool {
        USED.load(Ordering::Relaxed)
    }

    /// Warns once when `batch` holds spans of other instrumentation that propagated attributes
    /// could not reach (attributes propagated, no processor installed).
    pub fn check(batch: &[SpanData], diagnostics: &Diagnostics) {
        if !used() || processors() > 0 {
            return;
        }
        if batch
            .iter()
            .any(|s| s.instrumentation_scope.name() != SDK_SCOPE)
        {
            diagnostics.warn_once(
                "propagation-unreachable",
                "propagate_attributes reaches only the Langfuse SDK's own observations here: \
                 spans of other instrumentation (tracing, rig, genai...) are exported without \
                 the propagated user, session, tags and metadata because no \
                 LangfuseSpanProcessor is on their tracer provider; add \
                 `Langfuse::builder().span_processor()` to that provider (see the \
                 langfuse-otel README)",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry::{InstrumentationScope, KeyValue};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::borrow::Cow;
    use std::time::SystemTime;

    const TRACE: u128 = 0x0af7651916cd43dd8448eb211c80319c;

    fn span(id: u64, parent: u64, llm: bool) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(TRACE),
                SpanId::from(id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: false,
            span_kind: opentelemetry::trace::SpanKind::Internal,
            name: Cow::Owned(format!("s{id}")),
            start_time: SystemTime::UNIX_EPOCH,
            end_time: SystemTime::UNIX_EPOCH,
            attributes: if llm {
                vec![KeyValue::new("gen_ai.request.model", "m")]
            } else {
                vec![KeyValue::new("db.query.text", "select 1")]
            },
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: opentelemetry::trace::Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("app").build(),
        }
    }

    fn ids(batch: &[SpanData]) -> Vec<(u64, u64)> {
        batch
            .iter()
            .map(|s| {
                (
                    u64::from_be_bytes(s.span_context.span_id().to_bytes()),
                    u64::from_be_bytes(s.parent_span_id.to_bytes()),
                )
            })
            .collect()
    }

    #[test]
    fn filtered_ancestors_of_an_exported_span_are_kept_and_db_leaves_dropped() {
        // request(1) -> handler(2) -> llm(3); handler -> db(4). Children end first.
        let trees = WholeTrees::default();
        let mut batch = vec![
            span(4, 2, false),
            span(3, 2, true),
            span(2, 1, false),
            span(1, 0, false),
        ];
        trees.retain(&mut batch, &ExportFilter::Default);
        assert_eq!(ids(&batch), [(3, 2), (2, 1), (1, 0)]);
        assert_eq!(trees.pending().0, 0, "no ancestor left waiting");
    }

    #[test]
    fn ancestors_are_kept_across_batches() {
        let trees = WholeTrees::default();
        let mut first = vec![span(3, 2, true)];
        trees.retain(&mut first, &ExportFilter::Default);
        let mut second = vec![span(2, 1, false), span(1, 0, false), span(9, 0, false)];
        trees.retain(&mut second, &ExportFilter::Default);
        assert_eq!(ids(&second), [(2, 1), (1, 0)]);
    }

    #[test]
    fn a_detached_child_ending_after_its_dropped_parent_is_reparented_to_the_nearest_kept_ancestor()
    {
        // obs(1, LLM) -> task(2, dropped: ended with no exported child yet) -> late llm(3).
        let trees = WholeTrees::default();
        let mut batch = vec![span(2, 1, false), span(3, 2, true), span(1, 0, true)];
        trees.retain(&mut batch, &ExportFilter::Default);
        assert_eq!(ids(&batch), [(3, 1), (1, 0)]);
    }

    #[test]
    fn a_late_child_of_a_dropped_root_becomes_a_root() {
        let trees = WholeTrees::default();
        let mut batch = vec![span(1, 0, false), span(2, 1, true)];
        trees.retain(&mut batch, &ExportFilter::Default);
        assert_eq!(ids(&batch), [(2, 0)]);
    }

    #[test]
    fn remote_parents_are_not_waited_for() {
        let trees = WholeTrees::default();
        let mut s = span(3, 2, true);
        s.parent_span_is_remote = true;
        assert!(trees.decide(&mut s, true));
        assert_eq!(trees.pending(), (0, 0));
    }

    #[test]
    fn memory_stays_bounded_by_the_capacity() {
        let trees = WholeTrees::new(8);
        for i in 1..1_000u64 {
            let mut dropped = span(10_000 + i, 0, false);
            trees.decide(&mut dropped, false);
            let mut kept = span(20_000 + i, 30_000 + i, true);
            trees.decide(&mut kept, true);
        }
        let (needed, dropped) = trees.pending();
        assert!(needed <= 8 && dropped <= 8, "{needed} {dropped}");
    }
}
