//! Attribute keys and scope names: every key the translator reads or the SDK writes, in one
//! place, grouped by the convention they belong to.

// ---------------------------------------------------------------------------------------------
// Langfuse: trace-level attributes
// ---------------------------------------------------------------------------------------------

/// Trace name.
pub const LANGFUSE_TRACE_NAME: &str = "langfuse.trace.name";
/// Trace input.
pub const LANGFUSE_TRACE_INPUT: &str = "langfuse.trace.input";
/// Trace output.
pub const LANGFUSE_TRACE_OUTPUT: &str = "langfuse.trace.output";
/// Trace metadata: a JSON object blob, or the prefix of one key per entry.
pub const LANGFUSE_TRACE_METADATA: &str = "langfuse.trace.metadata";
/// Trace tags.
pub const LANGFUSE_TRACE_TAGS: &str = "langfuse.trace.tags";
/// Whether the trace is public.
pub const LANGFUSE_TRACE_PUBLIC: &str = "langfuse.trace.public";
/// User id.
pub const LANGFUSE_USER_ID: &str = "langfuse.user.id";
/// Session id.
pub const LANGFUSE_SESSION_ID: &str = "langfuse.session.id";
/// Tags (alternative spelling).
pub const LANGFUSE_TAGS: &str = "langfuse.tags";
/// Public flag (alternative spelling).
pub const LANGFUSE_PUBLIC: &str = "langfuse.public";
/// Metadata blob or prefix (applies to trace and observation).
pub const LANGFUSE_METADATA: &str = "langfuse.metadata";
/// Release.
pub const LANGFUSE_RELEASE: &str = "langfuse.release";
/// Version.
pub const LANGFUSE_VERSION: &str = "langfuse.version";
/// Environment.
pub const LANGFUSE_ENVIRONMENT: &str = "langfuse.environment";
/// Marks a span with a parent as a trace root.
pub const LANGFUSE_INTERNAL_AS_ROOT: &str = "langfuse.internal.as_root";
/// Marks the application's root span (written by the SDKs).
pub const LANGFUSE_INTERNAL_IS_APP_ROOT: &str = "langfuse.internal.is_app_root";

// ---------------------------------------------------------------------------------------------
// Langfuse: observation-level attributes
// ---------------------------------------------------------------------------------------------

/// Observation type (`generation`, `tool`, …).
pub const LANGFUSE_OBSERVATION_TYPE: &str = "langfuse.observation.type";
/// Observation input.
pub const LANGFUSE_OBSERVATION_INPUT: &str = "langfuse.observation.input";
/// Observation output.
pub const LANGFUSE_OBSERVATION_OUTPUT: &str = "langfuse.observation.output";
/// Observation metadata: a JSON object blob, or the prefix of one key per entry.
pub const LANGFUSE_OBSERVATION_METADATA: &str = "langfuse.observation.metadata";
/// Observation level.
pub const LANGFUSE_OBSERVATION_LEVEL: &str = "langfuse.observation.level";
/// Observation status message.
pub const LANGFUSE_OBSERVATION_STATUS_MESSAGE: &str = "langfuse.observation.status_message";
/// Model name.
pub const LANGFUSE_OBSERVATION_MODEL_NAME: &str = "langfuse.observation.model.name";
/// Model parameters (JSON object).
pub const LANGFUSE_OBSERVATION_MODEL_PARAMETERS: &str = "langfuse.observation.model.parameters";
/// Usage details (JSON object).
pub const LANGFUSE_OBSERVATION_USAGE_DETAILS: &str = "langfuse.observation.usage_details";
/// Cost details (JSON object).
pub const LANGFUSE_OBSERVATION_COST_DETAILS: &str = "langfuse.observation.cost_details";
/// Completion start time (ISO-8601, possibly JSON-quoted).
pub const LANGFUSE_OBSERVATION_COMPLETION_START_TIME: &str =
    "langfuse.observation.completion_start_time";
