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
from typing import TYPE_CHECKING, Any, TypeVar

import wrapt

from mv37.rollout.facade._api import tool, trace
from mv37.rollout.facade._context import current_trace
from mv37.rollout.facade._decorators import ScopeOptions, _Engine, wrap_with
from mv37.rollout.vocabulary._attributes import TRACE

if TYPE_CHECKING:
    from mv37.rollout.facade._client import RolloutCore

C = TypeVar("C")
_MARK = "_self_mv37_rollout_tool"  # wrapt keeps `_self_*` on the wrapper, not the function


def _tool_name(fn: Any) -> str:
    target = fn.func if isinstance(fn, functools.partial) else fn
    name = getattr(target, "__name__", None) or type(target).__name__
    return str(name)


def _is_wrapped(fn: Any) -> bool:
    return bool(getattr(fn, _MARK, False))


def _unbound(fn: Any) -> tuple[Any, object | None]:
    """(what the engine should wrap, the instance to bind it to afterwards).

    A bound method or a callable object is wrapped as its plain function and bound
    again, so the engine names the arguments from the full signature (with `self`) and
    records them under the right names; the result still looks like a bound method
    (name, docstring, signature, `iscoroutinefunction`).
    """
    if inspect.ismethod(fn) and inspect.isfunction(fn.__func__):
        return fn.__func__, fn.__self__
    if inspect.isroutine(fn) or isinstance(fn, functools.partial):
        return fn, None
    call = getattr(type(fn), "__call__", None)  # noqa: B004 - the class's function itself
    if inspect.isfunction(call):
        return call, fn
    return fn, None


def _trace_on(client: RolloutCore, name: str, fn: Any) -> Any:
    """`rollout.trace(name)(fn)`, recording into `client`."""
    return wrap_with(_Engine(ScopeOptions(TRACE, name=name), fn, client=client), fn)


def wrap_tool(
    fn: Callable[..., Any],
    name: str,
    *,
    record_input: bool = True,
    record_output: bool = True,
    implicit_trace: bool = False,
    client: RolloutCore | None = None,
) -> Callable[..., Any]:
    """One tool callable, instrumented (already instrumented ones come back unchanged).

    Raises:
        TypeError: `fn` is not callable.
    """
    if _is_wrapped(fn):
        return fn
    if not callable(fn):
        raise TypeError(f"wrap_tools(): tool {name!r} is not callable: {type(fn).__name__}")
    target, instance = _unbound(fn)
    traced = tool(name, record_input=record_input, record_output=record_output)(target)
    if implicit_trace:
        # Outside a trace, a one-call trace around the tool span; inside one, just the tool.
        standalone = trace(name)(traced) if client is None else _trace_on(client, name, traced)

        def dispatch(wrapped: Any, bound_to: Any, args: Any, kwargs: Any) -> Any:
            if current_trace() is not None:
                return wrapped(*args, **kwargs)  # wrapt hands it over already bound
            if bound_to is None:
                return standalone(*args, **kwargs)
            return standalone.__get__(bound_to, type(bound_to))(*args, **kwargs)

        traced = wrapt.FunctionWrapper(traced, dispatch)
    if instance is not None:
        traced = traced.__get__(instance, type(instance))
    with contextlib.suppress(AttributeError, TypeError):
        setattr(traced, _MARK, True)
    return traced  # type: ignore[no-any-return]


def wrap_tools(
    tools: C,
    *,
    record_input: bool = True,
    record_output: bool = True,
    implicit_trace: bool = False,
    client: RolloutCore | None = None,
) -> C:
    """Instrument a `{name: callable}` mapping or an iterable of callables.

    Each call becomes a `tool` span in the active trace (arguments and result recorded
    unless turned off). Outside a trace the tools run untraced, or, with
    `implicit_trace=True`, each call gets a one-call trace (on `client`, else on the
    global client). Returns the same type of container: dict, list or tuple (other
    mappings become dicts, other iterables lists). Names are the mapping's keys, else
    each callable's `__name__` (a callable object's class name, a partial's function's).

    Example:
        >>> tools = rollout.wrap_tools([get_weather, search])  # doctest: +SKIP

    Raises:
        TypeError: `tools` is neither a mapping nor an iterable, or holds a non-callable.
    """
    options: dict[str, Any] = {
        "record_input": record_input,
        "record_output": record_output,
        "implicit_trace": implicit_trace,
        "client": client,
    }
    if isinstance(tools, Mapping):
        return {str(key): wrap_tool(fn, str(key), **options) for key, fn in tools.items()}  # type: ignore[return-value]
    if not isinstance(tools, Iterable) or isinstance(tools, (str, bytes)):
        raise TypeError(
            f"wrap_tools() takes a mapping of name -> callable or an iterable of callables, "
            f"got {type(tools).__name__}"
        )
    items = [wrap_tool(fn, _tool_name(fn), **options) for fn in tools]
    return tuple(items) if isinstance(tools, tuple) else items  # type: ignore[return-value]
