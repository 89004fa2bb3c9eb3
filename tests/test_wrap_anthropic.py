"""`wrap()` on real Anthropic clients (sync and async) over a fake transport.

`messages.create` (plain and `stream=True`) and the `messages.stream(...)` helper, with
the SDK's `MessageStreamManager` / `MessageStream` behaviour compared against an
unwrapped client on the same transport.
"""

from __future__ import annotations

import pytest

pytest.importorskip(
    "anthropic", reason="needs the anthropic extra: pip install 'mv37-rollout[anthropic]'"
)

import gc
import json
import sys
from typing import TYPE_CHECKING, Any

import anthropic
from anthropic.lib.streaming import AsyncMessageStream, MessageStream
from anthropic.types import Message

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.integrations import MissingExtraError, UnsupportedIntegrationError, wrap
from mv37.rollout.testing import CapturedSpans, capture_spans

if TYPE_CHECKING:
    from tests import fake_providers as fp
    from tests.conftest import assert_registered
else:
    import fake_providers as fp
    from conftest import assert_registered

KINDS = pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
MODEL = "claude-sonnet-4-6"
SYSTEM = "You are a concise assistant."
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
STREAM_TEXT = "Paris is the capital of France."


def request(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 1024, "messages": MESSAGES, **extra}


def ours(captured: CapturedSpans) -> list[dict[str, Any]]:
    return [s for s in captured.as_dicts() if s["scope"] == "mv37.rollout"]


def one_llm(captured: CapturedSpans) -> dict[str, Any]:
    spans = [s for s in ours(captured) if s["type"] == "llm"]
    assert len(spans) == 1, [s["name"] for s in spans]
    return spans[0]


async def read_helper(
    client: Any, is_async: bool, how: str, limit: int | None = None, **kwargs: Any
) -> tuple[Any, list[Any], Any]:
    """Run `messages.stream(...)` in a `with` block: `(stream, items read, final)`.

    `how` is `text` (read `text_stream`), `events` (iterate), `final` (only
    `get_final_message()`), or `partial` (read `limit` events and leave the block).
    """
    manager = client.messages.stream(**request(**kwargs))
    final: Any = None
    items: list[Any] = []
    if is_async:
        async with manager as stream:
            if how == "text":
                items = [t async for t in stream.text_stream]
            elif how in ("events", "partial"):
                items = await fp.collect(stream, limit=limit)
            if how != "partial":
                final = await stream.get_final_message()
    else:
        with manager as stream:
            if how == "text":
                items = list(stream.text_stream)
            elif how in ("events", "partial"):
                items = await fp.collect(stream, limit=limit)
            if how != "partial":
                final = stream.get_final_message()
    return stream, items, final


# -- messages.create ---------------------------------------------------------------------


