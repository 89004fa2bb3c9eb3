"""OpenAI-shaped chat messages read into GenAI messages (`vocabulary/_messages.py`).

Used by the OpenAI integration for requests and responses, and by hand-recorded LLM spans
(`record_input([{"role": "user", "content": ...}])`). Everything is read with `field`,
so SDK objects and plain dicts both work; nothing here imports `openai`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from mv37.rollout.vocabulary._fields import as_str, field, sequence
from mv37.rollout.vocabulary._messages import (
    Message,
    Part,
    media_part,
    message,
    text_part,
    tool_call_part,
    tool_response_part,
)

ROLES: Final = {"developer": "system", "function": "tool"}
"""OpenAI roles under their GenAI names."""


def content_parts(content: object) -> list[Part]:
    """Parts of a chat or Responses message `content` (a string or a list of parts)."""
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[Part] = []
    for item in sequence(content) or ():
        kind = field(item, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(text_part(str(field(item, "text") or "")))
        elif kind == "refusal":
            parts.append(text_part(str(field(item, "refusal") or "")))
        elif kind == "image_url":
            parts.append(media_part("image", field(field(item, "image_url"), "url")))
        elif kind == "input_image":
            parts.append(media_part("image", field(item, "image_url")))
        elif kind == "input_audio":
            audio_format = field(field(item, "input_audio"), "format")
            parts.append(
                media_part("audio", None, f"audio/{audio_format}" if audio_format else None)
            )
    return parts


def _text_of(content: object) -> str:
    return "".join(str(p.get("content", "")) for p in content_parts(content))


def _tool_call_parts(calls: object) -> list[Part]:
    parts: list[Part] = []
    for call in sequence(calls) or ():
        function = field(call, "function")
        parts.append(
            tool_call_part(field(call, "id"), field(function, "name"), field(function, "arguments"))
        )
    return parts


def chat_message(msg: object) -> Message:
    role = str(field(msg, "role") or "user")
    if role in ("tool", "function"):
        call_id = field(msg, "tool_call_id") or field(msg, "name")
        return message("tool", [tool_response_part(call_id, _text_of(field(msg, "content")))])
    parts = content_parts(field(msg, "content"))
    refusal = as_str(field(msg, "refusal"))
    if refusal:
        parts.append(text_part(refusal))
    parts.extend(_tool_call_parts(field(msg, "tool_calls")))
    function_call = field(msg, "function_call")
    if function_call is not None:
        parts.append(
            tool_call_part(None, field(function_call, "name"), field(function_call, "arguments"))
        )
    return message(ROLES.get(role, role), parts)


def recorded_messages(direction: str, value: object) -> list[Message] | None:
    """Chat messages in what a user passed to `record_input`/`record_output` on an LLM span.

    Understood: a message dict (`{"role": ..., "content": ...}`, OpenAI chat shape, tool
    calls included), a list of them, a dict with a `"messages"` list, and a plain string
    (the user's prompt going in, the assistant's text coming out). Anything else: None.

    Example:
        >>> recorded_messages("input", [{"role": "user", "content": "hi"}])
        [{'role': 'user', 'parts': [{'type': 'text', 'content': 'hi'}]}]
    """
    if isinstance(value, str):
        role = "user" if direction == "input" else "assistant"
        return [message(role, [text_part(value)])]
    if isinstance(value, Mapping):
        if "role" in value:
            return [chat_message(value)]
        value = value.get("messages")
    items = sequence(value)  # lists and tuples only
    if not items or not all(isinstance(m, Mapping) and "role" in m for m in items):
        return None
    return [chat_message(m) for m in items]
