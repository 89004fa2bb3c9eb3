"""The one engine behind `agent`, `trace`, `span`, `tool` and `task`.

Everything that can be decided when the decorator is applied is decided then: the span
name and type, the start attributes, the parameter names used to bind arguments, and
which of four small call shapes fits the function (plain, coroutine, generator, async
generator). The per-call path opens a scope, runs the user's code, and closes the
scope; SDK failures are swallowed by the internal-error guard, the user's exceptions
pass through untouched.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context

from mv37.rollout.base._diagnostics import debug_once, internal_error
from mv37.rollout.facade import _current
from mv37.rollout.facade._client import RolloutCore
from mv37.rollout.facade._context import NOOP_SCOPES, NoopScopes, context_with, current_trace
from mv37.rollout.facade._span import Span, ToolCall, _Scope
from mv37.rollout.facade._trace import Trace
from mv37.rollout.vocabulary._attributes import (
    AGENT,
    TOOL,
    TRACE_TYPES,
    Attributes,
    capture_allowed,
    llm_attributes,
    plan_span,
    type_attributes,
    user_attributes,
)
from mv37.rollout.vocabulary._payload_mirrors import payload_attributes

_MAX_YIELDED_KEPT = 100


@dataclass(frozen=True)
class ScopeOptions:
    """What a decorator or context manager was asked for (decided once)."""

    span_type: str
    name: str | None = None
    capture_input: bool = False
    capture_output: bool = False
    attributes: Mapping[str, Any] | None = None
    trace_options: Mapping[str, Any] = field(default_factory=dict)
    llm_options: Mapping[str, Any] = field(default_factory=dict)
    retry_count: int | None = None


_SELF_NAMES = frozenset({"self", "cls"})


def _in_class_body(fn: Callable[..., Any]) -> bool:
    """`fn` was defined in a class body (so a call passes the instance first)."""
    parts = getattr(fn, "__qualname__", "").rsplit(".", 2)
    return len(parts) > 1 and parts[-2] != "<locals>"


class _Params:
    """Parameter names for binding arguments by name, computed once per function.

    `instance` says where the instance (`self`/`cls`, never recorded) is: "bound" (a
    bound method carries it, the arguments do not), "first" (a classmethod's class comes
    first), "none" (a staticmethod), or "auto" (first, for a function defined in a class
    body whose first parameter is `self`/`cls`). `skip` is how many leading positional
    arguments are left out.
    """

    __slots__ = ("names", "skip", "varargs")

    def __init__(self, fn: Callable[..., Any] | None, *, instance: str = "auto") -> None:
        self.names: tuple[str, ...] = ()
        self.varargs: str | None = None
        self.skip = 0
        if fn is None:
            return
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        names = tuple(p.name for p in sig.parameters.values() if p.kind in kinds)
        for p in sig.parameters.values():
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                self.varargs = p.name
        if instance == "auto" and names and names[0] in _SELF_NAMES and _in_class_body(fn):
            instance = "first"
        if names and instance in ("bound", "first"):
            names = names[1:]
            self.skip = 1 if instance == "first" else 0
        self.names = names

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The passed arguments by name; `self`/`cls` left out."""
        if self.skip:
            args = args[self.skip :]
        names = self.names
        bound = dict(zip(names, args, strict=False))
        if len(args) > len(names):
            bound[self.varargs or "args"] = args[len(names) :]
        if kwargs:
            bound.update(kwargs)
        return bound


Opened = _Scope | NoopScopes | None
"""What `_Engine.open` gives: a scope to run in, the no-op facades (disabled), or None
(run untraced)."""


