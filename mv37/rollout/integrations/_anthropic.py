"""Anthropic: `messages.create` and `messages.stream`, read into `Request`/`Result`.

Streams are read from their raw events (`message_start`, `content_block_*`,
`message_delta`); the `MessageStream` helper's synthesized events (`text`,
`input_json`, ...) repeat what the raw ones carry and are skipped. Nothing here imports
`anthropic`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from mv37.rollout import semconv as sc
from mv37.rollout.integrations._call import Request, Result, invocation_parameters
from mv37.rollout.integrations._usage import anthropic_usage, anthropic_usage_fields
from mv37.rollout.vocabulary._attributes import Attributes
from mv37.rollout.vocabulary._fields import as_float, as_int, as_str, field, plain, sequence
from mv37.rollout.vocabulary._messages import (
    Message,
    Part,
    media_part,
    message,
    reasoning_part,
    text_part,
    tool_call_part,
    tool_response_part,
)

_TOOL_USE: Final = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})


def _tool_result(content: object) -> object:
    if isinstance(content, str):
        return content
    blocks = sequence(content)
    if blocks is not None and all(field(b, "type") == "text" for b in blocks):
        return "".join(str(field(b, "text") or "") for b in blocks)
    return plain(content)


def block_part(block: object) -> Part | None:
    """A content block (request or response) as a GenAI part; `None` to leave it out."""
    kind = field(block, "type")
    if kind == "text":
        return text_part(str(field(block, "text") or ""))
    if kind in _TOOL_USE:
        return tool_call_part(field(block, "id"), field(block, "name"), field(block, "input"))
    if kind == "tool_result":
        return tool_response_part(
            field(block, "tool_use_id"), _tool_result(field(block, "content"))
        )
    if kind == "thinking":
        return reasoning_part(str(field(block, "thinking") or ""))
    if kind == "image":
        source = field(block, "source")
        return media_part("image", field(source, "url"), field(source, "media_type"))
    return None


def _parts(content: object) -> list[Part]:
    if isinstance(content, str):
        return [text_part(content)]
    return [p for p in (block_part(b) for b in sequence(content) or ()) if p is not None]


def message_result(msg: Any) -> Result:
    """A `Message` (also the snapshot a stream accumulates)."""
    reason = as_str(field(msg, "stop_reason"))
    usage, created = anthropic_usage(anthropic_usage_fields(field(msg, "usage")))
    return Result(
        response_id=as_str(field(msg, "id")),
        model=as_str(field(msg, "model")),
        messages=[message("assistant", _parts(field(msg, "content")), reason)],
        finish_reasons=[reason] if reason else [],
        usage=usage,
        cache_creation_tokens=created,
    )


class Messages:
    """`messages.create` (streamed or not) and the `messages.stream` helper."""

    _content: Final = frozenset({"messages", "system"})

    def __init__(self, method: str, *, stream: bool = False) -> None:
        self.method = method
        self._stream = stream

    def request(self, kwargs: Mapping[str, Any]) -> Request:
        """Model, options, and `messages` (with `system`) as the Rollout input."""
        attrs: Attributes = {}
        if (max_tokens := as_int(kwargs.get("max_tokens"))) is not None:
            attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
        for key, name in ((sc.GEN_AI_REQUEST_TOP_P, "top_p"), (sc.GEN_AI_REQUEST_TOP_K, "top_k")):
            if (number := as_float(kwargs.get(name))) is not None:
                attrs[key] = number
        stops = sequence(kwargs.get("stop_sequences"))
        if stops and all(isinstance(s, str) for s in stops):
            attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(stops)
        thinking = as_str(field(kwargs.get("thinking"), "type"))
        value: object = sequence(kwargs.get("messages"))
        system = kwargs.get("system")
        system_value = system if isinstance(system, str) else sequence(system)
        if system_value and value is not None:
            value = {"system": system_value, "messages": value}
        return Request(
            model=as_str(kwargs.get("model")),
            stream=self._stream or kwargs.get("stream") is True,
            temperature=as_float(kwargs.get("temperature")),
            reasoning=thinking if thinking != "disabled" else None,
            params=invocation_parameters(kwargs, self._content),
            attributes=attrs,
            input_value=value,
        )

    def input_messages(self, kwargs: Mapping[str, Any]) -> tuple[list[Part], list[Message]]:
        """`system` as system instructions, `messages` as messages."""
        messages = [
            message(field(m, "role") or "user", _parts(field(m, "content")))
            for m in sequence(kwargs.get("messages")) or ()
        ]
        return _parts(kwargs.get("system")), messages

    def tools(self, kwargs: Mapping[str, Any]) -> Sequence[Any] | None:
        """The `tools` offered to the model."""
        return sequence(kwargs.get("tools"))

    def result(self, response: Any) -> Result | None:
        """A `Message`."""
        return message_result(response)

    def accumulator(self) -> MessagesAccumulator:
        """A reader for one stream of message events."""
        return MessagesAccumulator()


class _Block:
    __slots__ = ("call_id", "initial", "kind", "name", "pieces")

    def __init__(self, block: object) -> None:
        self.kind = field(block, "type")
        self.call_id = field(block, "id")
        self.name = field(block, "name")
        self.initial = field(block, "input")
        first = field(block, "text") if self.kind == "text" else field(block, "thinking")
        self.pieces: list[str] = [first] if isinstance(first, str) and first else []


class MessagesAccumulator:
    """Message stream events: blocks by index, stop reason, cumulative usage."""

    def __init__(self) -> None:
        self.response_id: str | None = None
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.usage: dict[str, int] = {}
        self.blocks: dict[int, _Block] = {}

    def add(self, event: Any) -> str | None:
        """One event; returns the text of text and tool-input deltas."""
        kind = field(event, "type")
        if kind == "content_block_delta":
            delta = field(event, "delta")
            block = self.blocks.get(field(event, "index"))
            dkind = field(delta, "type")
            piece = (
                field(delta, "text")
                if dkind == "text_delta"
                else field(delta, "partial_json")
                if dkind == "input_json_delta"
                else field(delta, "thinking")
                if dkind == "thinking_delta"
                else None
            )
            if block is not None and piece:
                block.pieces.append(piece)
            return piece if dkind != "thinking_delta" else None
        if kind == "content_block_start":
            self.blocks[field(event, "index") or 0] = _Block(field(event, "content_block"))
        elif kind == "message_start":
            msg = field(event, "message")
            self.response_id = as_str(field(msg, "id"))
            self.model = as_str(field(msg, "model"))
            self.usage.update(anthropic_usage_fields(field(msg, "usage")))
        elif kind == "message_delta":
            self.stop_reason = (
                as_str(field(field(event, "delta"), "stop_reason")) or self.stop_reason
            )
            self.usage.update(anthropic_usage_fields(field(event, "usage")))
        return None

    def result(self) -> Result:
        """The message read so far."""
        parts: list[Part] = []
        for _, block in sorted(self.blocks.items()):
            text = "".join(block.pieces)
            if block.kind == "text":
                parts.append(text_part(text))
            elif block.kind == "thinking":
                parts.append(reasoning_part(text))
            elif block.kind in _TOOL_USE:
                arguments = _json_or(text, block.initial)
                parts.append(tool_call_part(block.call_id, block.name, arguments))
        usage, created = anthropic_usage(self.usage)
        reason = self.stop_reason
        return Result(
            response_id=self.response_id,
            model=self.model,
            messages=[message("assistant", parts, reason)] if parts or reason else [],
            finish_reasons=[reason] if reason else [],
            usage=usage,
            cache_creation_tokens=created,
        )


def _json_or(text: str, fallback: object) -> object:
    if not text:
        return fallback
    try:
        return json.loads(text)
    except ValueError:
        return text
