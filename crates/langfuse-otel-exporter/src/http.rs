//! Retry settings of the network destinations. Delivery itself (one retry loop for OTLP/HTTP,
//! OTLP/gRPC and native ingestion) lives in [`langfuse_otel_transport`]: 429 and 503 with a
//! `Retry-After` wait the server's delay, 500/502/503/504 and connection errors are retried
//! with exponential backoff and ±20 % jitter, any other status is final, and nothing outlives
//! the export deadline. A batch still undelivered at its deadline goes back to
//! [`crate::BatchProcessor`]'s queue.

pub use langfuse_otel_transport::{RetryPolicy, parse_retry_after};
