"""`wrap_tools`: instrument a whole set of tool callables at once.

Each callable goes through the same engine as `@rollout.tool` (sync, async, generator
and async generator functions, methods, callable objects, `functools.partial`), so each
call is a `tool` span inside the active trace. The container comes back as the same
type: a dict stays a dict (keys are the tool names), a list a list, a tuple a tuple.

Example:
    >>> tools = rollout.wrap_tools({"get_weather": get_weather, "search": search})  # doctest: +SKIP
    >>> tools["get_weather"]("Paris")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import wrapt

from mv37.rollout._api import tool, trace
from mv37.rollout._context import current_trace

C = TypeVar("C")
_MARK = "_self_mv37_rollout_tool"  # wrapt keeps `_self_*` on the wrapper, not the function


def _tool_name(fn: Any) -> str:
    target = fn.func if isinstance(fn, functools.partial) else fn
    name = getattr(target, "__name__", None) or type(target).__name__
    return str(name)


def _is_wrapped(fn: Any) -> bool:
    return bool(getattr(fn, _MARK, False))


def _callable_target(fn: Any) -> Any:
    """What the engine should wrap: functions as they are, a callable object's `__call__`."""
    if inspect.isroutine(fn) or isinstance(fn, functools.partial):
        return fn
    call = getattr(fn, "__call__", None)  # noqa: B004 - we want the bound method itself
    return call if call is not None else fn


def wrap_tool(
    fn: Callable[..., Any],
    name: str,
    *,
    record_input: bool = True,
    record_output: bool = True,
    implicit_trace: bool = False,
) -> Callable[..., Any]:
    """One tool callable, instrumented (already instrumented ones come back unchanged)."""
    if _is_wrapped(fn):
        return fn
    target = _callable_target(fn)
    traced = tool(name, record_input=record_input, record_output=record_output)(target)
    if implicit_trace:
        # Outside a trace, a one-call trace around the tool span; inside one, just the tool.
        standalone = trace(name)(traced)

        def dispatch(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            chosen = wrapped if current_trace() is not None else standalone
            return chosen(*args, **kwargs)

        traced = wrapt.FunctionWrapper(traced, dispatch)
    with contextlib.suppress(AttributeError, TypeError):
        setattr(traced, _MARK, True)
    return traced  # type: ignore[no-any-return]


def wrap_tools(
    tools: C,
    *,
    record_input: bool = True,
    record_output: bool = True,
    implicit_trace: bool = False,
) -> C:
    """Instrument a `{name: callable}` mapping or an iterable of callables.

    Each call becomes a `tool` span in the active trace (arguments and result recorded
    unless turned off). Outside a trace the tools run untraced, or, with
    `implicit_trace=True`, each call gets a one-call trace. Returns the same type of
    container: dict, list or tuple (other mappings become dicts, other iterables lists).
    """
    options: dict[str, bool] = {
        "record_input": record_input,
        "record_output": record_output,
        "implicit_trace": implicit_trace,
    }
    if isinstance(tools, Mapping):
        return {str(key): wrap_tool(fn, str(key), **options) for key, fn in tools.items()}  # type: ignore[return-value]
    if not isinstance(tools, Iterable) or isinstance(tools, (str, bytes)):
        raise TypeError(
            f"wrap_tools() takes a mapping of name -> callable or an iterable of callables, "
            f"got {type(tools).__name__}"
        )
    items = [wrap_tool(fn, _tool_name(fn), **options) for fn in tools]
    if isinstance(tools, tuple):
        return tuple(items)  # type: ignore[return-value]
    return items  # type: ignore[return-value]
