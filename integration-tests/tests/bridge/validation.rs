//! "Never acknowledge what will be dropped": the bridge validates a request with the decoder
//! and the record model its forwarder uses, so what it acknowledges is delivered, and what a
//! destination still refuses later lands in the dead-letter file with the reason.
//!
//! - protobuf exports whose first `ResourceSpans` is 100..=140 bytes long (0x0A 0x7B, "\n{", at
//!   123) are stored by `--to local` and forwarded by `--otlp-mode canonical`;
//! - one span with an empty span id among ten: 200 with OTLP partial success, the ten stored
//!   (HTTP protobuf, HTTP JSON, gRPC);
//! - ingestion events the record model does not read: 400 each in the 207, the others stored;
//! - an upstream refusing for good (400): the items in the dead-letter file, counted.

use crate::bridge_support;

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use bridge_support::{RunningBridge, get, metric, post, start, temp_dir, test_config, wait_until};
use integration_tests::receiver::{Action, Receiver};
use langfuse_bridge::Bridge;
use langfuse_bridge::{Destination, OtlpMode};
use langfuse_local::Store;
use langfuse_otel_core::otlp;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};

const PB: (&str, &str) = ("content-type", "application/x-protobuf");
const JSON: (&str, &str) = ("content-type", "application/json");

/// A `--to local` bridge and its store (a second reader of the same file, as the viewer is).
fn local_bridge(tag: &str) -> (RunningBridge, Store, std::path::PathBuf) {
    let mut config = test_config(tag, "http://unused", "local");
    config.to = Some(Destination::Local);
    config.upstream = None;
    let dir = temp_dir(&format!("{tag}-store"));
    std::fs::create_dir_all(&dir).unwrap();
    config.db = dir.join("traces.db");
    let bridge = start(Bridge::new(config));
    let store = Store::open(dir.join("traces.db")).unwrap();
    (bridge, store, dir)
}

fn trace_id(n: u64) -> Vec<u8> {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id[15] = 0x7b;
    id.to_vec()
}

/// Span ids are observation ids in the store: unique per export.
fn span_id(n: u64, i: u8) -> Vec<u8> {
    let mut id = n.to_be_bytes();
    id[0] = i;
    id.to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn span(trace: &[u8], id: Vec<u8>, name: String) -> Span {
    Span {
        trace_id: trace.to_vec(),
        span_id: id,
        name,
        start_time_unix_nano: 1_767_258_000_000_000_000,
        end_time_unix_nano: 1_767_258_000_250_000_000,
        ..Span::default()
    }
}

/// An export of one trace (`trace_id(n)`) whose first `ResourceSpans` encodes to exactly
/// `len` bytes (span name, scope name and schema URL lengths chosen to fit: a nested length
/// over 127 takes a second byte), followed by a second `ResourceSpans` of the same trace.
fn export_with_first_resource_spans_of(n: u64, len: usize) -> ExportTraceServiceRequest {
    let trace = trace_id(n);
    let resource_spans = |scope: usize, name: usize, schema: usize, id: u8| ResourceSpans {
        schema_url: "u".repeat(schema),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "s".repeat(scope),
                ..InstrumentationScope::default()
            }),
            spans: vec![span(&trace, span_id(n, id), "n".repeat(name))],
            ..ScopeSpans::default()
        }],
        ..ResourceSpans::default()
    };
    let first = (0..64)
        .flat_map(|scope| (0..128).map(move |name| (scope, name)))
        .flat_map(|(scope, name)| (0..4).map(move |schema| (scope, name, schema)))
        .map(|(scope, name, schema)| resource_spans(scope, name, schema, 1))
        .find(|rs| rs.encoded_len() == len)
        .unwrap_or_else(|| panic!("no ResourceSpans of {len} bytes"));
    ExportTraceServiceRequest {
        resource_spans: vec![first, resource_spans(2, 2, 0, 2)],
    }
}

