"""The one helper that writes a captured payload: once under each enabled convention.

`record_input`/`record_output`, decorator arguments and return values, and tool-call
arguments all come here. The keys come from the generated table (`_mirrors.py`,
`semconv.PAYLOAD_MIRRORS`): the serialised text as `input.value` (OpenInference) and, on
tool spans, `gen_ai.tool.call.arguments` (GenAI); on LLM spans also the conversation
as `gen_ai.input.messages` and `llm.input_messages.*`;
`rollout.input` only where no enabled convention has a key (outputs likewise).
Messages an integration already wrote (`wrap()`, the Agents bridge: more exact) are
left alone. Truncation stays marked by `rollout.input.truncated`/`.original_length`.

Example:
    >>> from mv37.rollout.base._config import resolve_config
    >>> attrs = payload_attributes(resolve_config({}, semconv="genai"), "input", {"a": 1}, "tool")
    >>> attrs
    {'gen_ai.tool.call.arguments': '{"a": 1}'}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from mv37.rollout import semconv as sc
from mv37.rollout.base._diagnostics import internal_error
from mv37.rollout.vocabulary._attributes import Attributes
from mv37.rollout.vocabulary._chat import recorded_messages
from mv37.rollout.vocabulary._messages import (
    RESERVED_ATTRIBUTES,
    attribute_room,
    conversation_attributes,
    message,
    text_part,
)
from mv37.rollout.vocabulary._mirrors import (
    FLATTENED_MESSAGES,
    MESSAGES,
    MIME_TYPE,
    TEXT,
    payload_keys,
    plain_keys,
)
from mv37.rollout.vocabulary._payload import (
    MIME_JSON,
    TRUNCATION_MARKER,
    Payload,
    serialize,
    to_json_text,
)

if TYPE_CHECKING:
    from mv37.rollout.base._config import RolloutConfig

_FLAGS: Final = {
    "input": (sc.ROLLOUT_INPUT_TRUNCATED, sc.ROLLOUT_INPUT_ORIGINAL_LENGTH),
    "output": (sc.ROLLOUT_OUTPUT_TRUNCATED, sc.ROLLOUT_OUTPUT_ORIGINAL_LENGTH),
}
_CONVERSATION: Final = frozenset({MESSAGES, FLATTENED_MESSAGES})


def _written(present: Mapping[str, object], form: str, key: str) -> bool:
    if form == FLATTENED_MESSAGES:
        prefix = key + "."
        return any(name.startswith(prefix) for name in present)
    return key in present


def _one_message(role: str, payload: Payload) -> str:
    """A payload as one GenAI message: JSON as a `json` part holding the value itself
    (the schema's generic part; no second, escaped copy of the text), else a text part."""
    if payload.mime_type == MIME_JSON and not payload.truncated:
        return f'[{{"role": "{role}", "parts": [{{"type": "json", "content": {payload.text}}}]}}]'
    return to_json_text([message(role, [text_part(payload.text)])])


def _plain_attributes(
    plain: tuple[tuple[str, ...], tuple[str, ...]], direction: str, payload: Payload
) -> Attributes:
    text_keys, mime_keys = plain
    attrs: Attributes = dict.fromkeys(text_keys, payload.text)
    for key in mime_keys:
        attrs[key] = payload.mime_type
    if payload.truncated:
        truncated_key, length_key = _FLAGS[direction]
        attrs[truncated_key] = True
        attrs[length_key] = payload.original_length
    return attrs


def payload_attributes(
    config: RolloutConfig,
    direction: str,
    value: object,
    span_type: str,
    otel_span: object = None,
) -> Attributes:
    """`value`, captured as a `span_type` span's `direction` ("input"/"output").

    Serialised once (capped at `max_payload_chars`, truncation marked) and set under the
    keys of the conventions `config.semconv` enables. Never raises.
    """
    try:
        limit = config.max_payload_chars
        plain = plain_keys(span_type, direction, config.semconv)
        if plain is not None:  # no conversation form: one text, its mime type, the flags
            return _plain_attributes(plain, direction, serialize(value, limit))
        keys = payload_keys(span_type, direction, config.semconv)
        attrs: Attributes = {}
        payload: Payload | None = None
        for form, key in keys:
            if form in (TEXT, MIME_TYPE):
                payload = payload or serialize(value, limit)
                attrs[key] = payload.text if form == TEXT else payload.mime_type
        present = getattr(otel_span, "attributes", None) or {}
        wanted = tuple(
            (form, key)
            for form, key in keys
            if form in _CONVERSATION and not _written(present, form, key)
        )
        messages = recorded_messages(direction, value) if wanted else None
        if wanted and not messages:
            # Not a conversation: GenAI's message key (its only key here) carries it as
            # one message; OpenInference already has it in `input.value`.
            payload = payload or serialize(value, limit)
            role = "user" if direction == "input" else "assistant"
            for form, key in wanted:
                if form == MESSAGES:
                    attrs[key] = _one_message(role, payload)
            wanted = ()
        if wanted and messages:
            room = attribute_room(otel_span) - len(attrs)
            reserved = RESERVED_ATTRIBUTES if direction == "input" else RESERVED_ATTRIBUTES // 2
            attrs.update(conversation_attributes(wanted, messages, limit, room, reserved=reserved))
        truncated_key, length_key = _FLAGS[direction]
        if payload is not None and payload.truncated:
            attrs[truncated_key] = True
            attrs[length_key] = payload.original_length
        elif payload is None and any(
            isinstance(text, str) and text.endswith(TRUNCATION_MARKER) for text in attrs.values()
        ):
            attrs[truncated_key] = True
        return attrs
    except Exception as exc:
        internal_error("serialize payload", exc)
        return {}