/// Linked prompt name.
pub const LANGFUSE_OBSERVATION_PROMPT_NAME: &str = "langfuse.observation.prompt.name";
/// Linked prompt version (integer).
pub const LANGFUSE_OBSERVATION_PROMPT_VERSION: &str = "langfuse.observation.prompt.version";
/// Linked prompt name (alternative spelling).
pub const LANGFUSE_PROMPT_NAME: &str = "langfuse.prompt.name";
/// Linked prompt version (alternative spelling).
pub const LANGFUSE_PROMPT_VERSION: &str = "langfuse.prompt.version";

// ---------------------------------------------------------------------------------------------
// Identity and context conventions (user, session, tags, environment, version)
// ---------------------------------------------------------------------------------------------

/// OTel user id.
pub const USER_ID: &str = "user.id";
/// OTel session id.
pub const SESSION_ID: &str = "session.id";
/// GenAI conversation id (a session id fallback).
pub const GEN_AI_CONVERSATION_ID: &str = "gen_ai.conversation.id";
/// Tags (LlamaIndex and others).
pub const TAG_TAGS: &str = "tag.tags";
/// User id inside observation metadata.
pub const LANGFUSE_OBSERVATION_METADATA_USER_ID: &str =
    "langfuse.observation.metadata.langfuse_user_id";
/// Session id inside observation metadata.
pub const LANGFUSE_OBSERVATION_METADATA_SESSION_ID: &str =
    "langfuse.observation.metadata.langfuse_session_id";
/// Tags inside observation metadata.
pub const LANGFUSE_OBSERVATION_METADATA_TAGS: &str = "langfuse.observation.metadata.langfuse_tags";
/// User id inside trace metadata.
pub const LANGFUSE_TRACE_METADATA_USER_ID: &str = "langfuse.trace.metadata.langfuse_user_id";
/// Session id inside trace metadata.
pub const LANGFUSE_TRACE_METADATA_SESSION_ID: &str = "langfuse.trace.metadata.langfuse_session_id";
/// Tags inside trace metadata.
pub const LANGFUSE_TRACE_METADATA_TAGS: &str = "langfuse.trace.metadata.langfuse_tags";
/// Deployment environment (current semconv).
pub const DEPLOYMENT_ENVIRONMENT_NAME: &str = "deployment.environment.name";
/// Deployment environment (deprecated semconv).
pub const DEPLOYMENT_ENVIRONMENT: &str = "deployment.environment";
/// Service version (resource).
pub const SERVICE_VERSION: &str = "service.version";
/// SDK language (resource).
pub const TELEMETRY_SDK_LANGUAGE: &str = "telemetry.sdk.language";

// ---------------------------------------------------------------------------------------------
// Vercel AI SDK (`ai.*`, scope `ai`)
// ---------------------------------------------------------------------------------------------

/// Scope name of the Vercel AI SDK.
pub const SCOPE_VERCEL_AI: &str = "ai";
/// Metadata prefix of the Vercel AI SDK.
pub const AI_TELEMETRY_METADATA: &str = "ai.telemetry.metadata";
/// User id in AI SDK metadata.
pub const AI_TELEMETRY_METADATA_USER_ID: &str = "ai.telemetry.metadata.userId";
/// Session id in AI SDK metadata.
pub const AI_TELEMETRY_METADATA_SESSION_ID: &str = "ai.telemetry.metadata.sessionId";
/// Tags in AI SDK metadata.
pub const AI_TELEMETRY_METADATA_TAGS: &str = "ai.telemetry.metadata.tags";
/// Langfuse prompt reference in AI SDK metadata (JSON).
pub const AI_TELEMETRY_METADATA_LANGFUSE_PROMPT: &str = "ai.telemetry.metadata.langfusePrompt";

