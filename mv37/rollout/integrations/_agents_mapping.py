"""OpenAI Agents SDK span data -> RolloutCore span type, name and attributes.

`describe` decides what a span starts with; `record_end` adds what the SDK filled in
while it ran (payloads, usage, the handoff target, whether a guardrail tripped). Model
spans reuse the OpenAI adapters of `wrap()`, so an agents `llm` span carries the same
message, response and usage attributes as a wrapped client's.

Example:
    >>> span_type, name, attrs, model = describe(span.span_data, limit=32_768)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from mv37.rollout import semconv as sc
from mv37.rollout.facade._metrics import note
from mv37.rollout.facade._span import Span
from mv37.rollout.integrations._call import Result, _result_attributes
from mv37.rollout.integrations._openai import ChatCompletions, Responses, responses_result
from mv37.rollout.integrations._usage import openai_usage
from mv37.rollout.vocabulary._attributes import (
    AGENT,
    LLM,
    SPAN,
    TASK,
    TOOL,
    Attributes,
    capture_allowed,
    context_attributes,
    llm_attributes,
    type_attributes,
    user_attributes,
)
from mv37.rollout.vocabulary._fields import as_float, as_int, as_str, field, given, plain
from mv37.rollout.vocabulary._messages import (
    Message,
    attribute_room,
    input_attributes,
    output_attributes,
    output_value,
    parse_arguments,
)
from mv37.rollout.vocabulary._payload import to_json_text

PROVIDER: Final = "openai"
HANDOFF: Final = "handoff"
GUARDRAIL: Final = "guardrail"
TURN: Final = "turn"
# model_config entries that describe the client, not the request.
_NOT_PARAMETERS: Final = frozenset({"base_url", "model_impl", "provider", "timeout", "retry"})
_REQUEST_OPTIONS: Final = (
    (sc.GEN_AI_REQUEST_TOP_P, "top_p"),
    (sc.GEN_AI_REQUEST_FREQUENCY_PENALTY, "frequency_penalty"),
    (sc.GEN_AI_REQUEST_PRESENCE_PENALTY, "presence_penalty"),
)


# -- what a span carries when it starts ----------------------------------------------------


def _list(value: object) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, (list, tuple)) else ()


def _agent_details(data: Any) -> Attributes:
    """Tools, handoffs and output type of an agent span (the SDK fills tools in late)."""
    attrs: Attributes = {}
    if tools := _list(getattr(data, "tools", None)):
        attrs[sc.ROLLOUT_AGENT_TOOLS] = tools
    if handoffs := _list(getattr(data, "handoffs", None)):
        attrs[sc.ROLLOUT_AGENT_HANDOFFS] = handoffs
    if output_type := as_str(getattr(data, "output_type", None)):
        attrs[sc.ROLLOUT_AGENT_OUTPUT_TYPE] = output_type
    return attrs


def _model_config(config: object) -> Attributes:
    """A generation's model settings as request attributes and invocation parameters."""
    if not isinstance(config, Mapping):
        return {}
    attrs = llm_attributes(
        temperature=as_float(config.get("temperature")),
        reasoning_mode=as_str(field(config.get("reasoning"), "effort")),
    )
    if (max_tokens := as_int(config.get("max_tokens"))) is not None:
        attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    for key, name in _REQUEST_OPTIONS:
        if (number := as_float(config.get(name))) is not None:
            attrs[key] = number
    params = {str(k): plain(v) for k, v in config.items() if given(v) and k not in _NOT_PARAMETERS}
    if params:
        attrs[sc.LLM_INVOCATION_PARAMETERS] = to_json_text(params)
    return attrs


def _generation_provider(config: object) -> str | None:
    """`openai` unless the model config names another implementation (LiteLLM, any-llm)."""
    if not isinstance(config, Mapping):
        return PROVIDER
    if provider := as_str(config.get("provider")):
        return provider
    return PROVIDER if config.get("model_impl") in (None, "openai") else None


def describe(data: Any, limit: int) -> tuple[str, str, Attributes, str | None]:
    """(span type, name, start attributes, model) for an agents span data."""
    kind = str(getattr(data, "type", "") or SPAN)
    if kind == "agent":
        name = str(getattr(data, "name", None) or "agent")
        attrs = {**type_attributes(AGENT, name), **context_attributes(agent_name=name)}
        return AGENT, name, {**attrs, **_agent_details(data)}, None
    if kind == "generation":
        model = as_str(getattr(data, "model", None))
        config = getattr(data, "model_config", None)
        attrs = type_attributes(LLM, model or "generation")
        attrs.update(_model_config(config))
        attrs.update(llm_attributes(model=model, provider=_generation_provider(config)))
        return LLM, model or "generation", attrs, model
    if kind == "response":  # the model is known only from the response, at the end
        attrs = {**type_attributes(LLM, "response"), **llm_attributes(provider=PROVIDER)}
        return LLM, "response", attrs, None
    if kind == "function":
        name = str(getattr(data, "name", None) or "function")
        return TOOL, name, type_attributes(TOOL, name), None
    if kind == HANDOFF:
        attrs, name = _handoff(data)
        return HANDOFF, name, {**type_attributes(HANDOFF, name), **attrs}, None
    if kind == GUARDRAIL:
        name = str(getattr(data, "name", None) or GUARDRAIL)
        return GUARDRAIL, name, type_attributes(GUARDRAIL, name), None
    if kind == "task":
        name = str(getattr(data, "name", None) or TASK)
        return TASK, name, type_attributes(TASK, name), None
    if kind == TURN:
        name = f"turn {getattr(data, 'turn', '')}".strip()
        return TURN, name, type_attributes(TURN, name), None
    if kind == "custom":
        name = str(getattr(data, "name", None) or SPAN)
        attrs = type_attributes(SPAN, name)
        custom = getattr(data, "data", None)
        attrs.update(user_attributes(custom if isinstance(custom, Mapping) else None, limit))
        return SPAN, name, attrs, None
    name = str(getattr(data, "name", None) or kind)
    return kind, name, type_attributes(kind, name), None


