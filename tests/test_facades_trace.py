"""The Trace facade: messages, feedback, signals and identify on the trace, the module-level
helpers, usage summed over descendants (threads, tasks), and delivery at trace exit.

Everything is asserted on exported spans. Each test runs with `with` and `async with`
(the `mode` parameter); traces are opened both through the client and the module.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans, capture_spans

if TYPE_CHECKING:
    from tests.helpers import MODES, OPENERS, entered, events_named, open_trace
else:
    from helpers import MODES, OPENERS, entered, events_named, open_trace


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
    assert json.loads(attrs[sc.INPUT_VALUE]) == {"question": "Where is my order?"}
    assert json.loads(attrs[sc.INPUT_VALUE]) == {"question": "Where is my order?"}
    assert attrs[sc.INPUT_MIME_TYPE] == "application/json"
    assert attrs[sc.OUTPUT_VALUE] == "It ships tomorrow."
    assert attrs[sc.OUTPUT_VALUE] == "It ships tomorrow."
    assert attrs[sc.OUTPUT_MIME_TYPE] == "text/plain"
    child = captured.by_name("child")["attributes"]
    assert sc.INPUT_VALUE not in child
    assert sc.OUTPUT_VALUE not in child


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
