"""Attribute, event and metric names of mv37.rollout (generated from semconv/; do not edit).

The registry is `semconv/model/`; regenerate with `python semconv/generate.py`.
"""

from typing import Final, NamedTuple

ROLLOUT_SPAN_TYPE: Final = "rollout.span.type"
"""Kind of Rollout span: agent, trace, llm, tool, task, retrieval, span or a custom type."""

ROLLOUT_SPAN_NAME: Final = "rollout.span.name"
"""Name the user gave the span (the OTel span name follows the GenAI conventions)."""

ROLLOUT_TRACE_NAME: Final = "rollout.trace.name"
"""Name given to the Rollout trace (set on the trace's own span)."""

ROLLOUT_TRACE_EXTERNAL_ID: Final = "rollout.trace.external_id"
"""Caller-supplied id for the trace in another system."""

ROLLOUT_USER_ID: Final = "rollout.user.id"
"""End user the trace acts for; copied onto every span in the trace."""

ROLLOUT_USER_TRAITS: Final = "rollout.user.traits"
"""JSON object of user traits recorded by identify_user."""

ROLLOUT_ACCOUNT_ID: Final = "rollout.account.id"
"""Account or organisation of the user."""

ROLLOUT_ACCOUNT_TRAITS: Final = "rollout.account.traits"
"""JSON object of account traits."""

ROLLOUT_SESSION_ID: Final = "rollout.session.id"
"""Session the trace belongs to; copied onto every span in the trace."""

ROLLOUT_CONVERSATION_ID: Final = "rollout.conversation.id"
"""Conversation the trace belongs to; copied onto every span in the trace."""

ROLLOUT_AGENT_NAME: Final = "rollout.agent.name"
"""Name of the agent that runs the trace."""

ROLLOUT_AGENT_ID: Final = "rollout.agent.id"
"""Stable id of the agent."""

ROLLOUT_AGENT_VERSION: Final = "rollout.agent.version"
"""Version of the agent."""

ROLLOUT_DEPLOYMENT: Final = "rollout.deployment"
"""Deployment slot or region (resource attribute)."""

ROLLOUT_ATTRIBUTES: Final = "rollout.attributes"
"""User-supplied attribute `rollout.attributes.<key>` passed with `attributes=`."""

ROLLOUT_INPUT: Final = "rollout.input"
"""Serialised input of the span (JSON or text), capped in size."""

ROLLOUT_INPUT_MIME_TYPE: Final = "rollout.input.mime_type"
"""MIME type of rollout.input: application/json or text/plain."""

ROLLOUT_CARRIER_RECEIVED_AT: Final = "rollout.carrier.received_at"
"""When a late feedback, signal or identity arrived (Unix ns); its span sits in the trace."""

ROLLOUT_SCRUB_COUNT: Final = "rollout.scrub.count"
"""How many values default scrubbing redacted on this span."""

ROLLOUT_INPUT_TRUNCATED: Final = "rollout.input.truncated"
"""True when rollout.input was cut to the payload size limit."""

ROLLOUT_INPUT_ORIGINAL_LENGTH: Final = "rollout.input.original_length"
"""Length in characters of the input before truncation."""

ROLLOUT_OUTPUT: Final = "rollout.output"
"""Serialised output of the span (JSON or text), capped in size."""

ROLLOUT_OUTPUT_MIME_TYPE: Final = "rollout.output.mime_type"
"""MIME type of rollout.output."""

ROLLOUT_OUTPUT_TRUNCATED: Final = "rollout.output.truncated"
"""True when rollout.output was cut to the payload size limit."""

ROLLOUT_OUTPUT_ORIGINAL_LENGTH: Final = "rollout.output.original_length"
"""Length in characters of the output before truncation."""

ROLLOUT_LLM_MODEL: Final = "rollout.llm.model"
"""Model requested for an LLM call."""

ROLLOUT_LLM_PROVIDER: Final = "rollout.llm.provider"
"""Provider serving the model (openai, anthropic, ...)."""

