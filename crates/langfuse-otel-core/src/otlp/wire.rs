//! OTLP/protobuf trace exports read and written at the wire level, for assembling traces
//! for Langfuse v4 without decoding spans.
//!
//! Langfuse v4 writes one row per span with the trace-level fields (trace name, user,
//! session, tags, public, release, version, environment) of that span only, and stores a
//! re-sent span id as another row. A proxy that holds a trace's spans until the trace is
//! complete can repair both: put the trace-level fields any span set on every span that does
//! not set its own, and send each span id once. Doing that on decoded messages costs a full
//! decode and re-encode of every span; here it costs a walk over the bytes:
//!
//! - [`split_by_trace`] cuts an `ExportTraceServiceRequest` into one [`TracePart`] per trace
//!   id: each span's encoded bytes copied as they are (unknown fields included), under the
//!   encoded fields of its resource and scope, with the span's id, whether it is a root, and
//!   its own trace-level fields (only the attributes that can bear on them are decoded).
//! - [`assemble`] writes the parts of one trace as one export: each span id once (the first
//!   seen), and on every span the trace-level fields it lacks, appended as further
//!   `attributes` entries (a repeated field: a decoder appends them to the span's own), as
//!   the canonical `langfuse.*` attributes.
//!
//! A trace's value of a field is a root span's (no parent) first, else the first span's that
//! sets it. Both functions are pure, and never panic on any input: bytes that are not a valid
//! export give [`DecodeError::Protobuf`].
//!
//! ```
//! use langfuse_otel_core::otlp::wire;
//! use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
//! use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
//! use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
//! use prost::Message;
//!
//! let span = |id: u8, parent: Vec<u8>, attributes: Vec<KeyValue>| Span {
//!     trace_id: vec![7; 16],
//!     span_id: vec![id; 8],
//!     parent_span_id: parent,
//!     name: format!("span {id}"),
//!     attributes,
//!     ..Span::default()
//! };
//! let user = KeyValue {
//!     key: "user.id".into(),
//!     value: Some(AnyValue { value: Some(any_value::Value::StringValue("u-1".into())) }),
//!     ..KeyValue::default()
//! };
//! let export = ExportTraceServiceRequest {
//!     resource_spans: vec![ResourceSpans {
//!         scope_spans: vec![ScopeSpans {
//!             spans: vec![span(1, vec![], vec![user]), span(2, vec![1; 8], vec![])],
//!             ..ScopeSpans::default()
//!         }],
//!         ..ResourceSpans::default()
//!     }],
//! };
//! let parts = wire::split_by_trace(&export.encode_to_vec()).unwrap();
//! assert_eq!(parts.len(), 1);
//! assert_eq!(parts[0].trace_id(), &[7; 16][..]);
//! // The child span, sent again, is kept once.
//! let again = wire::split_by_trace(&export.encode_to_vec()).unwrap();
//! let mut body = Vec::new();
//! let assembled = wire::assemble(&[&parts[0], &again[0]], &mut body);
//! assert_eq!((assembled.spans, assembled.duplicates), (2, 2));
//!
//! let out = ExportTraceServiceRequest::decode(&body[..]).unwrap();
//! let child = &out.resource_spans[0].scope_spans[0].spans[1];
//! assert!(child.attributes.iter().any(|kv| kv.key == "langfuse.user.id"));
//! ```

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;

use super::DecodeError;
use crate::keys;
use crate::translate::TraceLevel;

/// `ExportTraceServiceRequest.resource_spans`, `ResourceSpans.scope_spans`,
/// `ScopeSpans.spans`: field 1 or 2, length-delimited.
const RESOURCE_SPANS: u8 = (1 << 3) | 2;
const SCOPE_SPANS: u8 = (2 << 3) | 2;
const SPANS: u8 = (2 << 3) | 2;
/// `Span.attributes` (field 9, length-delimited).
const SPAN_ATTRIBUTES: u8 = (9 << 3) | 2;

/// One trace's spans from one export, kept as their encoded bytes (see the
/// [module docs](self)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TracePart {
    /// The trace id, in [`TracePart::bytes`] (in the first span's bytes: no allocation of
    /// its own).
    trace_id: Range<usize>,
    /// The encoded resources, scopes and spans, back to back.
    bytes: Vec<u8>,
    groups: Vec<Group>,
    spans: Vec<SpanAt>,
    /// Trace-level fields spans set (referred to by [`SpanAt::level`]).
    /// Shared with the other parts of the export with the same fields (no copy of their
    /// strings per part).
    levels: Vec<Arc<TraceLevel>>,
}

/// Spans under one resource and scope.
#[derive(Debug, Clone, PartialEq)]
struct Group {
    /// The `ResourceSpans` fields other than its scopes, in [`TracePart::bytes`].
    resource: Range<usize>,
    /// The `ScopeSpans` fields other than its spans.
    scope: Range<usize>,
    /// Indexes into [`TracePart::spans`].
    spans: Range<usize>,
    /// Where in the export it came from (resource, scope): consecutive spans of the same
    /// origin share a group.
    origin: (usize, usize),
}

#[derive(Debug, Clone, PartialEq)]
struct SpanAt {
    /// The `Span` message's bytes.
    bytes: Range<usize>,
    /// Its `span_id`.
    span_id: Range<usize>,
    /// The span id as a number when it has the valid size (8 bytes): compared without
    /// reading the span's bytes again.
    short_id: Option<u64>,
    /// Whether it has no parent.
    root: bool,
    /// Its trace-level fields (index into [`TracePart::levels`]); `None`: none.
    level: Option<usize>,
}

impl TracePart {
    /// The trace id (as sent: 16 bytes for a valid one).
    pub fn trace_id(&self) -> &[u8] {
        &self.bytes[self.trace_id.clone()]
    }

    /// Spans in this part.
    pub fn span_count(&self) -> usize {
        self.spans.len()
    }

    fn level(&self, span: &SpanAt) -> Option<&TraceLevel> {
        span.level
            .and_then(|i| self.levels.get(i))
            .map(|level| &**level)
    }
}

