"""One usage-carrying span per wrapped LLM call (`dedupe_llm_spans`, on by default).

While a wrapped call runs, `attach_call` makes our `llm` span current in a context that
also:

- sets OTel's instrumentation suppression key (the only one OpenInference's
  instrumentors check) and OpenLLMetry's LLM-only key, so those instrumentors make no
  LLM span for the call;
- remembers the values those keys had before (`_Call.saved`). `wrap()` hooks the
  wrapped client's HTTP client (`hook_client`): around its `send` those values are put
  back, so HTTP client spans (httpx/httpx2/requests instrumentation) still appear, as
  children of our span;
- marks the call for the provider SDK's own tracer: for an Anthropic client whose native
  tracing is on, `hook_client` gives the wrapped client a tracer that, inside a marked
  call, hands the SDK a stand-in carrying our span's context (`_StandIn`). The SDK then
  exports no span of its own, still sends the trace context to the API as the user
  configured it (`propagation`), naming our span as the parent, and what its span would
  have added (request id, HTTP status, server) lands on ours where ours lacks it.

The OTel contrib GenAI instrumentations (`opentelemetry-instrumentation-openai-v2`)
check no context key; `wrap()` calls past their wrapper instead (`skip_foreign`).
Nothing here changes another client object, a class, a module or the environment.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Final

import wrapt
from opentelemetry import context as otel_context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context
from opentelemetry.trace import NonRecordingSpan
from opentelemetry.trace import Span as OTelSpan

from mv37.rollout.base._diagnostics import internal_error
from mv37.rollout.facade._context import context_with
from mv37.rollout.facade._span import Span
from mv37.rollout.vocabulary._foreign import adoptable

SUPPRESS_KEY_PLAIN: Final = "suppress_instrumentation"
"""The plain-string form of OTel's suppression key (`opentelemetry.instrumentation.utils`)."""
SUPPRESS_LLM_KEY: Final = "suppress_language_model_instrumentation"
"""OpenLLMetry's LLM-only key (`opentelemetry.semconv_ai`)."""
_KEYS: Final[tuple[Any, ...]] = (
    _SUPPRESS_INSTRUMENTATION_KEY,
    SUPPRESS_KEY_PLAIN,
    SUPPRESS_LLM_KEY,
)
_CALL_KEY: Final = otel_context.create_key("mv37-rollout-llm-call")
# Wrappers of these packages are contrib GenAI instrumentations that check no context key.
_CALL_PAST: Final = ("opentelemetry.instrumentation.openai_v2",)


class _Call:
    """What a deduplicated call keeps in its context."""

    __slots__ = ("otel_span", "saved")

    def __init__(self, otel_span: OTelSpan, saved: dict[Any, object]) -> None:
        self.otel_span = otel_span
        self.saved = saved


def attach_call(span: Span, dedupe: bool) -> object | None:
    """Make `span` current for the SDK call (deduplicating when `dedupe`); the token."""
    try:
        ctx = context_with(span.otel_span, span.trace, span)
        if dedupe:
            values = dict(ctx)
            saved = {key: values.get(key) for key in _KEYS}
            values.update(dict.fromkeys(_KEYS, True))
            values[_CALL_KEY] = _Call(span.otel_span, saved)
            ctx = Context(values)
        return otel_context.attach(ctx)
    except Exception as exc:
        internal_error("attach context", exc)
        return None


def _current_call(ctx: Context | None = None) -> _Call | None:
    call = otel_context.get_value(_CALL_KEY, ctx)
    return call if isinstance(call, _Call) else None


def _unsuppressed(call: _Call) -> Context:
    """The current context with the suppression keys as they were before the call."""
    values = dict(otel_context.get_current())
    values.update(call.saved)
    del values[_CALL_KEY]
    return Context(values)


# -- the HTTP client: its spans still appear ----------------------------------------------


def _send_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    call = _current_call()
    if call is None:
        return wrapped(*args, **kwargs)
    token = otel_context.attach(_unsuppressed(call))
    try:
        result = wrapped(*args, **kwargs)
    finally:
        otel_context.detach(token)
    if inspect.isawaitable(result):  # an async client: the request runs when awaited
        return _awaiting(result, call)
    return result


async def _awaiting(awaitable: Any, call: _Call) -> Any:
    token = otel_context.attach(_unsuppressed(call))
    try:
        return await awaitable
    finally:
        otel_context.detach(token)


