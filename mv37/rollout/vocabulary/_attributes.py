"""Attribute builders: the Rollout vocabulary plus the standard mirrors, in one place.

Every key comes from `semconv` (generated from `semconv/`). Builders return plain
dicts so a span gets all its start attributes in one `start_span(attributes=...)` call
(sampling-relevant keys are present at start, as the GenAI conventions ask).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from mv37.rollout import semconv as sc
from mv37.rollout.vocabulary._payload import attribute_value, to_json_text

if TYPE_CHECKING:
    from mv37.rollout.base._config import RolloutConfig

Attributes = dict[str, AttributeValue]

AGENT: Final = "agent"
TRACE: Final = "trace"
LLM: Final = "llm"
TOOL: Final = "tool"
TASK: Final = "task"
RETRIEVAL: Final = "retrieval"
SPAN: Final = "span"
TRACE_TYPES: Final = frozenset({AGENT, TRACE})

# What samplers and processors may look at when a span starts (the GenAI conventions'
# sampling-relevant keys plus our type); the rest is added right after the start.
_START_KEYS: Final = (
    sc.ROLLOUT_SPAN_TYPE,
    sc.GEN_AI_OPERATION_NAME,
    sc.GEN_AI_PROVIDER_NAME,
    sc.GEN_AI_REQUEST_MODEL,
)
_CLIENT_TYPES: Final = frozenset({LLM, RETRIEVAL})


class SpanPlan(NamedTuple):
    """Everything about a child span that does not change from call to call."""

    span_type: str
    otel_name: str
    kind: SpanKind
    attrs: Attributes
    start: Attributes


def plan_span(span_type: str, name: str, attrs: Attributes, model: str | None = None) -> SpanPlan:
    """Decide a child span's OTel name, kind and start attributes once."""
    kind = SpanKind.CLIENT if span_type in _CLIENT_TYPES else SpanKind.INTERNAL
    return SpanPlan(
        span_type, span_name(span_type, name, model), kind, attrs, start_attributes(attrs)
    )


def start_attributes(attrs: Attributes) -> Attributes:
    """The subset of `attrs` passed to `start_span` (seen by samplers and `on_start`)."""
    return {key: attrs[key] for key in _START_KEYS if key in attrs}


_OPERATION: Final = {
    AGENT: "invoke_agent",
    TRACE: "invoke_workflow",
    LLM: "chat",
    TOOL: "execute_tool",
    RETRIEVAL: "retrieval",
}
_OPENINFERENCE_KIND: Final = {
    AGENT: "AGENT",
    TRACE: "CHAIN",
    LLM: "LLM",
    TOOL: "TOOL",
    RETRIEVAL: "RETRIEVER",
    "embedding": "EMBEDDING",
    "reranker": "RERANKER",
    "guardrail": "GUARDRAIL",
    "evaluator": "EVALUATOR",
}


def operation_name(span_type: str) -> str:
    """The `gen_ai.operation.name` of a span type (custom types use the type)."""
    return _OPERATION.get(span_type, span_type)


def span_name(span_type: str, name: str, model: str | None = None) -> str:
    """The OTel span name, following the GenAI conventions' `{operation} {target}`."""
    if span_type == LLM:
        return f"chat {model}" if model else (name or "chat")
    if span_type in _OPERATION:
        operation = _OPERATION[span_type]
        return f"{operation} {name}" if name and name != operation else operation
    return name or span_type


def type_attributes(span_type: str, name: str) -> Attributes:
    """What every Rollout span carries: its type, name and the standard kind keys."""
    attrs: Attributes = {
        sc.ROLLOUT_SPAN_TYPE: span_type,
        sc.ROLLOUT_SPAN_NAME: name,
        sc.GEN_AI_OPERATION_NAME: operation_name(span_type),
        sc.OPENINFERENCE_SPAN_KIND: _OPENINFERENCE_KIND.get(span_type, "CHAIN"),
    }
    if span_type in TRACE_TYPES:
        attrs[sc.ROLLOUT_TRACE_NAME] = name
        if span_type == TRACE:
            attrs[sc.GEN_AI_WORKFLOW_NAME] = name
    elif span_type == TOOL:
        attrs[sc.ROLLOUT_TOOL_NAME] = name
        attrs[sc.GEN_AI_TOOL_NAME] = name
        attrs[sc.TOOL_NAME] = name
    return attrs