/// A field read from protobuf bytes.
enum Value<'a> {
    /// A varint or fixed-width number (not needed here).
    Number,
    /// A length-delimited value.
    Bytes(&'a [u8]),
}

/// One field: its number, its value, and the whole field's bytes (key included).
type Field<'a> = (u64, Value<'a>, Range<usize>);

/// The fields of one protobuf message, in order.
struct Fields<'a> {
    buf: &'a [u8],
    at: usize,
}

fn invalid(what: &str) -> DecodeError {
    DecodeError::Protobuf(format!("invalid OTLP protobuf: {what}"))
}

#[inline]
fn read_varint(buf: &[u8], at: &mut usize) -> Result<u64, DecodeError> {
    // Most keys and lengths are one byte.
    if let Some(&byte) = buf.get(*at)
        && byte < 0x80
    {
        *at += 1;
        return Ok(u64::from(byte));
    }
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *buf.get(*at).ok_or_else(|| invalid("truncated varint"))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(invalid("varint longer than 10 bytes"))
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf, at: 0 }
    }

    /// The next field: (field number, value, the whole field's bytes (key included)).
    #[inline]
    fn next_field(&mut self) -> Option<Result<Field<'a>, DecodeError>> {
        if self.at >= self.buf.len() {
            return None;
        }
        Some(self.read())
    }

    #[inline]
    fn read(&mut self) -> Result<Field<'a>, DecodeError> {
        self.read_nested(0)
    }

    /// One field, `depth` groups deep; an end of group is an error (a group's own end is read
    /// by [`Fields::skip_group`]).
    fn read_nested(&mut self, depth: usize) -> Result<Field<'a>, DecodeError> {
        let start = self.at;
        let key = read_varint(self.buf, &mut self.at)?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(invalid("field number out of range"));
        }
        let value = match key & 7 {
            0 => {
                read_varint(self.buf, &mut self.at)?;
                Value::Number
            }
            1 => self.skip(8)?,
            5 => self.skip(4)?,
            2 => {
                let len = read_varint(self.buf, &mut self.at)?;
                let len = usize::try_from(len).map_err(|_| invalid("length out of range"))?;
                let end = self
                    .at
                    .checked_add(len)
                    .filter(|&end| end <= self.buf.len())
                    .ok_or_else(|| invalid("length past the end"))?;
                let bytes = &self.buf[self.at..end];
                self.at = end;
                Value::Bytes(bytes)
            }
            3 => {
                // A group (proto2; a decoder skips one in a field it does not know).
                self.skip_group(number, depth)?;
                Value::Number
            }
            4 => return Err(invalid("mismatched end of group")),
            _ => return Err(invalid("unexpected wire type")),
        };
        Ok((number, value, start..self.at))
    }

    /// Skips the fields of group `number` up to its end (its start key is read).
    fn skip_group(&mut self, number: u64, depth: usize) -> Result<(), DecodeError> {
        // The nesting a decoder accepts.
        if depth >= 100 {
            return Err(invalid("groups nested too deep"));
        }
        loop {
            if self.at >= self.buf.len() {
                return Err(invalid("unterminated group"));
            }
            // Its end: the end-group key of the same number.
            let mut at = self.at;
            let key = read_varint(self.buf, &mut at)?;
            if key & 7 == 4 && key >> 3 == number {
                self.at = at;
                return Ok(());
            }
            self.read_nested(depth + 1)?;
        }
    }

    fn skip(&mut self, n: usize) -> Result<Value<'a>, DecodeError> {
        if self.buf.len() - self.at < n {
            return Err(invalid("truncated fixed-width field"));
        }
        self.at += n;
        Ok(Value::Number)
    }
}

/// Whether an attribute key can bear on a trace-level field: the `langfuse.*` keys, the plain
/// user and session keys, the GenAI conversation id, the Vercel AI SDK's telemetry metadata and
/// `tag.tags` (the keys [`crate::translate::trace_levels`] reads).
pub(crate) fn is_trace_level_key(key: &[u8]) -> bool {
    key.starts_with(b"langfuse.")
        || key.starts_with(b"ai.telemetry.metadata.")
        || matches!(
            key,
            b"user.id" | b"session.id" | b"gen_ai.conversation.id" | b"tag.tags"
        )
}

/// The `key` of an encoded `KeyValue` (its last occurrence, as a decoder reads it).
fn key_of(kv: &[u8]) -> Result<&[u8], DecodeError> {
    // The usual shape: the key (field 1), then the value (field 2) up to the end, both with
    // one-byte lengths.
    if let [0x0a, key_len, rest @ ..] = kv
        && *key_len < 0x80
        && let Some((key, value)) = rest.split_at_checked(usize::from(*key_len))
        && let [0x12, value_len, value @ ..] = value
        && *value_len < 0x80
        && value.len() == usize::from(*value_len)
    {
        return Ok(key);
    }
    let mut key: &[u8] = &[];
    let mut fields = Fields::new(kv);
    while let Some(field) = fields.next_field() {
        if let (1, Value::Bytes(bytes), _) = field? {
            key = bytes;
        }
    }
    Ok(key)
}

/// Appends the `KeyValue` at `kv` to `out` when its key can bear on a trace-level field.
fn collect_trace_level(kv: &[u8], out: &mut Vec<KeyValue>) -> Result<(), DecodeError> {
    if is_trace_level_key(key_of(kv)?) {
        out.push(decode_key_value(kv)?);
    }
    Ok(())
}

fn decode_key_value(kv: &[u8]) -> Result<KeyValue, DecodeError> {
    KeyValue::decode(kv).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// One resource of the export being split.
struct ResourceRead<'a> {
    /// Its fields other than the scopes.
    prefix: Vec<Range<usize>>,
    scopes: Vec<&'a [u8]>,
    /// Its trace-level attributes.
    attributes: Vec<KeyValue>,
}

