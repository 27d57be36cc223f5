//! Apache Kafka between bridges: `serve --to kafka` writes what the bridge received to a topic
//! (`sinks::kafka`), `consume` reads it back as a consumer group (`sources::kafka`,
//! `commands::consume`) and forwards it like `serve` (feature `kafka`). This module holds what
//! the two sides share: the client settings ([`KafkaSettings`], [`KafkaArgs`]) and the message
//! format.
//!
//! Messages (the Collector's `otlp_proto` encoding, so either side can be the Collector):
//!
//! | what | key | value | header `langfuse-kind` |
//! |---|---|---|---|
//! | spans | the trace id, 32 lowercase hex digits | `ExportTraceServiceRequest` protobuf holding the spans of that one trace | `otlp_proto` (absent in the Collector's messages: `--kafka-encoding` says) |
//! | ingestion batch | none | `{"batch":[...]}` as the client sent it | `ingestion_batch` |
//! | scores | none | `[score, …]` as the client sent them | `scores` |
//!
//! With `--kafka-forward-credentials` on both sides, a message also carries the client's
//! `Authorization` header in the header `authorization`, and `consume` forwards it as that
//! client; without it, `consume` uses its own keys and ignores such headers.
//!
//! Without the `kafka` feature the settings parse (so a configuration file stays valid) but
//! `--to kafka` and `consume` report that the binary was built without Kafka.

#![cfg_attr(not(feature = "kafka"), allow(dead_code))]

use serde::Deserialize;

/// The header naming a message's kind.
pub const KIND_HEADER: &str = "langfuse-kind";
/// The header carrying the client's `Authorization` (only with `--kafka-forward-credentials`).
pub const AUTHORIZATION_HEADER: &str = "authorization";
/// The default topic: the OpenTelemetry Collector's default for spans.
pub const DEFAULT_TOPIC: &str = "otlp_spans";

/// The `langfuse-kind` header values.
pub mod kind {
    /// An `ExportTraceServiceRequest`, protobuf.
    pub const OTLP_PROTO: &str = "otlp_proto";
    /// An `ExportTraceServiceRequest`, OTLP/JSON.
    pub const OTLP_JSON: &str = "otlp_json";
    /// A Langfuse ingestion batch `{"batch":[...]}`.
    pub const INGESTION_BATCH: &str = "ingestion_batch";
    /// A JSON array of Langfuse scores.
    pub const SCORES: &str = "scores";
}

/// The Kafka client settings of `serve --to kafka` and `consume` (TOML table `[kafka]` of the
/// `serve` configuration file; flags `--kafka-*`).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `HOST:PORT[,…]`.
    pub brokers: Option<String>,
    /// The topic.
    pub topic: String,
    /// Carry (producer) or honour (consumer) the client's `Authorization` in a header.
    pub forward_credentials: bool,
    /// `security.protocol`: `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: Option<String>,
    /// `sasl.mechanism`: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub sasl_mechanism: Option<String>,
    /// `sasl.username`.
    pub sasl_username: Option<String>,
    /// `sasl.password` (never logged).
    pub sasl_password: Option<String>,
    /// `ssl.ca.location`: CA certificates (PEM) to verify the brokers with.
    pub ssl_ca_location: Option<String>,
    /// `ssl.certificate.location`: the client's certificate (PEM), for mutual TLS.
    pub ssl_certificate_location: Option<String>,
    /// `ssl.key.location`: the client's private key (PEM), for mutual TLS.
    pub ssl_key_location: Option<String>,
    /// Any other librdkafka option, `key=value` (applied last).
    pub options: Vec<String>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            brokers: None,
            topic: DEFAULT_TOPIC.to_owned(),
            forward_credentials: false,
            security_protocol: None,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            ssl_ca_location: None,
            ssl_certificate_location: None,
            ssl_key_location: None,
            options: Vec::new(),
        }
    }
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("forward_credentials", &self.forward_credentials)
            .field("security_protocol", &self.security_protocol)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field(
                "sasl_password",
                &self.sasl_password.as_ref().map(|_| "<redacted>"),
            )
            .field("ssl_ca_location", &self.ssl_ca_location)
            .field("ssl_certificate_location", &self.ssl_certificate_location)
            .field("ssl_key_location", &self.ssl_key_location)
            .field("options", &self.options.len())
            .finish()
    }
}