def context_attributes(
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    conversation_id: str | None = None,
    account_id: str | None = None,
    agent_name: str | None = None,
    agent_id: str | None = None,
    agent_version: str | None = None,
) -> Attributes:
    """Trace-level context copied onto every span of a trace, foreign ones included."""
    attrs: Attributes = {}
    if user_id:
        attrs[sc.ROLLOUT_USER_ID] = attrs[sc.USER_ID] = str(user_id)
    if session_id:
        attrs[sc.ROLLOUT_SESSION_ID] = attrs[sc.SESSION_ID] = str(session_id)
    if conversation_id:
        attrs[sc.ROLLOUT_CONVERSATION_ID] = attrs[sc.GEN_AI_CONVERSATION_ID] = str(conversation_id)
    if account_id:
        attrs[sc.ROLLOUT_ACCOUNT_ID] = str(account_id)
    if agent_name:
        attrs[sc.ROLLOUT_AGENT_NAME] = attrs[sc.GEN_AI_AGENT_NAME] = str(agent_name)
        attrs[sc.AGENT_NAME] = str(agent_name)
    if agent_id:
        attrs[sc.ROLLOUT_AGENT_ID] = attrs[sc.GEN_AI_AGENT_ID] = str(agent_id)
    if agent_version:
        attrs[sc.ROLLOUT_AGENT_VERSION] = attrs[sc.GEN_AI_AGENT_VERSION] = str(agent_version)
    return attrs


def user_attributes(attributes: Mapping[str, Any] | None, limit: int) -> Attributes:
    """The user's `attributes=`, namespaced as `rollout.attributes.<key>`."""
    if not attributes:
        return {}
    prefix = sc.ROLLOUT_ATTRIBUTES + "."
    return {prefix + str(key): attribute_value(value, limit) for key, value in attributes.items()}


def capture_allowed(config: RolloutConfig, direction: str, span_type: str) -> bool:
    """Whether the global capture switches let `direction` be recorded on `span_type`."""
    if not (config.capture_inputs if direction == "input" else config.capture_outputs):
        return False
    return span_type != LLM or config.content_enabled


# usage field -> (rollout key, mirrors...)
_USAGE_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "input_tokens": (
        sc.ROLLOUT_USAGE_INPUT_TOKENS,
        sc.GEN_AI_USAGE_INPUT_TOKENS,
        sc.LLM_TOKEN_COUNT_PROMPT,
    ),
    "output_tokens": (
        sc.ROLLOUT_USAGE_OUTPUT_TOKENS,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS,
        sc.LLM_TOKEN_COUNT_COMPLETION,
    ),
    "cached_tokens": (
        sc.ROLLOUT_USAGE_CACHED_TOKENS,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        sc.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ,
    ),
    "reasoning_tokens": (
        sc.ROLLOUT_USAGE_REASONING_TOKENS,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        sc.LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING,
    ),
    "total_tokens": (sc.ROLLOUT_USAGE_TOTAL_TOKENS, sc.LLM_TOKEN_COUNT_TOTAL),
    "cost_usd": (sc.ROLLOUT_USAGE_COST_USD, sc.LLM_COST_TOTAL),
    "context_window_tokens": (sc.ROLLOUT_CONTEXT_WINDOW_TOKENS,),
    "context_used_tokens": (sc.ROLLOUT_CONTEXT_USED_TOKENS,),
    "context_utilization": (sc.ROLLOUT_CONTEXT_UTILIZATION,),
}
USAGE_FIELDS: Final = tuple(_USAGE_KEYS)
USAGE_KEYS: Final[Mapping[str, tuple[str, ...]]] = _USAGE_KEYS
"""Each usage field's keys: the `rollout.usage.*` key first, then its mirrors."""
SUMMED_USAGE_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost_usd",
)
_FLOAT_USAGE: Final = frozenset({"cost_usd", "context_utilization"})