fn read_resource_spans(rs: &[u8]) -> Result<ResourceRead<'_>, DecodeError> {
    let mut out = ResourceRead {
        prefix: Vec::new(),
        scopes: Vec::new(),
        attributes: Vec::new(),
    };
    let mut fields = Fields::new(rs);
    while let Some(field) = fields.next_field() {
        match field? {
            (2, Value::Bytes(scope), _) => out.scopes.push(scope),
            (2, _, _) => return Err(invalid("scope_spans is not length-delimited")),
            (1, Value::Bytes(resource), range) => {
                let mut inner = Fields::new(resource);
                while let Some(field) = inner.next_field() {
                    if let (1, Value::Bytes(kv), _) = field? {
                        collect_trace_level(kv, &mut out.attributes)?;
                    }
                }
                out.prefix.push(range);
            }
            (_, _, range) => out.prefix.push(range),
        }
    }
    Ok(out)
}

/// What the splitter reads of one span.
struct SpanRead<'a> {
    trace_id: &'a [u8],
    /// Where the trace id is in the span's bytes.
    trace_id_at: Range<usize>,
    span_id: Range<usize>,
    root: bool,
}

/// Reads a span; its attributes that can bear on trace-level fields go to `trace_level`
/// (encoded `KeyValue`s).
fn read_span<'a>(
    span: &'a [u8],
    trace_level: &mut Vec<&'a [u8]>,
) -> Result<SpanRead<'a>, DecodeError> {
    let mut out = SpanRead {
        trace_id: &[],
        trace_id_at: 0..0,
        span_id: 0..0,
        root: true,
    };
    let mut fields = Fields::new(span);
    while let Some(field) = fields.next_field() {
        let (number, value, range) = field?;
        let Value::Bytes(bytes) = value else {
            if matches!(number, 1 | 2 | 4 | 9) {
                return Err(invalid("a span's id or attribute is not length-delimited"));
            }
            continue;
        };
        match number {
            1 => {
                out.trace_id = bytes;
                out.trace_id_at = (range.end - bytes.len())..range.end;
            }
            // The value ends the field.
            2 => out.span_id = (range.end - bytes.len())..range.end,
            4 => out.root = bytes.is_empty(),
            9 if is_trace_level_key(key_of(bytes)?) => trace_level.push(bytes),
            _ => {}
        }
    }
    Ok(out)
}

/// The trace-level fields of a span from its and its resource's trace-level attributes.
fn level_of(resource: &[KeyValue], span: &[KeyValue]) -> TraceLevel {
    crate::translate::trace_level_of_attributes(resource, span)
}

/// A part being cut: its groups and levels, and how many bytes it will hold (its spans and
/// byte slices are kept in lists shared by all parts of the export, then moved into each part
/// in one go, so that a part makes few allocations of the exact size).
struct Cutting<'a> {
    /// The trace id, as in the export.
    trace_id: &'a [u8],
    part: TracePart,
    len: usize,
    spans: usize,
    /// (index in the level cache, index in the part's levels).
    levels: Vec<(usize, usize)>,
}

/// What the parts of one export are cut from: per part, its byte slices and spans.
#[derive(Default)]
struct Cuts<'a> {
    parts: Vec<Cutting<'a>>,
    copies: Vec<(usize, &'a [u8])>,
    spans: Vec<(usize, SpanAt)>,
}

impl<'a> Cuts<'a> {
    /// Appends `bytes` to part `at`; their place in it.
    fn copy(&mut self, at: usize, bytes: &'a [u8]) -> Range<usize> {
        let c = &mut self.parts[at];
        let start = c.len;
        c.len += bytes.len();
        self.copies.push((at, bytes));
        start..c.len
    }

    fn finish(self) -> Vec<TracePart> {
        let mut parts: Vec<TracePart> = self
            .parts
            .into_iter()
            .map(|c| {
                let mut part = c.part;
                part.bytes = Vec::with_capacity(c.len);
                part.spans = Vec::with_capacity(c.spans);
                part
            })
            .collect();
        for (at, bytes) in self.copies {
            parts[at].bytes.extend_from_slice(bytes);
        }
        for (at, span) in self.spans {
            parts[at].spans.push(span);
        }
        parts
    }
}

/// Trace-level fields already read in one export, by resource and the encoded attributes
/// that gave them: spans of one trace (or of all traces) often carry the same user and
/// session attributes, which are then converted once.
#[derive(Default)]
struct LevelCache {
    entries: Vec<(usize, Vec<u8>, Arc<TraceLevel>)>,
}

/// How many distinct attribute sets one export's cache keeps.
const LEVEL_CACHE: usize = 32;

impl LevelCache {
    /// The cache index of the level of `kvs` (encoded) under `resource` (its index and
    /// decoded trace-level attributes), or the level itself when the cache is full.
    fn get(
        &mut self,
        resource_index: usize,
        resource: &[KeyValue],
        kvs: &[&[u8]],
    ) -> Result<Result<usize, TraceLevel>, DecodeError> {
        let same = |key: &[u8]| {
            let mut rest = key;
            kvs.iter().all(|kv| match rest.split_at_checked(kv.len()) {
                Some((head, tail)) if head == *kv => {
                    rest = tail;
                    true
                }
                _ => false,
            }) && rest.is_empty()
        };
        if let Some(i) = self
            .entries
            .iter()
            .position(|(r, key, _)| *r == resource_index && same(key))
        {
            return Ok(Ok(i));
        }
        let decoded = kvs
            .iter()
            .map(|kv| decode_key_value(kv))
            .collect::<Result<Vec<_>, _>>()?;
        let level = level_of(resource, &decoded);
        if self.entries.len() >= LEVEL_CACHE {
            return Ok(Err(level));
        }
        self.entries
            .push((resource_index, kvs.concat(), Arc::new(level)));
        Ok(Ok(self.entries.len() - 1))
    }
}

