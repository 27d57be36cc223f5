//! [`Observation`]: a handle on one started observation (an OpenTelemetry span), and
//! [`Parent`]: where new observations start (a client's recorder and a parent context), with
//! the starters written once for both [`crate::Langfuse`] (the current context) and
//! [`Observation`] (its own children).

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use langfuse_otel_core::keys;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, Span as SdkSpan};

use crate::active::{ActiveHandle, error_of, run_active, run_active_sync};
use crate::attributes::{push_update_attributes, with_attribute_buffer};
use crate::processor::{AppRootClaim, SdkSpanStart, push_start_attributes, with_sdk_start};
use crate::recorder::{ActiveRecorder, Recorder};
use crate::scores::Score;
use crate::span_handle::{ContextSpan, SharedSpan};
use crate::types::{
    Level, ObservationOptions, ObservationType, ObservationUpdate, TraceContext,
    takes_generation_fields,
};

/// Initial attribute capacity of an observation's span.
const SPAN_ATTRIBUTE_CAPACITY: usize = 16;

/// A started observation. Cloning gives another handle on the same span.
///
/// Created by [`Langfuse::start_observation`](crate::Langfuse::start_observation) (ended with
/// [`end`](Self::end)), by the `start_active_observation` closures (ended for you), or by
/// [`Langfuse::create_event`](crate::Langfuse::create_event). It records into the client that
/// started it, and so do its children (also those of `#[observe]`).
#[derive(Debug, Clone)]
pub struct Observation {
    recorder: Arc<Recorder>,
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
    fn new(
        recorder: Arc<Recorder>,
        span: SdkSpan,
        parent: &Context,
        as_type: ObservationType,
        claim: bool,
    ) -> Self {
        Observation {
            recorder,
            span: Arc::new(SharedSpan::new(span)),
            parent: parent.clone(),
            as_type,
            claim,
            child: OnceLock::new(),
        }
    }

    /// The context children start in: with this span, the app-root claim for the trace, and
    /// this client's recorder (each added only where the parent context lacks it).
    pub(crate) fn child_context(&self) -> &Context {
        self.child.get_or_init(|| {
            let mut cx = self.parent.with_span(ContextSpan(self.span.clone()));
            if self.claim {
                cx = cx.with_value(AppRootClaim(self.span.span_context.trace_id()));
            }
            let inherited = self
                .parent
                .get::<ActiveRecorder>()
                .is_some_and(|r| Arc::ptr_eq(&r.0, &self.recorder));
            if !inherited {
                cx = cx.with_value(ActiveRecorder(Arc::clone(&self.recorder)));
            }
            cx
        })
    }

    /// Where this observation's children start.
    fn children(&self) -> Parent<'_> {
        Parent {
            recorder: &self.recorder,
            context: self.child_context(),
        }
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
        let mask = self.recorder.mask();
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
        self.children().start(options.into())
    }

    /// Runs `body` inside a child observation of this one (see
    /// [`Langfuse::start_active_observation`](crate::Langfuse::start_active_observation)).
    pub async fn start_active_observation<O, F, Fut, T>(&self, options: O, body: F) -> T
    where
        O: Into<ObservationOptions>,
        F: FnOnce(Observation) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        self.children().active(options.into(), body).await
    }

    /// Like [`start_active_observation`](Self::start_active_observation) for a body returning
    /// `Result`: an `Err` marks the child ERROR (level, status message = the error's `Display`,
    /// OTel status, `exception` event) and is returned unchanged (see
    /// [`Langfuse::try_start_active_observation`](crate::Langfuse::try_start_active_observation)).
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
        self.children().try_active(options.into(), body).await
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
        self.children().try_active_sync(options.into(), body)
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
        self.children().active_sync(options.into(), body)
    }

    /// Records a zero-duration event under this observation.
    pub fn create_event(&self, options: impl Into<ObservationOptions>) -> Observation {
        self.children().event(options.into())
    }

    /// Scores this observation.
    pub fn score(&self, score: Score) {
        let score = score.trace_id(self.trace_id()).observation_id(self.id());
        self.recorder
            .enqueue_score(score, Some(self.span.span_context.is_sampled()));
    }

    /// Scores this observation's trace.
    pub fn score_trace(&self, score: Score) {
        let score = score.trace_id(self.trace_id());
        self.recorder
            .enqueue_score(score, Some(self.span.span_context.is_sampled()));
    }
}

impl ActiveHandle for Observation {
    fn child_context(&self) -> &Context {
        Observation::child_context(self)
    }

    fn record_error(&self, type_name: &str, message: &str) {
        Observation::record_error(self, type_name, message);
    }

    fn end(&self) {
        Observation::end(self);
    }
}

/// Where new observations start: the recorder of the client they record into and the
/// context they start in (the current one for a client, an observation's own for its
/// children). The six ways of starting one are written here once.
pub(crate) struct Parent<'a> {
    pub(crate) recorder: &'a Arc<Recorder>,
    pub(crate) context: &'a Context,
}

