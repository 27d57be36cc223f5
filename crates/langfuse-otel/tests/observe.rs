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
