"""The one engine behind every wrapped provider call: sync or async, streamed or not.

A wrapped method runs `LLMCall.begin(...)` (never raises; `None` means "call straight
through"), then `call.run(method, args, kwargs)`, which makes the span current for the
duration of the SDK call, marks errors, and either finishes the span with the response
or hands a stream to `_streams`, which finishes it when the stream ends. An async SDK
method returns a coroutine; `run` then returns `awaiting(...)`, the only place that
differs for async code. Provider specifics live in adapters (`_openai`, `_anthropic`):
they read requests, responses and stream chunks into the plain `Request` / `Result`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from mv37.rollout import semconv as sc
from mv37.rollout.base._diagnostics import internal_error
from mv37.rollout.base._types import UsageDict
from mv37.rollout.facade._context import current_trace, detach_scope
from mv37.rollout.facade._current import get_client
from mv37.rollout.facade._metrics import note
from mv37.rollout.facade._span import is_error
from mv37.rollout.integrations._dedupe import attach_call, skip_foreign
from mv37.rollout.integrations._streams import wrap_manager, wrap_stream
from mv37.rollout.vocabulary._attributes import LLM, TRACE, Attributes, capture_allowed
from mv37.rollout.vocabulary._fastattrs import set_clean_attributes
from mv37.rollout.vocabulary._fields import given, plain
from mv37.rollout.vocabulary._messages import (
    Message,
    Part,
    attribute_room,
    input_attributes,
    output_attributes,
    output_value,
    tool_attributes,
)
from mv37.rollout.vocabulary._payload import to_json_text

if TYPE_CHECKING:
    from mv37.rollout.facade._client import RolloutCore
    from mv37.rollout.facade._span import Span
    from mv37.rollout.facade._trace import Trace

AZURE_OPENAI: Final = "azure.ai.openai"
# Request arguments that configure the HTTP call, not the model (and may hold secrets).
_TRANSPORT_ARGS: Final = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})


@dataclass(frozen=True)
class Binding:
    """What `wrap()` decided once for one client object."""

    integration: str
    """`openai` or `anthropic`: the adapter family."""
    provider: str
    """`gen_ai.provider.name`: `openai`, `azure.ai.openai` or `anthropic`."""
    version: str | None
    client: RolloutCore | None
    attributes: Mapping[str, Any] | None
    server: tuple[str, int] | None = None
    """`server.address` and `server.port` of the client object's `base_url` (metrics)."""


@dataclass
class Request:
    """What an adapter reads off a call's keyword arguments (cheap; no content)."""

    model: str | None
    stream: bool
    temperature: float | None = None
    reasoning: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    attributes: Attributes = field(default_factory=dict)
    input_value: object = None


@dataclass
class Result:
    """A response (or what a stream delivered), provider-neutral."""

    response_id: str | None = None
    model: str | None = None
    messages: list[Message] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)
    usage: UsageDict = field(default_factory=UsageDict)
    cache_creation_tokens: int | None = None
    error: str | None = None


class Accumulator(Protocol):
    """Reads a stream chunk by chunk; `add` returns the text to record as a chunk."""

    def add(self, item: Any) -> str | None:
        """Take one chunk/event; return its text delta, if it carries one."""
        ...

    def result(self) -> Result:
        """What the stream delivered so far."""
        ...


class Adapter(Protocol):
    """One provider method: how to read its request, response and stream."""

    method: str
    """The method relative to the client, e.g. `chat.completions.create`."""

    def request(self, kwargs: Mapping[str, Any]) -> Request:
        """Model, options and the Rollout input payload of a call."""
        ...

    def input_messages(self, kwargs: Mapping[str, Any]) -> tuple[list[Part], list[Message]]:
        """System instructions and input messages in the GenAI schema."""
        ...

    def tools(self, kwargs: Mapping[str, Any]) -> Sequence[Any] | None:
        """The tool definitions offered to the model, if any."""
        ...

    def result(self, response: Any) -> Result | None:
        """A non-streamed response, read."""
        ...

    def accumulator(self) -> Accumulator:
        """A fresh reader for one stream."""
        ...


def invocation_parameters(kwargs: Mapping[str, Any], content: frozenset[str]) -> dict[str, Any]:
    """Request options for `llm.invocation_parameters`: all but content and transport."""
    return {
        key: plain(value)
        for key, value in kwargs.items()
        if key not in content and key not in _TRANSPORT_ARGS and given(value)
    }


