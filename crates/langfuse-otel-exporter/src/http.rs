//! The HTTP transport shared by every network destination: one POST with retries.
//!
//! The client is [`ureq`]: blocking, pure Rust, TLS through rustls (no OpenSSL), with a
//! keep-alive connection pool. Blocking is what an exporter driven by
//! `opentelemetry_sdk`'s thread-based processors needs: `export()` then never depends on a
//! Tokio reactor (the "no reactor running" panic of async clients), and the call works the same
//! under [`crate::BatchProcessor`], the SDK's `BatchSpanProcessor` and `SimpleSpanProcessor`.
//!
//! Retries follow the official SDKs: HTTP 429/502/503/504 and connection errors (refused,
//! reset, timed out) are retried, and so is 500 (Langfuse answers 500 for a transient queue or
//! storage failure; a repeated span or event is an idempotent upsert there), all with exponential backoff and ±20 % jitter, a `Retry-After`
//! header (seconds or HTTP date) replaces the computed delay, and nothing outlives the export
//! deadline. Any other status is final.

use std::time::{Duration, Instant, SystemTime};

use crate::config::Secret;
use crate::stats::Stats;

/// Retry settings of one export.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Most attempts per request (1 disables retries).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of the computed delay (a `Retry-After` may ask for more, within the deadline).
    pub max_backoff: Duration,
    /// Relative jitter applied to the computed delay (0.2 = ±20 %).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// 6 attempts, 250 ms doubling to at most 4 s, ±20 % jitter (all within the export timeout).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt per request.
    pub fn disabled() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay before retry number `retry` (1-based), jittered.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let base = exp.min(self.max_backoff);
        let factor = 1.0 + self.jitter * (fastrand::f64() * 2.0 - 1.0);
        base.mul_f64(factor.max(0.0))
    }
}

/// Whether an HTTP status is worth retrying.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date (relative to `now`).
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use langfuse_otel_exporter::http::parse_retry_after;
///
/// let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
/// assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
/// assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:39 GMT", now), Some(Duration::from_secs(2)));
/// assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:30 GMT", now), Some(Duration::ZERO));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The result of one POST with retries.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A 2xx answer, with its status and body.
    Delivered { status: u16, body: Vec<u8> },
    /// HTTP 413: the body is too large for the receiver.
    TooLarge,
    /// A final (non-retryable) error answer.
    Rejected { status: u16, message: String },
    /// Retries exhausted, or the deadline reached; `timed_out` tells which.
    GaveUp { reason: String, timed_out: bool },
}

/// One endpoint with its fixed headers.
pub(crate) struct HttpSender {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, Secret)>,
    content_type: &'static str,
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

/// Most bytes of a response body read (error messages, ingestion 207 bodies).
const MAX_RESPONSE_BYTES: u64 = 16 << 20;

impl HttpSender {
    pub(crate) fn new(
        url: String,
        headers: Vec<(String, Secret)>,
        content_type: &'static str,
        retry: RetryPolicy,
        attempt_timeout: Option<Duration>,
    ) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .no_delay(true)
            .user_agent(concat!("langfuse-otel-rust/", env!("CARGO_PKG_VERSION")))
            .build();
        HttpSender {
            agent: config.into(),
            url,
            headers,
            content_type,
            retry,
            attempt_timeout,
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// POSTs `body` until it is delivered, finally rejected, or `deadline` passes.
    pub(crate) fn post(
        &self,
        body: &[u8],
        content_encoding: Option<&'static str>,
        deadline: Instant,
        stats: &Stats,
    ) -> Outcome {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let now = Instant::now();
            let Some(remaining) = deadline
                .checked_duration_since(now)
                .filter(|d| !d.is_zero())
            else {
                return Outcome::GaveUp {
                    reason: "export timeout reached".into(),
                    timed_out: true,
                };
            };
            let per_attempt = self.attempt_timeout.map_or(remaining, |t| t.min(remaining));
            let (reason, retry_after) = match self.attempt(body, content_encoding, per_attempt) {
                Ok((status, headers_retry_after, resp_body)) => {
                    if (200..300).contains(&status) {
                        return Outcome::Delivered {
                            status,
                            body: resp_body,
                        };
                    }
                    if status == 413 {
                        return Outcome::TooLarge;
                    }
                    if !is_retryable_status(status) {
                        return Outcome::Rejected {
                            status,
                            message: message_of(&resp_body),
                        };
                    }
                    (
                        format!("HTTP {status}"),
                        headers_retry_after.and_then(|v| parse_retry_after(&v, SystemTime::now())),
                    )
                }
                Err(AttemptError::Final(message)) => {
                    return Outcome::Rejected { status: 0, message };
                }
                Err(AttemptError::Transient(message)) => (message, None),
            };
            if attempt >= self.retry.max_attempts {
                return Outcome::GaveUp {
                    reason: format!("{reason} after {attempt} attempts"),
                    timed_out: false,
                };
            }
            let delay = retry_after.unwrap_or_else(|| self.retry.backoff(attempt));
            if Instant::now() + delay >= deadline {
                return Outcome::GaveUp {
                    reason: format!(
                        "{reason}; the next attempt (in {delay:?}) would pass the export timeout"
                    ),
                    timed_out: true,
                };
            }
            stats.add_retried(1);
            std::thread::sleep(delay);
        }
    }

    fn attempt(
        &self,
        body: &[u8],
        content_encoding: Option<&'static str>,
        timeout: Duration,
    ) -> Result<(u16, Option<String>, Vec<u8>), AttemptError> {
        let mut req = self
            .agent
            .post(&self.url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("content-type", self.content_type);
        if let Some(enc) = content_encoding {
            req = req.header("content-encoding", enc);
        }
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.expose());
        }
        let mut resp = req.send(body).map_err(classify)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // A body cut short still leaves the status usable.
        let resp_body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .unwrap_or_default();
        Ok((status, retry_after, resp_body))
    }
}

enum AttemptError {
    Transient(String),
    Final(String),
}

fn classify(e: ureq::Error) -> AttemptError {
    use ureq::Error as E;
    match e {
        E::BadUri(_)
        | E::Http(_)
        | E::InvalidProxyUrl
        | E::RequireHttpsOnly(_)
        | E::TlsRequired
        | E::TooManyRedirects
        | E::RedirectFailed => AttemptError::Final(e.to_string()),
        other => AttemptError::Transient(other.to_string()),
    }
}

/// A short, single-line message from an error body (JSON `message`/`error` when present).
fn message_of(body: &[u8]) -> String {
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
    fn backoff_doubles_up_to_the_cap_within_the_jitter() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            jitter: 0.2,
        };
        for (retry, base) in [(1, 100.0), (2, 200.0), (3, 400.0), (4, 500.0), (9, 500.0)] {
            let ms = p.backoff(retry).as_secs_f64() * 1000.0;
            assert!(
                ms >= base * 0.8 - 0.01 && ms <= base * 1.2 + 0.01,
                "{retry}: {ms}"
            );
        }
    }

    #[test]
    fn only_429_500_and_gateway_errors_are_retried() {
        for s in [429, 500, 502, 503, 504] {
            assert!(is_retryable_status(s));
        }
        for s in [400, 401, 403, 404, 413, 501] {
            assert!(!is_retryable_status(s));
        }
    }

    #[test]
    fn error_messages_come_from_json_bodies_and_are_bounded() {
        assert_eq!(message_of(br#"{"message":"bad key"}"#), "bad key");
        assert_eq!(message_of(b"plain\n text"), "plain text");
        assert!(message_of("x".repeat(1000).as_bytes()).chars().count() <= 301);
    }
}
