//! [`GrpcSender`] (feature `grpc`): OTLP/gRPC `TraceService/Export` through tonic, driven by a
//! private Tokio runtime on its own thread.
//!
//! It sends a payload that is already an encoded `ExportTraceServiceRequest` (the same bytes as
//! an OTLP/HTTP protobuf body; a gzip body is inflated first, then compressed per message by
//! gRPC when `gzip` is on), so callers need neither `opentelemetry-proto` nor a runtime of
//! their own: [`send`](GrpcSender::send) hands the request to that thread and waits on a
//! standard channel, which works from inside another runtime too.
//!
//! Classification: OK delivered; `RESOURCE_EXHAUSTED` throttled, and any code carrying a
//! `google.rpc.RetryInfo` detail waits the server's `retry_delay`; `UNAVAILABLE`,
//! `DEADLINE_EXCEEDED`, `ABORTED`, `CANCELLED` retryable; everything else final.

use std::io::Read as _;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::{Buf as _, BufMut as _};
use tonic::Code;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{MetadataKey, MetadataValue};

use crate::TransportError;
use crate::delivery::{ContentEncoding, Outcome, Payload, RetryPolicy, Status, Verdict, deliver};
use crate::settings::Secret;

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

struct Job {
    message: Vec<u8>,
    timeout: Duration,
    reply: mpsc::SyncSender<Result<(), tonic::Status>>,
}

/// An OTLP/gRPC trace service endpoint; see the [module docs](self).
pub struct GrpcSender {
    endpoint: String,
    jobs: Mutex<mpsc::Sender<Job>>,
    retry: RetryPolicy,
    attempt_timeout: Option<Duration>,
}

impl std::fmt::Debug for GrpcSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcSender")
            .field("endpoint", &self.endpoint)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Passes already-encoded protobuf bytes through; ignores the (empty) response.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ();
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ();
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        let n = src.remaining();
        src.advance(n);
        Ok(Some(()))
    }
}

impl GrpcSender {
    /// Connects lazily to `endpoint` (`http://host:4317`); `headers` become metadata.
    pub fn new(
        endpoint: impl Into<String>,
        headers: Vec<(String, Secret)>,
        gzip: bool,
        retry: RetryPolicy,
        attempt_timeout: Option<Duration>,
    ) -> Result<Self, TransportError> {
        Self::for_method(endpoint, EXPORT_PATH, headers, gzip, retry, attempt_timeout)
    }

    /// Like [`new`](Self::new), for another OTLP service's export method (for example
    /// `/opentelemetry.proto.collector.logs.v1.LogsService/Export`): the payload is that
    /// service's encoded request.
    pub fn for_method(
        endpoint: impl Into<String>,
        method: &'static str,
        headers: Vec<(String, Secret)>,
        gzip: bool,
        retry: RetryPolicy,
        attempt_timeout: Option<Duration>,
    ) -> Result<Self, TransportError> {
        let endpoint = endpoint.into();
        let channel_endpoint = tonic::transport::Endpoint::from_shared(endpoint.clone())
            .map_err(|_| TransportError::InvalidUrl(endpoint.clone()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TransportError::Start(format!("cannot start the gRPC runtime: {e}")))?;
        let (tx, rx) = mpsc::channel::<Job>();
        let mut metadata = Vec::new();
        for (k, v) in headers {
            if let (Ok(key), Ok(value)) = (
                MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()),
                MetadataValue::try_from(v.expose()),
            ) {
                metadata.push((key, value));
            }
        }
        std::thread::Builder::new()
            .name("langfuse-otel-grpc".into())
            .spawn(move || {
                let channel = {
                    let _enter = runtime.enter();
                    channel_endpoint.connect_lazy()
                };
                while let Ok(job) = rx.recv() {
                    let mut client = tonic::client::Grpc::new(channel.clone());
                    if gzip {
                        client = client.send_compressed(CompressionEncoding::Gzip);
                    }
                    let mut req = tonic::Request::new(job.message);
                    req.set_timeout(job.timeout);
                    for (k, v) in &metadata {
                        req.metadata_mut().insert(k.clone(), v.clone());
                    }
                    let result = runtime.block_on(async {
                        let call = async {
                            client
                                .ready()
                                .await
                                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
                            client
                                .unary::<Vec<u8>, (), _>(
                                    req,
                                    PathAndQuery::from_static(method),
                                    RawCodec,
                                )
                                .await
                        };
                        match tokio::time::timeout(job.timeout, call).await {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err(status)) => Err(status),
                            Err(_) => Err(tonic::Status::deadline_exceeded("attempt timed out")),
                        }
                    });
                    let _ = job.reply.send(result);
                }
            })
            .map_err(|e| TransportError::Start(format!("cannot start the gRPC thread: {e}")))?;
        Ok(GrpcSender {
            endpoint,
            jobs: Mutex::new(tx),
            retry,
            attempt_timeout,
        })
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.endpoint
    }

    /// Sends `payload` (an encoded `ExportTraceServiceRequest`) until it is delivered, finally
    /// rejected, or `deadline` passes.
    pub fn send(&self, payload: &Payload, deadline: Instant) -> Outcome {
        let message = match payload.content_encoding {
            ContentEncoding::Gzip => {
                let mut out = Vec::new();
                if let Err(e) =
                    flate2::read::GzDecoder::new(&payload.body[..]).read_to_end(&mut out)
                {
                    return Outcome::Rejected {
                        status: None,
                        reason: format!("the gzip payload cannot be inflated: {e}"),
                        attempts: 0,
                    };
                }
                out
            }
            _ => payload.body.clone(),
        };
        deliver(&self.retry, deadline, self.attempt_timeout, |timeout| {
            self.attempt(message.clone(), timeout)
        })
    }

    fn attempt(&self, message: Vec<u8>, timeout: Duration) -> Verdict {
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let job = Job {
            message,
            timeout,
            reply: reply_tx,
        };
        let sent = self
            .jobs
            .lock()
            .map(|tx| tx.send(job).is_ok())
            .unwrap_or(false);
        if !sent {
            return Verdict::Final {
                status: None,
                reason: "the gRPC thread has stopped".into(),
            };
        }
        match reply_rx.recv_timeout(timeout + Duration::from_millis(200)) {
            Ok(Ok(())) => Verdict::Delivered {
                status: Status::Grpc(0),
                body: Vec::new(),
            },
            Ok(Err(status)) => classify(&status),
            Err(_) => Verdict::Retryable {
                status: None,
                reason: "no answer from the gRPC thread in time".into(),
            },
        }
    }
}

