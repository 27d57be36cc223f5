//! Configuration: [`LangfuseBuilder`] and the `LANGFUSE_*` environment variables, read in this
//! one place with the Python SDK's defaults.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use langfuse_otel_exporter::Diagnostics;
use langfuse_otel_transport::settings::{self, Env, SettingError, Settings};
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;

use crate::processor::ShouldExportSpan;
use crate::scores::ScoreTransport;

/// Default base URL (Langfuse Cloud EU), as in the Python SDK.
pub use langfuse_otel_transport::langfuse::DEFAULT_BASE_URL;

/// Masks input, output and metadata before they are serialized. If it panics, the value
/// becomes `"<fully masked due to failed mask function>"`.
pub type MaskFn = Arc<dyn Fn(Value) -> Value + Send + Sync>;

/// The fallback text of a failing mask function (the Python SDK's `MASK_FALLBACK_VALUE`).
pub const MASK_FALLBACK: &str = "<fully masked due to failed mask function>";

/// Resolved settings shared by the client, processor and transport.
#[derive(Clone)]
pub(crate) struct Config {
    /// Empty for an offline client without keys.
    pub(crate) public_key: String,
    pub(crate) secret_key: String,
    pub(crate) base_url: String,
    pub(crate) environment: Option<String>,
    pub(crate) release: Option<String>,
    pub(crate) flush_at: Option<usize>,
    pub(crate) flush_interval: Option<Duration>,
    pub(crate) timeout: Duration,
    pub(crate) sample_rate: f64,
    pub(crate) io_capture_enabled: bool,
    pub(crate) mask: Option<MaskFn>,
    pub(crate) additional_headers: Vec<(String, String)>,
    pub(crate) score_transport: ScoreTransport,
    /// Most scores queued at once.
    pub(crate) max_queued_scores: usize,
    /// Span batching (`LANGFUSE_FLUSH_*`, then `OTEL_BSP_*`, then the builder's values).
    pub(crate) batch: langfuse_otel_exporter::config::BatchSettings,
    /// Warnings and debug lines (debug on when `LANGFUSE_DEBUG` / [`LangfuseBuilder::debug`]).
    pub(crate) diagnostics: Diagnostics,
    /// The offline file that replaces the network for spans and scores.
    pub(crate) offline: Option<PathBuf>,
}

impl Config {
    /// Where spans go, for debug lines (never secrets).
    pub(crate) fn destination(&self) -> String {
        match &self.offline {
            Some(path) => format!("file {}", path.display()),
            None => format!(
                "OTLP {}{}",
                self.base_url.trim_end_matches('/'),
                langfuse_otel_transport::langfuse::OTLP_PATH
            ),
        }
    }

    /// The resolved configuration as one debug line: everything but the secret key, the
    /// public key shortened.
    pub(crate) fn debug_line(&self) -> String {
        let or_unset = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".into());
        let flush_at = self
            .flush_at
            .map_or_else(|| "512 spans / 15 scores".into(), |n| n.to_string());
        let flush_interval = self
            .flush_interval
            .map_or_else(|| "5s spans / 1s scores".into(), |d| format!("{d:?}"));
        format!(
            "client: destination {}, base_url {}, public_key {}, flush_at {flush_at}, \
             flush_interval {flush_interval}, timeout {:?}, sample_rate {}, environment {}, \
             release {}, scores to {}",
            self.destination(),
            self.base_url,
            abbreviate_key(&self.public_key),
            self.timeout,
            self.sample_rate,
            or_unset(&self.environment),
            or_unset(&self.release),
            match (&self.offline, self.score_transport) {
                (Some(_), _) => "the offline file",
                (None, ScoreTransport::Scores) => langfuse_otel_transport::langfuse::SCORES_PATH,
                (None, ScoreTransport::Ingestion) =>
                    langfuse_otel_transport::langfuse::INGESTION_PATH,
            },
        )
    }
}

/// The first 8 characters of a public key (`pk-lf-12…`), enough to tell projects apart.
fn abbreviate_key(key: &str) -> String {
    if key.is_empty() {
        return "(unset)".into();
    }
    let head: String = key.chars().take(8).collect();
    if head.len() < key.len() {
        format!("{head}…")
    } else {
        head
    }
}

