//! [`HttpSender`]: POSTs a [`Payload`] to one URL through the [`deliver`] loop.
//!
//! The client is [`ureq`]: blocking, pure Rust, TLS through rustls (no OpenSSL), with a
//! keep-alive connection pool. Blocking is what a caller without an async runtime needs, and
//! it never depends on a Tokio reactor. From async code, call it on a blocking thread.
//!
//! Classification: 2xx delivered; 429 throttled (its `Retry-After` honoured); 500, 502, 503,
//! 504 and connection errors (refused, reset, timed out) retryable (Langfuse answers 500 for
//! a transient queue or storage failure, and a repeated span or event is an idempotent upsert
//! there); 503 with `Retry-After` throttled; any other status final.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use langfuse_otel_transport::{ContentEncoding, HttpSender, Payload, Secret, langfuse_headers, PROTOBUF};
//!
//! let sender = HttpSender::builder("http://127.0.0.1:3000/api/public/otel/v1/traces")
//!     .headers(langfuse_headers("pk-lf-1", &Secret::new("sk-lf-1")))
//!     .build()
//!     .unwrap();
//! let payload = Payload::new(vec![], PROTOBUF, ContentEncoding::Identity, 0);
//! let outcome = sender.send(&payload, Instant::now() + Duration::from_secs(5));
//! println!("{outcome}");
//! ```

use std::time::{Duration, Instant, SystemTime};

use crate::TransportError;
use crate::delivery::{Outcome, Payload, RetryPolicy, Status, Verdict, deliver, parse_retry_after};
use crate::langfuse::USER_AGENT;
use crate::settings::Secret;

/// Most bytes of a response body read (error messages, ingestion 207 bodies).
pub const MAX_RESPONSE_BYTES: u64 = 16 << 20;

/// One endpoint with its fixed headers and retry policy. Cheap to share (`&self` everywhere).
pub struct HttpSender {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, Secret)>,
    retry: RetryPolicy,
    attempt_timeout: Option<Duration>,
}

impl std::fmt::Debug for HttpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSender")
            .field("url", &self.url)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Builder of [`HttpSender`].
#[derive(Debug, Clone)]
pub struct HttpSenderBuilder {
    url: String,
    headers: Vec<(String, Secret)>,
    retry: RetryPolicy,
    attempt_timeout: Option<Duration>,
}

impl HttpSenderBuilder {
    /// Headers sent with every request (values kept secret).
    pub fn headers(mut self, headers: impl IntoIterator<Item = (String, Secret)>) -> Self {
        self.headers.extend(headers);
        self
    }

