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
/// Genkit span input (JSON).
pub const GENKIT_INPUT: &str = "genkit:input";
/// Genkit span output (JSON).
pub const GENKIT_OUTPUT: &str = "genkit:output";
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