@KINDS
async def test_message_create(captured: CapturedSpans, is_async: bool) -> None:
    """A message: same result, system instructions, usage with cache reads and writes added."""
    api = fp.FakeAPI()
    api.reply("anthropic_message.json", times=2)
    client = wrap(fp.anthropic_client(api, is_async=is_async))
    plain = fp.anthropic_client(api, is_async=is_async)
    kwargs = request(system=SYSTEM, stop_sequences=["\n\nHuman:"], metadata={"user_id": "u-1"})

    result = await fp.resolve(client.messages.create(**kwargs))
    expected = await fp.resolve(plain.messages.create(**kwargs))

    assert type(result) is Message
    assert result.model_dump() == expected.model_dump()
    assert api.requests[0].body == api.requests[1].body
    spans = ours(captured)
    assert [s["type"] for s in spans] == ["llm", "trace"]
    llm, trace = spans
    assert llm["parent_id"] == trace["span_id"]
    assert llm["name"] == f"chat {MODEL}"
    assert trace["name"] == "invoke_workflow anthropic messages.create"
    attrs = llm["attributes"]
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert attrs[sc.ROLLOUT_INTEGRATION_NAME] == "anthropic"
    assert attrs[sc.ROLLOUT_INTEGRATION_VERSION] == anthropic.__version__
    assert attrs[sc.ROLLOUT_INTEGRATION_METHOD] == "messages.create"
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == MODEL
    assert attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] == 1024
    assert attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] == ("\n\nHuman:",)
    assert json.loads(attrs[sc.LLM_INVOCATION_PARAMETERS]) == {
        "model": MODEL,
        "max_tokens": 1024,
        "stop_sequences": ["\n\nHuman:"],
        "metadata": {"user_id": "u-1"},
    }
    assert json.loads(attrs[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": SYSTEM}]
    assert json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": MESSAGES[0]["content"]}]}
    ]
    assert json.loads(attrs[sc.INPUT_VALUE]) == {"system": SYSTEM, "messages": MESSAGES}
    assert json.loads(attrs[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Paris is the capital of France."}],
            "finish_reason": "end_turn",
        }
    ]
    assert attrs[sc.OUTPUT_VALUE] == "Paris is the capital of France."
    assert attrs[sc.GEN_AI_RESPONSE_ID] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "claude-sonnet-4-6"
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    # 25 uncached + 3000 read from the cache + 1200 written to it (GenAI counts all three).
    assert attrs[sc.ROLLOUT_USAGE_INPUT_TOKENS] == 4225
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 4225
    assert attrs[sc.ROLLOUT_USAGE_CACHED_TOKENS] == 3000
    assert attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 3000
    assert attrs[sc.ROLLOUT_USAGE_CACHE_CREATION_TOKENS] == 1200
    assert attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 1200
    assert attrs[sc.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE] == 1200
    assert attrs[sc.ROLLOUT_USAGE_OUTPUT_TOKENS] == 12
    assert attrs[sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 4237
    assert sc.ROLLOUT_USAGE_REASONING_TOKENS not in attrs  # not reported: absent, not zero


@KINDS
async def test_tool_use_thinking_and_tool_results(captured: CapturedSpans, is_async: bool) -> None:
    """Thinking, text and tool_use blocks become reasoning, text and tool_call parts."""
    api = fp.FakeAPI()
    api.reply("anthropic_message_tool_use.json")
    client = wrap(fp.anthropic_client(api, is_async=is_async))
    conversation = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_prev", "name": "lookup", "input": {"q": "Paris"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_prev",
                    "content": [{"type": "text", "text": "city id 42"}],
                },
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"},
                },
            ],
        },
    ]
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]

    await fp.resolve(
        client.messages.create(
            model=MODEL,
            max_tokens=2048,
            messages=conversation,
            tools=tools,
            thinking={"type": "adaptive"},
        )
    )

    attrs = one_llm(captured)["attributes"]
    assert json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "name": "lookup",
                    "id": "toolu_prev",
                    "arguments": {"q": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "parts": [
                {"type": "tool_call_response", "response": "city id 42", "id": "toolu_prev"},
                {"type": "blob", "modality": "image", "mime_type": "image/jpeg"},
            ],
        },
    ]
    assert json.loads(attrs[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "reasoning",
                    "content": "The user wants the weather in Paris; I should call get_weather.",
                },
                {"type": "text", "content": "I'll check the current weather in Paris."},
                {
                    "type": "tool_call",
                    "name": "get_weather",
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "arguments": {"city": "Paris", "unit": "celsius"},
                },
            ],
            "finish_reason": "tool_use",
        }
    ]
    assert json.loads(attrs[sc.GEN_AI_TOOL_DEFINITIONS]) == tools
    assert attrs[sc.ROLLOUT_LLM_REASONING_MODE] == "adaptive"
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)
    assert attrs[sc.ROLLOUT_USAGE_REASONING_TOKENS] == 40
    assert attrs[sc.ROLLOUT_USAGE_INPUT_TOKENS] == 480
    assert attrs[sc.ROLLOUT_USAGE_CACHED_TOKENS] == 0
    assert "/9j/4AAQ" not in attrs[sc.GEN_AI_INPUT_MESSAGES]  # image bytes are not copied


