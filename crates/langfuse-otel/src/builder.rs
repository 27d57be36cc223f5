//! Building a [`Langfuse`] client from a [`LangfuseBuilder`]: the span processor, the tracer
//! provider, the score queue, and the disabled client when something is missing.

use std::sync::Arc;

use langfuse_otel_core::keys;
use langfuse_otel_exporter::BatchProcessor;
use langfuse_otel_exporter::offline::OfflineWriter;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

use crate::client::Langfuse;
use crate::config::{Config, LangfuseBuilder};
use crate::processor::LangfuseSpanProcessor;
use crate::recorder::{Recorder, scope};
use crate::scores::{ScoreQueue, ScoreSettings};
use crate::transport;
use crate::warning::{error_chain, warn_visible};
use crate::{Error, Result};

impl LangfuseBuilder {
    /// A [`LangfuseSpanProcessor`] sending to this Langfuse project through a batch processor:
    /// add it to your own `SdkTracerProvider`, then pass that provider to
    /// [`tracer_provider`](Self::tracer_provider).
    ///
    /// ```
    /// use langfuse_otel::Langfuse;
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    /// let builder = Langfuse::builder().public_key("pk").secret_key("sk").base_url("http://127.0.0.1:9");
    /// let provider = SdkTracerProvider::builder()
    ///     .with_span_processor(builder.span_processor().unwrap())
    ///     .build();
    /// let langfuse = builder.tracer_provider(provider.clone()).build();
    /// # langfuse.shutdown().ok(); provider.shutdown().ok();
    /// ```
    pub fn span_processor(&self) -> Result<LangfuseSpanProcessor> {
        let config = self.resolve()?;
        self.processor_for(&config).map(|(p, _)| p)
    }

    /// The span processor for `config`, and the exporter's offline file when it writes one.
    fn processor_for(
        &self,
        config: &Config,
    ) -> Result<(LangfuseSpanProcessor, Option<OfflineWriter>)> {
        let exporter = transport::span_exporter(config)?;
        let offline = exporter.offline_writer();
        let stats = exporter.stats();
        let bsp = BatchProcessor::builder(exporter)
            .settings(config.batch.clone())
            .stats(stats)
            .diagnostics(config.diagnostics.clone())
            .build();
        let public_key = Some(config.public_key.clone()).filter(|k| !k.is_empty());
        let mut p = LangfuseSpanProcessor::new(bsp, public_key)
            .with_environment_and_release(config.environment.clone(), config.release.clone());
        if let Some(f) = &self.should_export {
            p = p.with_should_export_span(f.clone());
        }
        Ok((p, offline))
    }

    /// Builds the client. Never fails: without keys (and not [`offline`](Self::offline)), with
    /// tracing disabled, or when the HTTP client or offline file cannot be created, the client
    /// is disabled (one warning) and every call is a cheap no-op that still runs your closures.
    pub fn build(self) -> Langfuse {
        if !self.tracing_enabled {
            return Langfuse::disabled();
        }
        let config = match self.resolve() {
            Ok(c) => c,
            Err(why) => {
                warn_visible(&error_chain(&why));
                return Langfuse::disabled();
            }
        };
        match self.build_enabled(config) {
            Ok(l) => l,
            Err(e) => {
                warn_visible(&format!("Langfuse client disabled: {}", error_chain(&e)));
                Langfuse::disabled()
            }
        }
    }

    fn build_enabled(self, config: Config) -> Result<Langfuse> {
        config.diagnostics.debug(|| config.debug_line());
        let sampler =
            (config.sample_rate < 1.0).then(|| Sampler::TraceIdRatioBased(config.sample_rate));
        let mut offline = None;
        let (provider, owns) = match self.tracer_provider.clone() {
            Some(p) => (p, false),
            None => {
                let mut resource = Resource::builder();
                if let Some(env) = &config.environment {
                    resource = resource
                        .with_attribute(KeyValue::new(keys::LANGFUSE_ENVIRONMENT, env.clone()));
                }
                if let Some(rel) = &config.release {
                    resource =
                        resource.with_attribute(KeyValue::new(keys::LANGFUSE_RELEASE, rel.clone()));
                }
                let (processor, writer) = self.processor_for(&config)?;
                let processor = processor.internal();
                offline = writer;
                let mut b = SdkTracerProvider::builder()
                    .with_resource(resource.build())
                    .with_span_processor(processor);
                if let Some(s) = &sampler {
                    b = b.with_sampler(s.clone());
                }
                (b.build(), true)
            }
        };
        let tracer = provider.tracer_with_scope(scope(
            Some(config.public_key.as_str()).filter(|k| !k.is_empty()),
        ));
        // With the user's provider, scores open the offline file themselves (appending).
        let offline = match (offline, &config.offline) {
            (Some(w), _) => Some(w),
            (None, Some(path)) => Some(OfflineWriter::open(path).map_err(Error::Exporter)?),
            (None, None) => None,
        };
        let settings = ScoreSettings {
            transport: config.score_transport,
            timeout: config.timeout,
            flush_at: config.flush_at.unwrap_or(15),
            flush_interval: config
                .flush_interval
                .unwrap_or(std::time::Duration::from_secs(1)),
            max_queued: config.max_queued_scores,
            diagnostics: config.diagnostics.clone(),
        };
        let scores = ScoreQueue::start(settings, transport::score_sender(&config)?, offline)
            .map_err(Error::ScoreThread)?;
        Ok(Langfuse {
            inner: Arc::new(Recorder {
                tracer,
                provider,
                owns_provider: owns,
                enabled: true,
                config: Some(config),
                sampler,
                scores: Some(scores),
            }),
        })
    }
}
