"""`wrap()` on real OpenAI clients (sync and async) over a fake transport: the Responses API,
non-streamed and streamed.

Every test runs the real `openai` SDK against `fake_providers.FakeAPI`, which serves the
JSON and SSE fixtures in `tests/fixtures/providers/`. Assertions are on the exported
spans and on what the caller gets back.
"""

from __future__ import annotations

import pytest

pytest.importorskip("openai", reason="needs the openai extra: pip install 'mv37-rollout[openai]'")

import json
from typing import TYPE_CHECKING, Any

from openai.types.responses import Response

from mv37.rollout import semconv as sc
from mv37.rollout.integrations import wrap
from mv37.rollout.testing import CapturedSpans

if TYPE_CHECKING:
    from tests import fake_providers as fp
    from tests.openai_helpers import KINDS, gen_ai_json, one_llm
else:
    import fake_providers as fp
    from openai_helpers import KINDS, gen_ai_json, one_llm


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
    assert json.loads(attrs[sc.INPUT_VALUE]) == {
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
    assert attrs[sc.OUTPUT_VALUE] == json.dumps(
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
    assert attrs[sc.OUTPUT_VALUE] == "Paris is"
    assert (
        attrs[sc.ROLLOUT_LLM_RESPONSE_ID] == "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
    )
    assert sc.ROLLOUT_USAGE_INPUT_TOKENS not in attrs
