//! A Kafka consumer group's messages as spool records, for `consume`: the kind of each (its
//! `langfuse-kind` header, else `--kafka-encoding` for the Collector's messages), its body
//! checked as `serve` checks a request's, its place (partition, offset) as the record's
//! sequence; the group's rebalance and statistics callbacks; what `consume` counts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::statistics::Statistics;
use serde_json::Value;

use crate::commands::consume_args::KafkaEncoding;
use crate::kafka::{AUTHORIZATION_HEADER, KIND_HEADER, kind};
use crate::sinks::dead_letter::{Reason, Refusal};
use crate::sources::receive::check_otlp;
use langfuse_spool::{RecordKind, SpoolRecord};

/// The consumer options the bridge sets before the user's.
pub const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("partition.assignment.strategy", "cooperative-sticky"),
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    ("statistics.interval.ms", "1000"),
];

/// Counters and gauges of one `consume` process (`/metrics`).
#[derive(Debug, Default)]
pub struct ConsumeMetrics {
    /// Messages read and handled (forwarded, or dead-lettered).
    pub messages: AtomicU64,
    /// Messages whose offsets were committed.
    pub committed_messages: AtomicU64,
    /// Successful offset commits.
    pub commits: AtomicU64,
    /// Commits the group refused (the partitions had moved on).
    pub failed_commits: AtomicU64,
    /// Rebalance events (assignments and revocations).
    pub rebalances: AtomicU64,
    /// Items (spans, events, scores) the destination accepted.
    pub forwarded_items: AtomicU64,
    /// Rounds the destination did not accept.
    pub forward_retries: AtomicU64,
    /// Messages that are not what their kind says.
    pub undecodable_messages: AtomicU64,
    /// Items written to the dead-letter files, by reason.
    pub dead_lettered: Mutex<BTreeMap<&'static str, u64>>,
    /// Consumer lag per partition (librdkafka's statistics), `-1` when unknown.
    pub lag: Mutex<BTreeMap<i32, i64>>,
    /// The partitions assigned now.
    pub assigned: Mutex<BTreeSet<i32>>,
}

