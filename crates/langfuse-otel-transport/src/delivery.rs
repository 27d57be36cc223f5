//! The one retry loop: a [`Payload`] is tried until it is delivered, finally rejected, or the
//! deadline or the attempt budget runs out. Every sender (OTLP/HTTP, OTLP/gRPC, native
//! ingestion, scores) classifies each attempt into one [`Verdict`] and lets [`deliver`] decide
//! what happens next, so retries, backoff, `Retry-After`/`RetryInfo` and deadlines behave the
//! same everywhere.
//!
//! | verdict | next step |
//! |---|---|
//! | [`Verdict::Delivered`] | done: [`Outcome::Delivered`] |
//! | [`Verdict::Final`] | done: [`Outcome::Rejected`] (sending it again cannot help) |
//! | [`Verdict::Retryable`] | wait the backoff (exponential, ±jitter), try again |
//! | [`Verdict::Throttled`] | wait the server's delay (`Retry-After`, gRPC `RetryInfo`) or the backoff, try again |
//!
//! When the next wait would pass the deadline, or the attempts are used up, the result is
//! [`Outcome::Undelivered`]: the payload may still be delivered later, and callers that keep
//! a queue (the exporter's processor, the score worker) put it back instead of dropping it.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use langfuse_otel_transport::{Outcome, RetryPolicy, Status, Verdict, deliver};
//!
//! let policy = RetryPolicy { initial_backoff: Duration::from_millis(1), ..RetryPolicy::default() };
//! let mut answers = vec![Verdict::Delivered { status: Status::Http(200), body: vec![] },
//!                        Verdict::Retryable { status: Some(Status::Http(503)), reason: "HTTP 503".into() }];
//! let outcome = deliver(&policy, Instant::now() + Duration::from_secs(5), None, |_timeout| answers.pop().unwrap());
//! assert!(matches!(outcome, Outcome::Delivered { status: Status::Http(200), attempts: 2, .. }));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

/// `Content-Encoding` of a payload body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ContentEncoding {
    /// Not compressed.
    #[default]
    Identity,
    /// gzip.
    Gzip,
}

impl ContentEncoding {
    /// The header value, `None` for identity.
    pub fn header_value(self) -> Option<&'static str> {
        match self {
            ContentEncoding::Identity => None,
            ContentEncoding::Gzip => Some("gzip"),
        }
    }
}

/// An encoded request body and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The body, as sent.
    pub body: Vec<u8>,
    /// `Content-Type` (`application/x-protobuf`, `application/json`).
    pub content_type: Cow<'static, str>,
    /// `Content-Encoding` of `body`.
    pub content_encoding: ContentEncoding,
    /// How many items (spans, events, scores) the body holds, for loss accounting.
    pub items: usize,
}

impl Payload {
    /// A payload of `items` items.
    pub fn new(
        body: Vec<u8>,
        content_type: impl Into<Cow<'static, str>>,
        content_encoding: ContentEncoding,
        items: usize,
    ) -> Self {
        Payload {
            body,
            content_type: content_type.into(),
            content_encoding,
            items,
        }
    }
}

/// `application/x-protobuf`.
pub const PROTOBUF: &str = "application/x-protobuf";
/// `application/json`.
pub const JSON: &str = "application/json";

/// The answer that settled an attempt: an HTTP status or a gRPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// An HTTP status code.
    Http(u16),
    /// A gRPC status code (`0` = OK, `14` = UNAVAILABLE, …).
    Grpc(i32),
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Http(s) => write!(f, "HTTP {s}"),
            Status::Grpc(c) => write!(f, "gRPC {} ({c})", grpc_code_name(*c)),
        }
    }
}

/// The canonical name of a gRPC status code.
pub fn grpc_code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN_CODE",
    }
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Accepted, with the answer's body.
    Delivered {
        /// The success status.
        status: Status,
        /// The response body (bounded).
        body: Vec<u8>,
    },
    /// A transient failure (connection refused or reset, timeout, 5xx, UNAVAILABLE).
    Retryable {
        /// The answer, if there was one.
        status: Option<Status>,
        /// What happened (no secrets).
        reason: String,
    },
    /// The receiver asked to slow down (429, RESOURCE_EXHAUSTED), maybe with a delay.
    Throttled {
        /// The answer.
        status: Status,
        /// The delay the receiver asked for (`Retry-After`, `RetryInfo`).
        delay: Option<Duration>,
        /// What happened.
        reason: String,
    },
    /// Sending the same payload again cannot succeed (4xx, INVALID_ARGUMENT, bad URL).
    Final {
        /// The answer, if there was one.
        status: Option<Status>,
        /// What happened.
        reason: String,
    },
}

