"""`wrap()` on real OpenAI clients (sync and async) over a fake transport: chat completions,
non-streamed and streamed.

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
from typing import TYPE_CHECKING, Any

import openai
from openai.types.chat import ChatCompletion

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.integrations import wrap
from mv37.rollout.testing import CapturedSpans
from mv37.rollout.vocabulary import _messages as messages_module

if TYPE_CHECKING:
    from tests import fake_providers as fp
    from tests.openai_helpers import CHAT_ID, CHAT_MESSAGES, KINDS, gen_ai_json, llm_spans, one_llm
else:
    import fake_providers as fp
    from openai_helpers import CHAT_ID, CHAT_MESSAGES, KINDS, gen_ai_json, llm_spans, one_llm


OI_TEMPLATES = (
    messages_module.OI_INPUT_MESSAGES + ".",
    messages_module.OI_OUTPUT_MESSAGES + ".",
    messages_module.OI_TOOLS + ".",
)


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
        sc.INPUT_VALUE: input_json,
        sc.INPUT_MIME_TYPE: "application/json",
        sc.INPUT_VALUE: input_json,
        sc.INPUT_MIME_TYPE: "application/json",
        sc.OUTPUT_VALUE: "The capital of France is Paris.",
        sc.OUTPUT_MIME_TYPE: "text/plain",
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
    assert json.loads(attrs[sc.OUTPUT_VALUE]) == gen_ai_json(attrs, sc.GEN_AI_OUTPUT_MESSAGES)


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
    assert attrs[sc.OUTPUT_VALUE] == "The capital of France is Paris."
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
    assert attrs[sc.OUTPUT_VALUE] == "The capital of France is Paris."
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
    assert attrs[sc.OUTPUT_VALUE] == "The capital"
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
    assert attrs[sc.OUTPUT_VALUE] == text