def _handoff(data: Any) -> tuple[Attributes, str]:
    source = as_str(getattr(data, "from_agent", None))
    target = as_str(getattr(data, "to_agent", None))
    attrs: Attributes = {}
    if source:
        attrs[sc.ROLLOUT_HANDOFF_FROM_AGENT] = source
    if target:
        attrs[sc.ROLLOUT_HANDOFF_TO_AGENT] = target
    return attrs, f"{source or '?'} -> {target or '?'}"


def otel_name(span_type: str, name: str) -> str | None:
    """OTel names for the SDK-specific types (`handoff a -> b`); None keeps the default."""
    if span_type in (HANDOFF, GUARDRAIL):
        return f"{span_type} {name}"
    return None


# -- what a span carries when it ends -------------------------------------------------------


def _chat_output(items: object) -> list[Message]:
    """Generation output: chat messages, or Responses-shaped dumps, as GenAI messages."""
    messages: list[Message] = []
    for item in items if isinstance(items, (list, tuple)) else ():
        if field(item, "output") is not None:
            messages.extend(responses_result(item).messages)
        elif field(item, "role") is not None:
            result = ChatCompletions().result({"choices": [{"message": item}]})
            messages.extend(result.messages if result is not None else ())
    return messages


def _record_messages(
    ours: Span, system: list[Any], inputs: list[Message], outputs: list[Message]
) -> object:
    """GenAI/OpenInference message attributes (when content capture allows); the output."""
    config = ours._client.config
    limit = config.max_payload_chars
    attrs: Attributes = {}
    room = attribute_room(ours.otel_span)
    if inputs and capture_allowed(config, "input", LLM):
        attrs.update(input_attributes(system, inputs, limit, room, config.semconv))
    if outputs and capture_allowed(config, "output", LLM):
        attrs.update(output_attributes(outputs, limit, room - len(attrs), config.semconv))
    ours._set(attrs)
    return output_value(outputs) if outputs else None


def _record_usage(ours: Span, raw: object) -> None:
    usage, cache_write = openai_usage(raw)
    if usage:
        ours.set_usage(**usage)
    if cache_write:
        ours._set(_result_attributes(Result(cache_creation_tokens=cache_write)))


def _end_generation(ours: Span, data: Any) -> None:
    raw_input = getattr(data, "input", None)
    _, inputs = ChatCompletions().input_messages({"messages": raw_input})
    outputs = _chat_output(getattr(data, "output", None))
    _record_messages(ours, [], inputs, outputs)
    if raw_input is not None:
        ours.record_input(raw_input)
    if getattr(data, "output", None) is not None:
        ours.record_output(data.output)
    _record_usage(ours, getattr(data, "usage", None))


def _end_response(ours: Span, data: Any) -> None:
    response = getattr(data, "response", None)
    raw_input = getattr(data, "input", None)
    system, inputs = Responses().input_messages({"input": raw_input})
    result = responses_result(response) if response is not None else Result()
    output = _record_messages(ours, system, inputs, result.messages)
    if raw_input is not None:
        ours.record_input(raw_input)
    if output is not None:
        ours.record_output(output)
    attrs = _result_attributes(Result(response_id=result.response_id, model=result.model))
    if result.model:
        attrs.update(llm_attributes(model=result.model))
        ours.otel_span.update_name(f"chat {result.model}")
        attrs[sc.ROLLOUT_SPAN_NAME] = result.model
    ours._set(attrs)
    note(ours, attrs)  # the model, known only now, for the metrics
    usage = getattr(data, "usage", None)
    _record_usage(ours, usage if usage is not None else getattr(response, "usage", None))


def record_end(ours: Span, data: Any) -> None:
    """What the SDK fills in while the span runs: payloads, usage, late-known fields."""
    kind = getattr(data, "type", "")
    if kind == "generation":
        _end_generation(ours, data)
    elif kind == "response":
        _end_response(ours, data)
    elif kind == "function":
        if (arguments := getattr(data, "input", None)) is not None:
            ours.record_input(parse_arguments(arguments))
        if (result := getattr(data, "output", None)) is not None:
            ours.record_output(result)
    elif kind == "agent":
        ours._set(_agent_details(data))
    elif kind == HANDOFF:  # the target is known only once the handoff ran
        attrs, name = _handoff(data)
        ours._set({**attrs, sc.ROLLOUT_SPAN_NAME: name})
        ours.otel_span.update_name(f"{HANDOFF} {name}")
    elif kind == GUARDRAIL:
        ours._set({sc.ROLLOUT_GUARDRAIL_TRIGGERED: bool(getattr(data, "triggered", False))})
    elif kind == "custom":
        custom = getattr(data, "data", None)
        if isinstance(custom, Mapping):
            ours._set(user_attributes(custom, ours._client.config.max_payload_chars))


def error_message(error: object) -> str | None:
    if not error:
        return None
    message = field(error, "message") if isinstance(error, Mapping) else error
    return str(message or "error")