@KINDS
async def test_create_stream(captured: CapturedSpans, is_async: bool) -> None:
    """`create(stream=True)`: same raw events in order; usage merged from start and delta."""
    api = fp.FakeAPI()
    api.reply("anthropic_stream.sse", times=2)
    client = wrap(fp.anthropic_client(api, is_async=is_async))
    plain = fp.anthropic_client(api, is_async=is_async)

    stream = await fp.resolve(client.messages.create(**request(stream=True)))
    assert isinstance(stream, anthropic.AsyncStream if is_async else anthropic.Stream)
    events = await fp.collect(stream)
    expected = await fp.collect(await fp.resolve(plain.messages.create(**request(stream=True))))

    assert fp.dumps(events) == fp.dumps(expected)
    assert [e.type for e in events] == [
        e["type"] for e in fp.sse_data("anthropic_stream.sse") if e["type"] != "ping"
    ]
    attrs = one_llm(captured)["attributes"]
    assert attrs[sc.ROLLOUT_LLM_STREAM] is True
    assert attrs[sc.ROLLOUT_LLM_STREAM_END_REASON] == "exhausted"
    assert attrs[sc.ROLLOUT_LLM_STREAM_CHUNK_COUNT] == 5
    assert attrs[sc.ROLLOUT_LLM_STREAM_PREVIEW] == STREAM_TEXT
    assert attrs[sc.ROLLOUT_LLM_TIME_TO_FIRST_CHUNK] >= 0
    assert attrs[sc.OUTPUT_VALUE] == STREAM_TEXT
    assert attrs[sc.GEN_AI_RESPONSE_ID] == "msg_01SoW3Fk9YtH2xV8bJmQ7cRn"
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[sc.ROLLOUT_USAGE_INPUT_TOKENS] == 3025
    assert attrs[sc.ROLLOUT_USAGE_CACHED_TOKENS] == 3000
    assert attrs[sc.ROLLOUT_USAGE_OUTPUT_TOKENS] == 12  # message_delta's cumulative count
    assert attrs[sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 3037


@KINDS
async def test_create_stream_tool_use(captured: CapturedSpans, is_async: bool) -> None:
    """Thinking, text and `input_json_delta` pieces add up to reasoning/text/tool_call parts."""
    api = fp.FakeAPI()
    api.reply("anthropic_stream_tool_use.sse")
    client = wrap(fp.anthropic_client(api, is_async=is_async))

    await fp.collect(await fp.resolve(client.messages.create(**request(stream=True))))

    attrs = one_llm(captured)["attributes"]
    assert json.loads(attrs[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "reasoning",
                    "content": "The user wants the weather in Paris; I should call get_weather.",
                },
                {"type": "text", "content": "I'll check the weather."},
                {
                    "type": "tool_call",
                    "name": "get_weather",
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "arguments": {"city": "Paris", "unit": "celsius"},
                },
            ],
            "finish_reason": "tool_use",
        }
    ]
    assert attrs[sc.ROLLOUT_LLM_STREAM_PREVIEW] == (
        'I\'ll check the weather.{"city": "Paris", "unit": "celsius"}'
    )
    assert attrs[sc.ROLLOUT_USAGE_INPUT_TOKENS] == 2528  # 480 + 2048 written to the cache
    assert attrs[sc.ROLLOUT_USAGE_CACHE_CREATION_TOKENS] == 2048
    assert attrs[sc.ROLLOUT_USAGE_REASONING_TOKENS] == 40
    assert attrs[sc.ROLLOUT_USAGE_OUTPUT_TOKENS] == 95


@KINDS
async def test_create_stream_garbage_collected_half_read(
    captured: CapturedSpans, is_async: bool
) -> None:
    """A raw stream dropped half-read ends its span when collected."""
    api = fp.FakeAPI()
    api.reply("anthropic_stream.sse")
    client = wrap(fp.anthropic_client(api, is_async=is_async))

    stream = await fp.resolve(client.messages.create(**request(stream=True)))
    await fp.collect(stream, limit=4)
    assert ours(captured) == []
    del stream
    gc.collect()

    attrs = one_llm(captured)["attributes"]
    assert attrs[sc.ROLLOUT_LLM_STREAM_END_REASON] == "garbage_collected"
    assert attrs[sc.ROLLOUT_LLM_STREAM_PREVIEW] == "Paris is the"
    assert attrs[sc.ROLLOUT_USAGE_CACHED_TOKENS] == 3000  # from message_start, already read


# -- the messages.stream helper -------------------------------------------------------------


