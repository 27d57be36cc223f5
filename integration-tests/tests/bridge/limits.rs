//! Every limit and bad input of `langfuse-bridge serve`, over HTTP and gRPC: 413 for bodies
//! and decompressed bodies over their limits (gzip bombs), 400 for malformed protobuf, JSON
//! and gzip, 415 for unsupported content types and encodings, 401 with keys configured, 207
//! per-event answers, 429 / `RESOURCE_EXHAUSTED` with a retry delay when the spool is full and
//! acceptance again once the upstream drained it. No secret appears in answers or metrics.

use crate::bridge_support;

use std::time::Duration;

use bridge_support::{
    Answer, RunningBridge, basic, export, export_bytes, get, post, start, test_config, wait_until,
};
use integration_tests::receiver::{Action, Receiver, ReservedPort};
use langfuse_bridge::Bridge;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tonic::Code;

const PB: (&str, &str) = ("content-type", "application/x-protobuf");
const JSON: (&str, &str) = ("content-type", "application/json");

fn small_limits_bridge(upstream: &str) -> RunningBridge {
    let mut config = test_config("limits", upstream, "langfuse");
    config.max_body_bytes = 64 * 1024;
    config.max_decompressed_bytes = 256 * 1024;
    start(Bridge::new(config))
}

fn traces(bridge: &RunningBridge) -> String {
    format!("{}/v1/traces", bridge.url())
}

fn message(a: &Answer) -> String {
    a.json()["message"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn a_body_over_the_limit_is_413() {
    let receiver = Receiver::start(|_, _| Action::ok());
    let bridge = small_limits_bridge(&receiver.base_url());
    let big = export_bytes(1, 2000);
    assert!(big.len() > 64 * 1024);
    // The bridge answers 413 from the Content-Length, before reading the body, and closes
    // the connection: a client still writing may see the close instead of the answer.
    match post(&traces(&bridge), &[PB], &big) {
        Ok(a) => assert_eq!(a.status, 413, "{}", message(&a)),
        Err(e) => assert!(e.contains("pipe") || e.contains("reset"), "{e}"),
    }
    assert!(wait_until(Duration::from_secs(5), || {
        bridge.metrics.rejected_count("body_too_large") == 1
    }));
    // Just under the limit is accepted.
    let ok = export_bytes(1, 10);
    assert_eq!(post(&traces(&bridge), &[PB], &ok).unwrap().status, 200);
}

#[test]
fn a_gzip_bomb_is_413_with_bounded_memory() {
    let receiver = Receiver::start(|_, _| Action::ok());
    let bridge = small_limits_bridge(&receiver.base_url());
    // 32 MiB of zeros compress to ~32 KiB: under the body limit, far over the decompressed one.
    let bomb = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![0u8; 32 << 20]).unwrap();
        e.finish().unwrap()
    };
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let a = post(&traces(&bridge), &[PB, ("content-encoding", "gzip")], &bomb).unwrap();
    assert_eq!(a.status, 413);
    assert!(message(&a).contains("decompressed"), "{}", message(&a));
    assert_eq!(bridge.metrics.rejected_count("decompressed_too_large"), 1);
}

#[test]
fn malformed_bodies_are_400_with_a_clear_message() {
    let receiver = Receiver::start(|_, _| Action::ok());
    let bridge = small_limits_bridge(&receiver.base_url());
    let a = post(&traces(&bridge), &[PB], b"\x0a\xff\xff\xff\xff").unwrap();
    assert_eq!(a.status, 400);
    assert!(message(&a).contains("protobuf"), "{}", message(&a));
    let a = post(&traces(&bridge), &[JSON], b"{\"resourceSpans\": [").unwrap();
    assert_eq!(a.status, 400);
    assert!(message(&a).contains("JSON"), "{}", message(&a));
    let a = post(
        &traces(&bridge),
        &[PB, ("content-encoding", "gzip")],
        b"not gzip",
    )
    .unwrap();
    assert_eq!(a.status, 400);
    let ingestion = format!("{}/api/public/ingestion", bridge.url());
    assert_eq!(post(&ingestion, &[JSON], b"[1,2]").unwrap().status, 400);
    let scores = format!("{}/api/public/scores", bridge.url());
    assert_eq!(post(&scores, &[JSON], b"\"x\"").unwrap().status, 400);
    assert_eq!(bridge.metrics.rejected_count("malformed"), 5);
}

#[test]
fn unsupported_content_types_and_encodings_are_415() {
    let receiver = Receiver::start(|_, _| Action::ok());
    let bridge = small_limits_bridge(&receiver.base_url());
    let body = export_bytes(1, 1);
    assert_eq!(
        post(&traces(&bridge), &[("content-type", "text/plain")], &body)
            .unwrap()
            .status,
        415
    );
    assert_eq!(post(&traces(&bridge), &[], &body).unwrap().status, 415);
    assert_eq!(
        post(&traces(&bridge), &[PB, ("content-encoding", "br")], &body)
            .unwrap()
            .status,
        415
    );
    let ingestion = format!("{}/api/public/ingestion", bridge.url());
    assert_eq!(post(&ingestion, &[PB], b"{}").unwrap().status, 415);
}

