//! The exporter (`langfuse-otel-exporter`): transports, faults and outages, gRPC, canonical OTLP, processors, protobuf equivalence.
//!
//! One test binary per area (link time); each former file is a module: run one with
//! `cargo test -p integration-tests --test exporter <module>::`.

mod canonical;
mod canonical_otlp;
mod canonical_round_trip;
mod faults;
mod grpc;
mod ingestion;
mod offline;
mod outages;
mod processors;
mod protobuf_equivalence;
