//! [`Receiver`]: what the HTTP and gRPC listeners share — the spool appender, credentials,
//! limits and metrics — and the durable append every accepting answer waits for.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::auth::Auth;
use super::receive::{Limits, ReceiveError};
use crate::metrics::Metrics;
use langfuse_spool::{Appender, NewRecord, RecordKind, Spool};

/// State shared by the listeners.
pub struct Receiver {
    pub(crate) appender: Appender,
    pub(crate) auth: Auth,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: Limits,
    pub(crate) spool: Spool,
    pub(crate) retry_after_secs: u64,
    /// Whether metrics exports are spooled (a destination takes them: `--to otlp`).
    pub(crate) keep_metrics: bool,
    /// The local store (`--to local`), whose file `/health` checks.
    pub(crate) store: Option<langfuse_local::Store>,
    /// `SPOOL/dead-letter/`, whose files `/health` counts.
    pub(crate) dead_letter_dir: std::path::PathBuf,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Receiver {
    /// Appends one accepted request to the spool (durably, per the fsync policy).
    pub(crate) async fn append(
        &self,
        kind: RecordKind,
        authorization: Option<String>,
        body: Bytes,
        items: u32,
    ) -> Result<u64, ReceiveError> {
        self.appender
            .append(NewRecord {
                kind,
                authorization,
                body,
                item_count: items,
                received_unix_ms: now_ms(),
            })
            .await
            .map_err(|e| {
                if e.is_full() {
                    ReceiveError::SpoolFull
                } else {
                    tracing::error!(error = %e, "cannot append to the spool");
                    ReceiveError::Unavailable
                }
            })
    }
}
