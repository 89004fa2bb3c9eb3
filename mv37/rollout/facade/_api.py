"""`agent`, `trace`, `span`, `tool`, `task`: one factory, five spellings.

Each works bare (`@rollout.tool`), with a name (`@rollout.tool("get_weather")`) or with
keyword options, on sync and async functions, generators, async generators, methods,
classmethods and staticmethods (apply it outside `@classmethod`/`@staticmethod`).
`trace`, `span`, `tool` and `task` are also sync and async context managers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import Token
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

from mv37.rollout.base._reentrant import Entries
from mv37.rollout.facade._context import NOOP_SCOPES, NoopScopes
from mv37.rollout.facade._current import get_client
from mv37.rollout.facade._decorators import ScopeOptions, _Engine, enter, instrument
from mv37.rollout.facade._span import Span, ToolCall, _Scope
from mv37.rollout.facade._trace import Trace, null_span, null_trace
from mv37.rollout.vocabulary._attributes import AGENT, TASK, TOOL, TRACE

F = TypeVar("F", bound=Callable[..., Any])

# Scopes opened by factories used as context managers, per thread / asyncio task, so one
# factory object entered from several tasks at once keeps each caller's scope apart. With
# the kill switch on, the entry holds the token that set the no-op facades instead.
_Opened = _Scope | Token[NoopScopes | None] | None
_open_scopes: Entries[_Opened] = Entries("mv37_rollout_open_scopes")
T = TypeVar("T", bound=_Scope)


class ScopeFactory(Generic[T]):
    """A decorator that is also a (sync and async) context manager."""

    __slots__ = ("_options",)

    def __init__(self, options: ScopeOptions) -> None:
        self._options = options

    def __call__(self, fn: F) -> F:
        """Decorate `fn`: a span per call."""
        return instrument(self._options, fn)  # type: ignore[no-any-return]

    def _open(self) -> _Scope:
        opened = _Engine(self._options, None).open((), {})
        if isinstance(opened, _Scope):
            scope: _Scope = opened
            entry: _Opened = opened
            enter(opened)
        else:
            # Nothing to record: a no-op facade of the asked type, so the `with` block's
            # code runs unchanged. Disabled: the client's no-op facades, set without
            # touching OTel's context (or already set by an enclosing scope).
            entry = NOOP_SCOPES.set(opened) if opened is not None else None
            noop = opened or NOOP_SCOPES.get()
            is_trace = self._options.span_type in (AGENT, TRACE)
            if noop is not None:
                scope = noop.trace if is_trace else noop.span
            else:  # no active trace
                client = get_client()
                span_type = self._options.span_type
                if is_trace:
                    scope = null_trace(client)
                else:
                    scope = null_span(client, span_type, ToolCall if span_type == TOOL else Span)
                enter(scope)
                entry = scope
        _open_scopes.push(self, entry)
        return scope

    def __enter__(self) -> T:
        return self._open()  # type: ignore[return-value]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for entry in _open_scopes.take(self):
            if isinstance(entry, _Scope):
                entry.__exit__(exc_type, exc, tb)
            elif entry is not None:
                NOOP_SCOPES.reset(entry)

    async def __aenter__(self) -> T:
        return self._open()  # type: ignore[return-value]

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for entry in _open_scopes.take(self):
            if isinstance(entry, _Scope):
                await entry.__aexit__(exc_type, exc, tb)  # an owed wait runs off the loop
            elif entry is not None:
                NOOP_SCOPES.reset(entry)


def _is_function(target: object) -> bool:
    """Bare use (`@rollout.tool`): the argument is the function, possibly a descriptor."""
    return callable(target) or isinstance(target, (classmethod, staticmethod))


def _trace_options(**options: Any) -> dict[str, Any]:
    return {key: value for key, value in options.items() if value is not None}


@overload
def agent(name: F, /) -> F: ...
@overload
def agent(
    name: str | None = None,
    *,
    capture_input: bool = True,
    capture_output: bool = True,
    attributes: Mapping[str, Any] | None = None,
    external_trace_id: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    conversation_id: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> ScopeFactory[Trace]: ...
def agent(
    name: Any = None,
    *,
    capture_input: bool = True,
    capture_output: bool = True,
    attributes: Mapping[str, Any] | None = None,
    external_trace_id: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    conversation_id: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> Any:
    """Agent entry point: a fresh trace per call, input and output captured.

    Use it at the outermost entry point of a run. The call's spans are sent on their
    way when it returns, without waiting on the network unless `agent_flush="wait"`
    (the default on serverless runtimes): then it returns once they are delivered,
    within `shutdown_timeout`. Errors are recorded and re-raised.

    Example:
        >>> @rollout.agent("support_agent")  # doctest: +SKIP
        ... def handle(text: str) -> str: ...
    """
    if _is_function(name):
        return agent()(name)
    options = ScopeOptions(
        AGENT,
        name=name,
        capture_input=capture_input,
        capture_output=capture_output,
        attributes=attributes,
        trace_options=_trace_options(
            attributes=attributes,
            external_trace_id=external_trace_id,
            user_id=user_id,
            session_id=session_id,
            conversation_id=conversation_id,
            context=context,
        ),
    )
    return ScopeFactory[Trace](options)


@overload
def trace(name: F, /) -> F: ...
@overload
def trace(
    name: str | None = None,
    *,
    trace_id: str | int | None = None,
    external_trace_id: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    conversation_id: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> ScopeFactory[Trace]: ...
def trace(
    name: Any = None,
    *,
    trace_id: str | int | None = None,
    external_trace_id: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    conversation_id: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> Any:
    """A trace per call (decorator) or one trace (context manager); no capture by default.

    Example:
        >>> with rollout.trace("support_agent") as trace:  # doctest: +SKIP
        ...     trace.message(role="user", content="hi")
    """
    if _is_function(name):
        return trace()(name)
    options = ScopeOptions(
        TRACE,
        name=name,
        trace_options=_trace_options(
            trace_id=trace_id,
            attributes=attributes,
            external_trace_id=external_trace_id,
            user_id=user_id,
            session_id=session_id,
            conversation_id=conversation_id,
            context=context,
        ),
    )
    return ScopeFactory[Trace](options)


@overload
def span(span_type: F, /) -> F: ...
@overload
def span(
    span_type: str = "span",
    *,
    name: str | None = None,
    record_input: bool = False,
    record_output: bool = False,
    attributes: Mapping[str, Any] | None = None,
    model: str | None = None,
    provider: str | None = None,
    model_version: str | None = None,
    reasoning_mode: str | None = None,
    temperature: float | None = None,
    stream: bool | None = None,
) -> ScopeFactory[Span]: ...
def span(
    span_type: Any = "span",
    *,
    name: str | None = None,
    record_input: bool = False,
    record_output: bool = False,
    attributes: Mapping[str, Any] | None = None,
    model: str | None = None,
    provider: str | None = None,
    model_version: str | None = None,
    reasoning_mode: str | None = None,
    temperature: float | None = None,
    stream: bool | None = None,
) -> Any:
    """A typed span (`"retrieval"`, `"llm"`, ...) inside the active trace.

    With no active trace the code runs untraced. Bare `@span` uses type `"span"`.

    Example:
        >>> @rollout.span("retrieval", record_output=True)  # doctest: +SKIP
        ... def search(query: str) -> list[str]: ...
    """
    if _is_function(span_type):
        return span()(span_type)
    options = ScopeOptions(
        str(span_type),
        name=name,
        capture_input=record_input,
        capture_output=record_output,
        attributes=attributes,
        llm_options=_trace_options(
            model=model,
            provider=provider,
            model_version=model_version,
            reasoning_mode=reasoning_mode,
            temperature=temperature,
            stream=stream,
        ),
    )
    return ScopeFactory[Span](options)


@overload
def tool(name: F, /) -> F: ...
@overload
def tool(
    name: str | None = None,
    *,
    record_input: bool = True,
    record_output: bool = True,
    attributes: Mapping[str, Any] | None = None,
    retry_count: int | None = None,
) -> ScopeFactory[ToolCall]: ...
def tool(
    name: Any = None,
    *,
    record_input: bool = True,
    record_output: bool = True,
    attributes: Mapping[str, Any] | None = None,
    retry_count: int | None = None,
) -> Any:
    """A tool call: the arguments as the call, the return value as the result.

    Example:
        >>> @rollout.tool("get_weather")  # doctest: +SKIP
        ... def get_weather(city: str) -> dict: ...
    """
    if _is_function(name):
        return tool()(name)
    options = ScopeOptions(
        TOOL,
        name=name,
        capture_input=record_input,
        capture_output=record_output,
        attributes=attributes,
        retry_count=retry_count,
    )
    return ScopeFactory[ToolCall](options)


@overload
def task(name: F, /) -> F: ...
@overload
def task(
    name: str | None = None,
    *,
    record_input: bool = False,
    record_output: bool = False,
    attributes: Mapping[str, Any] | None = None,
) -> ScopeFactory[Span]: ...
def task(
    name: Any = None,
    *,
    record_input: bool = False,
    record_output: bool = False,
    attributes: Mapping[str, Any] | None = None,
) -> Any:
    """A task span: a multi-step unit of work inside the active trace."""
    if _is_function(name):
        return task()(name)
    options = ScopeOptions(
        TASK,
        name=name,
        capture_input=record_input,
        capture_output=record_output,
        attributes=attributes,
    )
    return ScopeFactory[Span](options)
