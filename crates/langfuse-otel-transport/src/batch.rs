//! [`JsonBatchSender`]: JSON items (ingestion events, scores) in byte-bounded requests, with
//! per-item results.
//!
//! Two formats:
//! - [`BatchFormat::Ingestion`]: `{"batch":[…]}` to `/api/public/ingestion`, at most 3.5 MB per
//!   request (the documented limit). The server answers 207 with per-event results: events it
//!   lists with 429/5xx are sent again (within the deadline and the retry budget), 4xx
//!   per-event errors are final.
//! - [`BatchFormat::Array`]: `[…]` to `/api/public/scores` (the Python SDK 5's score
//!   transport), at most 1 MB per request; a 2xx delivers the whole request.
//!
//! A 413 answer splits the request in halves. Items that are still retryable when the
//! deadline or the retry budget runs out come back in [`BatchReport::undelivered`], so a caller
//! with a queue can keep them.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use langfuse_otel_transport::{HttpSender, JsonBatchSender, JsonItem};
//!
//! let http = HttpSender::builder("http://127.0.0.1:3000/api/public/scores").build().unwrap();
//! let scores = JsonBatchSender::scores(http);
//! let item = JsonItem::new("s1", "score", r#"{"id":"s1","traceId":"t","name":"q","value":1.0}"#);
//! let report = scores.send(vec![item], Instant::now() + Duration::from_secs(5));
//! assert_eq!(report.delivered.len() + report.rejected.len() + report.undelivered.len(), 1);
//! ```

use std::collections::HashMap;
use std::time::Instant;

use serde::Deserialize;

use crate::delivery::{ContentEncoding, JSON, Outcome, Payload, Status};
use crate::http::HttpSender;
use crate::settings::Secret;

/// The documented request limit of `/api/public/ingestion`.
pub const MAX_INGESTION_BATCH_BYTES: usize = 3_500_000;
/// The request limit of `/api/public/scores` (the Python SDK's).
pub const MAX_SCORES_BATCH_BYTES: usize = 1_000_000;

/// One serialized JSON item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonItem {
    /// Its id (the ingestion envelope id, or the score id): how per-item results find it.
    pub id: String,
    /// What it is (`span-create`, `score`…), for the caller's accounting.
    pub kind: &'static str,
    /// The serialized JSON object.
    pub json: String,
}

impl JsonItem {
    /// An item.
    pub fn new(id: impl Into<String>, kind: &'static str, json: impl Into<String>) -> Self {
        JsonItem {
            id: id.into(),
            kind,
            json: json.into(),
        }
    }
}

/// How items are put in a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchFormat {
    /// `{"batch":[…]}` with per-event results in a 207 answer.
    Ingestion,
    /// A JSON array; a 2xx delivers all of it.
    Array,
}

/// What happened to the items of one [`JsonBatchSender::send`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BatchReport {
    /// Accepted.
    pub delivered: Vec<JsonItem>,
    /// Refused for good, with the reason (no secrets).
    pub rejected: Vec<(JsonItem, String)>,
    /// Not delivered in time, but they may be later.
    pub undelivered: Vec<JsonItem>,
    /// Requests that got a 2xx answer.
    pub requests: u32,
    /// Attempts beyond the first of each request (retries).
    pub retries: u32,
    /// The last answer's status.
    pub last_status: Option<Status>,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// Sends JSON items in byte-bounded requests; see the [module docs](self).
#[derive(Debug)]
pub struct JsonBatchSender {
    http: HttpSender,
    format: BatchFormat,
    max_bytes: usize,
    max_items: usize,
}

#[derive(Debug, Deserialize, Default)]
struct IngestionResponse {
    #[serde(default)]
    errors: Vec<EventResult>,
}

#[derive(Debug, Deserialize)]
struct EventResult {
    id: serde_json::Value,
    #[serde(default)]
    status: u16,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

impl JsonBatchSender {
    /// Native ingestion (`{"batch":[…]}`, 3.5 MB, per-event 207 results).
    pub fn ingestion(http: HttpSender) -> Self {
        JsonBatchSender {
            http,
            format: BatchFormat::Ingestion,
            max_bytes: MAX_INGESTION_BATCH_BYTES,
            max_items: usize::MAX,
        }
    }