/// A series of the bridge's `/metrics` (0 when absent).
fn metric_of(bridge: &RunningBridge, series: &str) -> f64 {
    let text = String::from_utf8(get(&format!("{}/metrics", bridge.url())).unwrap().body)
        .unwrap_or_default();
    metric(&text, series).unwrap_or(0.0)
}

/// Observations the store holds for a trace.
fn observations(store: &Store, trace: &[u8]) -> Vec<String> {
    store
        .trace(&hex(trace))
        .ok()
        .flatten()
        .map(|t| t.observations.iter().map(|o| o.id.clone()).collect())
        .unwrap_or_default()
}

#[test]
fn protobuf_exports_of_every_first_resource_spans_length_are_stored_locally() {
    let (bridge, store, dir) = local_bridge("lengths-local");
    for len in 100..=140 {
        let body = export_with_first_resource_spans_of(len as u64, len).encode_to_vec();
        let answer = post(&format!("{}/v1/traces", bridge.url()), &[PB], &body).unwrap();
        assert_eq!(answer.status, 200, "len {len}");
    }
    let missing = || -> Vec<u64> {
        (100..=140u64)
            .filter(|&len| observations(&store, &trace_id(len)).len() != 2)
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(30), || missing().is_empty()),
        "exports acknowledged but not stored, by first ResourceSpans length: {:?}",
        missing()
    );
    bridge.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn protobuf_exports_of_every_first_resource_spans_length_are_forwarded_canonically() {
    let receiver = Receiver::start(|_, _| Action::ok());
    let mut config = test_config("lengths-canonical", &receiver.base_url(), "langfuse");
    config.otlp_mode = OtlpMode::Canonical;
    let bridge = start(Bridge::new(config));
    for len in 100..=140 {
        let body = export_with_first_resource_spans_of(len as u64, len).encode_to_vec();
        let answer = post(&format!("{}/v1/traces", bridge.url()), &[PB], &body).unwrap();
        assert_eq!(answer.status, 200, "len {len}");
    }
    // The canonical bodies are protobuf: decoded as such (not sniffed), trace by trace.
    let forwarded_traces = || -> std::collections::BTreeMap<String, usize> {
        let mut traces = std::collections::BTreeMap::new();
        for request in receiver.requests() {
            let Ok(batch) = otlp::decode_protobuf(&request.body) else {
                continue;
            };
            for span in batch
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
            {
                *traces.entry(span.trace_id.to_string()).or_insert(0) += 1;
            }
        }
        traces
    };
    let missing = || -> Vec<u64> {
        let traces = forwarded_traces();
        (100..=140u64)
            .filter(|&len| traces.get(&hex(&trace_id(len))) != Some(&2))
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(30), || missing().is_empty()),
        "exports acknowledged but not forwarded, by first ResourceSpans length: {:?}",
        missing()
    );
    let undecodable = "langfuse_bridge_dead_lettered_items_total{reason=\"undecodable\"}";
    assert_eq!(metric_of(&bridge, undecodable), 0.0);
    bridge.stop();
}

