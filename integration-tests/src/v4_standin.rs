//! A Langfuse v4 stand-in on 127.0.0.1 for tests, written from the server's code (not copied
//! from it): what a v4 deployment in its default write mode (`events_only`) does with each
//! request the bridge, the SDKs and the exporter make.
//!
//! | request | v4 (langfuse/langfuse) | stand-in |
//! |---|---|---|
//! | `POST /api/public/otel/v1/traces` | `web/src/pages/api/public/otel/v1/traces/index.ts`: Basic auth, `application/json` or `application/x-protobuf`, gzip; `x-langfuse-ingestion-version` > 4 → 400; then the worker's `processToEvent` writes one events row per span | the same checks; each span recorded as the [`V4Row`] it becomes, trace-level fields (trace name, user, session, tags, public, release) from that span's own attributes only; a re-sent span id is another row; the ingestion-version header of each request is kept |
//! | `POST /api/public/ingestion` | `ingestion.ts` `filterBatchForEventsOnly`: 207; `score-create` and `sdk-log` processed, every other event a per-event 400 `"Event type not accepted"` | the same answer; scores recorded |
//! | `POST /api/public/scores` | one score or a list | recorded, 200 |
//! | `GET /api/public/projects` | the key's project | one project |
//! | `GET /api/public/v2/prompts/{name}` | the prompt | the prompts given to [`V4StandIn::start`], 404 otherwise |
//! | `GET /api/public/health` | `{"status":"OK","version":…}` | the same |
//!
//! [`V4StandIn::refuse_otlp`] makes the OTLP endpoint answer 400 (an upstream that refuses for
//! good, for dead-letter tests) until it is switched back.
//!
//! The rows come from `langfuse_otel_core::legacy::v4_rows` (the translator in server mode,
//! which the conformance corpus checks against the server's own output, for the
//! observation's fields; the span's own attributes for the trace-level ones).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use langfuse_otel_core::legacy::{self, V4Row};
use langfuse_otel_core::otlp;
use serde_json::{Value, json};

use crate::receiver::{Action, Receiver, Request};

/// The message of v4's per-event refusal in `events_only` mode.
pub const EVENTS_ONLY_MESSAGE: &str = "Event type not accepted";

/// What the stand-in recorded.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// One row per span received over OTLP, in arrival order.
    pub rows: Vec<V4Row>,
    /// The `x-langfuse-ingestion-version` header of each accepted OTLP request.
    pub ingestion_versions: Vec<Option<String>>,
    /// Scores received (ingestion `score-create` bodies and `/api/public/scores` bodies).
    pub scores: Vec<Value>,
    /// Ingestion events refused like `events_only` does.
    pub refused_events: usize,
    /// OTLP requests refused while [`V4StandIn::refuse_otlp`] was on.
    pub refused_otlp: usize,
    /// Every request path, in order (`/api/public/projects`).
    pub calls: Vec<String>,
}

/// A running stand-in; stops when dropped.
pub struct V4StandIn {
    receiver: Receiver,
    state: Arc<Mutex<Recorded>>,
    refuse: Arc<AtomicBool>,
}

struct Handler {
    authorization: String,
    prompts: Vec<Value>,
    state: Arc<Mutex<Recorded>>,
    refuse: Arc<AtomicBool>,
    heads: Mutex<HashSet<usize>>,
}

impl V4StandIn {
    /// Starts on 127.0.0.1 (port 0) with these project keys and prompts (each a Langfuse
    /// prompt object with at least `name`).
    pub fn start(public_key: &str, secret_key: &str, prompts: Vec<Value>) -> V4StandIn {
        use base64::Engine;
        let authorization = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{public_key}:{secret_key}"))
        );
        let state = Arc::new(Mutex::new(Recorded::default()));
        let refuse = Arc::new(AtomicBool::new(false));
        let handler = Handler {
            authorization,
            prompts,
            state: Arc::clone(&state),
            refuse: Arc::clone(&refuse),
            heads: Mutex::new(HashSet::new()),
        };
        let receiver = Receiver::start(move |request, index| {
            // The receiver asks once with the head only, then with the whole request.
            let first = handler
                .heads
                .lock()
                .map(|mut h| h.insert(index))
                .unwrap_or(false);
            if first {
                return Action::ok();
            }
            handler.answer(request)
        });
        V4StandIn {
            receiver,
            state,
            refuse,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.receiver.base_url()
    }

    /// While on, the OTLP endpoint answers 400 (a refusal for good).
    pub fn refuse_otlp(&self, on: bool) {
        self.refuse.store(on, Ordering::SeqCst);
    }

