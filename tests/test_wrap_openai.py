"""`wrap()` on real OpenAI clients (sync and async) over a fake transport: spans and behaviour.

Every test runs the real `openai` SDK against `fake_providers.FakeAPI`, which serves the
JSON and SSE fixtures in `tests/fixtures/providers/`. Assertions are on the exported
spans and on what the caller gets back, compared with an unwrapped client on the same
transport.
"""

from __future__ import annotations

import pytest

pytest.importorskip("openai", reason="needs the openai extra: pip install 'mv37-rollout[openai]'")

import gc
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import openai
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

import mv37.rollout as rollout
from mv37.rollout import _diagnostics
from mv37.rollout import semconv as sc
from mv37.rollout.integrations import MissingExtraError, UnsupportedIntegrationError, wrap
from mv37.rollout.integrations import _messages as messages_module
from mv37.rollout.integrations._openai import ChatCompletions
from mv37.rollout.testing import CapturedSpans, capture_spans

if TYPE_CHECKING:
    from tests import fake_providers as fp
else:
    import fake_providers as fp

KINDS = pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
CHAT_MESSAGES = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
CHAT_ID = "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
OI_TEMPLATES = (
    messages_module.OI_INPUT_MESSAGES + ".",
    messages_module.OI_OUTPUT_MESSAGES + ".",
    messages_module.OI_TOOLS + ".",
)


def llm_spans(captured: CapturedSpans) -> list[dict[str, Any]]:
    return [s for s in captured.as_dicts() if s["type"] == "llm"]


def one_llm(captured: CapturedSpans) -> dict[str, Any]:
    spans = llm_spans(captured)
    assert len(spans) == 1, [s["name"] for s in spans]
    return spans[0]


def gen_ai_json(attrs: dict[str, Any], key: str) -> Any:
    return json.loads(attrs[key])


@pytest.fixture
def openinference_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register OpenInference's flattened message templates, as semconv/ will."""
    monkeypatch.setattr(sc, "TEMPLATE_PREFIXES", (*sc.TEMPLATE_PREFIXES, *OI_TEMPLATES))


# -- non-streamed chat completions --------------------------------------------------------


@KINDS
async def test_chat_completion_records_every_attribute(
    captured: CapturedSpans, is_async: bool
) -> None:
    """A chat completion outside a trace: one `llm` span, exactly these attributes."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json", times=2)
    client = wrap(fp.openai_client(api, is_async=is_async))
    plain = fp.openai_client(api, is_async=is_async)
    kwargs: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": CHAT_MESSAGES,
        "temperature": 0.2,
        "max_tokens": 256,
        "top_p": 0.9,
        "seed": 7,
        "stop": ["END"],
    }

    result = await fp.resolve(client.chat.completions.create(**kwargs))
    expected = await fp.resolve(plain.chat.completions.create(**kwargs))

    assert type(result) is ChatCompletion
    assert result.model_dump() == expected.model_dump()
    assert api.requests[0].body == api.requests[1].body  # the request is untouched too
    llm = one_llm(captured)
    assert llm["name"] == "chat gpt-4o"
    assert llm["kind"] == "CLIENT"
    assert llm["status"] == "UNSET"
    attrs = dict(llm["attributes"])
    input_json = json.dumps(CHAT_MESSAGES)
    input_messages = [
        {"role": "system", "parts": [{"type": "text", "content": CHAT_MESSAGES[0]["content"]}]},
        {"role": "user", "parts": [{"type": "text", "content": CHAT_MESSAGES[1]["content"]}]},
    ]
    output_messages = [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "The capital of France is Paris."}],
            "finish_reason": "stop",
        }
    ]
    assert gen_ai_json(attrs, sc.GEN_AI_INPUT_MESSAGES) == input_messages
    assert gen_ai_json(attrs, sc.GEN_AI_OUTPUT_MESSAGES) == output_messages
    assert gen_ai_json(attrs, sc.LLM_INVOCATION_PARAMETERS) == {
        k: v for k, v in kwargs.items() if k != "messages"
    }
    for key in (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.LLM_INVOCATION_PARAMETERS):
        attrs.pop(key)
    flattened = {k: attrs.pop(k) for k in list(attrs) if k.startswith(OI_TEMPLATES)}
    assert flattened == {
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": CHAT_MESSAGES[0]["content"],
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": CHAT_MESSAGES[1]["content"],
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "The capital of France is Paris.",
    }
    assert attrs == {
        sc.ROLLOUT_SPAN_TYPE: "llm",
        sc.ROLLOUT_SPAN_NAME: "openai.chat.completions.create",
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.OPENINFERENCE_SPAN_KIND: "LLM",
        sc.ROLLOUT_INTEGRATION_NAME: "openai",
        sc.ROLLOUT_INTEGRATION_METHOD: "chat.completions.create",
        sc.ROLLOUT_INTEGRATION_VERSION: openai.__version__,
        sc.ROLLOUT_LLM_MODEL: "gpt-4o",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
        sc.LLM_MODEL_NAME: "gpt-4o",
        sc.ROLLOUT_LLM_PROVIDER: "openai",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.LLM_PROVIDER: "openai",
        sc.ROLLOUT_LLM_TEMPERATURE: 0.2,
        sc.GEN_AI_REQUEST_TEMPERATURE: 0.2,
        sc.ROLLOUT_LLM_STREAM: False,
        sc.GEN_AI_REQUEST_STREAM: False,
        sc.GEN_AI_REQUEST_MAX_TOKENS: 256,
        sc.GEN_AI_REQUEST_TOP_P: 0.9,
        sc.GEN_AI_REQUEST_SEED: 7,
        sc.GEN_AI_REQUEST_STOP_SEQUENCES: ("END",),
        sc.ROLLOUT_INPUT: input_json,
        sc.ROLLOUT_INPUT_MIME_TYPE: "application/json",
        sc.INPUT_VALUE: input_json,
        sc.INPUT_MIME_TYPE: "application/json",
        sc.ROLLOUT_OUTPUT: "The capital of France is Paris.",
        sc.ROLLOUT_OUTPUT_MIME_TYPE: "text/plain",
        sc.OUTPUT_VALUE: "The capital of France is Paris.",
        sc.OUTPUT_MIME_TYPE: "text/plain",
        sc.ROLLOUT_LLM_RESPONSE_ID: CHAT_ID,
        sc.GEN_AI_RESPONSE_ID: CHAT_ID,
        sc.ROLLOUT_LLM_MODEL_VERSION: "gpt-4o-2024-08-06",
        sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
        sc.LLM_RESPONSE_MODEL_NAME: "gpt-4o-2024-08-06",
        sc.ROLLOUT_LLM_FINISH_REASONS: ("stop",),
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
        sc.ROLLOUT_USAGE_INPUT_TOKENS: 1117,
        sc.GEN_AI_USAGE_INPUT_TOKENS: 1117,
        sc.LLM_TOKEN_COUNT_PROMPT: 1117,
        sc.ROLLOUT_USAGE_OUTPUT_TOKENS: 46,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 46,
        sc.LLM_TOKEN_COUNT_COMPLETION: 46,
        sc.ROLLOUT_USAGE_CACHED_TOKENS: 1024,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1024,
        sc.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ: 1024,
        sc.ROLLOUT_USAGE_REASONING_TOKENS: 0,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 0,
        sc.LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING: 0,
        sc.ROLLOUT_USAGE_TOTAL_TOKENS: 1163,
        sc.LLM_TOKEN_COUNT_TOTAL: 1163,
    }


@KINDS
async def test_call_outside_a_trace_gets_a_one_call_trace(
    captured: CapturedSpans, is_async: bool
) -> None:
    """With no active trace the llm span is the child of a trace that ends with it."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    client = wrap(fp.openai_client(api, is_async=is_async))

    await fp.resolve(client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES))

    spans = [s for s in captured.as_dicts() if s["scope"] == "mv37.rollout"]
    assert [s["type"] for s in spans] == ["llm", "trace"]
    llm, trace = spans
    assert trace["name"] == "invoke_workflow openai chat.completions.create"
    assert trace["parent_id"] is None
    assert llm["parent_id"] == trace["span_id"]
    assert llm["trace_id"] == trace["trace_id"]
    assert trace["attributes"][sc.ROLLOUT_USAGE_INPUT_TOKENS] == 1117  # the trace sums usage


