//! Sources: where records enter the bridge, and everything between a client's bytes and the
//! durable append that precedes any 2xx.
//!
//! | module | what |
//! |---|---|
//! | [`listener`] | the accept loop (HTTP/1 for OTLP/HTTP and the Langfuse API, HTTP/2 for gRPC): connection cap, header/body/idle timeouts, bounded shutdown |
//! | [`linger`] | lingering close: a body still arriving after an early 401/403/421/413 is read and discarded, so the client sees the answer |
//! | [`access`] | who may use a listener of `serve` and `ui`: keys, allowed hosts, own origin, loopback without keys |
//! | [`auth`] | the configured keys, or each client's own credentials |
//! | [`content_type`] | `Content-Type` parsed: `type/subtype` exactly, parameters apart |
//! | [`body`] | bodies with size limits, gzip included (no gzip bomb is ever read into memory) |
//! | [`receive`] | the receive checks: limits, decompression, content types, OTLP screening, ingestion schema |
//! | [`receiver`] | the shared [`receiver::Receiver`]: checks, then the durable spool append |
//! | [`http`], [`grpc`] | the OTLP/HTTP + Langfuse API routes, and the OTLP/gRPC trace service |
//! | [`api`] | the rest of Langfuse's public API: passed through to a Langfuse upstream, or answered in local mode |
//! | `kafka` | a Kafka consumer group's messages as spool records, for `consume` (feature `kafka`) |

pub mod access;
pub mod api;
pub mod auth;
pub mod body;
pub mod content_type;
pub mod grpc;
pub mod http;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod linger;
pub mod listener;
pub mod receive;
pub mod receiver;
