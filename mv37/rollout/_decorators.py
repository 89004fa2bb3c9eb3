"""The one engine behind `agent`, `trace`, `span`, `tool` and `task`.

Everything that can be decided when the decorator is applied is decided then: the span
name and type, the start attributes, the parameter names used to bind arguments, and
which of four small call shapes fits the function (plain, coroutine, generator, async
generator). The per-call path opens a scope, runs the user's code, and closes the
scope; SDK failures are swallowed by the internal-error guard, the user's exceptions
pass through untouched.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import wrapt
from opentelemetry import context as otel_context

from mv37.rollout import _global
from mv37.rollout._attributes import (
    AGENT,
    TOOL,
    TRACE_TYPES,
    Attributes,
    capture_allowed,
    llm_attributes,
    payload_attributes,
    plan_span,
    type_attributes,
    user_attributes,
)
from mv37.rollout._client import Rollout
from mv37.rollout._context import context_with, current_trace
from mv37.rollout._diagnostics import debug_once, internal_error
from mv37.rollout._span import Span, ToolCall, _Scope
from mv37.rollout._trace import Trace

_MAX_YIELDED_KEPT = 100


def _client() -> Rollout:
    return _global._client or _global.get_client()


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


class _Params:
    """Parameter names for binding arguments by name, computed once per function."""

    __slots__ = ("names", "varargs")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.names: tuple[str, ...] = ()
        self.varargs: str | None = None
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.names = tuple(p.name for p in sig.parameters.values() if p.kind in kinds)
        for p in sig.parameters.values():
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                self.varargs = p.name

    def bind(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """The passed arguments by name; `self`/`cls` left out."""
        names = self.names[1:] if instance is not None else self.names
        bound = dict(zip(names, args, strict=False))
        if len(args) > len(names):
            bound[self.varargs or "args"] = args[len(names) :]
        if kwargs:
            bound.update(kwargs)
        return bound


class _Engine:
    """Opens and closes the scope of one decorated function's calls."""

    __slots__ = ("child_cls", "is_trace", "name", "options", "params", "plan")

    def __init__(self, options: ScopeOptions, fn: Callable[..., Any] | None) -> None:
        # staticmethod/classmethod objects and bound methods (`tool()(obj.method)`): the
        # function underneath. wrapt passes a bound method's `__self__` as the instance,
        # so the parameter list must still start with `self`/`cls`.
        is_method = isinstance(fn, (staticmethod, classmethod)) or inspect.ismethod(fn)
        target = fn.__func__ if is_method else fn  # type: ignore[union-attr]
        self.options = options
        self.name = options.name or getattr(target, "__name__", None) or options.span_type
        self.is_trace = options.span_type in TRACE_TYPES
        self.params = _Params(target) if target is not None else _Params(_no_params)
        self.plan = plan_span(
            options.span_type,
            self.name,
            _start_attributes(options, self.name),
            options.llm_options.get("model"),
        )
        self.child_cls = ToolCall if options.span_type == TOOL else Span

    def open(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _Scope | None:
        """Start the span (not yet current); None when nothing should be recorded."""
        try:
            client = _client()
            if client.config.disabled:
                return None
            options = self.options
            if self.is_trace:
                trace = client.start_trace(
                    options.span_type,
                    self.name,
                    agent_name=options.name if options.span_type == AGENT else None,
                    **options.trace_options,
                )
                if options.capture_input and trace.is_recording:
                    trace.set_agent_input(self.params.bind(instance, args, kwargs))
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
                limit = config.max_payload_chars
                bound = self.params.bind(instance, args, kwargs)
                extra = payload_attributes("input", bound, limit, options.span_type)
            return parent.start_child(self.child_cls, self.plan, extra)
        except Exception as exc:
            internal_error("open decorated span", exc)
            return None

    def close(self, scope: _Scope, result: object, exc: BaseException | None) -> None:
        """Record the output (or the error) and end the span."""
        try:
            if exc is None and self.options.capture_output and scope.is_recording:
                if isinstance(scope, Trace):
                    scope.set_agent_output(result)
                elif isinstance(scope, Span):
                    scope.record_output(result)
            scope.__exit__(type(exc) if exc is not None else None, exc, None)
        except Exception as inner:
            internal_error("close decorated span", inner)

    def context(self, scope: _Scope) -> otel_context.Context:
        """The context a generator step runs in: the scope current, facades set."""
        if isinstance(scope, Trace):
            return context_with(scope.otel_span, scope, None)
        assert isinstance(scope, Span)
        return context_with(scope.otel_span, scope.trace, scope)


def _no_params() -> None:
    """Signature stand-in for context-manager use."""


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
    if isinstance(scope, Trace):
        scope._attach(scope, None)
    elif isinstance(scope, Span):
        scope._attach(scope.trace, scope)


def _sync_wrapper(engine: _Engine) -> Callable[..., Any]:
    def call(wrapped: Callable[..., Any], instance: object, args: Any, kwargs: Any) -> Any:
        scope = engine.open(instance, args, kwargs)
        if scope is None:
            return wrapped(*args, **kwargs)
        enter(scope)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            engine.close(scope, None, exc)
            raise
        engine.close(scope, result, None)
        return result

    return call


def _async_wrapper(engine: _Engine) -> Callable[..., Any]:
    async def call(wrapped: Callable[..., Any], instance: object, args: Any, kwargs: Any) -> Any:
        scope = engine.open(instance, args, kwargs)
        if scope is None:
            return await wrapped(*args, **kwargs)
        enter(scope)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            engine.close(scope, None, exc)
            raise
        engine.close(scope, result, None)
        return result

    return call


def _gen_wrapper(engine: _Engine) -> Callable[..., Any]:
    def call(wrapped: Callable[..., Any], instance: object, args: Any, kwargs: Any) -> Any:
        return _traced_generator(engine, wrapped(*args, **kwargs), instance, args, kwargs)

    return call


class _Iteration:
    """The span side of one generator run, shared by the sync and async loops.

    With no scope (no active trace, disabled) every method is a no-op, so the loops
    below serve traced and untraced generators alike and `send`/`throw` always reach
    the user's generator.
    """

    __slots__ = ("ctx", "engine", "kept", "scope")

    def __init__(self, engine: _Engine, instance: object, args: Any, kwargs: Any) -> None:
        self.engine = engine
        self.scope = engine.open(instance, args, kwargs)
        self.ctx = engine.context(self.scope) if self.scope is not None else None
        self.kept: list[Any] = []

    def attach(self) -> object | None:
        """Make the span current for one step of the user's generator."""
        return otel_context.attach(self.ctx) if self.ctx is not None else None

    def detach(self, token: object | None) -> None:
        """Restore the consumer's context after the step."""
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    def produced(self, item: Any) -> None:
        """Keep the first items as the span's output."""
        if self.scope is not None and len(self.kept) < _MAX_YIELDED_KEPT:
            self.kept.append(item)

    def finished(self, value: Any = None) -> None:
        """Exhausted, closed early, or the loop broke: not an error."""
        if self.scope is not None:
            self.engine.close(self.scope, self.kept if value is None else value, None)

    def failed(self, exc: BaseException) -> None:
        """An exception left the user's generator."""
        if self.scope is not None:
            self.engine.close(self.scope, None, exc)


def _traced_generator(
    engine: _Engine, gen: Generator[Any, Any, Any], instance: object, args: Any, kwargs: Any
) -> Generator[Any, Any, Any]:
    """Run `gen` one step at a time inside the span's context; the span covers it all."""
    run = _Iteration(engine, instance, args, kwargs)
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


def _asyncgen_wrapper(engine: _Engine) -> Callable[..., Any]:
    def call(wrapped: Callable[..., Any], instance: object, args: Any, kwargs: Any) -> Any:
        return _traced_async_generator(engine, wrapped(*args, **kwargs), instance, args, kwargs)

    return call


async def _traced_async_generator(
    engine: _Engine, agen: AsyncGenerator[Any, Any], instance: object, args: Any, kwargs: Any
) -> AsyncGenerator[Any, Any]:
    """The async twin of `_traced_generator`, stepping with `asend`/`athrow`."""
    run = _Iteration(engine, instance, args, kwargs)
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


def instrument(options: ScopeOptions, fn: Any) -> Any:
    """Wrap `fn` (function, method, classmethod, staticmethod) with the engine."""
    return wrap_with(_Engine(options, fn), fn)


def wrap_with(engine: _Engine, fn: Any) -> Any:
    """Wrap `fn` with `engine`, in the call shape of `fn` (sync, async, generators)."""
    target = fn.__func__ if isinstance(fn, (staticmethod, classmethod)) else fn
    if inspect.isasyncgenfunction(target):
        wrapper = _asyncgen_wrapper(engine)
    elif inspect.iscoroutinefunction(target):
        wrapper = _async_wrapper(engine)
    elif inspect.isgeneratorfunction(target):
        wrapper = _gen_wrapper(engine)
    else:
        wrapper = _sync_wrapper(engine)
    return wrapt.decorator(wrapper)(fn)
