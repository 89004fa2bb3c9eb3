"""Token usage off provider responses, in the OTel GenAI sense, for `Span.set_usage(**...)`.

`input_tokens` includes cached tokens and `output_tokens` includes reasoning tokens;
fields the provider did not report are absent, never zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from mv37.rollout.base._types import UsageDict
from mv37.rollout.vocabulary._fields import as_int, field

_USAGE_MARKERS: Final = ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens")
ANTHROPIC_USAGE_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


def _usage_of(obj: object, container: str) -> object:
    """The usage object in a response, an event wrapping one, or `obj` itself."""
    if obj is None:
        return None
    usage = field(obj, "usage")
    if usage is not None:
        return usage
    inner = field(obj, container)
    if inner is not None:
        return field(inner, "usage")
    if any(field(obj, marker) is not None for marker in _USAGE_MARKERS):
        return obj
    return None


def usage_from_openai(response: object) -> UsageDict:
    """Usage of an OpenAI chat completion or response, as `set_usage` keyword arguments.

    Accepts `ChatCompletion`, the final `ChatCompletionChunk` of a stream made with
    `stream_options={"include_usage": True}`, a Responses API `Response`, its
    `response.completed` event, a usage object, or the same as plain dicts.

    Example:
        >>> usage_from_openai({"usage": {"prompt_tokens": 12, "completion_tokens": 3}})
        {'input_tokens': 12, 'output_tokens': 3, 'total_tokens': 15}
    """
    return openai_usage(_usage_of(response, "response"))[0]


def openai_usage(usage: object) -> tuple[UsageDict, int | None]:
    """`(usage dict, cache-write tokens)` from a chat or Responses usage object."""
    out: UsageDict = {}
    if usage is None:
        return out, None
    prompt = as_int(field(usage, "prompt_tokens"))
    input_tokens = prompt if prompt is not None else as_int(field(usage, "input_tokens"))
    completion = as_int(field(usage, "completion_tokens"))
    output_tokens = completion if completion is not None else as_int(field(usage, "output_tokens"))
    in_details = field(usage, "prompt_tokens_details") or field(usage, "input_tokens_details")
    out_details = field(usage, "completion_tokens_details") or field(usage, "output_tokens_details")
    cached = as_int(field(in_details, "cached_tokens"))
    reasoning = as_int(field(out_details, "reasoning_tokens"))
    total = as_int(field(usage, "total_tokens"))
    if input_tokens is not None:
        out["input_tokens"] = input_tokens
    if output_tokens is not None:
        out["output_tokens"] = output_tokens
    if cached is not None:
        out["cached_tokens"] = cached
    if reasoning is not None:
        out["reasoning_tokens"] = reasoning
    if total is None and input_tokens is not None and output_tokens is not None:
        total = input_tokens + output_tokens
    if total is not None:
        out["total_tokens"] = total
    return out, as_int(field(in_details, "cache_write_tokens"))


def usage_from_anthropic(response: object) -> UsageDict:
    """Usage of an Anthropic message, as `set_usage` keyword arguments.

    Accepts a `Message`, the `message_start` / `message_delta` / `message_stop` stream
    events, a usage object, or the same as plain dicts. Anthropic's `input_tokens`
    excludes cache reads and writes; they are added, as the GenAI conventions count them.

    Example:
        >>> usage_from_anthropic(
        ...     {"usage": {"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 5}}
        ... )
        {'input_tokens': 100, 'output_tokens': 5, 'cached_tokens': 90, 'total_tokens': 105}
    """
    return anthropic_usage(anthropic_usage_fields(_usage_of(response, "message")))[0]


def anthropic_usage_fields(usage: object) -> dict[str, int]:
    """The raw counters of an Anthropic usage object (absent ones left out)."""
    raw: dict[str, int] = {}
    if usage is None:
        return raw
    for name in ANTHROPIC_USAGE_FIELDS:
        value = as_int(field(usage, name))
        if value is not None:
            raw[name] = value
    thinking = as_int(field(field(usage, "output_tokens_details"), "thinking_tokens"))
    if thinking is not None:
        raw["thinking_tokens"] = thinking
    return raw


def anthropic_usage(raw: Mapping[str, int]) -> tuple[UsageDict, int | None]:
    """`(usage dict, cache-creation tokens)` from raw Anthropic counters."""
    out: UsageDict = {}
    cached = raw.get("cache_read_input_tokens")
    created = raw.get("cache_creation_input_tokens")
    input_tokens = raw.get("input_tokens")
    output_tokens = raw.get("output_tokens")
    if input_tokens is not None:
        input_tokens += (cached or 0) + (created or 0)
        out["input_tokens"] = input_tokens
    if output_tokens is not None:
        out["output_tokens"] = output_tokens
    if cached is not None:
        out["cached_tokens"] = cached
    if "thinking_tokens" in raw:
        out["reasoning_tokens"] = raw["thinking_tokens"]
    if input_tokens is not None and output_tokens is not None:
        out["total_tokens"] = input_tokens + output_tokens
    return out, created
