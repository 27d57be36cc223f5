//! [`Observation`]: a handle on one started observation (an OpenTelemetry span).

use std::borrow::Cow;
use std::cell::RefCell;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use langfuse_otel_core::keys;
use opentelemetry::trace::{Span as _, SpanContext, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::Span as SdkSpan;

use crate::Langfuse;
use crate::config::{MASK_FALLBACK, MaskFn};
use crate::json::{JsonStyle, to_python_json};
use crate::processor::AppRootClaim;
use crate::scores::Score;
use crate::types::{
    Encoded, Level, ObservationOptions, ObservationType, ObservationUpdate, RareFields,
};

/// An observation's span, shared by its handles and by the contexts that carry it. Held
/// directly rather than in a [`Context`], which costs two allocations to build and a lock plus
/// a dynamic call per operation; a context is built only when children or the user need one.
#[derive(Debug)]
pub(crate) struct SharedSpan {
    span_context: SpanContext,
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
    fn with(&self, f: impl FnOnce(&mut SdkSpan)) {
        self.span.with(|slot| {
            if let Some(span) = slot {
                f(span);
            }
        });
    }

    fn is_recording(&self) -> bool {
        self.recording.load(Ordering::Relaxed)
    }

    fn end_with_timestamp(&self, time: SystemTime) {
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
struct ContextSpan(Arc<SharedSpan>);

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

/// A started observation. Cloning gives another handle on the same span.
///
/// Created by [`Langfuse::start_observation`] (ended with [`end`](Self::end)), by the
/// `start_active_observation` closures (ended for you), or by [`Langfuse::create_event`].
#[derive(Debug, Clone)]
pub struct Observation {
    pub(crate) client: Langfuse,
    span: Arc<SharedSpan>,
    /// The context the observation was started in.
    parent: Context,
    as_type: ObservationType,
    /// Children need the trace's app-root claim (the parent context lacks it).
    claim: bool,
    /// The context for children: `parent` with this span (and the claim), made on first use
    /// (most observations never have children, and a context costs allocations).
    child: OnceLock<Context>,
}

impl Observation {
    pub(crate) fn new(
        client: Langfuse,
        span: SdkSpan,
        parent: &Context,
        as_type: ObservationType,
        claim: bool,
    ) -> Self {
        Observation {
            client,
            span: Arc::new(SharedSpan::new(span)),
            parent: parent.clone(),
            as_type,
            claim,
            child: OnceLock::new(),
        }
    }

    /// The context children start in: with this span and the app-root claim for the trace.
    pub(crate) fn child_context(&self) -> &Context {
        self.child.get_or_init(|| {
            let cx = self.parent.with_span(ContextSpan(self.span.clone()));
            if self.claim {
                cx.with_value(AppRootClaim(self.span.span_context.trace_id()))
            } else {
                cx
            }
        })
    }

    /// The observation (span) id: 16 lowercase hex characters.
    pub fn id(&self) -> String {
        self.span.span_context.span_id().to_string()
    }

    /// The trace id: 32 lowercase hex characters.
    pub fn trace_id(&self) -> String {
        self.span.span_context.trace_id().to_string()
    }

    /// The observation type.
    pub fn as_type(&self) -> ObservationType {
        self.as_type
    }

    /// The OpenTelemetry context with this observation as the active span (to parent spans of
    /// other libraries explicitly).
    pub fn context(&self) -> &Context {
        self.child_context()
    }

    /// Whether the span records (false when the client is disabled or the trace is sampled out).
    pub fn is_recording(&self) -> bool {
        self.span.is_recording()
    }

    /// Writes the fields that are set; later writes of a key replace earlier ones.
    /// Events cannot be updated (as in the Python SDK).
    pub fn update(&self, update: ObservationUpdate) -> &Self {
        if self.as_type == ObservationType::Event {
            tracing::debug!(target: "langfuse", "events cannot be updated");
            return self;
        }
        if !self.span.is_recording() {
            return self;
        }
        let mask = self.client.mask();
        // The attributes are built before locking: a mask function may use the span.
        let mut update = update;
        let name = update.rare.as_mut().and_then(|r| r.name.take());
        with_attribute_buffer(|attrs| {
            let status = push_update_attributes(attrs, update, self.as_type, mask);
            self.span.with(|span| {
                if let Some(name) = name {
                    span.update_name(name);
                }
                span.set_attributes(attrs.drain(..));
                if let Some(status) = status {
                    span.set_status(status);
                }
            });
        });
        self
    }

    /// Marks the observation failed: level ERROR, the status message, OTel status ERROR and
    /// an `exception` event.
    pub fn record_error(&self, type_name: &str, message: &str) {
        if !self.span.is_recording() {
            return;
        }
        let event = vec![
            KeyValue::new(keys::EXCEPTION_TYPE, type_name.to_owned()),
            KeyValue::new(keys::EXCEPTION_MESSAGE, message.to_owned()),
        ];
        self.span.with(|span| {
            span.add_event(keys::EXCEPTION_EVENT, event);
            span.set_attributes([
                KeyValue::new(keys::LANGFUSE_OBSERVATION_LEVEL, Level::Error.as_str()),
                KeyValue::new(
                    keys::LANGFUSE_OBSERVATION_STATUS_MESSAGE,
                    message.to_owned(),
                ),
            ]);
            span.set_status(Status::error(message.to_owned()));
        });
    }

    /// Marks the trace public (`langfuse.trace.public`).
    pub fn set_trace_as_public(&self) {
        self.span
            .with(|span| span.set_attribute(KeyValue::new(keys::LANGFUSE_TRACE_PUBLIC, true)));
    }

    /// Ends the observation now.
    pub fn end(&self) {
        self.span.end_with_timestamp(opentelemetry::time::now());
    }

    /// Ends the observation at `time`.
    pub fn end_at(&self, time: SystemTime) {
        self.span.end_with_timestamp(time);
    }

    /// Starts a child observation (not made current; call [`end`](Self::end)).
    pub fn start_observation(&self, options: impl Into<ObservationOptions>) -> Observation {
        self.client.start_in(options.into(), self.child_context())
    }

    /// Runs `body` inside a child observation of this one (see
    /// [`Langfuse::start_active_observation`]).
    pub async fn start_active_observation<O, F, Fut, T>(&self, options: O, body: F) -> T
    where
        O: Into<ObservationOptions>,
        F: FnOnce(Observation) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let obs = self.client.start_in(options.into(), self.child_context());
        crate::client::run_active(obs, body, |_: &T| None).await
    }

    /// Like [`start_active_observation`](Self::start_active_observation) for a body returning
    /// `Result`: an `Err` marks the child ERROR (level, status message = the error's `Display`,
    /// OTel status, `exception` event) and is returned unchanged (see
    /// [`Langfuse::try_start_active_observation`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let langfuse = langfuse_otel::Langfuse::disabled();
    /// let root = langfuse.start_observation("root");
    /// let r: Result<u32, String> = root
    ///     .try_start_active_observation("step", |_obs| async { Err("boom".to_owned()) })
    ///     .await;
    /// assert_eq!(r, Err("boom".to_owned()));
    /// root.end();
    /// # }
    /// ```
    pub async fn try_start_active_observation<O, F, Fut, T, E>(
        &self,
        options: O,
        body: F,
    ) -> Result<T, E>
    where
        O: Into<ObservationOptions>,
        F: FnOnce(Observation) -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let obs = self.client.start_in(options.into(), self.child_context());
        crate::active::run_active(obs, body, crate::active::error_of::<T, E>).await
    }

    /// Synchronous form of [`try_start_active_observation`](Self::try_start_active_observation).
    ///
    /// ```
    /// let langfuse = langfuse_otel::Langfuse::disabled();
    /// let root = langfuse.start_observation("root");
    /// let r: Result<u8, std::fmt::Error> = root.try_start_active_observation_sync("step", |_| Ok(1));
    /// assert_eq!(r, Ok(1));
    /// root.end();
    /// ```
    pub fn try_start_active_observation_sync<O, T, E>(
        &self,
        options: O,
        body: impl FnOnce(Observation) -> Result<T, E>,
    ) -> Result<T, E>
    where
        O: Into<ObservationOptions>,
        E: std::fmt::Display,
    {
        let obs = self.client.start_in(options.into(), self.child_context());
        crate::active::run_active_sync(obs, body, crate::active::error_of::<T, E>)
    }

    /// Synchronous form of [`start_active_observation`](Self::start_active_observation).
    pub fn start_active_observation_sync<O, T>(
        &self,
        options: O,
        body: impl FnOnce(Observation) -> T,
    ) -> T
    where
        O: Into<ObservationOptions>,
    {
        let obs = self.client.start_in(options.into(), self.child_context());
        crate::client::run_active_sync(obs, body, |_: &T| None)
    }

    /// Records a zero-duration event under this observation.
    pub fn create_event(&self, options: impl Into<ObservationOptions>) -> Observation {
        self.client.event_in(options.into(), self.child_context())
    }

    /// Scores this observation.
    pub fn score(&self, score: Score) {
        let score = score.trace_id(self.trace_id()).observation_id(self.id());
        self.client
            .enqueue_score(score, Some(self.span.span_context.is_sampled()));
    }

    /// Scores this observation's trace.
    pub fn score_trace(&self, score: Score) {
        let score = score.trace_id(self.trace_id());
        self.client
            .enqueue_score(score, Some(self.span.span_context.is_sampled()));
    }
}

/// Applies the mask; a panicking mask yields the fallback string.
fn masked(value: &serde_json::Value, mask: Option<&MaskFn>) -> serde_json::Value {
    match mask {
        None => value.clone(),
        Some(mask) => {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mask(value.clone())))
                .unwrap_or_else(|_| serde_json::Value::String(MASK_FALLBACK.to_owned()))
        }
    }
}