@KINDS
async def test_stream_helper_text_stream_and_final_message(
    captured: CapturedSpans, is_async: bool
) -> None:
    """`messages.stream`: `text_stream` and `get_final_message()` work as without `wrap()`."""
    api = fp.FakeAPI()
    api.reply("anthropic_stream.sse", times=2)
    client = wrap(fp.anthropic_client(api, is_async=is_async))
    plain = fp.anthropic_client(api, is_async=is_async)

    stream, texts, final = await read_helper(client, is_async, "text", system=SYSTEM)
    _, expected_texts, expected_final = await read_helper(plain, is_async, "text", system=SYSTEM)

    assert isinstance(stream, AsyncMessageStream if is_async else MessageStream)
    assert texts == expected_texts == ["Paris", " is the", " capital", " of France", "."]
    assert final.model_dump() == expected_final.model_dump()
    assert api.requests[0].body == api.requests[1].body
    spans = ours(captured)
    assert [s["type"] for s in spans] == ["llm", "trace"]
    attrs = spans[0]["attributes"]
    assert spans[1]["name"] == "invoke_workflow anthropic messages.stream"
    assert attrs[sc.ROLLOUT_INTEGRATION_METHOD] == "messages.stream"
    assert attrs[sc.ROLLOUT_LLM_STREAM] is True
    assert attrs[sc.ROLLOUT_LLM_STREAM_END_REASON] == "exhausted"
    assert attrs[sc.ROLLOUT_LLM_STREAM_PREVIEW] == STREAM_TEXT
    assert attrs[sc.OUTPUT_VALUE] == STREAM_TEXT
    assert attrs[sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 3037
    assert json.loads(attrs[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": SYSTEM}]


@KINDS
async def test_stream_helper_events_are_the_same(captured: CapturedSpans, is_async: bool) -> None:
    """Iterating the helper stream yields the SDK's events, synthesized ones included."""
    api = fp.FakeAPI()
    api.reply("anthropic_stream_tool_use.sse", times=2)
    client = wrap(fp.anthropic_client(api, is_async=is_async))
    plain = fp.anthropic_client(api, is_async=is_async)

    _, events, final = await read_helper(client, is_async, "events")
    _, expected, expected_final = await read_helper(plain, is_async, "events")

    assert [e.type for e in events] == [e.type for e in expected]
    assert "text" in [e.type for e in events]
    assert fp.dumps(events) == fp.dumps(expected)
    assert final.model_dump() == expected_final.model_dump()
    attrs = one_llm(captured)["attributes"]
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)
    assert attrs[sc.ROLLOUT_LLM_STREAM_CHUNK_COUNT] == 5  # 2 text + 3 non-empty JSON deltas


@KINDS
async def test_stream_helper_final_message_only(captured: CapturedSpans, is_async: bool) -> None:
    """`get_final_message()` alone reads the stream through the proxy: the span sees it all."""
    api = fp.FakeAPI()
    api.reply("anthropic_stream.sse")
    client = wrap(fp.anthropic_client(api, is_async=is_async))

    _, _, final = await read_helper(client, is_async, "final")

    assert final.content[0].text == STREAM_TEXT
    attrs = one_llm(captured)["attributes"]
    assert attrs[sc.ROLLOUT_LLM_STREAM_END_REASON] == "exhausted"
    assert attrs[sc.OUTPUT_VALUE] == STREAM_TEXT
    assert attrs[sc.ROLLOUT_USAGE_OUTPUT_TOKENS] == 12


@KINDS
async def test_stream_helper_get_final_text(captured: CapturedSpans, is_async: bool) -> None:
    """`get_final_text()` works through the proxy too."""
    api = fp.FakeAPI()
    api.reply("anthropic_stream.sse")
    client = wrap(fp.anthropic_client(api, is_async=is_async))

    if is_async:
        async with client.messages.stream(**request()) as stream:
            text = await stream.get_final_text()
    else:
        with client.messages.stream(**request()) as stream:
            text = stream.get_final_text()

    assert text == STREAM_TEXT
    assert one_llm(captured)["attributes"][sc.ROLLOUT_LLM_STREAM_PREVIEW] == STREAM_TEXT


@KINDS
async def test_stream_helper_left_early_ends_the_span(
    captured: CapturedSpans, is_async: bool
) -> None:
    """Leaving the `with` block half-read ends the span as `closed`, with what was read."""
    api = fp.FakeAPI()
    api.reply("anthropic_stream.sse")
    client = wrap(fp.anthropic_client(api, is_async=is_async))

    await read_helper(client, is_async, "partial", limit=4)

    attrs = one_llm(captured)["attributes"]
    assert attrs[sc.ROLLOUT_LLM_STREAM_END_REASON] == "closed"
    assert attrs[sc.ROLLOUT_LLM_STREAM_PREVIEW] == "Paris"
    assert sc.GEN_AI_RESPONSE_FINISH_REASONS not in attrs


@KINDS
async def test_stream_helper_starts_its_span_when_entered(
    captured: CapturedSpans, is_async: bool
) -> None:
    """The request happens when the manager is entered; a manager never entered records nothing."""
    api = fp.FakeAPI()
    api.reply("anthropic_stream.sse")
    client = wrap(fp.anthropic_client(api, is_async=is_async))

    if not is_async:  # an async manager never entered leaves an un-awaited coroutine
        client.messages.stream(**request())
    assert api.requests == []
    with rollout.trace("agent") as trace:
        await read_helper(client, is_async, "text")

    spans = ours(captured)
    assert [s["type"] for s in spans] == ["llm", "trace"]
    assert spans[0]["parent_id"] == trace.span_id


# -- errors ----------------------------------------------------------------------------------

ERRORS = pytest.mark.parametrize(
    ("status", "error_type", "fixture"),
    [
        (429, anthropic.RateLimitError, "anthropic_error_429.json"),
        (500, anthropic.InternalServerError, "anthropic_error_500.json"),
    ],
    ids=["429", "500"],
)


@KINDS
@ERRORS
@pytest.mark.parametrize("call", ["create", "create_stream", "stream_helper"])
async def test_provider_errors_propagate_unchanged_and_mark_the_span(
    captured: CapturedSpans,
    is_async: bool,
    status: int,
    error_type: type[anthropic.APIStatusError],
    fixture: str,
    call: str,
) -> None:
    """429/500 raise the SDK's own exception (the helper raises on enter); the span is ERROR."""
    api = fp.FakeAPI()
    api.reply(fixture, status=status)
    client = wrap(fp.anthropic_client(api, is_async=is_async))

    async def make_call() -> object:
        if call == "stream_helper":
            return await read_helper(client, is_async, "text")
        return await fp.resolve(client.messages.create(**request(stream=call == "create_stream")))

    with pytest.raises(error_type) as caught:
        await make_call()

    assert type(caught.value) is error_type
    assert caught.value.status_code == status
    spans = ours(captured)
    assert [(s["type"], s["status"]) for s in spans] == [("llm", "ERROR"), ("trace", "ERROR")]
    assert spans[0]["attributes"][sc.ERROR_TYPE] == error_type.__name__


@KINDS
async def test_error_event_mid_stream(captured: CapturedSpans, is_async: bool) -> None:
    """An `error` event mid-stream raises what the SDK raises; the span keeps the text read."""
    api = fp.FakeAPI()
    api.reply("anthropic_stream_overloaded.sse", times=2)
    client = wrap(fp.anthropic_client(api, is_async=is_async))
    plain = fp.anthropic_client(api, is_async=is_async)

    with pytest.raises(anthropic.APIStatusError) as expected:
        await fp.collect(await fp.resolve(plain.messages.create(**request(stream=True))))
    with pytest.raises(anthropic.APIStatusError) as caught:
        await fp.collect(await fp.resolve(client.messages.create(**request(stream=True))))

    assert type(caught.value) is type(expected.value)
    assert caught.value.body == expected.value.body
    llm = one_llm(captured)
    assert llm["status"] == "ERROR"
    attrs = llm["attributes"]
    assert attrs[sc.ROLLOUT_LLM_STREAM_END_REASON] == "error"
    assert attrs[sc.ROLLOUT_LLM_STREAM_PREVIEW] == "Paris is the"
    assert attrs[sc.ERROR_TYPE] == "APIStatusError"


# -- alongside the SDK's own telemetry, switches, wrap() --------------------------------------


async def test_sdk_own_span_nests_under_the_llm_span() -> None:
    """With `dedupe_llm_spans=False` the Anthropic SDK's own OTel call span is kept, as a
    child of our llm span (it is current); by default it is not exported
    (tests/test_dedupe_llm_spans.py)."""
    api = fp.FakeAPI()
    api.reply("anthropic_message.json")
    with capture_spans(dedupe_llm_spans=False) as captured:
        client = wrap(fp.anthropic_client(api, is_async=False))
        client.messages.create(**request())
        spans = captured.as_dicts()
        llm = one_llm(captured)
        assert_registered(captured)  # as the `captured` fixture checks
    sdk_spans = [s for s in spans if s["scope"] == "com.anthropic.sdk.python"]
    assert [s["parent_id"] for s in sdk_spans] == [llm["span_id"]]


@KINDS
async def test_no_content_when_content_capture_is_off(is_async: bool) -> None:
    """`capture_content=False`: the helper stream records counts and timing, never text."""
    api = fp.FakeAPI()
    api.reply("anthropic_stream.sse")
    with capture_spans(capture_content=False) as captured:
        client = wrap(fp.anthropic_client(api, is_async=is_async))
        _, texts, _ = await read_helper(client, is_async, "text", system=SYSTEM)
        attrs = one_llm(captured)["attributes"]

    assert "".join(texts) == STREAM_TEXT
    assert not [v for v in attrs.values() if "Paris" in str(v) or SYSTEM in str(v)]
    assert attrs[sc.ROLLOUT_LLM_STREAM_PREVIEW] == ""
    assert attrs[sc.ROLLOUT_LLM_STREAM_CHUNK_COUNT] == 5
    assert attrs[sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 3037


async def test_wrap_twice_is_a_no_op_and_touches_only_that_object(
    captured: CapturedSpans,
) -> None:
    """A second `wrap()` changes nothing; the `Messages` class and other clients are untouched."""
    from anthropic.resources.messages import Messages

    original = (Messages.create, Messages.stream)
    api = fp.FakeAPI()
    api.reply("anthropic_message.json", times=2)
    client = fp.anthropic_client(api, is_async=False)
    other = fp.anthropic_client(api, is_async=False)

    assert wrap(client) is client
    assert wrap(client) is client
    client.messages.create(**request())
    other.messages.create(**request())

    assert (Messages.create, Messages.stream) == original
    assert len([s for s in ours(captured) if s["type"] == "llm"]) == 1


class _DuckMessages:
    """An Anthropic-compatible gateway: dict messages, a generator of dict events."""

    def create(self, **kwargs: Any) -> Any:
        if kwargs.get("stream"):
            return (event for event in fp.sse_data("anthropic_stream.sse"))
        return fp.fixture_json("anthropic_message.json")


class AnthropicGateway:
    """Shaped like `anthropic.Anthropic` (only `messages.create`)."""

    def __init__(self) -> None:
        self.messages = _DuckMessages()


async def test_provider_forcing_on_a_duck_typed_gateway(captured: CapturedSpans) -> None:
    """`provider="anthropic"` instruments a compatible client; dict events are read too."""
    gateway = AnthropicGateway()
    with pytest.raises(UnsupportedIntegrationError, match="AnthropicGateway"):
        wrap(gateway)

    wrap(gateway, provider="anthropic")
    message = gateway.messages.create(**request())
    events = list(gateway.messages.create(**request(stream=True)))

    assert message == fp.fixture_json("anthropic_message.json")
    assert events == fp.sse_data("anthropic_stream.sse")
    first, second = [s for s in ours(captured) if s["type"] == "llm"]
    assert first["attributes"][sc.ROLLOUT_USAGE_INPUT_TOKENS] == 4225
    assert first["attributes"][sc.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert second["attributes"][sc.ROLLOUT_LLM_STREAM_PREVIEW] == STREAM_TEXT
    assert second["attributes"][sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 3037


def test_forcing_anthropic_without_the_package_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`provider="anthropic"` with `anthropic` not importable raises `MissingExtraError`."""
    monkeypatch.setitem(sys.modules, "anthropic", None)

    with pytest.raises(MissingExtraError, match=r"pip install 'mv37-rollout\[anthropic\]'"):
        wrap(AnthropicGateway(), provider="anthropic")