impl Parent<'_> {
    /// Starts a span for `opts` under this parent (or its explicit trace context).
    pub(crate) fn start(&self, opts: ObservationOptions) -> Observation {
        let as_type = opts.as_type;
        let remote;
        let parent = match &opts.trace_context {
            Some(tc) => match remote_parent(tc) {
                Some(sc) => {
                    remote = self.context.with_remote_span_context(sc);
                    &remote
                }
                None => {
                    tracing::warn!(target: "langfuse", "invalid trace_context {tc:?}: ignored");
                    self.context
                }
            },
            None => self.context,
        };
        // Room for what the processor adds at start and for typical updates: the span keeps
        // this vector, so it never grows on the way.
        let mut attrs = Vec::with_capacity(SPAN_ATTRIBUTE_CAPACITY);
        attrs.push(KeyValue::new(
            keys::LANGFUSE_OBSERVATION_TYPE,
            as_type.as_str(),
        ));
        if let Some(c) = &self.recorder.config {
            if let Some(env) = &c.environment {
                attrs.push(KeyValue::new(keys::LANGFUSE_ENVIRONMENT, env.clone()));
            }
            if let Some(rel) = &c.release {
                attrs.push(KeyValue::new(keys::LANGFUSE_RELEASE, rel.clone()));
            }
        }
        if opts.trace_context.is_some() {
            attrs.push(KeyValue::new(keys::LANGFUSE_INTERNAL_AS_ROOT, true));
        }
        let explicit_prompt =
            opts.fields.prompt_ref().is_some() && takes_generation_fields(as_type);
        let status = push_update_attributes(&mut attrs, opts.fields, as_type, self.recorder.mask());
        // Propagated attributes reach the SDK's spans even on a provider without our processor.
        push_start_attributes(&mut attrs, parent, explicit_prompt);
        let mut builder = self
            .recorder
            .tracer
            .span_builder(opts.name)
            .with_kind(SpanKind::Internal)
            .with_attributes(attrs);
        if let Some(t) = opts.start_time {
            builder = builder.with_start_time(t);
        }
        let marker = SdkSpanStart;
        let tracer = &self.recorder.tracer;
        let mut span = with_sdk_start(marker, || tracer.build_with_context(builder, parent));
        let trace_id = opentelemetry::trace::Span::span_context(&span).trace_id();
        // Spans of this trace below an SDK observation are never application roots. The claim
        // is inherited, so only the first observation of a trace in a context pays for it, and
        // only once it has children.
        let claimed = parent
            .get::<AppRootClaim>()
            .is_some_and(|c| c.0 == trace_id);
        if let Some(status) = status {
            opentelemetry::trace::Span::set_status(&mut span, status);
        }
        Observation::new(Arc::clone(self.recorder), span, parent, as_type, !claimed)
    }

    /// Records a zero-duration event.
    pub(crate) fn event(&self, opts: ObservationOptions) -> Observation {
        let now = opts.start_time.unwrap_or_else(SystemTime::now);
        let opts = ObservationOptions {
            as_type: ObservationType::Event,
            ..opts
        }
        .start_time(now);
        let obs = self.start(opts);
        obs.end_at(now);
        obs
    }

    /// Runs `body` in a new active observation (ended when it returns; a panic marks it ERROR).
    pub(crate) async fn active<F, Fut, T>(&self, opts: ObservationOptions, body: F) -> T
    where
        F: FnOnce(Observation) -> Fut,
        Fut: Future<Output = T>,
    {
        run_active(self.start(opts), body, |_: &T| None).await
    }

    /// Like [`active`](Self::active); an `Err` also marks the observation ERROR.
    pub(crate) async fn try_active<F, Fut, T, E>(
        &self,
        opts: ObservationOptions,
        body: F,
    ) -> Result<T, E>
    where
        F: FnOnce(Observation) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        run_active(self.start(opts), body, error_of::<T, E>).await
    }

    /// Synchronous form of [`active`](Self::active).
    pub(crate) fn active_sync<T>(
        &self,
        opts: ObservationOptions,
        body: impl FnOnce(Observation) -> T,
    ) -> T {
        run_active_sync(self.start(opts), body, |_: &T| None)
    }

    /// Synchronous form of [`try_active`](Self::try_active).
    pub(crate) fn try_active_sync<T, E: fmt::Display>(
        &self,
        opts: ObservationOptions,
        body: impl FnOnce(Observation) -> Result<T, E>,
    ) -> Result<T, E> {
        run_active_sync(self.start(opts), body, error_of::<T, E>)
    }
}

/// The remote parent an explicit trace context names (`None` when it is invalid).
fn remote_parent(tc: &TraceContext) -> Option<SpanContext> {
    let trace_id = TraceId::from_hex(&tc.trace_id)
        .ok()
        .filter(|t| *t != TraceId::INVALID)?;
    if tc.trace_id.len() != 32 {
        return None;
    }
    let span_id = match &tc.parent_span_id {
        Some(p) if p.len() == 16 => SpanId::from_hex(p).ok().filter(|s| *s != SpanId::INVALID)?,
        Some(_) => return None,
        None => RandomIdGenerator::default().new_span_id(),
    };
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}