/// Builds a [`Langfuse`](crate::Langfuse) client. Start from [`LangfuseBuilder::from_env`] to
/// honour the `LANGFUSE_*` variables, or from [`LangfuseBuilder::new`] for explicit settings.
///
/// | variable | default |
/// |---|---|
/// | `LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY` | required; missing → disabled client + one warning |
/// | `LANGFUSE_BASE_URL` (then `LANGFUSE_HOST`) | `https://cloud.langfuse.com` |
/// | `LANGFUSE_TRACING_ENVIRONMENT` | unset |
/// | `LANGFUSE_RELEASE` (then CI commit variables) | unset |
/// | `LANGFUSE_FLUSH_AT` | 512 spans (OTel), 15 scores |
/// | `LANGFUSE_FLUSH_INTERVAL` (seconds) | 5 s spans, 1 s scores |
/// | `LANGFUSE_TIMEOUT` (seconds) | 5 |
/// | `LANGFUSE_SAMPLE_RATE` | 1.0 |
/// | `LANGFUSE_TRACING_ENABLED` | true; only `false` (any case) disables |
/// | `LANGFUSE_DEBUG` | false; `true` (any case) prints debug lines (see [`LangfuseBuilder::debug`]) |
/// | `LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED` | true; `false`/`0` disable |
///
/// ```
/// use langfuse_otel::Langfuse;
/// let langfuse = Langfuse::builder()
///     .public_key("pk-lf-1")
///     .secret_key("sk-lf-1")
///     .base_url("http://127.0.0.1:3000")
///     .environment("staging")
///     .build();
/// assert!(langfuse.is_enabled());
/// # langfuse.shutdown().ok();
/// ```
#[derive(Clone)]
pub struct LangfuseBuilder {
    pub(crate) public_key: Option<String>,
    pub(crate) secret_key: Option<String>,
    pub(crate) base_url: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) release: Option<String>,
    pub(crate) flush_at: Option<usize>,
    pub(crate) flush_interval: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) sample_rate: Option<f64>,
    pub(crate) tracing_enabled: bool,
    pub(crate) debug: bool,
    pub(crate) io_capture_enabled: bool,
    pub(crate) mask: Option<MaskFn>,
    pub(crate) should_export: Option<ShouldExportSpan>,
    pub(crate) additional_headers: Vec<(String, String)>,
    pub(crate) tracer_provider: Option<SdkTracerProvider>,
    pub(crate) score_transport: ScoreTransport,
    pub(crate) diagnostics: Option<Diagnostics>,
    pub(crate) offline: Option<PathBuf>,
    pub(crate) max_queued_scores: Option<usize>,
    /// What the environment said (nothing for [`LangfuseBuilder::new`]).
    pub(crate) env: Settings,
    /// Invalid environment values: each is reported once and its default used.
    pub(crate) env_errors: Vec<SettingError>,
}

impl fmt::Debug for LangfuseBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LangfuseBuilder")
            .field("public_key", &self.public_key)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<set>"))
            .field("base_url", &self.base_url)
            .field("environment", &self.environment)
            .field("release", &self.release)
            .field("tracing_enabled", &self.tracing_enabled)
            .field("debug", &self.debug)
            .field("offline", &self.offline)
            .finish_non_exhaustive()
    }
}

impl Default for LangfuseBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LangfuseBuilder {
    /// Defaults only; no environment variables are read.
    pub fn new() -> Self {
        Self {
            public_key: None,
            secret_key: None,
            base_url: None,
            environment: None,
            release: None,
            flush_at: None,
            flush_interval: None,
            timeout: None,
            sample_rate: None,
            tracing_enabled: true,
            debug: false,
            io_capture_enabled: true,
            mask: None,
            should_export: None,
            additional_headers: Vec::new(),
            tracer_provider: None,
            score_transport: ScoreTransport::Scores,
            diagnostics: None,
            offline: None,
            max_queued_scores: None,
            env: Settings::unset(),
            env_errors: Vec::new(),
        }
    }

