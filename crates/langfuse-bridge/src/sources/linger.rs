//! Lingering close: what a client still sends after an early answer is read and discarded
//! (within a bound) before the connection closes.
//!
//! A 401, 403, 421 or 413 is decided before the request body is read. Closing the connection
//! at once while the client is still writing makes the kernel reset it, and the client then
//! sees a broken connection instead of the answer — which OTLP exporters retry forever. Like
//! nginx's `lingering_close`, the rest of the body is read and thrown away first, up to
//! [`MAX_BYTES`] or [`MAX_TIME`], so an ordinary client reads the status.

use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt;

/// Most bytes read and discarded after an early answer.
pub const MAX_BYTES: u64 = 64 << 20;
/// Longest time spent discarding after an early answer.
pub const MAX_TIME: Duration = Duration::from_secs(5);

/// Reads and discards `body` until its end, [`MAX_BYTES`] or [`MAX_TIME`], whichever comes
/// first; returns the bytes discarded.
pub async fn discard(mut body: Body) -> u64 {
    let deadline = tokio::time::Instant::now() + MAX_TIME;
    let mut discarded = 0u64;
    while discarded <= MAX_BYTES {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    discarded += data.len() as u64;
                }
            }
            // The end, a read error or the deadline: nothing more to wait for.
            _ => break,
        }
    }
    discarded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_is_read_to_its_end() {
        let body = Body::from(vec![7u8; 100_000]);
        assert_eq!(discard(body).await, 100_000);
    }
}