@KINDS
async def test_call_inside_a_trace_is_its_child_and_current_during_the_request(
    captured: CapturedSpans, is_async: bool
) -> None:
    """Inside `rollout.trace(...)` the llm span is a child, and is current while the SDK sends."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    seen: list[Any] = []
    api.on_request = lambda: seen.append(rollout.current_span())
    client = wrap(fp.openai_client(api, is_async=is_async))

    with rollout.trace("support_agent", user_id="u-1") as trace:
        await fp.resolve(client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES))
        assert rollout.current_span() is None  # detached again after the call

    spans = [s for s in captured.as_dicts() if s["scope"] == "mv37.rollout"]
    assert [s["type"] for s in spans] == ["llm", "trace"]
    llm = spans[0]
    assert llm["parent_id"] == trace.span_id
    assert llm["attributes"][sc.ROLLOUT_USER_ID] == "u-1"  # trace context copied onto it
    assert len(seen) == 1
    assert seen[0] is not None
    assert seen[0].span_id == llm["span_id"]


@KINDS
async def test_chat_tool_calls_and_reasoning_tokens(
    captured: CapturedSpans, is_async: bool
) -> None:
    """Tool calls become `tool_call` parts (arguments parsed); reasoning tokens are recorded."""
    api = fp.FakeAPI()
    api.reply("openai_chat_tool_calls.json")
    client = wrap(fp.openai_client(api, is_async=is_async))
    conversation = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_prev",
                    "type": "function",
                    "function": {"name": "lookup_city", "arguments": '{"q": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_prev", "content": '{"id": 42}'},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And this one?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/paris.png"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
    ]
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]

    result = await fp.resolve(
        client.chat.completions.create(
            model="o4-mini", messages=conversation, tools=tools, reasoning_effort="low"
        )
    )

    assert result.choices[0].finish_reason == "tool_calls"
    attrs = one_llm(captured)["attributes"]
    assert gen_ai_json(attrs, sc.GEN_AI_INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "name": "lookup_city",
                    "id": "call_prev",
                    "arguments": {"q": "Paris"},
                }
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "response": '{"id": 42}', "id": "call_prev"}],
        },
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "And this one?"},
                {"type": "uri", "modality": "image", "uri": "https://example.com/paris.png"},
                {"type": "blob", "modality": "image", "mime_type": "image/png"},
            ],
        },
    ]
    assert gen_ai_json(attrs, sc.GEN_AI_OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "name": "get_weather",
                    "id": "call_Ub3kqRz1Qn4mXv8sT2pLw9Ye",
                    "arguments": {"city": "Paris", "unit": "celsius"},
                },
                {
                    "type": "tool_call",
                    "name": "get_time",
                    "id": "call_9aKq2Jm5Hc7Df1Gs3Lp0Ov6N",
                    "arguments": {"timezone": "Europe/Paris"},
                },
            ],
            "finish_reason": "tool_calls",
        }
    ]
    assert gen_ai_json(attrs, sc.GEN_AI_TOOL_DEFINITIONS) == tools
    assert attrs[sc.ROLLOUT_LLM_FINISH_REASONS] == ("tool_calls",)
    assert attrs[sc.ROLLOUT_LLM_REASONING_MODE] == "low"
    assert attrs[sc.ROLLOUT_USAGE_REASONING_TOKENS] == 64
    assert attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 64
    # Not a text-only answer: the Rollout output is the output messages.
    assert json.loads(attrs[sc.ROLLOUT_OUTPUT]) == gen_ai_json(attrs, sc.GEN_AI_OUTPUT_MESSAGES)


@pytest.mark.usefixtures("openinference_registered")
async def test_openinference_flattened_messages_once_registered(captured: CapturedSpans) -> None:
    """With the OpenInference templates registered, messages are also flattened."""
    api = fp.FakeAPI()
    api.reply("openai_chat_tool_calls.json")
    client = wrap(fp.openai_client(api, is_async=False))
    tools = [{"type": "function", "function": {"name": "get_weather"}}]
    conversation = [
        *CHAT_MESSAGES,
        {"role": "tool", "tool_call_id": "call_prev", "content": "21 C"},
    ]

    client.chat.completions.create(model="o4-mini", messages=conversation, tools=tools)

    attrs = one_llm(captured)["attributes"]
    flat = {
        k: v for k, v in attrs.items() if k.startswith(("llm.input_", "llm.output_", "llm.tools."))
    }
    call = "llm.output_messages.0.message.tool_calls"
    assert flat == {
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "You are a concise assistant.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": "What is the capital of France?",
        "llm.input_messages.2.message.role": "tool",
        "llm.input_messages.2.message.content": "21 C",
        "llm.input_messages.2.message.tool_call_id": "call_prev",
        "llm.output_messages.0.message.role": "assistant",
        f"{call}.0.tool_call.id": "call_Ub3kqRz1Qn4mXv8sT2pLw9Ye",
        f"{call}.0.tool_call.function.name": "get_weather",
        f"{call}.0.tool_call.function.arguments": '{"city": "Paris", "unit": "celsius"}',
        f"{call}.1.tool_call.id": "call_9aKq2Jm5Hc7Df1Gs3Lp0Ov6N",
        f"{call}.1.tool_call.function.name": "get_time",
        f"{call}.1.tool_call.function.arguments": '{"timezone": "Europe/Paris"}',
        "llm.tools.0.tool.json_schema": json.dumps(tools[0]),
    }


async def test_openinference_keys_are_written_now_that_they_are_registered(
    captured: CapturedSpans,
) -> None:
    """The templates are in semconv/, so the flattened `llm.input_messages.*` keys appear."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    client = wrap(fp.openai_client(api, is_async=False))

    client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES)

    attrs = one_llm(captured)["attributes"]
    assert attrs["llm.input_messages.0.message.role"] == "system"
    assert attrs["llm.output_messages.0.message.role"] == "assistant"