/// Cuts a protobuf `ExportTraceServiceRequest` into one [`TracePart`] per trace id, in the
/// order the traces first appear; spans keep their order within a trace.
///
/// # Errors
/// [`DecodeError::Protobuf`] when the bytes are not a valid export (truncated, a length past
/// the end, a group, an attribute that does not decode).
pub fn split_by_trace(export: &[u8]) -> Result<Vec<TracePart>, DecodeError> {
    let mut cuts = Cuts::default();
    let mut cache = LevelCache::default();
    // Scratch lists, reused for every scope and span.
    let mut span_attributes: Vec<&[u8]> = Vec::new();
    let mut scope_prefix: Vec<&[u8]> = Vec::new();
    let mut spans: Vec<&[u8]> = Vec::new();
    let mut fields = Fields::new(export);
    let mut resource_index = 0;
    while let Some(field) = fields.next_field() {
        let (number, value, _) = field?;
        let rs = match (number, value) {
            (1, Value::Bytes(rs)) => rs,
            (1, _) => return Err(invalid("resource_spans is not length-delimited")),
            _ => continue,
        };
        let resource = read_resource_spans(rs)?;
        for (scope_index, scope) in resource.scopes.iter().enumerate() {
            let origin = (resource_index, scope_index);
            scope_prefix.clear();
            spans.clear();
            let mut fields = Fields::new(scope);
            while let Some(field) = fields.next_field() {
                match field? {
                    (2, Value::Bytes(span), _) => spans.push(span),
                    (2, _, _) => return Err(invalid("spans is not length-delimited")),
                    (_, _, range) => scope_prefix.push(&scope[range]),
                }
            }
            for &span in &spans {
                span_attributes.clear();
                let read = read_span(span, &mut span_attributes)?;
                let at = match cuts.parts.iter().rposition(|c| c.trace_id == read.trace_id) {
                    Some(at) => at,
                    None => {
                        cuts.parts.push(Cutting {
                            trace_id: read.trace_id,
                            part: TracePart::default(),
                            len: 0,
                            spans: 0,
                            levels: Vec::new(),
                        });
                        cuts.parts.len() - 1
                    }
                };
                let last = cuts.parts[at].part.groups.last();
                if last.is_none_or(|g| g.origin != origin) {
                    // A further scope of the same resource shares the resource's bytes.
                    let resource_range = match last {
                        Some(last) if last.origin.0 == origin.0 => last.resource.clone(),
                        _ => {
                            let start = cuts.parts[at].len;
                            for range in &resource.prefix {
                                cuts.copy(at, &rs[range.clone()]);
                            }
                            start..cuts.parts[at].len
                        }
                    };
                    let scope_at = cuts.parts[at].len;
                    for &bytes in &scope_prefix {
                        cuts.copy(at, bytes);
                    }
                    let c = &mut cuts.parts[at];
                    c.part.groups.push(Group {
                        resource: resource_range,
                        scope: scope_at..c.len,
                        spans: c.spans..c.spans,
                        origin,
                    });
                }
                let bytes = cuts.copy(at, span);
                let c = &mut cuts.parts[at];
                if c.spans == 0 {
                    c.part.trace_id =
                        bytes.start + read.trace_id_at.start..bytes.start + read.trace_id_at.end;
                }
                let level = if span_attributes.is_empty() && resource.attributes.is_empty() {
                    None
                } else {
                    match cache.get(resource_index, &resource.attributes, &span_attributes)? {
                        Ok(entry) => match c.levels.iter().find(|(e, _)| *e == entry) {
                            Some((_, i)) => Some(*i),
                            None => {
                                c.part.levels.push(Arc::clone(&cache.entries[entry].2));
                                let i = c.part.levels.len() - 1;
                                c.levels.push((entry, i));
                                Some(i)
                            }
                        },
                        Err(level) => {
                            c.part.levels.push(Arc::new(level));
                            Some(c.part.levels.len() - 1)
                        }
                    }
                };
                c.spans += 1;
                if let Some(group) = c.part.groups.last_mut() {
                    group.spans.end = c.spans;
                }
                let start = bytes.start;
                cuts.spans.push((
                    at,
                    SpanAt {
                        bytes,
                        span_id: start + read.span_id.start..start + read.span_id.end,
                        short_id: <[u8; 8]>::try_from(&span[read.span_id.clone()])
                            .ok()
                            .map(u64::from_ne_bytes),
                        root: read.root,
                        level,
                    },
                ));
            }
        }
        resource_index += 1;
    }
    Ok(cuts.finish())
}

/// What [`assemble`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Assembled {
    /// Spans written.
    pub spans: usize,
    /// Spans left out because their span id came earlier.
    pub duplicates: usize,
}

/// The trace's value of each field: a root's first, then the first span's that sets it.
#[derive(Default)]
struct TraceFields<'p> {
    name: Option<&'p str>,
    user_id: Option<&'p str>,
    session_id: Option<&'p str>,
    tags: Option<&'p [String]>,
    public: Option<bool>,
    release: Option<&'p str>,
    version: Option<&'p str>,
    environment: Option<&'p str>,
}

fn trace_level<'p>(
    spans: impl Iterator<Item = (bool, Option<&'p TraceLevel>)> + Clone,
) -> TraceFields<'p> {
    let mut out = TraceFields::default();
    for roots in [true, false] {
        for (root, level) in spans.clone() {
            let Some(level) = level else { continue };
            if root != roots {
                continue;
            }
            out.name = out.name.or(level.name.as_deref());
            out.user_id = out.user_id.or(level.user_id.as_deref());
            out.session_id = out.session_id.or(level.session_id.as_deref());
            if out.tags.is_none() && !level.tags.is_empty() {
                out.tags = Some(&level.tags);
            }
            out.public = out.public.or(level.public);
            out.release = out.release.or(level.release.as_deref());
            out.version = out.version.or(level.version.as_deref());
            out.environment = out.environment.or(level.environment.as_deref());
        }
    }
    out
}

/// Which trace-level field a span lacks.
type Lacks = fn(&TraceLevel) -> bool;

/// The trace's fields as encoded `Span.attributes` entries (one buffer), in a fixed order,
/// each with the test of whether a span's own level lacks it.
struct Extras {
    bytes: Vec<u8>,
    fields: Vec<(Range<usize>, Lacks)>,
}

/// `AnyValue` fields: `string_value` 1, `bool_value` 2, `array_value` 5; `ArrayValue.values` 1;
/// `KeyValue.key` 1, `KeyValue.value` 2.
const STRING_VALUE: u8 = (1 << 3) | 2;
const BOOL_VALUE: u8 = 2 << 3;
const ARRAY_VALUE: u8 = (5 << 3) | 2;
const ARRAY_VALUES: u8 = (1 << 3) | 2;
const KEY: u8 = (1 << 3) | 2;
const VALUE: u8 = (2 << 3) | 2;