ROLLOUT_LLM_MODEL_VERSION: Final = "rollout.llm.model_version"
"""Exact model version that answered."""

ROLLOUT_LLM_REASONING_MODE: Final = "rollout.llm.reasoning_mode"
"""Reasoning mode or effort requested."""

ROLLOUT_LLM_TEMPERATURE: Final = "rollout.llm.temperature"
"""Sampling temperature requested."""

ROLLOUT_LLM_STREAM: Final = "rollout.llm.stream"
"""Whether the LLM response was streamed."""

ROLLOUT_LLM_STREAM_PREVIEW: Final = "rollout.llm.stream.preview"
"""Rolling preview of the streamed text (last stream_preview_chars characters)."""

ROLLOUT_LLM_STREAM_CHUNK_COUNT: Final = "rollout.llm.stream.chunk_count"
"""Number of chunks recorded on a streaming span."""

ROLLOUT_LLM_TIME_TO_FIRST_CHUNK: Final = "rollout.llm.time_to_first_chunk"
"""Seconds from span start to the first streamed chunk."""

ROLLOUT_LLM_CHUNK_TEXT: Final = "rollout.llm.chunk.text"
"""Text of one streamed chunk (event attribute)."""

ROLLOUT_LLM_CHUNK_INDEX: Final = "rollout.llm.chunk.index"
"""Index of a streamed chunk (event attribute)."""

ROLLOUT_USAGE_INPUT_TOKENS: Final = "rollout.usage.input_tokens"
"""Input tokens, cached ones included; on a trace's span, the sum over its descendants."""

ROLLOUT_USAGE_OUTPUT_TOKENS: Final = "rollout.usage.output_tokens"
"""Output tokens, reasoning ones included; summed on a trace's span."""

ROLLOUT_USAGE_CACHED_TOKENS: Final = "rollout.usage.cached_tokens"
"""Input tokens served from cache; summed on a trace's span."""

ROLLOUT_USAGE_REASONING_TOKENS: Final = "rollout.usage.reasoning_tokens"
"""Output tokens spent on reasoning; summed on a trace's span."""

ROLLOUT_USAGE_TOTAL_TOKENS: Final = "rollout.usage.total_tokens"
"""Total tokens; summed on a trace's span."""

ROLLOUT_USAGE_COST_USD: Final = "rollout.usage.cost_usd"
"""Cost of the call in US dollars; summed on a trace's span."""

ROLLOUT_CONTEXT_WINDOW_TOKENS: Final = "rollout.context.window_tokens"
"""Size of the model's context window in tokens."""

ROLLOUT_CONTEXT_USED_TOKENS: Final = "rollout.context.used_tokens"
"""Tokens of the context window in use."""

ROLLOUT_CONTEXT_UTILIZATION: Final = "rollout.context.utilization"
"""Share of the context window in use, 0..1."""

ROLLOUT_TOOL_NAME: Final = "rollout.tool.name"
"""Name of the tool called."""

ROLLOUT_TOOL_CALL_ID: Final = "rollout.tool.call_id"
"""Id linking the tool call to the assistant message that asked for it."""

ROLLOUT_TOOL_RETRY_COUNT: Final = "rollout.tool.retry_count"
"""How many times the tool call was retried."""

ROLLOUT_TOOL_STATUS: Final = "rollout.tool.status"
"""Outcome of the tool call: ok, error, cancelled (asyncio) or interrupted (KeyboardInterrupt)."""

ROLLOUT_ERROR_TYPE: Final = "rollout.error.type"
"""Type of the exception that ended the span."""

ROLLOUT_ERROR_MESSAGE: Final = "rollout.error.message"
"""Message of the exception (capped)."""

ROLLOUT_MESSAGE_ROLE: Final = "rollout.message.role"
"""Role of a conversation message: user, assistant, system or tool."""

