//! [`Langfuse`]: the client. Starts observations, sends scores, flushes. Building it lives in
//! `builder`, the process-wide client in `global`, running an active observation's body in
//! `active`; none of them is imported here but `active`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use langfuse_otel_core::keys;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, SdkTracer, SdkTracerProvider,
    ShouldSample,
};
use sha2::{Digest, Sha256};

use crate::config::{Config, LangfuseBuilder, MaskFn};
use crate::observation::{Observation, push_update_attributes};
use crate::processor::{AppRootClaim, SCOPE_NAME, SdkSpanStart, with_sdk_start};
use crate::scores::{Score, ScoreQueue};
use crate::transport::SDK_VERSION;
use crate::types::{ObservationOptions, ObservationType, ObservationUpdate, TraceContext};
use crate::{Error, Result};

use crate::active::error_of;
pub(crate) use crate::active::{run_active, run_active_sync};

/// The Langfuse client: cheap to clone, safe to share across threads and tasks.
///
/// ```
/// use langfuse_otel::{Langfuse, ObservationOptions, ObservationType};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let langfuse = Langfuse::builder().build(); // no keys: disabled, never panics
/// let answer = langfuse
///     .start_active_observation("rag-pipeline", |root| async move {
///         let vector = root
///             .start_active_observation(
///                 ObservationOptions::new("embed", ObservationType::Embedding).input("question"),
///                 |_emb| async { vec![0.1, 0.2] },
///             )
///             .await;
///         vector.len()
///     })
///     .await;
/// assert_eq!(answer, 2);
/// langfuse.flush().ok();
/// # }
/// ```
#[derive(Clone)]
pub struct Langfuse {
    pub(crate) inner: Arc<Inner>,
}

/// What every clone of a client and every observation it starts share: the tracer, the
/// provider, the resolved configuration, the sampler and the score queue.
pub(crate) struct Inner {
    pub(crate) tracer: SdkTracer,
    pub(crate) provider: SdkTracerProvider,
    pub(crate) owns_provider: bool,
    pub(crate) enabled: bool,
    pub(crate) config: Option<Config>,
    pub(crate) sampler: Option<Sampler>,
    pub(crate) scores: Option<ScoreQueue>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.owns_provider && self.enabled {
            let _ = self.provider.shutdown();
        }
    }
}

impl fmt::Debug for Langfuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Langfuse")
            .field("enabled", &self.inner.enabled)
            .field(
                "base_url",
                &self.inner.config.as_ref().map(|c| c.base_url.as_str()),
            )
            .finish_non_exhaustive()
    }
}

pub(crate) fn scope(public_key: Option<&str>) -> InstrumentationScope {
    let mut b = InstrumentationScope::builder(SCOPE_NAME).with_version(SDK_VERSION);
    if let Some(pk) = public_key {
        b = b.with_attributes([KeyValue::new(
            keys::SCOPE_ATTRIBUTE_PUBLIC_KEY,
            pk.to_owned(),
        )]);
    }
    b.build()
}

/// Initial attribute capacity of an observation's span.
const SPAN_ATTRIBUTE_CAPACITY: usize = 16;

impl Langfuse {
    /// Counters of the score queue: scores sent, dropped (queue full, rejected, or undelivered
    /// at shutdown) and retried. All zero for a disabled client.
    pub fn score_stats(&self) -> crate::ScoreStats {
        self.inner
            .scores
            .as_ref()
            .map(ScoreQueue::stats)
            .unwrap_or_default()
    }

    /// A builder with defaults (no environment variables read).
    pub fn builder() -> LangfuseBuilder {
        LangfuseBuilder::new()
    }

    /// A client configured from the `LANGFUSE_*` environment variables.
    pub fn from_env() -> Langfuse {
        LangfuseBuilder::from_env().build()
    }

