//! The `consume` command line (parsed in every build; run only with the `kafka` feature).

use std::path::PathBuf;
use std::str::FromStr;

use crate::kafka::{KafkaArgs, KafkaSettings};
use crate::serve::config::{
    ConfigError, Destination, LogFormat, ServeConfig, TranslationArgs, UpstreamArgs,
};

/// How a message without a `langfuse-kind` header is read (`--kafka-encoding`): the
/// OpenTelemetry Collector's encodings for spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KafkaEncoding {
    /// `otlp_proto`: an `ExportTraceServiceRequest`, protobuf (the Collector's default).
    #[default]
    OtlpProto,
    /// `otlp_json`: an `ExportTraceServiceRequest`, OTLP/JSON.
    OtlpJson,
}

impl FromStr for KafkaEncoding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "otlp_proto" => Ok(KafkaEncoding::OtlpProto),
            "otlp_json" => Ok(KafkaEncoding::OtlpJson),
            other => Err(format!(
                "unknown Kafka encoding '{other}' (expected otlp_proto or otlp_json)"
            )),
        }
    }
}

/// Arguments of `langfuse-bridge consume`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsumeArgs {
    /// The Kafka client.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Consumer group: every `consume` of one group shares the topic's partitions.
    #[arg(long, value_name = "GROUP", env = "LANGFUSE_BRIDGE_KAFKA_GROUP")]
    pub kafka_group: String,
    /// How messages without a `langfuse-kind` header are read: otlp_proto or otlp_json.
    #[arg(
        long,
        value_name = "ENCODING",
        env = "LANGFUSE_BRIDGE_KAFKA_ENCODING",
        default_value = "otlp_proto"
    )]
    pub kafka_encoding: KafkaEncoding,
    /// Destination: langfuse, ingestion, otlp or local [default: langfuse when an upstream or keys are set, else local].
    #[arg(long, value_name = "DEST", env = "LANGFUSE_BRIDGE_TO")]
    pub to: Option<Destination>,
    /// Where and as whom records are forwarded (the keys serve messages without forwarded
    /// credentials).
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    /// How records are translated on the way out.
    #[command(flatten)]
    pub translation: TranslationArgs,
    /// Directory of the dead-letter files (`DIR/dead-letter/<day>.jsonl`).
    #[arg(
        long,
        value_name = "DIR",
        env = "LANGFUSE_BRIDGE_DEAD_LETTER",
        default_value = "./langfuse-bridge-consume"
    )]
    pub dead_letter: PathBuf,
    /// `/health` and `/metrics` listener, or `off`.
    #[arg(
        long,
        value_name = "ADDR",
        env = "LANGFUSE_BRIDGE_CONSUME_HTTP",
        default_value = "127.0.0.1:9464"
    )]
    pub http: String,
    /// Most messages handled (and then committed) per round.
    #[arg(
        long,
        value_name = "N",
        env = "LANGFUSE_BRIDGE_KAFKA_MAX_BATCH",
        default_value_t = 500
    )]
    pub kafka_max_batch: usize,
    /// Log format: text or json [default: text].
    #[arg(long, value_name = "FORMAT", env = "LANGFUSE_BRIDGE_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, as for `serve` [default: RUST_LOG, else info].
    #[arg(long, value_name = "FILTER", env = "LANGFUSE_BRIDGE_LOG_LEVEL")]
    pub log_level: Option<String>,
}

impl ConsumeArgs {
    /// The Kafka settings the flags name.
    pub fn kafka_settings(&self) -> KafkaSettings {
        let mut settings = KafkaSettings::default();
        self.kafka.apply(&mut settings);
        settings
    }

    /// The destination part of a `serve` configuration (the same flags mean the same).
    ///
    /// # Errors
    /// `--to kafka` (a consumer does not write back to Kafka), or what `serve` refuses.
    pub fn destination_config(&self) -> Result<ServeConfig, ConfigError> {
        let mut config = ServeConfig {
            to: self.to,
            upstream: self.upstream.upstream.clone(),
            public_key: self.upstream.keys.public_key.clone(),
            secret_key: self.upstream.secret_key(),
            ..ServeConfig::default()
        };
        if let Some(mode) = self.translation.otlp_mode {
            config.otlp_mode = mode;
        }
        if let Some(compat) = self.translation.compat {
            config.compat = compat;
        }
        if let Some(db) = &self.translation.db {
            config.db.clone_from(db);
        }
        if config.destination()? == Destination::Kafka {
            return Err(ConfigError::Invalid(
                "consume forwards to langfuse, ingestion, otlp or local, not back to kafka".into(),
            ));
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: ConsumeArgs,
    }

    #[test]
    fn the_destination_flags_mean_what_they_mean_for_serve() {
        let cli = Cli::try_parse_from([
            "consume",
            "--kafka-brokers",
            "127.0.0.1:9092",
            "--kafka-group",
            "g",
            "--to",
            "ingestion",
            "--upstream",
            "http://127.0.0.1:3000/",
            "--kafka-encoding",
            "otlp_json",
        ])
        .unwrap();
        let config = cli.args.destination_config().unwrap();
        assert_eq!(config.destination().unwrap(), Destination::Ingestion);
        assert_eq!(config.upstream_url().unwrap(), "http://127.0.0.1:3000");
        assert_eq!(cli.args.kafka_encoding, KafkaEncoding::OtlpJson);
        assert_eq!(cli.args.kafka_settings().topic, crate::kafka::DEFAULT_TOPIC);
    }

    #[test]
    fn back_to_kafka_and_unknown_encodings_are_refused() {
        let cli = Cli::try_parse_from(["consume", "--kafka-group", "g", "--to", "kafka"]).unwrap();
        assert!(cli.args.destination_config().is_err());
        assert!(
            Cli::try_parse_from(["consume", "--kafka-group", "g", "--kafka-encoding", "avro"])
                .is_err()
        );
    }
}
