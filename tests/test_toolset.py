"""`rollout.wrap_tools`: a set of tools instrumented at once, container type kept."""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any

import pytest

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.integrations._toolset import wrap_tools
from mv37.rollout.testing import CapturedSpans


def add(a: int, b: int) -> int:
    return a + b


async def aadd(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


def fail(reason: str) -> None:
    raise LookupError(reason)


async def afail(reason: str) -> None:
    raise LookupError(reason)


class Multiply:
    def __call__(self, a: int, b: int) -> int:
        return a * b


def _call(fn: Any, mode: str, *args: Any) -> Any:
    result = fn(*args)
    return asyncio.run(result) if mode == "async" else result


SYNC = {"add": add, "fail": fail}
ASYNC = {"add": aadd, "fail": afail}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_mapping_in_dict_out_each_call_a_tool_span(captured: CapturedSpans, mode: str) -> None:
    tools = wrap_tools(SYNC if mode == "sync" else ASYNC)
    assert type(tools) is dict
    assert set(tools) == {"add", "fail"}
    assert inspect.iscoroutinefunction(tools["add"]) is (mode == "async")
    with rollout.trace("run"):
        assert _call(tools["add"], mode, 2, 3) == 5
    tool = captured.by_name("execute_tool add")
    assert tool["parent_id"] == captured.by_name("invoke_workflow run")["span_id"]
    assert tool["attributes"][sc.ROLLOUT_INPUT] == '{"a": 2, "b": 3}'
    assert tool["attributes"][sc.ROLLOUT_OUTPUT] == "5"


@pytest.mark.parametrize("container", [list, tuple])
def test_iterables_keep_their_type_and_names_come_from_the_callables(
    captured: CapturedSpans, container: type
) -> None:
    tools: Any = wrap_tools(container([add, Multiply(), functools.partial(add, 10)]))
    assert type(tools).__name__ == container.__name__
    with rollout.trace("run"):
        assert [tools[0](1, 2), tools[1](2, 3), tools[2](5)] == [3, 6, 15]
    names = sorted(s["name"] for s in captured.as_dicts() if s["name"].startswith("execute"))
    assert names == ["execute_tool Multiply", "execute_tool add", "execute_tool add"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_exceptions_pass_through_and_mark_the_span(captured: CapturedSpans, mode: str) -> None:
    tools = wrap_tools(SYNC if mode == "sync" else ASYNC)
    with rollout.trace("run"), pytest.raises(LookupError, match="no such order"):
        _call(tools["fail"], mode, "no such order")
    span = captured.by_name("execute_tool fail")
    assert span["status"] == "ERROR"


def test_recording_switches(captured: CapturedSpans) -> None:
    tools = wrap_tools({"add": add}, record_input=False, record_output=False)
    with rollout.trace("run"):
        tools["add"](1, 1)
    attrs = captured.by_name("execute_tool add")["attributes"]
    assert sc.ROLLOUT_INPUT not in attrs
    assert sc.ROLLOUT_OUTPUT not in attrs


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_outside_a_trace_untraced_unless_implicit(captured: CapturedSpans, mode: str) -> None:
    plain = wrap_tools(SYNC if mode == "sync" else ASYNC)
    assert _call(plain["add"], mode, 1, 2) == 3
    assert captured.as_dicts() == []
    implicit = wrap_tools(SYNC if mode == "sync" else ASYNC, implicit_trace=True)
    assert _call(implicit["add"], mode, 1, 2) == 3
    assert sorted(s["name"] for s in captured.as_dicts()) == [
        "execute_tool add",
        "invoke_workflow add",
    ]
    captured.clear()
    with rollout.trace("run"):  # inside a trace: just the tool span
        assert _call(implicit["add"], mode, 1, 2) == 3
    assert sorted(s["name"] for s in captured.as_dicts()) == [
        "execute_tool add",
        "invoke_workflow run",
    ]


def test_wrapping_twice_does_not_double_wrap(captured: CapturedSpans) -> None:
    once = wrap_tools({"add": add})
    twice = wrap_tools(once)
    assert twice["add"] is once["add"]
    fresh = wrap_tools([add])  # the original function was not marked
    with rollout.trace("run"):
        twice["add"](1, 1)
        fresh[0](1, 1)
    assert len([s for s in captured.as_dicts() if s["name"] == "execute_tool add"]) == 2


def test_not_a_collection_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="mapping of name"):
        wrap_tools(add)