/// The result of [`deliver`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The receiver accepted the payload.
    Delivered {
        /// The success status (exact: 200, 202, 207, gRPC OK…).
        status: Status,
        /// The response body (bounded).
        body: Vec<u8>,
        /// Attempts made.
        attempts: u32,
    },
    /// The receiver refused it for good; sending it again cannot help.
    Rejected {
        /// The answer, if there was one.
        status: Option<Status>,
        /// Why.
        reason: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Not delivered within the deadline or the attempts, but it may be later.
    Undelivered {
        /// The last answer, if there was one.
        status: Option<Status>,
        /// The last failure.
        reason: String,
        /// Attempts made.
        attempts: u32,
        /// Whether the deadline (rather than the attempt budget) ended the loop.
        timed_out: bool,
    },
}

impl Outcome {
    /// Attempts made.
    pub fn attempts(&self) -> u32 {
        match self {
            Outcome::Delivered { attempts, .. }
            | Outcome::Rejected { attempts, .. }
            | Outcome::Undelivered { attempts, .. } => *attempts,
        }
    }

    /// The last answer's status, if any.
    pub fn status(&self) -> Option<Status> {
        match self {
            Outcome::Delivered { status, .. } => Some(*status),
            Outcome::Rejected { status, .. } | Outcome::Undelivered { status, .. } => *status,
        }
    }

    /// Whether the payload was delivered.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered { .. })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Delivered {
                status, attempts, ..
            } => write!(f, "delivered ({status}, {attempts} attempts)"),
            Outcome::Rejected {
                reason, attempts, ..
            } => write!(f, "rejected: {reason} ({attempts} attempts)"),
            Outcome::Undelivered {
                reason,
                attempts,
                timed_out,
                ..
            } => write!(
                f,
                "not delivered{}: {reason} ({attempts} attempts)",
                if *timed_out { " in time" } else { "" }
            ),
        }
    }
}

/// Retry settings of one delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Most attempts per delivery (1 disables retries).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of the computed delay (a server's delay may ask for more, within the
    /// deadline).
    pub max_backoff: Duration,
    /// Relative jitter applied to the computed delay (0.2 = ±20 %).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// 6 attempts, 250 ms doubling to at most 4 s, ±20 % jitter (all within the deadline).
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
    /// No retries: one attempt per delivery.
    pub fn disabled() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay before retry number `retry` (1-based): doubling from
    /// [`initial_backoff`](Self::initial_backoff) up to [`max_backoff`](Self::max_backoff),
    /// jittered.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let base = exp.min(self.max_backoff);
        let factor = 1.0 + self.jitter * (fastrand::f64() * 2.0 - 1.0);
        base.mul_f64(factor.max(0.0))
    }
}

/// The backoff between the rounds of a queue worker (the exporter's batch processor, the
/// SDK's score queue, the bridge's forwarder): what one round could not deliver stays queued,
/// and the next round waits the policy's delay for the number of failed rounds in a row (or
/// the delay the upstream asked for, when longer), until a round succeeds. One shape for every
/// worker: they differ in what they carry, not in how they wait.
///
/// ```
/// use std::time::{Duration, Instant};
/// use langfuse_otel_transport::{RetryPolicy, RoundBackoff};
///
/// let policy = RetryPolicy { jitter: 0.0, ..RetryPolicy::default() };
/// let mut backoff = RoundBackoff::new(policy);
/// let now = Instant::now();
/// assert_eq!(backoff.failed(now, None), now + Duration::from_millis(250));
/// assert_eq!(backoff.failed(now, None), now + Duration::from_millis(500));
/// assert_eq!(backoff.failed(now, Some(Duration::from_secs(3))), now + Duration::from_secs(3));
/// assert_eq!(backoff.round(), 3);
/// backoff.succeeded();
/// assert_eq!((backoff.round(), backoff.retry_at()), (0, None));
/// ```
#[derive(Debug, Clone)]
pub struct RoundBackoff {
    policy: RetryPolicy,
    round: u32,
    retry_at: Option<Instant>,
    /// Longest wait, whatever an upstream asks for.
    max_wait: Duration,
}

impl RoundBackoff {
    /// Longest wait between rounds by default, whatever an upstream asks for.
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(30);

    /// A backoff with no failed round yet.
    pub fn new(policy: RetryPolicy) -> Self {
        RoundBackoff {
            policy,
            round: 0,
            retry_at: None,
            max_wait: Self::DEFAULT_MAX_WAIT,
        }
    }

    /// The longest wait between rounds (an upstream's `Retry-After` is capped to it).
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// A round failed at `now`; `asked` is the delay the upstream asked for, if any. Returns
    /// when the next round may start.
    pub fn failed(&mut self, now: Instant, asked: Option<Duration>) -> Instant {
        self.round = self.round.saturating_add(1);
        let computed = self.policy.backoff(self.round);
        let wait = asked
            .map_or(computed, |a| a.max(computed))
            .min(self.max_wait);
        let at = now + wait;
        self.retry_at = Some(at);
        at
    }

    /// A round succeeded: the next failure starts from the first delay again.
    pub fn succeeded(&mut self) {
        self.round = 0;
        self.retry_at = None;
    }

    /// Failed rounds in a row.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// When the next round may start, while backing off.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Whether the worker must still wait at `now`.
    pub fn is_waiting(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|t| now < t)
    }
}

