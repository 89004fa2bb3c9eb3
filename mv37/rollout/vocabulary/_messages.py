"""Messages in the OTel GenAI JSON schema, and their OpenInference flattening.

Adapters turn provider messages into GenAI messages,
`{"role": ..., "parts": [{"type": "text", "content": ...}, {"type": "tool_call", ...}]}`
(output messages add `finish_reason`). From those we write `gen_ai.input.messages` /
`gen_ai.output.messages` (one JSON string each) and/or the OpenInference
`llm.input_messages.N.message.*` keys, as the `semconv` option enables them. Binary
content (images, audio, files) is referenced, never copied: a URL stays a `uri` part,
inline data becomes a `blob` part without its bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from mv37.rollout import semconv as sc
from mv37.rollout.vocabulary._attributes import LLM, Attributes
from mv37.rollout.vocabulary._fields import plain
from mv37.rollout.vocabulary._mirrors import (
    FLATTENED_MESSAGES,
    MESSAGES,
    SYSTEM_INSTRUCTIONS,
    TOOL_DEFINITIONS,
    PayloadKeys,
    payload_keys,
)
from mv37.rollout.vocabulary._payload import cap_text, serialize, to_json_text

Part = dict[str, Any]
Message = dict[str, Any]

# Attributes left free on a span for what is set after the messages (usage and its
# mirrors, response fields, stream summary, error); flattened messages never push
# the ids and context attributes out of the SDK's attribute limit.
RESERVED_ATTRIBUTES: Final = 40
_DEFAULT_ROOM: Final = 128

# OpenInference's flattened keys (`SpanAttributes.LLM_INPUT_MESSAGES`, ...): template
# attributes of the registry. Which are written comes from `semconv.PAYLOAD_MIRRORS`
# (`_mirrors.py`), and only while the registry lists them.
OI_INPUT_MESSAGES: Final = sc.LLM_INPUT_MESSAGES
OI_OUTPUT_MESSAGES: Final = sc.LLM_OUTPUT_MESSAGES
OI_TOOLS: Final = sc.LLM_TOOLS


def registered(prefix: str) -> bool:
    """Whether the registry lists the OpenInference template `prefix`."""
    return sc.is_registered_attribute(prefix + ".0")


def text_part(text: str) -> Part:
    """A `text` part."""
    return {"type": "text", "content": text}


def reasoning_part(text: str) -> Part:
    """A `reasoning` part (thinking, reasoning summaries)."""
    return {"type": "reasoning", "content": text}


def tool_call_part(call_id: object, name: object, arguments: object) -> Part:
    """A `tool_call` part; JSON-text arguments are parsed into an object."""
    part: Part = {"type": "tool_call", "name": str(name) if name else ""}
    if call_id:
        part["id"] = str(call_id)
    if arguments is not None:
        part["arguments"] = parse_arguments(arguments)
    return part


def tool_response_part(call_id: object, response: object) -> Part:
    """A `tool_call_response` part."""
    part: Part = {"type": "tool_call_response", "response": plain(response)}
    if call_id:
        part["id"] = str(call_id)
    return part


def media_part(modality: str, uri: object = None, mime_type: object = None) -> Part:
    """A `uri` part for a URL, or a `blob` part (without the bytes) for inline data."""
    if isinstance(uri, str) and uri and not uri.startswith("data:"):
        return {"type": "uri", "modality": modality, "uri": uri}
    if isinstance(uri, str) and uri.startswith("data:"):
        mime_type = mime_type or uri[5:].split(";", 1)[0].split(",", 1)[0]
    part: Part = {"type": "blob", "modality": modality}
    if mime_type:
        part["mime_type"] = str(mime_type)
    return part


def parse_arguments(arguments: object) -> object:
    """Tool-call arguments as an object when they are JSON text, else as they are."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return plain(arguments)


def message(role: object, parts: list[Part], finish_reason: object = None) -> Message:
    """A GenAI message; `finish_reason` only for output messages."""
    msg: Message = {"role": str(role) if role else "user", "parts": parts}
    if finish_reason is not None:
        msg["finish_reason"] = str(finish_reason)
    return msg


def messages_json(messages: Sequence[Message] | Sequence[Part], limit: int) -> str:
    """One JSON string (GenAI attributes carry messages as JSON on spans), capped."""
    return serialize(list(messages), limit).text


def output_value(messages: Sequence[Message]) -> object:
    """What `record_output` gets: the text of a text-only answer, else the messages."""
    if not messages:
        return None
    if len(messages) == 1:
        parts = messages[0].get("parts") or []
        if parts and all(p.get("type") == "text" for p in parts):
            return "".join(str(p.get("content", "")) for p in parts)
    return list(messages)


