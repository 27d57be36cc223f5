//! The translator's input: spans grouped by resource and instrumentation scope.
//!
//! Every source (OTLP/JSON, OTLP protobuf, `opentelemetry_sdk` `SpanData`) is first brought into
//! this one borrowed shape (see [`crate::otlp`]), so the translation rules exist exactly once.
//! Values are already converted the way the Langfuse server converts them ([`AttrValue`]);
//! ids are the strings the server would see (lowercase hex for binary ids, verbatim for
//! OTLP/JSON strings).

use std::borrow::Cow;

use crate::value::AttrValue;

/// A set of attributes with the server's semantics: duplicate keys keep the last value.
///
/// Entries are kept sorted by key, so exact look-ups are a binary search and prefix scans
/// (`gen_ai.usage.*`) a contiguous range.
#[derive(Debug, Clone, Default)]
pub struct Attributes<'a> {
    entries: Vec<(Cow<'a, str>, AttrValue<'a>)>,
    /// Presence filter over the keys (see [`key_slot`]): most look-ups are for absent keys,
    /// and the filter answers those without a string comparison.
    filter: [u64; 4],
}

impl PartialEq for Attributes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

/// The filter bit of a key: mixes its length with its last and middle bytes, which tell apart
/// keys that share a long prefix (`langfuse.observation.*`, `gen_ai.usage.*`).
#[inline]
pub(crate) fn key_slot(key: &str) -> usize {
    let b = key.as_bytes();
    let (last, mid) = match b.len() {
        0 => (0, 0),
        n => (b[n - 1] as usize, b[n / 2] as usize),
    };
    (b.len().wrapping_mul(31) ^ last.wrapping_mul(7) ^ mid.wrapping_mul(131)) & 255
}

impl<'a> Attributes<'a> {
    /// An empty set.
    pub const fn new() -> Self {
        Attributes {
            entries: Vec::new(),
            filter: [0; 4],
        }
    }

    /// Builds the set from `(key, value)` pairs in wire order; for a repeated key the last
    /// value wins.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Cow<'a, str>, AttrValue<'a>)>) -> Self {
        let mut entries: Vec<(Cow<'a, str>, AttrValue<'a>)> = pairs.into_iter().collect();
        let sorted = entries.windows(2).all(|w| w[0].0 < w[1].0);
        if !sorted {
            // Stable sort keeps wire order among equal keys; keep the last of each run.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut deduped: Vec<(Cow<'a, str>, AttrValue<'a>)> = Vec::with_capacity(entries.len());
            for entry in entries {
                match deduped.last_mut() {
                    Some(last) if last.0 == entry.0 => *last = entry,
                    _ => deduped.push(entry),
                }
            }
            entries = deduped;
        }
        let mut filter = [0u64; 4];
        for (key, _) in &entries {
            let slot = key_slot(key);
            filter[slot / 64] |= 1 << (slot % 64);
        }
        Attributes { entries, filter }
    }

    /// The value of `key`, if present.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&AttrValue<'a>> {
        let slot = key_slot(key);
        if self.filter[slot / 64] & (1 << (slot % 64)) == 0 {
            return None;
        }
        self.entries
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// Whether `key` is present (whatever its value).
    #[inline]
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The value of `key` if it is JavaScript-truthy.
    #[inline]
    pub fn truthy(&self, key: &str) -> Option<&AttrValue<'a>> {
        self.get(key).filter(|v| v.is_truthy())
    }

    /// The value of `key` if it is a string.
    #[inline]
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(AttrValue::as_str)
    }

    /// All entries whose key starts with `prefix`, in key order.
    pub fn with_prefix<'s>(
        &'s self,
        prefix: &'s str,
    ) -> impl Iterator<Item = (&'s str, &'s AttrValue<'a>)> + 's {
        let start = self.entries.partition_point(|(k, _)| k.as_ref() < prefix);
        self.entries[start..]
            .iter()
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_ref(), v))
    }

    /// Whether any key starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.with_prefix(prefix).next().is_some()
    }

    /// All entries, in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &AttrValue<'a>)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The resource of a group of spans.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resource<'a> {
    /// Resource attributes.
    pub attributes: Attributes<'a>,
}

