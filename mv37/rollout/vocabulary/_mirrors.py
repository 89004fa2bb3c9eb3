"""Which key carries a payload, per convention: the generated table, applied in one place.

`semconv.PAYLOAD_MIRRORS` (generated from the `payload` annotations of `semconv/model/`)
lists, for each convention (`genai`, `openinference`, and our own `rollout` fallback),
the keys that carry a span's input or output and the span types that use them. A
payload is written once under each enabled convention (the `semconv` option); the
`rollout.*` keys only where no enabled convention has a key for that span type.

Example:
    >>> payload_keys("tool", "input", ("genai",))
    (('text', 'gen_ai.tool.call.arguments'),)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Final

from mv37.rollout import semconv as sc

TEXT: Final = "text"
MIME_TYPE: Final = "mime_type"
MESSAGES: Final = "messages"
FLATTENED_MESSAGES: Final = "flattened_messages"
SYSTEM_INSTRUCTIONS: Final = "system_instructions"
TOOL_DEFINITIONS: Final = "tool_definitions"
FALLBACK: Final = "rollout"
# Forms that carry the payload itself (a convention "has a key" for a span when it has one).
_CARRIERS: Final = frozenset({TEXT, MESSAGES, FLATTENED_MESSAGES})

PayloadKeys = tuple[tuple[str, str], ...]


def payload_keys(span_type: str, direction: str, conventions: Sequence[str]) -> PayloadKeys:
    """`(form, key)` pairs a `direction` payload of a `span_type` span is written under."""
    return _payload_keys(span_type, direction, tuple(conventions))


@functools.lru_cache(maxsize=256)
def _payload_keys(span_type: str, direction: str, conventions: tuple[str, ...]) -> PayloadKeys:
    def keys(enabled: frozenset[str]) -> PayloadKeys:
        return tuple(
            (form, key)
            for convention, d, form, key, spans in sc.PAYLOAD_MIRRORS
            if convention in enabled and d == direction and (span_type in spans or "*" in spans)
        )

    found = keys(frozenset(conventions) - {FALLBACK})
    if any(form in _CARRIERS for form, _ in found):
        return found
    return found + keys(frozenset({FALLBACK}))


@functools.lru_cache(maxsize=256)
def plain_keys(
    span_type: str, direction: str, conventions: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """`(text keys, mime-type keys)` when the payload goes under plain keys only; None when
    a conversation form (GenAI or OpenInference messages) is among them.

    The common case (tools, tasks, traces) skips the conversation logic with it.

    Example:
        >>> plain_keys("tool", "input", ("genai", "openinference"))
        (('gen_ai.tool.call.arguments', 'input.value'), ('input.mime_type',))
    """
    keys = _payload_keys(span_type, direction, conventions)
    if any(form not in (TEXT, MIME_TYPE) for form, _ in keys):
        return None
    return (
        tuple(key for form, key in keys if form == TEXT),
        tuple(key for form, key in keys if form == MIME_TYPE),
    )


def has_form(keys: PayloadKeys, *forms: str) -> bool:
    """Whether `keys` use any of `forms`."""
    return any(form in forms for form, _ in keys)


def display_keys(direction: str) -> tuple[str, ...]:
    """Every key a `direction` payload may be under, text forms first, then GenAI messages:
    what a reader (the console tree) looks up, whatever the `semconv` setting was.

    Example:
        >>> display_keys("input")[:2]
        ('rollout.input', 'gen_ai.tool.call.arguments')
    """
    rows = [
        (form != TEXT, key)
        for _, d, form, key, _ in sc.PAYLOAD_MIRRORS
        if d == direction and form in (TEXT, MESSAGES)
    ]
    return tuple(key for _, key in sorted(rows, key=lambda row: row[0]))