// ---------------------------------------------------------------------------------------------
// Observation type inference (OpenInference, GenAI operation, Genkit, Flue, LiveKit)
// ---------------------------------------------------------------------------------------------

/// OpenInference span kind (`LLM`, `CHAIN`, …).
pub const OPENINFERENCE_SPAN_KIND: &str = "openinference.span.kind";
/// GenAI operation name (`chat`, `embeddings`, `invoke_agent`, …).
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// Genkit span subtype (`model`, `tool`, …).
pub const GENKIT_METADATA_SUBTYPE: &str = "genkit:metadata:subtype";
/// Genkit span name.
pub const GENKIT_NAME: &str = "genkit:name";
/// Vercel AI SDK operation name (may carry a function-id suffix).
pub const OPERATION_NAME: &str = "operation.name";
/// Vercel AI SDK operation id.
pub const AI_OPERATION_ID: &str = "ai.operationId";
/// Vercel AI SDK function id (name prefix).
pub const AI_TELEMETRY_FUNCTION_ID: &str = "ai.telemetry.functionId";
/// Vercel AI SDK tool call name.
pub const AI_TOOL_CALL_NAME: &str = "ai.toolCall.name";
/// Vercel AI SDK model id.
pub const AI_MODEL_ID: &str = "ai.model.id";
/// GenAI tool name.
pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
/// GenAI tool call id.
pub const GEN_AI_TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
/// GenAI request model.
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
/// GenAI response model.
pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
/// OpenInference model name.
pub const LLM_MODEL_NAME: &str = "llm.model_name";
/// Plain model key (Pipecat and others).
pub const MODEL: &str = "model";
/// Logfire message (observation name).
pub const LOGFIRE_MSG: &str = "logfire.msg";
/// Flue tool name.
pub const FLUE_TOOL_NAME: &str = "flue.tool.name";
/// Flue tool call id.
pub const FLUE_TOOL_CALL_ID: &str = "flue.tool.call_id";
/// Flue task id.
pub const FLUE_TASK_ID: &str = "flue.task.id";
/// Flue task agent.
pub const FLUE_TASK_AGENT: &str = "flue.task.agent";
/// Scope name of LiveKit Agents.
pub const SCOPE_LIVEKIT_AGENTS: &str = "livekit-agents";

// ---------------------------------------------------------------------------------------------
// Input / output conventions
// ---------------------------------------------------------------------------------------------

