//! The seam to the network: the span exporter and the score sender, both built on
//! [`langfuse_otel_transport`] (one HTTP client, one retry loop, the Langfuse headers built
//! once). The SDK keeps no HTTP client of its own.

use langfuse_otel_exporter::{ExportFilter, LangfuseExporter};
use langfuse_otel_transport::{HttpSender, JsonBatchSender, Secret, langfuse_headers};

use crate::Error;
use crate::config::Config;
use crate::scores::ScoreTransport;

pub use langfuse_otel_transport::langfuse::{
    INGESTION_PATH, OTLP_PATH as TRACES_PATH, SCORES_PATH,
};

/// The headers every request carries: Basic auth, SDK identification,
/// `x-langfuse-ingestion-version: 4`, then the user's additional headers.
pub(crate) fn headers(config: &Config) -> Vec<(String, Secret)> {
    let mut h = langfuse_headers(&config.public_key, &Secret::new(config.secret_key.clone()));
    for (k, v) in &config.additional_headers {
        h.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
        h.push((k.clone(), Secret::new(v.clone())));
    }
    h
}

/// The span exporter for `{base_url}/api/public/otel/v1/traces` (or the offline file): the
/// project's own [`LangfuseExporter`] (OTLP protobuf, gzip, the Langfuse headers, retries
/// with backoff, no async runtime needed), sharing the client's diagnostics. Filtering is left
/// to [`crate::LangfuseSpanProcessor`], which knows the user's `should_export` predicate.
pub(crate) fn span_exporter(config: &Config) -> Result<LangfuseExporter, Error> {
    let builder = LangfuseExporter::builder()
        .without_env()
        .timeout(config.timeout)
        .filter(ExportFilter::All)
        .diagnostics(config.diagnostics.clone())
        .debug(config.diagnostics.is_debug());
    let mut builder = match &config.offline {
        Some(path) => builder.file(path),
        None => builder
            .langfuse(config.public_key.clone(), config.secret_key.clone())
            .base_url(config.base_url.clone()),
    };
    for (k, v) in &config.additional_headers {
        builder = builder.header(k.clone(), v.clone());
    }
    builder.build().map_err(Error::Exporter)
}

/// The score sender: a JSON array to `POST /api/public/scores` (1 MB requests, the Python
/// SDK 5), or `score-create` events to `/api/public/ingestion` (100 per request, the JS SDK).
pub(crate) fn score_sender(config: &Config) -> Result<JsonBatchSender, Error> {
    let base = config.base_url.trim_end_matches('/');
    let path = match config.score_transport {
        ScoreTransport::Scores => SCORES_PATH,
        ScoreTransport::Ingestion => INGESTION_PATH,
    };
    let http = HttpSender::builder(format!("{base}{path}"))
        .headers(headers(config))
        .build()
        .map_err(Error::ScoreSender)?;
    Ok(match config.score_transport {
        ScoreTransport::Scores => JsonBatchSender::scores(http),
        ScoreTransport::Ingestion => JsonBatchSender::ingestion(http).max_items(100),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_basic_auth_and_the_ingestion_version() {
        let config = crate::LangfuseBuilder::new()
            .public_key("pk-lf-test")
            .secret_key("sk-lf-test")
            .additional_header("x-langfuse-sdk-name", "custom")
            .resolve()
            .expect("keys given");
        let h = headers(&config);
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.expose());
        assert_eq!(
            get("authorization"),
            Some("Basic cGstbGYtdGVzdDpzay1sZi10ZXN0")
        );
        assert_eq!(get("x-langfuse-ingestion-version"), Some("4"));
        assert_eq!(get("x-langfuse-public-key"), Some("pk-lf-test"));
        assert_eq!(
            get("x-langfuse-sdk-name"),
            Some("custom"),
            "additional headers win"
        );
    }
}
