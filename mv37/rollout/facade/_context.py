"""Active Rollout objects live in OpenTelemetry's context, not in a second stack.

A Rollout span or trace that becomes current attaches one OTel context holding the OTel
span plus the facades, so `current_trace()` works from any helper, across `await`, in
every asyncio task and thread, and next to spans of other instrumentations.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple, ParamSpec, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, set_span_in_context
from opentelemetry.trace import Span as OTelSpan

from mv37.rollout.base._diagnostics import internal_error
from mv37.rollout.vocabulary._keys import SPAN_KEY, TRACE_KEY

if TYPE_CHECKING:
    from mv37.rollout.facade._span import Span
    from mv37.rollout.facade._trace import Trace

_OTEL_SPAN_KEY = next(iter(set_span_in_context(INVALID_SPAN, Context())))
"""The key OTel's `set_span_in_context` stores the current span under."""

P = ParamSpec("P")
R = TypeVar("R")


class NoopScopes(NamedTuple):
    """The no-op trace and span that user code sees inside a scope that records nothing.

    With the kill switch on, decorators and `with rollout.trace(...)` set these in a
    plain `ContextVar` (cheaper than an OTel context, and the ambient OTel span stays
    current), so `current_trace().message(...)` keeps working and records nothing.
    """

    trace: Trace
    span: Span


NOOP_SCOPES: ContextVar[NoopScopes | None] = ContextVar("mv37_rollout_noop", default=None)


def current_trace() -> Trace | None:
    """The Rollout trace active in this context (thread / asyncio task), or `None`.

    Example:
        >>> def record_outcome(ok: bool) -> None:
        ...     trace = current_trace()
        ...     if trace is not None:
        ...         trace.signal("resolved", ok)
    """
    trace = otel_context.get_value(TRACE_KEY)
    if trace is None:
        noop = NOOP_SCOPES.get()
        return None if noop is None else noop.trace
    return trace  # type: ignore[return-value]


def current_span() -> Span | None:
    """The innermost Rollout span (not trace) active in this context, or `None`.

    Inside a scope that records nothing (the kill switch, no provider) it is a no-op
    span whose methods work and record nothing.
    """
    span = otel_context.get_value(SPAN_KEY)
    if span is not None:
        return span  # type: ignore[return-value]
    trace: Trace | None = otel_context.get_value(TRACE_KEY)  # type: ignore[assignment]
    if trace is None:
        noop = NOOP_SCOPES.get()
        return None if noop is None else noop.span
    if trace.otel_span is INVALID_SPAN:
        # A placeholder trace (disabled client, no provider): its no-op span.
        return trace.client.noop_scopes.span
    return None


def context_with(
    otel_span: OTelSpan, trace: Trace, span: Span | None, base: Context | None = None
) -> Context:
    """A context where `otel_span` is current and `trace`/`span` are the active facades.

    A placeholder span (`INVALID_SPAN`: no provider, no active trace) leaves the
    ambient OTel span current, so other instrumentations' spans keep their parent.
    """
    # One copy instead of three chained `set_value`s: this runs on every span start.
    values = dict(otel_context.get_current() if base is None else base)
    if otel_span is not INVALID_SPAN:
        values[_OTEL_SPAN_KEY] = otel_span
    values[TRACE_KEY] = trace
    values[SPAN_KEY] = span
    return Context(values)


def attach_scope(otel_span: OTelSpan, trace: Trace, span: Span | None) -> object | None:
    """Make a scope current (`context_with`); the token, or None when that failed.

    The one guard around attaching: a failure is an internal error (logged once,
    counted), never the user's.
    """
    try:
        return otel_context.attach(context_with(otel_span, trace, span))
    except Exception as exc:
        internal_error("attach context", exc)
        return None


def detach_scope(token: object | None) -> None:
    """Undo `attach_scope` (nothing for None); a failure is an internal error."""
    if token is None:
        return
    try:
        otel_context.detach(token)  # type: ignore[arg-type]
    except Exception as exc:
        internal_error("detach context", exc)


def bind_context(fn: Callable[P, R]) -> Callable[P, R]:
    """Carry the caller's active trace into a thread-pool worker, in one line.

    contextvars do not follow work into `ThreadPoolExecutor` threads; wrap the callable
    where you submit it and it runs inside the trace that was active at that moment.

    Example:
        >>> with ThreadPoolExecutor() as pool:  # doctest: +SKIP
        ...     pool.submit(rollout.bind_context(fetch), url)
    """
    captured = otel_context.get_current()
    noop = NOOP_SCOPES.get()  # the kill switch's no-op facades, when inside its scope
    if inspect.iscoroutinefunction(fn):
        # The body runs when the coroutine is awaited (maybe on another thread's loop):
        # attach there, not when the coroutine object is created.
        async def await_in_captured_context(*args: Any, **kwargs: Any) -> Any:
            token = otel_context.attach(captured)
            noop_token = NOOP_SCOPES.set(noop)
            try:
                return await fn(*args, **kwargs)
            finally:
                NOOP_SCOPES.reset(noop_token)
                otel_context.detach(token)

        return functools.wraps(fn)(await_in_captured_context)  # type: ignore[return-value]

    @functools.wraps(fn)
    def run_in_captured_context(*args: P.args, **kwargs: P.kwargs) -> R:
        token = otel_context.attach(captured)
        noop_token = NOOP_SCOPES.set(noop)
        try:
            return fn(*args, **kwargs)
        finally:
            NOOP_SCOPES.reset(noop_token)
            otel_context.detach(token)

    return run_in_captured_context
