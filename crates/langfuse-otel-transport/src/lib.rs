//! # langfuse-otel-transport
//!
//! Delivery to Langfuse and OTLP collectors, shared by the exporter, the SDK and the bridge:
//! a payload in (bytes, content type, content encoding, item count), one retry loop with one
//! classification, exact outcomes out. No `opentelemetry_sdk`, and no async runtime needed in
//! the caller.
//!
//! | part | what it does |
//! |---|---|
//! | [`delivery`] | [`Payload`], the retry loop [`deliver`], [`Verdict`] (retryable / throttled / final), [`Outcome`] with the exact [`Status`] (HTTP status or gRPC code) |
//! | [`http`] | [`HttpSender`]: OTLP/HTTP and any JSON POST, `Retry-After` honoured, per-request headers for proxies |
//! | `grpc` (feature `grpc`) | `GrpcSender`: OTLP/gRPC with the server's `RetryInfo` delay honoured |
//! | [`batch`] | [`JsonBatchSender`]: native ingestion (207 per-event results) and scores, byte-bounded |
//! | [`langfuse`] | paths, SDK name and version, user agent, the Langfuse headers built once |
//! | [`settings`] | the one settings model: every `LANGFUSE_*`/`OTEL_*` variable, its rule and default |
//! | [`diagnostics`] | [`Diagnostics`]: warnings once per kind, debug lines |
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use langfuse_otel_transport::{ContentEncoding, HttpSender, Outcome, Payload, Secret, langfuse_headers, langfuse, PROTOBUF};
//!
//! let sender = HttpSender::builder(format!("http://127.0.0.1:3000{}", langfuse::OTLP_PATH))
//!     .headers(langfuse_headers("pk-lf-1", &Secret::new("sk-lf-1")))
//!     .build()
//!     .unwrap();
//! let body: Vec<u8> = vec![]; // an encoded ExportTraceServiceRequest
//! let payload = Payload::new(body, PROTOBUF, ContentEncoding::Identity, 0);
//! match sender.send(&payload, Instant::now() + Duration::from_secs(5)) {
//!     Outcome::Delivered { status, .. } => println!("delivered: {status}"),
//!     Outcome::Undelivered { .. } => println!("keep it and try again later"),
//!     other => println!("lost: {other}"),
//! }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod batch;
pub mod delivery;
pub mod diagnostics;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod http;
pub mod langfuse;
pub mod settings;

pub use batch::{BatchFormat, BatchReport, JsonBatchSender, JsonItem};
pub use delivery::{
    ContentEncoding, JSON, Outcome, PROTOBUF, Payload, RetryPolicy, RoundBackoff, Status, Verdict,
    deliver, parse_retry_after,
};
pub use diagnostics::Diagnostics;
#[cfg(feature = "grpc")]
pub use grpc::GrpcSender;
pub use http::HttpSender;
pub use langfuse::langfuse_headers;
pub use settings::{Env, Secret, SettingError, Settings};

/// Why a sender cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The URL is not `http://` or `https://`.
    #[error("invalid endpoint URL {0:?} (expected http:// or https://)")]
    InvalidUrl(String),
    /// An `https://` URL without the `tls` feature.
    #[error("{0:?} needs TLS, but the `tls` feature is off")]
    TlsDisabled(String),
    /// A background thread or runtime could not start.
    #[error("{0}")]
    Start(String),
}

/// A random UUID v4: the id of an ingestion event envelope (the server's de-duplication key)
/// or of a score.
///
/// ```
/// let id = langfuse_otel_transport::new_uuid();
/// assert_eq!((id.len(), &id[14..15]), (36, "4"));
/// assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
/// ```
pub fn new_uuid() -> String {
    let mut b: [u8; 16] = fastrand::u128(..).to_le_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_string(&b)
}

/// `bytes` in the UUID text form: lower-case hex, grouped 8-4-4-4-12 with hyphens.
///
/// ```
/// let id = langfuse_otel_transport::uuid_string(&[0xab; 16]);
/// assert_eq!(id, "abababab-abab-abab-abab-abababababab");
/// ```
pub fn uuid_string(bytes: &[u8; 16]) -> String {
    let h = hex(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Lower-case hex of `bytes`.
///
/// ```
/// assert_eq!(langfuse_otel_transport::hex(&[0x0a, 0xff]), "0aff");
/// ```
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}