#[test]
fn ingestion_answers_207_with_per_event_results() {
    let receiver = Receiver::start(|_, _| Action::ok());
    let bridge = small_limits_bridge(&receiver.base_url());
    let body = br#"{"batch":[
        {"id":"e1","type":"score-create","timestamp":"2026-01-01T00:00:00.000Z","body":{"id":"s1","traceId":"t","name":"q","value":1}},
        {"id":"e2","type":"score-create","body":"not an object"}]}"#;
    let a = post(
        &format!("{}/api/public/ingestion", bridge.url()),
        &[JSON],
        body,
    )
    .unwrap();
    assert_eq!(a.status, 207);
    let answer = a.json();
    assert_eq!(answer["successes"][0]["id"], "e1");
    assert_eq!(answer["successes"][0]["status"], 201);
    assert_eq!(answer["errors"][0]["id"], "e2");
    assert_eq!(answer["errors"][0]["status"], 400);
    // Only the valid event travels on: to Langfuse (v4 takes scores on the scores API).
    assert!(wait_until(Duration::from_secs(20), || {
        receiver
            .requests()
            .iter()
            .any(|r| r.path == "/api/public/scores" && r.acknowledged())
    }));
    let scores: Vec<serde_json::Value> = receiver
        .requests()
        .iter()
        .filter(|r| r.path == "/api/public/scores")
        .flat_map(|r| match serde_json::from_slice(&r.body) {
            Ok(serde_json::Value::Array(items)) => items,
            Ok(one) => vec![one],
            Err(_) => Vec::new(),
        })
        .collect();
    assert_eq!(scores.len(), 1, "{scores:?}");
    assert_eq!(scores[0]["id"], "s1");
    assert!(
        receiver
            .requests()
            .iter()
            .all(|r| r.path != "/api/public/ingestion"),
        "nothing goes to the ingestion endpoint v4 refuses"
    );
}

#[test]
fn keys_configured_means_401_for_missing_or_wrong_credentials() {
    let receiver = Receiver::start(|_, _| Action::ok());
    let mut config = test_config("auth", &receiver.base_url(), "langfuse");
    config.public_key = Some("pk-lf-bridge".into());
    config.secret_key = Some("sk-lf-very-secret".into());
    let bridge = start(Bridge::new(config));
    let body = export_bytes(1, 3);
    let url = traces(&bridge);
    let none = post(&url, &[PB], &body).unwrap();
    assert_eq!(none.status, 401);
    let wrong = basic("pk-lf-bridge", "sk-wrong");
    assert_eq!(
        post(&url, &[PB, ("authorization", &wrong)], &body)
            .unwrap()
            .status,
        401
    );
    let right = basic("pk-lf-bridge", "sk-lf-very-secret");
    assert_eq!(
        post(&url, &[PB, ("authorization", &right)], &body)
            .unwrap()
            .status,
        200
    );
    // Forwarded with the configured keys.
    assert!(wait_until(Duration::from_secs(20), || !receiver
        .delivered_span_ids()
        .is_empty()));
    let forwarded = receiver.requests();
    assert_eq!(forwarded[0].header("authorization"), Some(right.as_str()));
    assert_eq!(
        forwarded[0].header("x-langfuse-ingestion-version"),
        Some("4")
    );
    // gRPC too.
    let grpc = bridge.grpc.unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let code = rt.block_on(async {
        let mut client = TraceServiceClient::connect(format!("http://{grpc}"))
            .await
            .unwrap();
        client.export(export(10, 1)).await.unwrap_err().code()
    });
    assert_eq!(code, Code::Unauthenticated);
    // No secret in metrics or answers.
    let metrics =
        String::from_utf8(get(&format!("{}/metrics", bridge.url())).unwrap().body).unwrap();
    assert!(!metrics.contains("very-secret"));
    assert!(!String::from_utf8_lossy(&none.body).contains("very-secret"));
    assert_eq!(bridge.metrics.rejected_count("unauthorized"), 3);
}

#[test]
fn without_keys_each_clients_credentials_travel_with_its_own_spans() {
    let receiver = Receiver::start(|_, _| Action::ok());
    let bridge = start(Bridge::new(test_config(
        "tenants",
        &receiver.base_url(),
        "langfuse",
    )));
    let a = basic("pk-a", "sk-a");
    let b = basic("pk-b", "sk-b");
    for (i, auth) in [&a, &b, &a].iter().enumerate() {
        let body = export_bytes(100 * i as u64 + 1, 5);
        let answer = post(&traces(&bridge), &[PB, ("authorization", auth)], &body).unwrap();
        assert_eq!(answer.status, 200);
    }
    assert!(wait_until(Duration::from_secs(20), || receiver
        .delivered_span_ids()
        .len()
        == 15));
    for r in receiver.requests() {
        let auth = r.header("authorization").unwrap_or_default();
        let ids = r.span_ids();
        // Spans 101..105 came from project b, the others from project a.
        let from_b = ids
            .iter()
            .all(|id| (101..=105).contains(&u64::from_str_radix(id, 16).unwrap()));
        assert_eq!(
            auth,
            if from_b { b.as_str() } else { a.as_str() },
            "{ids:?}"
        );
    }
}