/// Genkit input (JSON text).
pub const GENKIT_INPUT: &str = "genkit:input";
/// Genkit output (JSON text).
pub const GENKIT_OUTPUT: &str = "genkit:output";
/// Vercel AI SDK prompt messages.
pub const AI_PROMPT_MESSAGES: &str = "ai.prompt.messages";
/// Vercel AI SDK prompt.
pub const AI_PROMPT: &str = "ai.prompt";
/// Vercel AI SDK tool call arguments.
pub const AI_TOOL_CALL_ARGS: &str = "ai.toolCall.args";
/// Vercel AI SDK tool call result.
pub const AI_TOOL_CALL_RESULT: &str = "ai.toolCall.result";
/// Vercel AI SDK response text.
pub const AI_RESPONSE_TEXT: &str = "ai.response.text";
/// Vercel AI SDK response object.
pub const AI_RESPONSE_OBJECT: &str = "ai.response.object";
/// Vercel AI SDK response tool calls.
pub const AI_RESPONSE_TOOL_CALLS: &str = "ai.response.toolCalls";
/// Vercel AI SDK (< 4) result text.
pub const AI_RESULT_TEXT: &str = "ai.result.text";
/// Vercel AI SDK (< 4) result object.
pub const AI_RESULT_OBJECT: &str = "ai.result.object";
/// Vercel AI SDK (< 4) result tool calls.
pub const AI_RESULT_TOOL_CALLS: &str = "ai.result.toolCalls";
/// Flue input keys, in precedence order.
pub const FLUE_INPUT_KEYS: &[&str] = &[
    "flue.turn.input",
    "flue.tool.arguments",
    "flue.task.prompt",
    "flue.workflow.payload",
];
/// Flue output keys, in precedence order.
pub const FLUE_OUTPUT_KEYS: &[&str] = &[
    "flue.turn.output",
    "flue.tool.result",
    "flue.task.result",
    "flue.operation.result",
    "flue.workflow.result",
];
/// Span event carrying GenAI input/output messages (semconv >= 1.37).
pub const EVENT_GEN_AI_INFERENCE_DETAILS: &str = "gen_ai.client.inference.operation.details";
/// Google ADK LLM request.
pub const VERTEX_LLM_REQUEST: &str = "gcp.vertex.agent.llm_request";
/// Google ADK LLM response.
pub const VERTEX_LLM_RESPONSE: &str = "gcp.vertex.agent.llm_response";
/// Google ADK tool call arguments.
pub const VERTEX_TOOL_CALL_ARGS: &str = "gcp.vertex.agent.tool_call_args";
/// Google ADK tool response.
pub const VERTEX_TOOL_RESPONSE: &str = "gcp.vertex.agent.tool_response";
/// Logfire prompt.
pub const LOGFIRE_PROMPT: &str = "prompt";
/// Logfire message events (output).
pub const LOGFIRE_ALL_MESSAGES_EVENTS: &str = "all_messages_events";
/// Logfire GenAI events array.
pub const LOGFIRE_EVENTS: &str = "events";
/// LiveKit input keys, in precedence order.
pub const LIVEKIT_INPUT_KEYS: &[&str] = &["lk.input_text", "lk.user_transcript", "lk.chat_ctx"];
/// LiveKit function tool output.
pub const LIVEKIT_FUNCTION_TOOL_OUTPUT: &str = "lk.function_tool.output";
/// LiveKit response text.
pub const LIVEKIT_RESPONSE_TEXT: &str = "lk.response.text";
/// MLflow span inputs.
pub const MLFLOW_SPAN_INPUTS: &str = "mlflow.spanInputs";
/// MLflow span outputs.
pub const MLFLOW_SPAN_OUTPUTS: &str = "mlflow.spanOutputs";
/// Traceloop entity input.
pub const TRACELOOP_ENTITY_INPUT: &str = "traceloop.entity.input";
/// Traceloop entity output.
pub const TRACELOOP_ENTITY_OUTPUT: &str = "traceloop.entity.output";
/// OpenInference / smolagents input.
pub const INPUT_VALUE: &str = "input.value";
/// OpenInference / smolagents output.
pub const OUTPUT_VALUE: &str = "output.value";
/// Pydantic / Pipecat input.
pub const INPUT: &str = "input";
/// Pydantic / Pipecat output.
pub const OUTPUT: &str = "output";
/// Pydantic AI messages of an agent run.
pub const PYDANTIC_AI_ALL_MESSAGES: &str = "pydantic_ai.all_messages";
/// Pydantic AI final result.
pub const FINAL_RESULT: &str = "final_result";
/// Pydantic AI tool arguments.
pub const TOOL_ARGUMENTS: &str = "tool_arguments";
/// Pydantic AI tool response.
pub const TOOL_RESPONSE: &str = "tool_response";
/// Traceloop prompt: bare value or prefix of indexed keys.
pub const GEN_AI_PROMPT: &str = "gen_ai.prompt";
/// Traceloop completion: bare value or prefix of indexed keys.
pub const GEN_AI_COMPLETION: &str = "gen_ai.completion";
/// OpenInference indexed input messages prefix.
pub const LLM_INPUT_MESSAGES: &str = "llm.input_messages";
/// OpenInference indexed output messages prefix.
pub const LLM_OUTPUT_MESSAGES: &str = "llm.output_messages";
/// GenAI semconv input messages.
pub const GEN_AI_INPUT_MESSAGES: &str = "gen_ai.input.messages";
/// GenAI semconv output messages.
pub const GEN_AI_OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
/// GenAI semconv system instructions.
pub const GEN_AI_SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
/// GenAI semconv tool call arguments.
pub const GEN_AI_TOOL_CALL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
/// GenAI semconv tool call result.
pub const GEN_AI_TOOL_CALL_RESULT: &str = "gen_ai.tool.call.result";