def attribute_room(otel_span: object) -> int:
    """How many attributes the span can still take under the SDK's count limit."""
    attributes = getattr(otel_span, "_attributes", None)
    maxlen = getattr(attributes, "maxlen", None)
    if not isinstance(maxlen, int) or attributes is None:
        return _DEFAULT_ROOM
    try:
        return maxlen - len(attributes)
    except TypeError:
        return _DEFAULT_ROOM


def _text_of(value: object) -> str:
    return value if isinstance(value, str) else to_json_text(value)


def _flatten(msg: Message, limit: int) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = [("message.role", str(msg.get("role", "")))]
    texts: list[str] = []
    tool_call_id: str | None = None
    calls: list[Part] = []
    for part in msg.get("parts") or ():
        kind = part.get("type")
        if kind == "text":
            texts.append(str(part.get("content", "")))
        elif kind == "tool_call_response":
            texts.append(_text_of(part.get("response")))
            tool_call_id = tool_call_id or part.get("id")
        elif kind == "tool_call":
            calls.append(part)
    if texts:
        items.append(("message.content", cap_text("\n".join(texts), limit)[0]))
    if tool_call_id:
        items.append(("message.tool_call_id", str(tool_call_id)))
    for k, call in enumerate(calls):
        key = f"message.tool_calls.{k}.tool_call"
        if call.get("id"):
            items.append((f"{key}.id", str(call["id"])))
        items.append((f"{key}.function.name", str(call.get("name", ""))))
        if "arguments" in call:
            arguments = cap_text(_text_of(call["arguments"]), limit)[0]
            items.append((f"{key}.function.arguments", arguments))
    return items


def openinference_messages(
    prefix: str, messages: Sequence[Message], limit: int, budget: int
) -> Attributes:
    """`{prefix}.N.message.*` keys for the most recent messages that fit in `budget`."""
    kept: list[list[tuple[str, str]]] = []
    used = 0
    for msg in reversed(messages):
        items = _flatten(msg, limit)
        if used + len(items) > budget:
            break
        kept.append(items)
        used += len(items)
    kept.reverse()
    attrs: Attributes = {}
    for index, items in enumerate(kept):
        for suffix, value in items:
            attrs[f"{prefix}.{index}.{suffix}"] = value
    return attrs


def conversation_attributes(
    keys: PayloadKeys,
    messages: Sequence[Message],
    limit: int,
    room: int,
    *,
    system: Sequence[Part] | None = None,
    reserved: int = RESERVED_ATTRIBUTES,
) -> Attributes:
    """A conversation under the message `keys` of the enabled conventions (`_mirrors.py`).

    GenAI keys get one JSON string each; OpenInference templates get the most recent
    messages flattened (`llm.input_messages.N.message.*`, the system message first) that
    fit in `room` less `reserved`.
    """
    attrs: Attributes = {}
    for form, key in keys:
        if form == MESSAGES:
            attrs[key] = messages_json(messages, limit)
        elif form == SYSTEM_INSTRUCTIONS and system:
            attrs[key] = messages_json(system, limit)
    for form, key in keys:
        if form == FLATTENED_MESSAGES and registered(key):
            flat = [message("system", list(system)), *messages] if system else list(messages)
            budget = room - len(attrs) - reserved
            attrs.update(openinference_messages(key, flat, limit, budget))
    return attrs


def input_attributes(
    system: Sequence[Part] | None,
    messages: Sequence[Message],
    limit: int,
    room: int,
    conventions: Sequence[str],
) -> Attributes:
    """An LLM request's messages: `gen_ai.input.messages` (+ `gen_ai.system_instructions`)
    and/or `llm.input_messages.*`, as `conventions` (the `semconv` option) ask."""
    keys = payload_keys(LLM, "input", conventions)
    return conversation_attributes(keys, messages, limit, room, system=system)


def output_attributes(
    messages: Sequence[Message], limit: int, room: int, conventions: Sequence[str]
) -> Attributes:
    """An LLM response's messages: `gen_ai.output.messages` and/or `llm.output_messages.*`."""
    keys = payload_keys(LLM, "output", conventions)
    return conversation_attributes(keys, messages, limit, room, reserved=RESERVED_ATTRIBUTES // 2)


def tool_attributes(
    tools: Sequence[Any], limit: int, room: int, conventions: Sequence[str]
) -> Attributes:
    """Tools offered to the model: `gen_ai.tool.definitions` and/or `llm.tools.N.*`."""
    definitions = [plain(tool) for tool in tools]
    attrs: Attributes = {}
    for form, key in payload_keys(LLM, "input", conventions):
        if form != TOOL_DEFINITIONS:
            continue
        if sc.is_registered_attribute(key):
            attrs[key] = serialize(definitions, limit).text
        elif registered(key):
            budget = room - len(attrs) - RESERVED_ATTRIBUTES
            for index, tool in enumerate(definitions[: max(0, budget)]):
                attrs[f"{key}.{index}.tool.json_schema"] = serialize(tool, limit).text
    return attrs
