"""The decorator matrix: agent/trace/span/tool/task x every call shape, on exported spans.

Shapes: sync and async functions, generators, async generators, and (sync and async)
methods, classmethods and staticmethods (decorator applied outside `@classmethod` /
`@staticmethod`). Everything is asserted on what the in-memory exporter received.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import time
import traceback
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

import mv37.rollout as rollout
from mv37.rollout import _global
from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans, capture_spans

F = TypeVar("F", bound=Callable[..., Any])
Body = Callable[[str, int, tuple[Any, ...]], Any]
Deco = Callable[[Any], Any]

# -- the matrix axes ------------------------------------------------------------------------

# shape -> (call mode, where the function lives)
SHAPES: dict[str, tuple[str, str]] = {
    "sync": ("sync", "function"),
    "async": ("async", "function"),
    "gen": ("gen", "function"),
    "agen": ("agen", "function"),
    "method": ("sync", "method"),
    "async_method": ("async", "method"),
    "classmethod": ("sync", "classmethod"),
    "async_classmethod": ("async", "classmethod"),
    "staticmethod": ("sync", "staticmethod"),
    "async_staticmethod": ("async", "staticmethod"),
}
ALL_SHAPES = tuple(SHAPES)
ASYNC_SHAPES = tuple(s for s, (mode, _) in SHAPES.items() if mode in ("async", "agen"))
METHOD_SHAPES = tuple(s for s, (_, where) in SHAPES.items() if where != "function")

# "retrieval" is @span("retrieval"); "llm" is @span("llm", model="gpt-4o", provider="openai")
KINDS = ("agent", "trace", "tool", "task", "retrieval", "llm")
TRACE_KINDS = ("agent", "trace")
CHILD_KINDS = ("tool", "task", "retrieval", "llm")
CAPTURING_BY_DEFAULT = ("agent", "tool")

# kind -> (OTel span name, SpanKind, gen_ai.operation.name, openinference.span.kind)
EXPECTED: dict[str, tuple[str, str, str, str]] = {
    "agent": ("invoke_agent work", "INTERNAL", "invoke_agent", "AGENT"),
    "trace": ("invoke_workflow work", "INTERNAL", "invoke_workflow", "CHAIN"),
    "tool": ("execute_tool work", "INTERNAL", "execute_tool", "TOOL"),
    "task": ("work", "INTERNAL", "task", "CHAIN"),
    "retrieval": ("retrieval work", "CLIENT", "retrieval", "RETRIEVER"),
    "llm": ("chat gpt-4o", "CLIENT", "chat", "LLM"),
}

PAYLOAD_KEYS = (
    sc.ROLLOUT_INPUT,
    sc.ROLLOUT_OUTPUT,
    sc.INPUT_VALUE,
    sc.OUTPUT_VALUE,
    sc.INPUT_MIME_TYPE,
    sc.OUTPUT_MIME_TYPE,
    sc.GEN_AI_TOOL_CALL_ARGUMENTS,
    sc.GEN_AI_TOOL_CALL_RESULT,
)


def deco_for(kind: str, **options: Any) -> Deco:
    """The decorator of `kind`, called with `options` (name defaults to the function's)."""
    if kind == "agent":
        return rollout.agent(**options)
    if kind == "trace":
        return rollout.trace(**options)
    if kind == "tool":
        return rollout.tool(**options)
    if kind == "task":
        return rollout.task(**options)
    if kind == "retrieval":
        return rollout.span("retrieval", **options)
    assert kind == "llm"
    return rollout.span("llm", model="gpt-4o", provider="openai", **options)


def capture_on(kind: str) -> dict[str, bool]:
    """Options that switch input and output capture on for `kind` (trace has none)."""
    if kind == "agent":
        return {"capture_input": True, "capture_output": True}
    if kind == "trace":
        return {}
    return {"record_input": True, "record_output": True}


# -- building one decorated function of each shape -----------------------------------------


def _echo(city: str, n: int, rest: tuple[Any, ...]) -> Any:
    return {"city": city, "n": n, "rest": list(rest)}


async def _settle(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _keep(raws: list[Callable[..., Any]]) -> Callable[[F], F]:
    def keep(fn: F) -> F:
        raws.append(fn)
        return fn

    return keep


def _identity(fn: F) -> F:
    return fn


@dataclass
class Built:
    """A decorated `work(city, n=1, *rest)` of one shape and how to reach it."""

    call: Callable[..., Any]  # what a caller calls (bound for methods)
    raw: Callable[..., Any]  # the undecorated `def`
    mode: str  # sync, async, gen, agen
    owner: type | None = None
    instance: object = None


def _build_function(mode: str, deco: Deco, body: Body) -> Built:
    if mode == "sync":

        def work(city: str, n: int = 1, *rest: Any) -> Any:
            """Do the work."""
            return body(city, n, rest)

        return Built(deco(work), work, mode)
    if mode == "async":

        async def awork(city: str, n: int = 1, *rest: Any) -> Any:
            """Do the work."""
            return await _settle(body(city, n, rest))

        awork.__name__ = awork.__qualname__ = "work"
        return Built(deco(awork), awork, mode)
    if mode == "gen":

        def gwork(city: str, n: int = 1, *rest: Any) -> Iterator[Any]:
            """Do the work."""
            yield city
            yield body(city, n, rest)

        gwork.__name__ = gwork.__qualname__ = "work"
        return Built(deco(gwork), gwork, mode)
    assert mode == "agen"

    async def agwork(city: str, n: int = 1, *rest: Any) -> AsyncIterator[Any]:
        """Do the work."""
        yield city
        yield await _settle(body(city, n, rest))

    agwork.__name__ = agwork.__qualname__ = "work"
    return Built(deco(agwork), agwork, mode)


def _build_method(mode: str, deco: Deco, body: Body) -> Built:
    raws: list[Callable[..., Any]] = []
    if mode == "sync":

        class Holder:
            @deco
            @_keep(raws)
            def work(self, city: str, n: int = 1, *rest: Any) -> Any:
                """Do the work."""
                return body(city, n, rest)

        obj = Holder()
        return Built(obj.work, raws[0], mode, Holder, obj)

    class AHolder:
        @deco
        @_keep(raws)
        async def work(self, city: str, n: int = 1, *rest: Any) -> Any:
            """Do the work."""
            return await _settle(body(city, n, rest))

    aobj = AHolder()
    return Built(aobj.work, raws[0], mode, AHolder, aobj)


def _build_classmethod(mode: str, deco: Deco, body: Body) -> Built:
    raws: list[Callable[..., Any]] = []
    if mode == "sync":

        class Holder:
            @deco
            @classmethod
            @_keep(raws)
            def work(cls, city: str, n: int = 1, *rest: Any) -> Any:
                """Do the work."""
                return body(city, n, rest)

        return Built(Holder.work, raws[0], mode, Holder, Holder())

    class AHolder:
        @deco
        @classmethod
        @_keep(raws)
        async def work(cls, city: str, n: int = 1, *rest: Any) -> Any:
            """Do the work."""
            return await _settle(body(city, n, rest))

    return Built(AHolder.work, raws[0], mode, AHolder, AHolder())


def _build_staticmethod(mode: str, deco: Deco, body: Body) -> Built:
    raws: list[Callable[..., Any]] = []
    if mode == "sync":

        class Holder:
            @deco
            @staticmethod
            @_keep(raws)
            def work(city: str, n: int = 1, *rest: Any) -> Any:
                """Do the work."""
                return body(city, n, rest)

        return Built(Holder.work, raws[0], mode, Holder, Holder())

    class AHolder:
        @deco
        @staticmethod
        @_keep(raws)
        async def work(city: str, n: int = 1, *rest: Any) -> Any:
            """Do the work."""
            return await _settle(body(city, n, rest))

    return Built(AHolder.work, raws[0], mode, AHolder, AHolder())


def build(shape: str, deco: Deco, body: Body = _echo) -> Built:
    """`work(city, n=1, *rest)` of `shape`, decorated with `deco`, its result from `body`.

    Generators yield `city`, then `body(...)`.
    """
    mode, where = SHAPES[shape]
    if where == "function":
        return _build_function(mode, deco, body)
    if where == "method":
        return _build_method(mode, deco, body)
    if where == "classmethod":
        return _build_classmethod(mode, deco, body)
    return _build_staticmethod(mode, deco, body)


async def run(mode: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `fn`; await coroutines, drain (async) generators into a list."""
    if mode == "async":
        return await fn(*args, **kwargs)
    if mode == "gen":
        return list(fn(*args, **kwargs))
    if mode == "agen":
        return [item async for item in fn(*args, **kwargs)]
    return fn(*args, **kwargs)


async def invoke(kind: str, built: Built, *args: Any, **kwargs: Any) -> Any:
    """Run `built`, inside a `root` trace when `kind` needs an active trace."""
    if kind in TRACE_KINDS:
        return await run(built.mode, built.call, *args, **kwargs)
    with rollout.get_client().trace("root"):
        return await run(built.mode, built.call, *args, **kwargs)


def readable(captured: CapturedSpans, name: str) -> ReadableSpan:
    """The one exported span whose Rollout name is `name`."""
    found = [s for s in captured.spans() if (s.attributes or {}).get(sc.ROLLOUT_SPAN_NAME) == name]
    assert len(found) == 1, f"expected one span named {name!r}, found {len(found)}"
    return found[0]


def named(captured: CapturedSpans, name: str) -> list[dict[str, Any]]:
    """All exported spans whose Rollout name is `name`."""
    return [s for s in captured.as_dicts() if s["attributes"].get(sc.ROLLOUT_SPAN_NAME) == name]


def assert_interrupted(span: dict[str, Any], error_type: str) -> None:
    """Ended by a non-error exception: status UNSET, `error.type` and one exception event."""
    assert span["status"] == "UNSET"
    assert span["attributes"][sc.ERROR_TYPE] == error_type
    assert sc.ROLLOUT_ERROR_TYPE not in span["attributes"]
    events = [e for e in span["events"] if e["name"] == sc.EVENT_EXCEPTION]
    assert len(events) == 1
    assert events[0]["attributes"][sc.EXCEPTION_TYPE].endswith(error_type)


def assert_no_error(span: dict[str, Any]) -> None:
    """The span ended without being marked failed."""
    assert span["status"] == "UNSET"
    assert [e for e in span["events"] if e["name"] == sc.EVENT_EXCEPTION] == []
    assert sc.ERROR_TYPE not in span["attributes"]
    assert sc.ROLLOUT_ERROR_TYPE not in span["attributes"]


# == 1. span naming and types ===============================================================


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", KINDS)
async def test_span_name_type_and_kind(captured: CapturedSpans, kind: str, shape: str) -> None:
    """Each decorator exports one span with its GenAI name, type, operation and OI kind."""
    built = build(shape, deco_for(kind))
    await invoke(kind, built, "Paris")

    span = captured.by_name("work")
    otel_name, span_kind, operation, oi_kind = EXPECTED[kind]
    attrs = span["attributes"]
    assert span["name"] == otel_name
    assert span["kind"] == span_kind
    assert span["type"] == kind
    assert attrs[sc.ROLLOUT_SPAN_TYPE] == kind
    assert attrs[sc.ROLLOUT_SPAN_NAME] == "work"
    assert attrs[sc.GEN_AI_OPERATION_NAME] == operation
    assert attrs[sc.OPENINFERENCE_SPAN_KIND] == oi_kind
    assert span["status"] == "UNSET"
    if kind in TRACE_KINDS:
        assert span["parent_id"] is None
        assert len(captured.as_dicts()) == 1
    else:
        root = captured.by_name("root")
        assert span["parent_id"] == root["span_id"]
        assert span["trace_id"] == root["trace_id"]
        assert len(captured.as_dicts()) == 2


@pytest.mark.parametrize("shape", ALL_SHAPES)
async def test_tool_name_mirrors(captured: CapturedSpans, shape: str) -> None:
    """A tool span carries its name as rollout.tool.name, gen_ai.tool.name and tool.name."""
    built = build(shape, rollout.tool("get_weather"))
    await invoke("tool", built, "Paris")

    attrs = captured.by_name("execute_tool get_weather")["attributes"]
    assert attrs[sc.ROLLOUT_TOOL_NAME] == "get_weather"
    assert attrs[sc.GEN_AI_TOOL_NAME] == "get_weather"
    assert attrs[sc.TOOL_NAME] == "get_weather"


@pytest.mark.parametrize("shape", ALL_SHAPES)
async def test_llm_span_model_and_provider_mirrors(captured: CapturedSpans, shape: str) -> None:
    """@span("llm", model=, provider=) is `chat {model}`, CLIENT, with model/provider mirrors."""
    built = build(shape, deco_for("llm"))
    await invoke("llm", built, "Paris")

    span = captured.by_name("chat gpt-4o")
    attrs = span["attributes"]
    assert span["kind"] == "CLIENT"
    assert attrs[sc.ROLLOUT_LLM_MODEL] == "gpt-4o"
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert attrs[sc.LLM_MODEL_NAME] == "gpt-4o"
    assert attrs[sc.ROLLOUT_LLM_PROVIDER] == "openai"
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[sc.LLM_PROVIDER] == "openai"


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", TRACE_KINDS)
async def test_trace_decorators_start_a_new_trace_per_call(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """Two calls of an @agent/@trace function are two root spans in two OTel traces."""
    built = build(shape, deco_for(kind))
    await invoke(kind, built, "Paris")
    await invoke(kind, built, "Lyon")

    spans = named(captured, "work")
    assert len(spans) == 2
    assert [s["parent_id"] for s in spans] == [None, None]
    assert spans[0]["trace_id"] != spans[1]["trace_id"]
    assert all(len(s["trace_id"]) == 32 and s["trace_id"] != "0" * 32 for s in spans)


@dataclass(frozen=True)
class Form:
    """One spelling of a decorator and the span it should produce."""

    make: Callable[[], Any]
    otel_name: str
    span_type: str
    rollout_name: str
    has_output: bool
    extra: tuple[tuple[str, object], ...] = ()


FORMS: dict[str, Form] = {
    "agent-bare": Form(lambda: rollout.agent, "invoke_agent work", "agent", "work", True),
    "agent-named": Form(lambda: rollout.agent("x"), "invoke_agent x", "agent", "x", True),
    "agent-options": Form(
        lambda: rollout.agent(name="x", capture_output=False),
        "invoke_agent x",
        "agent",
        "x",
        False,
    ),
    "trace-bare": Form(lambda: rollout.trace, "invoke_workflow work", "trace", "work", False),
    "trace-named": Form(lambda: rollout.trace("x"), "invoke_workflow x", "trace", "x", False),
    "trace-options": Form(
        lambda: rollout.trace(name="x", attributes={"k": "v"}),
        "invoke_workflow x",
        "trace",
        "x",
        False,
        ((f"{sc.ROLLOUT_ATTRIBUTES}.k", "v"),),
    ),
    "tool-bare": Form(lambda: rollout.tool, "execute_tool work", "tool", "work", True),
    "tool-named": Form(lambda: rollout.tool("x"), "execute_tool x", "tool", "x", True),
    "tool-options": Form(
        lambda: rollout.tool(name="x", record_output=False),
        "execute_tool x",
        "tool",
        "x",
        False,
        ((sc.ROLLOUT_TOOL_NAME, "x"),),
    ),
    "task-bare": Form(lambda: rollout.task, "work", "task", "work", False),
    "task-named": Form(lambda: rollout.task("x"), "x", "task", "x", False),
    "task-options": Form(
        lambda: rollout.task(name="x", record_output=True), "x", "task", "x", True
    ),
    "span-bare": Form(lambda: rollout.span, "work", "span", "work", False),
    "span-named": Form(
        lambda: rollout.span("retrieval"), "retrieval work", "retrieval", "work", False
    ),
    "span-options": Form(
        lambda: rollout.span("retrieval", name="x", record_output=True),
        "retrieval x",
        "retrieval",
        "x",
        True,
    ),
}


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("form", list(FORMS))
async def test_bare_named_and_options_forms(captured: CapturedSpans, form: str, shape: str) -> None:
    """Bare, named and keyword-option spellings of every decorator give the right span."""
    spec = FORMS[form]
    built = build(shape, spec.make())
    result = await invoke(spec.span_type, built, "Paris")

    assert result == await run(built.mode, build(shape, _identity).call, "Paris")
    span = captured.by_name(spec.rollout_name)
    assert span["name"] == spec.otel_name
    assert span["attributes"][sc.ROLLOUT_SPAN_TYPE] == spec.span_type
    assert span["attributes"][sc.ROLLOUT_SPAN_NAME] == spec.rollout_name
    assert (sc.ROLLOUT_OUTPUT in span["attributes"]) is spec.has_output
    for key, value in spec.extra:
        assert span["attributes"][key] == value


# == 2. capture defaults ====================================================================

CALLS: dict[str, tuple[tuple[Any, ...], dict[str, Any], dict[str, Any]]] = {
    # call style -> (args, kwargs, expected bound input)
    "positional+varargs": (
        ("Paris", 2, "x", "y"),
        {},
        {"city": "Paris", "n": 2, "rest": ["x", "y"]},
    ),
    "keyword": (("Paris",), {"n": 3}, {"city": "Paris", "n": 3}),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", CAPTURING_BY_DEFAULT)
async def test_agent_and_tool_capture_input_and_output_by_default(
    captured: CapturedSpans, kind: str, shape: str, call: str
) -> None:
    """@agent/@tool record arguments bound by name (no self/cls, *args kept) and the result."""
    args, kwargs, expected_input = CALLS[call]
    built = build(shape, deco_for(kind))
    result = await invoke(kind, built, *args, **kwargs)

    attrs = captured.by_name("work")["attributes"]
    assert json.loads(attrs[sc.ROLLOUT_INPUT]) == expected_input
    assert attrs[sc.INPUT_VALUE] == attrs[sc.ROLLOUT_INPUT]
    assert attrs[sc.INPUT_MIME_TYPE] == "application/json"
    assert attrs[sc.ROLLOUT_INPUT_MIME_TYPE] == "application/json"
    assert json.loads(attrs[sc.ROLLOUT_OUTPUT]) == result
    assert attrs[sc.OUTPUT_VALUE] == attrs[sc.ROLLOUT_OUTPUT]
    assert attrs[sc.OUTPUT_MIME_TYPE] == "application/json"
    if kind == "tool":
        assert attrs[sc.GEN_AI_TOOL_CALL_ARGUMENTS] == attrs[sc.ROLLOUT_INPUT]
        assert attrs[sc.GEN_AI_TOOL_CALL_RESULT] == attrs[sc.ROLLOUT_OUTPUT]
    else:
        assert sc.GEN_AI_TOOL_CALL_ARGUMENTS not in attrs


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", ["trace", "task", "retrieval", "llm"])
async def test_trace_span_task_capture_nothing_by_default(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """@trace, @span and @task record no input or output unless asked to."""
    built = build(shape, deco_for(kind))
    await invoke(kind, built, "Paris", 2)

    attrs = captured.by_name("work")["attributes"]
    for key in PAYLOAD_KEYS:
        assert key not in attrs


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", ["task", "retrieval", "llm"])
async def test_span_and_task_capture_when_asked(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """record_input/record_output=True on @span/@task record the bound arguments and result."""
    built = build(shape, deco_for(kind, record_input=True, record_output=True))
    result = await invoke(kind, built, "Paris", 2, "x")

    attrs = captured.by_name("work")["attributes"]
    assert json.loads(attrs[sc.ROLLOUT_INPUT]) == {"city": "Paris", "n": 2, "rest": ["x"]}
    assert attrs[sc.INPUT_VALUE] == attrs[sc.ROLLOUT_INPUT]
    assert attrs[sc.INPUT_MIME_TYPE] == "application/json"
    assert json.loads(attrs[sc.ROLLOUT_OUTPUT]) == result
    assert attrs[sc.OUTPUT_VALUE] == attrs[sc.ROLLOUT_OUTPUT]


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", CAPTURING_BY_DEFAULT)
async def test_agent_and_tool_capture_can_be_switched_off(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """capture_input/capture_output=False (agent) and record_*=False (tool) record nothing."""
    options = (
        {"capture_input": False, "capture_output": False}
        if kind == "agent"
        else {"record_input": False, "record_output": False}
    )
    built = build(shape, deco_for(kind, **options))
    await invoke(kind, built, "Paris", 2)

    attrs = captured.by_name("work")["attributes"]
    for key in PAYLOAD_KEYS:
        assert key not in attrs


@pytest.mark.parametrize("shape", ALL_SHAPES)
async def test_string_output_is_text_plain(captured: CapturedSpans, shape: str) -> None:
    """A str result is recorded as itself with mime type text/plain."""
    built = build(shape, rollout.tool(), lambda city, n, rest: f"sunny in {city}")
    await invoke("tool", built, "Paris")

    attrs = captured.by_name("work")["attributes"]
    mode = SHAPES[shape][0]
    if mode in ("gen", "agen"):
        assert json.loads(attrs[sc.ROLLOUT_OUTPUT]) == ["Paris", "sunny in Paris"]
    else:
        assert attrs[sc.ROLLOUT_OUTPUT] == "sunny in Paris"
        assert attrs[sc.OUTPUT_MIME_TYPE] == "text/plain"


# == 3. generators and async generators =====================================================


@pytest.mark.parametrize("kind", KINDS)
async def test_generator_span_covers_whole_iteration(captured: CapturedSpans, kind: str) -> None:
    """A generator's span starts at the first step and ends after its last item was produced."""
    produced: list[int] = []

    def stamp(city: str, n: int, rest: tuple[Any, ...]) -> str:
        produced.append(time.time_ns())
        return "last"

    built = build("gen", deco_for(kind), stamp)
    with rollout.get_client().trace("root"):
        gen = built.call("Paris")
        assert next(gen) == "Paris"
        time.sleep(0.002)
        assert next(gen) == "last"
        time.sleep(0.002)
        with pytest.raises(StopIteration):
            next(gen)

    span = readable(captured, "work")
    assert span.start_time is not None
    assert span.end_time is not None
    assert span.start_time < produced[0] <= span.end_time


@pytest.mark.parametrize("kind", KINDS)
async def test_async_generator_span_covers_whole_iteration(
    captured: CapturedSpans, kind: str
) -> None:
    """An async generator's span ends after its last item was produced."""
    produced: list[int] = []

    def stamp(city: str, n: int, rest: tuple[Any, ...]) -> str:
        produced.append(time.time_ns())
        return "last"

    built = build("agen", deco_for(kind), stamp)
    with rollout.get_client().trace("root"):
        agen = built.call("Paris")
        assert await agen.__anext__() == "Paris"
        await asyncio.sleep(0.002)
        assert await agen.__anext__() == "last"
        await asyncio.sleep(0.002)
        with pytest.raises(StopAsyncIteration):
            await agen.__anext__()

    span = readable(captured, "work")
    assert span.start_time is not None
    assert span.end_time is not None
    assert span.start_time < produced[0] <= span.end_time


@pytest.mark.parametrize("kind", KINDS)
async def test_generator_body_spans_are_children_consumer_spans_are_not(
    captured: CapturedSpans, kind: str
) -> None:
    """Spans made in the generator body nest under it; the consumer's spans between items do not."""

    @rollout.task("inner")
    def inner(i: int) -> int:
        return i

    @rollout.task("outside")
    def outside(i: int) -> int:
        return i

    @deco_for(kind)
    def work(count: int) -> Iterator[int]:
        for i in range(count):
            assert rollout.current_trace() is not None
            yield inner(i)

    with rollout.get_client().trace("root"):
        for item in work(2):
            outside(item)

    root = captured.by_name("root")
    gen_span = captured.by_name("work")
    inners = named(captured, "inner")
    outsides = named(captured, "outside")
    assert len(inners) == 2
    assert len(outsides) == 2
    assert gen_span["parent_id"] == root["span_id"]
    assert all(s["parent_id"] == gen_span["span_id"] for s in inners)
    assert all(s["parent_id"] == root["span_id"] for s in outsides)
    assert {s["trace_id"] for s in [*inners, *outsides, gen_span]} == {root["trace_id"]}


@pytest.mark.parametrize("kind", KINDS)
async def test_async_generator_body_spans_are_children_consumer_spans_are_not(
    captured: CapturedSpans, kind: str
) -> None:
    """Async twin: body spans nest under the async generator's span, consumer spans do not."""

    @rollout.task("inner")
    async def inner(i: int) -> int:
        await asyncio.sleep(0)
        return i

    @rollout.task("outside")
    async def outside(i: int) -> int:
        await asyncio.sleep(0)
        return i

    @deco_for(kind)
    async def work(count: int) -> AsyncIterator[int]:
        for i in range(count):
            assert rollout.current_trace() is not None
            yield await inner(i)

    with rollout.get_client().trace("root"):
        async for item in work(2):
            await outside(item)

    root = captured.by_name("root")
    gen_span = captured.by_name("work")
    inners = named(captured, "inner")
    outsides = named(captured, "outside")
    assert len(inners) == 2
    assert len(outsides) == 2
    assert gen_span["parent_id"] == root["span_id"]
    assert all(s["parent_id"] == gen_span["span_id"] for s in inners)
    assert all(s["parent_id"] == root["span_id"] for s in outsides)


@pytest.mark.parametrize("how", ["break", "close"])
@pytest.mark.parametrize("kind", KINDS)
async def test_generator_closed_early_ends_span_unset(
    captured: CapturedSpans, kind: str, how: str
) -> None:
    """Breaking out of the loop or .close() ends the generator's span, status UNSET."""
    cleaned: list[bool] = []

    @deco_for(kind)
    def work() -> Iterator[int]:
        try:
            yield from range(10)
        finally:
            cleaned.append(True)

    with rollout.get_client().trace("root"):
        if how == "break":
            for item in work():
                if item == 1:
                    break
        else:
            gen = work()
            assert next(gen) == 0
            gen.close()
        gc.collect()

    assert cleaned == [True]
    span = captured.by_name("work")
    assert_no_error(span)
    assert captured.by_name("root")["status"] == "UNSET"


@pytest.mark.parametrize("how", ["break", "aclose"])
@pytest.mark.parametrize("kind", KINDS)
async def test_async_generator_closed_early_ends_span_unset(
    captured: CapturedSpans, kind: str, how: str
) -> None:
    """Breaking out of `async for` or aclose() ends the async generator's span, status UNSET."""
    cleaned: list[bool] = []

    @deco_for(kind)
    async def work() -> AsyncIterator[int]:
        try:
            for i in range(10):
                yield i
        finally:
            cleaned.append(True)

    with rollout.get_client().trace("root"):
        if how == "break":
            async for item in work():
                if item == 1:
                    break
            gc.collect()
            for _ in range(5):  # the loop's asyncgen finalizer schedules aclose()
                await asyncio.sleep(0)
        else:
            agen = work()
            assert await agen.__anext__() == 0
            await agen.aclose()

    assert cleaned == [True]
    span = captured.by_name("work")
    assert_no_error(span)


class Boom(Exception):
    """The user's error."""


class Halt(BaseException):
    """A KeyboardInterrupt-like BaseException."""


@pytest.mark.parametrize("kind", KINDS)
async def test_generator_exception_marks_error_and_propagates(
    captured: CapturedSpans, kind: str
) -> None:
    """An exception raised inside a generator marks its span ERROR and reaches the consumer."""
    err = Boom("mid-stream")

    @deco_for(kind)
    def work() -> Iterator[int]:
        yield 1
        raise err

    seen: list[int] = []

    def consume() -> None:
        for item in work():
            seen.append(item)

    with rollout.get_client().trace("root"), pytest.raises(Boom) as info:
        consume()
    assert info.value is err
    assert seen == [1]
    span = captured.by_name("work")
    assert span["status"] == "ERROR"
    assert span["attributes"][sc.ERROR_TYPE] == "Boom"


@pytest.mark.parametrize("kind", KINDS)
async def test_async_generator_exception_marks_error_and_propagates(
    captured: CapturedSpans, kind: str
) -> None:
    """An exception raised inside an async generator marks ERROR and reaches the consumer."""
    err = Boom("mid-stream")

    @deco_for(kind)
    async def work() -> AsyncIterator[int]:
        yield 1
        raise err

    seen: list[int] = []

    async def consume() -> None:
        async for item in work():
            seen.append(item)

    with rollout.get_client().trace("root"), pytest.raises(Boom) as info:
        await consume()
    assert info.value is err
    assert seen == [1]
    span = captured.by_name("work")
    assert span["status"] == "ERROR"
    assert span["attributes"][sc.ERROR_TYPE] == "Boom"


def _sending_generator(deco: Deco) -> Callable[[], Generator[int | str, int, None]]:
    @deco
    def work() -> Generator[int | str, int, None]:
        received = yield "ready"
        yield received * 2

    return work  # type: ignore[no-any-return]


def _sending_async_generator(deco: Deco) -> Callable[[], AsyncGenerator[int | str, int]]:
    @deco
    async def work() -> AsyncGenerator[int | str, int]:
        received = yield "ready"
        yield received * 2

    return work  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", KINDS)
async def test_generator_send_reaches_generator(captured: CapturedSpans, kind: str) -> None:
    """Values passed with .send() reach the decorated generator."""
    work = _sending_generator(deco_for(kind))
    with rollout.get_client().trace("root"):
        gen: Any = work()
        assert next(gen) == "ready"
        assert gen.send(21) == 42
        with pytest.raises(StopIteration):
            next(gen)
    assert_no_error(captured.by_name("work"))


@pytest.mark.parametrize("kind", KINDS)
async def test_async_generator_asend_reaches_generator(captured: CapturedSpans, kind: str) -> None:
    """Values passed with .asend() reach the decorated async generator."""
    work = _sending_async_generator(deco_for(kind))
    with rollout.get_client().trace("root"):
        agen: Any = work()
        assert await agen.__anext__() == "ready"
        assert await agen.asend(21) == 42
        with pytest.raises(StopAsyncIteration):
            await agen.__anext__()
    assert_no_error(captured.by_name("work"))


@pytest.mark.parametrize("kind", CHILD_KINDS)
async def test_untraced_generator_send_reaches_generator(
    captured: CapturedSpans, kind: str
) -> None:
    """With no active trace, .send() still reaches the (untraced) generator."""
    gen: Any = _sending_generator(deco_for(kind))()
    assert next(gen) == "ready"
    assert gen.send(21) == 42
    assert captured.spans() == ()


@pytest.mark.parametrize("kind", CHILD_KINDS)
async def test_untraced_async_generator_asend_reaches_generator(
    captured: CapturedSpans, kind: str
) -> None:
    """With no active trace, .asend() still reaches the (untraced) async generator."""
    agen: Any = _sending_async_generator(deco_for(kind))()
    assert await agen.__anext__() == "ready"
    assert await agen.asend(21) == 42
    await agen.aclose()
    assert captured.spans() == ()


@pytest.mark.parametrize("kind", KINDS)
async def test_disabled_generator_send_reaches_generator(kind: str) -> None:
    """With disabled=True, .send() still reaches the generator and nothing is exported."""
    with capture_spans(disabled=True) as cap:
        gen: Any = _sending_generator(deco_for(kind))()
        assert next(gen) == "ready"
        assert gen.send(21) == 42
        assert cap.spans() == ()


@pytest.mark.parametrize("kind", KINDS)
async def test_disabled_async_generator_asend_reaches_generator(kind: str) -> None:
    """With disabled=True, .asend() still reaches the async generator; nothing is exported."""
    with capture_spans(disabled=True) as cap:
        agen: Any = _sending_async_generator(deco_for(kind))()
        assert await agen.__anext__() == "ready"
        assert await agen.asend(21) == 42
        await agen.aclose()
        assert cap.spans() == ()


@pytest.mark.parametrize("shape", ["gen", "agen"])
@pytest.mark.parametrize("kind", KINDS)
async def test_generator_never_iterated_creates_no_span(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """Calling a decorated (async) generator function without iterating it records nothing."""
    built = build(shape, deco_for(kind))
    with rollout.get_client().trace("root"):
        it = built.call("Paris")
        assert inspect.isgenerator(it) or inspect.isasyncgen(it)
        del it
        gc.collect()
    assert named(captured, "work") == []
    assert [s["name"] for s in captured.as_dicts()] == ["invoke_workflow root"]


# == 4. methods, classmethods, staticmethods ================================================

CAPTURE_KINDS = ("agent", "tool", "task", "retrieval", "llm")


@pytest.mark.parametrize("shape", METHOD_SHAPES)
@pytest.mark.parametrize("kind", CAPTURE_KINDS)
async def test_methods_called_on_instance_and_class(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """Methods (via instance and class), classmethods and staticmethods record without self/cls."""
    built = build(shape, deco_for(kind, **capture_on(kind)))
    assert built.owner is not None
    mode, where = SHAPES[shape]
    on_class: Callable[..., Any] = built.owner.work  # type: ignore[attr-defined]
    on_instance: Callable[..., Any] = built.instance.work  # type: ignore[attr-defined]

    async def both() -> list[Any]:
        first = await run(mode, on_instance, "Paris", 2)
        if where == "method":
            second = await run(mode, on_class, built.instance, "Lyon", 3)
        else:
            second = await run(mode, on_class, "Lyon", 3)
        return [first, second]

    if kind in TRACE_KINDS:
        results = await both()
    else:
        with rollout.get_client().trace("root"):
            results = await both()

    assert results == [
        {"city": "Paris", "n": 2, "rest": []},
        {"city": "Lyon", "n": 3, "rest": []},
    ]
    spans = named(captured, "work")
    assert [json.loads(s["attributes"][sc.ROLLOUT_INPUT]) for s in spans] == [
        {"city": "Paris", "n": 2},
        {"city": "Lyon", "n": 3},
    ]
    assert [json.loads(s["attributes"][sc.ROLLOUT_OUTPUT]) for s in spans] == results


@pytest.mark.parametrize("shape", METHOD_SHAPES)
@pytest.mark.parametrize("kind", ["trace"])
async def test_trace_decorated_methods_record_a_trace(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """@trace on methods/classmethods/staticmethods records one trace per call, either way."""
    built = build(shape, deco_for(kind))
    mode, where = SHAPES[shape]
    on_class: Callable[..., Any] = built.owner.work  # type: ignore[union-attr]
    await run(mode, built.instance.work, "Paris")  # type: ignore[attr-defined]
    if where == "method":
        await run(mode, on_class, built.instance, "Lyon")
    else:
        await run(mode, on_class, "Lyon")
    spans = named(captured, "work")
    assert [s["name"] for s in spans] == ["invoke_workflow work"] * 2
    assert spans[0]["trace_id"] != spans[1]["trace_id"]


class _Shop:
    def __init__(self) -> None:
        self.tag = "shop"

    def work(self, city: str, n: int = 1) -> dict[str, Any]:
        return {"city": city, "n": n, "tag": self.tag}

    async def awork(self, city: str, n: int = 1) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"city": city, "n": n, "tag": self.tag}

    @classmethod
    def kwork(cls, city: str, n: int = 1) -> dict[str, Any]:
        return {"city": city, "n": n, "tag": cls.__name__}

    @classmethod
    async def akwork(cls, city: str, n: int = 1) -> dict[str, Any]:
        return {"city": city, "n": n, "tag": cls.__name__}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("bound_to", ["instance", "class"])
async def test_decorating_an_already_bound_method_names_its_arguments(
    captured: CapturedSpans, mode: str, bound_to: str
) -> None:
    """`rollout.tool("x")(obj.method)`: arguments recorded under their own names, no self."""
    shop = _Shop()
    methods = {
        ("instance", "sync"): shop.work,
        ("instance", "async"): shop.awork,
        ("class", "sync"): _Shop.kwork,
        ("class", "async"): _Shop.akwork,
    }
    tool = rollout.tool("bound")(methods[bound_to, mode])
    with rollout.get_client().trace("root"):
        result = await run(mode, tool, "Paris", n=2)
    assert result == {"city": "Paris", "n": 2, "tag": "shop" if bound_to == "instance" else "_Shop"}
    [span] = named(captured, "bound")
    assert json.loads(span["attributes"][sc.ROLLOUT_INPUT]) == {"city": "Paris", "n": 2}
    assert json.loads(span["attributes"][sc.ROLLOUT_OUTPUT]) == result


# == 5. preservation ========================================================================


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", KINDS)
def test_wrapper_preserves_identity_and_inspect(kind: str, shape: str) -> None:
    """Name, qualname, doc, __wrapped__, signature and inspect predicates match the original."""
    decorated = build(shape, deco_for(kind))
    plain = build(shape, _identity)
    pairs: list[tuple[Any, Any]] = [(decorated.call, plain.call)]
    if decorated.owner is not None and plain.owner is not None:
        pairs.append((decorated.owner.work, plain.owner.work))  # type: ignore[attr-defined]
        pairs.append((decorated.instance.work, plain.instance.work))  # type: ignore[attr-defined]
    for wrapped, original in pairs:
        assert wrapped.__name__ == original.__name__ == "work"
        assert wrapped.__qualname__ == original.__qualname__
        assert wrapped.__doc__ == original.__doc__ == "Do the work."
        assert inspect.signature(wrapped) == inspect.signature(original)
        assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(original)
        assert inspect.isgeneratorfunction(wrapped) == inspect.isgeneratorfunction(original)
        assert inspect.isasyncgenfunction(wrapped) == inspect.isasyncgenfunction(original)
        inner = wrapped.__wrapped__
        assert getattr(inner, "__func__", inner) is decorated.raw


@pytest.mark.parametrize("kind", KINDS)
def test_wrapper_preserves_predicates_of_each_function_kind(kind: str) -> None:
    """A decorated coroutine/generator/async-generator function is still recognised as one."""
    assert inspect.iscoroutinefunction(build("async", deco_for(kind)).call)
    assert not inspect.iscoroutinefunction(build("sync", deco_for(kind)).call)
    assert inspect.isgeneratorfunction(build("gen", deco_for(kind)).call)
    assert inspect.isasyncgenfunction(build("agen", deco_for(kind)).call)
    assert not inspect.isasyncgenfunction(build("gen", deco_for(kind)).call)


# == 6. errors ==============================================================================


def _explode(err: BaseException) -> Body:
    def explode(city: str, n: int, rest: tuple[Any, ...]) -> Any:
        raise err

    return explode


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", KINDS)
async def test_error_is_recorded_and_reraised_unchanged(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """The user's exception propagates as the same object with its frames; the span is ERROR."""
    err = Boom("kaboom")
    built = build(shape, deco_for(kind), _explode(err))

    with pytest.raises(Boom) as info:
        await invoke(kind, built, "Paris")

    assert info.value is err
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "explode"
    assert built.raw.__code__.co_name in frames  # the user's own frame
    span = captured.by_name("work")
    attrs = span["attributes"]
    assert span["status"] == "ERROR"
    assert "kaboom" in (span["status_description"] or "")
    events = [e for e in span["events"] if e["name"] == sc.EVENT_EXCEPTION]
    assert len(events) == 1
    assert events[0]["attributes"][sc.EXCEPTION_TYPE].endswith("Boom")
    assert events[0]["attributes"][sc.EXCEPTION_MESSAGE] == "kaboom"
    assert attrs[sc.ERROR_TYPE] == "Boom"
    assert attrs[sc.ROLLOUT_ERROR_TYPE] == "Boom"
    assert attrs[sc.ROLLOUT_ERROR_MESSAGE] == "kaboom"
    assert sc.ROLLOUT_OUTPUT not in attrs
    if kind == "tool":
        assert attrs[sc.ROLLOUT_TOOL_STATUS] == "error"


@pytest.mark.parametrize("shape", ALL_SHAPES)
async def test_successful_tool_status_is_ok(captured: CapturedSpans, shape: str) -> None:
    """A tool call that returns normally has rollout.tool.status ok."""
    built = build(shape, rollout.tool())
    await invoke("tool", built, "Paris")
    assert captured.by_name("work")["attributes"][sc.ROLLOUT_TOOL_STATUS] == "ok"


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", KINDS)
async def test_base_exception_propagates_without_marking_error(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """A KeyboardInterrupt-like BaseException propagates unchanged; the span is interrupted.

    Its status stays UNSET (not a failure of the code inside); `error.type` and an
    `exception` event say what ended it.
    """
    err = Halt("stop")
    built = build(shape, deco_for(kind), _explode(err))

    with pytest.raises(Halt) as info:
        await invoke(kind, built, "Paris")

    assert info.value is err
    span = captured.by_name("work")
    assert_interrupted(span, "Halt")
    if kind == "tool":
        assert span["attributes"][sc.ROLLOUT_TOOL_STATUS] == "interrupted"


@pytest.mark.parametrize("how", ["task.cancel", "raise"])
@pytest.mark.parametrize("shape", ASYNC_SHAPES)
@pytest.mark.parametrize("kind", KINDS)
async def test_cancellation_propagates_without_marking_error(
    captured: CapturedSpans, kind: str, shape: str, how: str
) -> None:
    """asyncio.CancelledError propagates through every async shape and does not mark ERROR."""
    started = asyncio.Event()
    err = asyncio.CancelledError()

    async def body(city: str, n: int, rest: tuple[Any, ...]) -> Any:
        started.set()
        if how == "raise":
            raise err
        await asyncio.sleep(10)
        return None

    built = build(shape, deco_for(kind), body)
    task = asyncio.create_task(invoke(kind, built, "Paris"))
    if how == "task.cancel":
        await started.wait()
        task.cancel()
    with pytest.raises(asyncio.CancelledError) as info:
        await task

    assert started.is_set()
    assert task.cancelled()
    if how == "raise":
        assert info.value is err
    span = captured.by_name("work")
    assert_interrupted(span, "CancelledError")
    if kind == "tool":
        assert span["attributes"][sc.ROLLOUT_TOOL_STATUS] == "cancelled"


# == 7. no trace, before init(), disabled ===================================================


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", CHILD_KINDS)
async def test_child_decorators_without_trace_run_untraced(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """@span/@tool/@task called with no active trace run normally and export nothing."""
    seen: list[object] = []

    def body(city: str, n: int, rest: tuple[Any, ...]) -> Any:
        seen.append(rollout.current_span())
        return {"city": city}

    built = build(shape, deco_for(kind), body)
    result = await run(built.mode, built.call, "Paris")

    expected = {"city": "Paris"}
    assert result == (["Paris", expected] if built.mode in ("gen", "agen") else expected)
    assert seen == [None]
    assert captured.spans() == ()


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", KINDS)
async def test_before_init_decorators_run_the_function(kind: str, shape: str) -> None:
    """Before init() (no client, no global provider) every decorator returns the value, no raise."""
    assert _global._client is None
    marker = object()
    built = build(shape, deco_for(kind), lambda city, n, rest: marker)

    results = [await run(built.mode, built.call, "Paris")]
    if kind in CHILD_KINDS:
        results.append(await invoke(kind, built, "Paris"))

    for result in results:
        if built.mode in ("gen", "agen"):
            assert result[0] == "Paris"
            assert result[1] is marker
        else:
            assert result is marker
    assert _global._client is None
    assert not isinstance(otel_trace.get_tracer_provider(), TracerProvider)


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", KINDS)
async def test_disabled_decorators_call_straight_through(kind: str, shape: str) -> None:
    """With disabled=True decorators emit nothing; inside, no-op facades stand in."""
    seen: list[tuple[object, object]] = []

    def body(city: str, n: int, rest: tuple[Any, ...]) -> Any:
        seen.append((rollout.current_trace(), rollout.current_span()))
        return city

    with capture_spans(disabled=True) as cap:
        built = build(shape, deco_for(kind), body)
        result = await invoke(kind, built, "Paris")
        assert result == (["Paris", "Paris"] if built.mode in ("gen", "agen") else "Paris")
        assert len(seen) == 1
        active_trace, active_span = seen[0]
        assert isinstance(active_trace, rollout.Trace)
        assert isinstance(active_span, rollout.Span)
        assert not active_trace.is_recording
        assert not active_span.is_recording
        assert cap.spans() == ()


# == 8. decorating before init() ============================================================


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", KINDS)
async def test_decorated_before_init_records_once_client_exists(kind: str, shape: str) -> None:
    """A function decorated (and even called) before init() records once a client exists."""
    built = build(shape, deco_for(kind))
    await invoke(kind, built, "early")

    with capture_spans() as cap:
        await invoke(kind, built, "Paris")
        spans = named(cap, "work")
        assert len(spans) == 1
        assert spans[0]["name"] == EXPECTED[kind][0]


# == 9. return values =======================================================================


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", KINDS)
async def test_return_value_passes_through_untouched(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """The wrapped function's return value (or yielded item) is the very same object."""

    class Opaque:
        def __repr__(self) -> str:
            return "Opaque()"

    obj = Opaque()
    built = build(shape, deco_for(kind, **capture_on(kind)), lambda city, n, rest: obj)
    result = await invoke(kind, built, "Paris")

    if built.mode in ("gen", "agen"):
        assert result[0] == "Paris"
        assert result[1] is obj
    else:
        assert result is obj
    assert len(named(captured, "work")) == 1


# == 10. @agent options =====================================================================

CONTEXT_KEYS: dict[str, str] = {
    sc.ROLLOUT_USER_ID: "u-1",
    sc.USER_ID: "u-1",
    sc.ROLLOUT_SESSION_ID: "s-1",
    sc.SESSION_ID: "s-1",
    sc.ROLLOUT_CONVERSATION_ID: "c-1",
    sc.GEN_AI_CONVERSATION_ID: "c-1",
}


@pytest.mark.parametrize("agent_name", ["support", None])
@pytest.mark.parametrize("shape", ALL_SHAPES)
async def test_agent_options_reach_agent_span_and_children(
    captured: CapturedSpans, shape: str, agent_name: str | None
) -> None:
    """user/session/conversation ids and the agent name land on the agent span and children."""

    @rollout.tool("lookup")
    def lookup(q: str) -> str:
        return q

    @rollout.task("step")
    def step() -> int:
        return 1

    def body(city: str, n: int, rest: tuple[Any, ...]) -> Any:
        step()
        return lookup(city)

    deco = rollout.agent(
        agent_name,
        user_id="u-1",
        session_id="s-1",
        conversation_id="c-1",
        attributes={"k": "v"},
        external_trace_id="ext-1",
    )
    built = build(shape, deco, body)
    await invoke("agent", built, "Paris")

    expected_name = agent_name or "work"
    agent_span = captured.by_name(expected_name)
    attrs = agent_span["attributes"]
    assert agent_span["name"] == f"invoke_agent {expected_name}"
    assert attrs[f"{sc.ROLLOUT_ATTRIBUTES}.k"] == "v"
    assert attrs[sc.ROLLOUT_TRACE_EXTERNAL_ID] == "ext-1"
    children = [captured.by_name("lookup"), captured.by_name("step")]
    for span in [agent_span, *children]:
        for key, value in CONTEXT_KEYS.items():
            assert span["attributes"][key] == value, (span["name"], key)
        assert span["attributes"][sc.ROLLOUT_AGENT_NAME] == expected_name
        assert span["attributes"][sc.GEN_AI_AGENT_NAME] == expected_name
    for child in children:
        assert child["parent_id"] == agent_span["span_id"]
        assert child["trace_id"] == agent_span["trace_id"]


async def test_agent_without_options_sets_no_context_ids(captured: CapturedSpans) -> None:
    """An @agent with no user/session/conversation records none of those keys."""

    @rollout.agent
    def work() -> str:
        return "ok"

    work()
    attrs = captured.by_name("work")["attributes"]
    for key in CONTEXT_KEYS:
        assert key not in attrs
    assert sc.ROLLOUT_TRACE_EXTERNAL_ID not in attrs


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_function_named_like_its_type_keeps_its_name_in_the_span_name(
    captured: CapturedSpans, mode: str
) -> None:
    """`invoke_agent agent`, `execute_tool tool`; an unnamed retrieval span stays `retrieval`."""

    @rollout.tool
    def tool(x: int) -> int:
        return x

    @rollout.agent
    def agent(x: int) -> int:
        with rollout.span("retrieval"):
            return tool(x)

    @rollout.tool("tool")
    async def atool(x: int) -> int:
        return x

    @rollout.agent("agent")
    async def aagent(x: int) -> int:
        async with rollout.span("retrieval"):
            return await atool(x)

    assert (await aagent(3) if mode == "async" else agent(3)) == 3
    names = sorted(s["name"] for s in captured.as_dicts())
    assert names == ["execute_tool tool", "invoke_agent agent", "retrieval"]