// ---------------------------------------------------------------------------------------------
// GenAI semantic conventions, late 2026 (`open-telemetry/semantic-conventions-genai`)
// ---------------------------------------------------------------------------------------------

/// Seconds from the span start to the first chunk of a streamed response (double).
pub const GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: &str = "gen_ai.response.time_to_first_chunk";
/// Outcome of a tool call (`success`, `error`, …).
pub const GEN_AI_TOOL_CALL_OUTCOME: &str = "gen_ai.tool.call.outcome";
/// Class of error an operation ended with (core semconv; set only on failure).
pub const ERROR_TYPE: &str = "error.type";
/// Class of error a tool call ended with (rig's spelling on `execute_tool` spans).
pub const GEN_AI_TOOL_ERROR_TYPE: &str = "gen_ai.tool.error.type";
/// Human-readable error message (core semconv).
pub const ERROR_MESSAGE: &str = "error.message";
/// Name of the prompt template an inference used.
pub const GEN_AI_PROMPT_NAME: &str = "gen_ai.prompt.name";
/// Version of the prompt template an inference used (a string in semconv).
pub const GEN_AI_PROMPT_VERSION: &str = "gen_ai.prompt.version";
/// Prefix of prompt template variables (`gen_ai.prompt.variable.<key>`).
pub const GEN_AI_PROMPT_VARIABLE_PREFIX: &str = "gen_ai.prompt.variable.";
/// Name of the agent skill an `execute_tool` span loads or reads.
pub const GEN_AI_SKILL_NAME: &str = "gen_ai.skill.name";
/// Log/span event carrying an evaluation result.
pub const EVENT_GEN_AI_EVALUATION_RESULT: &str = "gen_ai.evaluation.result";
/// Evaluation (score) name.
pub const GEN_AI_EVALUATION_NAME: &str = "gen_ai.evaluation.name";
/// Numeric evaluation score.
pub const GEN_AI_EVALUATION_SCORE_VALUE: &str = "gen_ai.evaluation.score.value";
/// Label of an evaluation score (`relevant`, `pass`, …).
pub const GEN_AI_EVALUATION_SCORE_LABEL: &str = "gen_ai.evaluation.score.label";
/// Free-text explanation of an evaluation score.
pub const GEN_AI_EVALUATION_EXPLANATION: &str = "gen_ai.evaluation.explanation";
/// Vercel AI SDK milliseconds to the first chunk (response).
pub const AI_RESPONSE_MS_TO_FIRST_CHUNK: &str = "ai.response.msToFirstChunk";
/// Vercel AI SDK milliseconds to the first chunk (stream).
pub const AI_STREAM_MS_TO_FIRST_CHUNK: &str = "ai.stream.msToFirstChunk";
/// Skills available to a model call or skill-loading tool (Langfuse Python SDK 5.2): JSON text
/// of a compact list `[{"name":"…","version":2}]` (`version` optional).
pub const LANGFUSE_OBSERVATION_SKILLS_AVAILABLE: &str = "langfuse.observation.skills_available";

