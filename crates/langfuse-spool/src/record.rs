//! The spool's on-disk messages, tag for tag as documented in
//! `proto/langfuse_bridge_spool.proto` (hand-written prost types: no `protoc` at build time).

/// What a record's body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum RecordKind {
    /// Not set (never written).
    Unspecified = 0,
    /// An OTLP `ExportTraceServiceRequest`, protobuf, uncompressed.
    OtlpProtobuf = 1,
    /// An OTLP `ExportTraceServiceRequest`, OTLP/JSON, uncompressed.
    OtlpJson = 2,
    /// A Langfuse ingestion batch `{"batch":[...]}` as the client sent it.
    IngestionBatch = 3,
    /// A JSON array of Langfuse score objects.
    Scores = 4,
    /// An OTLP `ExportLogsServiceRequest`, protobuf, uncompressed.
    OtlpLogsProtobuf = 5,
    /// An OTLP `ExportLogsServiceRequest`, OTLP/JSON, uncompressed.
    OtlpLogsJson = 6,
    /// An OTLP `ExportMetricsServiceRequest`, protobuf, uncompressed (spooled only for a
    /// destination that takes metrics).
    OtlpMetricsProtobuf = 7,
    /// An OTLP `ExportMetricsServiceRequest`, OTLP/JSON, uncompressed.
    OtlpMetricsJson = 8,
}

/// One accepted client request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SpoolRecord {
    /// Position in the spool: consecutive, starting at 1.
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    /// What the body is.
    #[prost(enumeration = "RecordKind", tag = "2")]
    pub kind: i32,
    /// When the bridge accepted the request (Unix milliseconds).
    #[prost(int64, tag = "3")]
    pub received_unix_ms: i64,
    /// The client's `Authorization` header; `None`: the configured credentials apply.
    #[prost(string, optional, tag = "4")]
    pub authorization: Option<String>,
    /// The uncompressed request body.
    #[prost(bytes = "bytes", tag = "5")]
    pub body: bytes::Bytes,
    /// Spans (OTLP) or events/scores (JSON) in the body.
    #[prost(uint32, tag = "6")]
    pub item_count: u32,
}

impl SpoolRecord {
    /// The kind, [`RecordKind::Unspecified`] for an unknown value.
    pub fn record_kind(&self) -> RecordKind {
        RecordKind::try_from(self.kind).unwrap_or(RecordKind::Unspecified)
    }
}

/// Progress of one destination.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Cursor {
    /// Every record up to and including this sequence was accepted by the destination.
    #[prost(uint64, tag = "1")]
    pub committed: u64,
    /// Records up to this sequence may have been delivered without being committed.
    #[prost(uint64, tag = "2")]
    pub in_flight_end: u64,
}

/// What a client sent, to be appended.
#[derive(Debug, Clone)]
pub struct NewRecord {
    /// What the body is.
    pub kind: RecordKind,
    /// The client's `Authorization` header to forward with (None: configured credentials).
    pub authorization: Option<String>,
    /// The uncompressed body.
    pub body: bytes::Bytes,
    /// Spans or events in the body.
    pub item_count: u32,
    /// When it was accepted (Unix ms).
    pub received_unix_ms: i64,
}

impl NewRecord {
    /// The record as stored at `sequence`.
    pub(crate) fn to_stored(&self, sequence: u64) -> SpoolRecord {
        SpoolRecord {
            sequence,
            kind: self.kind as i32,
            received_unix_ms: self.received_unix_ms,
            authorization: self.authorization.clone(),
            body: self.body.clone(),
            item_count: self.item_count,
        }
    }
}