@pytest.mark.usefixtures("openinference_registered")
async def test_long_conversations_keep_the_span_under_the_attribute_limit(
    captured: CapturedSpans,
) -> None:
    """Flattened messages fit in the SDK's attribute limit: ids and context are never evicted."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    client = wrap(fp.openai_client(api, is_async=False))
    conversation = [{"role": "user", "content": f"message {i}"} for i in range(300)]

    with rollout.trace("long", user_id="u-7", session_id="s-1"):
        client.chat.completions.create(model="gpt-4o", messages=conversation)

    attrs = one_llm(captured)["attributes"]
    assert len(attrs) <= 128
    assert attrs[sc.ROLLOUT_SPAN_TYPE] == "llm"
    assert attrs[sc.ROLLOUT_USER_ID] == "u-7"
    assert attrs[sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 1163
    assert attrs[sc.ROLLOUT_OUTPUT] == "The capital of France is Paris."
    kept = [k for k in attrs if k.startswith("llm.input_messages.") and k.endswith(".content")]
    assert kept
    last = max(int(k.split(".")[2]) for k in kept)
    assert attrs[f"llm.input_messages.{last}.message.content"] == "message 299"  # the newest
    assert len(gen_ai_json(attrs, sc.GEN_AI_INPUT_MESSAGES)) == 300  # JSON keeps them all


# -- streamed chat completions ---------------------------------------------------------


@KINDS
async def test_chat_stream_yields_the_same_chunks_and_records_the_stream(
    captured: CapturedSpans, is_async: bool
) -> None:
    """A streamed chat completion: same chunks, same order; the span ends when it is read."""
    api = fp.FakeAPI()
    api.reply("openai_chat_stream.sse", times=2)
    client = wrap(fp.openai_client(api, is_async=is_async))
    plain = fp.openai_client(api, is_async=is_async)
    kwargs: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": CHAT_MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    stream = await fp.resolve(client.chat.completions.create(**kwargs))
    expected_stream = await fp.resolve(plain.chat.completions.create(**kwargs))
    assert isinstance(stream, openai.AsyncStream if is_async else openai.Stream)
    assert llm_spans(captured) == []  # still open while the stream is unread
    chunks = await fp.collect(stream)
    expected = await fp.collect(expected_stream)

    assert fp.dumps(chunks) == fp.dumps(expected)
    assert fp.dumps(chunks) == fp.dumps(
        openai.types.chat.ChatCompletionChunk.model_validate(c)
        for c in fp.sse_data("openai_chat_stream.sse")
    )
    attrs = one_llm(captured)["attributes"]
    assert attrs[sc.ROLLOUT_LLM_STREAM] is True
    assert attrs[sc.ROLLOUT_LLM_STREAM_END_REASON] == "exhausted"
    assert attrs[sc.ROLLOUT_LLM_STREAM_CHUNK_COUNT] == 7
    assert attrs[sc.ROLLOUT_LLM_STREAM_PREVIEW] == "The capital of France is Paris."
    assert attrs[sc.ROLLOUT_LLM_TIME_TO_FIRST_CHUNK] >= 0
    assert (
        attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] == attrs[sc.ROLLOUT_LLM_TIME_TO_FIRST_CHUNK]
    )
    assert attrs[sc.ROLLOUT_OUTPUT] == "The capital of France is Paris."
    assert attrs[sc.GEN_AI_RESPONSE_ID] == CHAT_ID
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.ROLLOUT_USAGE_INPUT_TOKENS] == 1117
    assert attrs[sc.ROLLOUT_USAGE_OUTPUT_TOKENS] == 7
    assert attrs[sc.ROLLOUT_USAGE_CACHED_TOKENS] == 1024
    assert attrs[sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 1124


@KINDS
async def test_chat_stream_tool_call_arguments_are_accumulated(
    captured: CapturedSpans, is_async: bool
) -> None:
    """Streamed tool-call argument deltas add up to one parsed `tool_call` part."""
    api = fp.FakeAPI()
    api.reply("openai_chat_stream_tool_calls.sse")
    client = wrap(fp.openai_client(api, is_async=is_async))

    stream = await fp.resolve(
        client.chat.completions.create(
            model="o4-mini",
            messages=CHAT_MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    await fp.collect(stream)

    attrs = one_llm(captured)["attributes"]
    assert gen_ai_json(attrs, sc.GEN_AI_OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "name": "get_weather",
                    "id": "call_Ub3kqRz1Qn4mXv8sT2pLw9Ye",
                    "arguments": {"city": "Paris", "unit": "celsius"},
                }
            ],
            "finish_reason": "tool_calls",
        }
    ]
    assert attrs[sc.ROLLOUT_LLM_STREAM_PREVIEW] == '{"city":"Paris","unit":"celsius"}'
    assert attrs[sc.ROLLOUT_USAGE_REASONING_TOKENS] == 64
    assert attrs[sc.ROLLOUT_USAGE_CACHED_TOKENS] == 128


@KINDS
async def test_stream_closed_early_ends_the_span_with_what_was_read(
    captured: CapturedSpans, is_async: bool
) -> None:
    """`close()` after two chunks ends the span at once: end reason `closed`, partial text."""
    api = fp.FakeAPI()
    api.reply("openai_chat_stream.sse")
    client = wrap(fp.openai_client(api, is_async=is_async))

    stream = await fp.resolve(
        client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES, stream=True)
    )
    await fp.collect(stream, limit=3)
    await fp.close(stream)

    attrs = one_llm(captured)["attributes"]
    assert attrs[sc.ROLLOUT_LLM_STREAM_END_REASON] == "closed"
    assert attrs[sc.ROLLOUT_LLM_STREAM_PREVIEW] == "The capital"
    assert attrs[sc.ROLLOUT_OUTPUT] == "The capital"
    assert sc.ROLLOUT_USAGE_INPUT_TOKENS not in attrs  # the usage chunk was never read
    assert sc.GEN_AI_RESPONSE_FINISH_REASONS not in attrs
    assert one_llm(captured)["status"] == "UNSET"


@KINDS
async def test_stream_as_a_context_manager(captured: CapturedSpans, is_async: bool) -> None:
    """`with stream as s` gives the proxy back; leaving the block half-read ends the span."""
    api = fp.FakeAPI()
    api.reply("openai_chat_stream.sse")
    client = wrap(fp.openai_client(api, is_async=is_async))

    stream = await fp.resolve(
        client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES, stream=True)
    )
    if is_async:
        async with stream as entered:
            assert entered is stream
            first = await entered.__anext__()
    else:
        with stream as entered:
            assert entered is stream
            first = next(entered)

    assert first.choices[0].delta.role == "assistant"
    assert one_llm(captured)["attributes"][sc.ROLLOUT_LLM_STREAM_END_REASON] == "closed"


@KINDS
async def test_stream_garbage_collected_half_read_ends_the_span(
    captured: CapturedSpans, is_async: bool
) -> None:
    """A stream dropped half-read ends its span (and its one-call trace) when collected."""
    api = fp.FakeAPI()
    api.reply("openai_chat_stream.sse")
    client = wrap(fp.openai_client(api, is_async=is_async))

    stream = await fp.resolve(
        client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES, stream=True)
    )
    await fp.collect(stream, limit=2)
    assert llm_spans(captured) == []
    del stream
    gc.collect()

    spans = [s for s in captured.as_dicts() if s["scope"] == "mv37.rollout"]
    assert [s["type"] for s in spans] == ["llm", "trace"]
    attrs = spans[0]["attributes"]
    assert attrs[sc.ROLLOUT_LLM_STREAM_END_REASON] == "garbage_collected"
    assert attrs[sc.ROLLOUT_LLM_STREAM_PREVIEW] == "The"


async def test_chat_completions_stream_helper_is_traced_through_create(
    captured: CapturedSpans,
) -> None:
    """The SDK's `chat.completions.stream()` helper calls `create`, so it is recorded too."""
    api = fp.FakeAPI()
    api.reply("openai_chat_stream.sse")
    client = wrap(fp.openai_client(api, is_async=False))

    with client.chat.completions.stream(model="gpt-4o", messages=CHAT_MESSAGES) as stream:
        text = "".join(e.delta for e in stream if e.type == "content.delta")
        final = stream.get_final_completion()

    assert text == "The capital of France is Paris."
    assert final.choices[0].message.content == text
    attrs = one_llm(captured)["attributes"]
    assert attrs[sc.ROLLOUT_LLM_STREAM_END_REASON] == "exhausted"
    assert attrs[sc.ROLLOUT_OUTPUT] == text