/// A Kafka setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaSettingsError {
    /// No `--kafka-brokers`.
    #[error("--kafka-brokers is required (HOST:PORT[,…])")]
    NoBrokers,
    /// An empty topic name.
    #[error("--kafka-topic must not be empty")]
    NoTopic,
    /// A `--kafka-option` that is not `key=value`.
    #[error("--kafka-option '{0}' is not key=value")]
    Option(String),
}

impl KafkaSettings {
    /// The librdkafka options these settings name, in the order they are applied (the
    /// `--kafka-option` ones last, so they win).
    ///
    /// ```
    /// use langfuse_bridge::KafkaSettings;
    ///
    /// let settings = KafkaSettings {
    ///     brokers: Some("127.0.0.1:9092".into()),
    ///     sasl_mechanism: Some("PLAIN".into()),
    ///     options: vec!["linger.ms=20".into()],
    ///     ..KafkaSettings::default()
    /// };
    /// let options = settings.client_options().unwrap();
    /// assert_eq!(options[0], ("bootstrap.servers".to_owned(), "127.0.0.1:9092".to_owned()));
    /// assert!(options.contains(&("linger.ms".to_owned(), "20".to_owned())));
    /// ```
    ///
    /// # Errors
    /// No brokers, an empty topic, or a malformed `--kafka-option`.
    pub fn client_options(&self) -> Result<Vec<(String, String)>, KafkaSettingsError> {
        let brokers = self
            .brokers
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .ok_or(KafkaSettingsError::NoBrokers)?;
        if self.topic.trim().is_empty() {
            return Err(KafkaSettingsError::NoTopic);
        }
        let mut options = vec![("bootstrap.servers".to_owned(), brokers.to_owned())];
        let named = [
            ("security.protocol", &self.security_protocol),
            ("sasl.mechanism", &self.sasl_mechanism),
            ("sasl.username", &self.sasl_username),
            ("sasl.password", &self.sasl_password),
            ("ssl.ca.location", &self.ssl_ca_location),
            ("ssl.certificate.location", &self.ssl_certificate_location),
            ("ssl.key.location", &self.ssl_key_location),
        ];
        for (key, value) in named {
            if let Some(v) = value {
                options.push((key.to_owned(), v.clone()));
            }
        }
        for option in &self.options {
            let (key, value) = option
                .split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .ok_or_else(|| KafkaSettingsError::Option(option.clone()))?;
            options.push((key.trim().to_owned(), value.trim().to_owned()));
        }
        Ok(options)
    }
}

/// The `--kafka-*` flags shared by `serve` and `consume`; set ones override the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap brokers, HOST:PORT[,…] (`--to kafka`, `consume`).
    #[arg(long, value_name = "HOSTS", env = "LANGFUSE_BRIDGE_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Kafka topic [default: otlp_spans, the OpenTelemetry Collector's].
    #[arg(long, value_name = "TOPIC", env = "LANGFUSE_BRIDGE_KAFKA_TOPIC")]
    pub kafka_topic: Option<String>,
    /// Carry each client's Authorization in a message header (`serve`), or forward it as that
    /// client (`consume`): a trust decision, set on both sides or on neither.
    #[arg(long, env = "LANGFUSE_BRIDGE_KAFKA_FORWARD_CREDENTIALS")]
    pub kafka_forward_credentials: bool,
    /// Kafka security.protocol: plaintext, ssl, sasl_plaintext or sasl_ssl (ssl and SCRAM
    /// need a build with the `kafka-tls` feature).
    #[arg(
        long,
        value_name = "PROTOCOL",
        env = "LANGFUSE_BRIDGE_KAFKA_SECURITY_PROTOCOL"
    )]
    pub kafka_security_protocol: Option<String>,
    /// Kafka sasl.mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(
        long,
        value_name = "MECHANISM",
        env = "LANGFUSE_BRIDGE_KAFKA_SASL_MECHANISM"
    )]
    pub kafka_sasl_mechanism: Option<String>,
    /// Kafka sasl.username.
    #[arg(long, value_name = "USER", env = "LANGFUSE_BRIDGE_KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,
    /// Kafka sasl.password (prefer the environment variable to the flag).
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "LANGFUSE_BRIDGE_KAFKA_SASL_PASSWORD",
        hide_env_values = true
    )]
    pub kafka_sasl_password: Option<String>,
    /// Kafka ssl.ca.location: CA certificates (PEM) for the brokers.
    #[arg(long, value_name = "FILE", env = "LANGFUSE_BRIDGE_KAFKA_SSL_CA")]
    pub kafka_ssl_ca: Option<String>,
    /// Kafka ssl.certificate.location: the client certificate (PEM), for mutual TLS.
    #[arg(
        long,
        value_name = "FILE",
        env = "LANGFUSE_BRIDGE_KAFKA_SSL_CERTIFICATE"
    )]
    pub kafka_ssl_certificate: Option<String>,
    /// Kafka ssl.key.location: the client key (PEM), for mutual TLS.
    #[arg(long, value_name = "FILE", env = "LANGFUSE_BRIDGE_KAFKA_SSL_KEY")]
    pub kafka_ssl_key: Option<String>,
    /// Any librdkafka option, KEY=VALUE (repeatable; applied last).
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    pub kafka_options: Vec<String>,
}

