"""`usage_from_openai` / `usage_from_anthropic`: GenAI-style token counts for `set_usage`.

Inputs are the SDKs' own response and stream types (built from the fixtures), the same
as plain dicts, and usage objects alone. Missing counts are absent, never zero.
"""

from __future__ import annotations

import pytest

pytest.importorskip("openai", reason="needs the openai extra: pip install 'mv37-rollout[openai]'")
pytest.importorskip(
    "anthropic", reason="needs the anthropic extra: pip install 'mv37-rollout[anthropic]'"
)

from typing import TYPE_CHECKING, Any

from anthropic.types import Message, RawMessageDeltaEvent, RawMessageStartEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseCompletedEvent

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.integrations import usage_from_anthropic, usage_from_openai
from mv37.rollout.testing import CapturedSpans

if TYPE_CHECKING:
    from tests import fake_providers as fp
else:
    import fake_providers as fp

CHAT_USAGE = {
    "input_tokens": 1117,
    "output_tokens": 46,
    "cached_tokens": 1024,
    "reasoning_tokens": 0,
    "total_tokens": 1163,
}
RESPONSE_USAGE = {
    "input_tokens": 1536,
    "output_tokens": 300,
    "cached_tokens": 1280,
    "reasoning_tokens": 192,
    "total_tokens": 1836,
}


def both(model: Any, data: Any) -> list[Any]:
    """The SDK object built from `data`, and `data` itself."""
    return [model.model_validate(data), data]


@pytest.mark.parametrize("as_object", [True, False], ids=["sdk", "dict"])
def test_openai_chat_completion(as_object: bool) -> None:
    """A `ChatCompletion`: prompt/completion tokens, cached and reasoning details."""
    data = fp.fixture_json("openai_chat_completion.json")
    response = ChatCompletion.model_validate(data) if as_object else data
    assert usage_from_openai(response) == CHAT_USAGE


def test_openai_stream_usage_chunk_and_ordinary_chunks() -> None:
    """The final chunk of an `include_usage` stream has the usage; other chunks have none."""
    chunks = fp.sse_data("openai_chat_stream.sse")
    for chunk in both(ChatCompletionChunk, chunks[-1]):
        assert usage_from_openai(chunk) == {
            "input_tokens": 1117,
            "output_tokens": 7,
            "cached_tokens": 1024,
            "reasoning_tokens": 0,
            "total_tokens": 1124,
        }
    for chunk in both(ChatCompletionChunk, chunks[1]):
        assert usage_from_openai(chunk) == {}


def test_openai_response_and_completed_event() -> None:
    """A Responses API `Response` and its `response.completed` event give the same counts."""
    data = fp.fixture_json("openai_response.json")
    event = {"type": "response.completed", "sequence_number": 9, "response": data}
    for item in [*both(Response, data), *both(ResponseCompletedEvent, event)]:
        assert usage_from_openai(item) == RESPONSE_USAGE


def test_openai_usage_object_alone() -> None:
    """A usage object (or dict) on its own is read too."""
    response = ChatCompletion.model_validate(fp.fixture_json("openai_chat_completion.json"))
    assert usage_from_openai(response.usage) == CHAT_USAGE
    assert usage_from_openai({"input_tokens": 3, "output_tokens": 4}) == {
        "input_tokens": 3,
        "output_tokens": 4,
        "total_tokens": 7,
    }


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (None, {}),
        ({}, {}),
        ({"id": "x", "usage": None}, {}),
        ({"usage": {"prompt_tokens": 5}}, {"input_tokens": 5}),
        ({"usage": {"completion_tokens": 2}}, {"output_tokens": 2}),
        (
            {"usage": {"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": None}}},
            {"input_tokens": 5},
        ),
        (
            {"usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}},
            {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
        ),
        ({"usage": {"prompt_tokens": True}}, {}),
    ],
    ids=[
        "none",
        "empty",
        "null-usage",
        "input-only",
        "output-only",
        "null-detail",
        "zeros",
        "bool",
    ],
)
def test_openai_missing_fields_are_absent_not_zero(response: Any, expected: Any) -> None:
    """Only what the provider reported is returned; zeros that were reported are kept."""
    assert usage_from_openai(response) == expected