class _Engine:
    """Opens and closes the scope of one decorated function's calls."""

    __slots__ = (
        "child_cls",
        "client",
        "is_trace",
        "name",
        "options",
        "params",
        "plan",
        "trace_plan",
    )

    def __init__(
        self,
        options: ScopeOptions,
        fn: Callable[..., Any] | None,
        *,
        client: RolloutCore | None = None,
    ) -> None:
        """Decide everything about `fn`'s calls; record into `client` (else the global)."""
        # staticmethod/classmethod objects and bound methods (`tool()(obj.method)`): the
        # function underneath names the parameters.
        target, instance = fn, "auto"
        if isinstance(fn, classmethod):
            target, instance = fn.__func__, "first"
        elif isinstance(fn, staticmethod):
            target, instance = fn.__func__, "none"
        elif inspect.ismethod(fn):
            target, instance = fn.__func__, "bound"
        self.options = options
        self.client = client
        self.name = options.name or getattr(target, "__name__", None) or options.span_type
        self.is_trace = options.span_type in TRACE_TYPES
        self.params = _Params(target, instance=instance)
        self.plan = plan_span(
            options.span_type,
            self.name,
            _start_attributes(options, self.name),
            options.llm_options.get("model"),
        )
        self.child_cls = ToolCall if options.span_type == TOOL else Span
        # A trace's type attributes and span name (the plan's), made once for all its calls.
        self.trace_plan = (
            (type_attributes(options.span_type, self.name), self.plan.otel_name)
            if self.is_trace
            else None
        )

    def open(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Opened:
        """Start the span (not yet current); None when nothing should be recorded.

        With the kill switch on, the scope gets the client's no-op facades so that
        `current_trace()`/`current_span()` inside work and record nothing.
        """
        try:
            client = self.client or _current.client or _current.get_client()
            if client.config.disabled:
                return client.noop_scopes if NOOP_SCOPES.get() is None else None
            options = self.options
            if self.is_trace:
                trace = client.start_trace(
                    options.span_type,
                    self.name,
                    agent_name=options.name if options.span_type == AGENT else None,
                    prepared=self.trace_plan,
                    **options.trace_options,
                )
                if options.capture_input and trace.is_recording:
                    trace.set_agent_input(self.params.bind(args, kwargs))
                return trace
            parent = current_trace()
            if parent is None:
                debug_once(
                    f"no-trace-{self.name}",
                    "mv37.rollout: %r called with no active trace; running it untraced",
                    self.name,
                )
                return None
            extra = None
            config = client.config
            if (
                options.capture_input
                and parent.is_recording
                and capture_allowed(config, "input", options.span_type)
            ):
                bound = self.params.bind(args, kwargs)
                extra = payload_attributes(config, "input", bound, options.span_type)
            return parent.start_child(self.child_cls, self.plan, extra)
        except Exception as exc:
            internal_error("open decorated span", exc)
            return None

    def close(self, scope: _Scope, result: object, exc: BaseException | None) -> bool:
        """Record the output (or the error) and end the span.

        True when the caller owes a wait for delivery (a root trace under
        `agent_flush="wait"`): the sync shape waits in place, the async one in a thread.
        """
        try:
            if exc is None and self.options.capture_output and scope.is_recording:
                if isinstance(scope, Trace):
                    scope.set_agent_output(result)
                elif isinstance(scope, Span):
                    scope.record_output(result)
            return scope._end(exc)
        except Exception as inner:
            internal_error("close decorated span", inner)
            return False


def _start_attributes(options: ScopeOptions, name: str) -> Attributes:
    if options.span_type in TRACE_TYPES:
        return {}
    attrs = type_attributes(options.span_type, name)
    try:
        attrs.update(llm_attributes(**options.llm_options))
        if options.retry_count is not None:
            from mv37.rollout import semconv as sc

            attrs[sc.ROLLOUT_TOOL_RETRY_COUNT] = int(options.retry_count)
        attrs.update(user_attributes(options.attributes, 32_768))
    except Exception as exc:
        internal_error("decorator attributes", exc)
    return attrs


# -- the four call shapes ------------------------------------------------------------------


def enter(scope: _Scope) -> None:
    """Make `scope` current (its OTel span and facades) in this context."""
    if isinstance(scope, Trace):
        scope._attach(scope, None)
    elif isinstance(scope, Span):
        scope._attach(scope.trace, scope)


def _context_of(scope: _Scope) -> otel_context.Context:
    """The context a generator step runs in: the scope current, facades set."""
    if isinstance(scope, Trace):
        return context_with(scope.otel_span, scope, None)
    assert isinstance(scope, Span)
    return context_with(scope.otel_span, scope.trace, scope)


# -- the four call shapes ------------------------------------------------------------------
# Each is a plain closure around the user's function (no wrapper object in between), so a
# decorated call costs one extra frame: decorated recursion goes about half as deep as the
# plain function, and a call pays no proxy dispatch.


def _sync_shape(engine: _Engine, fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        client = engine.client or _current.client
        if client is not None and client.off is not None:  # the kill switch, first
            token = NOOP_SCOPES.set(client.off)
            try:
                return fn(*args, **kwargs)
            finally:
                NOOP_SCOPES.reset(token)
        try:
            scope = engine.open(args, kwargs)
            if scope is not None and scope.__class__ is not NoopScopes:
                enter(scope)  # type: ignore[arg-type]
        except RecursionError:  # out of stack in our code: the user's own call raises it
            scope = None
        if scope is None:
            return fn(*args, **kwargs)
        if isinstance(scope, NoopScopes):
            token = NOOP_SCOPES.set(scope)
            try:
                return fn(*args, **kwargs)
            finally:
                NOOP_SCOPES.reset(token)
        owed = False
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            try:  # noqa: SIM105 - contextlib.suppress needs stack we may not have
                owed = engine.close(scope, None, exc)
            except RecursionError:
                pass  # the user's exception is what propagates
            if owed:
                scope.client._wait_for_delivery()
            raise
        try:  # noqa: SIM105 - contextlib.suppress needs stack we may not have
            owed = engine.close(scope, result, None)
        except RecursionError:
            pass
        if owed:
            scope.client._wait_for_delivery()
        return result

    return call


def _async_shape(engine: _Engine, fn: Callable[..., Any]) -> Callable[..., Any]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        client = engine.client or _current.client
        if client is not None and client.off is not None:  # the kill switch, first
            token = NOOP_SCOPES.set(client.off)
            try:
                return await fn(*args, **kwargs)
            finally:
                NOOP_SCOPES.reset(token)
        try:
            scope = engine.open(args, kwargs)
            if scope is not None and scope.__class__ is not NoopScopes:
                enter(scope)  # type: ignore[arg-type]
        except RecursionError:  # out of stack in our code: the user's own call raises it
            scope = None
        if scope is None:
            return await fn(*args, **kwargs)
        if isinstance(scope, NoopScopes):
            token = NOOP_SCOPES.set(scope)
            try:
                return await fn(*args, **kwargs)
            finally:
                NOOP_SCOPES.reset(token)
        owed = False
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            try:  # noqa: SIM105 - contextlib.suppress needs stack we may not have
                owed = engine.close(scope, None, exc)
            except RecursionError:
                pass  # the user's exception is what propagates
            if owed:  # off the event loop: other tasks keep running meanwhile
                await asyncio.to_thread(scope.client._wait_for_delivery)
            raise
        try:  # noqa: SIM105 - contextlib.suppress needs stack we may not have
            owed = engine.close(scope, result, None)
        except RecursionError:
            pass
        if owed:
            await asyncio.to_thread(scope.client._wait_for_delivery)
        return result

    return call


class _Iteration:
    """The span side of one generator run, shared by the sync and async loops.

    With no scope (no active trace) every method is a no-op, so the loops below serve
    traced and untraced generators alike and `send`/`throw` always reach the user's
    generator. With the kill switch on, each step runs with the no-op facades set.
    """

    __slots__ = ("ctx", "engine", "kept", "noop", "scope")

    def __init__(self, engine: _Engine, args: Any, kwargs: Any) -> None:
        self.engine = engine
        opened = engine.open(args, kwargs)
        self.noop = opened if isinstance(opened, NoopScopes) else None
        self.scope = opened if isinstance(opened, _Scope) else None
        self.ctx = _context_of(self.scope) if self.scope is not None else None
        self.kept: list[Any] = []

    def attach(self) -> object | None:
        """Make the span current for one step of the user's generator."""
        if self.ctx is not None:
            return otel_context.attach(self.ctx)
        if self.noop is not None:
            return NOOP_SCOPES.set(self.noop)
        return None

    def detach(self, token: object | None) -> None:
        """Restore the consumer's context after the step."""
        if token is None:
            return
        if self.noop is not None:
            NOOP_SCOPES.reset(token)  # type: ignore[arg-type]
        else:
            otel_context.detach(token)  # type: ignore[arg-type]

    def produced(self, item: Any) -> None:
        """Keep the first items as the span's output."""
        if self.scope is not None and len(self.kept) < _MAX_YIELDED_KEPT:
            self.kept.append(item)

    def finished(self, value: Any = None) -> None:
        """Exhausted, closed early, or the loop broke: not an error."""
        self._close(self.kept if value is None else value, None)

    def failed(self, exc: BaseException) -> None:
        """An exception left the user's generator."""
        self._close(None, exc)

    def _close(self, result: object, exc: BaseException | None) -> None:
        # A generator's end can come from a `close()` or a finalizer, where nothing can
        # be awaited: an owed wait for delivery happens here, in place.
        scope = self.scope
        if scope is not None and self.engine.close(scope, result, exc):
            scope.client._wait_for_delivery()


def _gen_shape(engine: _Engine, fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        """Run the user's generator one step at a time inside the span's context."""
        gen = fn(*args, **kwargs)
        run = _Iteration(engine, args, kwargs)
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            token = run.attach()
            try:
                item = gen.send(to_send) if to_throw is None else gen.throw(to_throw)
            except StopIteration as stop:
                run.finished(stop.value)
                return stop.value
            except BaseException as exc:
                run.failed(exc)
                raise
            finally:
                run.detach(token)
            to_throw = None
            run.produced(item)
            try:
                to_send = yield item
            except GeneratorExit:
                try:
                    gen.close()
                finally:
                    run.finished()
                raise
            except BaseException as exc:
                to_send, to_throw = None, exc

    return call


def _asyncgen_shape(engine: _Engine, fn: Callable[..., Any]) -> Callable[..., Any]:
    async def call(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        """The async twin of the generator loop, stepping with `asend`/`athrow`."""
        agen = fn(*args, **kwargs)
        run = _Iteration(engine, args, kwargs)
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            token = run.attach()
            try:
                item = await (agen.asend(to_send) if to_throw is None else agen.athrow(to_throw))
            except StopAsyncIteration:
                run.finished()
                return
            except BaseException as exc:
                run.failed(exc)
                raise
            finally:
                run.detach(token)
            to_throw = None
            run.produced(item)
            try:
                to_send = yield item
            except GeneratorExit:
                try:
                    await agen.aclose()
                finally:
                    run.finished()
                raise
            except BaseException as exc:
                to_send, to_throw = None, exc

    return call


def instrument(options: ScopeOptions, fn: Any) -> Any:
    """Wrap `fn` (function, method, classmethod, staticmethod) with the engine."""
    return wrap_with(_Engine(options, fn), fn)


def wrap_with(engine: _Engine, fn: Any) -> Any:
    """Wrap `fn` with `engine`, in the call shape of `fn` (sync, async, generators).

    A classmethod or staticmethod stays one, around the wrapped function; anything else
    becomes a function that looks like `fn` (name, docstring, signature, `inspect`
    predicates) and binds as a method like any function.
    """
    if isinstance(fn, (staticmethod, classmethod)):
        return type(fn)(wrap_with(engine, fn.__func__))
    if inspect.isasyncgenfunction(fn):
        shape = _asyncgen_shape
    elif inspect.iscoroutinefunction(fn):
        shape = _async_shape
    elif inspect.isgeneratorfunction(fn):
        shape = _gen_shape
    else:
        shape = _sync_shape
    return functools.update_wrapper(shape(engine, fn), fn)
