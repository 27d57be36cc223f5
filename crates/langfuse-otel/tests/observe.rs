//! `#[observe]`: nesting, input/output capture, `Result` errors, methods, sync and async.
//! One test function: the macro uses the process-wide client.

mod common;

use common::str_attr;
use langfuse_otel::observe;
use opentelemetry::trace::SpanId;

#[derive(Debug)]
struct NotSerializable;

#[derive(Debug)]
struct ParseError(String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ParseError: {}", self.0)
    }
}

#[observe(name = "embed", as_type = "embedding", skip(api_key))]
async fn embed(
    text: &str,
    api_key: &str,
    _client: &NotSerializable,
) -> Result<Vec<f32>, ParseError> {
    let _ = api_key;
    let n: usize = text
        .len()
        .to_string()
        .parse()
        .map_err(|_| ParseError("len".into()))?;
    Ok(vec![0.5; n])
}

#[observe(as_type = "tool")]
async fn parse_number(raw: String) -> Result<i64, ParseError> {
    raw.parse::<i64>().map_err(|e| ParseError(e.to_string()))
}

#[observe(capture_output = false)]
fn sync_step(x: u32) -> u32 {
    if x > 10 {
        return 10;
    }
    x * 2
}

struct Agent {
    prefix: String,
}

impl Agent {
    #[observe(as_type = "agent")]
    async fn run(&self, question: &str) -> String {
        let vector = embed(question, "secret", &NotSerializable)
            .await
            .unwrap_or_default();
        let _ = parse_number("not a number".into()).await;
        let n = sync_step(vector.len() as u32);
        format!("{}{n}", self.prefix)
    }
}

#[tokio::test]
async fn observe_traces_sync_and_async_functions_and_methods() {
    let (langfuse, provider, exporter) = common::setup();
    langfuse.set_global();

    let out = Agent {
        prefix: "n=".into(),
    }
    .run("hello")
    .await;
    assert_eq!(out, "n=10");
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let find = |n: &str| {
        spans
            .iter()
            .find(|s| s.name == n)
            .unwrap_or_else(|| panic!("span {n}"))
    };
    let run = find("run");
    let embed = find("embed");
    let parse = find("parse_number");
    let step = find("sync_step");

    assert_eq!(run.parent_span_id, SpanId::INVALID);
    for child in [embed, parse, step] {
        assert_eq!(
            child.parent_span_id,
            run.span_context.span_id(),
            "{} nests under run",
            child.name
        );
        assert_eq!(child.span_context.trace_id(), run.span_context.trace_id());
    }

    assert_eq!(
        str_attr(run, "langfuse.observation.type").as_deref(),
        Some("agent")
    );
    assert_eq!(
        str_attr(run, "langfuse.observation.input").as_deref(),
        Some(r#"{"question": "hello"}"#),
        "self is left out"
    );
    assert_eq!(
        str_attr(run, "langfuse.observation.output").as_deref(),
        Some("n=10"),
        "string output is raw"
    );

    assert_eq!(
        str_attr(embed, "langfuse.observation.type").as_deref(),
        Some("embedding")
    );
    let input = str_attr(embed, "langfuse.observation.input").unwrap();
    assert!(
        input.starts_with(r#"{"text": "hello", "_client": "<not serializable object of type: "#),
        "{input}"
    );
    assert!(!input.contains("secret"), "skipped argument");
    assert_eq!(
        str_attr(embed, "langfuse.observation.output").as_deref(),
        Some("[0.5, 0.5, 0.5, 0.5, 0.5]"),
        "Ok value"
    );

    assert_eq!(
        str_attr(parse, "langfuse.observation.level").as_deref(),
        Some("ERROR")
    );
    assert_eq!(
        str_attr(parse, "langfuse.observation.status_message").as_deref(),
        Some("ParseError: invalid digit found in string")
    );
    assert_eq!(
        parse.status,
        opentelemetry::trace::Status::error("ParseError: invalid digit found in string")
    );
    assert_eq!(
        str_attr(parse, "langfuse.observation.output"),
        None,
        "no output for an Err"
    );

    assert_eq!(
        str_attr(step, "langfuse.observation.input").as_deref(),
        Some(r#"{"x": 5}"#)
    );
    assert_eq!(
        str_attr(step, "langfuse.observation.output"),
        None,
        "capture_output = false"
    );
}

#[observe(name = "observed_step")]
fn observed_step(x: u32) -> u32 {
    x * 2
}

#[test]
fn observe_records_into_the_client_of_the_current_observation_not_the_global_one() {
    // Another test of this binary installs its own global client: neither it nor a client
    // from the environment may get this one's spans.
    let (langfuse, provider, exporter) = common::setup();
    let out = langfuse.start_active_observation_sync("outer", |_| observed_step(21));
    assert_eq!(out, 42);
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let outer = spans
        .iter()
        .find(|s| s.name == "outer")
        .expect("outer recorded");
    let step = spans
        .iter()
        .find(|s| s.name == "observed_step")
        .expect("the observed function is recorded by the client of the current observation");
    assert_eq!(step.parent_span_id, outer.span_context.span_id());
    assert_eq!(step.span_context.trace_id(), outer.span_context.trace_id());
}

/// Runs in a child process (the global client is process-wide): no client anywhere.
#[test]
fn observe_with_no_client_anywhere_warns_once() {
    const CHILD: &str = "LANGFUSE_OTEL_TEST_NO_CLIENT_CHILD";
    if std::env::var_os(CHILD).is_some() {
        assert_eq!(observed_step(1), 2);
        assert_eq!(observed_step(2), 4);
        return;
    }
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "observe_with_no_client_anywhere_warns_once",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LANGFUSE_") {
            command.env_remove(key);
        }
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("#[observe] has no client").count(),
        1,
        "one warning: {stderr}"
    );
}
