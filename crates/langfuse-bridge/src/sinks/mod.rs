//! Sinks: where forwarded units go. The network ones are built on `langfuse-otel-transport` (its one retry loop and
//! classification; the forwarder only decides what to do with what remains).
//!
//! | `--to` | units | requests |
//! |---|---|---|
//! | `langfuse` | OTLP, ingestion events, scores | `URL/api/public/otel/v1/traces` (with `x-langfuse-ingestion-version: 4`), `URL/api/public/ingestion`, `URL/api/public/scores` |
//! | `ingestion` | ingestion events | `URL/api/public/ingestion` (207 per-event results honoured) |
//! | `otlp` | OTLP | `URL` over HTTP, or OTLP/gRPC for `grpc://host:port` |
//!
//! Credentials: the configured keys, or the unit's own `Authorization` (the client's, kept in
//! the spool). A refusal for good (4xx) hands the unit's items back to the forwarder with the
//! upstream's answer ([`Sent::refused`], for the dead-letter file), except 401/403 with the
//! configured keys: that is a configuration error, so the items stay spooled and are retried
//! until the keys are fixed.

//!
//! | file | sink |
//! |---|---|
//! | [`langfuse`] | Langfuse: OTLP, ingestion and scores endpoints (`--to langfuse`, `--to ingestion`) |
//! | [`otlp`] | any OTLP collector over HTTP or gRPC (`--to otlp`) |
//! | [`local`] | the embedded trace store (`--to local`) |
//! | `kafka` | a Kafka topic, one message per trace (`--to kafka`; feature `kafka`) |
//! | [`dead_letter`] | what a sink refused for good, kept with the reason |
//! | [`contract`] | the [`Sink`] trait the forwarder drives, and what a send returns |
//! | [`upstream`] | what the network sinks share: retry policy, credentials, outcome settling, JSON batches |
pub mod contract;
pub mod dead_letter;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod langfuse;
pub mod local;
pub mod otlp;
pub mod upstream;

use std::collections::HashMap;
use std::time::Duration;

use langfuse_otel_transport::langfuse as endpoints;
use langfuse_otel_transport::{HttpSender, JsonBatchSender, Secret, langfuse_headers};

use crate::serve::config::{ConfigError, Destination, ServeConfig};
use crate::shape::Shape;

pub use self::contract::Sink;
use self::langfuse::LangfuseSink;
pub use self::local::LocalSink;
use self::otlp::{OtlpSink, OtlpTarget};
use self::upstream::retry_policy;

fn build_err(e: langfuse_otel_transport::TransportError) -> ConfigError {
    ConfigError::Upstream(e)
}

fn fixed_headers(config: &ServeConfig) -> Result<Vec<(String, Secret)>, ConfigError> {
    Ok(match config.keys()? {
        Some((public, secret)) => langfuse_headers(&public, &Secret::new(secret)),
        None => Vec::new(),
    })
}

/// Builds the destination the configuration names.
pub fn from_config(config: &ServeConfig) -> Result<Box<dyn Sink>, ConfigError> {
    let url = config.upstream_url()?;
    let fixed = fixed_headers(config)?;
    let http = |path: &str| {
        HttpSender::builder(format!("{url}{path}"))
            .headers(fixed.clone())
            .retry(retry_policy())
            .attempt_timeout(Some(Duration::from_secs(
                config.upstream_timeout_secs.max(1),
            )))
            .build()
            .map_err(build_err)
    };
    match config.destination()? {
        to @ (Destination::Langfuse | Destination::Ingestion) => {
            let otlp = HttpSender::builder(format!("{url}{}", endpoints::OTLP_PATH))
                .headers(fixed.clone())
                .header("x-langfuse-ingestion-version", "4")
                .retry(retry_policy())
                .build()
                .map_err(build_err)?;
            Ok(Box::new(LangfuseSink {
                shape: if to == Destination::Langfuse {
                    Shape::Langfuse(config.otlp_mode)
                } else {
                    Shape::Events
                },
                otlp,
                ingestion: JsonBatchSender::ingestion(http(endpoints::INGESTION_PATH)?),
                scores: JsonBatchSender::scores(http(endpoints::SCORES_PATH)?),
                keys_configured: config.keys()?.is_some(),
            }))
        }
        Destination::Local => Err(ConfigError::Invalid(
            "the local store is opened by the bridge itself".into(),
        )),
        #[cfg(feature = "kafka")]
        Destination::Kafka => Ok(Box::new(
            kafka::KafkaSink::new(&config.kafka)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?,
        )),
        #[cfg(not(feature = "kafka"))]
        Destination::Kafka => Err(ConfigError::Invalid(
            "--to kafka: this langfuse-bridge was built without the `kafka` feature".into(),
        )),
        Destination::Otlp => {
            let lower = url.to_ascii_lowercase();
            let target = if let Some(rest) = lower.strip_prefix("grpc://") {
                OtlpTarget::Grpc {
                    endpoint: format!("http://{}", &url[url.len() - rest.len()..]),
                    fixed,
                    senders: HashMap::new(),
                }
            } else {
                OtlpTarget::Http {
                    traces: HttpSender::builder(url.clone())
                        .headers(fixed.clone())
                        .retry(retry_policy())
                        .build()
                        .map_err(build_err)?,
                    url: url.clone(),
                    fixed,
                    others: HashMap::new(),
                }
            };
            Ok(Box::new(OtlpSink { target }))
        }
    }
}
