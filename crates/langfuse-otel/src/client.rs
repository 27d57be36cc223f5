//! [`Langfuse`]: the client. Starts observations, sends scores, flushes. It is a handle on a
//! `Recorder` (`recorder`), shared with the observations it starts; how observations start is
//! written once in `observation` (`Parent`). Building a client lives in `builder`, the
//! process-wide client in `global`; neither is imported here.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use langfuse_otel_core::keys;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, Sampler, SdkTracerProvider};
use sha2::{Digest, Sha256};

use crate::attributes::push_update_attributes;
use crate::config::LangfuseBuilder;
use crate::observation::{Observation, Parent};
use crate::recorder::{Recorder, scope};
use crate::scores::{Score, ScoreQueue};
use crate::types::{ObservationOptions, ObservationType, ObservationUpdate};
use crate::{Error, Result};

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
    pub(crate) inner: Arc<Recorder>,
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
            inner: Arc::new(Recorder {
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
            inner: Arc::new(Recorder {
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

    /// Whether `#[observe]` captures input/output by default.
    pub fn io_capture_enabled(&self) -> bool {
        self.inner.io_capture_enabled()
    }

    /// Runs `f` with the current context as the parent of new observations.
    fn in_current<R>(&self, f: impl FnOnce(Parent<'_>) -> R) -> R {
        let cx = Context::current();
        f(Parent {
            recorder: &self.inner,
            context: &cx,
        })
    }

    /// Starts an observation under the current context. It is not made current: call
    /// [`Observation::end`], and create children with [`Observation::start_observation`].
    pub fn start_observation(&self, options: impl Into<ObservationOptions>) -> Observation {
        self.in_current(|p| p.start(options.into()))
    }

    /// Records a zero-duration event under the current context.
    pub fn create_event(&self, options: impl Into<ObservationOptions>) -> Observation {
        self.in_current(|p| p.event(options.into()))
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
        let cx = Context::current();
        let parent = Parent {
            recorder: &self.inner,
            context: &cx,
        };
        parent.active(options.into(), body).await
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
        let cx = Context::current();
        let parent = Parent {
            recorder: &self.inner,
            context: &cx,
        };
        parent.try_active(options.into(), body).await
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
        self.in_current(|p| p.active_sync(options.into(), body))
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
        self.in_current(|p| p.try_active_sync(options.into(), body))
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
        let status = push_update_attributes(&mut attrs, update, as_type, self.inner.mask());
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
        self.inner.enqueue_score(score, None);
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
        self.inner.enqueue_score(score, Some(sc.is_sampled()));
    }

    /// Scores the current trace.
    pub fn score_current_trace(&self, score: Score) {
        let cx = Context::current();
        let sc = cx.span().span_context().clone();
        if !sc.is_valid() {
            tracing::warn!(target: "langfuse", "no current trace: score dropped");
            return;
        }
        self.inner.enqueue_score(
            score.trace_id(sc.trace_id().to_string()),
            Some(sc.is_sampled()),
        );
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
        spans.map_err(Error::Export)
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
            other => Error::Export(other),
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
        return Err(Error::ScoreThreadStopped);
    };
    match done.recv_timeout(timeout) {
        Ok(()) => Ok(()),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(Error::Timeout),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(Error::ScoreThreadStopped),
    }
}