def _global_client() -> RolloutCore:
    return get_client()


class LLMCall:
    """One instrumented provider call: its `llm` span and, with no active trace, its trace."""

    __slots__ = (
        "_ended",
        "adapter",
        "content_out",
        "dedupe",
        "limit",
        "owned_trace",
        "semconv",
        "span",
        "stream",
    )

    def __init__(
        self, adapter: Adapter, span: Span, owned_trace: Trace | None, stream: bool, limit: int
    ) -> None:
        self.adapter = adapter
        self.span = span
        self.owned_trace = owned_trace
        self.stream = stream
        self.limit = limit
        self.content_out = False
        self.semconv: tuple[str, ...] = ()  # the conventions payloads are written under
        self.dedupe = False  # one usage-carrying span per call (`_dedupe.py`)
        self._ended = False

    # -- start --------------------------------------------------------------------------

    @classmethod
    def begin(cls, binding: Binding, adapter: Adapter, kwargs: Mapping[str, Any]) -> LLMCall | None:
        """Start the span for a call; `None` (call straight through) when not recording."""
        try:
            return cls._begin(binding, adapter, kwargs)
        except Exception as exc:
            internal_error(f"{binding.integration} {adapter.method}: start span", exc)
            return None

    @classmethod
    def _begin(
        cls, binding: Binding, adapter: Adapter, kwargs: Mapping[str, Any]
    ) -> LLMCall | None:
        client = binding.client if binding.client is not None else _global_client()
        config = client.config
        if config.disabled:
            return None
        trace = current_trace()
        owned: Trace | None = None
        if trace is None:
            name = f"{binding.integration} {adapter.method}"
            owned = trace = client.start_trace(TRACE, name, attributes=binding.attributes)
        span: Span | None = None
        try:
            request = adapter.request(kwargs)
            span = trace.llm(
                f"{binding.integration}.{adapter.method}",
                model=request.model,
                provider=binding.provider,
                reasoning_mode=request.reasoning,
                temperature=request.temperature,
                stream=request.stream,
                attributes=binding.attributes,
            )
            if binding.server is not None:
                note(
                    span, {sc.SERVER_ADDRESS: binding.server[0], sc.SERVER_PORT: binding.server[1]}
                )
            if not span.is_recording and not span._t0:
                span.end()
                if owned is not None:
                    owned.end()
                return None
            call = cls(adapter, span, owned, request.stream, config.max_payload_chars)
            call.dedupe = config.dedupe_llm_spans
            if span.is_recording:  # else sampled out: followed for its metrics only
                call.content_out = capture_allowed(config, "output", LLM)
                call.semconv = config.semconv
                content_in = capture_allowed(config, "input", LLM)
                call._record_request(binding, request, kwargs, content_in)
            return call
        except BaseException:
            if span is not None:
                span.end()
            if owned is not None:
                owned.end()
            raise

    def _record_request(
        self, binding: Binding, request: Request, kwargs: Mapping[str, Any], content: bool
    ) -> None:
        otel = self.span.otel_span
        attrs: Attributes = {
            sc.ROLLOUT_INTEGRATION_NAME: binding.integration,
            sc.ROLLOUT_INTEGRATION_METHOD: self.adapter.method,
            **request.attributes,
        }
        if binding.version:
            attrs[sc.ROLLOUT_INTEGRATION_VERSION] = binding.version
        if binding.provider == AZURE_OPENAI:
            attrs[sc.LLM_PROVIDER] = "azure"  # OpenInference's name for Azure OpenAI
        if request.params:
            attrs[sc.LLM_INVOCATION_PARAMETERS] = to_json_text(request.params)
        if content:
            system, messages = self.adapter.input_messages(kwargs)
            room = attribute_room(otel) - len(attrs)
            attrs.update(input_attributes(system, messages, self.limit, room, self.semconv))
            tools = self.adapter.tools(kwargs)
            if tools:
                attrs.update(tool_attributes(tools, self.limit, room - len(attrs), self.semconv))
        set_clean_attributes(otel, attrs)
        if content and request.input_value is not None:
            self.span.record_input(request.input_value)

    # -- the call -----------------------------------------------------------------------

    def run(self, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """Call the SDK with this call's span current; the result, unchanged or proxied."""
        token = self._attach()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self.fail(exc)
            raise
        finally:
            self._detach(token)
        if inspect.isawaitable(result):
            return self.awaiting(result)
        return self.succeed(result)

    async def awaiting(self, awaitable: Awaitable[Any]) -> Any:
        """`run` for async SDK methods: the request happens when the coroutine is awaited."""
        token = self._attach()
        try:
            result = await awaitable
        except BaseException as exc:
            self.fail(exc)
            raise
        finally:
            self._detach(token)
        return self.succeed(result, is_async=True)

    def succeed(self, result: Any, *, is_async: bool = False) -> Any:
        """Finish with a response, or return a proxy that finishes when the stream ends."""
        try:
            if self.stream:
                proxy = wrap_stream(result, self, is_async=is_async)
                if proxy is not None:
                    return proxy
            self.finish(self.adapter.result(result))
        except Exception as exc:
            internal_error(f"{self.adapter.method}: read response", exc)
            self.finish(None)
        return result

    def fail(self, exc: BaseException) -> None:
        """The SDK raised: end the span (ERROR for exceptions) before it propagates."""
        self.finish(None, error=exc)

    def _attach(self) -> object:
        return attach_call(self.span, self.dedupe)

    def _detach(self, token: object) -> None:
        detach_scope(token)

    # -- end ----------------------------------------------------------------------------

    def finish(
        self,
        result: Result | None,
        *,
        error: BaseException | None = None,
        stream_end: str | None = None,
    ) -> None:
        """Record the response (or what was read) and end the span, once."""
        if self._ended:
            return
        self._ended = True
        span = self.span
        output: object = None
        failure: BaseException | str | None = error if is_error(error) else None
        try:
            attrs: Attributes = {}
            if stream_end is not None:
                attrs[sc.ROLLOUT_LLM_STREAM_END_REASON] = stream_end
            if result is not None:
                if result.usage:
                    span.set_usage(**result.usage)
                attrs.update(_result_attributes(result))
                note(span, attrs)  # the response model, for the metrics
                if result.error and failure is None:
                    failure = result.error
                if self.content_out and result.messages:
                    room = attribute_room(span.otel_span) - len(attrs)
                    attrs.update(output_attributes(result.messages, self.limit, room, self.semconv))
                    output = output_value(result.messages)
            set_clean_attributes(span.otel_span, attrs)
        except Exception as exc:
            internal_error(f"{self.adapter.method}: record response", exc)
        span.end(output=output, error=failure)
        if self.owned_trace is not None:
            self.owned_trace.end(error=failure)


def _result_attributes(result: Result) -> Attributes:
    attrs: Attributes = {}
    if result.response_id:
        attrs[sc.ROLLOUT_LLM_RESPONSE_ID] = attrs[sc.GEN_AI_RESPONSE_ID] = result.response_id
    if result.model:
        attrs[sc.ROLLOUT_LLM_MODEL_VERSION] = result.model
        attrs[sc.GEN_AI_RESPONSE_MODEL] = attrs[sc.LLM_RESPONSE_MODEL_NAME] = result.model
    if result.finish_reasons:
        reasons = tuple(result.finish_reasons)
        attrs[sc.ROLLOUT_LLM_FINISH_REASONS] = attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    if result.cache_creation_tokens is not None:
        tokens = result.cache_creation_tokens
        attrs[sc.ROLLOUT_USAGE_CACHE_CREATION_TOKENS] = tokens
        attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = tokens
        attrs[sc.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE] = tokens
    return attrs


def method_wrapper(
    binding: Binding, adapter: Adapter
) -> Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]:
    """The `wrapt` wrapper for a provider method (sync and async alike)."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = LLMCall.begin(binding, adapter, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        return call.run(skip_foreign(wrapped) if call.dedupe else wrapped, args, kwargs)

    return wrapper


def manager_wrapper(
    binding: Binding, adapter: Adapter
) -> Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]:
    """The `wrapt` wrapper for a method returning a stream manager (`messages.stream`).

    The SDK only builds the manager here; the request happens when its `with` block is
    entered, so that is where the call (and its span) starts.
    """

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        manager = wrapped(*args, **kwargs)
        try:
            return wrap_manager(manager, functools.partial(LLMCall.begin, binding, adapter, kwargs))
        except Exception as exc:
            internal_error(f"{binding.integration} {adapter.method}: wrap manager", exc)
            return manager

    return wrapper