ROLLOUT_MESSAGE_CONTENT: Final = "rollout.message.content"
"""Content of a conversation message (capped)."""

ROLLOUT_MESSAGE_CONTENT_TYPE: Final = "rollout.message.content_type"
"""Content type of the message, e.g. text/plain."""

ROLLOUT_MESSAGE_TOOL_CALL_ID: Final = "rollout.message.tool_call_id"
"""Tool call a tool message answers."""

ROLLOUT_MESSAGE_IS_INTERNAL: Final = "rollout.message.is_internal"
"""True for messages not shown to the end user."""

ROLLOUT_MESSAGE_INDEX: Final = "rollout.message.index"
"""Position of the message within its trace."""

ROLLOUT_EVENT_TYPE: Final = "rollout.event.type"
"""Data-model event type given to `capture_event` (`metric`, `span.update`, ...)."""

ROLLOUT_EVENT_ID: Final = "rollout.event.id"
"""The caller's id for an event recorded with `capture_event`."""

ROLLOUT_EVENT_FIELDS: Final = "rollout.event.fields"
"""The event's fields as JSON (capped at `max_payload_chars`)."""

ROLLOUT_FEEDBACK_NAME: Final = "rollout.feedback.name"
"""Name of the feedback (thumbs, csat, ...)."""

ROLLOUT_FEEDBACK_VALUE: Final = "rollout.feedback.value"
"""Value of the feedback: bool, number, string, or JSON for a dict."""

ROLLOUT_SIGNAL_NAME: Final = "rollout.signal.name"
"""Name of an implicit outcome signal (order_placed, escalated, ...)."""

ROLLOUT_SIGNAL_VALUE: Final = "rollout.signal.value"
"""Value of the signal: bool, number, string, or JSON for a dict."""

ROLLOUT_INTEGRATION_NAME: Final = "rollout.integration.name"
"""Provider SDK integration that recorded the span (set by wrap())."""

ROLLOUT_INTEGRATION_VERSION: Final = "rollout.integration.version"
"""Version of the instrumented provider SDK package."""

ROLLOUT_INTEGRATION_METHOD: Final = "rollout.integration.method"
"""Client method the span records, relative to the client object."""

ROLLOUT_LLM_RESPONSE_ID: Final = "rollout.llm.response_id"
"""Provider's id of the model response."""

ROLLOUT_LLM_FINISH_REASONS: Final = "rollout.llm.finish_reasons"
"""Why the model stopped, one entry per choice, as the provider reports it."""

ROLLOUT_LLM_STREAM_END_REASON: Final = "rollout.llm.stream.end_reason"
"""How a streamed response ended: exhausted, closed, garbage_collected or error."""

ROLLOUT_USAGE_CACHE_CREATION_TOKENS: Final = "rollout.usage.cache_creation_tokens"
"""Input tokens written to the provider's prompt cache (included in input_tokens)."""

ROLLOUT_AGENT_TOOLS: Final = "rollout.agent.tools"
"""Names of the tools an agent span's agent could call (OpenAI Agents SDK)."""

ROLLOUT_AGENT_HANDOFFS: Final = "rollout.agent.handoffs"
"""Names of the agents an agent span's agent could hand off to."""

ROLLOUT_AGENT_OUTPUT_TYPE: Final = "rollout.agent.output_type"
"""Name of the output type an agent span's agent produces."""

ROLLOUT_HANDOFF_FROM_AGENT: Final = "rollout.handoff.from_agent"
"""Agent that handed the conversation off (handoff spans)."""

ROLLOUT_HANDOFF_TO_AGENT: Final = "rollout.handoff.to_agent"
"""Agent the conversation was handed off to (handoff spans)."""

ROLLOUT_GUARDRAIL_TRIGGERED: Final = "rollout.guardrail.triggered"
"""Whether a guardrail's tripwire was triggered (guardrail spans)."""

GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
"""GenAI operation: invoke_agent, invoke_workflow, chat, execute_tool, retrieval or a span type."""

GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
"""GenAI provider of the model."""

GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
"""Agent name (mirror of rollout.agent.name)."""

GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
"""Agent id (mirror of rollout.agent.id)."""

GEN_AI_AGENT_VERSION: Final = "gen_ai.agent.version"
"""Agent version (mirror of rollout.agent.version)."""

GEN_AI_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
"""Workflow name on @trace spans (mirror of rollout.trace.name)."""

GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
"""Conversation id (mirror of rollout.conversation.id)."""

GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
"""Requested model (mirror of rollout.llm.model)."""

GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
"""Model version that answered (mirror of rollout.llm.model_version)."""

GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
"""Temperature (mirror of rollout.llm.temperature)."""

GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
"""Streaming requested (mirror of rollout.llm.stream)."""

GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
"""Seconds to the first chunk (mirror)."""

GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
"""Input tokens (mirror of rollout.usage.input_tokens)."""

GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
"""Output tokens (mirror)."""

GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
"""Which tokens a gen_ai.client.token.usage measurement counts: input or output."""

GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
"""Cached input tokens (mirror of rollout.usage.cached_tokens)."""

GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
"""Reasoning tokens (mirror)."""

GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
"""Tool name (mirror)."""

GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
"""Tool call id (mirror)."""

GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
"""Tool call arguments as JSON (mirror of rollout.input on tool spans)."""

GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
"""Tool call result as JSON (mirror of rollout.output on tool spans)."""

ERROR_TYPE: Final = "error.type"
"""Class of error that ended the span."""

SERVER_ADDRESS: Final = "server.address"
"""Host name of the GenAI server a client operation called."""

SERVER_PORT: Final = "server.port"
"""Port of the GenAI server a client operation called (with server.address)."""

HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
"""HTTP status of a wrapped LLM call's response (from the SDK's own span)."""

ANTHROPIC_REQUEST_ID: Final = "anthropic.request.id"
"""Anthropic's request-id header of a wrapped call (from the SDK's own span)."""

EXCEPTION_TYPE: Final = "exception.type"
"""Exception type (attribute of the exception event recorded by OTel)."""

EXCEPTION_MESSAGE: Final = "exception.message"
"""Exception message (exception event)."""

EXCEPTION_STACKTRACE: Final = "exception.stacktrace"
"""Stack trace (exception event)."""

EXCEPTION_ESCAPED: Final = "exception.escaped"
"""Whether the exception escaped the span (exception event)."""

USER_ID: Final = "user.id"
"""End user id (mirror of rollout.user.id)."""

SESSION_ID: Final = "session.id"
"""Session id (mirror of rollout.session.id)."""

SERVICE_NAME: Final = "service.name"
"""Service name (resource)."""

SERVICE_VERSION: Final = "service.version"
"""Service version, from release (resource)."""

DEPLOYMENT_ENVIRONMENT_NAME: Final = "deployment.environment.name"
"""Deployment environment (resource)."""

OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
"""OpenInference span kind: AGENT, CHAIN, LLM, TOOL, RETRIEVER."""

INPUT_VALUE: Final = "input.value"
"""Input payload (mirror of rollout.input)."""

INPUT_MIME_TYPE: Final = "input.mime_type"
"""MIME type of input.value."""

OUTPUT_VALUE: Final = "output.value"
"""Output payload (mirror of rollout.output)."""

OUTPUT_MIME_TYPE: Final = "output.mime_type"
"""MIME type of output.value."""

LLM_MODEL_NAME: Final = "llm.model_name"
"""Model name (mirror)."""

LLM_PROVIDER: Final = "llm.provider"
"""Provider (mirror)."""

LLM_INVOCATION_PARAMETERS: Final = "llm.invocation_parameters"
"""JSON of request parameters (temperature, stream, reasoning mode)."""

LLM_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
"""Prompt tokens (mirror)."""

LLM_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
"""Completion tokens (mirror)."""

