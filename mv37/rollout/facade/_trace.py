"""`Trace`: the span that opens a Rollout trace scope, and the factory of its children."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, set_span_in_context
from opentelemetry.trace import Span as OTelSpan

from mv37.rollout import semconv as sc
from mv37.rollout.base._diagnostics import internal_error
from mv37.rollout.facade._feedback import send_identity, send_outcome
from mv37.rollout.facade._span import Span, ToolCall, _Scope
from mv37.rollout.vocabulary import _events
from mv37.rollout.vocabulary._attributes import (
    LLM,
    SUMMED_USAGE_FIELDS,
    TOOL,
    Attributes,
    SpanPlan,
    context_attributes,
    llm_attributes,
    plan_span,
    type_attributes,
    usage_attributes,
    user_attributes,
)
from mv37.rollout.vocabulary._fastattrs import set_clean_attributes
from mv37.rollout.vocabulary._ids import force_span_id, parse_span_id, reset_forced_span_id
from mv37.rollout.vocabulary._keys import TRACE_KEY
from mv37.rollout.vocabulary._payload_mirrors import payload_attributes

if TYPE_CHECKING:
    from mv37.rollout.facade._client import RolloutCore

S = TypeVar("S", bound=Span)


_LOCK = threading.Lock()
"""Guards every trace's message counter and usage totals: a few additions at a time,
rare next to spans, so one lock serves all (a lock per trace cost every trace)."""


class Trace(_Scope):
    """One Rollout trace: an OTel span that opens a trace scope.

    A context manager (sync and async) that ends the span on exit and sends the trace's
    spans on their way without waiting on the network; with `agent_flush="wait"` the
    end of a root trace waits for their delivery (bounded by `shutdown_timeout`).

    Example:
        >>> with rollout.trace("support_agent", user_id="u-1") as trace:  # doctest: +SKIP
        ...     trace.message(role="user", content="Where is my order?")
        ...     with trace.span("retrieval", name="orders") as span:
        ...         span.record_input({"query": "orders"})
    """

    __slots__ = (
        "__weakref__",
        "_context_attrs",
        "_external_id",
        "_messages",
        "_name",
        "_parent",
        "_usage",
    )

    def __init__(
        self,
        otel_span: OTelSpan,
        client: RolloutCore,
        span_type: str,
        name: str,
        *,
        external_trace_id: str | None,
        context_attrs: Attributes,
        parent: Trace | None,
    ) -> None:
        super().__init__(otel_span, client, span_type)
        self._name = name
        self._external_id = external_trace_id
        self._context_attrs = context_attrs
        self._parent = parent
        self._usage: dict[str, int | float] | None = None  # made at the first usage
        self._messages = 0

    @property
    def name(self) -> str:
        """The trace's name."""
        return self._name

    @property
    def external_trace_id(self) -> str | None:
        """The caller-supplied id of this trace in another system, if any."""
        return self._external_id

    @property
    def context_attributes(self) -> Attributes:
        """User, session, conversation and agent attributes copied onto every span."""
        return self._context_attrs

    # -- children ---------------------------------------------------------------------

    def _parent_context(self) -> Context:
        current = otel_context.get_current()
        if otel_context.get_value(TRACE_KEY, current) is self:
            return current
        return set_span_in_context(self._otel)

    def start_child(
        self,
        cls: type[S],
        plan: SpanPlan,
        extra: Attributes | None = None,
        *,
        span_id: str | int | None = None,
    ) -> S:
        """Start a child span of this trace (under the current span when it is ours)."""
        client = self._client
        context = self._otel.get_span_context()
        if client.config.disabled or not context.is_valid:
            # Disabled, or a placeholder trace (no active trace): children record nothing.
            return cls(INVALID_SPAN, client, plan.span_type, self)
        if not self._recording and not context.trace_flags.sampled:
            # A sampled-out trace: the whole trace is dropped, children cost nothing
            # (but for their metrics, which read the plan's attributes).
            dropped = cls(NonRecordingSpan(context), client, plan.span_type, self)
            dropped._facts = plan.attrs
            return dropped
        token = None
        try:
            if span_id is not None:
                token = force_span_id(parse_span_id(span_id))
            attrs = plan.attrs
            if self._context_attrs or extra:
                attrs = (
                    {**self._context_attrs, **attrs, **extra}
                    if extra
                    else {
                        **self._context_attrs,
                        **attrs,
                    }
                )
            otel_span = client.tracer.start_span(
                plan.otel_name,
                context=self._parent_context(),
                kind=plan.kind,
                attributes=None if client.lean_start else plan.start,
            )
            set_clean_attributes(otel_span, attrs)
        except Exception as exc:
            internal_error("start span", exc)
            otel_span = INVALID_SPAN
        finally:
            if token is not None:
                reset_forced_span_id(token)
        child = cls(otel_span, client, plan.span_type, self)
        child._facts = plan.attrs
        return child

    def span(
        self,
        span_type: str = "span",
        *,
        name: str | None = None,
        span_id: str | int | None = None,
        attributes: Mapping[str, Any] | None = None,
        model: str | None = None,
        provider: str | None = None,
        model_version: str | None = None,
        reasoning_mode: str | None = None,
        temperature: float | None = None,
        stream: bool | None = None,
    ) -> Span:
        """A typed child span (`"retrieval"`, `"llm"`, `"task"`, ...); use it with `with`."""
        name = name or span_type
        attrs = type_attributes(span_type, name)
        try:
            attrs.update(
                llm_attributes(
                    model=model,
                    provider=provider,
                    model_version=model_version,
                    reasoning_mode=reasoning_mode,
                    temperature=temperature,
                    stream=stream,
                )
            )
            attrs.update(user_attributes(attributes, self._client.config.max_payload_chars))
        except Exception as exc:
            internal_error("span attributes", exc)
        return self.start_child(Span, plan_span(span_type, name, attrs, model), span_id=span_id)

    def llm(
        self,
        name: str = "llm",
        *,
        model: str | None = None,
        provider: str | None = None,
        model_version: str | None = None,
        reasoning_mode: str | None = None,
        temperature: float | None = None,
        stream: bool | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Span:
        """Shorthand for an `"llm"` span (named `chat {model}` in OTel)."""
        return self.span(
            LLM,
            name=name,
            attributes=attributes,
            model=model,
            provider=provider,
            model_version=model_version,
            reasoning_mode=reasoning_mode,
            temperature=temperature,
            stream=stream,
        )

    def tool(
        self,
        name: str,
        *,
        tool_call_id: str | None = None,
        arguments: object = None,
        retry_count: int | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> ToolCall:
        """A tool call; `tool_call_id` links it to the assistant message that asked for it."""
        limit = self._client.config.max_payload_chars
        attrs = type_attributes(TOOL, name)
        try:
            if tool_call_id:
                attrs[sc.ROLLOUT_TOOL_CALL_ID] = attrs[sc.GEN_AI_TOOL_CALL_ID] = str(tool_call_id)
                attrs[sc.TOOL_ID] = str(tool_call_id)
            if retry_count is not None:
                attrs[sc.ROLLOUT_TOOL_RETRY_COUNT] = int(retry_count)
            if arguments is not None and self._recording:
                attrs.update(payload_attributes(self._client.config, "input", arguments, TOOL))
            attrs.update(user_attributes(attributes, limit))
        except Exception as exc:
            internal_error("tool attributes", exc)
        return self.start_child(ToolCall, plan_span(TOOL, name, attrs))

    # -- events -----------------------------------------------------------------------

    def message(
        self,
        *,
        role: str,
        content: object,
        content_type: str | None = None,
        tool_call_id: str | None = None,
        is_internal: bool = False,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """A conversation message (user, assistant, system, tool) on the trace.

        With message content off (`capture_content=False`, or
        `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=false`) the event keeps its
        role and index but not the content.
        """
        if not self._recording:
            return
        try:
            with _LOCK:
                index = self._messages
                self._messages += 1
            config = self._client.config
            _events.message(
                self._otel,
                role=role,
                content=content,
                index=index,
                limit=config.max_payload_chars,
                content_type=content_type,
                tool_call_id=tool_call_id,
                is_internal=is_internal,
                attributes=attributes,
                with_content=config.content_enabled,
            )
        except Exception as exc:
            internal_error("message", exc)

    def feedback(
        self, name: str, value: object, *, attributes: Mapping[str, Any] | None = None
    ) -> None:
        """Explicit user feedback (thumbs, csat, ...): bool, number, string or dict.

        After the trace ended it still lands in this OTel trace, on a carrier span.
        """
        self._outcome("feedback", name, value, attributes)

    def signal(
        self, name: str, value: object, *, attributes: Mapping[str, Any] | None = None
    ) -> None:
        """An implicit outcome (order placed, escalated, ...): bool, number, string or dict.

        After the trace ended it still lands in this OTel trace, on a carrier span.
        """
        self._outcome("signal", name, value, attributes)

    def _outcome(
        self, kind: str, name: str, value: object, attributes: Mapping[str, Any] | None
    ) -> None:
        if not self._otel.get_span_context().is_valid:
            return  # a placeholder trace (disabled, no active trace)
        try:
            if self._ended:
                trace_id = self._otel.get_span_context().trace_id
                send_outcome(
                    self._client, kind, name, value, trace_id=trace_id, attributes=attributes
                )
            elif self._recording:
                _events.outcome(
                    self._otel,
                    kind,
                    name,
                    value,
                    limit=self._client.config.max_payload_chars,
                    attributes=attributes,
                )
        except Exception as exc:
            internal_error(kind, exc)

    def identify_user(
        self,
        user_id: str | None = None,
        *,
        traits: Mapping[str, Any] | None = None,
        account_id: str | None = None,
        account_traits: Mapping[str, Any] | None = None,
    ) -> None:
        """Record who the user is; spans started afterwards carry the user id too.

        After the trace ended it still lands in this OTel trace, on a carrier span.
        """
        if not self._otel.get_span_context().is_valid:
            return
        if self._ended:
            try:
                send_identity(
                    self._client,
                    self._otel.get_span_context().trace_id,
                    user_id,
                    traits=traits,
                    account_id=account_id,
                    account_traits=account_traits,
                )
            except Exception as exc:
                internal_error("identify_user", exc)
            return
        if not self._recording:
            return
        try:
            _events.identify(
                self._otel,
                user_id,
                traits=traits,
                account_id=account_id,
                account_traits=account_traits,
            )
            extra = context_attributes(user_id=user_id, account_id=account_id)
            if extra:
                self._context_attrs = {**self._context_attrs, **extra}
                self._set(extra)
        except Exception as exc:
            internal_error("identify_user", exc)

    def set_agent_input(self, value: object) -> None:
        """Record the run's input on the trace's span."""
        self._record_payload("input", value)

    def set_agent_output(self, value: object) -> None:
        """Record the run's output on the trace's span."""
        self._record_payload("output", value)

    # -- lifecycle --------------------------------------------------------------------

    def _add_usage(self, usage: Mapping[str, int | float]) -> None:
        with _LOCK:
            if self._usage is None:
                self._usage = {}
            for name in SUMMED_USAGE_FIELDS:
                value = usage.get(name)
                if value is not None:
                    self._usage[name] = self._usage.get(name, 0) + value

    def _before_end(self) -> None:
        if not self._usage:
            return  # no model call reported usage (checked without the lock: it only grows)
        with _LOCK:
            totals = dict(self._usage)
        if totals:
            self._otel.set_attributes(usage_attributes(totals, mirrors=False))
            if self._parent is not None:
                self._parent._add_usage(totals)

    def end(self, error: BaseException | str | None = None) -> None:
        """End the trace explicitly (when not used as a context manager)."""
        if self._ended:
            return
        if error is not None:
            self._mark_error(error)
        if self._end(None):
            self._client._wait_for_delivery()

    def _end(self, exc: BaseException | None) -> bool:
        """End the trace; True when a wait for delivery is owed.

        Only the call that ended a recording root trace (no enclosing Rollout trace)
        under `agent_flush="wait"` owes one, bounded by `shutdown_timeout`: a nested
        agent's spans leave with its root. Otherwise the exporter is woken: the trace's
        spans leave now, not at the next `flush_interval`.
        """
        ended_now = not self._ended
        super()._end(exc)
        client = self._client
        if ended_now and self._parent is None and self._recording:
            client.traces.ended(self)
        if (
            ended_now
            and self._parent is None
            and self._recording
            and client.config.agent_flush == "wait"
        ):
            return True
        client._kick_flush()
        return False

    def __enter__(self) -> Trace:
        self._attach(self, None)
        return self

    async def __aenter__(self) -> Trace:
        return self.__enter__()


def null_trace(
    client: RolloutCore,
    span_type: str = "trace",
    name: str = "",
    *,
    otel_span: OTelSpan = INVALID_SPAN,
    external_trace_id: str | None = None,
    parent: Trace | None = None,
) -> Trace:
    """A non-recording trace whose methods are no-ops: the one placeholder constructor.

    For no active trace and the kill switch (`INVALID_SPAN`), and for a trace sampled out
    before it started (a non-recording span carrying its trace id).
    """
    return Trace(
        otel_span,
        client,
        span_type,
        name,
        external_trace_id=external_trace_id,
        context_attrs={},
        parent=parent,
    )


def null_span(client: RolloutCore, span_type: str, cls: type[S]) -> S:
    """A non-recording `cls` span of `span_type` in a `null_trace` (no active trace)."""
    trace = null_trace(client)
    return cls(trace.otel_span, client, span_type, trace)
