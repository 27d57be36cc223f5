//! A rig agent (`rig-agent` 0.44 over `rig-core`'s OpenAI chat-completions model) traced to
//! Langfuse through `tracing-opentelemetry`.
//!
//! ```sh
//! # Offline: fake OpenAI-compatible server, trace tree printed from the offline file.
//! cargo run --manifest-path examples/agents/Cargo.toml --bin rig_agent
//! # A real OpenAI-compatible endpoint (plain http, or add rig-core's `rustls` feature for
//! # https) and Langfuse project:
//! OPENAI_BASE_URL=http://localhost:11434/v1 OPENAI_MODEL=llama3.2 \
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… \
//!   cargo run --manifest-path examples/agents/Cargo.toml --bin rig_agent
//! ```
//!
//! rig emits `invoke_agent` (created with `parent: None` when no `tracing` span is current),
//! one `chat` span per model call (model, usage, and with `record_content_telemetry(true)` the
//! input and output messages) and one `execute_tool` span per tool call (arguments, result,
//! `gen_ai.tool.call.outcome`). Each agent run below sits in a Langfuse observation
//! (`start_active_observation`); our span processor adopts rig's new root into the
//! observation's trace, so one agent run is one trace. rig 0.44 does not record a time to
//! first chunk on streamed calls, so the streamed run has no completion start time.

#![forbid(unsafe_code)]

use futures_util::StreamExt as _;
use langfuse_otel::{
    ObservationOptions, ObservationType, ObservationUpdate, PropagatedAttributes,
    propagate_attributes,
};
use langfuse_otel_agent_examples::{Pipeline, openai_base_url};
use rig_agent::prelude::*;
use rig_core::providers::openai::{OpenAI, OpenAIConfig};
use rig_core::tool::PortableTool;
use serde::Deserialize;
use serde_json::{Value, json};

const QUESTION: &str = "What's the weather in Paris, and where is my order A-17?";

#[derive(Debug, Deserialize)]
struct WeatherArgs {
    city: String,
}

/// Current weather (always answers).
struct GetWeather;

impl PortableTool for GetWeather {
    const NAME: &'static str = "get_weather";
    type Args = WeatherArgs;
    type Output = Value;
    type Error = std::convert::Infallible;

    fn description(&self) -> String {
        "Current weather for a city".into()
    }

    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    }

    async fn call(&self, args: WeatherArgs) -> Result<Value, Self::Error> {
        Ok(json!({"city": args.city, "temperature_c": 18, "condition": "cloudy"}))
    }
}

#[derive(Debug, Deserialize)]
struct OrderArgs {
    order_id: String,
}

/// The order lookup's failure.
#[derive(Debug)]
struct OrderNotFound(String);

impl std::fmt::Display for OrderNotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no order {}", self.0)
    }
}

impl std::error::Error for OrderNotFound {}

/// Where an order is (this one always fails).
struct LookupOrder;

impl PortableTool for LookupOrder {
    const NAME: &'static str = "lookup_order";
    type Args = OrderArgs;
    type Output = Value;
    type Error = OrderNotFound;

    fn description(&self) -> String {
        "Where an order is".into()
    }

    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]})
    }

    async fn call(&self, args: OrderArgs) -> Result<Value, OrderNotFound> {
        Err(OrderNotFound(args.order_id))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (base_url, _fake) = openai_base_url()?;
    let model = std::env::var("OPENAI_MODEL").unwrap_or_else(|_| "gpt-4o-mini".into());
    let api_key = std::env::var("OPENAI_API_KEY").unwrap_or_else(|_| "fake-key".into());
    let openai: OpenAI = OpenAIConfig::new(api_key).with_base_url(base_url).client();
    let agent = AgentBuilder::new(openai.chat(model))
        .name("support-agent")
        .preamble("You are a concise support assistant.")
        .record_content_telemetry(true)
        .tool(GetWeather)
        .tool(LookupOrder)
        .build();
    let pipeline = Pipeline::install("rig_agent")?;
    let langfuse = &pipeline.langfuse;
    let agent = &agent;

    let attrs = PropagatedAttributes::new()
        .user_id("user-42")
        .session_id("chat-7");
    let result = propagate_attributes(attrs, async {
        // Run 1: a blocking multi-turn run (tool calls, then the answer).
        let run = ObservationOptions::new("support-request", ObservationType::Span).input(QUESTION);
        let answer = langfuse
            .try_start_active_observation(run, |obs| async move {
                let response = agent.prompt(QUESTION).max_turns(4).await?;
                obs.update(ObservationUpdate::new().output(&response.output()));
                Ok::<_, PromptError>(response.output())
            })
            .await?;
        // Run 2: a streamed run, in its own observation (its own trace).
        let prompt = format!("Summarise in one line: {answer}");
        let run = ObservationOptions::new("summary-request", ObservationType::Span).input(&prompt);
        let summary = langfuse
            .try_start_active_observation(run, |obs| async move {
                let mut stream = agent.prompt(prompt.as_str()).max_turns(4).stream();
                let mut summary = String::new();
                while let Some(item) = stream.next().await {
                    if let MultiTurnStreamItem::FinalResponse(response) = item? {
                        summary = response.output();
                    }
                }
                obs.update(ObservationUpdate::new().output(&summary));
                Ok::<_, PromptError>(summary)
            })
            .await?;
        Ok::<_, PromptError>(format!("{answer}\nsummary: {summary}"))
    })
    .await;
    match &result {
        Ok(text) => println!("answer: {text}\n"),
        Err(e) => eprintln!("the agent failed: {e}\n"),
    }
    pipeline.finish();
    result.map(drop).map_err(Into::into)
}