    /// Settings from the `LANGFUSE_*` environment variables (see the table above).
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Settings from any variable lookup (the environment in [`from_env`](Self::from_env)).
    ///
    /// ```
    /// use langfuse_otel::LangfuseBuilder;
    /// let b = LangfuseBuilder::from_lookup(|k| match k {
    ///     "LANGFUSE_HOST" => Some("http://localhost:3000".into()),
    ///     "LANGFUSE_TRACING_ENABLED" => Some("FALSE".into()),
    ///     _ => None,
    /// });
    /// assert_eq!(b.get_base_url(), "http://localhost:3000");
    /// assert!(!b.get_tracing_enabled());
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        Self::from_settings_env(&Env::from_lookup(lookup))
    }

    /// Settings from an [`Env`], read and validated by the shared rules of
    /// [`langfuse_otel_transport::settings`] (the exporter's too): an invalid value is
    /// reported once, with the same message the exporter gives, and its default is used.
    pub fn from_settings_env(env: &Env) -> Self {
        let (s, errors) = Settings::read_lenient(env);
        let mut b = Self::new();
        if let Some((pk, sk)) = &s.keys {
            b.public_key = Some(pk.clone());
            b.secret_key = Some(sk.expose().to_owned());
        } else {
            // One key alone: keep it so the client reports which one is missing.
            b.public_key = settings::PUBLIC_KEY.text(env);
            b.secret_key = settings::SECRET_KEY.text(env);
        }
        b.base_url.clone_from(&s.base_url);
        b.environment.clone_from(&s.environment);
        b.release.clone_from(&s.release);
        b.flush_at = s.flush_at;
        b.flush_interval = s.flush_interval;
        b.timeout = s.timeout;
        b.sample_rate = s.sample_rate;
        b.tracing_enabled = s.tracing_enabled;
        b.debug = s.debug;
        b.io_capture_enabled = s.io_capture_enabled;
        b.env = s;
        b.env_errors = errors
            .into_iter()
            .filter(|e| !matches!(e, SettingError::PartialKeys))
            .collect();
        b
    }

    /// Most scores queued at once, waiting or being retried during an outage (default
    /// [`DEFAULT_MAX_QUEUED_SCORES`](crate::DEFAULT_MAX_QUEUED_SCORES)); past it new scores
    /// are dropped, counted in [`ScoreStats::dropped`](crate::ScoreStats) and warned about once.
    pub fn max_queued_scores(mut self, n: usize) -> Self {
        self.max_queued_scores = Some(n.max(1));
        self
    }

    /// Public key (`pk-lf-…`).
    pub fn public_key(mut self, key: impl Into<String>) -> Self {
        self.public_key = Some(key.into());
        self
    }

    /// Secret key (`sk-lf-…`).
    pub fn secret_key(mut self, key: impl Into<String>) -> Self {
        self.secret_key = Some(key.into());
        self
    }

    /// Base URL of the Langfuse instance.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Environment written on every SDK span and in the resource (`langfuse.environment`).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Release written on every SDK span and in the resource (`langfuse.release`).
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.release = Some(release.into());
        self
    }

    /// Batch size for spans and scores.
    pub fn flush_at(mut self, n: usize) -> Self {
        self.flush_at = Some(n.max(1));
        self
    }

    /// Longest time a span or score waits before it is sent.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = Some(interval);
        self
    }

    /// HTTP timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Fraction of traces kept, by trace id (`0.0..=1.0`); scores of dropped traces are dropped.
    pub fn sample_rate(mut self, rate: f64) -> Self {
        self.sample_rate = Some(rate);
        self
    }

    /// `false` disables tracing and scores.
    pub fn tracing_enabled(mut self, enabled: bool) -> Self {
        self.tracing_enabled = enabled;
        self
    }

    /// Whether `#[observe]` captures arguments and return values by default.
    pub fn io_capture_enabled(mut self, enabled: bool) -> Self {
        self.io_capture_enabled = enabled;
        self
    }

    /// Masks input, output and metadata of the SDK's observations (see [`MaskFn`]).
    pub fn mask(mut self, mask: impl Fn(Value) -> Value + Send + Sync + 'static) -> Self {
        self.mask = Some(Arc::new(mask));
        self
    }

    /// Replaces the default export filter ([`is_default_export_span`](crate::is_default_export_span)).
    pub fn should_export_span(
        mut self,
        filter: impl Fn(&opentelemetry_sdk::trace::SpanData) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.should_export = Some(Arc::new(filter));
        self
    }

    /// An extra header on every request (overrides a default one of the same name).
    pub fn additional_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.additional_headers.push((name.into(), value.into()));
        self
    }

    /// Uses your tracer provider instead of an isolated one. Add
    /// [`span_processor`](Self::span_processor) to it so spans reach Langfuse.
    pub fn tracer_provider(mut self, provider: SdkTracerProvider) -> Self {
        self.tracer_provider = Some(provider);
        self
    }

    /// Where scores are sent (default: `POST /api/public/scores`, like the Python SDK).
    pub fn score_transport(mut self, transport: ScoreTransport) -> Self {
        self.score_transport = transport;
        self
    }

    /// Debug lines on standard error, prefixed `langfuse: debug:` (default: `LANGFUSE_DEBUG`):
    /// the resolved configuration when the client starts (never the secret key; the public
    /// key shortened), one line per export batch (span count, destination, result and HTTP
    /// status, duration), per score batch, and per flush and shutdown. Off, nothing is
    /// formatted or printed.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use langfuse_otel::{Diagnostics, Langfuse};
    ///
    /// let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    /// let sink = lines.clone();
    /// let langfuse = Langfuse::builder()
    ///     .public_key("pk-lf-1234567890")
    ///     .secret_key("sk-lf-do-not-print")
    ///     .base_url("http://127.0.0.1:9")
    ///     .diagnostics(Diagnostics::default().with_debug_sink(move |l| sink.lock().unwrap().push(l.to_owned())))
    ///     .debug(true)
    ///     .build();
    /// let lines = lines.lock().unwrap().clone();
    /// assert!(lines.iter().any(|l| l.starts_with("client: destination OTLP http://127.0.0.1:9/api/public/otel/v1/traces")));
    /// assert!(lines.iter().all(|l| !l.contains("do-not-print")));
    /// # langfuse.shutdown().ok();
    /// ```
    pub fn debug(mut self, debug: bool) -> Self {
        self.debug = debug;
        self
    }

    /// Where warnings and debug lines go (default: standard error). Whether debug lines are
    /// produced is decided by [`debug`](Self::debug), not by `diagnostics`.
    pub fn diagnostics(mut self, diagnostics: Diagnostics) -> Self {
        self.diagnostics = Some(diagnostics);
        self
    }

    /// Writes spans and scores to `path` instead of sending them: Langfuse ingestion events,
    /// one JSON line each (`trace-create`, `<type>-create`, `score-create`), the exporter's
    /// offline format. No keys are needed; print the file with
    /// [`render_trace_file`](langfuse_otel_exporter::offline::render_trace_file).
    ///
    /// ```
    /// use langfuse_otel::{Langfuse, Score};
    /// use langfuse_otel_exporter::offline::render_trace_file;
    ///
    /// let path = std::env::temp_dir().join(format!("lf-offline-doc-{}.jsonl", std::process::id()));
    /// # std::fs::remove_file(&path).ok();
    /// let langfuse = Langfuse::builder().offline(&path).build();
    /// langfuse.start_active_observation_sync("answer", |obs| {
    ///     obs.score_trace(Score::numeric("helpfulness", 0.9).comment("good"));
    /// });
    /// langfuse.shutdown().unwrap();
    /// let tree = render_trace_file(&path).unwrap();
    /// assert!(tree.contains("├─ score helpfulness = 0.9 (good)"), "{tree}");
    /// assert!(tree.contains("└─ answer [span]"), "{tree}");
    /// # std::fs::remove_file(path).ok();
    /// ```
    pub fn offline(mut self, path: impl Into<PathBuf>) -> Self {
        self.offline = Some(path.into());
        self
    }

    /// The base URL in effect.
    pub fn get_base_url(&self) -> &str {
        self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL)
    }

    /// Whether tracing is enabled.
    pub fn get_tracing_enabled(&self) -> bool {
        self.tracing_enabled
    }

    /// Whether the client will log at debug level (`LANGFUSE_DEBUG`).
    pub fn get_debug(&self) -> bool {
        self.debug
    }

    /// The resolved configuration, or why the client must be disabled. Builder values are
    /// checked by the same rules as the environment's; an invalid one is reported once and
    /// its default used (the client never fails to build).
    pub(crate) fn resolve(&self) -> Result<Config, crate::Error> {
        let (pk, sk) = match (&self.public_key, &self.secret_key, &self.offline) {
            (Some(pk), Some(sk), _) => (pk.clone(), sk.clone()),
            (pk, _, Some(_)) => (pk.clone().unwrap_or_default(), String::new()),
            _ => return Err(crate::Error::MissingKeys),
        };
        let diagnostics = self
            .diagnostics
            .clone()
            .unwrap_or_default()
            .with_debug(self.debug);
        let warn = |e: &SettingError, fallback: &str| {
            let message = format!("{e}; using {fallback}");
            tracing::warn!(target: "langfuse", "{message}");
            diagnostics.warn_once(&format!("invalid-setting-{}", setting_name(e)), &message);
        };
        for e in &self.env_errors {
            warn(e, "the default");
        }
        let rate = match self
            .sample_rate
            .map(|r| settings::SAMPLE_RATE.check_fraction(r))
        {
            None => 1.0,
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                warn(&e, "1.0");
                1.0
            }
        };
        let timeout = match self.timeout.map(|t| settings::TIMEOUT.check_duration(t)) {
            None => langfuse_otel_exporter::config::DEFAULT_TIMEOUT,
            Some(Ok(t)) => t,
            Some(Err(e)) => {
                warn(&e, "the default");
                langfuse_otel_exporter::config::DEFAULT_TIMEOUT
            }
        };
        let mut batch = langfuse_otel_exporter::config::BatchSettings::from_settings(&self.env);
        if let Some(n) = self.flush_at {
            batch.max_export_batch = n;
        }
        if let Some(d) = self.flush_interval {
            batch.schedule_delay = d;
        }
        Ok(Config {
            public_key: pk,
            secret_key: sk,
            base_url: self.get_base_url().to_owned(),
            environment: self.environment.clone(),
            release: self.release.clone(),
            flush_at: self.flush_at,
            flush_interval: self.flush_interval,
            timeout,
            sample_rate: rate,
            io_capture_enabled: self.io_capture_enabled,
            mask: self.mask.clone(),
            additional_headers: self.additional_headers.clone(),
            score_transport: self.score_transport,
            max_queued_scores: self
                .max_queued_scores
                .unwrap_or(crate::scores::DEFAULT_MAX_QUEUED_SCORES),
            batch,
            diagnostics,
            offline: self.offline.clone(),
        })
    }
}

