"""The kill switch and sampling never change what user code does.

With `ROLLOUT_DISABLED=true` (or `disabled=True`), and for a trace that is sampled out,
the same code runs unchanged: inside a decorated function or a `with rollout.trace(...)`
block, `current_trace()` and `current_span()` are facades whose every method works and
records nothing. Outside any scope `current_trace()` stays `None`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout
from mv37.rollout.testing import CapturedSpans, capture_spans

MODES = ["sync", "async"]
SHAPES = ["sync", "async", "gen", "agen"]
SETTINGS = ["env", "argument", "sampled_out"]


@contextlib.contextmanager
def quiet_client(setting: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CapturedSpans]:
    """A client that records nothing: disabled by env or argument, or sampling out all."""
    if setting == "env":
        monkeypatch.setenv("ROLLOUT_DISABLED", "true")
        with capture_spans() as captured:
            assert rollout.get_client().disabled
            yield captured
    elif setting == "argument":
        with capture_spans(disabled=True) as captured:
            yield captured
    else:
        with capture_spans(sample_rate=0.0) as captured:
            yield captured


def exercise_trace(trace: rollout.Trace) -> None:
    """Every Trace method, as user code calls them."""
    trace.message(role="user", content="hi")
    trace.message(role="assistant", content={"a": 1}, content_type="json", tool_call_id="c1")
    trace.feedback("thumbs", True)
    trace.signal("resolved", 1.0, attributes={"k": "v"})
    trace.identify_user("u-1", traits={"plan": "pro"}, account_id="acct")
    trace.set_agent_input({"q": 1})
    trace.set_agent_output("done")
    assert isinstance(trace.trace_id, str)
    assert isinstance(trace.span_id, str)
    assert trace.name is not None
    assert not trace.is_recording


def exercise_span(span: rollout.Span) -> None:
    """Every Span method, as user code calls them."""
    span.record_input([{"role": "user", "content": "hi"}])
    span.record_output("out")
    span.set_usage(input_tokens=3, output_tokens=4, cost_usd=0.1)
    span.record_chunk("a")
    span.record_chunk("b")
    assert not span.is_recording


def exercise_children_sync(trace: rollout.Trace) -> None:
    with trace.span("retrieval", name="r") as span:
        exercise_span(span)
    with trace.llm("answer", model="m", provider="p") as llm:
        exercise_span(llm)
        llm.end(output="x", usage={"input_tokens": 1})
    with trace.tool("t", tool_call_id="c", arguments={"a": 1}) as call:
        call.record_output({"ok": True})
    with rollout.span("task") as module_span:
        exercise_span(module_span)
    with rollout.tool("t2") as module_tool:
        module_tool.record_output(1)


async def exercise_children_async(trace: rollout.Trace) -> None:
    async with trace.span("retrieval", name="r") as span:
        exercise_span(span)
    async with trace.llm("answer", model="m") as llm:
        exercise_span(llm)
    async with trace.tool("t", arguments={"a": 1}) as call:
        call.record_output({"ok": True})
    async with rollout.span("task") as module_span:
        exercise_span(module_span)
    async with rollout.task("t3") as module_task:
        exercise_span(module_task)


def exercise_current(*, in_span: bool = True) -> None:
    """What a helper deep inside the call does: no None checks.

    A sampled-out trace behaves as a recorded one does: directly inside a trace (no span
    open) `current_span()` is None there too (`in_span=False`).
    """
    trace = rollout.current_trace()
    span = rollout.current_span()
    assert isinstance(trace, rollout.Trace)
    exercise_trace(trace)
    if in_span or span is not None:
        assert isinstance(span, rollout.Span)
        exercise_span(span)
    rollout.feedback("csat", 5)
    rollout.signal("escalated", False)
    rollout.identify_user("u-2")
    rollout.capture_event("metric", name="latency_ms", value=3)


def assert_nothing_recorded(captured: CapturedSpans, setting: str) -> None:
    assert captured.spans() == ()
    if setting != "sampled_out":
        assert rollout.stats().spans_started == 0


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("mode", MODES)
async def test_readme_traced_function_runs_unchanged(
    monkeypatch: pytest.MonkeyPatch, setting: str, mode: str
) -> None:
    """The README's traced-function example returns its value when nothing is recorded."""
    with quiet_client(setting, monkeypatch) as captured:

        @rollout.tool("get_weather")
        def get_weather(city: str) -> dict[str, Any]:
            return {"city": city, "temp": 21}

        if mode == "sync":

            @rollout.trace("support_agent")
            def handle_request(text: str) -> str:
                rollout.current_trace().message(role="user", content=text)  # type: ignore[union-attr]
                weather = get_weather("Paris")
                return f"It's {weather['temp']}°C."

            result = handle_request("hi")
        else:

            @rollout.trace("support_agent")
            async def ahandle_request(text: str) -> str:
                rollout.current_trace().message(role="user", content=text)  # type: ignore[union-attr]
                weather = get_weather("Paris")
                return f"It's {weather['temp']}°C."

            result = await ahandle_request("hi")

        assert result == "It's 21°C."
        assert_nothing_recorded(captured, setting)
    assert rollout.current_trace() is None


