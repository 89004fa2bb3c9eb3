"""The decorator matrix shared by the test_decorators_* modules.

Kinds (agent/trace/tool/task/retrieval/llm) x shapes: sync and async functions,
generators, async generators, and (sync and async) methods, classmethods and staticmethods
(decorator applied outside `@classmethod` / `@staticmethod`); `build()` makes one decorated
`work(city, n=1, *rest)` of a shape, `invoke()` runs it.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans

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


def identity(fn: F) -> F:
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


def named(captured: CapturedSpans, name: str) -> list[dict[str, Any]]:
    """All exported spans whose Rollout name is `name`."""
    return [s for s in captured.as_dicts() if s["attributes"].get(sc.ROLLOUT_SPAN_NAME) == name]


class Boom(Exception):
    """The user's error."""
