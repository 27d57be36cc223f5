//! The SDK captures: the OTLP trace requests the official SDKs sent.

use std::path::Path;

use serde_json::Value;

use crate::{fixture_files, read_json};

/// The path of OTLP trace requests.
pub const TRACES_PATH: &str = "/api/public/otel/v1/traces";

/// One captured OTLP trace request.
#[derive(Debug, Clone)]
pub struct TraceRequest {
    /// Scenario name (`all_types`, …).
    pub scenario: String,
    /// Index of the request in the capture's `requests`.
    pub index: usize,
    /// `otlp-protobuf` or `otlp-json`.
    pub body_format: String,
    /// The body as sent (already decompressed: the captures store the decoded body).
    pub raw: Vec<u8>,
    /// The body as OTLP/JSON (for protobuf bodies, its JSON rendering).
    pub body: Value,
}

impl TraceRequest {
    /// Number of spans in the request.
    pub fn span_count(&self) -> usize {
        json_span_count(&self.body)
    }
}

/// Every OTLP trace request of an SDK's captures (`python-sdk` or `js-sdk`).
pub fn trace_requests(sdk: &str) -> Vec<TraceRequest> {
    let mut out = Vec::new();
    for path in fixture_files(&format!("sdk-captures/{sdk}")) {
        out.extend(trace_requests_of(&path));
    }
    out
}

/// The OTLP trace requests of one capture file.
pub fn trace_requests_of(path: &Path) -> Vec<TraceRequest> {
    let capture = read_json(path);
    let scenario = capture["scenario"].as_str().unwrap_or_default().to_owned();
    let requests = capture["requests"].as_array().cloned().unwrap_or_default();
    requests
        .into_iter()
        .enumerate()
        .filter(|(_, r)| r["path"] == TRACES_PATH)
        .map(|(index, r)| {
            let b64 = r["raw_body_b64"].as_str().unwrap_or_default();
            TraceRequest {
                scenario: scenario.clone(),
                index,
                body_format: r["body_format"].as_str().unwrap_or_default().to_owned(),
                raw: base64_decode(b64)
                    .unwrap_or_else(|| panic!("{}: bad raw_body_b64", path.display())),
                body: r["body"].clone(),
            }
        })
        .collect()
}

/// Number of spans in an OTLP/JSON export.
pub fn json_span_count(export: &Value) -> usize {
    let items = |v: &Value, k: &str| v[k].as_array().cloned().unwrap_or_default();
    items(export, "resourceSpans")
        .iter()
        .flat_map(|rs| items(rs, "scopeSpans"))
        .map(|ss| items(&ss, "spans").len())
        .sum()
}

/// Standard base64 (with or without padding); `None` on invalid input.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        }))
    }
    let clean: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= sextet(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64_decode("3q2+7w==").unwrap(), [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        assert_eq!(base64_decode("YQ").unwrap(), b"a");
        assert!(base64_decode("a").is_none());
    }
}