def _decorated(shape: str, kind: str, body: Callable[[], None]) -> Callable[[], Any]:
    deco: Any = {
        "agent": rollout.agent("a"),
        "trace": rollout.trace("t"),
        "tool": rollout.tool("x"),
        "task": rollout.task("k"),
        "span": rollout.span("retrieval"),
    }[kind]

    if shape == "sync":

        def sync_fn() -> str:
            body()
            return "done"

        return deco(sync_fn)  # type: ignore[no-any-return]
    if shape == "async":

        async def async_fn() -> str:
            body()
            return "done"

        return deco(async_fn)  # type: ignore[no-any-return]
    if shape == "gen":

        def gen_fn() -> Iterator[str]:
            body()
            yield "done"
            body()

        return deco(gen_fn)  # type: ignore[no-any-return]

    async def agen_fn() -> AsyncIterator[str]:
        body()
        yield "done"
        body()

    return deco(agen_fn)  # type: ignore[no-any-return]


async def _call(shape: str, fn: Callable[[], Any]) -> Any:
    if shape == "sync":
        return fn()
    if shape == "async":
        return await fn()
    if shape == "gen":
        return list(fn())
    return [item async for item in fn()]


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["agent", "trace", "tool", "task", "span"])
async def test_every_facade_method_works_inside_every_decorator(
    monkeypatch: pytest.MonkeyPatch, setting: str, shape: str, kind: str
) -> None:
    """Inside any decorated function (all four shapes) the facades work, nothing is exported."""
    calls: list[None] = []

    def body() -> None:
        exercise_current(in_span=setting != "sampled_out" or kind not in ("agent", "trace"))
        trace = rollout.current_trace()
        assert trace is not None
        exercise_children_sync(trace)
        calls.append(None)

    with quiet_client(setting, monkeypatch) as captured:
        fn = _decorated(shape, kind, body)
        if kind in ("agent", "trace"):
            result = await _call(shape, fn)
        else:
            with rollout.trace("outer"):
                result = await _call(shape, fn)
        assert result == ("done" if shape in ("sync", "async") else ["done"])
        assert len(calls) == (1 if shape in ("sync", "async") else 2)
        assert rollout.current_trace() is None
        assert_nothing_recorded(captured, setting)


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("mode", MODES)
async def test_with_blocks_give_working_facades(
    monkeypatch: pytest.MonkeyPatch, setting: str, mode: str
) -> None:
    """`with rollout.trace(...)` / `async with`: the trace and its children work, no export."""
    with quiet_client(setting, monkeypatch) as captured:
        if mode == "sync":
            with rollout.trace("t") as trace:
                assert rollout.current_trace() is trace
                exercise_trace(trace)
                exercise_current(in_span=setting != "sampled_out")
                exercise_children_sync(trace)
        else:
            async with rollout.trace("t") as trace:
                assert rollout.current_trace() is trace
                exercise_trace(trace)
                exercise_current(in_span=setting != "sampled_out")
                await exercise_children_async(trace)
        with rollout.get_client().trace("client-trace") as client_trace:
            exercise_trace(client_trace)
            exercise_current(in_span=setting != "sampled_out")
        assert rollout.current_trace() is None
        assert rollout.current_span() is None
        assert_nothing_recorded(captured, setting)


@pytest.mark.parametrize("setting", SETTINGS)
def test_threads_via_bind_context_get_the_facades(
    monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    """A thread-pool worker bound with `bind_context` sees working facades too."""
    seen: list[str] = []

    def worker(tag: str) -> str:
        exercise_current(in_span=setting != "sampled_out")
        seen.append(threading.current_thread().name)
        return tag

    with quiet_client(setting, monkeypatch) as captured:

        @rollout.agent("fan_out")
        def fan_out() -> list[str]:
            with ThreadPoolExecutor(max_workers=4) as pool:
                return list(pool.map(rollout.bind_context(worker), ["a", "b", "c", "d"]))

        assert fan_out() == ["a", "b", "c", "d"]
        assert len(seen) == 4
        assert_nothing_recorded(captured, setting)


@pytest.mark.parametrize("setting", SETTINGS)
async def test_concurrent_tasks_each_see_their_facades(
    monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    """Many asyncio tasks at once: each sees a facade, and none leaks out afterwards."""
    with quiet_client(setting, monkeypatch) as captured:

        @rollout.agent("one")
        async def one(i: int) -> int:
            await asyncio.sleep(0)
            exercise_current(in_span=setting != "sampled_out")
            await asyncio.sleep(0)
            return i

        results = await asyncio.gather(*(one(i) for i in range(50)))
        assert results == list(range(50))
        assert rollout.current_trace() is None
        assert_nothing_recorded(captured, setting)


def test_outside_any_scope_current_trace_stays_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """Disabled or not, with no scope open there is no current trace or span."""
    monkeypatch.setenv("ROLLOUT_DISABLED", "true")
    with capture_spans():
        assert rollout.current_trace() is None
        assert rollout.current_span() is None

        @rollout.tool("alone")
        def alone() -> object:
            return rollout.current_trace()

        assert alone() is not None  # inside a decorated function: the no-op facade
        assert rollout.current_trace() is None


def test_disabled_scopes_leave_the_ambient_otel_span_current() -> None:
    """A user's OTel span stays the parent of their own spans inside a disabled scope."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("user")
    with capture_spans(disabled=True) as captured:

        @rollout.agent("quiet")
        def quiet() -> None:
            with tracer.start_as_current_span("inner"):
                pass

        with tracer.start_as_current_span("outer") as outer:
            quiet()
            with rollout.trace("block"), tracer.start_as_current_span("inner2"):
                assert otel_trace.get_current_span().get_span_context().is_valid
        spans = {s.name: s for s in exporter.get_finished_spans()}
        outer_id = outer.get_span_context().span_id
        assert spans["inner"].parent is not None
        assert spans["inner"].parent.span_id == outer_id
        assert spans["inner2"].parent is not None
        assert spans["inner2"].parent.span_id == outer_id
        assert captured.spans() == ()