LLM_TOKEN_COUNT_TOTAL: Final = "llm.token_count.total"
"""Total tokens (mirror)."""

LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ: Final = "llm.token_count.prompt_details.cache_read"
"""Cached prompt tokens (mirror)."""

LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING: Final = "llm.token_count.completion_details.reasoning"
"""Reasoning tokens (mirror)."""

LLM_COST_TOTAL: Final = "llm.cost.total"
"""Cost in USD (mirror)."""

TOOL_NAME: Final = "tool.name"
"""Tool name (mirror)."""

TOOL_ID: Final = "tool.id"
"""Tool call id (mirror)."""

AGENT_NAME: Final = "agent.name"
"""Agent name (mirror)."""

GEN_AI_EVALUATION_NAME: Final = "gen_ai.evaluation.name"
"""Name of the evaluation: the feedback or signal name (mirror)."""

GEN_AI_EVALUATION_SCORE_VALUE: Final = "gen_ai.evaluation.score.value"
"""Numeric feedback or signal value; booleans as 1.0 / 0.0 (mirror)."""

GEN_AI_EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"
"""Text feedback or signal value; booleans as true / false (mirror)."""

GEN_AI_EVALUATION_EXPLANATION: Final = "gen_ai.evaluation.explanation"
"""A dict feedback or signal value, as JSON (mirror)."""

TRACE_ANNOTATIONS: Final = "trace.annotations"
"""OpenInference annotation `trace.annotations.<N>.annotation.<field>` on a carrier span."""

GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
"""Provider's id of the model response (mirror)."""

GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
"""Finish reasons, one per choice (mirror)."""

GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
"""Maximum number of tokens the model may generate."""

GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
"""Nucleus sampling setting of the request."""

GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
"""Top-k sampling setting of the request."""

GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
"""Sequences that stop generation."""

GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
"""Frequency penalty of the request."""

GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
"""Presence penalty of the request."""

GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
"""Seed of the request."""

GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
"""Number of choices requested (set when not 1)."""

GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
"""Input tokens written to the prompt cache (mirror)."""

GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
"""Input messages as JSON in the GenAI messages schema (opt-in content)."""

GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
"""Output messages as JSON in the GenAI schema, with finish_reason (opt-in content)."""

GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
"""System instructions given apart from the messages, as JSON parts (opt-in content)."""

GEN_AI_TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
"""Tools offered to the model, as JSON (opt-in content)."""

LLM_RESPONSE_MODEL_NAME: Final = "llm.response.model_name"
"""Model that answered (mirror)."""

LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE: Final = "llm.token_count.prompt_details.cache_write"
"""Prompt tokens written to the cache (mirror)."""

LLM_INPUT_MESSAGES: Final = "llm.input_messages"
"""OpenInference input messages `llm.input_messages.<N>.message.<field>` (mirror)."""

LLM_OUTPUT_MESSAGES: Final = "llm.output_messages"
"""OpenInference output messages `llm.output_messages.<N>.message.<field>` (mirror)."""

LLM_TOOLS: Final = "llm.tools"
"""OpenInference tool definitions `llm.tools.<N>.tool.json_schema` (mirror)."""

EVENT_ROLLOUT_MESSAGE: Final = "rollout.message"
"""A conversation message."""

EVENT_ROLLOUT_EVENT: Final = "rollout.event"
"""A data-model event from `capture_event` with no more specific event here."""

EVENT_ROLLOUT_FEEDBACK: Final = "rollout.feedback"
"""Explicit user feedback."""

EVENT_ROLLOUT_SIGNAL: Final = "rollout.signal"
"""An implicit outcome signal."""

EVENT_ROLLOUT_IDENTIFY: Final = "rollout.identify"
"""Who the user is."""

EVENT_ROLLOUT_LLM_CHUNK: Final = "rollout.llm.chunk"
"""One streamed chunk (capture_stream_chunks=True)."""

EVENT_EXCEPTION: Final = "exception"
"""An exception, recorded by OTel record_exception."""

