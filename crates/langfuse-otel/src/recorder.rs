//! [`Recorder`]: what a client and every observation it starts share — the tracer and its
//! provider, the resolved configuration, the sampler and the score queue. A [`crate::Langfuse`]
//! is a handle on one; so is every [`crate::Observation`], which is how an observation (and
//! `#[observe]` below it) records into the client that started it, never another one.

use std::sync::Arc;

use langfuse_otel_core::keys;
use opentelemetry::trace::{SpanKind, TraceId};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, SdkTracer, SdkTracerProvider,
    ShouldSample,
};

use crate::config::{Config, MaskFn};
use crate::processor::SCOPE_NAME;
use crate::scores::{Score, ScoreQueue};
use langfuse_otel_transport::langfuse::SDK_VERSION;

/// The shared state of one client (see the module docs).
pub(crate) struct Recorder {
    pub(crate) tracer: SdkTracer,
    pub(crate) provider: SdkTracerProvider,
    pub(crate) owns_provider: bool,
    pub(crate) enabled: bool,
    pub(crate) config: Option<Config>,
    pub(crate) sampler: Option<Sampler>,
    pub(crate) scores: Option<ScoreQueue>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("enabled", &self.enabled)
            .field(
                "base_url",
                &self.config.as_ref().map(|c| c.base_url.as_str()),
            )
            .finish_non_exhaustive()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.owns_provider && self.enabled {
            let _ = self.provider.shutdown();
        }
    }
}

/// The instrumentation scope of the SDK's spans (with the project's public key, as the
/// official SDKs set it).
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

impl Recorder {
    /// The configured mask of input, output and metadata.
    pub(crate) fn mask(&self) -> Option<&MaskFn> {
        self.config.as_ref().and_then(|c| c.mask.as_ref())
    }

    /// Whether `#[observe]` captures input/output by default.
    pub(crate) fn io_capture_enabled(&self) -> bool {
        self.config.as_ref().is_none_or(|c| c.io_capture_enabled)
    }

    /// Queues a score unless its trace is sampled out (`sampled`: the span's decision when
    /// known, else the client's sampler decides from the score's trace id).
    pub(crate) fn enqueue_score(&self, score: Score, sampled: Option<bool>) {
        let (Some(queue), Some(config)) = (&self.scores, &self.config) else {
            return;
        };
        let keep = match (sampled, &self.sampler, &score.trace_id) {
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
}

/// Carried in the context an observation gives its children: the recorder of the client that
/// started it, so `#[observe]` below it records into that client.
#[derive(Clone)]
pub(crate) struct ActiveRecorder(pub(crate) Arc<Recorder>);

impl ActiveRecorder {
    /// The recorder of the observation current in `cx`, if an SDK observation is current.
    pub(crate) fn of(cx: &Context) -> Option<Arc<Recorder>> {
        cx.get::<ActiveRecorder>().map(|r| Arc::clone(&r.0))
    }
}