# -- Responses API ------------------------------------------------------------------------


@KINDS
async def test_responses_create(captured: CapturedSpans, is_async: bool) -> None:
    """`responses.create`: instructions, reasoning summary, cached and reasoning tokens."""
    api = fp.FakeAPI()
    api.reply("openai_response.json", times=2)
    client = wrap(fp.openai_client(api, is_async=is_async))
    plain = fp.openai_client(api, is_async=is_async)
    kwargs: dict[str, Any] = {
        "model": "o4-mini",
        "instructions": "You are a concise travel assistant.",
        "input": "What is the capital of France?",
        "reasoning": {"effort": "medium", "summary": "auto"},
        "max_output_tokens": 2048,
    }

    result = await fp.resolve(client.responses.create(**kwargs))
    expected = await fp.resolve(plain.responses.create(**kwargs))

    assert type(result) is Response
    assert result.model_dump() == expected.model_dump()
    llm = one_llm(captured)
    attrs = llm["attributes"]
    assert llm["name"] == "chat o4-mini"
    assert attrs[sc.ROLLOUT_INTEGRATION_METHOD] == "responses.create"
    assert attrs[sc.ROLLOUT_LLM_REASONING_MODE] == "medium"
    assert attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] == 2048
    assert gen_ai_json(attrs, sc.GEN_AI_SYSTEM_INSTRUCTIONS) == [
        {"type": "text", "content": "You are a concise travel assistant."}
    ]
    assert gen_ai_json(attrs, sc.GEN_AI_INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is the capital of France?"}]}
    ]
    assert json.loads(attrs[sc.ROLLOUT_INPUT]) == {
        "instructions": kwargs["instructions"],
        "input": kwargs["input"],
    }
    assert gen_ai_json(attrs, sc.GEN_AI_OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "The user asks for the capital of France."},
                {"type": "text", "content": "Paris is the capital of France."},
            ],
            "finish_reason": "stop",
        }
    ]
    assert attrs[sc.GEN_AI_RESPONSE_ID] == "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "o4-mini-2025-04-16"
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.ROLLOUT_USAGE_INPUT_TOKENS] == 1536
    assert attrs[sc.ROLLOUT_USAGE_CACHED_TOKENS] == 1280
    assert attrs[sc.ROLLOUT_USAGE_OUTPUT_TOKENS] == 300
    assert attrs[sc.ROLLOUT_USAGE_REASONING_TOKENS] == 192
    assert attrs[sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 1836


@KINDS
async def test_responses_function_call_and_cache_writes(
    captured: CapturedSpans, is_async: bool
) -> None:
    """A function call answer: `tool_calls` finish reason, tool definitions, cache writes."""
    api = fp.FakeAPI()
    api.reply("openai_response_function_call.json")
    client = wrap(fp.openai_client(api, is_async=is_async))
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    history = [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        {"type": "function_call", "call_id": "call_0", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_0", "output": "ok"},
    ]

    await fp.resolve(client.responses.create(model="gpt-4.1", input=history, tools=tools))

    attrs = one_llm(captured)["attributes"]
    assert gen_ai_json(attrs, sc.GEN_AI_INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "name": "lookup", "id": "call_0", "arguments": {}}],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "response": "ok", "id": "call_0"}],
        },
    ]
    assert gen_ai_json(attrs, sc.GEN_AI_OUTPUT_MESSAGES)[0]["parts"] == [
        {
            "type": "tool_call",
            "name": "get_weather",
            "id": "call_Ub3kqRz1Qn4mXv8sT2pLw9Ye",
            "arguments": {"city": "Paris", "unit": "celsius"},
        }
    ]
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert gen_ai_json(attrs, sc.GEN_AI_TOOL_DEFINITIONS) == tools
    assert attrs[sc.ROLLOUT_USAGE_CACHE_CREATION_TOKENS] == 256
    assert attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 256
    assert attrs[sc.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE] == 256


