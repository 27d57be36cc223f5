//! `langfuse-bridge`: receives OTLP from any language and forwards Langfuse records durably.
//!
//! | module | what |
//! |---|---|
//! | [`spool`] | the durable spool: segment files of checksummed records, destination cursors |

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod spool;