EVENT_GEN_AI_EVALUATION_RESULT: Final = "gen_ai.evaluation.result"
"""OTel GenAI evaluation result mirroring a feedback or signal."""

METRIC_GEN_AI_CLIENT_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
"""Number of input and output tokens used, one measurement per token type."""

METRIC_GEN_AI_CLIENT_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
"""Duration of a GenAI client operation (an LLM call)."""

METRIC_GEN_AI_INVOKE_AGENT_DURATION: Final = "gen_ai.invoke_agent.duration"
"""End-to-end duration of one agent invocation (@agent)."""

METRIC_GEN_AI_EXECUTE_TOOL_DURATION: Final = "gen_ai.execute_tool.duration"
"""Duration of one tool execution (@tool, trace.tool)."""

METRIC_GEN_AI_WORKFLOW_DURATION: Final = "gen_ai.workflow.duration"
"""End-to-end duration of one workflow (@trace, rollout.trace)."""

METRIC_ROLLOUT_CLIENT_COST: Final = "rollout.client.cost"
"""Cost in US dollars of the LLM operations that report one (set_usage cost_usd)."""

ATTRIBUTE_KEYS: Final = frozenset(
    {
        "agent.name",
        "anthropic.request.id",
        "deployment.environment.name",
        "error.type",
        "exception.escaped",
        "exception.message",
        "exception.stacktrace",
        "exception.type",
        "gen_ai.agent.id",
        "gen_ai.agent.name",
        "gen_ai.agent.version",
        "gen_ai.conversation.id",
        "gen_ai.evaluation.explanation",
        "gen_ai.evaluation.name",
        "gen_ai.evaluation.score.label",
        "gen_ai.evaluation.score.value",
        "gen_ai.input.messages",
        "gen_ai.operation.name",
        "gen_ai.output.messages",
        "gen_ai.provider.name",
        "gen_ai.request.choice.count",
        "gen_ai.request.frequency_penalty",
        "gen_ai.request.max_tokens",
        "gen_ai.request.model",
        "gen_ai.request.presence_penalty",
        "gen_ai.request.seed",
        "gen_ai.request.stop_sequences",
        "gen_ai.request.stream",
        "gen_ai.request.temperature",
        "gen_ai.request.top_k",
        "gen_ai.request.top_p",
        "gen_ai.response.finish_reasons",
        "gen_ai.response.id",
        "gen_ai.response.model",
        "gen_ai.response.time_to_first_chunk",
        "gen_ai.system_instructions",
        "gen_ai.token.type",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.id",
        "gen_ai.tool.call.result",
        "gen_ai.tool.definitions",
        "gen_ai.tool.name",
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.workflow.name",
        "http.response.status_code",
        "input.mime_type",
        "input.value",
        "llm.cost.total",
        "llm.invocation_parameters",
        "llm.model_name",
        "llm.provider",
        "llm.response.model_name",
        "llm.token_count.completion",
        "llm.token_count.completion_details.reasoning",
        "llm.token_count.prompt",
        "llm.token_count.prompt_details.cache_read",
        "llm.token_count.prompt_details.cache_write",
        "llm.token_count.total",
        "openinference.span.kind",
        "output.mime_type",
        "output.value",
        "rollout.account.id",
        "rollout.account.traits",
        "rollout.agent.handoffs",
        "rollout.agent.id",
        "rollout.agent.name",
        "rollout.agent.output_type",
        "rollout.agent.tools",
        "rollout.agent.version",
        "rollout.carrier.received_at",
        "rollout.context.used_tokens",
        "rollout.context.utilization",
        "rollout.context.window_tokens",
        "rollout.conversation.id",
        "rollout.deployment",
        "rollout.error.message",
        "rollout.error.type",
        "rollout.event.fields",
        "rollout.event.id",
        "rollout.event.type",
        "rollout.feedback.name",
        "rollout.feedback.value",
        "rollout.guardrail.triggered",
        "rollout.handoff.from_agent",
        "rollout.handoff.to_agent",
        "rollout.input",
        "rollout.input.mime_type",
        "rollout.input.original_length",
        "rollout.input.truncated",
        "rollout.integration.method",
        "rollout.integration.name",
        "rollout.integration.version",
        "rollout.llm.chunk.index",
        "rollout.llm.chunk.text",
        "rollout.llm.finish_reasons",
        "rollout.llm.model",
        "rollout.llm.model_version",
        "rollout.llm.provider",
        "rollout.llm.reasoning_mode",
        "rollout.llm.response_id",
        "rollout.llm.stream",
        "rollout.llm.stream.chunk_count",
        "rollout.llm.stream.end_reason",
        "rollout.llm.stream.preview",
        "rollout.llm.temperature",
        "rollout.llm.time_to_first_chunk",
        "rollout.message.content",
        "rollout.message.content_type",
        "rollout.message.index",
        "rollout.message.is_internal",
        "rollout.message.role",
        "rollout.message.tool_call_id",
        "rollout.output",
        "rollout.output.mime_type",
        "rollout.output.original_length",
        "rollout.output.truncated",
        "rollout.scrub.count",
        "rollout.session.id",
        "rollout.signal.name",
        "rollout.signal.value",
        "rollout.span.name",
        "rollout.span.type",
        "rollout.tool.call_id",
        "rollout.tool.name",
        "rollout.tool.retry_count",
        "rollout.tool.status",
        "rollout.trace.external_id",
        "rollout.trace.name",
        "rollout.usage.cache_creation_tokens",
        "rollout.usage.cached_tokens",
        "rollout.usage.cost_usd",
        "rollout.usage.input_tokens",
        "rollout.usage.output_tokens",
        "rollout.usage.reasoning_tokens",
        "rollout.usage.total_tokens",
        "rollout.user.id",
        "rollout.user.traits",
        "server.address",
        "server.port",
        "service.name",
        "service.version",
        "session.id",
        "tool.id",
        "tool.name",
        "user.id",
    }
)
"""Every registered attribute key except templates."""