    /// Scores (`[…]`, 1 MB).
    pub fn scores(http: HttpSender) -> Self {
        JsonBatchSender {
            http,
            format: BatchFormat::Array,
            max_bytes: MAX_SCORES_BATCH_BYTES,
            max_items: usize::MAX,
        }
    }

    /// Largest request body (at least 1 KiB).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes.max(1024);
        self
    }

    /// Most items per request (at least 1).
    pub fn max_items(mut self, items: usize) -> Self {
        self.max_items = items.max(1);
        self
    }

    /// The HTTP sender.
    pub fn http(&self) -> &HttpSender {
        &self.http
    }

    fn overhead(&self) -> usize {
        match self.format {
            BatchFormat::Ingestion => 12,
            BatchFormat::Array => 2,
        }
    }

    fn body(&self, items: &[JsonItem]) -> Vec<u8> {
        let len: usize = items.iter().map(|e| e.json.len() + 1).sum();
        let mut body = Vec::with_capacity(len + self.overhead());
        let (open, close): (&[u8], &[u8]) = match self.format {
            BatchFormat::Ingestion => (b"{\"batch\":[", b"]}"),
            BatchFormat::Array => (b"[", b"]"),
        };
        body.extend_from_slice(open);
        for (i, e) in items.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(e.json.as_bytes());
        }
        body.extend_from_slice(close);
        body
    }

    /// Sends `items` in order, in requests within the byte and item limits, until each is
    /// delivered, rejected, or left undelivered at `deadline`.
    pub fn send(&self, items: Vec<JsonItem>, deadline: Instant) -> BatchReport {
        self.send_with_headers(items, &[], deadline)
    }

    /// Like [`send`](Self::send), with per-request headers that replace fixed headers of the
    /// same name (the bridge forwarding each client's own `authorization`).
    pub fn send_with_headers(
        &self,
        items: Vec<JsonItem>,
        headers: &[(String, Secret)],
        deadline: Instant,
    ) -> BatchReport {
        let mut report = BatchReport::default();
        let mut chunk: Vec<JsonItem> = Vec::new();
        let mut chunk_bytes = self.overhead();
        for item in items {
            let size = item.json.len() + 1;
            if size + self.overhead() > self.max_bytes {
                report.rejected.push((
                    item,
                    format!("larger than the {}-byte request limit", self.max_bytes),
                ));
                continue;
            }
            if !chunk.is_empty()
                && (chunk_bytes + size > self.max_bytes || chunk.len() >= self.max_items)
            {
                self.send_chunk(std::mem::take(&mut chunk), headers, deadline, &mut report);
                chunk_bytes = self.overhead();
            }
            chunk_bytes += size;
            chunk.push(item);
        }
        if !chunk.is_empty() {
            self.send_chunk(chunk, headers, deadline, &mut report);
        }
        report
    }

    fn send_chunk(
        &self,
        mut pending: Vec<JsonItem>,
        headers: &[(String, Secret)],
        deadline: Instant,
        report: &mut BatchReport,
    ) {
        let policy = self.http.retry_policy().clone();
        let mut round = 0u32;
        while !pending.is_empty() {
            round += 1;
            let n = pending.len();
            let payload = Payload::new(self.body(&pending), JSON, ContentEncoding::Identity, n);
            let outcome = self.http.send_with_headers(&payload, headers, deadline);
            report.retries += outcome.attempts().saturating_sub(1);
            report.last_status = outcome.status();
            match outcome {
                Outcome::Delivered { status, body, .. } => {
                    report.requests += 1;
                    let retry = match self.format {
                        BatchFormat::Array => {
                            report.delivered.append(&mut pending);
                            Vec::new()
                        }
                        BatchFormat::Ingestion => settle(pending, status, &body, report),
                    };
                    pending = retry;
                    if pending.is_empty() {
                        return;
                    }
                    let delay = policy.backoff(round);
                    if round >= policy.max_attempts || Instant::now() + delay >= deadline {
                        report.last_error =
                            Some("events kept failing with 5xx/429 in a 207 answer".into());
                        report.undelivered.append(&mut pending);
                        return;
                    }
                    report.retries += 1;
                    std::thread::sleep(delay);
                }
                Outcome::Rejected {
                    status: Some(Status::Http(413)),
                    ..
                } if pending.len() >= 2 => {
                    let second = pending.split_off(pending.len() / 2);
                    self.send_chunk(pending, headers, deadline, report);
                    self.send_chunk(second, headers, deadline, report);
                    return;
                }
                Outcome::Rejected { reason, .. } => {
                    report.last_error = Some(reason.clone());
                    report
                        .rejected
                        .extend(pending.drain(..).map(|i| (i, reason.clone())));
                    return;
                }
                Outcome::Undelivered { reason, .. } => {
                    report.last_error = Some(reason);
                    report.undelivered.append(&mut pending);
                    return;
                }
            }
        }
    }
}

