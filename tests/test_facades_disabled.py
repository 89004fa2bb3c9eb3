"""The facades on a disabled client and the untraced context managers: the code runs, the
facades work, nothing is exported. Each test runs with `with` and `async with`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import mv37.rollout as rollout
from mv37.rollout.testing import CapturedSpans, capture_spans

if TYPE_CHECKING:
    from tests.helpers import MODES, OPENERS, Point, Scope, entered, open_trace
else:
    from helpers import MODES, OPENERS, Point, Scope, entered, open_trace


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