/// An attribute value to encode.
enum Encode<'p> {
    Text(&'p str),
    Bool(bool),
    Texts(&'p [String]),
}

/// The encoded length of a `string_value` field holding `t`.
fn text_len(t: &str) -> usize {
    1 + varint_len(t.len()) + t.len()
}

/// The encoded length of an `ArrayValue` of `items` as strings (its `values` fields).
fn texts_len(items: &[String]) -> usize {
    items
        .iter()
        .map(|t| {
            let value = text_len(t);
            1 + varint_len(value) + value
        })
        .sum()
}

impl Encode<'_> {
    /// The encoded `AnyValue`'s length.
    fn len(&self) -> usize {
        match self {
            Encode::Text(t) => text_len(t),
            Encode::Bool(_) => 2,
            Encode::Texts(items) => {
                let array = texts_len(items);
                1 + varint_len(array) + array
            }
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        let text = |out: &mut Vec<u8>, t: &str| {
            put_len(out, STRING_VALUE, t.len());
            out.extend_from_slice(t.as_bytes());
        };
        match self {
            Encode::Text(t) => text(out, t),
            Encode::Bool(b) => out.extend_from_slice(&[BOOL_VALUE, u8::from(*b)]),
            Encode::Texts(items) => {
                put_len(out, ARRAY_VALUE, texts_len(items));
                for t in *items {
                    put_len(out, ARRAY_VALUES, text_len(t));
                    text(out, t);
                }
            }
        }
    }
}

/// Appends a `Span.attributes` entry `key` = `value` (a `KeyValue`) to `out`.
fn write_attribute(out: &mut Vec<u8>, key: &str, value: &Encode<'_>) {
    let value_len = value.len();
    let kv_len = 1 + varint_len(key.len()) + key.len() + 1 + varint_len(value_len) + value_len;
    put_len(out, SPAN_ATTRIBUTES, kv_len);
    put_len(out, KEY, key.len());
    out.extend_from_slice(key.as_bytes());
    put_len(out, VALUE, value_len);
    value.write(out);
}

impl Extras {
    fn none() -> Self {
        Extras {
            bytes: Vec::new(),
            fields: Vec::new(),
        }
    }

    fn new(trace: &TraceFields<'_>) -> Self {
        let mut extras = Extras::none();
        let fields: [(&str, Option<Encode<'_>>, Lacks); 8] = [
            (
                keys::LANGFUSE_TRACE_NAME,
                trace.name.map(Encode::Text),
                |l| l.name.is_none(),
            ),
            (
                keys::LANGFUSE_USER_ID,
                trace.user_id.map(Encode::Text),
                |l| l.user_id.is_none(),
            ),
            (
                keys::LANGFUSE_SESSION_ID,
                trace.session_id.map(Encode::Text),
                |l| l.session_id.is_none(),
            ),
            (
                keys::LANGFUSE_RELEASE,
                trace.release.map(Encode::Text),
                |l| l.release.is_none(),
            ),
            (
                keys::LANGFUSE_VERSION,
                trace.version.map(Encode::Text),
                |l| l.version.is_none(),
            ),
            (
                keys::LANGFUSE_ENVIRONMENT,
                trace.environment.map(Encode::Text),
                |l| l.environment.is_none(),
            ),
            (
                keys::LANGFUSE_TRACE_TAGS,
                trace.tags.map(Encode::Texts),
                |l| l.tags.is_empty(),
            ),
            (
                keys::LANGFUSE_TRACE_PUBLIC,
                trace.public.map(Encode::Bool),
                |l| l.public.is_none(),
            ),
        ];
        for (key, value, lacks) in fields {
            if let Some(value) = value {
                let start = extras.bytes.len();
                write_attribute(&mut extras.bytes, key, &value);
                extras.fields.push((start..extras.bytes.len(), lacks));
            }
        }
        extras
    }

    /// The fields a span with `own` trace-level fields lacks.
    fn missing<'e>(&'e self, own: Option<&'e TraceLevel>) -> impl Iterator<Item = &'e [u8]> + 'e {
        self.fields
            .iter()
            .filter(move |(_, lacks)| own.is_none_or(lacks))
            .map(|(range, _)| &self.bytes[range.clone()])
    }

    fn missing_len(&self, own: Option<&TraceLevel>) -> usize {
        match own {
            None => self.bytes.len(),
            Some(_) => self.missing(own).map(<[u8]>::len).sum(),
        }
    }
}

fn varint_len(n: usize) -> usize {
    prost::encoding::encoded_len_varint(n as u64)
}

fn put_len(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    prost::encoding::encode_varint(len as u64, out);
}

/// Writes the spans of `part` that `keep` (by index) as `resource_spans` fields of an export,
/// one per resource (its scopes under it), each span followed by the `extras` it lacks.
fn write_part(body: &mut Vec<u8>, part: &TracePart, keep: &dyn Fn(usize) -> bool, extras: &Extras) {
    let span_len = |i: usize| {
        let s = &part.spans[i];
        s.bytes.len() + extras.missing_len(part.level(s))
    };
    let scope_len = |group: &Group| -> Option<usize> {
        let spans: usize = group
            .spans
            .clone()
            .filter(|&i| keep(i))
            .map(|i| {
                let n = span_len(i);
                1 + varint_len(n) + n
            })
            .sum();
        // A scope none of whose spans is kept is left out.
        (spans > 0).then(|| group.scope.len() + spans)
    };
    let mut first = 0;
    while first < part.groups.len() {
        // The groups of one resource are consecutive.
        let origin = part.groups[first].origin.0;
        let end = part.groups[first..]
            .iter()
            .position(|g| g.origin.0 != origin)
            .map_or(part.groups.len(), |n| first + n);
        let groups = &part.groups[first..end];
        first = end;
        let scopes: usize = groups
            .iter()
            .filter_map(scope_len)
            .map(|n| 1 + varint_len(n) + n)
            .sum();
        if scopes == 0 {
            continue;
        }
        let resource = groups[0].resource.clone();
        put_len(body, RESOURCE_SPANS, resource.len() + scopes);
        body.extend_from_slice(&part.bytes[resource]);
        for group in groups {
            let Some(len) = scope_len(group) else {
                continue;
            };
            put_len(body, SCOPE_SPANS, len);
            body.extend_from_slice(&part.bytes[group.scope.clone()]);
            for i in group.spans.clone().filter(|&i| keep(i)) {
                let s = &part.spans[i];
                put_len(body, SPANS, span_len(i));
                body.extend_from_slice(&part.bytes[s.bytes.clone()]);
                for field in extras.missing(part.level(s)) {
                    body.extend_from_slice(field);
                }
            }
        }
    }
}

impl TracePart {
    /// This part alone as a protobuf `ExportTraceServiceRequest`: its spans as received, under
    /// their resources and scopes (one message per trace, as Kafka carries traces).
    pub fn to_export(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.bytes.len() + self.spans.len() * 4 + 16);
        write_part(&mut body, self, &|_| true, &Extras::none());
        body
    }
}