/// Attribute keys holding input or output; left out of `metadata.attributes`.
pub const IO_ATTRIBUTE_KEYS: &[&str] = &[
    LANGFUSE_TRACE_INPUT,
    LANGFUSE_TRACE_OUTPUT,
    LANGFUSE_OBSERVATION_INPUT,
    LANGFUSE_OBSERVATION_OUTPUT,
    "ai.prompt",
    "ai.prompt.messages",
    "ai.response.text",
    "ai.response.object",
    "ai.response.toolCalls",
    "ai.result.text",
    "ai.result.object",
    "ai.result.toolCalls",
    "ai.toolCall.args",
    "ai.toolCall.result",
    "gcp.vertex.agent.llm_request",
    "gcp.vertex.agent.llm_response",
    "gcp.vertex.agent.tool_call_args",
    "gcp.vertex.agent.tool_response",
    "prompt",
    "all_messages_events",
    "events",
    "lk.input_text",
    "lk.user_transcript",
    "lk.chat_ctx",
    "lk.function_tool.output",
    "lk.response.text",
    "mlflow.spanInputs",
    "mlflow.spanOutputs",
    "traceloop.entity.input",
    "traceloop.entity.output",
    "input.value",
    "output.value",
    "final_result",
    "pydantic_ai.all_messages",
    "gen_ai.system_instructions",
    "input",
    "output",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "genkit:input",
    "genkit:output",
    "flue.turn.input",
    "flue.tool.arguments",
    "flue.task.prompt",
    "flue.workflow.payload",
    "flue.turn.output",
    "flue.tool.result",
    "flue.task.result",
    "flue.operation.result",
    "flue.workflow.result",
];

/// Attribute key prefixes whose keys are input/output or metadata, left out of
/// `metadata.attributes`.
pub const IO_ATTRIBUTE_PREFIXES: &[&str] = &[
    "gen_ai.prompt",
    "gen_ai.completion",
    "llm.input_messages",
    "llm.output_messages",
    LANGFUSE_TRACE_METADATA,
    LANGFUSE_OBSERVATION_METADATA,
    AI_TELEMETRY_METADATA,
];

// ---------------------------------------------------------------------------------------------
// Model, model parameters, usage, cost, completion start, prompt
// ---------------------------------------------------------------------------------------------

/// OpenInference / Traceloop response model.
pub const LLM_RESPONSE_MODEL: &str = "llm.response.model";
/// OpenInference invocation parameters (JSON string, or the prefix of one key per entry).
pub const LLM_INVOCATION_PARAMETERS: &str = "llm.invocation_parameters";
/// Model configuration (JSON string).
pub const MODEL_CONFIG: &str = "model_config";
/// GenAI cost (a total).
pub const GEN_AI_USAGE_COST: &str = "gen_ai.usage.cost";
/// OpenInference total cost.
pub const LLM_COST_TOTAL: &str = "llm.cost.total";
/// Scope name of Genkit.
pub const SCOPE_GENKIT_TRACER: &str = "genkit-tracer";
/// Scope name of Google ADK.
pub const SCOPE_GCP_VERTEX_AGENT: &str = "gcp.vertex.agent";
/// Google ADK LLM response (JSON).
pub const GCP_VERTEX_AGENT_LLM_RESPONSE: &str = "gcp.vertex.agent.llm_response";

// ---------------------------------------------------------------------------------------------
// Instrumentation scopes
// ---------------------------------------------------------------------------------------------

/// Scope name of the official Langfuse SDKs (and ours).
pub const SCOPE_LANGFUSE_SDK: &str = "langfuse-sdk";

