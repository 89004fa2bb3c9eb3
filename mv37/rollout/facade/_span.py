"""`Span` and `ToolCall`: views of OTel spans with the Rollout vocabulary.

Both are context managers (sync and async). Entering makes the span current in OTel's
context; leaving ends it, marking an error when an exception leaves the block (the
exception itself is re-raised untouched). On a non-recording span (disabled, sampled
out, no provider) every method is a cheap no-op.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from time import perf_counter_ns
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span as OTelSpan
from opentelemetry.trace import Status, StatusCode

from mv37.rollout import semconv as sc
from mv37.rollout.base._diagnostics import internal_error
from mv37.rollout.facade._context import attach_scope, detach_scope
from mv37.rollout.facade._metrics import MEASURED_TYPES, error_type, scope_ended
from mv37.rollout.vocabulary import _events
from mv37.rollout.vocabulary._attributes import (
    capture_allowed,
    clean_usage,
    error_attributes,
    usage_attributes,
)
from mv37.rollout.vocabulary._fastattrs import set_clean_attributes
from mv37.rollout.vocabulary._payload import cap_text
from mv37.rollout.vocabulary._payload_mirrors import payload_attributes

if TYPE_CHECKING:
    from mv37.rollout.facade._client import RolloutCore
    from mv37.rollout.facade._trace import Trace


def is_error(exc: BaseException | None) -> bool:
    """The one place that decides what counts as an error.

    Like OTel's `use_span`: only `Exception` subclasses. `GeneratorExit`,
    `KeyboardInterrupt`, `SystemExit` and `asyncio.CancelledError` end the span
    without marking it failed.
    """
    return isinstance(exc, Exception)


def interruption(exc: BaseException | None) -> str | None:
    """ "cancelled" or "interrupted" when a non-error exception ended the span, else None.

    `asyncio.CancelledError` cancels; `KeyboardInterrupt`, `SystemExit` and other
    `BaseException`s interrupt. `GeneratorExit` (a generator closed early) is neither.
    """
    if exc is None or isinstance(exc, (Exception, GeneratorExit)):
        return None
    return "cancelled" if isinstance(exc, asyncio.CancelledError) else "interrupted"


class _Scope:
    """What traces and spans share: an OTel span, context attach/detach and ending."""

    __slots__ = (
        "_client",
        "_end_status",
        "_ended",
        "_error_type",
        "_otel",
        "_recording",
        "_span_type",
        "_t0",
        "_token",
    )

    def __init__(self, otel_span: OTelSpan, client: RolloutCore, span_type: str) -> None:
        self._otel = otel_span
        self._client = client
        self._span_type = span_type
        self._recording = otel_span.is_recording()
        self._token: object | None = None
        self._ended = False
        self._end_status = "ok"  # or "error", "cancelled", "interrupted"
        # Metrics (`_metrics.py`): what ended the operation, and when it started (0:
        # metrics off, or a type no metric measures). Kept on sampled-out spans too:
        # metrics stay exact.
        self._error_type: str | None = None
        self._t0 = (
            perf_counter_ns() if client._metrics is not None and span_type in MEASURED_TYPES else 0
        )

    @property
    def otel_span(self) -> OTelSpan:
        """The underlying OpenTelemetry span."""
        return self._otel

    @property
    def client(self) -> RolloutCore:
        """The Rollout client this scope records into."""
        return self._client

    @property
    def trace_id(self) -> str:
        """The OTel trace id as 32 lowercase hex digits."""
        return f"{self._otel.get_span_context().trace_id:032x}"

    @property
    def span_id(self) -> str:
        """The OTel span id as 16 lowercase hex digits."""
        return f"{self._otel.get_span_context().span_id:016x}"

    @property
    def span_type(self) -> str:
        """The Rollout span type (agent, trace, llm, tool, task, retrieval, ...)."""
        return self._span_type

    @property
    def ended(self) -> bool:
        """True once the span ended."""
        return self._ended

    @property
    def is_recording(self) -> bool:
        """False when disabled, sampled out or without a tracer provider."""
        return self._recording

    def _set(self, attrs: Mapping[str, Any]) -> None:
        if self._recording and not self._ended:
            set_clean_attributes(self._otel, attrs)

    def _record_payload(self, direction: str, value: object) -> None:
        """Serialise `value` once and set it as the span's input or output.

        Skipped when the client captures no inputs/outputs (`capture_inputs`,
        `capture_outputs`), and for LLM spans when message content is off
        (`capture_content`, `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`).
        """
        if self._recording and capture_allowed(self._client.config, direction, self._span_type):
            config = self._client.config
            self._set(payload_attributes(config, direction, value, self._span_type, self._otel))

    def _attach(self, trace: Trace, span: Span | None) -> None:
        self._token = attach_scope(self._otel, trace, span)

    def _detach(self) -> None:
        token, self._token = self._token, None
        detach_scope(token)

    def _mark_error(self, exc: BaseException | str) -> None:
        if self._ended:
            return
        self._error_type = error_type(exc)
        if not self._recording:
            return
        self._end_status = "error"
        try:
            if isinstance(exc, BaseException):
                attrs = error_attributes(exc, self._client.config.max_payload_chars)
                self._otel.set_attributes(attrs)
                description = f"{type(exc).__qualname__}: {attrs[sc.ROLLOUT_ERROR_MESSAGE]!s}"
                self._otel.set_status(Status(StatusCode.ERROR, description))
                _events.exception(self._otel, exc)
            else:
                message = cap_text(str(exc), 2048)[0]
                self._otel.set_attributes(
                    {sc.ERROR_TYPE: "error", sc.ROLLOUT_ERROR_MESSAGE: message}
                )
                self._otel.set_status(Status(StatusCode.ERROR, message))
        except Exception as inner:
            internal_error("record error", inner)

    def _mark_interrupted(self, exc: BaseException) -> None:
        """What ended the span when it was not an error: `error.type` and the event.

        The status stays unset (as OTel's `use_span` leaves it): a cancelled request or
        a Ctrl-C is not a failure of the code inside.
        """
        status = interruption(exc)
        if status is None or self._ended:
            return
        self._error_type = error_type(exc)
        if not self._recording:
            return
        self._end_status = status
        self._otel.set_attribute(sc.ERROR_TYPE, type(exc).__qualname__)
        _events.exception(self._otel, exc)

    def _before_end(self) -> None:
        """Subclass hook: last attributes before the OTel span ends."""

    def _end(self, exc: BaseException | None) -> bool:
        """Leave the scope and end the span; True when a wait for delivery is owed.

        Only a root trace under `agent_flush="wait"` owes one (`Trace._end`); the caller
        waits, in a worker thread when it is async (`__aexit__`).
        """
        self._detach()
        self._finish(exc)
        return False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._end(exc):
            self._client._wait_for_delivery()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._end(exc):
            # The wait blocks on the exporter: off the event loop, so other tasks run.
            await asyncio.to_thread(self._client._wait_for_delivery)

    def _finish(self, exc: BaseException | None = None) -> None:
        if self._ended:
            return
        try:
            if exc is not None:
                if is_error(exc):
                    self._mark_error(exc)
                else:
                    self._mark_interrupted(exc)
            if self._recording:
                self._before_end()
        except Exception as inner:
            internal_error("end span", inner)
        finally:
            self._ended = True
            try:
                self._otel.end()
            except Exception as inner:
                internal_error("end span", inner)
            if self._t0:
                scope_ended(self)


class _Stream:
    """Streaming state, created on the first chunk only."""

    __slots__ = ("chunks", "first_chunk_ns", "preview")

    def __init__(self, first_chunk_ns: int) -> None:
        self.first_chunk_ns = first_chunk_ns
        self.chunks = 0
        self.preview = ""


class Span(_Scope):
    """A typed span inside a trace: `llm`, `retrieval`, `task`, a custom type, ...

    Example:
        >>> with rollout.trace("support_agent") as trace:  # doctest: +SKIP
        ...     with trace.llm("answer", model="gpt-4o", provider="openai") as llm:
        ...         llm.record_input([{"role": "user", "content": "hi"}])
        ...         llm.set_usage(input_tokens=12, output_tokens=3)
    """

    __slots__ = ("_facts", "_stream", "_trace", "_usage")

    def __init__(
        self, otel_span: OTelSpan, client: RolloutCore, span_type: str, trace: Trace
    ) -> None:
        super().__init__(otel_span, client, span_type)
        self._trace = trace
        self._usage: dict[str, int | float] | None = None
        self._stream: _Stream | None = None
        # Its start attributes (tool name, model, provider), read by its metrics.
        self._facts: Mapping[str, Any] | None = None

    @property
    def trace(self) -> Trace:
        """The trace this span belongs to."""
        return self._trace

    def record_input(self, value: object) -> None:
        """Record the span's input: any JSON-able value, models and dataclasses included."""
        self._record_payload("input", value)

    def record_output(self, value: object) -> None:
        """Record the span's output (any value; serialised once, capped, never raises)."""
        self._record_payload("output", value)

    def set_usage(
        self,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        total_tokens: int | None = None,
        context_window_tokens: int | None = None,
        context_used_tokens: int | None = None,
        context_utilization: float | None = None,
        cost_usd: float | None = None,
    ) -> None:
        """Token counts and cost; the enclosing trace sums them when it ends.

        `input_tokens` includes cached tokens and `output_tokens` includes reasoning
        tokens (the OTel GenAI convention). Missing fields stay absent.
        """
        if not self._recording and not self._t0:  # metrics count it when sampled out
            return
        try:
            usage = clean_usage(
                {
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "cached_tokens": cached_tokens,
                    "reasoning_tokens": reasoning_tokens,
                    "total_tokens": total_tokens,
                    "context_window_tokens": context_window_tokens,
                    "context_used_tokens": context_used_tokens,
                    "context_utilization": context_utilization,
                    "cost_usd": cost_usd,
                }
            )
            self._usage = usage
            self._set(usage_attributes(usage))
        except Exception as exc:
            internal_error("set_usage", exc)

    def record_chunk(self, text: str) -> None:
        """One streamed chunk: keeps a rolling preview, every chunk only when configured.

        With message content off (`capture_content=False`), only the count and the time to
        the first chunk are kept.
        """
        if not self._recording or self._ended:
            return
        try:
            config = self._client.config
            stream = self._stream
            if stream is None:
                stream = self._stream = _Stream(time.time_ns())
            content = config.content_enabled
            text = text if isinstance(text, str) else str(text)
            keep = config.stream_preview_chars if content else 0
            stream.preview = (stream.preview + text)[-keep:] if keep > 0 else ""
            if config.capture_stream_chunks and content:
                _events.chunk(self._otel, text, stream.chunks, config.max_payload_chars)
            stream.chunks += 1
        except Exception as exc:
            internal_error("record_chunk", exc)

    def end(
        self,
        output: object = None,
        *,
        usage: Mapping[str, Any] | None = None,
        status: str = "ok",
        error: BaseException | str | None = None,
    ) -> None:
        """End the span explicitly (streaming): optional output, usage and error.

        Args:
            output: Recorded as the span's output when not `None`.
            usage: Keyword arguments for `set_usage`.
            status: "ok" or "error".
            error: An exception or a message; marks the span as failed.
        """
        if self._ended:
            return
        if output is not None:
            self.record_output(output)
        if usage:
            try:
                self.set_usage(**usage)
            except TypeError as exc:
                internal_error("end(usage=...)", exc)
        if error is not None or status == "error":
            self._mark_error(error if error is not None else "error")
        self._detach()
        self._finish()

    def _before_end(self) -> None:
        stream = self._stream
        if stream is not None:
            attrs: dict[str, Any] = {
                sc.ROLLOUT_LLM_STREAM_CHUNK_COUNT: stream.chunks,
                sc.ROLLOUT_LLM_STREAM_PREVIEW: stream.preview,
            }
            started = getattr(self._otel, "start_time", None)
            if isinstance(started, int):
                ttfc = max(0, stream.first_chunk_ns - started) / 1e9
                attrs[sc.ROLLOUT_LLM_TIME_TO_FIRST_CHUNK] = ttfc
                attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc
            set_clean_attributes(self._otel, attrs)
        if self._usage:
            self._trace._add_usage(self._usage)

    def __enter__(self) -> Span:
        self._attach(self._trace, self)
        return self

    async def __aenter__(self) -> Span:
        return self.__enter__()


class ToolCall(Span):
    """One tool call: its arguments as the call and its return value as the result.

    Example:
        >>> with trace.tool("get_weather", arguments={"city": "Paris"}) as call:  # doctest: +SKIP
        ...     call.record_output({"temp": 21})
    """

    __slots__ = ()

    def _before_end(self) -> None:
        set_clean_attributes(self._otel, {sc.ROLLOUT_TOOL_STATUS: self._end_status})
        super()._before_end()

    def __enter__(self) -> ToolCall:
        super().__enter__()
        return self

    async def __aenter__(self) -> ToolCall:
        return self.__enter__()
