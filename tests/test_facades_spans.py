"""The Span / LLM span / ToolCall facades, used as (sync and async) context managers:
typed spans, LLM spans and messages, tool calls, streaming, and errors leaving a span.

Everything is asserted on exported spans. Each test runs with `with` and `async with`
(the `mode` parameter); traces are opened both through the client and the module.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans, capture_spans

if TYPE_CHECKING:
    from tests.helpers import MODES, OPENERS, entered, events_named, open_trace
else:
    from helpers import MODES, OPENERS, entered, events_named, open_trace


# == typed spans and LLM spans ================================================================


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("mode", MODES)
async def test_typed_span_names_kinds_and_types(
    captured: CapturedSpans, mode: str, opener: str
) -> None:
    """trace.span(type, name=...) gets its GenAI name, kind, type and OpenInference kind."""
    async with entered(open_trace(captured, opener, "support"), mode) as trace:
        async with entered(trace.span("retrieval", name="faq"), mode) as retrieval:
            assert isinstance(retrieval, rollout.Span)
            assert retrieval.span_type == "retrieval"
        async with entered(trace.span("guardrail", name="pii_check"), mode):
            pass
        async with entered(trace.span(), mode):
            pass

    root = captured.by_name("invoke_workflow support")
    assert root["kind"] == "INTERNAL"
    assert root["attributes"][sc.ROLLOUT_SPAN_TYPE] == "trace"
    assert root["attributes"][sc.ROLLOUT_TRACE_NAME] == "support"
    assert root["attributes"][sc.GEN_AI_WORKFLOW_NAME] == "support"
    assert root["attributes"][sc.GEN_AI_OPERATION_NAME] == "invoke_workflow"
    assert root["attributes"][sc.OPENINFERENCE_SPAN_KIND] == "CHAIN"

    span = captured.by_name("retrieval faq")
    attrs = span["attributes"]
    assert span["kind"] == "CLIENT"
    assert span["parent_id"] == root["span_id"]
    assert attrs[sc.ROLLOUT_SPAN_TYPE] == "retrieval"
    assert attrs[sc.ROLLOUT_SPAN_NAME] == "faq"
    assert attrs[sc.GEN_AI_OPERATION_NAME] == "retrieval"
    assert attrs[sc.OPENINFERENCE_SPAN_KIND] == "RETRIEVER"

    guard = captured.by_name("pii_check")
    assert guard["kind"] == "INTERNAL"
    assert guard["attributes"][sc.ROLLOUT_SPAN_TYPE] == "guardrail"
    assert guard["attributes"][sc.GEN_AI_OPERATION_NAME] == "guardrail"
    assert guard["attributes"][sc.OPENINFERENCE_SPAN_KIND] == "GUARDRAIL"

    plain = captured.by_name("span")
    assert plain["attributes"][sc.ROLLOUT_SPAN_TYPE] == "span"
    assert plain["attributes"][sc.OPENINFERENCE_SPAN_KIND] == "CHAIN"
    assert plain["parent_id"] == root["span_id"]


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("mode", MODES)
async def test_llm_span_model_options_and_mirrors(
    captured: CapturedSpans, mode: str, opener: str
) -> None:
    """trace.llm(...) is `chat {model}` with model/provider/options and their mirrors."""
    async with entered(open_trace(captured, opener, "support"), mode) as trace:
        llm = trace.llm(
            "answer",
            model="gpt-4o",
            provider="openai",
            model_version="gpt-4o-2024-08-06",
            reasoning_mode="high",
            temperature=0.2,
            stream=True,
        )
        async with entered(llm, mode) as span:
            assert span.span_type == "llm"

    root = captured.by_name("invoke_workflow support")
    llm_span = captured.by_name("chat gpt-4o")
    attrs = llm_span["attributes"]
    assert llm_span["kind"] == "CLIENT"
    assert llm_span["parent_id"] == root["span_id"]
    assert attrs[sc.ROLLOUT_SPAN_TYPE] == "llm"
    assert attrs[sc.ROLLOUT_SPAN_NAME] == "answer"
    assert attrs[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[sc.OPENINFERENCE_SPAN_KIND] == "LLM"
    assert attrs[sc.ROLLOUT_LLM_MODEL] == "gpt-4o"
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert attrs[sc.LLM_MODEL_NAME] == "gpt-4o"
    assert attrs[sc.ROLLOUT_LLM_PROVIDER] == "openai"
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[sc.LLM_PROVIDER] == "openai"
    assert attrs[sc.ROLLOUT_LLM_MODEL_VERSION] == "gpt-4o-2024-08-06"
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    assert attrs[sc.ROLLOUT_LLM_REASONING_MODE] == "high"
    assert attrs[sc.ROLLOUT_LLM_TEMPERATURE] == 0.2
    assert attrs[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[sc.ROLLOUT_LLM_STREAM] is True
    assert attrs[sc.GEN_AI_REQUEST_STREAM] is True
    assert json.loads(attrs[sc.LLM_INVOCATION_PARAMETERS]) == {
        "reasoning_mode": "high",
        "temperature": 0.2,
        "stream": True,
    }


@pytest.mark.parametrize("mode", MODES)
async def test_llm_span_messages_recorded_by_hand_get_message_mirrors(
    captured: CapturedSpans, mode: str
) -> None:
    """record_input/record_output on an LLM span: GenAI and OpenInference message mirrors."""
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "21C"},
    ]
    async with entered(captured.client.trace("support"), mode) as trace:
        async with entered(trace.llm("answer", model="m1"), mode) as llm:
            llm.record_input(chat)
            llm.record_output("It is 21C.")
        async with entered(trace.llm("plain", model="m2"), mode) as llm:
            llm.record_input({"query": "not a chat"})  # no role: no message mirrors
            llm.record_output(42)
        async with entered(trace.span("task", name="step"), mode) as step:
            step.record_input(chat)  # only LLM spans carry messages

    attrs = captured.by_name("chat m1")["attributes"]
    assert json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "call_1",
                    "name": "get_weather",
                    "arguments": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "call_1", "response": "21C"}],
        },
    ]
    assert json.loads(attrs[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "It is 21C."}]}
    ]
    assert attrs["llm.input_messages.0.message.role"] == "system"
    assert attrs["llm.input_messages.1.message.content"] == "Weather in Paris?"
    call = "llm.input_messages.2.message.tool_calls.0.tool_call"
    assert attrs[f"{call}.function.name"] == "get_weather"
    assert attrs["llm.input_messages.3.message.tool_call_id"] == "call_1"
    assert attrs["llm.output_messages.0.message.role"] == "assistant"
    assert attrs["llm.output_messages.0.message.content"] == "It is 21C."
    assert json.loads(attrs[sc.INPUT_VALUE]) == chat  # the payload itself, unchanged

    # Not a chat: OpenInference has it once in input.value; GenAI, whose only key on an
    # LLM span is the messages one, gets it as one text message.
    plain = captured.by_name("chat m2")["attributes"]
    assert json.loads(plain[sc.INPUT_VALUE]) == {"query": "not a chat"}
    assert json.loads(plain[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "json", "content": {"query": "not a chat"}}]}
    ]
    assert json.loads(plain[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "json", "content": 42}]}
    ]
    assert not any(k.startswith(("llm.input_messages", "llm.output_messages")) for k in plain)
    step_keys = captured.by_name("step")["attributes"]
    assert sc.GEN_AI_INPUT_MESSAGES not in step_keys  # only LLM and agent spans
    assert not any(k.startswith("llm.input_messages") for k in step_keys)


@pytest.mark.parametrize("switch", ["argument", "otel_env"])
@pytest.mark.parametrize("mode", MODES)
async def test_message_content_follows_the_content_switch(
    monkeypatch: pytest.MonkeyPatch, mode: str, switch: str
) -> None:
    """Content off: LLM payloads and mirrors, and trace.message contents, stay home."""
    options: dict[str, Any] = {}
    if switch == "argument":
        options["capture_content"] = False
    else:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false")
    with capture_spans(**options) as quiet:
        async with entered(quiet.client.trace("t"), mode) as trace:
            trace.message(role="user", content="secret question")
            async with entered(trace.llm("a", model="m"), mode) as llm:
                llm.record_input([{"role": "user", "content": "secret prompt"}])
                llm.record_output("secret answer")
            trace.message(role="assistant", content="secret reply")
        spans = quiet.as_dicts()
    root = next(s for s in spans if s["name"] == "invoke_workflow t")
    assert [
        (e[sc.ROLLOUT_MESSAGE_ROLE], e[sc.ROLLOUT_MESSAGE_INDEX])
        for e in events_named(root, sc.EVENT_ROLLOUT_MESSAGE)
    ] == [("user", 0), ("assistant", 1)]
    assert all(sc.ROLLOUT_MESSAGE_CONTENT not in e for e in events_named(root, "rollout.message"))
    llm_attrs = next(s for s in spans if s["name"] == "chat m")["attributes"]
    assert not any("messages" in key for key in llm_attrs)
    assert "secret" not in json.dumps(spans)


# == tool calls ===============================================================================


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("mode", MODES)
async def test_tool_call_records_call_and_result(
    captured: CapturedSpans, mode: str, opener: str
) -> None:
    """trace.tool(...) carries the call id and its mirrors, the arguments and the result."""
    async with entered(open_trace(captured, opener, "support"), mode) as trace:
        call = trace.tool(
            "lookup_order", tool_call_id="call_1", arguments={"id": 42}, retry_count=2
        )
        async with entered(call, mode) as tool:
            assert isinstance(tool, rollout.ToolCall)
            assert rollout.current_span() is tool
            tool.record_output({"status": "shipped"})

    root = captured.by_name("invoke_workflow support")
    span = captured.by_name("execute_tool lookup_order")
    attrs = span["attributes"]
    assert span["parent_id"] == root["span_id"]
    assert span["status"] == "UNSET"
    assert attrs[sc.ROLLOUT_SPAN_TYPE] == "tool"
    assert attrs[sc.OPENINFERENCE_SPAN_KIND] == "TOOL"
    assert attrs[sc.ROLLOUT_TOOL_NAME] == "lookup_order"
    assert attrs[sc.GEN_AI_TOOL_NAME] == "lookup_order"
    assert attrs[sc.TOOL_NAME] == "lookup_order"
    assert attrs[sc.ROLLOUT_TOOL_CALL_ID] == "call_1"
    assert attrs[sc.GEN_AI_TOOL_CALL_ID] == "call_1"
    assert attrs[sc.TOOL_ID] == "call_1"
    assert attrs[sc.ROLLOUT_TOOL_RETRY_COUNT] == 2
    assert json.loads(attrs[sc.INPUT_VALUE]) == {"id": 42}
    assert json.loads(attrs[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"id": 42}
    assert json.loads(attrs[sc.INPUT_VALUE]) == {"id": 42}
    assert json.loads(attrs[sc.OUTPUT_VALUE]) == {"status": "shipped"}
    assert json.loads(attrs[sc.GEN_AI_TOOL_CALL_RESULT]) == {"status": "shipped"}
    assert json.loads(attrs[sc.OUTPUT_VALUE]) == {"status": "shipped"}
    assert attrs[sc.ROLLOUT_TOOL_STATUS] == "ok"


@pytest.mark.parametrize("mode", MODES)
async def test_tool_call_exception_marks_error_and_is_reraised(
    captured: CapturedSpans, mode: str
) -> None:
    """An exception inside a tool call marks it failed (status, tool status) and propagates."""
    error = ConnectionError("inventory down")

    async def run() -> None:
        async with (
            entered(captured.client.trace("support"), mode) as trace,
            entered(trace.tool("lookup_order", tool_call_id="call_9"), mode),
        ):
            if mode == "async":
                await asyncio.sleep(0)
            raise error

    with pytest.raises(ConnectionError) as info:
        await run()
    assert info.value is error

    span = captured.by_name("execute_tool lookup_order")
    assert span["status"] == "ERROR"
    assert "inventory down" in (span["status_description"] or "")
    assert span["attributes"][sc.ROLLOUT_TOOL_STATUS] == "error"
    assert span["attributes"][sc.ERROR_TYPE] == "ConnectionError"
    assert sc.OUTPUT_VALUE not in span["attributes"]
    [exception] = events_named(span, sc.EVENT_EXCEPTION)
    assert exception[sc.EXCEPTION_TYPE] == "ConnectionError"
    assert exception[sc.EXCEPTION_MESSAGE] == "inventory down"
    assert captured.by_name("invoke_workflow support")["status"] == "ERROR"


# == streaming ================================================================================


CHUNKS = ("Hello", ", ", "wor", "ld", "!!! done")


@pytest.mark.parametrize("mode", MODES)
async def test_streaming_preview_count_and_first_chunk_time(mode: str) -> None:
    """record_chunk x N then end(): chunk count, last-N preview, time to first chunk, no events."""
    with capture_spans(stream_preview_chars=10) as captured:
        async with entered(captured.client.trace("stream"), mode) as trace:
            async with entered(trace.llm("answer", model="gpt-4o", stream=True), mode) as llm:
                for chunk in CHUNKS:
                    if mode == "async":
                        await asyncio.sleep(0)
                    llm.record_chunk(chunk)
                llm.end("".join(CHUNKS), usage={"input_tokens": 8, "output_tokens": 5})
                assert rollout.current_span() is None, "end() makes the span stop being current"
            assert rollout.current_trace() is trace
        span = captured.by_name("chat gpt-4o")
        root = captured.by_name("invoke_workflow stream")

    attrs = span["attributes"]
    assert attrs[sc.ROLLOUT_LLM_STREAM_CHUNK_COUNT] == len(CHUNKS)
    assert attrs[sc.ROLLOUT_LLM_STREAM_PREVIEW] == "".join(CHUNKS)[-10:] == "ld!!! done"
    assert attrs[sc.ROLLOUT_LLM_TIME_TO_FIRST_CHUNK] >= 0
    assert attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
    assert attrs[sc.OUTPUT_VALUE] == "Hello, world!!! done"
    assert attrs[sc.ROLLOUT_USAGE_OUTPUT_TOKENS] == 5
    assert attrs[sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 13
    assert span["status"] == "UNSET"
    assert span["events"] == []
    assert root["attributes"][sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 13


def test_streaming_without_a_with_block(captured: CapturedSpans) -> None:
    """A streaming span held outside `with` and ended by end() is exported once, complete."""
    with captured.client.trace("stream") as trace:
        llm = trace.llm("answer", model="gpt-4o", stream=True)
        llm.record_chunk("a")
        llm.record_chunk("b")
        llm.end("ab")
        llm.end("ignored")
        llm.record_chunk("late")

    [span] = [s for s in captured.as_dicts() if s["type"] == "llm"]
    assert span["attributes"][sc.ROLLOUT_LLM_STREAM_CHUNK_COUNT] == 2
    assert span["attributes"][sc.ROLLOUT_LLM_STREAM_PREVIEW] == "ab"
    assert span["attributes"][sc.OUTPUT_VALUE] == "ab"


@pytest.mark.parametrize("mode", MODES)
async def test_streaming_chunk_events_when_asked(mode: str) -> None:
    """With capture_stream_chunks=True each chunk is one rollout.llm.chunk event, in order."""
    with capture_spans(capture_stream_chunks=True) as captured:
        async with (
            entered(captured.client.trace("stream"), mode) as trace,
            entered(trace.llm("answer", model="gpt-4o"), mode) as llm,
        ):
            for chunk in CHUNKS:
                if mode == "async":
                    await asyncio.sleep(0)
                llm.record_chunk(chunk)
            llm.end()
        span = captured.by_name("chat gpt-4o")

    chunks = events_named(span, sc.EVENT_ROLLOUT_LLM_CHUNK)
    assert [c[sc.ROLLOUT_LLM_CHUNK_TEXT] for c in chunks] == list(CHUNKS)
    assert [c[sc.ROLLOUT_LLM_CHUNK_INDEX] for c in chunks] == list(range(len(CHUNKS)))
    assert span["attributes"][sc.ROLLOUT_LLM_STREAM_CHUNK_COUNT] == len(CHUNKS)
    assert span["attributes"][sc.ROLLOUT_LLM_STREAM_PREVIEW] == "".join(CHUNKS)


@pytest.mark.parametrize("mode", MODES)
async def test_streaming_end_with_error(captured: CapturedSpans, mode: str) -> None:
    """end(status="error", error="boom") marks the streaming span ERROR."""
    async with entered(captured.client.trace("stream"), mode) as trace:
        async with entered(trace.llm("answer", model="gpt-4o"), mode) as llm:
            llm.record_chunk("partial")
            llm.end(status="error", error="boom")
        async with entered(trace.llm("other", model="gpt-4o-mini"), mode) as other:
            other.end(status="error")

    span = captured.by_name("chat gpt-4o")
    assert span["status"] == "ERROR"
    assert span["status_description"] == "boom"
    assert span["attributes"][sc.ROLLOUT_ERROR_MESSAGE] == "boom"
    assert span["attributes"][sc.ROLLOUT_LLM_STREAM_CHUNK_COUNT] == 1
    assert captured.by_name("chat gpt-4o-mini")["status"] == "ERROR"
    assert captured.by_name("invoke_workflow stream")["status"] == "UNSET"


# == errors ===================================================================================


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("mode", MODES)
async def test_exception_leaving_a_span_is_reraised_and_recorded(
    captured: CapturedSpans, mode: str, opener: str
) -> None:
    """The same exception leaves the span block; the span is ERROR with an exception event."""
    error = ValueError("bad query")

    async def fail(trace: rollout.Trace) -> None:
        async with entered(trace.span("retrieval", name="search"), mode):
            if mode == "async":
                await asyncio.sleep(0)
            raise error

    async with entered(open_trace(captured, opener, "errors"), mode) as trace:
        with pytest.raises(ValueError) as info:
            await fail(trace)
        assert info.value is error
        assert rollout.current_span() is None
        assert rollout.current_trace() is trace

    span = captured.by_name("retrieval search")
    assert span["status"] == "ERROR"
    assert span["status_description"] == "ValueError: bad query"
    assert span["attributes"][sc.ERROR_TYPE] == "ValueError"
    assert span["attributes"][sc.ROLLOUT_ERROR_TYPE] == "ValueError"
    assert span["attributes"][sc.ROLLOUT_ERROR_MESSAGE] == "bad query"
    [exception] = events_named(span, sc.EVENT_EXCEPTION)
    assert exception[sc.EXCEPTION_TYPE] == "ValueError"
    assert exception[sc.EXCEPTION_MESSAGE] == "bad query"
    assert "bad query" in exception[sc.EXCEPTION_STACKTRACE]
    assert captured.by_name("invoke_workflow errors")["status"] == "UNSET"


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("mode", MODES)
async def test_exception_leaving_the_trace_marks_it_error(
    captured: CapturedSpans, mode: str, opener: str
) -> None:
    """An exception leaving the trace block marks the trace span ERROR and is re-raised as is."""
    error = KeyError("missing")

    async def fail() -> None:
        async with entered(open_trace(captured, opener, "errors"), mode) as trace:
            async with entered(trace.span("task", name="fine"), mode):
                pass
            raise error

    with pytest.raises(KeyError) as info:
        await fail()
    assert info.value is error
    assert rollout.current_trace() is None

    root = captured.by_name("invoke_workflow errors")
    assert root["status"] == "ERROR"
    assert root["attributes"][sc.ERROR_TYPE] == "KeyError"
    [exception] = events_named(root, sc.EVENT_EXCEPTION)
    assert exception[sc.EXCEPTION_TYPE] == "KeyError"
    assert captured.by_name("fine")["status"] == "UNSET"