TEMPLATE_PREFIXES: Final = (
    "rollout.attributes.",
    "trace.annotations.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.tools.",
)
"""Prefixes of template attributes: a key under one of them is registered."""

EVENT_NAMES: Final = frozenset(
    {
        "exception",
        "gen_ai.evaluation.result",
        "rollout.event",
        "rollout.feedback",
        "rollout.identify",
        "rollout.llm.chunk",
        "rollout.message",
        "rollout.signal",
    }
)
"""Every registered event name."""

SEMCONV_CONVENTIONS: Final = ("genai", "openinference")
"""The conventions a payload can be written under (the `semconv` option)."""

PAYLOAD_MIRRORS: Final[tuple[tuple[str, str, str, str, tuple[str, ...]], ...]] = (
    ("rollout", "input", "text", "rollout.input", ("*",)),
    ("rollout", "input", "mime_type", "rollout.input.mime_type", ("*",)),
    ("rollout", "output", "text", "rollout.output", ("*",)),
    ("rollout", "output", "mime_type", "rollout.output.mime_type", ("*",)),
    ("genai", "input", "text", "gen_ai.tool.call.arguments", ("tool",)),
    ("genai", "output", "text", "gen_ai.tool.call.result", ("tool",)),
    ("openinference", "input", "text", "input.value", ("*",)),
    ("openinference", "input", "mime_type", "input.mime_type", ("*",)),
    ("openinference", "output", "text", "output.value", ("*",)),
    ("openinference", "output", "mime_type", "output.mime_type", ("*",)),
    ("genai", "input", "messages", "gen_ai.input.messages", ("llm",)),
    ("genai", "output", "messages", "gen_ai.output.messages", ("llm",)),
    ("genai", "input", "system_instructions", "gen_ai.system_instructions", ("llm",)),
    ("genai", "input", "tool_definitions", "gen_ai.tool.definitions", ("llm",)),
    ("openinference", "input", "flattened_messages", "llm.input_messages", ("llm",)),
    ("openinference", "output", "flattened_messages", "llm.output_messages", ("llm",)),
    ("openinference", "input", "tool_definitions", "llm.tools", ("llm",)),
)
"""Payload keys: (convention, direction, form, key, span types; "*" is any type).

A payload is written once under each enabled convention with a key for the span
type; under `rollout` only where no enabled convention has one.
"""