impl KafkaArgs {
    /// Applies the flags that are set to `settings`.
    pub fn apply(&self, settings: &mut KafkaSettings) {
        macro_rules! set {
            ($($flag:ident => $field:ident),* $(,)?) => {
                $(if let Some(v) = &self.$flag { settings.$field = Some(v.clone()); })*
            };
        }
        set!(
            kafka_brokers => brokers,
            kafka_security_protocol => security_protocol,
            kafka_sasl_mechanism => sasl_mechanism,
            kafka_sasl_username => sasl_username,
            kafka_sasl_password => sasl_password,
            kafka_ssl_ca => ssl_ca_location,
            kafka_ssl_certificate => ssl_certificate_location,
            kafka_ssl_key => ssl_key_location,
        );
        if let Some(topic) = &self.kafka_topic {
            settings.topic.clone_from(topic);
        }
        settings.forward_credentials |= self.kafka_forward_credentials;
        settings.options.extend(self.kafka_options.iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_need_brokers_and_key_value_pairs_and_keep_their_order() {
        let mut settings = KafkaSettings::default();
        assert_eq!(
            settings.client_options(),
            Err(KafkaSettingsError::NoBrokers)
        );
        settings.brokers = Some(" 127.0.0.1:1,127.0.0.1:2 ".into());
        settings.security_protocol = Some("sasl_plaintext".into());
        settings.options = vec!["security.protocol=plaintext".into()];
        let options = settings.client_options().unwrap();
        let protocols: Vec<_> = options
            .iter()
            .filter(|(k, _)| k == "security.protocol")
            .map(|(_, v)| v.as_str())
            .collect();
        // The pass-through option comes last: librdkafka keeps the last value set.
        assert_eq!(protocols, ["sasl_plaintext", "plaintext"]);
        assert_eq!(options[0].1, "127.0.0.1:1,127.0.0.1:2");
        settings.options = vec!["no-equals-sign".into()];
        assert_eq!(
            settings.client_options(),
            Err(KafkaSettingsError::Option("no-equals-sign".into()))
        );
        settings.options.clear();
        settings.topic = " ".into();
        assert_eq!(settings.client_options(), Err(KafkaSettingsError::NoTopic));
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let settings = KafkaSettings {
            sasl_password: Some("hunter2-secret".into()),
            ..KafkaSettings::default()
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn flags_override_the_file_and_options_add_up() {
        let mut settings = KafkaSettings {
            brokers: Some("file:9092".into()),
            options: vec!["linger.ms=5".into()],
            ..KafkaSettings::default()
        };
        KafkaArgs {
            kafka_brokers: Some("flag:9092".into()),
            kafka_topic: Some("spans".into()),
            kafka_options: vec!["acks=all".into()],
            ..KafkaArgs::default()
        }
        .apply(&mut settings);
        assert_eq!(settings.brokers.as_deref(), Some("flag:9092"));
        assert_eq!(settings.topic, "spans");
        assert_eq!(settings.options, ["linger.ms=5", "acks=all"]);
        assert!(!settings.forward_credentials);
    }
}