class _HookedSend(wrapt.FunctionWrapper[..., Any]):
    """An HTTP client's `send`, run unsuppressed inside a deduplicated call."""


def _hook_http(http_client: Any) -> None:
    send = getattr(http_client, "send", None)
    if callable(send) and not isinstance(send, _HookedSend):
        http_client.send = _HookedSend(send, _send_wrapper)


# -- the provider SDK's own tracer (anthropic) ----------------------------------------------


class _StandIn(NonRecordingSpan):
    """What the provider SDK gets for its own span inside a deduplicated call.

    It carries our `llm` span's context (with `propagation` on, the SDK sends it to the
    API) and is never exported. It takes the attributes the SDK records (so the SDK
    computes them, as for a span of its own), and when the SDK ends it, the ones our
    span lacks and may hold (`adoptable`: the request id, the HTTP status, the server;
    never content) go onto ours, if ours is still open.
    """

    def __init__(self, ours: OTelSpan, attributes: Mapping[str, Any] | None) -> None:
        super().__init__(ours.get_span_context())
        self._ours = ours
        self._recorded: dict[str, Any] = dict(attributes or {})
        self._open = True

    def is_recording(self) -> bool:
        """True until the SDK ends it (so the SDK records its response facts)."""
        return self._open

    def set_attribute(self, key: str, value: Any) -> None:
        """Keep `key` for our span."""
        if self._open:
            self._recorded[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Keep `attributes` for our span."""
        if self._open:
            self._recorded.update(attributes)

    def end(self, end_time: int | None = None) -> None:
        """Hand what ours lacks to our span, once; never raises."""
        if not self._open:
            return
        self._open = False
        try:
            ours = self._ours
            if ours.is_recording():
                present = getattr(ours, "attributes", None) or {}
                picked = adoptable(self._recorded, present)
                if picked:
                    ours.set_attributes(picked)
        except Exception as exc:
            internal_error("wrap: take the provider SDK's span attributes", exc)


class _NativeTracer(wrapt.ObjectProxy[Any]):
    """A provider SDK client's tracer that, inside a deduplicated call, starts no span.

    It returns a `_StandIn` for our `llm` span: the SDK exports nothing and, with
    `propagation` on, sends our span's trace context to the API; what its span would
    have added (request id, HTTP status, server) lands on ours.
    """

    def start_span(self, name: str, context: Context | None = None, *args: Any, **kw: Any) -> Any:
        """The SDK's span, or (inside a deduplicated call) a stand-in for ours."""
        call = _current_call(context)
        if call is None:
            return self.__wrapped__.start_span(name, context, *args, **kw)
        attributes = kw.get("attributes", args[1] if len(args) > 1 else None)  # after kind
        return _StandIn(call.otel_span, attributes)


def _hook_native_tracer(client: object) -> None:
    """Anthropic's native tracing: the client resolves its tracer lazily into `_lazy_tracer`."""
    if "_lazy_tracer" not in vars(client) or not hasattr(type(client), "_tracer"):
        return
    tracer = client._tracer  # type: ignore[attr-defined]  # resolves it once, as the SDK does
    if tracer is not None and not isinstance(tracer, _NativeTracer):
        client._lazy_tracer = _NativeTracer(tracer)  # type: ignore[attr-defined]


def hook_client(client: object) -> None:
    """Prepare a client object `wrap()` instruments (and its copies); never raises."""
    try:
        _hook_native_tracer(client)
        http_client = getattr(client, "_client", None)
        if http_client is not None:
            _hook_http(http_client)
    except Exception as exc:
        internal_error("wrap: prepare span deduplication", exc)


# -- contrib GenAI instrumentations: called past ------------------------------------------


def skip_foreign(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` without the wrappers of instrumentations that no context key silences."""
    current = method
    for _ in range(8):  # a bounded walk down the wrapper chain
        wrapper = getattr(current, "_self_wrapper", None)
        inner = getattr(current, "__wrapped__", None)
        if wrapper is None or inner is None:
            break
        module = getattr(wrapper, "__module__", "") or ""
        if module.startswith(_CALL_PAST):
            with contextlib.suppress(Exception):
                binding = getattr(current, "_self_instance", None)
                if binding is not None and not inspect.ismethod(inner):
                    inner = inner.__get__(binding, type(binding))
            return skip_foreign(inner)
        current = inner
    return method