/// Applies a 2xx ingestion answer: delivered and rejected items go to `report`; the items to
/// send again are returned.
fn settle(
    pending: Vec<JsonItem>,
    status: Status,
    body: &[u8],
    report: &mut BatchReport,
) -> Vec<JsonItem> {
    let resp: IngestionResponse = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(_) => {
            if status == Status::Http(207) {
                // Per-event results unknown: counted as accepted, and said.
                report.last_error = Some(
                    "a 207 answer had an unreadable body; its events are counted as accepted"
                        .into(),
                );
            }
            IngestionResponse::default()
        }
    };
    let mut errors = HashMap::new();
    for e in &resp.errors {
        if let Some(id) = e.id.as_str() {
            errors.insert(id.to_string(), e);
        }
    }
    let mut retry = Vec::new();
    for item in pending {
        match errors.get(&item.id) {
            // Listed as success, or not listed at all: delivered.
            None => report.delivered.push(item),
            Some(e) if e.status == 429 || e.status >= 500 => retry.push(item),
            Some(e) => {
                let message = e.message.clone().unwrap_or_default();
                let detail = e
                    .error
                    .as_ref()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default();
                let reason = format!("{} {message} {detail}", e.status)
                    .trim()
                    .to_string();
                report.rejected.push((item, reason));
            }
        }
    }
    retry
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(format: BatchFormat) -> JsonBatchSender {
        let http = HttpSender::builder("http://127.0.0.1:9/x").build().unwrap();
        match format {
            BatchFormat::Ingestion => JsonBatchSender::ingestion(http),
            BatchFormat::Array => JsonBatchSender::scores(http),
        }
    }

    #[test]
    fn bodies_are_a_batch_object_or_an_array() {
        let items = [
            JsonItem::new("a", "x", r#"{"id":"a"}"#),
            JsonItem::new("b", "x", r#"{"id":"b"}"#),
        ];
        let v: serde_json::Value =
            serde_json::from_slice(&sender(BatchFormat::Ingestion).body(&items)).unwrap();
        assert_eq!(v["batch"][1]["id"], "b");
        let v: serde_json::Value =
            serde_json::from_slice(&sender(BatchFormat::Array).body(&items)).unwrap();
        assert_eq!(v[0]["id"], "a");
    }

    #[test]
    fn a_207_sorts_items_into_delivered_rejected_and_retried() {
        let items = vec![
            JsonItem::new("a", "x", "{}"),
            JsonItem::new("b", "x", "{}"),
            JsonItem::new("c", "x", "{}"),
        ];
        let body = br#"{"successes":[{"id":"a","status":201}],"errors":[{"id":"b","status":400,"message":"bad"},{"id":"c","status":500}]}"#;
        let mut report = BatchReport::default();
        let retry = settle(items, Status::Http(207), body, &mut report);
        assert_eq!(report.delivered.len(), 1);
        assert_eq!(report.rejected[0].0.id, "b");
        assert_eq!(report.rejected[0].1, "400 bad");
        assert_eq!(retry[0].id, "c");
    }

    #[test]
    fn an_item_larger_than_the_limit_is_rejected_without_a_request() {
        let s = sender(BatchFormat::Array).max_bytes(1024);
        let report = s.send(
            vec![JsonItem::new("big", "score", "x".repeat(2000))],
            Instant::now(),
        );
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(report.requests, 0);
    }
}