@KINDS
async def test_responses_stream(captured: CapturedSpans, is_async: bool) -> None:
    """A Responses stream: same events in order; the span reads `response.completed`."""
    api = fp.FakeAPI()
    api.reply("openai_response_stream.sse", times=2)
    client = wrap(fp.openai_client(api, is_async=is_async))
    plain = fp.openai_client(api, is_async=is_async)
    kwargs: dict[str, Any] = {"model": "o4-mini", "input": "Capital of France?", "stream": True}

    events = await fp.collect(await fp.resolve(client.responses.create(**kwargs)))
    expected = await fp.collect(await fp.resolve(plain.responses.create(**kwargs)))

    assert fp.dumps(events) == fp.dumps(expected)
    assert [e.type for e in events] == [
        e["type"] for e in fp.sse_data("openai_response_stream.sse")
    ]
    attrs = one_llm(captured)["attributes"]
    assert attrs[sc.ROLLOUT_LLM_STREAM_END_REASON] == "exhausted"
    assert attrs[sc.ROLLOUT_LLM_STREAM_CHUNK_COUNT] == 7
    assert attrs[sc.ROLLOUT_LLM_STREAM_PREVIEW] == "Paris is the capital of France."
    assert attrs[sc.ROLLOUT_OUTPUT] == json.dumps(
        gen_ai_json(attrs, sc.GEN_AI_OUTPUT_MESSAGES), ensure_ascii=False
    )
    assert attrs[sc.GEN_AI_RESPONSE_ID] == "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
    assert attrs[sc.ROLLOUT_USAGE_REASONING_TOKENS] == 192
    assert attrs[sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 1836


@KINDS
async def test_responses_stream_function_call(captured: CapturedSpans, is_async: bool) -> None:
    """Function-call argument deltas are chunks; the final response has the call."""
    api = fp.FakeAPI()
    api.reply("openai_response_stream_function_call.sse")
    client = wrap(fp.openai_client(api, is_async=is_async))

    stream = await fp.resolve(
        client.responses.create(model="gpt-4.1", input="Weather in Paris?", stream=True)
    )
    await fp.collect(stream)

    attrs = one_llm(captured)["attributes"]
    assert attrs[sc.ROLLOUT_LLM_STREAM_PREVIEW] == '{"city":"Paris","unit":"celsius"}'
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert attrs[sc.ROLLOUT_USAGE_CACHE_CREATION_TOKENS] == 256


@KINDS
async def test_responses_stream_closed_before_completed_keeps_the_text_read(
    captured: CapturedSpans, is_async: bool
) -> None:
    """Closed before `response.completed`: the id and the text deltas read so far are kept."""
    api = fp.FakeAPI()
    api.reply("openai_response_stream.sse")
    client = wrap(fp.openai_client(api, is_async=is_async))

    stream = await fp.resolve(client.responses.create(model="o4-mini", input="Hi", stream=True))
    await fp.collect(stream, limit=8)
    await fp.close(stream)

    attrs = one_llm(captured)["attributes"]
    assert attrs[sc.ROLLOUT_LLM_STREAM_END_REASON] == "closed"
    assert attrs[sc.ROLLOUT_OUTPUT] == "Paris is"
    assert (
        attrs[sc.ROLLOUT_LLM_RESPONSE_ID] == "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
    )
    assert sc.ROLLOUT_USAGE_INPUT_TOKENS not in attrs


# -- errors ----------------------------------------------------------------------------------


@KINDS
@pytest.mark.parametrize("stream", [False, True], ids=["response", "stream"])
@pytest.mark.parametrize(
    ("status", "error_type", "fixture"),
    [
        (429, openai.RateLimitError, "openai_error_429.json"),
        (500, openai.InternalServerError, "openai_error_500.json"),
    ],
    ids=["429", "500"],
)
async def test_provider_errors_propagate_unchanged_and_mark_the_span(
    captured: CapturedSpans,
    is_async: bool,
    stream: bool,
    status: int,
    error_type: type[openai.APIStatusError],
    fixture: str,
) -> None:
    """A 429 or 500 raises the SDK's own exception; the llm span and its trace are ERROR."""
    api = fp.FakeAPI()
    api.reply(fixture, status=status)
    client = wrap(fp.openai_client(api, is_async=is_async))

    with pytest.raises(error_type) as caught:
        await fp.resolve(
            client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES, stream=stream)
        )

    assert type(caught.value) is error_type
    assert caught.value.status_code == status
    spans = [s for s in captured.as_dicts() if s["scope"] == "mv37.rollout"]
    assert [(s["type"], s["status"]) for s in spans] == [("llm", "ERROR"), ("trace", "ERROR")]
    llm = spans[0]
    assert llm["attributes"][sc.ERROR_TYPE] == error_type.__name__
    assert [e["name"] for e in llm["events"]] == ["exception"]
    assert sc.ROLLOUT_OUTPUT not in llm["attributes"]


