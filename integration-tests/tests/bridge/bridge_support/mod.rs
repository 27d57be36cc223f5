//! Shared by the `bridge_*` tests: an in-process bridge on 127.0.0.1:0 with its own runtime,
//! the `langfuse-bridge` binary (built on first use), blocking HTTP requests, OTLP exports.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use langfuse_bridge::Bridge;
use langfuse_bridge::Metrics;
use langfuse_bridge::ServeConfig;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "lf-bridge-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A configuration for tests: loopback port 0 for both listeners, a fresh spool.
pub fn test_config(tag: &str, upstream: &str, to: &str) -> ServeConfig {
    ServeConfig::from_toml(&format!(
        "http = \"127.0.0.1:0\"\ngrpc = \"127.0.0.1:0\"\nto = \"{to}\"\nupstream = \"{upstream}\"\nfsync = \"never\"\nshutdown_timeout_secs = 5\nupstream_timeout_secs = 2\n"
    ))
    .map(|mut c| {
        c.spool = temp_dir(tag);
        c
    })
    .expect("test configuration")
}

/// An in-process bridge on its own runtime thread.
pub struct RunningBridge {
    pub http: SocketAddr,
    pub grpc: Option<SocketAddr>,
    pub metrics: std::sync::Arc<Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningBridge {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Graceful shutdown; waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningBridge {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts `bridge` and waits until it listens.
pub fn start(bridge: Bridge) -> RunningBridge {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let bound = bridge.bind().await.expect("bridge binds");
            let _ = ready_tx.send((bound.http_addr(), bound.grpc_addr(), bound.metrics()));
            bound
                .run(async {
                    let _ = stop_rx.await;
                })
                .await
                .expect("bridge runs");
        });
    });
    let (http, grpc, metrics) = ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("bridge started");
    RunningBridge {
        http,
        grpc,
        metrics,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    })
}

/// POSTs `body`; `Err` when the connection fails.
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Answer, String> {
    let mut req = agent().post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(body).map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 24)
        .read_to_vec()
        .unwrap_or_default();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// GETs `url`.
pub fn get(url: &str) -> Result<Answer, String> {
    let mut resp = agent().get(url).call().map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_vec().unwrap_or_default();
    Ok(Answer {
        status,
        headers: Vec::new(),
        body,
    })
}

/// `Basic base64(public:secret)`.
pub fn basic(public: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{public}:{secret}"))
    )
}

/// gzip.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// An export of `n` spans whose span ids are `first..first+n` (8 bytes big-endian), one
/// trace per export.
pub fn export(first: u64, n: u64) -> ExportTraceServiceRequest {
    let trace_id = {
        let mut t = [0u8; 16];
        t[..8].copy_from_slice(&first.to_be_bytes());
        t[15] = 1;
        t.to_vec()
    };
    let spans = (first..first + n)
        .map(|i| Span {
            trace_id: trace_id.clone(),
            span_id: i.to_be_bytes().to_vec(),
            name: format!("llm call {i}"),
            start_time_unix_nano: 1_767_258_000_000_000_000 + i,
            end_time_unix_nano: 1_767_258_000_250_000_000 + i,
            attributes: vec![opentelemetry_proto::tonic::common::v1::KeyValue {
                key: "gen_ai.request.model".into(),
                value: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                    value: Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                            "gpt-4o".into(),
                        ),
                    ),
                }),
                ..Default::default()
            }],
            ..Span::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "bridge-test".into(),
                    ..InstrumentationScope::default()
                }),
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// [`export`] encoded.
pub fn export_bytes(first: u64, n: u64) -> Vec<u8> {
    export(first, n).encode_to_vec()
}

/// Waits until `done` holds, polling.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// The `langfuse-bridge` binary, built if needed (see [`integration_tests::bridge_bin`]).
pub fn bridge_binary() -> &'static Path {
    integration_tests::bridge_bin::bridge()
}

/// The value of an unlabelled series in a Prometheus text exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
