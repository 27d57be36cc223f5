//! The span behind an observation: one SDK span shared by the observation's handles and by
//! the OpenTelemetry contexts that carry it as their active span.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanContext, Status};
use opentelemetry_sdk::trace::Span as SdkSpan;

/// An observation's span, shared by its handles and by the contexts that carry it. Held
/// directly rather than in a [`Context`], which costs two allocations to build and a lock plus
/// a dynamic call per operation; a context is built only when children or the user need one.
#[derive(Debug)]
pub(crate) struct SharedSpan {
    pub(crate) span_context: SpanContext,
    /// Cleared when the span ends (every end goes through here): lets updates of ended or
    /// unsampled spans skip encoding without taking the lock.
    recording: AtomicBool,
    span: SpanCell,
}

impl SharedSpan {
    #[inline]
    pub(crate) fn new(span: SdkSpan) -> Self {
        SharedSpan {
            span_context: span.span_context().clone(),
            recording: AtomicBool::new(span.is_recording()),
            // Boxed once here: the SDK span is large, and every later move (into the shared
            // cell, out of it to end it) then copies a pointer instead of the span.
            span: SpanCell::new(Box::new(span)),
        }
    }

    /// Runs `f` on the span unless it has ended.
    pub(crate) fn with(&self, f: impl FnOnce(&mut SdkSpan)) {
        self.span.with(|slot| {
            if let Some(span) = slot {
                f(span);
            }
        });
    }

    pub(crate) fn is_recording(&self) -> bool {
        self.recording.load(Ordering::Relaxed)
    }

    pub(crate) fn end_with_timestamp(&self, time: SystemTime) {
        self.recording.store(false, Ordering::Relaxed);
        // Ended outside the lock: the processors run user code.
        if let Some(mut span) = self.span.with(Option::take) {
            span.end_with_timestamp(time);
        }
    }
}

/// The span slot. Every critical section is a few writes into the span data (it is taken out
/// to be ended, so processors never run under the lock), so contention is brief and rare.
#[derive(Debug)]
struct SpanCell(Mutex<Option<Box<SdkSpan>>>);

impl SpanCell {
    #[inline]
    fn new(span: Box<SdkSpan>) -> Self {
        SpanCell(Mutex::new(Some(span)))
    }

    /// Runs `f` with exclusive access to the slot. `f` must not call back into this cell
    /// (the span's own methods never run user code; ending does, and happens outside).
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Option<Box<SdkSpan>>) -> R) -> R {
        // A panic under the lock leaves a consistent slot: a poisoned lock is still usable.
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The observation's span as a context carries it (for children, `Context::current()` and
/// other libraries): every call goes to the shared span.
#[derive(Debug)]
pub(crate) struct ContextSpan(pub(crate) Arc<SharedSpan>);

impl opentelemetry::trace::Span for ContextSpan {
    fn add_event_with_timestamp<T>(&mut self, name: T, timestamp: SystemTime, attrs: Vec<KeyValue>)
    where
        T: Into<Cow<'static, str>>,
    {
        self.0
            .with(|span| span.add_event_with_timestamp(name, timestamp, attrs));
    }

    fn span_context(&self) -> &SpanContext {
        &self.0.span_context
    }

    fn is_recording(&self) -> bool {
        self.0.is_recording()
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        self.0.with(|span| span.set_attribute(attribute));
    }

    fn set_attributes(&mut self, attributes: impl IntoIterator<Item = KeyValue>) {
        self.0.with(|span| span.set_attributes(attributes));
    }

    fn set_status(&mut self, status: Status) {
        self.0.with(|span| span.set_status(status));
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        self.0.with(|span| span.update_name(new_name));
    }

    fn add_link(&mut self, span_context: SpanContext, attributes: Vec<KeyValue>) {
        self.0.with(|span| span.add_link(span_context, attributes));
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        self.0.end_with_timestamp(timestamp);
    }
}