    /// A copy of what was recorded.
    pub fn recorded(&self) -> Recorded {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until `done` holds for the recorded state, at most `timeout`; the last state.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&Recorded) -> bool) -> Recorded {
        let deadline = Instant::now() + timeout;
        loop {
            let recorded = self.recorded();
            if done(&recorded) || Instant::now() >= deadline {
                return recorded;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The raw requests (for header checks).
    pub fn requests(&self) -> Vec<Request> {
        self.receiver.requests()
    }
}

fn respond(status: u16, body: Value) -> Action {
    Action::Respond {
        status,
        headers: Vec::new(),
        body: body.to_string().into_bytes(),
    }
}

fn langfuse_error(status: u16, error: &str, message: &str) -> Action {
    respond(status, json!({"error": error, "message": message}))
}

impl Handler {
    fn answer(&self, request: &Request) -> Action {
        let (path, query) = request
            .path
            .split_once('?')
            .unwrap_or((request.path.as_str(), ""));
        if let Ok(mut state) = self.state.lock() {
            state.calls.push(path.to_owned());
        }
        if path == "/api/public/health" {
            return respond(200, json!({"status": "OK", "version": "4.0.0-standin"}));
        }
        if request.header("authorization") != Some(self.authorization.as_str()) {
            return langfuse_error(401, "UnauthorizedError", "Invalid credentials");
        }
        match path {
            "/api/public/otel/v1/traces" => self.otlp(request),
            "/api/public/ingestion" => self.ingestion(request),
            "/api/public/scores" => self.scores(request),
            "/api/public/projects" => respond(
                200,
                json!({"data": [{"id": "standin-project", "name": "v4 stand-in",
                    "organization": {"id": "standin-org", "name": "stand-in"},
                    "metadata": {}}]}),
            ),
            _ => match path.strip_prefix("/api/public/v2/prompts/") {
                Some(name) => self.prompt(name, query),
                None => langfuse_error(404, "NotFoundError", "Not found"),
            },
        }
    }

    fn otlp(&self, request: &Request) -> Action {
        let version = request
            .header("x-langfuse-ingestion-version")
            .map(str::to_owned);
        if let Some(v) = &version
            && v.trim().parse::<u32>().map_or(true, |n| n > 4)
        {
            return respond(
                400,
                json!({"error": format!("Unsupported x-langfuse-ingestion-version {v:?}. Maximum supported: \"4\"")}),
            );
        }
        if self.refuse.load(Ordering::SeqCst) {
            if let Ok(mut state) = self.state.lock() {
                state.refused_otlp += 1;
            }
            return respond(400, json!({"error": "refused by the test"}));
        }
        let content_type = request
            .header("content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        let batch = if content_type.contains("application/x-protobuf") {
            otlp::decode_protobuf(&request.body)
        } else if content_type.contains("application/json") {
            otlp::decode_json(&request.body)
        } else {
            return respond(400, json!({"error": "Invalid content type"}));
        };
        let Ok(batch) = batch else {
            return respond(400, json!({"error": "Failed to parse OTel Trace"}));
        };
        let rows = legacy::v4_rows(&batch);
        if let Ok(mut state) = self.state.lock() {
            state.rows.extend(rows);
            state.ingestion_versions.push(version);
        }
        respond(200, json!({}))
    }

    fn ingestion(&self, request: &Request) -> Action {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return respond(400, json!({"message": "Invalid request data"}));
        };
        let Some(batch) = body.get("batch").and_then(Value::as_array) else {
            return respond(400, json!({"message": "Invalid request data"}));
        };
        let mut successes = Vec::new();
        let mut errors = Vec::new();
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(_) => return respond(500, json!({})),
        };
        for event in batch {
            let id = event.get("id").and_then(Value::as_str).unwrap_or("unknown");
            let kind = event.get("type").and_then(Value::as_str);
            match kind {
                Some("score-create") => {
                    state
                        .scores
                        .push(event.get("body").cloned().unwrap_or(Value::Null));
                    successes.push(json!({"id": id, "status": 201}));
                }
                Some("sdk-log") => successes.push(json!({"id": id, "status": 201})),
                other => {
                    state.refused_events += 1;
                    errors.push(json!({"id": id, "status": 400, "message": EVENTS_ONLY_MESSAGE,
                        "error": format!("Event type \"{}\" is not accepted by /api/public/ingestion when LANGFUSE_MIGRATION_V4_WRITE_MODE is events_only. This endpoint only accepts score and log events.", other.unwrap_or("unknown"))}));
                }
            }
        }
        respond(207, json!({"successes": successes, "errors": errors}))
    }

    fn scores(&self, request: &Request) -> Action {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return respond(400, json!({"message": "Invalid request data"}));
        };
        let scores = match body {
            Value::Array(items) => items,
            one => vec![one],
        };
        let ids: Vec<Value> = scores
            .iter()
            .map(|s| s.get("id").cloned().unwrap_or(Value::Null))
            .collect();
        if let Ok(mut state) = self.state.lock() {
            state.scores.extend(scores);
        }
        match ids.as_slice() {
            [one] => respond(200, json!({"id": one})),
            many => respond(200, json!({"ids": many})),
        }
    }

    fn prompt(&self, name: &str, query: &str) -> Action {
        let name = percent_decode(name);
        let version = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("version="))
            .and_then(|v| v.parse::<i64>().ok());
        let found = self.prompts.iter().find(|p| {
            p.get("name").and_then(Value::as_str) == Some(name.as_str())
                && version.is_none_or(|v| p.get("version").and_then(Value::as_i64) == Some(v))
        });
        match found {
            Some(prompt) => respond(200, prompt.clone()),
            None => langfuse_error(404, "LangfuseNotFoundError", "Prompt not found"),
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
