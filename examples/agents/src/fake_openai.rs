//! A scripted OpenAI-compatible chat-completions server on 127.0.0.1 (std only: a listener
//! thread, one thread per connection, HTTP/1.1 with `Connection: close`).
//!
//! What it answers to `POST …/chat/completions`, decided from the request body:
//!
//! - `"stream": true` → a server-sent-events stream: three text chunks 30 ms apart, then a
//!   chunk with `usage`, then `data: [DONE]`;
//! - the last message has role `tool` → a final text answer quoting the tool results;
//! - the request offers `tools` → two tool calls: `get_weather {"city":"Paris"}` and
//!   `lookup_order {"order_id":"A-17"}`;
//! - otherwise → a short text answer.
//!
//! Every non-streamed answer carries `usage` (`prompt_tokens`, `completion_tokens`) and echoes
//! the requested `model`. Each request body is kept for tests ([`FakeOpenAi::requests`]).
//!
//! ```no_run
//! let server = langfuse_otel_agent_examples::fake_openai::FakeOpenAi::start().unwrap();
//! println!("OPENAI_BASE_URL={}", server.base_url()); // http://127.0.0.1:PORT/v1/
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// Prompt tokens reported for every answer.
pub const PROMPT_TOKENS: u64 = 42;
/// Completion tokens reported for every answer.
pub const COMPLETION_TOKENS: u64 = 7;
/// The streamed answer, as its chunks.
pub const STREAM_CHUNKS: [&str; 3] = ["Paris: ", "18°C, ", "cloudy."];

/// A running fake server; it stops accepting when dropped (after at most one more connection).
#[derive(Debug)]
pub struct FakeOpenAi {
    port: u16,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl FakeOpenAi {
    /// Binds 127.0.0.1 on a free port and serves in background threads.
    pub fn start() -> std::io::Result<FakeOpenAi> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || {
                    // A broken client connection only ends that connection.
                    let _ = serve(stream, &seen);
                });
            }
        });
        Ok(FakeOpenAi { port, requests })
    }

    /// The OpenAI base URL to give a client: `http://127.0.0.1:PORT/v1/`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/", self.port)
    }

    /// The JSON bodies received so far, in arrival order.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Value>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut len = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len.min(16 << 20)];
    reader.read_exact(&mut body)?;
    let mut out = stream;
    if !path.ends_with("/chat/completions") {
        return respond(&mut out, "404 Not Found", "application/json", b"{}");
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return respond(&mut out, "400 Bad Request", "application/json", b"{}");
    };
    if let Ok(mut r) = seen.lock() {
        r.push(request.clone());
    }
    let model = request["model"].as_str().unwrap_or("fake-model").to_owned();
    if request["stream"].as_bool() == Some(true) {
        return stream_answer(&mut out, &model);
    }
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let last_role = messages.last().and_then(|m| m["role"].as_str());
    let offers_tools = request["tools"].as_array().is_some_and(|t| !t.is_empty());
    let message = if last_role == Some("tool") {
        let results: Vec<&str> = messages
            .iter()
            .filter(|m| m["role"] == "tool")
            .filter_map(|m| m["content"].as_str())
            .collect();
        json!({"role": "assistant", "content": format!("Done. Tool results: {}", results.join(" | "))})
    } else if offers_tools {
        json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [
                {"id": "call_weather", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_order", "type": "function",
                 "function": {"name": "lookup_order", "arguments": "{\"order_id\":\"A-17\"}"}}
            ]
        })
    } else {
        json!({"role": "assistant", "content": "Hello from the fake model."})
    };
    let finish = if message.get("tool_calls").is_some() {
        "tool_calls"
    } else {
        "stop"
    };
    let answer = json!({
        "id": format!("chatcmpl-{}", seen.lock().map(|r| r.len()).unwrap_or(0)),
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                  "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}
    });
    respond(
        &mut out,
        "200 OK",
        "application/json",
        answer.to_string().as_bytes(),
    )
}

fn respond(out: &mut TcpStream, status: &str, ctype: &str, body: &[u8]) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )?;
    out.write_all(body)?;
    out.flush()
}

fn stream_answer(out: &mut TcpStream, model: &str) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n"
    )?;
    out.flush()?;
    let chunk = |delta: Value, finish: Value, usage: Value| {
        json!({
            "id": "chatcmpl-stream", "object": "chat.completion.chunk", "created": 1_767_225_600,
            "model": model,
            "choices": if usage.is_null() { json!([{"index": 0, "delta": delta, "finish_reason": finish}]) } else { json!([]) },
            "usage": usage
        })
    };
    std::thread::sleep(Duration::from_millis(30));
    for (i, text) in STREAM_CHUNKS.iter().enumerate() {
        let delta = if i == 0 {
            json!({"role": "assistant", "content": text})
        } else {
            json!({"content": text})
        };
        write!(out, "data: {}\n\n", chunk(delta, Value::Null, Value::Null))?;
        out.flush()?;
        std::thread::sleep(Duration::from_millis(30));
    }
    write!(
        out,
        "data: {}\n\n",
        chunk(json!({}), json!("stop"), Value::Null)
    )?;
    let usage = json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                       "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS});
    write!(
        out,
        "data: {}\n\ndata: [DONE]\n\n",
        chunk(Value::Null, Value::Null, usage)
    )?;
    out.flush()
}