/// Instrumentation scopes whose spans are exported by default (exact name, or the name
/// followed by `.`; see [`is_known_llm_scope`]), the union of the Python and JS SDK lists.
pub const KNOWN_LLM_SCOPES: &[&str] = &[
    "langfuse-sdk",
    "agent_framework",
    "autogen-core",
    "ai",
    "haystack",
    "langsmith",
    "litellm",
    "openinference",
    "pydantic-ai",
    "strands-agents",
    "vllm",
    "opentelemetry.instrumentation.agno",
    "opentelemetry.instrumentation.alephalpha",
    "opentelemetry.instrumentation.anthropic",
    "opentelemetry.instrumentation.aws_bedrock",
    "opentelemetry.instrumentation.bedrock",
    "opentelemetry.instrumentation.cohere",
    "opentelemetry.instrumentation.crewai",
    "opentelemetry.instrumentation.gemini",
    "opentelemetry.instrumentation.google_genai",
    "opentelemetry.instrumentation.google_generativeai",
    "opentelemetry.instrumentation.groq",
    "opentelemetry.instrumentation.haystack",
    "opentelemetry.instrumentation.langchain",
    "opentelemetry.instrumentation.llamaindex",
    "opentelemetry.instrumentation.mistralai",
    "opentelemetry.instrumentation.ollama",
    "opentelemetry.instrumentation.openai",
    "opentelemetry.instrumentation.openai_agents",
    "opentelemetry.instrumentation.openai_v2",
    "opentelemetry.instrumentation.replicate",
    "opentelemetry.instrumentation.sagemaker",
    "opentelemetry.instrumentation.together",
    "opentelemetry.instrumentation.transformers",
    "opentelemetry.instrumentation.vertex_ai",
    "opentelemetry.instrumentation.vertexai",
    "opentelemetry.instrumentation.voyageai",
    "opentelemetry.instrumentation.watsonx",
    "opentelemetry.instrumentation.writer",
];

/// Whether spans of this instrumentation scope are LLM spans the official SDKs export by
/// default: a name of [`KNOWN_LLM_SCOPES`], or one of them followed by `.` (`ai` matches only
/// exactly).
///
/// ```
/// use langfuse_otel_core::keys::is_known_llm_scope;
/// assert!(is_known_llm_scope("openinference.instrumentation.openai"));
/// assert!(is_known_llm_scope("ai"));
/// assert!(!is_known_llm_scope("ai.other"));
/// assert!(!is_known_llm_scope("litellmx"));
/// ```
pub fn is_known_llm_scope(name: &str) -> bool {
    // Called for every span a processor sees: the first byte rules out most names at once.
    const FIRST_BYTES: [bool; 256] = {
        let mut table = [false; 256];
        let mut i = 0;
        while i < KNOWN_LLM_SCOPES.len() {
            table[KNOWN_LLM_SCOPES[i].as_bytes()[0] as usize] = true;
            i += 1;
        }
        table
    };
    let Some(&first) = name.as_bytes().first() else {
        return false;
    };
    if !FIRST_BYTES[usize::from(first)] {
        return false;
    }
    KNOWN_LLM_SCOPES.iter().any(|p| {
        p.as_bytes().first() == Some(&first)
            && (name == *p
                || (*p != "ai"
                    && name
                        .strip_prefix(p)
                        .is_some_and(|rest| rest.starts_with('.'))))
    })
}
/// Scope attribute of the SDK's spans: the Langfuse public key they were recorded for.
pub const SCOPE_ATTRIBUTE_PUBLIC_KEY: &str = "public_key";

// ---------------------------------------------------------------------------------------------
// OpenTelemetry exception events (written by the SDK when an observation fails)
// ---------------------------------------------------------------------------------------------

/// Name of the exception event.
pub const EXCEPTION_EVENT: &str = "exception";
/// Exception type (e.g. `ValueError`).
pub const EXCEPTION_TYPE: &str = "exception.type";
/// Exception message.
pub const EXCEPTION_MESSAGE: &str = "exception.message";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_scopes_match_exactly_or_as_a_dotted_prefix() {
        for p in KNOWN_LLM_SCOPES {
            assert!(is_known_llm_scope(p), "{p}");
            assert_eq!(is_known_llm_scope(&format!("{p}.sub")), *p != "ai", "{p}");
            assert!(!is_known_llm_scope(&format!("{p}x")), "{p}");
            assert!(!is_known_llm_scope(&format!("x{p}")), "{p}");
        }
        for other in ["", "raw", "my-app", "opentelemetry", "langfuse"] {
            assert!(!is_known_llm_scope(other), "{other}");
        }
    }
}