/// Ten spans and, fifth, one with an empty span id.
fn ten_and_one_without_span_id(n: u64) -> ExportTraceServiceRequest {
    let trace = trace_id(n);
    let mut spans: Vec<Span> = (1..=10u8)
        .map(|i| span(&trace, span_id(n, i), format!("valid {i}")))
        .collect();
    spans.insert(4, span(&trace, Vec::new(), "empty span id".into()));
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn assert_ten_stored(store: &Store, trace: &[u8]) {
    assert!(
        wait_until(Duration::from_secs(20), || observations(store, trace).len()
            == 10),
        "the ten valid spans were not stored: {:?}",
        observations(store, trace)
    );
}

#[test]
fn one_span_with_an_empty_id_is_refused_by_partial_success_and_the_rest_stored_http_protobuf() {
    let (bridge, store, dir) = local_bridge("partial-pb");
    let body = ten_and_one_without_span_id(1).encode_to_vec();
    let answer = post(&format!("{}/v1/traces", bridge.url()), &[PB], &body).unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("application/x-protobuf")
    );
    let response = ExportTraceServiceResponse::decode(answer.body.as_slice()).unwrap();
    let partial = response.partial_success.expect("partial_success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("spans[4]: spanId:absent"),
        "{}",
        partial.error_message
    );
    assert_ten_stored(&store, &trace_id(1));
    let rejected = "langfuse_bridge_rejected_spans_total{endpoint=\"otlp_http\"}";
    assert_eq!(metric_of(&bridge, rejected), 1.0);
    bridge.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_span_without_an_id_is_refused_by_partial_success_and_the_rest_stored_http_json() {
    let (bridge, store, dir) = local_bridge("partial-json");
    let trace = hex(&trace_id(2));
    let mut spans: Vec<Value> = (1..=10u8)
        .map(|i| {
            json!({
                "traceId": trace, "spanId": hex(&span_id(2, i)), "name": format!("valid {i}"),
                "startTimeUnixNano": "1767258000000000000", "endTimeUnixNano": "1767258000250000000"
            })
        })
        .collect();
    // In OTLP/JSON any string is an id the server takes; the empty span id it refuses is
    // the absent one (protobuf's empty bytes are absent after its decoding).
    spans.insert(
        4,
        json!({"traceId": trace, "name": "empty span id", "startTimeUnixNano": "1767258000000000000"}),
    );
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]});
    let answer = post(
        &format!("{}/api/public/otel/v1/traces", bridge.url()),
        &[JSON],
        body.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let partial = &answer.json()["partialSuccess"];
    assert_eq!(partial["rejectedSpans"], "1", "{}", answer.json());
    assert!(
        partial["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("spans[4]: spanId:absent")),
        "{partial}"
    );
    assert_ten_stored(&store, &trace_id(2));
    bridge.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_span_with_an_empty_id_is_refused_by_partial_success_and_the_rest_stored_grpc() {
    let (bridge, store, dir) = local_bridge("partial-grpc");
    let grpc = bridge.grpc.unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let response = rt.block_on(async {
        let mut client = TraceServiceClient::connect(format!("http://{grpc}"))
            .await
            .unwrap();
        client
            .export(ten_and_one_without_span_id(3))
            .await
            .unwrap()
            .into_inner()
    });
    // Closes the client's connection, or the bridge's graceful stop waits for it.
    drop(rt);
    let partial = response.partial_success.expect("partial_success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(!partial.error_message.is_empty());
    assert_ten_stored(&store, &trace_id(3));
    bridge.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ingestion_events_of_the_wrong_schema_get_their_400_and_the_others_are_stored() {
    let (bridge, store, dir) = local_bridge("schema");
    let trace = "5c0e1a7e5c0e1a7e5c0e1a7e5c0e1a7e";
    let ts = "2026-01-01T09:00:00.000Z";
    let batch = json!({"batch": [
        {"id": "ok-trace", "type": "trace-create", "timestamp": ts,
         "body": {"id": trace, "name": "schema test", "clientOnlyKey": 1}},
        {"id": "ok-span", "type": "span-create", "timestamp": ts,
         "body": {"id": "span-ok", "traceId": trace, "startTime": ts}},
        {"id": "unknown-type", "type": "span-explode", "timestamp": ts,
         "body": {"id": "span-x", "traceId": trace}},
        {"id": "numeric-id", "type": "span-create", "timestamp": ts,
         "body": {"id": 42, "traceId": trace}},
        {"id": "string-usage", "type": "generation-create", "timestamp": ts,
         "body": {"id": "gen-x", "traceId": trace, "usageDetails": "12 tokens"}},
    ]});
    let answer = post(
        &format!("{}/api/public/ingestion", bridge.url()),
        &[JSON],
        batch.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(answer.status, 207);
    let result = answer.json();
    let ids = |key: &str, status: u64| -> Vec<String> {
        result[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["status"] == status)
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids("successes", 201), ["ok-trace", "ok-span"], "{result}");
    assert_eq!(
        ids("errors", 400),
        ["unknown-type", "numeric-id", "string-usage"],
        "{result}"
    );
    assert!(
        wait_until(Duration::from_secs(20), || store
            .trace(trace)
            .ok()
            .flatten()
            .is_some_and(|t| t.observations.len() == 1)),
        "the valid events were not stored"
    );
    let stored = store.trace(trace).unwrap().unwrap();
    assert_eq!(stored.observations[0].id, "span-ok");
    assert_eq!(stored.name.as_deref(), Some("schema test"));
    // Nothing refused later: everything acknowledged was stored.
    let store_rejected = "langfuse_bridge_dead_lettered_items_total{reason=\"store_rejected\"}";
    assert_eq!(metric_of(&bridge, store_rejected), 0.0);
    bridge.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The lines of the dead-letter files in `spool/dead-letter/`, read as the format documents
/// them (JSON lines).
fn dead_letters(spool: &Path) -> Vec<Value> {
    let Ok(files) = std::fs::read_dir(spool.join("dead-letter")) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = files.filter_map(Result::ok).map(|f| f.path()).collect();
    paths.sort();
    let text: String = paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a dead-letter line is JSON"))
        .collect()
}

#[test]
fn what_an_upstream_refuses_for_good_is_in_the_dead_letter_file_and_counted() {
    let receiver = Receiver::start(|_, _| Action::Respond {
        status: 400,
        headers: vec![("content-type".into(), "application/json".into())],
        body: br#"{"message":"refused by the test upstream"}"#.to_vec(),
    });
    let config = test_config("dead-letter", &receiver.base_url(), "langfuse");
    let spool = config.spool.clone();
    let bridge = start(Bridge::new(config));
    let export = bridge_support::export(7, 3);
    let answer = post(
        &format!("{}/v1/traces", bridge.url()),
        &[PB, ("authorization", "Basic Y2xpZW50OmtleQ==")],
        &export.encode_to_vec(),
    )
    .unwrap();
    assert_eq!(answer.status, 200);
    assert!(
        wait_until(Duration::from_secs(20), || !dead_letters(&spool).is_empty()),
        "nothing in the dead-letter file"
    );
    let entries = dead_letters(&spool);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry["version"], 1);
    assert_eq!(entry["destination"], "langfuse");
    assert_eq!(entry["reason"], "upstream_rejected");
    let detail = entry["detail"].as_str().unwrap();
    assert!(detail.contains("HTTP 400"), "{detail}");
    assert!(detail.contains("refused by the test upstream"), "{detail}");
    assert_eq!(entry["kind"], "otlp_protobuf");
    assert_eq!(entry["items"], 3);
    assert!(entry["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    // Kept with the client's credentials, for a replay as that client.
    assert_eq!(entry["authorization"], "Basic Y2xpZW50OmtleQ==");
    let body = base64::engine::general_purpose::STANDARD
        .decode(entry["body_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        ExportTraceServiceRequest::decode(body.as_slice()).unwrap(),
        export
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = spool.join("dead-letter");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for file in std::fs::read_dir(&dir).unwrap() {
            assert_eq!(mode(&file.unwrap().path()), 0o600);
        }
    }
    let upstream_rejected =
        "langfuse_bridge_dead_lettered_items_total{reason=\"upstream_rejected\"}";
    // The counter follows the durable write of the file: wait for it.
    assert!(
        wait_until(Duration::from_secs(10), || metric_of(
            &bridge,
            upstream_rejected
        ) == 3.0),
        "{upstream_rejected} = {}",
        metric_of(&bridge, upstream_rejected)
    );
    bridge.stop();
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn items_a_destination_cannot_carry_are_dead_lettered_not_dropped() {
    let receiver = Receiver::start(|_, _| Action::ok());
    let config = test_config("dead-letter-otlp", &receiver.base_url(), "otlp");
    let spool = config.spool.clone();
    let bridge = start(Bridge::new(config));
    let score = json!({"name": "quality", "value": 1, "traceId": "t"});
    let answer = post(
        &format!("{}/api/public/scores", bridge.url()),
        &[JSON],
        score.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(answer.status, 200);
    assert!(wait_until(Duration::from_secs(20), || !dead_letters(
        &spool
    )
    .is_empty()));
    let entry = &dead_letters(&spool)[0];
    assert_eq!(entry["reason"], "unsupported_by_destination");
    assert_eq!(entry["kind"], "scores");
    assert_eq!(entry["body"][0]["name"], "quality");
    let unsupported =
        "langfuse_bridge_dead_lettered_items_total{reason=\"unsupported_by_destination\"}";
    // The counter follows the durable write of the file: wait for it.
    assert!(
        wait_until(Duration::from_secs(10), || metric_of(&bridge, unsupported)
            == 1.0),
        "{unsupported} = {}",
        metric_of(&bridge, unsupported)
    );
    bridge.stop();
    let _ = std::fs::remove_dir_all(&spool);
}

/// Log records of an application that is no coding agent are acknowledged like any export:
/// with `--logs agents` (the default) they become no trace, so they are kept in the
/// dead-letter file, not dropped.
#[test]
fn other_applications_logs_are_dead_lettered_not_dropped() {
    let mut config = test_config("dead-letter-logs", "http://unused", "local");
    config.upstream = None;
    let dir = temp_dir("dead-letter-logs-store");
    std::fs::create_dir_all(&dir).unwrap();
    config.db = dir.join("traces.db");
    let spool = config.spool.clone();
    let bridge = start(Bridge::new(config));
    let logs = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]},
        "scopeLogs": [{"scope": {"name": "billing"}, "logRecords": [
            {"timeUnixNano": "1767258000000000000", "body": {"stringValue": "invoice 1 sent"}},
            {"timeUnixNano": "1767258000100000000", "body": {"stringValue": "invoice 2 sent"}}
        ]}]
    }]});
    let answer = post(
        &format!("{}/v1/logs", bridge.url()),
        &[JSON],
        logs.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(answer.status, 200);
    assert!(
        wait_until(Duration::from_secs(20), || !dead_letters(&spool).is_empty()),
        "the log records were neither stored nor dead-lettered"
    );
    let entry = &dead_letters(&spool)[0];
    assert_eq!(entry["reason"], "unsupported_by_destination");
    assert_eq!(entry["items"], 2);
    assert_eq!(
        entry["body"]["resourceLogs"][0]["scopeLogs"][0]["logRecords"][1]["body"]["stringValue"],
        "invoice 2 sent"
    );
    bridge.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&spool);
}

/// The binary built alone (with its own features, as `cargo install` builds it) takes an
/// `https://` upstream such as Langfuse Cloud: it starts and listens (without the transport's
/// `tls` feature it refused to start: "needs TLS, but the `tls` feature is off").
#[test]
fn the_binary_alone_starts_with_an_https_upstream() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let spool = temp_dir("https-upstream");
    let upstream = integration_tests::receiver::ReservedPort::new();
    let mut child = Command::new(bridge_support::bridge_binary())
        .env_clear()
        .args(["serve", "--http", "127.0.0.1:0", "--grpc", "off"])
        .args([
            "--to",
            "langfuse",
            "--public-key",
            "pk-lf-1",
            "--secret-key",
            "sk-lf-1",
        ])
        .arg("--upstream")
        .arg(format!("https://127.0.0.1:{}", upstream.port()))
        .arg("--spool")
        .arg(&spool)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start langfuse-bridge");
    let stderr = child.stderr.take().expect("piped stderr");
    // Lines until it listens, or until it exits (the stream ends).
    let mut seen = Vec::new();
    let mut listening = false;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        listening = line.contains("langfuse-bridge listening");
        seen.push(line);
        if listening {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "the bridge did not start:\n{}", seen.join("\n"));
}