    /// One more header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), Secret::new(value)));
        self
    }

    /// Retry settings (default [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Time one attempt may take (default: all the remaining time until the deadline).
    pub fn attempt_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Builds the sender; the URL must be `http://` or `https://` (the latter needs the `tls`
    /// feature).
    pub fn build(self) -> Result<HttpSender, TransportError> {
        let lower = self.url.to_ascii_lowercase();
        let https = lower.starts_with("https://");
        if !https && !lower.starts_with("http://") {
            return Err(TransportError::InvalidUrl(self.url));
        }
        if https && !cfg!(feature = "tls") {
            return Err(TransportError::TlsDisabled(self.url));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .no_delay(true)
            .user_agent(USER_AGENT)
            .build();
        Ok(HttpSender {
            agent: config.into(),
            url: self.url,
            headers: self.headers,
            retry: self.retry,
            attempt_timeout: self.attempt_timeout,
        })
    }
}

impl HttpSender {
    /// A builder for `url`.
    pub fn builder(url: impl Into<String>) -> HttpSenderBuilder {
        HttpSenderBuilder {
            url: url.into(),
            headers: Vec::new(),
            retry: RetryPolicy::default(),
            attempt_timeout: None,
        }
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The retry settings.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// POSTs `payload` until it is delivered, finally rejected, or `deadline` passes.
    pub fn send(&self, payload: &Payload, deadline: Instant) -> Outcome {
        self.send_with_headers(payload, &[], deadline)
    }

    /// Like [`send`](Self::send), with per-request headers that replace fixed headers of the
    /// same name (a proxy forwarding each client's own `authorization`).
    pub fn send_with_headers(
        &self,
        payload: &Payload,
        headers: &[(String, Secret)],
        deadline: Instant,
    ) -> Outcome {
        deliver(&self.retry, deadline, self.attempt_timeout, |timeout| {
            self.attempt(payload, headers, timeout)
        })
    }

    fn attempt(&self, payload: &Payload, extra: &[(String, Secret)], timeout: Duration) -> Verdict {
        let mut req = self
            .agent
            .post(&self.url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("content-type", payload.content_type.as_ref());
        if let Some(enc) = payload.content_encoding.header_value() {
            req = req.header("content-encoding", enc);
        }
        for (k, v) in &self.headers {
            if !extra.iter().any(|(e, _)| e.eq_ignore_ascii_case(k)) {
                req = req.header(k.as_str(), v.expose());
            }
        }
        for (k, v) in extra {
            req = req.header(k.as_str(), v.expose());
        }
        let mut resp = match req.send(&payload.body[..]) {
            Ok(r) => r,
            Err(e) => return classify_error(e),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        // A body cut short still leaves the status usable.
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .unwrap_or_default();
        classify_status(status, retry_after, &body)
    }
}

/// The verdict of an HTTP answer (see the module docs).
pub fn classify_status(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Verdict {
    let s = Status::Http(status);
    match status {
        200..=299 => Verdict::Delivered {
            status: s,
            body: body.to_vec(),
        },
        429 => Verdict::Throttled {
            status: s,
            delay: retry_after,
            reason: format!("HTTP {status}"),
        },
        503 if retry_after.is_some() => Verdict::Throttled {
            status: s,
            delay: retry_after,
            reason: format!("HTTP {status}"),
        },
        500 | 502 | 503 | 504 => Verdict::Retryable {
            status: Some(s),
            reason: format!("HTTP {status}"),
        },
        _ => Verdict::Final {
            status: Some(s),
            reason: format!("HTTP {status}: {}", message_of(body)),
        },
    }
}

fn classify_error(e: ureq::Error) -> Verdict {
    use ureq::Error as E;
    match e {
        E::BadUri(_)
        | E::Http(_)
        | E::InvalidProxyUrl
        | E::RequireHttpsOnly(_)
        | E::TlsRequired
        | E::TooManyRedirects
        | E::RedirectFailed => Verdict::Final {
            status: None,
            reason: e.to_string(),
        },
        other => Verdict::Retryable {
            status: None,
            reason: other.to_string(),
        },
    }
}

/// A short, single-line message from an error body (JSON `message`/`error` when present).
pub fn message_of(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in ["message", "error"] {
            if let Some(s) = v.get(key).and_then(|m| m.as_str()) {
                return truncate(s);
            }
        }
    }
    truncate(&String::from_utf8_lossy(body))
}

fn truncate(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_429_500_and_gateway_errors_are_retried() {
        for s in [500, 502, 503, 504] {
            assert!(
                matches!(classify_status(s, None, b""), Verdict::Retryable { .. }),
                "{s}"
            );
        }
        assert!(matches!(
            classify_status(429, None, b""),
            Verdict::Throttled { delay: None, .. }
        ));
        for s in [400, 401, 403, 404, 413, 501] {
            assert!(
                matches!(classify_status(s, None, b""), Verdict::Final { .. }),
                "{s}"
            );
        }
        assert!(matches!(
            classify_status(207, None, b""),
            Verdict::Delivered {
                status: Status::Http(207),
                ..
            }
        ));
    }

    #[test]
    fn a_retry_after_makes_503_a_throttle_with_that_delay() {
        let d = Some(Duration::from_secs(2));
        assert_eq!(
            classify_status(503, d, b""),
            Verdict::Throttled {
                status: Status::Http(503),
                delay: d,
                reason: "HTTP 503".into()
            }
        );
    }

    #[test]
    fn error_messages_come_from_json_bodies_and_are_bounded() {
        assert_eq!(message_of(br#"{"message":"bad key"}"#), "bad key");
        assert_eq!(message_of(b"plain\n text"), "plain text");
        assert!(message_of("x".repeat(1000).as_bytes()).chars().count() <= 301);
    }

    #[test]
    fn urls_must_be_http() {
        assert!(matches!(
            HttpSender::builder("ftp://x").build(),
            Err(TransportError::InvalidUrl(_))
        ));
    }
}
