//! The seam to the network: the OTLP span exporter and the scores endpoint. Everything that
//! knows about HTTP lives here, so the transport can be swapped for the project's own exporter
//! crate without touching the instrumentation API.

use std::collections::HashMap;
use std::time::Duration;

use langfuse_otel_exporter::{ExportFilter, LangfuseExporter};

use crate::Error;
use crate::config::Config;

/// Name reported in `x-langfuse-sdk-name` (the exporter's definition).
pub use langfuse_otel_exporter::SDK_NAME;
/// Path of the Langfuse ingestion endpoint (`score-create` events, the JS SDK's score
/// transport; the exporter's definition).
pub use langfuse_otel_exporter::config::LANGFUSE_INGESTION_PATH as INGESTION_PATH;
/// Path of the Langfuse OTLP traces endpoint (the exporter's definition).
pub use langfuse_otel_exporter::config::LANGFUSE_OTLP_PATH as TRACES_PATH;

/// Path of the Langfuse scores endpoint (Python SDK 5).
pub const SCORES_PATH: &str = "/api/public/scores";

/// Version reported in `x-langfuse-sdk-version` and as the instrumentation scope version.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The headers every request carries: Basic auth, SDK identification, and
/// `x-langfuse-ingestion-version: 4` (Langfuse's real-time ingestion path).
pub(crate) fn headers(config: &Config) -> HashMap<String, String> {
    let secret = langfuse_otel_exporter::config::Secret::new(config.secret_key.clone());
    let mut h: HashMap<String, String> =
        langfuse_otel_exporter::config::langfuse_headers(&config.public_key, &secret)
            .into_iter()
            .map(|(k, v)| (k, v.expose().to_owned()))
            .collect();
    for (k, v) in &config.additional_headers {
        h.insert(k.clone(), v.clone());
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
    builder.build().map_err(|e| Error::Transport(e.to_string()))
}

/// The blocking HTTP agent of the scores queue (the same `ureq` client the exporter uses;
/// rustls, no OpenSSL, no async runtime).
pub(crate) fn http_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .user_agent(concat!("langfuse-otel-rust/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Posts one JSON body to `path` and returns the success status; retries transport errors,
/// 429 and 5xx up to 3 attempts. A 207 (partial success) is not retried, like the Python SDK.
pub(crate) fn post_json(
    agent: &ureq::Agent,
    config: &Config,
    path: &str,
    body: Vec<u8>,
) -> Result<u16, Error> {
    let url = format!("{}{path}", config.base_url.trim_end_matches('/'));
    let mut last = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(250 << attempt));
        }
        let mut req = agent.post(&url).header("Content-Type", "application/json");
        for (k, v) in headers(config) {
            req = req.header(k, v);
        }
        match req.send(&body[..]) {
            Ok(resp) if resp.status().is_success() => return Ok(resp.status().as_u16()),
            Ok(resp) if resp.status().as_u16() == 429 || resp.status().is_server_error() => {
                last = format!("HTTP {}", resp.status());
            }
            Ok(resp) => {
                return Err(Error::Transport(format!(
                    "scores rejected: HTTP {}",
                    resp.status()
                )));
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(Error::Transport(format!(
        "scores not sent after 3 attempts: {last}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_basic_auth_and_the_ingestion_version() {
        let config = crate::LangfuseBuilder::new()
            .public_key("pk-lf-test")
            .secret_key("sk-lf-test")
            .resolve()
            .expect("keys given");
        let h = headers(&config);
        assert_eq!(h["authorization"], "Basic cGstbGYtdGVzdDpzay1sZi10ZXN0");
        assert_eq!(h["x-langfuse-ingestion-version"], "4");
        assert_eq!(h["x-langfuse-public-key"], "pk-lf-test");
    }
}
