//! A minimal Langfuse stand-in on 127.0.0.1: records every HTTP request (method, path, headers,
//! body with gzip removed) and answers like Langfuse (`200` for OTLP traces, `202
//! {"message":"Accepted"}` for scores).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Request {
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// Body after removing `Content-Encoding: gzip`.
    pub body: Vec<u8>,
}

/// A running receiver; requests are recorded until it is dropped (the thread is detached).
#[derive(Debug, Clone)]
pub struct Receiver {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    /// Listens on an ephemeral port of 127.0.0.1.
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let base_url = format!("http://{}", listener.local_addr().expect("local addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let sink = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = sink.clone();
                std::thread::spawn(move || serve(stream, sink));
            }
        });
        Receiver { base_url, requests }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits until `pred` holds for the recorded requests, at most `timeout`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Request]) -> bool) -> Vec<Request> {
        let start = Instant::now();
        loop {
            let reqs = self.requests();
            if pred(&reqs) || start.elapsed() > timeout {
                return reqs;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve(stream: TcpStream, sink: Arc<Mutex<Vec<Request>>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, path) = (method.to_owned(), path.to_owned());
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let mut body = Vec::new();
        if headers
            .get("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let mut size = String::new();
                if reader.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                if reader.read_exact(&mut chunk).is_err() {
                    return;
                }
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            let n: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            body = vec![0; n];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
        }
        if headers
            .get("content-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip"))
        {
            let mut out = Vec::new();
            if flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut out)
                .is_ok()
            {
                body = out;
            }
        }
        let scores = path.starts_with("/api/public/scores");
        if let Ok(mut s) = sink.lock() {
            s.push(Request {
                method,
                path,
                headers,
                body,
            });
        }
        let (status, ctype, payload): (&str, &str, &[u8]) = if scores {
            (
                "202 Accepted",
                "application/json",
                br#"{"message":"Accepted"}"#,
            )
        } else {
            ("200 OK", "application/x-protobuf", b"")
        };
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n\r\n",
            payload.len()
        );
        if writer
            .write_all(head.as_bytes())
            .and_then(|_| writer.write_all(payload))
            .is_err()
        {
            return;
        }
    }
}