@KINDS
async def test_error_inside_a_trace_propagates_to_the_caller(
    captured: CapturedSpans, is_async: bool
) -> None:
    """The exception is the very object the SDK raised; the enclosing trace records it too."""
    api = fp.FakeAPI()
    api.reply("openai_error_429.json", status=429)
    client = wrap(fp.openai_client(api, is_async=is_async))

    with pytest.raises(openai.RateLimitError), rollout.trace("agent"):
        await fp.resolve(client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES))

    spans = [s for s in captured.as_dicts() if s["scope"] == "mv37.rollout"]
    assert [(s["type"], s["status"]) for s in spans] == [("llm", "ERROR"), ("trace", "ERROR")]


# -- capture switches, options, clients ------------------------------------------------------


@KINDS
async def test_no_message_content_when_content_capture_is_off(is_async: bool) -> None:
    """`capture_content=False`: no messages, input, output or preview; usage and ids stay."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    api.reply("openai_chat_stream.sse")
    with capture_spans(capture_content=False) as captured:
        client = wrap(fp.openai_client(api, is_async=is_async))
        await fp.resolve(
            client.chat.completions.create(
                model="gpt-4o",
                messages=CHAT_MESSAGES,
                tools=[{"type": "function", "function": {"name": "x"}}],
            )
        )
        stream = await fp.resolve(
            client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES, stream=True)
        )
        await fp.collect(stream)
        spans = llm_spans(captured)

    assert len(spans) == 2
    content_keys = {
        sc.GEN_AI_INPUT_MESSAGES,
        sc.GEN_AI_OUTPUT_MESSAGES,
        sc.GEN_AI_SYSTEM_INSTRUCTIONS,
        sc.GEN_AI_TOOL_DEFINITIONS,
        sc.ROLLOUT_INPUT,
        sc.ROLLOUT_OUTPUT,
        sc.INPUT_VALUE,
        sc.OUTPUT_VALUE,
    }
    for span in spans:
        attrs = span["attributes"]
        assert not content_keys & set(attrs)
        assert not [k for k in attrs if "messages." in k]
        assert not [v for v in attrs.values() if "Paris" in str(v) or "France" in str(v)]
        assert attrs[sc.GEN_AI_RESPONSE_ID] == CHAT_ID
        assert sc.ROLLOUT_USAGE_INPUT_TOKENS in attrs or sc.ROLLOUT_LLM_STREAM in attrs
    streamed = spans[1]["attributes"]
    assert streamed[sc.ROLLOUT_LLM_STREAM_PREVIEW] == ""
    assert streamed[sc.ROLLOUT_LLM_STREAM_CHUNK_COUNT] == 7
    assert sc.ROLLOUT_LLM_TIME_TO_FIRST_CHUNK in streamed


async def test_disabled_client_calls_straight_through() -> None:
    """With the kill switch on, nothing is recorded and streams are the SDK's own objects."""
    api = fp.FakeAPI()
    api.reply("openai_chat_stream.sse")
    with capture_spans(disabled=True) as captured:
        client = wrap(fp.openai_client(api, is_async=False))
        stream = client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES, stream=True)
        assert type(stream) is openai.Stream
        assert len(list(stream)) == len(fp.sse_data("openai_chat_stream.sse"))
        assert captured.as_dicts() == []