/// Up to this many spans, a trace's span ids are compared directly rather than hashed.
const SMALL_TRACE: usize = 32;

/// Writes the parts of one trace as one export (see the [module docs](self)): the first span
/// of each span id, each with the trace-level fields it lacks. The export is appended to `out`
/// (nothing when no span is left): appended exports are one export holding all their spans,
/// so the traces of one request can be written into one buffer.
pub fn assemble(parts: &[&TracePart], out: &mut Vec<u8>) -> Assembled {
    // Which spans are kept: the first of each span id (`kept[offset of the part + i]`).
    let total: usize = parts.iter().map(|p| p.spans.len()).sum();
    let mut kept: Vec<bool> = Vec::with_capacity(total);
    let mut spans = 0;
    let ids = || {
        parts
            .iter()
            .flat_map(|p| p.spans.iter().map(|s| &p.bytes[s.span_id.clone()]))
    };
    let short_ids = || {
        parts
            .iter()
            .flat_map(|p| p.spans.iter().map(|s| s.short_id))
    };
    if total <= SMALL_TRACE && short_ids().all(|id| id.is_some()) {
        // A few spans with ids of the valid size: compared directly (cheaper than hashing).
        let mut seen: Vec<u64> = Vec::with_capacity(total);
        for id in short_ids().flatten() {
            let new = !seen.contains(&id);
            if new {
                seen.push(id);
            }
            kept.push(new);
        }
        spans = seen.len();
    } else {
        let mut seen: HashSet<&[u8]> = HashSet::with_capacity(total);
        for id in ids() {
            let new = seen.insert(id);
            spans += usize::from(new);
            kept.push(new);
        }
    }
    let offsets: Vec<usize> = parts
        .iter()
        .scan(0, |at, p| {
            let here = *at;
            *at += p.spans.len();
            Some(here)
        })
        .collect();
    let kept = &kept;
    let kept_spans = || {
        parts.iter().zip(&offsets).flat_map(|(p, &offset)| {
            p.spans
                .iter()
                .enumerate()
                .filter(move |(i, _)| kept[offset + i])
                .map(move |(_, s)| (s.root, p.level(s)))
        })
    };
    let extras = Extras::new(&trace_level(kept_spans()));
    out.reserve(
        parts.iter().map(|p| p.bytes.len()).sum::<usize>() + spans * (extras.missing_len(None) + 8),
    );
    for (part, offset) in parts.iter().zip(offsets) {
        write_part(out, part, &|i| kept[offset + i], &extras);
    }
    Assembled {
        spans,
        duplicates: total - spans,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, InstrumentationScope, any_value,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use proptest::prelude::*;

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    fn text(key: &str, value: &str) -> KeyValue {
        kv(key, any_value::Value::StringValue(value.into()))
    }

    /// Attributes a span or resource may carry: trace-level ones in each shape the server
    /// reads, and others.
    fn attribute() -> impl Strategy<Value = KeyValue> {
        use any_value::Value as V;
        prop_oneof![
            Just(text("user.id", "u-plain")),
            Just(text("langfuse.user.id", "u-langfuse")),
            Just(text("session.id", "s-plain")),
            Just(text("gen_ai.conversation.id", "conversation")),
            Just(text("langfuse.trace.name", "trace name")),
            Just(text("tag.tags", "a,b")),
            Just(kv(
                "langfuse.trace.tags",
                V::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(V::StringValue("t".into()))
                    }]
                })
            )),
            Just(kv("langfuse.trace.public", V::BoolValue(true))),
            Just(text("langfuse.release", "r-1")),
            Just(text("langfuse.version", "v-2")),
            Just(text("langfuse.environment", "staging")),
            Just(text("ai.telemetry.metadata.userId", "u-vercel")),
            Just(kv("langfuse.observation.metadata.n", V::IntValue(3))),
            Just(text("gen_ai.request.model", "gpt-4o")),
            Just(text("input.value", "question")),
            "[a-z.]{1,12}".prop_map(|k| text(&k, "x")),
        ]
    }

    fn span() -> impl Strategy<Value = Span> {
        (
            0u8..3,
            0u8..6,
            any::<bool>(),
            proptest::collection::vec(attribute(), 0..4),
            "[a-z ]{0,10}",
        )
            .prop_map(|(trace, id, root, attributes, name)| Span {
                trace_id: vec![trace + 1; 16],
                span_id: vec![id + 1; 8],
                parent_span_id: if root { Vec::new() } else { vec![9; 8] },
                name,
                start_time_unix_nano: 1_700_000_000_000_000_000,
                attributes,
                ..Span::default()
            })
    }

    fn export() -> impl Strategy<Value = ExportTraceServiceRequest> {
        let scope = (
            proptest::option::of("[a-z]{1,6}"),
            proptest::collection::vec(span(), 0..6),
        )
            .prop_map(|(name, spans)| ScopeSpans {
                scope: name.map(|name| InstrumentationScope {
                    name,
                    ..InstrumentationScope::default()
                }),
                spans,
                schema_url: "https://opentelemetry.io/schemas/1.37.0".into(),
            });
        let resource = (
            proptest::collection::vec(attribute(), 0..3),
            proptest::collection::vec(scope, 1..3),
        )
            .prop_map(|(attributes, scope_spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes,
                    ..Resource::default()
                }),
                scope_spans,
                schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
            });
        proptest::collection::vec(resource, 0..3)
            .prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
    }

    /// (resource, scope, span) of every span of an export, in order.
    type Flat = Vec<(Option<Resource>, Option<InstrumentationScope>, Span)>;

    fn flatten(request: ExportTraceServiceRequest) -> Flat {
        let mut out = Vec::new();
        for rs in request.resource_spans {
            for ss in rs.scope_spans {
                for span in ss.spans {
                    out.push((rs.resource.clone(), ss.scope.clone(), span));
                }
            }
        }
        out
    }

    /// The same assembly on decoded messages, with the full conversion's trace-level fields:
    /// per trace id in first-seen order, the spans of all `exports` (first of each span id),
    /// each with the trace's fields it lacks.
    fn reference(exports: &[ExportTraceServiceRequest]) -> Vec<(Vec<u8>, Flat, usize)> {
        // Per trace id: its spans and their own trace-level fields.
        type Spans = (Flat, Vec<TraceLevel>);
        let mut traces: Vec<(Vec<u8>, Vec<Spans>)> = Vec::new();
        for export in exports {
            let levels =
                crate::translate::trace_levels(&crate::otlp::batch_from_request(export.clone()));
            for (entry, level) in flatten(export.clone()).into_iter().zip(levels) {
                let trace = entry.2.trace_id.clone();
                let at = match traces.iter().position(|(t, _)| *t == trace) {
                    Some(at) => at,
                    None => {
                        traces.push((trace.clone(), vec![(Vec::new(), Vec::new())]));
                        traces.len() - 1
                    }
                };
                let (spans, levels) = &mut traces[at].1[0];
                spans.push(entry);
                levels.push(level);
            }
        }
        traces
            .into_iter()
            .map(|(trace, mut groups)| {
                let (spans, levels) = groups.remove(0);
                let mut seen = HashSet::new();
                let (spans, levels): (Vec<_>, Vec<_>) = spans
                    .into_iter()
                    .zip(levels)
                    .filter(|(s, _)| seen.insert(s.2.span_id.clone()))
                    .unzip();
                let duplicates = seen.len();
                let order: Vec<usize> = (0..spans.len())
                    .filter(|&i| spans[i].2.parent_span_id.is_empty())
                    .chain((0..spans.len()).filter(|&i| !spans[i].2.parent_span_id.is_empty()))
                    .collect();
                let first = |f: &dyn Fn(&TraceLevel) -> bool| {
                    order.iter().find(|&&i| f(&levels[i])).map(|&i| &levels[i])
                };
                let name = first(&|l| l.name.is_some()).and_then(|l| l.name.clone());
                let user = first(&|l| l.user_id.is_some()).and_then(|l| l.user_id.clone());
                let session = first(&|l| l.session_id.is_some()).and_then(|l| l.session_id.clone());
                let release = first(&|l| l.release.is_some()).and_then(|l| l.release.clone());
                let version = first(&|l| l.version.is_some()).and_then(|l| l.version.clone());
                let environment =
                    first(&|l| l.environment.is_some()).and_then(|l| l.environment.clone());
                let tags = first(&|l| !l.tags.is_empty()).map(|l| l.tags.clone());
                let public = first(&|l| l.public.is_some()).and_then(|l| l.public);
                let spans = spans
                    .into_iter()
                    .zip(&levels)
                    .map(|((resource, scope, mut span), own)| {
                        let strings = [
                            (keys::LANGFUSE_TRACE_NAME, &own.name, &name),
                            (keys::LANGFUSE_USER_ID, &own.user_id, &user),
                            (keys::LANGFUSE_SESSION_ID, &own.session_id, &session),
                            (keys::LANGFUSE_RELEASE, &own.release, &release),
                            (keys::LANGFUSE_VERSION, &own.version, &version),
                            (keys::LANGFUSE_ENVIRONMENT, &own.environment, &environment),
                        ];
                        for (key, mine, theirs) in strings {
                            if let (None, Some(v)) = (mine, theirs) {
                                span.attributes.push(text(key, v));
                            }
                        }
                        if let (true, Some(tags)) = (own.tags.is_empty(), &tags) {
                            let values = tags
                                .iter()
                                .map(|t| AnyValue {
                                    value: Some(any_value::Value::StringValue(t.clone())),
                                })
                                .collect();
                            span.attributes.push(kv(
                                keys::LANGFUSE_TRACE_TAGS,
                                any_value::Value::ArrayValue(ArrayValue { values }),
                            ));
                        }
                        if let (None, Some(p)) = (own.public, public) {
                            span.attributes.push(kv(
                                keys::LANGFUSE_TRACE_PUBLIC,
                                any_value::Value::BoolValue(p),
                            ));
                        }
                        (resource, scope, span)
                    })
                    .collect();
                (trace, spans, duplicates)
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Two independent paths agree: the wire-level split and assembly of two exports, and
        /// the same on decoded messages with the full conversion's trace-level fields.
        #[test]
        fn wire_assembly_equals_the_decoded_assembly(a in export(), b in export()) {
            let parts_a = split_by_trace(&a.encode_to_vec()).unwrap();
            let parts_b = split_by_trace(&b.encode_to_vec()).unwrap();
            let expected = reference(&[a, b]);
            let mut traces: Vec<Vec<u8>> = Vec::new();
            for p in parts_a.iter().chain(&parts_b) {
                if !traces.iter().any(|t| t == p.trace_id()) {
                    traces.push(p.trace_id().to_vec());
                }
            }
            prop_assert_eq!(traces.len(), expected.len());
            // Every trace appended to one buffer: one export holding them all.
            let mut one = Vec::new();
            let mut all = Vec::new();
            for (trace, (want_trace, want, kept)) in traces.iter().zip(expected) {
                prop_assert_eq!(trace, &want_trace);
                let parts: Vec<&TracePart> = parts_a
                    .iter()
                    .chain(&parts_b)
                    .filter(|p| p.trace_id() == trace.as_slice())
                    .collect();
                let mut body = Vec::new();
                let assembled = assemble(&parts, &mut body);
                prop_assert_eq!(assembled.spans, kept);
                prop_assert_eq!(
                    assembled.spans + assembled.duplicates,
                    parts.iter().map(|p| p.span_count()).sum::<usize>()
                );
                let got = ExportTraceServiceRequest::decode(&body[..]).unwrap();
                prop_assert_eq!(flatten(got), want.clone());
                assemble(&parts, &mut one);
                all.extend(want);
            }
            prop_assert_eq!(flatten(ExportTraceServiceRequest::decode(&one[..]).unwrap()), all);
        }

        /// Each part alone is its trace's spans as received, with their resources and scopes,
        /// in order; one `ResourceSpans` per resource run.
        #[test]
        fn a_part_alone_is_its_traces_spans_as_received(request in export()) {
            let parts = split_by_trace(&request.encode_to_vec()).unwrap();
            let all = flatten(request.clone());
            let mut total = 0;
            for part in &parts {
                let got = ExportTraceServiceRequest::decode(&part.to_export()[..]).unwrap();
                let resources = got.resource_spans.len();
                let got = flatten(got);
                let want: Flat = all
                    .iter()
                    .filter(|(_, _, s)| s.trace_id == part.trace_id())
                    .cloned()
                    .collect();
                prop_assert_eq!(got.len(), part.span_count());
                total += got.len();
                prop_assert_eq!(got, want);
                // Resources in the original that hold spans of the trace.
                let runs = request
                    .resource_spans
                    .iter()
                    .filter(|rs| rs.scope_spans.iter().any(|ss| ss.spans.iter().any(|s| s.trace_id == part.trace_id())))
                    .count();
                prop_assert_eq!(resources, runs);
            }
            prop_assert_eq!(total, all.len());
        }

        /// Any bytes: an error or parts, never a panic; what a decoder reads as an export is
        /// split into all its spans.
        #[test]
        fn any_bytes_split_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(parts) = split_by_trace(&bytes) {
                let _ = assemble(&parts.iter().collect::<Vec<_>>(), &mut Vec::new());
            }
        }

        #[test]
        fn every_cut_of_a_valid_export_is_an_error_or_its_spans(request in export(), cut in any::<prop::sample::Index>()) {
            let bytes = request.encode_to_vec();
            let cut = &bytes[..cut.index(bytes.len() + 1)];
            let split = split_by_trace(cut);
            if let Ok(decoded) = ExportTraceServiceRequest::decode(cut) {
                let spans: usize = split.unwrap().iter().map(TracePart::span_count).sum();
                prop_assert_eq!(spans, flatten(decoded).len());
            }
        }
    }

    #[test]
    fn fields_unknown_to_the_schema_are_kept() {
        // Span field 100 (varint 5) and ResourceSpans field 50 (a string): not in the schema.
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "s".into(),
            ..Span::default()
        };
        let mut span_bytes = span.encode_to_vec();
        span_bytes.extend_from_slice(&[0xa0, 0x06, 0x05]);
        let mut scope = vec![SPANS];
        prost::encoding::encode_varint(span_bytes.len() as u64, &mut scope);
        scope.extend_from_slice(&span_bytes);
        // Field 50, wire type 2: key 402 = varint 0x92 0x03; then length 2, "hi".
        let mut rs = vec![0x92, 0x03, 0x02, b'h', b'i'];
        rs.push(SCOPE_SPANS);
        prost::encoding::encode_varint(scope.len() as u64, &mut rs);
        rs.extend_from_slice(&scope);
        let mut export = vec![RESOURCE_SPANS];
        prost::encoding::encode_varint(rs.len() as u64, &mut export);
        export.extend_from_slice(&rs);
        let parts = split_by_trace(&export).unwrap();
        let mut body = Vec::new();
        assemble(&[&parts[0]], &mut body);
        assert_eq!(body, export, "nothing to add: the same bytes");
    }

    #[test]
    fn a_large_trace_is_kept_once_per_span_id_too() {
        for (n, ids) in [
            (SMALL_TRACE, SMALL_TRACE - 5),
            (4 * SMALL_TRACE, 3 * SMALL_TRACE),
        ] {
            let spans = (0..n)
                .map(|i| Span {
                    trace_id: vec![1; 16],
                    span_id: ((i % ids) as u64).to_be_bytes().to_vec(),
                    name: format!("s{i}"),
                    ..Span::default()
                })
                .collect();
            let export = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans,
                        ..ScopeSpans::default()
                    }],
                    ..ResourceSpans::default()
                }],
            };
            let parts = split_by_trace(&export.encode_to_vec()).unwrap();
            let mut body = Vec::new();
            let assembled = assemble(&[&parts[0]], &mut body);
            assert_eq!((assembled.spans, assembled.duplicates), (ids, n - ids));
            let names: Vec<String> = flatten(ExportTraceServiceRequest::decode(&body[..]).unwrap())
                .into_iter()
                .map(|(_, _, s)| s.name)
                .collect();
            let first: Vec<String> = (0..ids).map(|i| format!("s{i}")).collect();
            assert_eq!(names, first, "the first of each id, in order");
        }
    }

    #[test]
    fn a_length_past_the_end_or_an_unterminated_group_is_an_error() {
        assert!(split_by_trace(&[0x0b]).is_err());
        // An unknown group field (17, start and end) is skipped, as a decoder does.
        let group = [0x8b, 0x01, 0x08, 0x01, 0x8c, 0x01];
        assert!(ExportTraceServiceRequest::decode(&group[..]).is_ok());
        assert_eq!(split_by_trace(&group).unwrap(), Vec::new());
        assert!(split_by_trace(&[0x0a, 0x05, 0x00]).is_err());
        assert!(split_by_trace(&[0x00]).is_err(), "field number 0");
        assert_eq!(split_by_trace(&[]).unwrap(), Vec::new());
    }
}
