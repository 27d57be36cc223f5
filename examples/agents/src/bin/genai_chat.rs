//! A `genai` tool-calling assistant traced to Langfuse through `tracing-opentelemetry`.
//!
//! ```sh
//! # Offline: fake OpenAI-compatible server, trace tree printed from the offline file.
//! OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true \
//!   cargo run --manifest-path examples/agents/Cargo.toml --bin genai_chat
//! # A real OpenAI-compatible endpoint and Langfuse project:
//! OPENAI_BASE_URL=https://api.openai.com/v1/ OPENAI_API_KEY=sk-… OPENAI_MODEL=gpt-4o-mini \
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… \
//! OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true \
//!   cargo run --manifest-path examples/agents/Cargo.toml --bin genai_chat
//! ```
//!
//! genai (feature `otel`) emits a `chat <model>` span per call with model, usage and, when
//! `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` is set, input and output messages; a
//! streamed call records `gen_ai.response.time_to_first_chunk`. Tool executions are the
//! application's: genai's `otel::agent::execute_tool_span` builds the `execute_tool` span
//! (arguments and result are content too). The whole run sits in one Langfuse observation
//! (`start_active_observation`) with the user and session propagated.

#![forbid(unsafe_code)]

use futures_util::StreamExt as _;
use genai::adapter::AdapterKind;
use genai::chat::{
    ChatMessage, ChatOptions, ChatRequest, ChatStreamEvent, Tool, ToolCall, ToolResponse,
};
use genai::otel::agent::{ExecuteToolSpan, execute_tool_span, set_error};
use genai::resolver::{AuthData, Endpoint};
use genai::{Client, ModelIden, ServiceTarget};
use langfuse_otel::{
    ObservationOptions, ObservationType, ObservationUpdate, PropagatedAttributes,
    propagate_attributes,
};
use langfuse_otel_agent_examples::{Pipeline, openai_base_url};
use serde_json::json;

const QUESTION: &str = "What's the weather in Paris, and where is my order A-17?";

/// The application's tools: the weather works, the order lookup fails.
fn run_tool(call: &ToolCall) -> Result<String, (&'static str, String)> {
    match call.fn_name.as_str() {
        "get_weather" => {
            let city = call.fn_arguments["city"].as_str().unwrap_or("?");
            Ok(json!({"city": city, "temperature_c": 18, "condition": "cloudy"}).to_string())
        }
        "lookup_order" => Err((
            "OrderNotFound",
            format!(
                "no order {}",
                call.fn_arguments["order_id"].as_str().unwrap_or("?")
            ),
        )),
        other => Err(("UnknownTool", format!("no tool {other}"))),
    }
}

async fn assistant(client: &Client, model: &str) -> Result<String, genai::Error> {
    let tools = vec![
        Tool::new("get_weather")
            .with_description("Current weather for a city")
            .with_schema(json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})),
        Tool::new("lookup_order")
            .with_description("Where an order is")
            .with_schema(json!({"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]})),
    ];
    let options = ChatOptions::default()
        .with_capture_usage(true)
        .with_capture_content(true);
    let request = ChatRequest::new(vec![
        ChatMessage::system("You are a concise assistant."),
        ChatMessage::user(QUESTION),
    ])
    .with_tools(tools);

    // 1. The model asks for tools.
    let calls = client
        .exec_chat(model, request.clone(), Some(&options))
        .await?
        .into_tool_calls();
    // 2. The application runs them, each in an `execute_tool` span.
    let mut request = request.append_message(calls.clone());
    for call in &calls {
        let span = execute_tool_span(call);
        let result = span.in_scope(|| run_tool(call));
        let content = match result {
            Ok(text) => text,
            Err((kind, message)) => {
                set_error(&span, kind);
                format!("error: {message}")
            }
        };
        ExecuteToolSpan::record_result(&span, &content);
        drop(span);
        request = request.append_message(ToolResponse::new(call.call_id.clone(), content));
    }
    // 3. The answer with the tool results.
    let answer = client
        .exec_chat(model, request, Some(&options))
        .await?
        .first_text()
        .unwrap_or_default()
        .to_owned();

    // 4. A streamed one-line summary (time to first chunk).
    let summary = ChatRequest::new(vec![ChatMessage::user(format!(
        "Summarise in one line: {answer}"
    ))]);
    let mut stream = client
        .exec_chat_stream(model, summary, Some(&options))
        .await?
        .stream;
    let mut line = String::new();
    while let Some(event) = stream.next().await {
        if let ChatStreamEvent::Chunk(chunk) = event? {
            line.push_str(&chunk.content);
        }
    }
    Ok(format!("{answer}\nsummary: {line}"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (base_url, _fake) = openai_base_url()?;
    let model = std::env::var("OPENAI_MODEL").unwrap_or_else(|_| "gpt-4o-mini".into());
    let api_key = std::env::var("OPENAI_API_KEY").unwrap_or_else(|_| "fake-key".into());
    let client = Client::builder()
        .with_service_target_resolver_fn(move |target: ServiceTarget| {
            Ok(ServiceTarget {
                endpoint: Endpoint::from_owned(base_url.clone()),
                auth: AuthData::from_single(api_key.clone()),
                model: ModelIden::new(AdapterKind::OpenAI, target.model.model_name),
            })
        })
        .build()?;
    let pipeline = Pipeline::install("genai_chat")?;

    let attrs = PropagatedAttributes::new()
        .user_id("user-42")
        .session_id("chat-7");
    let run = ObservationOptions::new("weather-assistant", ObservationType::Agent).input(QUESTION);
    let answer = propagate_attributes(
        attrs,
        pipeline
            .langfuse
            .try_start_active_observation(run, |obs| async move {
                let answer = assistant(&client, &model).await?;
                obs.update(ObservationUpdate::new().output(&answer));
                Ok::<_, genai::Error>(answer)
            }),
    )
    .await;
    match &answer {
        Ok(text) => println!("answer: {text}\n"),
        Err(e) => eprintln!("the assistant failed: {e}\n"),
    }
    pipeline.finish();
    answer.map(drop).map_err(Into::into)
}