/// Input/output text, masked when a mask is configured.
fn io_text(value: Encoded, mask: Option<&MaskFn>) -> String {
    match mask {
        None => value.text,
        Some(_) => match masked(&value.to_value(), mask) {
            serde_json::Value::String(s) => s,
            other => to_python_json(&other, JsonStyle::Python),
        },
    }
}

/// Runs `f` with an empty attribute vector reused on this thread (an update's attributes move
/// on into the span, so the vector itself need not be allocated each time).
fn with_attribute_buffer<R>(f: impl FnOnce(&mut Vec<KeyValue>) -> R) -> R {
    thread_local! {
        static BUFFER: RefCell<Vec<KeyValue>> = const { RefCell::new(Vec::new()) };
    }
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            f(&mut buf)
        }
        // Re-entered (from a mask function): a fresh vector.
        Err(_) => f(&mut Vec::new()),
    })
}

/// Appends the attributes an update writes to `out`; returns the span status it implies
/// (level ERROR).
pub(crate) fn push_update_attributes(
    out: &mut Vec<KeyValue>,
    u: ObservationUpdate,
    as_type: ObservationType,
    mask: Option<&MaskFn>,
) -> Option<Status> {
    let rare = u.rare.map_or_else(RareFields::default, |r| *r);
    if let Some(level) = rare.level {
        out.push(KeyValue::new(
            keys::LANGFUSE_OBSERVATION_LEVEL,
            level.as_str(),
        ));
    }
    if let Some(m) = &rare.status_message {
        out.push(KeyValue::new(
            keys::LANGFUSE_OBSERVATION_STATUS_MESSAGE,
            m.clone(),
        ));
    }
    if let Some(v) = rare.version {
        out.push(KeyValue::new(keys::LANGFUSE_VERSION, v));
    }
    if let Some(v) = u.input {
        out.push(KeyValue::new(
            keys::LANGFUSE_OBSERVATION_INPUT,
            io_text(v, mask),
        ));
    }
    if let Some(v) = u.output {
        out.push(KeyValue::new(
            keys::LANGFUSE_OBSERVATION_OUTPUT,
            io_text(v, mask),
        ));
    }
    if let Some(skills) = &rare.skills_available {
        out.push(KeyValue::new(
            keys::LANGFUSE_OBSERVATION_SKILLS_AVAILABLE,
            skills.clone(),
        ));
    }
    if let Some(md) = &rare.metadata {
        match masked(md, mask) {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if v.is_null() {
                        continue;
                    }
                    out.push(KeyValue::new(
                        format!("{}.{k}", keys::LANGFUSE_OBSERVATION_METADATA),
                        to_python_json(&v, JsonStyle::Compact),
                    ));
                }
            }
            serde_json::Value::String(s) if s == MASK_FALLBACK && md.is_object() => {
                for k in md.as_object().into_iter().flat_map(|m| m.keys()) {
                    out.push(KeyValue::new(
                        format!("{}.{k}", keys::LANGFUSE_OBSERVATION_METADATA),
                        MASK_FALLBACK,
                    ));
                }
            }
            other => out.push(KeyValue::new(
                keys::LANGFUSE_OBSERVATION_METADATA,
                to_python_json(&other, JsonStyle::Compact),
            )),
        }
    }
    let has_generation_fields = u.model.is_some()
        || u.model_parameters.is_some()
        || u.usage_details.is_some()
        || rare.cost_details.is_some()
        || rare.completion_start_time.is_some()
        || rare.prompt.is_some();
    if has_generation_fields && !crate::types::takes_generation_fields(as_type) {
        tracing::warn!(
            target: "langfuse",
            "generation fields on a {} observation are ignored (use `generation` or `embedding`)",
            as_type.as_str()
        );
    }
    if crate::types::takes_generation_fields(as_type) {
        if let Some(m) = u.model {
            out.push(KeyValue::new(keys::LANGFUSE_OBSERVATION_MODEL_NAME, m));
        }
        let json = |k: &'static str, v: Option<String>, out: &mut Vec<KeyValue>| {
            if let Some(v) = v {
                out.push(KeyValue::new(k, v));
            }
        };
        json(
            keys::LANGFUSE_OBSERVATION_MODEL_PARAMETERS,
            u.model_parameters,
            out,
        );
        json(
            keys::LANGFUSE_OBSERVATION_USAGE_DETAILS,
            u.usage_details,
            out,
        );
        json(
            keys::LANGFUSE_OBSERVATION_COST_DETAILS,
            rare.cost_details,
            out,
        );
        if let Some(t) = rare.completion_start_time {
            out.push(KeyValue::new(
                keys::LANGFUSE_OBSERVATION_COMPLETION_START_TIME,
                format!("\"{}\"", langfuse_otel_core::time::format_iso_micros(t)),
            ));
        }
        if let Some(p) = rare.prompt.as_ref().filter(|p| !p.is_fallback) {
            p.push_key_values(out);
        }
    }
    (rare.level == Some(Level::Error))
        .then(|| Status::error(Cow::Owned(rare.status_message.unwrap_or_default())))
}