    /// A disabled client: closures run, nothing is recorded or sent.
    pub fn disabled() -> Langfuse {
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOff)
            .build();
        let tracer = provider.tracer_with_scope(scope(None));
        Langfuse {
            inner: Arc::new(Inner {
                tracer,
                provider,
                owns_provider: true,
                enabled: false,
                config: None,
                sampler: None,
                scores: None,
            }),
        }
    }

    /// A client recording into `provider` without any network transport of its own (for tests
    /// and for pipelines that export elsewhere). Scores are discarded.
    pub fn with_provider(provider: SdkTracerProvider, public_key: Option<&str>) -> Langfuse {
        let tracer = provider.tracer_with_scope(scope(public_key));
        Langfuse {
            inner: Arc::new(Inner {
                tracer,
                provider,
                owns_provider: false,
                enabled: true,
                config: None,
                sampler: None,
                scores: None,
            }),
        }
    }

    /// Whether the client records and sends.
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled
    }

    pub(crate) fn mask(&self) -> Option<&MaskFn> {
        self.inner.config.as_ref().and_then(|c| c.mask.as_ref())
    }

    /// Whether `#[observe]` captures input/output by default.
    pub fn io_capture_enabled(&self) -> bool {
        self.inner
            .config
            .as_ref()
            .is_none_or(|c| c.io_capture_enabled)
    }

    /// Starts a span for `opts` under `parent` (or its explicit trace context).
    pub(crate) fn start_in(&self, opts: ObservationOptions, parent: &Context) -> Observation {
        let as_type = opts.as_type;
        let remote;
        let parent = match &opts.trace_context {
            Some(tc) => match remote_parent(tc) {
                Some(sc) => {
                    remote = parent.with_remote_span_context(sc);
                    &remote
                }
                None => {
                    tracing::warn!(target: "langfuse", "invalid trace_context {tc:?}: ignored");
                    parent
                }
            },
            None => parent,
        };
        // Room for what the processor adds at start and for typical updates: the span keeps
        // this vector, so it never grows on the way.
        let mut attrs = Vec::with_capacity(SPAN_ATTRIBUTE_CAPACITY);
        attrs.push(KeyValue::new(
            keys::LANGFUSE_OBSERVATION_TYPE,
            as_type.as_str(),
        ));
        if let Some(c) = &self.inner.config {
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
            opts.fields.prompt_ref().is_some() && crate::types::takes_generation_fields(as_type);
        let status = push_update_attributes(&mut attrs, opts.fields, as_type, self.mask());
        // Propagated attributes reach the SDK's spans even on a provider without our processor.
        crate::processor::push_start_attributes(&mut attrs, parent, explicit_prompt);
        let mut builder = self
            .inner
            .tracer
            .span_builder(opts.name)
            .with_kind(SpanKind::Internal)
            .with_attributes(attrs);
        if let Some(t) = opts.start_time {
            builder = builder.with_start_time(t);
        }
        let marker = SdkSpanStart;
        let tracer = &self.inner.tracer;
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
        Observation::new(self.clone(), span, parent, as_type, !claimed)
    }

    pub(crate) fn event_in(&self, opts: ObservationOptions, parent: &Context) -> Observation {
        let now = opts.start_time.unwrap_or_else(SystemTime::now);
        let opts = ObservationOptions {
            as_type: ObservationType::Event,
            ..opts
        }
        .start_time(now);
        let obs = self.start_in(opts, parent);
        obs.end_at(now);
        obs
    }

    /// Starts an observation under the current context. It is not made current: call
    /// [`Observation::end`], and create children with [`Observation::start_observation`].
    pub fn start_observation(&self, options: impl Into<ObservationOptions>) -> Observation {
        self.start_in(options.into(), &Context::current())
    }

    /// Records a zero-duration event under the current context.
    pub fn create_event(&self, options: impl Into<ObservationOptions>) -> Observation {
        self.event_in(options.into(), &Context::current())
    }

    /// Runs `body` inside a new observation that is current for everything `body` starts,
    /// across `.await` points, then ends it and returns `body`'s value. A panic marks the
    /// observation ERROR and resumes. For `Result`s use
    /// [`try_start_active_observation`](Self::try_start_active_observation).
    pub async fn start_active_observation<O, F, Fut, T>(&self, options: O, body: F) -> T
    where
        O: Into<ObservationOptions>,
        F: FnOnce(Observation) -> Fut,
        Fut: Future<Output = T>,
    {
        let obs = self.start_in(options.into(), &Context::current());
        run_active(obs, body, |_: &T| None).await
    }

    /// Like [`start_active_observation`](Self::start_active_observation) for a body returning
    /// `Result`: an `Err` marks the observation ERROR (level, status message = the error's
    /// `Display`, OTel status, `exception` event) and is returned unchanged.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let langfuse = langfuse_otel::Langfuse::disabled();
    /// let r: Result<u32, String> = langfuse
    ///     .try_start_active_observation("step", |_obs| async { Err("boom".to_owned()) })
    ///     .await;
    /// assert_eq!(r, Err("boom".to_owned()));
    /// # }
    /// ```
    pub async fn try_start_active_observation<O, F, Fut, T, E>(
        &self,
        options: O,
        body: F,
    ) -> std::result::Result<T, E>
    where
        O: Into<ObservationOptions>,
        F: FnOnce(Observation) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: fmt::Display,
    {
        let obs = self.start_in(options.into(), &Context::current());
        run_active(obs, body, error_of::<T, E>).await
    }

    /// Synchronous form of [`start_active_observation`](Self::start_active_observation).
    ///
    /// ```
    /// let langfuse = langfuse_otel::Langfuse::disabled();
    /// let n = langfuse.start_active_observation_sync("sync-step", |_obs| 1 + 1);
    /// assert_eq!(n, 2);
    /// ```
    pub fn start_active_observation_sync<O, T>(
        &self,
        options: O,
        body: impl FnOnce(Observation) -> T,
    ) -> T
    where
        O: Into<ObservationOptions>,
    {
        let obs = self.start_in(options.into(), &Context::current());
        run_active_sync(obs, body, |_: &T| None)
    }

    /// Synchronous form of [`try_start_active_observation`](Self::try_start_active_observation).
    pub fn try_start_active_observation_sync<O, T, E>(
        &self,
        options: O,
        body: impl FnOnce(Observation) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        O: Into<ObservationOptions>,
        E: fmt::Display,
    {
        let obs = self.start_in(options.into(), &Context::current());
        run_active_sync(obs, body, error_of::<T, E>)
    }

    /// Updates the current observation's span fields (input, output, metadata, level, status
    /// message, version); generation fields are ignored. No-op without a current span. Like
    /// the Python SDK's `update_current_span`.
    pub fn update_current_span(&self, update: ObservationUpdate) {
        self.update_current(update, ObservationType::Span);
    }

    /// Updates the current observation including generation fields (model, parameters, usage,
    /// cost, completion start time, prompt). No-op without a current span. Like the Python
    /// SDK's `update_current_generation`.
    ///
    /// ```
    /// use langfuse_otel::{Langfuse, ObservationUpdate};
    /// let langfuse = Langfuse::disabled();
    /// langfuse.start_active_observation_sync("call-llm", |_| {
    ///     langfuse.update_current_generation(ObservationUpdate::new().model("gpt-4o-mini"));
    /// });
    /// ```
    pub fn update_current_generation(&self, update: ObservationUpdate) {
        self.update_current(update, ObservationType::Generation);
    }

    fn update_current(&self, update: ObservationUpdate, as_type: ObservationType) {
        let cx = Context::current();
        if !cx.has_active_span() {
            tracing::warn!(target: "langfuse", "no current observation: update ignored");
            return;
        }
        let span = cx.span();
        if !span.is_recording() {
            return;
        }
        let mut update = update;
        let name = update.rare.as_mut().and_then(|r| r.name.take());
        let mut attrs = Vec::new();
        let status = push_update_attributes(&mut attrs, update, as_type, self.mask());
        if let Some(name) = name {
            span.update_name(name);
        }
        span.set_attributes(attrs);
        if let Some(status) = status {
            span.set_status(status);
        }
    }

    /// Marks the current trace public.
    pub fn set_current_trace_as_public(&self) {
        Context::current()
            .span()
            .set_attribute(KeyValue::new(keys::LANGFUSE_TRACE_PUBLIC, true));
    }

    /// Queues a score (sent in the background). Scores of sampled-out traces are dropped.
    pub fn create_score(&self, score: Score) {
        self.enqueue_score(score, None);
    }

    /// Scores the current observation.
    pub fn score_current_observation(&self, score: Score) {
        let cx = Context::current();
        let sc = cx.span().span_context().clone();
        if !sc.is_valid() {
            tracing::warn!(target: "langfuse", "no current observation: score dropped");
            return;
        }
        let score = score
            .trace_id(sc.trace_id().to_string())
            .observation_id(sc.span_id().to_string());
        self.enqueue_score(score, Some(sc.is_sampled()));
    }

    /// Scores the current trace.
    pub fn score_current_trace(&self, score: Score) {
        let cx = Context::current();
        let sc = cx.span().span_context().clone();
        if !sc.is_valid() {
            tracing::warn!(target: "langfuse", "no current trace: score dropped");
            return;
        }
        self.enqueue_score(
            score.trace_id(sc.trace_id().to_string()),
            Some(sc.is_sampled()),
        );
    }

    pub(crate) fn enqueue_score(&self, score: Score, sampled: Option<bool>) {
        let (Some(queue), Some(config)) = (&self.inner.scores, &self.inner.config) else {
            return;
        };
        let keep = match (sampled, &self.inner.sampler, &score.trace_id) {
            (Some(s), _, _) => s,
            (None, Some(sampler), Some(tid)) => match TraceId::from_hex(tid) {
                Ok(tid) => {
                    sampler
                        .should_sample(None, tid, "", &SpanKind::Internal, &[], &[])
                        .decision
                        == SamplingDecision::RecordAndSample
                }
                Err(_) => true,
            },
            _ => true,
        };
        if !keep {
            return;
        }
        let id = RandomIdGenerator::default().new_span_id().to_string();
        queue.push(score.to_json(id, config.environment.as_deref()));
    }

    /// Sends everything recorded so far (spans and scores) and waits for it (at most 30 s
    /// for the spans, then 30 s for the scores).
    pub fn flush(&self) -> Result<()> {
        if !self.inner.enabled {
            return Ok(());
        }
        let started = Instant::now();
        let spans = self.inner.provider.force_flush();
        let scores = self.wait_scores(Duration::from_secs(30));
        self.debug_outcome("flush", &spans, &scores, started);
        scores?;
        spans.map_err(|e| Error::Transport(e.to_string()))
    }

    /// Flushes, then shuts the client's own tracer provider down (a user's provider is left
    /// running). Later spans are not recorded. Waits at most 30 s; see
    /// [`shutdown_with_timeout`](Self::shutdown_with_timeout).
    pub fn shutdown(&self) -> Result<()> {
        self.shutdown_with_timeout(Duration::from_secs(30))
    }

    /// Like [`shutdown`](Self::shutdown), giving up at `timeout` with [`Error::Timeout`]:
    /// spans and scores are sent at the same time, and whatever is not delivered by then is
    /// lost. A user's provider is flushed, not shut down (its processors' own deadlines apply).
    ///
    /// ```
    /// use std::time::Duration;
    /// let langfuse = langfuse_otel::Langfuse::builder()
    ///     .public_key("pk-lf-1").secret_key("sk-lf-1").base_url("http://127.0.0.1:9")
    ///     .build();
    /// langfuse.start_active_observation_sync("step", |_| {});
    /// // Nothing listens on port 9: the export fails fast or times out, never hangs.
    /// let _ = langfuse.shutdown_with_timeout(Duration::from_secs(2));
    /// ```
    pub fn shutdown_with_timeout(&self, timeout: Duration) -> Result<()> {
        if !self.inner.enabled {
            return Ok(());
        }
        let started = Instant::now();
        // Scores are delivered by their own thread (retrying until the deadline) while the
        // spans are exported.
        // The drain ends a little before the deadline, so its drops are counted (and warned
        // about) before this call returns.
        let margin = (timeout / 10).min(Duration::from_millis(200));
        let scores_done = self
            .inner
            .scores
            .as_ref()
            .map(|q| q.start_drain(started + timeout - margin));
        let spans = if self.inner.owns_provider {
            self.inner.provider.shutdown_with_timeout(timeout)
        } else {
            self.inner.provider.force_flush()
        };
        let scores = match scores_done {
            None => Ok(()),
            Some(done) => {
                let remaining = timeout.saturating_sub(started.elapsed());
                wait_done(done, remaining)
            }
        };
        self.debug_outcome("shutdown", &spans, &scores, started);
        scores?;
        spans.map_err(|e| match e {
            opentelemetry_sdk::error::OTelSdkError::Timeout(_) => Error::Timeout,
            other => Error::Transport(other.to_string()),
        })
    }

    /// Waits for the score queue to send what it holds.
    fn wait_scores(&self, timeout: Duration) -> Result<()> {
        match self.inner.scores.as_ref().map(ScoreQueue::start_flush) {
            None => Ok(()),
            Some(done) => wait_done(done, timeout),
        }
    }

    /// The debug line of a flush or shutdown.
    fn debug_outcome(
        &self,
        what: &str,
        spans: &opentelemetry_sdk::error::OTelSdkResult,
        scores: &Result<()>,
        started: Instant,
    ) {
        if let Some(config) = &self.inner.config {
            config.diagnostics.debug(|| {
                format!(
                    "client {what}: spans {}, scores {} in {:.1} ms",
                    match spans {
                        Ok(()) => "ok".to_string(),
                        Err(e) => format!("failed: {e}"),
                    },
                    match scores {
                        Ok(()) => "ok".to_string(),
                        Err(e) => format!("failed: {e}"),
                    },
                    started.elapsed().as_secs_f64() * 1000.0
                )
            });
        }
    }

    /// A trace id: random, or derived from `seed` like the official SDKs (the first 16 bytes
    /// of SHA-256, as hex).
    ///
    /// ```
    /// use langfuse_otel::Langfuse;
    /// assert_eq!(Langfuse::create_trace_id(Some("abc")), "ba7816bf8f01cfea414140de5dae2223");
    /// assert_eq!(Langfuse::create_trace_id(None).len(), 32);
    /// ```
    pub fn create_trace_id(seed: Option<&str>) -> String {
        match seed {
            Some(seed) => {
                let digest = Sha256::digest(seed.as_bytes());
                langfuse_otel_transport::hex(&digest[..16])
            }
            None => RandomIdGenerator::default().new_trace_id().to_string(),
        }
    }

    /// The current trace id, if a span is current.
    pub fn current_trace_id() -> Option<String> {
        let cx = Context::current();
        let sc = cx.span().span_context().clone();
        sc.is_valid().then(|| sc.trace_id().to_string())
    }

    /// The current observation (span) id, if a span is current.
    pub fn current_observation_id() -> Option<String> {
        let cx = Context::current();
        let sc = cx.span().span_context().clone();
        sc.is_valid().then(|| sc.span_id().to_string())
    }
}

/// Waits for a score flush to finish: [`Error::Timeout`] after `timeout`, an error when the
/// score thread is gone.
fn wait_done(done: Option<std::sync::mpsc::Receiver<()>>, timeout: Duration) -> Result<()> {
    let Some(done) = done else {
        return Err(Error::Transport("the score thread has stopped".into()));
    };
    match done.recv_timeout(timeout) {
        Ok(()) => Ok(()),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(Error::Timeout),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err(Error::Transport("the score thread has stopped".into()))
        }
    }
}

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

/// A warning the user must see: through `tracing` when a subscriber is installed, otherwise
/// on standard error (like the Python SDK's logger, which prints warnings by default).
pub(crate) fn warn_visible(message: &str) {
    if tracing::dispatcher::has_been_set() {
        tracing::warn!(target: "langfuse", "{message}");
    } else {
        eprintln!("langfuse: warning: {message}");
    }
}
