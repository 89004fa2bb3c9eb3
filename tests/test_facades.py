"""The Trace / Span / ToolCall facades, used as (sync and async) context managers.

Everything is asserted on exported spans. Each test runs with `with` and `async with`
(the `mode` parameter); traces are opened both through the client and the module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import json
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans, capture_spans

if TYPE_CHECKING:
    from tests.helpers import Scope, entered
else:
    from helpers import Scope, entered

MODES = ("sync", "async")
OPENERS = ("client", "module")
FIVE_MB = 5 * 1024 * 1024


def open_trace(
    captured: CapturedSpans, opener: str, name: str, **options: Any
) -> Scope[rollout.Trace]:
    """`captured.client.trace(...)` or the module-level `rollout.trace(...)`."""
    if opener == "client":
        return captured.client.trace(name, **options)
    return rollout.trace(name, **options)


def events_named(span: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The attributes of `span`'s events called `name`, in order."""
    return [e["attributes"] for e in span["events"] if e["name"] == name]


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

    for name in ("chat m2", "step"):
        keys = captured.by_name(name)["attributes"]
        assert sc.GEN_AI_INPUT_MESSAGES not in keys
        assert not any(k.startswith("llm.input_messages") for k in keys)
    assert sc.GEN_AI_OUTPUT_MESSAGES not in captured.by_name("chat m2")["attributes"]


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
    assert json.loads(attrs[sc.ROLLOUT_INPUT]) == {"id": 42}
    assert json.loads(attrs[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"id": 42}
    assert json.loads(attrs[sc.INPUT_VALUE]) == {"id": 42}
    assert json.loads(attrs[sc.ROLLOUT_OUTPUT]) == {"status": "shipped"}
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
    assert sc.ROLLOUT_OUTPUT not in span["attributes"]
    [exception] = events_named(span, sc.EVENT_EXCEPTION)
    assert exception[sc.EXCEPTION_TYPE] == "ConnectionError"
    assert exception[sc.EXCEPTION_MESSAGE] == "inventory down"
    assert captured.by_name("invoke_workflow support")["status"] == "ERROR"


# == messages, feedback, signals, identify ====================================================


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("mode", MODES)
async def test_messages_are_indexed_events(captured: CapturedSpans, mode: str, opener: str) -> None:
    """trace.message(...) adds rollout.message events with increasing indexes."""
    async with entered(open_trace(captured, opener, "chat"), mode) as trace:
        trace.message(role="system", content="be brief", is_internal=True)
        trace.message(role="user", content="Where is my order?")
        async with entered(trace.span("task", name="work"), mode):
            trace.message(
                role="assistant",
                content={"tool_calls": [{"id": "call_1"}]},
                content_type="application/json",
            )
        trace.message(role="tool", content="shipped", tool_call_id="call_1")

    root = captured.by_name("invoke_workflow chat")
    messages = events_named(root, sc.EVENT_ROLLOUT_MESSAGE)
    assert [m[sc.ROLLOUT_MESSAGE_INDEX] for m in messages] == [0, 1, 2, 3]
    assert [m[sc.ROLLOUT_MESSAGE_ROLE] for m in messages] == ["system", "user", "assistant", "tool"]
    assert [m[sc.ROLLOUT_MESSAGE_IS_INTERNAL] for m in messages] == [True, False, False, False]
    assert messages[1][sc.ROLLOUT_MESSAGE_CONTENT] == "Where is my order?"
    assert json.loads(messages[2][sc.ROLLOUT_MESSAGE_CONTENT]) == {"tool_calls": [{"id": "call_1"}]}
    assert messages[2][sc.ROLLOUT_MESSAGE_CONTENT_TYPE] == "application/json"
    assert sc.ROLLOUT_MESSAGE_CONTENT_TYPE not in messages[1]
    assert messages[3][sc.ROLLOUT_MESSAGE_TOOL_CALL_ID] == "call_1"
    assert sc.ROLLOUT_MESSAGE_TOOL_CALL_ID not in messages[1]
    assert captured.by_name("work")["events"] == []


FEEDBACK_VALUES: list[tuple[object, object]] = [
    (True, True),
    (False, False),
    (3, 3),
    (4.5, 4.5),
    ("great", "great"),
    ({"value": 42.0, "currency": "EUR"}, {"value": 42.0, "currency": "EUR"}),
]


@pytest.mark.parametrize(("value", "expected"), FEEDBACK_VALUES)
@pytest.mark.parametrize("mode", MODES)
async def test_feedback_and_signal_values(
    captured: CapturedSpans, mode: str, value: object, expected: object
) -> None:
    """feedback/signal keep bool, int, float and str values; dicts become JSON text."""
    async with entered(captured.client.trace("chat"), mode) as trace:
        trace.feedback("rating", value)
        trace.signal("order_placed", value)

    root = captured.by_name("invoke_workflow chat")
    [feedback] = events_named(root, sc.EVENT_ROLLOUT_FEEDBACK)
    [signal] = events_named(root, sc.EVENT_ROLLOUT_SIGNAL)
    assert feedback[sc.ROLLOUT_FEEDBACK_NAME] == "rating"
    assert signal[sc.ROLLOUT_SIGNAL_NAME] == "order_placed"
    for recorded in (feedback[sc.ROLLOUT_FEEDBACK_VALUE], signal[sc.ROLLOUT_SIGNAL_VALUE]):
        if isinstance(value, dict):
            assert isinstance(recorded, str)
            assert json.loads(recorded) == expected
        else:
            assert recorded == expected
            assert type(recorded) is type(expected)


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("mode", MODES)
async def test_identify_user_event_and_later_spans(
    captured: CapturedSpans, mode: str, opener: str
) -> None:
    """identify_user records a rollout.identify event; spans started afterwards carry the user."""
    async with entered(open_trace(captured, opener, "chat"), mode) as trace:
        async with entered(trace.span("task", name="before"), mode):
            pass
        trace.identify_user("u1", traits={"plan": "pro"}, account_id="a1")
        async with entered(trace.span("task", name="after"), mode):
            pass
        async with entered(trace.tool("after_tool"), mode):
            pass

    root = captured.by_name("invoke_workflow chat")
    [identify] = events_named(root, sc.EVENT_ROLLOUT_IDENTIFY)
    assert identify[sc.ROLLOUT_USER_ID] == "u1"
    assert identify[sc.USER_ID] == "u1"
    assert identify[sc.ROLLOUT_ACCOUNT_ID] == "a1"
    assert json.loads(identify[sc.ROLLOUT_USER_TRAITS]) == {"plan": "pro"}
    assert root["attributes"][sc.ROLLOUT_USER_ID] == "u1"
    for name in ("after", "execute_tool after_tool"):
        attrs = captured.by_name(name)["attributes"]
        assert attrs[sc.ROLLOUT_USER_ID] == "u1"
        assert attrs[sc.USER_ID] == "u1"
        assert attrs[sc.ROLLOUT_ACCOUNT_ID] == "a1"
    assert sc.ROLLOUT_USER_ID not in captured.by_name("before")["attributes"]


@pytest.mark.parametrize("mode", MODES)
async def test_module_level_helpers_act_on_the_active_trace(
    captured: CapturedSpans, mode: str
) -> None:
    """rollout.feedback/signal/identify_user land on the active trace's span, even from a child."""
    async with entered(rollout.trace("chat"), mode):
        async with entered(rollout.span("task", name="inner"), mode):
            if mode == "async":
                await asyncio.sleep(0)
            rollout.feedback("thumbs_up", True)
            rollout.signal("escalated", False)
            rollout.identify_user("u5", account_id="acct-5")
        async with entered(rollout.span("task", name="later"), mode):
            pass

    root = captured.by_name("invoke_workflow chat")
    [feedback] = events_named(root, sc.EVENT_ROLLOUT_FEEDBACK)
    [signal] = events_named(root, sc.EVENT_ROLLOUT_SIGNAL)
    [identify] = events_named(root, sc.EVENT_ROLLOUT_IDENTIFY)
    assert (feedback[sc.ROLLOUT_FEEDBACK_NAME], feedback[sc.ROLLOUT_FEEDBACK_VALUE]) == (
        "thumbs_up",
        True,
    )
    assert (signal[sc.ROLLOUT_SIGNAL_NAME], signal[sc.ROLLOUT_SIGNAL_VALUE]) == ("escalated", False)
    assert identify[sc.ROLLOUT_USER_ID] == "u5"
    assert captured.by_name("inner")["events"] == []
    assert captured.by_name("later")["attributes"][sc.ROLLOUT_USER_ID] == "u5"


@pytest.mark.parametrize("mode", MODES)
async def test_module_level_helpers_without_a_trace_are_no_ops(
    captured: CapturedSpans, mode: str
) -> None:
    """With no active trace, rollout.feedback/signal/identify_user do nothing and never raise."""
    if mode == "async":
        await asyncio.sleep(0)
    rollout.feedback("thumbs_up", True)
    rollout.signal("order_placed", {"value": 1})
    rollout.identify_user("u1", traits={"plan": "pro"})
    async with entered(rollout.trace("after"), mode):
        pass
    root = captured.by_name("invoke_workflow after")
    assert root["events"] == []
    assert sc.ROLLOUT_USER_ID not in root["attributes"]
    assert len(captured.as_dicts()) == 1


def test_module_level_helpers_before_init_are_no_ops() -> None:
    """Before init() (no client at all) the module-level helpers do nothing and never raise."""
    assert rollout.current_trace() is None
    rollout.feedback("thumbs_up", True)
    rollout.signal("order_placed", 1)
    rollout.identify_user("u1")


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("mode", MODES)
async def test_agent_input_and_output_on_the_trace_span(
    captured: CapturedSpans, mode: str, opener: str
) -> None:
    """set_agent_input / set_agent_output record the run's input and output on the trace span."""
    async with entered(open_trace(captured, opener, "agent_run"), mode) as trace:
        trace.set_agent_input({"question": "Where is my order?"})
        async with entered(trace.span("task", name="child"), mode):
            pass
        trace.set_agent_output("It ships tomorrow.")

    attrs = captured.by_name("invoke_workflow agent_run")["attributes"]
    assert json.loads(attrs[sc.ROLLOUT_INPUT]) == {"question": "Where is my order?"}
    assert json.loads(attrs[sc.INPUT_VALUE]) == {"question": "Where is my order?"}
    assert attrs[sc.ROLLOUT_INPUT_MIME_TYPE] == "application/json"
    assert attrs[sc.ROLLOUT_OUTPUT] == "It ships tomorrow."
    assert attrs[sc.OUTPUT_VALUE] == "It ships tomorrow."
    assert attrs[sc.ROLLOUT_OUTPUT_MIME_TYPE] == "text/plain"
    child = captured.by_name("child")["attributes"]
    assert sc.ROLLOUT_INPUT not in child
    assert sc.ROLLOUT_OUTPUT not in child


# == usage ====================================================================================


@pytest.mark.parametrize("mode", MODES)
async def test_set_usage_with_mirrors(captured: CapturedSpans, mode: str) -> None:
    """set_usage sets rollout.usage.* plus the GenAI and OpenInference mirrors; total derived."""
    async with (
        entered(captured.client.trace("chat"), mode) as trace,
        entered(trace.llm("answer", model="gpt-4o"), mode) as llm,
    ):
        llm.set_usage(
            input_tokens=120,
            output_tokens=45,
            cached_tokens=100,
            reasoning_tokens=7,
            cost_usd=0.0012,
        )

    attrs = captured.by_name("chat gpt-4o")["attributes"]
    assert attrs[sc.ROLLOUT_USAGE_INPUT_TOKENS] == 120
    assert attrs[sc.ROLLOUT_USAGE_OUTPUT_TOKENS] == 45
    assert attrs[sc.ROLLOUT_USAGE_CACHED_TOKENS] == 100
    assert attrs[sc.ROLLOUT_USAGE_REASONING_TOKENS] == 7
    assert attrs[sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 165
    assert attrs[sc.ROLLOUT_USAGE_COST_USD] == pytest.approx(0.0012)
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 120
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 45
    assert attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 100
    assert attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 7
    assert attrs[sc.LLM_TOKEN_COUNT_PROMPT] == 120
    assert attrs[sc.LLM_TOKEN_COUNT_COMPLETION] == 45
    assert attrs[sc.LLM_TOKEN_COUNT_TOTAL] == 165
    assert attrs[sc.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ] == 100
    assert attrs[sc.LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING] == 7
    assert attrs[sc.LLM_COST_TOTAL] == pytest.approx(0.0012)


@pytest.mark.parametrize("mode", MODES)
async def test_set_usage_keeps_an_explicit_total(captured: CapturedSpans, mode: str) -> None:
    """An explicit total_tokens is kept; with only input tokens no total is invented."""
    async with entered(captured.client.trace("chat"), mode) as trace:
        async with entered(trace.llm("a", model="m1"), mode) as first:
            first.set_usage(input_tokens=10, output_tokens=5, total_tokens=20)
        async with entered(trace.llm("b", model="m2"), mode) as second:
            second.set_usage(input_tokens=10)

    first_attrs = captured.by_name("chat m1")["attributes"]
    assert first_attrs[sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 20
    assert first_attrs[sc.LLM_TOKEN_COUNT_TOTAL] == 20
    second_attrs = captured.by_name("chat m2")["attributes"]
    assert second_attrs[sc.ROLLOUT_USAGE_INPUT_TOKENS] == 10
    assert sc.ROLLOUT_USAGE_TOTAL_TOKENS not in second_attrs
    assert sc.ROLLOUT_USAGE_OUTPUT_TOKENS not in second_attrs


USAGE_KEYS_SUMMED = (
    sc.ROLLOUT_USAGE_INPUT_TOKENS,
    sc.ROLLOUT_USAGE_OUTPUT_TOKENS,
    sc.ROLLOUT_USAGE_CACHED_TOKENS,
    sc.ROLLOUT_USAGE_REASONING_TOKENS,
    sc.ROLLOUT_USAGE_TOTAL_TOKENS,
)
USAGE_MIRRORS = (
    sc.GEN_AI_USAGE_INPUT_TOKENS,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    sc.LLM_TOKEN_COUNT_PROMPT,
    sc.LLM_TOKEN_COUNT_COMPLETION,
    sc.LLM_TOKEN_COUNT_TOTAL,
    sc.LLM_COST_TOTAL,
)


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("mode", MODES)
async def test_trace_sums_usage_of_all_descendants(
    captured: CapturedSpans, mode: str, opener: str
) -> None:
    """The trace span sums children, grandchildren and a nested trace, without the mirrors."""
    async with entered(open_trace(captured, opener, "outer"), mode) as trace:
        async with entered(trace.llm("child", model="m-child"), mode) as child:
            child.set_usage(
                input_tokens=10, output_tokens=1, cached_tokens=4, reasoning_tokens=1, cost_usd=0.25
            )
        async with (
            entered(trace.span("task", name="planner"), mode),
            entered(rollout.span("llm", model="m-grandchild"), mode) as grandchild,
        ):
            grandchild.set_usage(input_tokens=20, output_tokens=2, cost_usd=0.5)
        async with (
            entered(rollout.trace("nested"), mode) as nested,
            entered(nested.llm("deep", model="m-nested"), mode) as deep,
        ):
            deep.set_usage(input_tokens=30, output_tokens=3, reasoning_tokens=2, cost_usd=1.0)

    outer = captured.by_name("invoke_workflow outer")["attributes"]
    assert outer[sc.ROLLOUT_USAGE_INPUT_TOKENS] == 60
    assert outer[sc.ROLLOUT_USAGE_OUTPUT_TOKENS] == 6
    assert outer[sc.ROLLOUT_USAGE_CACHED_TOKENS] == 4
    assert outer[sc.ROLLOUT_USAGE_REASONING_TOKENS] == 3
    assert outer[sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 66
    assert outer[sc.ROLLOUT_USAGE_COST_USD] == pytest.approx(1.75)
    for key in USAGE_MIRRORS:
        assert key not in outer, key

    inner = captured.by_name("invoke_workflow nested")["attributes"]
    assert inner[sc.ROLLOUT_USAGE_INPUT_TOKENS] == 30
    assert inner[sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 33
    assert inner[sc.ROLLOUT_USAGE_COST_USD] == pytest.approx(1.0)
    for key in USAGE_MIRRORS:
        assert key not in inner, key
    planner = captured.by_name("planner")["attributes"]
    assert sc.ROLLOUT_USAGE_INPUT_TOKENS not in planner
    assert captured.by_name("chat m-grandchild")["attributes"][sc.GEN_AI_USAGE_INPUT_TOKENS] == 20


def test_usage_from_four_threads_sums_correctly(captured: CapturedSpans) -> None:
    """Usage set concurrently from 4 real threads is summed exactly on the trace span."""
    count, per_thread = 4, 50
    barrier = threading.Barrier(count, timeout=10)
    errors: list[BaseException] = []

    def work(trace: rollout.Trace) -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                with trace.llm("call", model="m") as llm:
                    llm.set_usage(input_tokens=3, output_tokens=2, cost_usd=0.5)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    with captured.client.trace("threaded") as trace:
        threads = [threading.Thread(target=work, args=(trace,)) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert errors == []
    calls = count * per_thread
    root = captured.by_name("invoke_workflow threaded")
    spans = captured.as_dicts()
    llms = [s for s in spans if s["type"] == "llm"]
    assert len(llms) == calls
    assert {s["parent_id"] for s in llms} == {root["span_id"]}
    attrs = root["attributes"]
    assert attrs[sc.ROLLOUT_USAGE_INPUT_TOKENS] == 3 * calls
    assert attrs[sc.ROLLOUT_USAGE_OUTPUT_TOKENS] == 2 * calls
    assert attrs[sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 5 * calls
    assert attrs[sc.ROLLOUT_USAGE_COST_USD] == pytest.approx(0.5 * calls)


async def test_usage_from_concurrent_tasks_sums_correctly(captured: CapturedSpans) -> None:
    """Usage set from concurrent asyncio tasks, interleaved at every await, is summed exactly."""
    tasks, per_task = 4, 50

    async def work(trace: rollout.Trace) -> None:
        for _ in range(per_task):
            async with trace.llm("call", model="m") as llm:
                await asyncio.sleep(0)
                llm.set_usage(input_tokens=3, output_tokens=2, cost_usd=0.5)
                await asyncio.sleep(0)

    async with captured.client.trace("gathered") as trace:
        await asyncio.gather(*(work(trace) for _ in range(tasks)))

    calls = tasks * per_task
    attrs = captured.by_name("invoke_workflow gathered")["attributes"]
    assert attrs[sc.ROLLOUT_USAGE_INPUT_TOKENS] == 3 * calls
    assert attrs[sc.ROLLOUT_USAGE_OUTPUT_TOKENS] == 2 * calls
    assert attrs[sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 5 * calls
    assert attrs[sc.ROLLOUT_USAGE_COST_USD] == pytest.approx(0.5 * calls)


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
    assert attrs[sc.ROLLOUT_OUTPUT] == "Hello, world!!! done"
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
    assert span["attributes"][sc.ROLLOUT_OUTPUT] == "ab"


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


# == payloads =================================================================================


class Order(BaseModel):
    """A pydantic model."""

    id: int
    items: list[str]


@dataclasses.dataclass
class Point:
    """A dataclass."""

    x: int
    y: int


class Color(enum.Enum):
    """An enum."""

    RED = "red"


class BrokenRepr:
    """An object whose repr raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _cyclic() -> dict[str, Any]:
    data: dict[str, Any] = {"a": 1}
    data["self"] = data
    return data


PAYLOADS: dict[str, tuple[object, object]] = {
    "pydantic": (Order(id=1, items=["a"]), {"id": 1, "items": ["a"]}),
    "dataclass": (Point(1, 2), {"x": 1, "y": 2}),
    "enum": (Color.RED, "red"),
    "datetime": (datetime.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
    "set": ({3, 1, 2}, [1, 2, 3]),
    "bytes": (b"hi", "hi"),
    "cycle": (_cyclic(), {"a": 1, "self": "<cycle>"}),
    "broken_repr": (BrokenRepr(), "<unrepresentable BrokenRepr>"),
    "mixed": (
        {"p": Point(0, 1), "c": Color.RED, "s": {"x"}},
        {"p": {"x": 0, "y": 1}, "c": "red", "s": ["x"]},
    ),
}


@pytest.mark.parametrize("kind", list(PAYLOADS))
@pytest.mark.parametrize("mode", MODES)
async def test_payloads_through_every_facade(captured: CapturedSpans, mode: str, kind: str) -> None:
    """record_input/record_output, tool arguments and agent input/output turn anything into JSON."""
    value, expected = PAYLOADS[kind]
    async with entered(captured.client.trace("payloads"), mode) as trace:
        trace.set_agent_input(value)
        async with entered(trace.span("task", name="work"), mode) as span:
            span.record_input(value)
            span.record_output(value)
        async with entered(trace.tool("use", arguments=value), mode) as call:
            call.record_output(value)
        trace.set_agent_output(value)

    root = captured.by_name("invoke_workflow payloads")["attributes"]
    work = captured.by_name("work")["attributes"]
    tool = captured.by_name("execute_tool use")["attributes"]
    recorded = [
        root[sc.ROLLOUT_INPUT],
        root[sc.ROLLOUT_OUTPUT],
        work[sc.ROLLOUT_INPUT],
        work[sc.ROLLOUT_OUTPUT],
        work[sc.INPUT_VALUE],
        work[sc.OUTPUT_VALUE],
        tool[sc.ROLLOUT_INPUT],
        tool[sc.GEN_AI_TOOL_CALL_ARGUMENTS],
        tool[sc.ROLLOUT_OUTPUT],
        tool[sc.GEN_AI_TOOL_CALL_RESULT],
    ]
    for text in recorded:
        assert isinstance(text, str)
        assert json.loads(text) == expected
    assert work[sc.ROLLOUT_INPUT_MIME_TYPE] == "application/json"
    assert work[sc.ROLLOUT_OUTPUT_MIME_TYPE] == "application/json"
    assert captured.by_name("work")["status"] == "UNSET"


@pytest.mark.parametrize("mode", MODES)
async def test_huge_payload_is_capped_and_marked(mode: str) -> None:
    """A 5 MB string is cut to max_payload_chars and marked truncated with its original length."""
    huge = "x" * FIVE_MB
    with capture_spans(max_payload_chars=1000) as captured:
        async with (
            entered(captured.client.trace("big"), mode) as trace,
            entered(trace.span("task", name="work"), mode) as span,
        ):
            span.record_input("short")
            span.record_output(huge)
        attrs = captured.by_name("work")["attributes"]

    output = attrs[sc.ROLLOUT_OUTPUT]
    assert isinstance(output, str)
    assert len(output) <= 1000
    assert output.startswith("x" * 900)
    assert output != huge[: len(output)], "the cut is marked"
    assert len(attrs[sc.OUTPUT_VALUE]) <= 1000
    assert attrs[sc.ROLLOUT_OUTPUT_TRUNCATED] is True
    assert attrs[sc.ROLLOUT_OUTPUT_ORIGINAL_LENGTH] == FIVE_MB
    assert attrs[sc.ROLLOUT_INPUT] == "short"
    assert sc.ROLLOUT_INPUT_TRUNCATED not in attrs
    assert sc.ROLLOUT_INPUT_ORIGINAL_LENGTH not in attrs


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


# == disabled and untraced ====================================================================


def _exercise_trace(trace: rollout.Trace) -> None:
    """Call every Trace method that does not open a child."""
    trace.message(role="user", content="hi", content_type="text/plain", tool_call_id="c1")
    trace.feedback("thumbs_up", True)
    trace.signal("order_placed", {"value": 1})
    trace.identify_user("u1", traits={"plan": "pro"}, account_id="a1")
    trace.set_agent_input({"q": "hi"})
    trace.set_agent_output("bye")


def _exercise_span(span: rollout.Span) -> None:
    """Call every Span method (the span is ended by end())."""
    span.record_input({"q": 1})
    span.record_output(Point(1, 2))
    span.set_usage(input_tokens=1, output_tokens=2, cost_usd=0.1)
    span.record_chunk("chunk")
    span.end("done", usage={"input_tokens": 3})


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("mode", MODES)
async def test_disabled_client_facades_work_and_export_nothing(mode: str, opener: str) -> None:
    """disabled=True: every facade method works, current_trace() is a Trace, nothing exported."""
    with capture_spans(disabled=True) as captured:
        async with entered(open_trace(captured, opener, "off"), mode) as trace:
            current = rollout.current_trace()
            assert isinstance(current, rollout.Trace)
            assert current is trace
            assert not trace.is_recording
            _exercise_trace(trace)
            rollout.feedback("x", 1)
            rollout.signal("y", 2)
            rollout.identify_user("u2")
            async with entered(trace.span("retrieval", name="r"), mode) as span:
                _exercise_span(span)
            async with entered(trace.llm("l", model="m"), mode) as llm:
                _exercise_span(llm)
            async with entered(trace.tool("t", arguments={"a": 1}), mode) as call:
                call.record_output(1)
            async with entered(rollout.span("task"), mode) as module_span:
                assert isinstance(module_span, rollout.Span)
                _exercise_span(module_span)
            async with entered(rollout.tool("t2"), mode) as module_tool:
                assert isinstance(module_tool, rollout.ToolCall)
                module_tool.record_output(2)
            with pytest.raises(RuntimeError):
                async with entered(trace.span("task", name="failing"), mode):
                    raise RuntimeError("still raised")
        assert rollout.current_trace() is None
        assert captured.spans() == ()
        assert captured.exporter.get_finished_spans() == ()


@pytest.mark.parametrize("factory", ["span", "tool", "task"])
@pytest.mark.parametrize("mode", MODES)
async def test_untraced_context_managers_work_and_export_nothing(
    captured: CapturedSpans, mode: str, factory: str
) -> None:
    """rollout.span/tool/task with no active trace yield working objects and export nothing."""
    scope: Scope[rollout.Span]
    if factory == "span":
        scope = rollout.span("retrieval", name="lookup")
    elif factory == "tool":
        scope = rollout.tool("lookup")
    else:
        scope = rollout.task("lookup")
    async with entered(scope, mode) as span:
        assert isinstance(span, rollout.Span)
        assert not span.is_recording
        _exercise_span(span)
    with pytest.raises(LookupError):
        async with entered(rollout.task("failing"), mode):
            raise LookupError("propagates")
    assert captured.spans() == ()


@pytest.mark.parametrize("mode", MODES)
async def test_untraced_context_managers_nested_export_nothing(
    captured: CapturedSpans, mode: str
) -> None:
    """span/tool/task nested in each other with no trace anywhere still export nothing."""

    @rollout.tool("decorated_tool")
    def decorated_tool() -> int:
        return 1

    async with entered(rollout.span("retrieval", name="outer"), mode) as outer:
        outer.record_input("q")
        async with entered(rollout.tool("inner_tool"), mode) as tool:
            tool.record_output(1)
            async with entered(rollout.task("inner_task"), mode) as task:
                task.set_usage(input_tokens=1, output_tokens=1)
                assert decorated_tool() == 1
    assert [s["name"] for s in captured.as_dicts()] == []


# == delivery at trace exit ===================================================================


class SignallingExporter(SpanExporter):
    """Keeps exported spans in memory and sets an event when a wanted span arrives."""

    def __init__(self, wanted: str) -> None:
        self.memory = InMemorySpanExporter()
        self.wanted = wanted
        self.arrived = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Store the batch; signal when it holds the wanted span."""
        result = self.memory.export(spans)
        if any(span.name == self.wanted for span in spans):
            self.arrived.set()
        return result

    def shutdown(self) -> None:
        """Release the in-memory store."""
        self.memory.shutdown()


@pytest.mark.parametrize("mode", MODES)
async def test_trace_exit_sends_batched_spans_without_flush(mode: str) -> None:
    """With a real BatchSpanProcessor the trace's spans are exported after `with` ends."""
    exporter = SignallingExporter("invoke_workflow batched")
    with capture_spans(sync_mode=False, flush_interval=60, span_exporters=[exporter]) as captured:
        async with entered(captured.client.trace("batched"), mode) as trace:
            async with entered(trace.span("task", name="step"), mode):
                pass
            async with entered(trace.tool("lookup"), mode) as call:
                call.record_output(1)
            assert exporter.memory.get_finished_spans() == (), "spans wait in the batch queue"
        if mode == "sync":
            arrived = exporter.arrived.wait(timeout=5)
        else:
            arrived = await asyncio.to_thread(exporter.arrived.wait, 5)
        assert arrived, "the trace's spans were not exported after the trace ended"
        names = sorted(s.name for s in exporter.memory.get_finished_spans())
        assert names == ["execute_tool lookup", "invoke_workflow batched", "step"]
        ids = {f"{s.context.trace_id:032x}" for s in exporter.memory.get_finished_spans()}
        assert ids == {trace.trace_id}