def clean_usage(usage: Mapping[str, Any]) -> dict[str, int | float]:
    """Keep the known, numeric usage fields; derive `total_tokens` when it is missing."""
    clean: dict[str, int | float] = {}
    for name in USAGE_FIELDS:
        value = usage.get(name)
        if value is None or isinstance(value, bool):
            continue
        try:
            clean[name] = float(value) if name in _FLOAT_USAGE else int(value)
        except (TypeError, ValueError):
            continue
    if "total_tokens" not in clean and "input_tokens" in clean and "output_tokens" in clean:
        clean["total_tokens"] = int(clean["input_tokens"]) + int(clean["output_tokens"])
    return clean


def usage_attributes(usage: Mapping[str, int | float], *, mirrors: bool = True) -> Attributes:
    """Usage as `rollout.usage.*` (and, on model spans, the GenAI/OpenInference mirrors).

    A trace's span gets the totals of its descendants without mirrors, so backends that
    add up token counts per trace do not count them twice.
    """
    attrs: Attributes = {}
    for name, value in usage.items():
        keys = _USAGE_KEYS.get(name)
        if keys is None:
            continue
        for key in keys if mirrors else keys[:1]:
            attrs[key] = value
    return attrs


def llm_attributes(
    *,
    model: str | None = None,
    provider: str | None = None,
    model_version: str | None = None,
    reasoning_mode: str | None = None,
    temperature: float | None = None,
    stream: bool | None = None,
) -> Attributes:
    """Model and request options, with the GenAI and OpenInference mirrors."""
    attrs: Attributes = {}
    if model:
        attrs[sc.ROLLOUT_LLM_MODEL] = attrs[sc.GEN_AI_REQUEST_MODEL] = str(model)
        attrs[sc.LLM_MODEL_NAME] = str(model)
    if provider:
        attrs[sc.ROLLOUT_LLM_PROVIDER] = attrs[sc.GEN_AI_PROVIDER_NAME] = str(provider)
        attrs[sc.LLM_PROVIDER] = str(provider)
    if model_version:
        attrs[sc.ROLLOUT_LLM_MODEL_VERSION] = attrs[sc.GEN_AI_RESPONSE_MODEL] = str(model_version)
    params: dict[str, object] = {}
    if reasoning_mode:
        attrs[sc.ROLLOUT_LLM_REASONING_MODE] = str(reasoning_mode)
        params["reasoning_mode"] = str(reasoning_mode)
    if temperature is not None and not isinstance(temperature, bool):
        attrs[sc.ROLLOUT_LLM_TEMPERATURE] = attrs[sc.GEN_AI_REQUEST_TEMPERATURE] = float(
            temperature
        )
        params["temperature"] = float(temperature)
    if stream is not None:
        attrs[sc.ROLLOUT_LLM_STREAM] = attrs[sc.GEN_AI_REQUEST_STREAM] = bool(stream)
        params["stream"] = bool(stream)
    if params:
        attrs[sc.LLM_INVOCATION_PARAMETERS] = to_json_text(params)
    return attrs


def error_attributes(exc: BaseException, limit: int) -> Attributes:
    """`error.type` plus `rollout.error.*` for an exception that ended a span."""
    error_type = type(exc).__qualname__
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {error_type}>"
    attrs: Attributes = {
        sc.ERROR_TYPE: error_type,
        sc.ROLLOUT_ERROR_TYPE: error_type,
        sc.ROLLOUT_ERROR_MESSAGE: attribute_value(message, min(limit, 2048)),
    }
    return attrs