/// The variable an error is about, for its warning kind.
fn setting_name(e: &SettingError) -> &'static str {
    match e {
        SettingError::Invalid { name, .. } => name,
        _ => "keys",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_match_the_python_sdk() {
        let b = LangfuseBuilder::from_lookup(lookup(&[]));
        assert_eq!(b.get_base_url(), DEFAULT_BASE_URL);
        assert!(b.tracing_enabled && b.io_capture_enabled && !b.debug);
        assert!(b.resolve().is_err(), "no keys: disabled");
    }

    #[test]
    fn base_url_wins_over_host_and_release_falls_back_to_ci() {
        let b = LangfuseBuilder::from_lookup(lookup(&[
            ("LANGFUSE_BASE_URL", "http://a"),
            ("LANGFUSE_HOST", "http://b"),
            ("GITHUB_SHA", "abc123"),
            ("LANGFUSE_PUBLIC_KEY", "pk"),
            ("LANGFUSE_SECRET_KEY", "sk"),
            ("LANGFUSE_FLUSH_AT", "3"),
            ("LANGFUSE_FLUSH_INTERVAL", "0.5"),
            ("LANGFUSE_TIMEOUT", "2"),
            ("LANGFUSE_SAMPLE_RATE", "7"),
        ]));
        let c = b.resolve().unwrap();
        assert_eq!(c.base_url, "http://a");
        assert_eq!(c.release.as_deref(), Some("abc123"));
        assert_eq!(c.flush_at, Some(3));
        assert_eq!(c.flush_interval, Some(Duration::from_millis(500)));
        assert_eq!(c.timeout, Duration::from_secs(2));
        assert_eq!(c.sample_rate, 1.0, "invalid rate falls back to 1.0");
    }

    #[test]
    fn an_invalid_timeout_is_the_exporters_error_message_and_the_default() {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        let mut b = LangfuseBuilder::from_lookup(lookup(&[
            ("LANGFUSE_PUBLIC_KEY", "pk"),
            ("LANGFUSE_SECRET_KEY", "sk"),
            ("LANGFUSE_TIMEOUT", "soon"),
        ]));
        b = b.diagnostics(Diagnostics::new(move |m| {
            sink.lock().unwrap().push(m.to_owned())
        }));
        let c = b.resolve().unwrap();
        assert_eq!(c.timeout, langfuse_otel_exporter::config::DEFAULT_TIMEOUT);
        let exporter_error = langfuse_otel_exporter::config::timeout(&Env::from_pairs([(
            "LANGFUSE_TIMEOUT",
            "soon",
        )]))
        .unwrap_err()
        .to_string();
        assert_eq!(
            *lines.lock().unwrap(),
            [format!("{exporter_error}; using the default")]
        );
    }

    #[test]
    fn the_sdk_honours_otel_bsp_variables_for_spans_only() {
        let c = LangfuseBuilder::from_lookup(lookup(&[
            ("LANGFUSE_PUBLIC_KEY", "pk"),
            ("LANGFUSE_SECRET_KEY", "sk"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64"),
            ("OTEL_BSP_SCHEDULE_DELAY", "250"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "5000"),
        ]))
        .resolve()
        .unwrap();
        assert_eq!(c.batch.max_export_batch, 64);
        assert_eq!(c.batch.schedule_delay, Duration::from_millis(250));
        assert_eq!(c.batch.max_queue_spans, 5000);
        assert_eq!(
            (c.flush_at, c.flush_interval),
            (None, None),
            "scores keep their defaults"
        );
    }

    #[test]
    fn the_debug_line_shows_the_configuration_but_never_the_secret_key() {
        let b = LangfuseBuilder::from_lookup(lookup(&[
            ("LANGFUSE_PUBLIC_KEY", "pk-lf-0123456789"),
            ("LANGFUSE_SECRET_KEY", "sk-lf-0123456789"),
            ("LANGFUSE_BASE_URL", "http://lf:3000/"),
            ("LANGFUSE_DEBUG", "TRUE"),
            ("LANGFUSE_FLUSH_AT", "3"),
            ("LANGFUSE_SAMPLE_RATE", "0.5"),
            ("LANGFUSE_TRACING_ENVIRONMENT", "prod"),
        ]));
        assert!(b.get_debug());
        let c = b.resolve().unwrap();
        assert!(
            c.diagnostics.is_debug(),
            "LANGFUSE_DEBUG reaches the diagnostics"
        );
        let line = c.debug_line();
        assert_eq!(
            line,
            "client: destination OTLP http://lf:3000/api/public/otel/v1/traces, base_url \
             http://lf:3000, public_key pk-lf-01…, flush_at 3, flush_interval 5s spans / 1s \
             scores, timeout 5s, sample_rate 0.5, environment prod, release (unset), scores to \
             /api/public/scores"
        );
        assert!(!line.contains("sk-lf") && !line.contains("0123456789"));
        let offline = LangfuseBuilder::new()
            .offline("/tmp/t.jsonl")
            .resolve()
            .unwrap();
        assert!(!offline.diagnostics.is_debug(), "off by default");
        assert!(offline.debug_line().starts_with(
            "client: destination file /tmp/t.jsonl, base_url https://cloud.langfuse.com, \
             public_key (unset),"
        ));
        assert_eq!(abbreviate_key("pk"), "pk");
    }

    #[test]
    fn only_false_disables_tracing_and_io_capture() {
        let b = LangfuseBuilder::from_lookup(lookup(&[
            ("LANGFUSE_TRACING_ENABLED", "0"),
            ("LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED", "0"),
        ]));
        assert!(b.tracing_enabled);
        assert!(!b.io_capture_enabled);
    }
}