/// Runs `attempt` until the payload is delivered, finally rejected, or `deadline` or the
/// policy's attempts run out. `attempt` receives the time it may take (the remaining time,
/// capped by `attempt_timeout`).
pub fn deliver(
    policy: &RetryPolicy,
    deadline: Instant,
    attempt_timeout: Option<Duration>,
    mut attempt: impl FnMut(Duration) -> Verdict,
) -> Outcome {
    let mut attempts = 0u32;
    let mut last: Option<(Option<Status>, String)> = None;
    loop {
        let Some(remaining) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            let (status, reason) = last.unwrap_or((None, "deadline reached".into()));
            return Outcome::Undelivered {
                status,
                reason,
                attempts,
                timed_out: true,
            };
        };
        attempts += 1;
        let per_attempt = attempt_timeout.map_or(remaining, |t| t.min(remaining));
        let (status, reason, asked) = match attempt(per_attempt) {
            Verdict::Delivered { status, body } => {
                return Outcome::Delivered {
                    status,
                    body,
                    attempts,
                };
            }
            Verdict::Final { status, reason } => {
                return Outcome::Rejected {
                    status,
                    reason,
                    attempts,
                };
            }
            Verdict::Retryable { status, reason } => (status, reason, None),
            Verdict::Throttled {
                status,
                delay,
                reason,
            } => (Some(status), reason, delay),
        };
        if attempts >= policy.max_attempts {
            return Outcome::Undelivered {
                status,
                reason,
                attempts,
                timed_out: false,
            };
        }
        let delay = asked.unwrap_or_else(|| policy.backoff(attempts));
        if Instant::now() + delay >= deadline {
            return Outcome::Undelivered {
                status,
                reason: format!(
                    "{reason}; the next attempt (in {delay:?}) would pass the deadline"
                ),
                attempts,
                timed_out: true,
            };
        }
        last = Some((status, reason));
        std::thread::sleep(delay);
    }
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date (relative to `now`).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use langfuse_otel_transport::parse_retry_after;
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
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            jitter: 0.0,
        }
    }

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
    fn a_final_verdict_stops_at_once() {
        let mut n = 0;
        let o = deliver(
            &fast(),
            Instant::now() + Duration::from_secs(5),
            None,
            |_| {
                n += 1;
                Verdict::Final {
                    status: Some(Status::Http(400)),
                    reason: "bad".into(),
                }
            },
        );
        assert_eq!(n, 1);
        assert!(matches!(
            o,
            Outcome::Rejected {
                status: Some(Status::Http(400)),
                ..
            }
        ));
    }

    #[test]
    fn retryable_failures_use_the_attempt_budget_and_stay_undelivered() {
        let o = deliver(
            &fast(),
            Instant::now() + Duration::from_secs(5),
            None,
            |_| Verdict::Retryable {
                status: Some(Status::Http(503)),
                reason: "HTTP 503".into(),
            },
        );
        assert!(matches!(
            o,
            Outcome::Undelivered {
                attempts: 4,
                timed_out: false,
                status: Some(Status::Http(503)),
                ..
            }
        ));
    }

    #[test]
    fn a_server_delay_past_the_deadline_ends_the_loop_without_sleeping() {
        let started = Instant::now();
        let o = deliver(&fast(), started + Duration::from_millis(200), None, |_| {
            Verdict::Throttled {
                status: Status::Http(429),
                delay: Some(Duration::from_secs(30)),
                reason: "HTTP 429".into(),
            }
        });
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(matches!(
            o,
            Outcome::Undelivered {
                timed_out: true,
                attempts: 1,
                ..
            }
        ));
    }

    #[test]
    fn the_server_delay_replaces_the_backoff() {
        let mut calls = Vec::new();
        let started = Instant::now();
        let o = deliver(&fast(), started + Duration::from_secs(5), None, |_| {
            calls.push(started.elapsed());
            if calls.len() == 1 {
                Verdict::Throttled {
                    status: Status::Grpc(8),
                    delay: Some(Duration::from_millis(150)),
                    reason: "slow down".into(),
                }
            } else {
                Verdict::Delivered {
                    status: Status::Grpc(0),
                    body: Vec::new(),
                }
            }
        });
        assert!(o.is_delivered());
        assert!(calls[1] - calls[0] >= Duration::from_millis(150));
    }

    #[test]
    fn attempts_get_the_remaining_time_capped_by_the_attempt_timeout() {
        let mut seen = None;
        deliver(
            &fast(),
            Instant::now() + Duration::from_secs(5),
            Some(Duration::from_millis(300)),
            |t| {
                seen = Some(t);
                Verdict::Delivered {
                    status: Status::Http(200),
                    body: Vec::new(),
                }
            },
        );
        assert_eq!(seen, Some(Duration::from_millis(300)));
    }

    #[test]
    fn statuses_print_exactly() {
        assert_eq!(Status::Http(503).to_string(), "HTTP 503");
        assert_eq!(Status::Grpc(14).to_string(), "gRPC UNAVAILABLE (14)");
    }
}