/// The instrumentation scope of a group of spans.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope<'a> {
    /// Scope name (`""` when absent).
    pub name: Cow<'a, str>,
    /// Scope version, when present and non-empty.
    pub version: Option<Cow<'a, str>>,
    /// Scope attributes.
    pub attributes: Attributes<'a>,
}

/// OTLP span status code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StatusCode {
    /// `STATUS_CODE_UNSET` (0), also used for unknown codes.
    #[default]
    Unset,
    /// `STATUS_CODE_OK` (1).
    Ok,
    /// `STATUS_CODE_ERROR` (2).
    Error,
}

impl StatusCode {
    /// The code for an OTLP numeric status code.
    pub fn from_code(code: i64) -> Self {
        match code {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }
}

/// An event recorded on a span.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanEvent<'a> {
    /// Event name.
    pub name: Cow<'a, str>,
    /// Event time in Unix milliseconds, if valid.
    pub time_unix_ms: Option<i64>,
    /// Event attributes, in wire order (the order matters for message arrays).
    pub attributes: Vec<(Cow<'a, str>, AttrValue<'a>)>,
}

impl<'a> SpanEvent<'a> {
    /// The value of an event attribute (last one wins for repeated keys).
    pub fn attribute(&self, key: &str) -> Option<&AttrValue<'a>> {
        self.attributes
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// One span, as the translator reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Span<'a> {
    /// Trace id as the server sees it (lowercase hex for binary ids, verbatim for strings).
    pub trace_id: Cow<'a, str>,
    /// Span id, same rules as `trace_id`.
    pub span_id: Cow<'a, str>,
    /// Parent span id; `None` or `""` means the span is a root.
    pub parent_span_id: Option<Cow<'a, str>>,
    /// Span name.
    pub name: Cow<'a, str>,
    /// Start time in Unix milliseconds (nanoseconds truncated), if valid.
    pub start_time_unix_ms: Option<i64>,
    /// End time in Unix milliseconds (nanoseconds truncated), if valid.
    pub end_time_unix_ms: Option<i64>,
    /// Start time in Unix nanoseconds, when the source carries it exactly (protobuf and
    /// `SpanData`; the records only use milliseconds, canonical OTLP keeps the precision).
    pub start_time_unix_nano: Option<u64>,
    /// End time in Unix nanoseconds, when the source carries it exactly.
    pub end_time_unix_nano: Option<u64>,
    /// Status code.
    pub status_code: StatusCode,
    /// Status message, if present.
    pub status_message: Option<Cow<'a, str>>,
    /// Span attributes.
    pub attributes: Attributes<'a>,
    /// Span events, in order.
    pub events: Vec<SpanEvent<'a>>,
}

impl Span<'_> {
    /// The parent span id, if the span has a non-empty one.
    pub fn parent_id(&self) -> Option<&str> {
        self.parent_span_id.as_deref().filter(|p| !p.is_empty())
    }
}

/// Spans of one instrumentation scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeSpans<'a> {
    /// The scope.
    pub scope: Scope<'a>,
    /// Its spans.
    pub spans: Vec<Span<'a>>,
}

/// Spans of one resource.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceSpans<'a> {
    /// The resource.
    pub resource: Resource<'a>,
    /// Its scopes with their spans.
    pub scope_spans: Vec<ScopeSpans<'a>>,
}

/// A batch of spans: the content of one OTLP trace export.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanBatch<'a> {
    /// Spans grouped by resource.
    pub resource_spans: Vec<ResourceSpans<'a>>,
}

impl SpanBatch<'_> {
    /// Total number of spans.
    pub fn span_count(&self) -> usize {
        self.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    }
}
