//! Canonical OTLP round trip: for every case of the conformance corpus, translating the case
//! gives records R1; re-encoding the case as canonical OTLP (protobuf bytes, as the exporter
//! sends them; the OTLP/JSON encoding must translate identically) and translating that gives R2. R2 must equal R1, up to exactly the differences
//! `langfuse_otel_core::canonical` documents, which this test applies to R1 on its own terms:
//!
//! - `metadata.scope` of spans from a non-Langfuse scope names the canonical scope, which
//!   carries the original name and version as `langfuse.source.scope.*` attributes;
//! - an input/output that is `null` is absent; one that OTLP cannot carry as a typed value
//!   (objects, arrays holding objects or nulls) is its JSON text;
//! - a model parameter that is `null` is absent;
//! - ids are lowercase hex (a non-hex id is the hex of its text).
//!
//! The canonical spans also translate in server mode without any dropped observation.

use std::io::Write;

use integration_tests::events::{diff, normalize_for_canonical, sort_events, translate_events};
use integration_tests::{fixture_files, read_json};
use langfuse_otel_core::canonical::{CANONICAL_SCOPE_NAME, SOURCE_SCOPE_NAME, canonical_request};
use langfuse_otel_core::otlp;
use langfuse_otel_core::translate::Compatibility;
use prost::Message;
use serde_json::{Map, Value};

#[test]
fn canonical_spans_translate_back_to_the_same_records() {
    let mut ran = 0;
    let mut untouched = 0;
    let mut failures = Vec::new();
    for path in fixture_files("conformance") {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let case = read_json(&path);
        let batch = otlp::batch_from_json(&case["input"]).expect("case input decodes");
        ran += 1;
        let (mut want, _) = translate_events(&batch, Compatibility::Repair);

        let request = canonical_request(&batch);
        let bytes = request.encode_to_vec();
        let canonical = otlp::decode_protobuf(&bytes).expect("canonical OTLP decodes");
        assert_eq!(
            canonical.span_count(),
            batch.span_count(),
            "{name}: every span is re-encoded"
        );
        // The same request as OTLP/JSON (the exporter's `http/json` encoding) reads back the same.
        let json = serde_json::to_vec(&request).expect("canonical OTLP/JSON encodes");
        let from_json = otlp::decode_json(&json).expect("canonical OTLP/JSON decodes");
        let (mut got, _) = translate_events(&canonical, Compatibility::Repair);
        let via_json = translate_events(&from_json, Compatibility::Repair).0;
        if via_json != got {
            let d = diff(
                "events",
                &Value::Array(via_json),
                &Value::Array(got.clone()),
            );
            failures.push(format!(
                "{name}: the OTLP/JSON encoding translates differently from protobuf: {d:?}"
            ));
            continue;
        }
        let (server_mode, dropped) = translate_events(&canonical, Compatibility::Server);
        if !dropped.is_empty() || server_mode.len() != got.len() {
            failures.push(format!(
                "{name}: server mode drops {} canonical observations",
                dropped.len()
            ));
            continue;
        }

        let mut any_change = false;
        for e in &mut want {
            any_change |= normalize_for_canonical(e, true);
        }
        for e in &mut got {
            normalize_for_canonical(e, false);
        }
        if !any_change {
            untouched += 1;
        }
        sort_events(&mut want);
        sort_events(&mut got);
        if let Some(d) = diff("events", &Value::Array(got), &Value::Array(want)) {
            failures.push(format!("{name}: {d}"));
        }
    }
    let _ = writeln!(
        std::io::stdout(),
        "canonical round trip: {ran} cases ran, {} failed; {untouched} needed no input/output or id normalization",
        failures.len()
    );
    assert!(ran > 0);
    assert!(
        failures.is_empty(),
        "{} of {ran} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The canonical scope keeps where a span came from, and the canonical attributes are all
/// `langfuse.*` keys.
#[test]
fn canonical_spans_use_only_langfuse_attributes_and_name_their_source() {
    let case = read_json(
        &integration_tests::fixtures_dir()
            .join("conformance/io-openinference-indexed-messages.json"),
    );
    let batch = otlp::batch_from_json(&case["input"]).expect("decodes");
    let request = canonical_request(&batch);
    let scope_spans = &request.resource_spans[0].scope_spans[0];
    let scope = scope_spans.scope.as_ref().expect("scope");
    assert_eq!(scope.name, CANONICAL_SCOPE_NAME);
    let source = scope
        .attributes
        .iter()
        .find(|kv| kv.key == SOURCE_SCOPE_NAME)
        .expect("source scope name kept");
    let original = batch.resource_spans[0].scope_spans[0]
        .scope
        .name
        .to_string();
    assert_eq!(
        source.value.as_ref().and_then(|v| v.value.clone()),
        Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(original))
    );
    for span in &scope_spans.spans {
        let keys: Map<String, Value> = span
            .attributes
            .iter()
            .map(|kv| (kv.key.clone(), Value::Null))
            .collect();
        assert!(
            keys.keys().all(|k| k.starts_with("langfuse.")),
            "non-canonical keys: {keys:?}"
        );
        assert!(keys.contains_key("langfuse.observation.type"));
    }
}