@pytest.mark.parametrize("as_object", [True, False], ids=["sdk", "dict"])
def test_anthropic_message_adds_cache_reads_and_writes(as_object: bool) -> None:
    """`input_tokens` counts uncached + cache reads + cache writes, as GenAI does."""
    data = fp.fixture_json("anthropic_message.json")
    message = Message.model_validate(data) if as_object else data
    assert usage_from_anthropic(message) == {
        "input_tokens": 25 + 3000 + 1200,
        "output_tokens": 12,
        "cached_tokens": 3000,
        "total_tokens": 4237,
    }


def test_anthropic_thinking_tokens_are_reasoning_tokens() -> None:
    """`output_tokens_details.thinking_tokens` is the reasoning count."""
    data = fp.fixture_json("anthropic_message_tool_use.json")
    for message in both(Message, data):
        assert usage_from_anthropic(message) == {
            "input_tokens": 480,
            "output_tokens": 95,
            "cached_tokens": 0,
            "reasoning_tokens": 40,
            "total_tokens": 575,
        }


def test_anthropic_stream_events() -> None:
    """`message_start` carries the input side; `message_delta` the cumulative output."""
    events = fp.sse_data("anthropic_stream.sse")
    start, delta = events[0], events[-2]
    assert start["type"] == "message_start"
    assert delta["type"] == "message_delta"
    for event in both(RawMessageStartEvent, start):
        assert usage_from_anthropic(event) == {
            "input_tokens": 3025,
            "output_tokens": 1,
            "cached_tokens": 3000,
            "total_tokens": 3026,
        }
    for event in both(RawMessageDeltaEvent, delta):
        assert usage_from_anthropic(event) == {
            "input_tokens": 3025,
            "output_tokens": 12,
            "cached_tokens": 3000,
            "total_tokens": 3037,
        }
    tool_delta = fp.sse_data("anthropic_stream_tool_use.sse")[-2]
    for event in both(RawMessageDeltaEvent, tool_delta):
        # This delta reports only output counts: no input side is invented.
        assert usage_from_anthropic(event) == {"output_tokens": 95, "reasoning_tokens": 40}


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({}, {}),
        ({"output_tokens": 3}, {"output_tokens": 3}),
        ({"cache_read_input_tokens": 9}, {"cached_tokens": 9}),
        (
            {"input_tokens": 1, "cache_read_input_tokens": None, "output_tokens": 2},
            {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        ),
    ],
    ids=["empty", "output-only", "cache-only", "null-cache"],
)
def test_anthropic_missing_fields_are_absent_not_zero(usage: Any, expected: Any) -> None:
    """A counter the provider left out stays out."""
    assert usage_from_anthropic({"usage": usage}) == expected
    assert usage_from_anthropic(None) == {}


def test_helpers_feed_set_usage(captured: CapturedSpans) -> None:
    """The dicts are `set_usage` keyword arguments, with the GenAI mirrors written."""
    chat = ChatCompletion.model_validate(fp.fixture_json("openai_chat_completion.json"))
    message = Message.model_validate(fp.fixture_json("anthropic_message.json"))

    with rollout.trace("manual") as trace:
        with trace.llm("openai", model="gpt-4o") as span:
            span.set_usage(**usage_from_openai(chat))
        with trace.llm("anthropic", model="claude-sonnet-4-6") as span:
            span.set_usage(**usage_from_anthropic(message))

    spans = {s["name"]: s["attributes"] for s in captured.as_dicts()}
    assert spans["chat gpt-4o"][sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1024
    assert spans["chat claude-sonnet-4-6"][sc.GEN_AI_USAGE_INPUT_TOKENS] == 4225
    assert spans["invoke_workflow manual"][sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 1163 + 4237