@KINDS
async def test_attributes_option_tags_every_span(captured: CapturedSpans, is_async: bool) -> None:
    """`wrap(client, attributes=...)` puts user attributes on the llm span and its trace."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    client = wrap(fp.openai_client(api, is_async=is_async), attributes={"team": "search", "n": 3})

    await fp.resolve(client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES))

    spans = [s for s in captured.as_dicts() if s["scope"] == "mv37.rollout"]
    assert len(spans) == 2
    for span in spans:
        assert span["attributes"]["rollout.attributes.team"] == "search"
        assert span["attributes"]["rollout.attributes.n"] == 3


async def test_client_option_records_with_that_client(captured: CapturedSpans) -> None:
    """`wrap(client, client=other)` records with `other`, not the global client."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    other = rollout.Rollout(
        sync_mode=True, console=False, span_exporters=[exporter], install_global_provider=False
    )
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    client = wrap(fp.openai_client(api, is_async=False), client=other)

    client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES)

    assert captured.as_dicts() == []
    assert [s.name for s in exporter.get_finished_spans()] == [
        "chat gpt-4o",
        "invoke_workflow openai chat.completions.create",
    ]
    other.shutdown()


async def test_wrap_before_init_records_once_initialised() -> None:
    """The global client is looked up at call time: wrap first, `init()` later."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json", times=2)
    client = wrap(fp.openai_client(api, is_async=False))
    client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES)  # no provider: no-op

    with capture_spans() as captured:
        client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES)
        assert len(llm_spans(captured)) == 1


@KINDS
async def test_azure_client_names_its_provider(captured: CapturedSpans, is_async: bool) -> None:
    """`AzureOpenAI` spans name the GenAI provider `azure.ai.openai` (OpenInference: `azure`)."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    client = wrap(fp.openai_client(api, is_async=is_async, azure=True))

    await fp.resolve(client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES))

    attrs = one_llm(captured)["attributes"]
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert attrs[sc.LLM_PROVIDER] == "azure"
    assert api.requests[0].path == "/openai/deployments/gpt-4o/chat/completions"


@KINDS
async def test_with_options_copies_stay_wrapped(captured: CapturedSpans, is_async: bool) -> None:
    """`client.with_options(...)` of a wrapped client is a wrapped client."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    client = wrap(fp.openai_client(api, is_async=is_async))

    copy = client.with_options(timeout=5.0)
    await fp.resolve(copy.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES))

    assert copy is not client
    assert len(llm_spans(captured)) == 1


# -- wrap() itself ---------------------------------------------------------------------------


async def test_wrap_twice_is_a_no_op(captured: CapturedSpans) -> None:
    """A second `wrap()` returns the object unchanged: still one span per call."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    client = fp.openai_client(api, is_async=False)

    assert wrap(client) is client
    method = client.chat.completions.create
    assert wrap(client, attributes={"x": 1}) is client
    assert client.chat.completions.create is method
    client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES)

    assert len(llm_spans(captured)) == 1
    assert "rollout.attributes.x" not in one_llm(captured)["attributes"]


async def test_wrap_touches_only_that_object(captured: CapturedSpans) -> None:
    """Other clients, the resource classes and the module stay as they were."""
    from openai.resources.chat.completions import Completions

    original = Completions.create
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    wrap(fp.openai_client(api, is_async=False))
    other = fp.openai_client(api, is_async=False)

    other.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES)

    assert Completions.create is original
    assert captured.as_dicts() == []


@KINDS
async def test_wrapped_methods_look_like_the_originals(is_async: bool) -> None:
    """`inspect` sees the same name, signature and coroutine-function-ness after wrapping."""
    import inspect

    api = fp.FakeAPI()
    client = wrap(fp.openai_client(api, is_async=is_async))
    plain = fp.openai_client(api, is_async=is_async)

    for wrapped, original in (
        (client.chat.completions.create, plain.chat.completions.create),
        (client.responses.create, plain.responses.create),
    ):
        assert wrapped.__name__ == original.__name__ == "create"
        assert wrapped.__doc__ == original.__doc__
        assert inspect.signature(wrapped) == inspect.signature(original)
        assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(original)
    assert inspect.iscoroutinefunction(client.responses.create) is is_async


@pytest.mark.parametrize(
    "obj",
    [object(), {"chat": None}, openai.OpenAI, openai, ChatCompletions()],
    ids=["object", "dict", "class", "module", "adapter"],
)
def test_unsupported_objects_raise(obj: object) -> None:
    """Anything but a client instance raises `UnsupportedIntegrationError` (a `TypeError`)."""
    with pytest.raises(UnsupportedIntegrationError) as caught:
        wrap(obj)

    assert isinstance(caught.value, TypeError)
    message = str(caught.value)
    assert type(obj).__qualname__ in message
    assert "openai.OpenAI" in message
    assert "anthropic.AsyncAnthropic" in message


def test_unknown_provider_and_option_raise() -> None:
    """A provider name that is not an integration, or an unknown option, fails at wrap time."""
    client = fp.openai_client(fp.FakeAPI(), is_async=False)
    with pytest.raises(ValueError, match="openai, anthropic"):
        wrap(client, provider="cohere")
    with pytest.raises(TypeError, match="colour"):
        wrap(client, colour="blue")