impl ConsumeMetrics {
    /// The Prometheus text exposition.
    pub fn render(&self, topic: &str, group: &str) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut out,
            "langfuse_bridge_kafka_messages_total",
            "Messages read and handled.",
            load(&self.messages),
        );
        counter(
            &mut out,
            "langfuse_bridge_kafka_committed_messages_total",
            "Messages whose offsets were committed.",
            load(&self.committed_messages),
        );
        counter(
            &mut out,
            "langfuse_bridge_kafka_commits_total",
            "Offset commits.",
            load(&self.commits),
        );
        counter(
            &mut out,
            "langfuse_bridge_kafka_failed_commits_total",
            "Offset commits the group refused.",
            load(&self.failed_commits),
        );
        counter(
            &mut out,
            "langfuse_bridge_kafka_rebalances_total",
            "Partition assignments and revocations.",
            load(&self.rebalances),
        );
        counter(
            &mut out,
            "langfuse_bridge_kafka_undecodable_messages_total",
            "Messages that are not what their kind says (dead-lettered).",
            load(&self.undecodable_messages),
        );
        counter(
            &mut out,
            "langfuse_bridge_forwarded_items_total",
            "Items the destination accepted.",
            load(&self.forwarded_items),
        );
        counter(
            &mut out,
            "langfuse_bridge_forward_retries_total",
            "Rounds the destination did not accept.",
            load(&self.forward_retries),
        );
        let _ = writeln!(
            out,
            "# HELP langfuse_bridge_dead_lettered_items_total Items written to the dead-letter files.\n# TYPE langfuse_bridge_dead_lettered_items_total counter"
        );
        if let Ok(d) = self.dead_lettered.lock() {
            for (reason, n) in d.iter() {
                let _ = writeln!(
                    out,
                    "langfuse_bridge_dead_lettered_items_total{{reason=\"{reason}\"}} {n}"
                );
            }
        }
        let assigned = self.assigned.lock().map(|a| a.clone()).unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP langfuse_bridge_kafka_assigned_partitions Partitions assigned to this consumer.\n# TYPE langfuse_bridge_kafka_assigned_partitions gauge\nlangfuse_bridge_kafka_assigned_partitions {}",
            assigned.len()
        );
        let _ = writeln!(
            out,
            "# HELP langfuse_bridge_kafka_consumer_lag Messages behind the partition's end (assigned partitions).\n# TYPE langfuse_bridge_kafka_consumer_lag gauge"
        );
        if let Ok(lag) = self.lag.lock() {
            for p in &assigned {
                let value = lag.get(p).copied().unwrap_or(-1);
                let _ = writeln!(
                    out,
                    "langfuse_bridge_kafka_consumer_lag{{topic=\"{}\",group=\"{}\",partition=\"{p}\"}} {value}",
                    escape(topic),
                    escape(group)
                );
            }
        }
        out
    }

    /// Counts `items` dead-lettered for `reason`.
    pub fn dead_lettered(&self, reason: &'static str, items: u64) {
        if let Ok(mut d) = self.dead_lettered.lock() {
            *d.entry(reason).or_default() += items;
        }
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Rebalance and statistics callbacks.
pub struct GroupContext {
    /// Where assignments, revocations and lag are counted.
    pub metrics: Arc<ConsumeMetrics>,
    /// The topic whose lag is kept.
    pub topic: String,
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        if let Ok(mut lag) = self.metrics.lag.lock() {
            for (id, partition) in &topic.partitions {
                if *id >= 0 {
                    lag.insert(*id, partition.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Ok(mut assigned) = self.metrics.assigned.lock() else {
            return;
        };
        match rebalance {
            Rebalance::Assign(list) => {
                let added: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
                assigned.extend(&added);
                tracing::info!(partitions = ?added, "Kafka partitions assigned");
            }
            Rebalance::Revoke(list) => {
                let removed: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
                for p in &removed {
                    assigned.remove(p);
                }
                tracing::info!(partitions = ?removed, "Kafka partitions revoked");
            }
            Rebalance::Error(e) => {
                tracing::warn!(error = %e, "Kafka rebalance error");
            }
        }
        self.metrics.rebalances.fetch_add(1, Ordering::Relaxed);
    }
}

/// One message as read, before shaping.
pub struct Read {
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The record to forward, or why it cannot be (with its body, for the dead-letter file).
    pub record: Result<SpoolRecord, Refusal>,
}

/// The spool-record sequence a message stands for: partition and offset, so that ids derived
/// from it are the same whoever reads the message again.
pub fn sequence(partition: i32, offset: i64) -> u64 {
    (u64::from(partition.unsigned_abs()) << 40)
        | (u64::try_from(offset).unwrap_or(0) & ((1 << 40) - 1))
}

/// Reads one message: its kind from the `langfuse-kind` header (else `encoding`), its body
/// checked as `serve` checks a request's.
pub fn read_message(
    message: &BorrowedMessage<'_>,
    encoding: KafkaEncoding,
    forward_credentials: bool,
) -> Read {
    let mut kind_header = None;
    let mut authorization = None;
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            let value = header.value.and_then(|v| std::str::from_utf8(v).ok());
            if header.key == KIND_HEADER {
                kind_header = Some(value.unwrap_or("").to_owned());
            } else if header.key == AUTHORIZATION_HEADER && forward_credentials {
                authorization = value.map(str::to_owned);
            }
        }
    }
    let body = Bytes::copy_from_slice(message.payload().unwrap_or_default());
    let received_unix_ms = message.timestamp().to_millis().unwrap_or(0);
    let record = match classify(kind_header.as_deref(), encoding, body) {
        Ok((kind, body, items)) => Ok(SpoolRecord {
            sequence: sequence(message.partition(), message.offset()),
            kind: kind as i32,
            received_unix_ms,
            authorization,
            body,
            item_count: items,
        }),
        Err((detail, kind, body)) => Err(Refusal {
            reason: Reason::Undecodable,
            detail,
            kind,
            authorization: None,
            items: 0,
            body,
        }),
    };
    Read {
        partition: message.partition(),
        offset: message.offset(),
        record,
    }
}

type Classified = Result<(RecordKind, Bytes, u32), (String, RecordKind, Vec<u8>)>;

/// The record kind, body and item count of a message, or why it is not what it says.
pub fn classify(kind_header: Option<&str>, encoding: KafkaEncoding, body: Bytes) -> Classified {
    let kind = match kind_header {
        None => match encoding {
            KafkaEncoding::OtlpProto => RecordKind::OtlpProtobuf,
            KafkaEncoding::OtlpJson => RecordKind::OtlpJson,
        },
        Some(kind::OTLP_PROTO) => RecordKind::OtlpProtobuf,
        Some(kind::OTLP_JSON) => RecordKind::OtlpJson,
        Some(kind::INGESTION_BATCH) => RecordKind::IngestionBatch,
        Some(kind::SCORES) => RecordKind::Scores,
        Some(other) => {
            return Err((
                format!("unknown {KIND_HEADER} '{}'", other.escape_debug()),
                RecordKind::Unspecified,
                body.to_vec(),
            ));
        }
    };
    match kind {
        RecordKind::OtlpProtobuf | RecordKind::OtlpJson => match check_otlp(kind, body.clone()) {
            Ok(checked) => Ok((kind, checked.body, checked.spans)),
            Err(e) => Err((e.to_string(), kind, body.to_vec())),
        },
        RecordKind::IngestionBatch => match serde_json::from_slice::<Value>(&body) {
            Ok(v) if v.get("batch").is_some_and(Value::is_array) => {
                let items = v["batch"].as_array().map_or(0, Vec::len);
                Ok((kind, body, u32::try_from(items).unwrap_or(u32::MAX)))
            }
            _ => Err((
                "not an ingestion batch {\"batch\":[...]}".into(),
                kind,
                body.to_vec(),
            )),
        },
        _ => match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Array(a)) => Ok((kind, body, u32::try_from(a.len()).unwrap_or(u32::MAX))),
            Ok(Value::Object(_)) => Ok((kind, body, 1)),
            _ => Err(("not a JSON array of scores".into(), kind, body.to_vec())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::kind;

    #[test]
    fn sequences_keep_partition_and_offset_apart() {
        assert_ne!(sequence(0, 1), sequence(1, 1));
        assert_ne!(sequence(1, 0), sequence(0, 1));
        assert_eq!(sequence(2, 7) >> 40, 2);
        assert_eq!(sequence(2, 7) & 0xff, 7);
    }

    #[test]
    fn messages_are_read_by_their_header_or_the_encoding_and_garbage_is_refused() {
        let json = Bytes::from_static(
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"f7a0e8d1f86e1d6a80854c2106aa25fb","spanId":"99180b94af7b795a","name":"s","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#,
        );
        let (kind, _, items) = classify(None, KafkaEncoding::OtlpJson, json.clone()).unwrap();
        assert_eq!((kind, items), (RecordKind::OtlpJson, 1));
        let (kind, _, _) = classify(
            Some(kind::OTLP_JSON),
            KafkaEncoding::OtlpProto,
            json.clone(),
        )
        .unwrap();
        assert_eq!(kind, RecordKind::OtlpJson);
        // JSON read as protobuf: not what it says.
        let (_, kind, body) = classify(None, KafkaEncoding::OtlpProto, json.clone()).unwrap_err();
        assert_eq!(kind, RecordKind::OtlpProtobuf);
        assert_eq!(body, json.to_vec());
        let batch = Bytes::from_static(br#"{"batch":[{"id":"a"},{"id":"b"}]}"#);
        let (kind, _, items) =
            classify(Some(kind::INGESTION_BATCH), KafkaEncoding::OtlpProto, batch).unwrap();
        assert_eq!((kind, items), (RecordKind::IngestionBatch, 2));
        assert!(classify(Some("avro"), KafkaEncoding::OtlpProto, Bytes::new()).is_err());
        assert!(
            classify(
                Some(kind::SCORES),
                KafkaEncoding::OtlpProto,
                Bytes::from_static(b"x")
            )
            .is_err()
        );
    }

    #[test]
    fn metrics_show_lag_only_for_assigned_partitions() {
        let m = ConsumeMetrics::default();
        m.assigned.lock().unwrap().insert(1);
        m.lag.lock().unwrap().insert(1, 42);
        m.lag.lock().unwrap().insert(2, 7);
        let text = m.render("otlp_spans", "g");
        assert!(text.contains(
            "langfuse_bridge_kafka_consumer_lag{topic=\"otlp_spans\",group=\"g\",partition=\"1\"} 42"
        ));
        assert!(!text.contains("partition=\"2\""));
    }
}