class MetricSpec(NamedTuple):
    """One metric: name, instrument (histogram or counter), unit, description, the
    attribute keys it may carry, and its explicit bucket boundaries (histograms)."""

    name: str
    instrument: str
    unit: str
    description: str
    attributes: tuple[str, ...]
    buckets: tuple[float, ...]


METRICS: Final[tuple[MetricSpec, ...]] = (
    MetricSpec(
        METRIC_GEN_AI_CLIENT_TOKEN_USAGE,
        "histogram",
        "{token}",
        "Number of input and output tokens used, one measurement per token type.",
        (
            GEN_AI_OPERATION_NAME,
            GEN_AI_PROVIDER_NAME,
            GEN_AI_TOKEN_TYPE,
            GEN_AI_REQUEST_MODEL,
            SERVER_PORT,
            GEN_AI_RESPONSE_MODEL,
            SERVER_ADDRESS,
            GEN_AI_AGENT_NAME,
        ),
        (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864),
    ),
    MetricSpec(
        METRIC_GEN_AI_CLIENT_OPERATION_DURATION,
        "histogram",
        "s",
        "Duration of a GenAI client operation (an LLM call).",
        (
            GEN_AI_OPERATION_NAME,
            ERROR_TYPE,
            GEN_AI_PROVIDER_NAME,
            GEN_AI_REQUEST_MODEL,
            SERVER_PORT,
            GEN_AI_RESPONSE_MODEL,
            SERVER_ADDRESS,
            GEN_AI_AGENT_NAME,
        ),
        (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92),
    ),
    MetricSpec(
        METRIC_GEN_AI_INVOKE_AGENT_DURATION,
        "histogram",
        "s",
        "End-to-end duration of one agent invocation (@agent).",
        (ERROR_TYPE, GEN_AI_AGENT_NAME),
        (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 204.8, 409.6),
    ),
    MetricSpec(
        METRIC_GEN_AI_EXECUTE_TOOL_DURATION,
        "histogram",
        "s",
        "Duration of one tool execution (@tool, trace.tool).",
        (GEN_AI_TOOL_NAME, ERROR_TYPE, GEN_AI_AGENT_NAME),
        (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92),
    ),
    MetricSpec(
        METRIC_GEN_AI_WORKFLOW_DURATION,
        "histogram",
        "s",
        "End-to-end duration of one workflow (@trace, rollout.trace).",
        (ERROR_TYPE, GEN_AI_WORKFLOW_NAME),
        (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200),
    ),
    MetricSpec(
        METRIC_ROLLOUT_CLIENT_COST,
        "counter",
        "{USD}",
        "Cost in US dollars of the LLM operations that report one (set_usage cost_usd).",
        (
            GEN_AI_OPERATION_NAME,
            GEN_AI_PROVIDER_NAME,
            GEN_AI_REQUEST_MODEL,
            GEN_AI_RESPONSE_MODEL,
            GEN_AI_AGENT_NAME,
        ),
        (),
    ),
)
"""Every metric mv37.rollout records, in registry order."""


def is_registered_attribute(key: str) -> bool:
    """True when the registry lists `key` (or a template it belongs to)."""
    return key in ATTRIBUTE_KEYS or key.startswith(TEMPLATE_PREFIXES)


def is_registered_event(name: str) -> bool:
    """True when the registry lists the event `name`."""
    return name in EVENT_NAMES