class _DuckCompletions:
    """An OpenAI-compatible gateway's chat resource: plain dicts, a generator for streams."""

    def create(self, **kwargs: Any) -> Any:
        if kwargs.get("stream"):
            return iter(fp.sse_data("openai_chat_stream.sse"))
        return fp.fixture_json("openai_chat_completion.json")


class _AsyncDuckCompletions:
    """The same gateway, async: a coroutine, and an async generator for streams."""

    async def create(self, **kwargs: Any) -> Any:
        if kwargs.get("stream"):
            return self._events()
        return fp.fixture_json("openai_chat_completion.json")

    async def _events(self) -> AsyncIterator[Any]:
        for event in fp.sse_data("openai_chat_stream.sse"):
            yield event


class _DuckChat:
    def __init__(self, is_async: bool) -> None:
        self.completions = _AsyncDuckCompletions() if is_async else _DuckCompletions()


class GatewayClient:
    """Not an `openai.OpenAI`, but shaped like one."""

    def __init__(self, is_async: bool = False) -> None:
        self.chat = _DuckChat(is_async)


@KINDS
async def test_provider_forcing_on_a_duck_typed_gateway(
    captured: CapturedSpans, is_async: bool
) -> None:
    """`provider="openai"` instruments a compatible client of another type (dict responses)."""
    gateway = GatewayClient(is_async)
    with pytest.raises(UnsupportedIntegrationError, match="GatewayClient"):
        wrap(gateway)

    assert wrap(gateway, provider="openai") is gateway
    result = await fp.resolve(gateway.chat.completions.create(model="gpt-4o", messages=[]))
    stream = await fp.resolve(
        gateway.chat.completions.create(model="gpt-4o", messages=[], stream=True)
    )
    chunks = await fp.collect(stream)

    assert result == fp.fixture_json("openai_chat_completion.json")
    assert chunks == fp.sse_data("openai_chat_stream.sse")
    first, second = llm_spans(captured)
    assert first["attributes"][sc.ROLLOUT_USAGE_INPUT_TOKENS] == 1117
    assert first["attributes"][sc.ROLLOUT_OUTPUT] == "The capital of France is Paris."
    assert second["attributes"][sc.ROLLOUT_LLM_STREAM_PREVIEW] == "The capital of France is Paris."
    assert second["attributes"][sc.ROLLOUT_LLM_STREAM_END_REASON] == "exhausted"
    assert second["attributes"][sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 1124


async def test_raw_response_calls_are_recorded_without_response_details(
    captured: CapturedSpans,
) -> None:
    """`with_raw_response` reached after `wrap()` still works; its span has the request only."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    client = wrap(fp.openai_client(api, is_async=False))

    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=CHAT_MESSAGES)

    assert raw.parse().id == CHAT_ID
    llm = one_llm(captured)
    assert llm["status"] == "UNSET"
    assert llm["attributes"][sc.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert sc.GEN_AI_RESPONSE_ID not in llm["attributes"]


def test_provider_forcing_without_any_method_raises() -> None:
    """Forcing a provider on an object with none of its methods is unsupported."""
    with pytest.raises(UnsupportedIntegrationError, match="chat.completions.create"):
        wrap(object(), provider="openai")


def test_missing_provider_package_raises_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forcing an integration whose package cannot be imported names the extra to install."""
    monkeypatch.setitem(sys.modules, "openai", None)

    with pytest.raises(MissingExtraError) as caught:
        wrap(GatewayClient(), provider="openai")

    assert isinstance(caught.value, ImportError)
    assert "pip install 'mv37-rollout[openai]'" in str(caught.value)


def test_importing_never_imports_the_provider_packages() -> None:
    """`import mv37.rollout` / `.integrations` and a failed `wrap()` import no provider SDK."""
    code = (
        "import sys\n"
        "import mv37.rollout, mv37.rollout.integrations as integrations\n"
        "try:\n"
        "    integrations.wrap(object())\n"
        "except integrations.UnsupportedIntegrationError:\n"
        "    pass\n"
        "print(sorted(m for m in ('openai', 'anthropic', 'httpx2') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert out.stdout.strip() == "[]"


# -- instrumentation never breaks the call ---------------------------------------------------


@KINDS
async def test_internal_failures_never_break_the_call(
    captured: CapturedSpans, is_async: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in reading the request or a chunk is reported once; the user's call goes on."""
    monkeypatch.delenv("MV37_ROLLOUT_RAISE_INTERNAL")
    from mv37.rollout.integrations import _openai

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("adapter bug")

    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    api.reply("openai_chat_stream.sse")
    client = wrap(fp.openai_client(api, is_async=is_async))

    monkeypatch.setattr(_openai.ChatCompletions, "request", broken)
    result = await fp.resolve(
        client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES)
    )
    assert result.id == CHAT_ID
    monkeypatch.undo()
    monkeypatch.delenv("MV37_ROLLOUT_RAISE_INTERNAL")

    monkeypatch.setattr(_openai.ChatAccumulator, "add", broken)
    stream = await fp.resolve(
        client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES, stream=True)
    )
    chunk_count = len(fp.sse_data("openai_chat_stream.sse"))
    assert len(await fp.collect(stream)) == chunk_count

    counts = _diagnostics.internal_error_counts()
    assert counts["openai chat.completions.create: start span"] == 1
    assert counts["chat.completions.create: stream chunk"] == chunk_count
    attrs = one_llm(captured)["attributes"]  # the streamed call is still recorded
    assert attrs[sc.ROLLOUT_LLM_STREAM_END_REASON] == "exhausted"