#[test]
fn a_full_spool_answers_429_then_accepts_again_once_forwarded() {
    let upstream = ReservedPort::new();
    let mut config = test_config("full", &upstream.base_url(), "langfuse");
    config.spool_max_bytes = 64 * 1024;
    let bridge = start(Bridge::new(config));
    let body = export_bytes(1, 50);
    let mut accepted = 0;
    let full = loop {
        let a = post(&traces(&bridge), &[PB], &body).unwrap();
        if a.status != 200 {
            break a;
        }
        accepted += 1;
        assert!(accepted < 1000, "the spool never filled");
    };
    assert_eq!(full.status, 429);
    assert_eq!(full.header("retry-after"), Some("1"));
    assert!(accepted > 0);
    // gRPC: RESOURCE_EXHAUSTED.
    let grpc = bridge.grpc.unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        let mut client = TraceServiceClient::connect(format!("http://{grpc}"))
            .await
            .unwrap();
        client.export(export(1, 50)).await.unwrap_err()
    });
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        !status.details().is_empty(),
        "a RetryInfo delay is attached"
    );
    // The upstream comes up: the spool drains and new requests are accepted again.
    let receiver = Receiver::start_with(upstream.listen(), |_, _| Action::ok());
    assert!(
        wait_until(Duration::from_secs(60), || {
            post(&traces(&bridge), &[PB], &body).is_ok_and(|a| a.status == 200)
        }),
        "never accepted again"
    );
    assert!(!receiver.delivered_span_ids().is_empty());
    assert!(bridge.metrics.rejected_count("spool_full") >= 2);
}

#[test]
fn health_and_metrics_report_the_backlog() {
    let upstream = ReservedPort::new();
    let bridge = start(Bridge::new(test_config(
        "health",
        &upstream.base_url(),
        "langfuse",
    )));
    assert_eq!(
        post(&traces(&bridge), &[PB], &export_bytes(1, 4))
            .unwrap()
            .status,
        200
    );
    assert!(wait_until(Duration::from_secs(20), || {
        get(&format!("{}/health", bridge.url())).unwrap().json()["upstream_reachable"] == false
    }));
    let health = get(&format!("{}/health", bridge.url())).unwrap().json();
    assert_eq!(health["backlog_records"], 1);
    let metrics =
        String::from_utf8(get(&format!("{}/metrics", bridge.url())).unwrap().body).unwrap();
    for series in [
        "langfuse_bridge_received_items_total{endpoint=\"otlp_http\"} 4",
        "langfuse_bridge_spool_records 1",
        "langfuse_bridge_forward_retries_total",
        "langfuse_bridge_forward_lag_seconds",
        "langfuse_bridge_request_duration_seconds_count{endpoint=\"otlp_http\"} 1",
    ] {
        assert!(metrics.contains(series), "missing {series}");
    }
}

#[test]
fn grpc_accepts_gzip_and_refuses_oversized_messages() {
    let receiver = Receiver::start(|_, _| Action::ok());
    let bridge = small_limits_bridge(&receiver.base_url());
    let grpc = bridge.grpc.unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ok, too_big) = rt.block_on(async {
        let mut client = TraceServiceClient::connect(format!("http://{grpc}"))
            .await
            .unwrap()
            .send_compressed(tonic::codec::CompressionEncoding::Gzip);
        let ok = client.export(export(1, 10)).await.is_ok();
        let too_big = client.export(export(1, 20_000)).await.unwrap_err().code();
        (ok, too_big)
    });
    assert!(ok);
    assert_ne!(too_big, Code::Ok);
    assert!(wait_until(Duration::from_secs(20), || receiver
        .delivered_span_ids()
        .len()
        == 10));
}

/// A 401 or 413 is decided before the body is read; the bridge reads and discards the rest
/// (lingering close), so an ordinary client still writing a large body gets the status, not a
/// reset connection (which OTLP exporters would retry forever).
#[test]
fn an_early_401_or_413_reaches_a_client_still_sending_as_its_status() {
    let receiver = Receiver::start(|_, _| Action::ok());
    let mut config = test_config("linger", &receiver.base_url(), "langfuse");
    config.public_key = Some("pk-lf-bridge".into());
    config.secret_key = Some("sk-lf-very-secret".into());
    let limit = config.max_body_bytes;
    let bridge = start(Bridge::new(config));
    let url = traces(&bridge);
    let big = vec![0u8; limit + (4 << 20)];
    let right = basic("pk-lf-bridge", "sk-lf-very-secret");
    for round in 0..3 {
        let unauthenticated = post(&url, &[PB], &big);
        assert_eq!(
            unauthenticated.as_ref().map(|a| a.status),
            Ok(401),
            "round {round}: {unauthenticated:?}"
        );
        let too_large = post(&url, &[PB, ("authorization", &right)], &big);
        assert_eq!(
            too_large.as_ref().map(|a| a.status),
            Ok(413),
            "round {round}: {too_large:?}"
        );
    }
}
