"""`rollout.wrap_tools`: a set of tools instrumented at once, container type kept."""

from __future__ import annotations

import asyncio
import functools
import inspect
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.integrations._toolset import wrap_tools
from mv37.rollout.testing import CapturedSpans, capture_spans


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


class AsyncMultiply:
    async def __call__(self, a: int, b: int) -> int:
        return a * b


class Orders:
    """Tools that are methods of a service object."""

    def lookup(self, order_id: str, verbose: bool = False) -> str:
        """Find an order."""
        return f"order {order_id}"

    async def alookup(self, order_id: str, verbose: bool = False) -> str:
        """Find an order, async."""
        return f"order {order_id}"


def count(n: int) -> Iterator[int]:
    yield from range(n)


async def acount(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


async def _collect(agen: AsyncIterator[int]) -> list[int]:
    return [item async for item in agen]


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
    assert tool["attributes"][sc.INPUT_VALUE] == '{"a": 2, "b": 3}'
    assert tool["attributes"][sc.OUTPUT_VALUE] == "5"


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
    assert sc.INPUT_VALUE not in attrs
    assert sc.OUTPUT_VALUE not in attrs


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


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_methods_and_callable_objects_record_their_arguments_by_name(
    captured: CapturedSpans, mode: str
) -> None:
    orders = Orders()
    method: Any = orders.lookup if mode == "sync" else orders.alookup
    obj: Any = Multiply() if mode == "sync" else AsyncMultiply()
    tools = wrap_tools({"lookup": method, "multiply": obj})
    assert inspect.iscoroutinefunction(tools["lookup"]) is (mode == "async")
    assert tools["lookup"].__name__ == method.__name__
    assert tools["lookup"].__doc__ == method.__doc__
    assert inspect.signature(tools["lookup"]) == inspect.signature(method)
    with rollout.trace("run"):
        assert _call(tools["lookup"], mode, "o-1") == "order o-1"
        assert _call(tools["multiply"], mode, 2, 3) == 6
    assert captured.by_name("execute_tool lookup")["attributes"][sc.INPUT_VALUE] == (
        '{"order_id": "o-1"}'
    )
    assert captured.by_name("execute_tool multiply")["attributes"][sc.INPUT_VALUE] == (
        '{"a": 2, "b": 3}'
    )


def test_generator_tools_span_their_iteration(captured: CapturedSpans) -> None:
    sync_tools = wrap_tools([count])
    async_tools = wrap_tools([acount])
    with rollout.trace("run"):
        assert list(sync_tools[0](3)) == [0, 1, 2]
        assert asyncio.run(_collect(async_tools[0](2))) == [0, 1]
    assert captured.by_name("execute_tool count")["attributes"][sc.OUTPUT_VALUE] == "[0, 1, 2]"
    assert captured.by_name("execute_tool acount")["attributes"][sc.OUTPUT_VALUE] == "[0, 1]"


def test_other_mappings_become_dicts_other_iterables_lists() -> None:
    proxy: Any = wrap_tools(types.MappingProxyType({"add": add}))
    assert type(proxy) is dict
    generated: Any = wrap_tools(fn for fn in [add])
    assert type(generated) is list


@pytest.mark.parametrize("tools", [{"add": add, "oops": None}, [add, 42]])
def test_a_non_callable_is_a_type_error_naming_it(tools: Any) -> None:
    with pytest.raises(TypeError, match="not callable"):
        wrap_tools(tools)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_implicit_traces_of_methods_and_failures(captured: CapturedSpans, mode: str) -> None:
    orders = Orders()
    lookup_tool: Any = orders.lookup if mode == "sync" else orders.alookup
    tools = wrap_tools({"lookup": lookup_tool, "fail": fail}, implicit_trace=True)
    assert _call(tools["lookup"], mode, "o-2") == "order o-2"
    with pytest.raises(LookupError):
        tools["fail"]("gone")
    lookup = captured.by_name("execute_tool lookup")
    assert lookup["attributes"][sc.INPUT_VALUE] == '{"order_id": "o-2"}'
    assert lookup["parent_id"] == captured.by_name("invoke_workflow lookup")["span_id"]
    assert captured.by_name("execute_tool fail")["status"] == "ERROR"
    assert captured.by_name("invoke_workflow fail")["status"] == "ERROR"


@pytest.mark.parametrize("how", ["function", "method"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_implicit_traces_go_to_the_given_client(
    captured: CapturedSpans, mode: str, how: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    own = rollout.Rollout(tracer_provider=provider, console=False, sync_mode=True)
    tools_in = SYNC if mode == "sync" else ASYNC
    try:
        if how == "function":
            tools = wrap_tools(tools_in, implicit_trace=True, client=own)
        else:
            tools = own.wrap_tools(tools_in, implicit_trace=True)
        assert _call(tools["add"], mode, 1, 2) == 3
        assert not own.is_shut_down
    finally:
        own.shutdown()
    assert own.is_shut_down
    names = sorted(span.name for span in exporter.get_finished_spans())
    assert names == ["execute_tool add", "invoke_workflow add"]
    assert captured.as_dicts() == []


def test_a_disabled_client_runs_the_tools_and_records_nothing() -> None:
    with capture_spans(disabled=True) as quiet:
        tools = wrap_tools({"add": add}, implicit_trace=True)
        with rollout.trace("run"):
            assert tools["add"](1, 2) == 3
        assert tools["add"](2, 2) == 4
        assert quiet.as_dicts() == []
