//! Fuzzes the bridge's whole pure path: decode an OTLP export (JSON or protobuf, detected),
//! translate it in both compatibility modes, serialize the events and read them back, and
//! re-encode it as canonical OTLP, which must decode and translate with nothing dropped.
#![no_main]

use langfuse_otel_core::{canonical, otlp};
use langfuse_otel_core::record::IngestionEvent;
use langfuse_otel_core::translate::{Compatibility, TranslateOptions, Translator};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = otlp::decode(data) else {
        return;
    };
    for compatibility in [Compatibility::Repair, Compatibility::Server] {
        let mut translator = Translator::with_options(TranslateOptions {
            compatibility,
            now_unix_ms: || 1_767_258_000_000,
        });
        let translation = translator.translate(&batch);
        let spans = batch.span_count();
        let observations = translation
            .events
            .iter()
            .filter(|e| e.body.observation().is_some())
            .count();
        assert_eq!(observations + translation.dropped.len(), spans);
        for event in &translation.events {
            let json = serde_json::to_string(event).expect("events serialize");
            let back: IngestionEvent = serde_json::from_str(&json).expect("events read back");
            assert_eq!(serde_json::to_string(&back).expect("serialize again"), json);
        }
    }
    let options = TranslateOptions {
        compatibility: Compatibility::Server,
        now_unix_ms: || 1_767_258_000_000,
    };
    let request = canonical::canonical_request_with(&batch, &options);
    let bytes = prost::Message::encode_to_vec(&request);
    let back = otlp::decode_protobuf(&bytes).expect("canonical OTLP decodes");
    assert_eq!(back.span_count(), batch.span_count());
    let translation = Translator::with_options(options).translate(&back);
    assert!(
        translation.dropped.is_empty(),
        "the server would drop canonical spans: {:?}",
        translation.dropped
    );
});