/// The verdict of a gRPC status (see the module docs).
fn classify(status: &tonic::Status) -> Verdict {
    let code = status.code();
    let s = Status::Grpc(code as i32);
    let reason = format!("{s}: {}", status.message());
    let delay = retry_delay(status.details());
    match code {
        Code::Ok => Verdict::Delivered {
            status: s,
            body: Vec::new(),
        },
        Code::ResourceExhausted => Verdict::Throttled {
            status: s,
            delay,
            reason,
        },
        Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Cancelled => match delay
        {
            Some(d) => Verdict::Throttled {
                status: s,
                delay: Some(d),
                reason,
            },
            None => Verdict::Retryable {
                status: Some(s),
                reason,
            },
        },
        _ => Verdict::Final {
            status: Some(s),
            reason,
        },
    }
}

/// `google.rpc.Status` (the `grpc-status-details-bin` trailer).
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// The `retry_delay` of a `RetryInfo` detail in an encoded `google.rpc.Status`.
fn retry_delay(details: &[u8]) -> Option<Duration> {
    use prost::Message as _;
    if details.is_empty() {
        return None;
    }
    let status = RpcStatus::decode(details).ok()?;
    let any = status
        .details
        .iter()
        .find(|a| a.type_url == RETRY_INFO_TYPE)?;
    let d = RetryInfo::decode(&any.value[..]).ok()?.retry_delay?;
    let secs = u64::try_from(d.seconds).ok()?;
    let nanos = u32::try_from(d.nanos).ok()?;
    Some(Duration::new(secs, 0) + Duration::from_nanos(u64::from(nanos)))
}

/// Encodes a `google.rpc.Status` with a `RetryInfo` detail asking for `delay`: what a server
/// puts in `grpc-status-details-bin` to ask a client to wait (for test servers and the bridge).
///
/// ```
/// use std::time::Duration;
/// let details = langfuse_otel_transport::grpc::retry_info_details(14, "busy", Duration::from_millis(1500));
/// assert!(!details.is_empty());
/// ```
pub fn retry_info_details(code: i32, message: &str, delay: Duration) -> Vec<u8> {
    use prost::Message as _;
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
        }),
    };
    RpcStatus {
        code,
        message: message.to_string(),
        details: vec![Any {
            type_url: RETRY_INFO_TYPE.to_string(),
            value: info.encode_to_vec(),
        }],
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_round_trips() {
        let d = retry_info_details(14, "busy", Duration::from_millis(1500));
        assert_eq!(retry_delay(&d), Some(Duration::from_millis(1500)));
        assert_eq!(retry_delay(b""), None);
        assert_eq!(retry_delay(b"\xff\xff"), None);
    }

    #[test]
    fn unavailable_with_retry_info_is_throttled_by_the_servers_delay() {
        let status = tonic::Status::with_details(
            Code::Unavailable,
            "busy",
            retry_info_details(14, "busy", Duration::from_secs(2)).into(),
        );
        assert!(matches!(
            classify(&status),
            Verdict::Throttled { status: Status::Grpc(14), delay: Some(d), .. } if d == Duration::from_secs(2)
        ));
        assert!(matches!(
            classify(&tonic::Status::invalid_argument("x")),
            Verdict::Final {
                status: Some(Status::Grpc(3)),
                ..
            }
        ));
    }
}
