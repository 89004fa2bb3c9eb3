"""Console output: print each finished Rollout trace as a tree that fits the terminal.

:class:`ConsoleTreeProcessor` is an OpenTelemetry span processor. When an outermost
Rollout trace (``rollout.span.type`` ``agent`` or ``trace``) starts, it remembers the
trace, buffers its OTel trace's spans as they end, and prints the tree
(:func:`format_tree`, in `_console_tree`) when the Rollout trace's own span ends. A
feedback, signal or identity sent after its trace printed arrives on a carrier span; it
prints as one line naming the trace (:func:`format_late`).

When the console is a client's only destination it is also its exporter for
`stats()`: spans it printed are exported, spans of open trees queued, spans being
written in flight, and spans it will not print dropped (`not_printed`; `shutdown` for
trees still open at shutdown), so started = exported + failed + dropped + queued + in
flight holds as it does with an OTLP destination.

Spans of OTel traces without an open Rollout trace cost a dict lookup or two.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import TextIO

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from mv37.rollout.base._diagnostics import internal_error, log_once
from mv37.rollout.pipeline._console_style import stream_width, use_color
from mv37.rollout.pipeline._console_text import format_duration
from mv37.rollout.pipeline._console_tree import (
    TRACE_SPAN_TYPES,
    format_late,
    format_tree,
    trace_label,
)
from mv37.rollout.pipeline._processors import in_rollout_trace
from mv37.rollout.pipeline._stats import Counters
from mv37.rollout.semconv import ROLLOUT_SPAN_TYPE

__all__ = ["ConsoleTreeProcessor", "format_duration", "format_late", "format_tree"]

DEFAULT_MAX_SPANS_PER_TRACE = 10_000
"""Spans buffered per trace before the rest are only counted."""

DEFAULT_MAX_OPEN_TRACES = 1_000
"""Rollout traces tracked at once; further ones are not printed."""

PRINTED_TRACES_KEPT = 1_024
"""Names of printed traces remembered for late feedback lines."""

LATE_SPAN_TYPES = frozenset({"feedback", "signal", "identify"})
"""`rollout.span.type` of the carrier spans of late feedback, signals and identities."""


class _TraceBuffer:
    """Spans collected for one open printing root."""

    __slots__ = ("counted", "dropped", "root_span_id", "spans")

    def __init__(self, root_span_id: int) -> None:
        self.root_span_id = root_span_id
        self.spans: list[ReadableSpan] = []
        self.dropped = 0
        self.counted = 0  # of `spans`, those counted as started (in `stats()`)


class ConsoleTreeProcessor(SpanProcessor):
    """Span processor that prints each finished Rollout trace as a tree.

    Args:
        stream: Where to print; defaults to ``sys.stderr`` looked up at print time.
        color: Force ANSI colours on or off; by default on when ``FORCE_COLOR`` is set,
            or when the stream is a terminal and ``NO_COLOR`` is unset.
        width: Cells a line may take; by default the stream's terminal width, else
            ``COLUMNS``, else 100 (looked up at each print).
        max_spans_per_trace: Spans kept per trace; further ones are counted and
            reported as "… N more spans not shown".
        max_open_traces: Rollout traces tracked at the same time; traces started
            beyond this are not printed.
        scrub: Applied to every text taken from spans before it is printed (the client
            passes its default scrubbing, so secrets do not land in logs either).
        counters: The client's counters when the console is its only destination: the
            console then counts what it prints, holds and skips (see the module doc).
        count_all: With `counters`: every span was counted as started (our own
            provider), not only spans of Rollout traces.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        color: bool | None = None,
        width: int | None = None,
        max_spans_per_trace: int = DEFAULT_MAX_SPANS_PER_TRACE,
        max_open_traces: int = DEFAULT_MAX_OPEN_TRACES,
        scrub: Callable[[str], str] | None = None,
        counters: Counters | None = None,
        count_all: bool = True,
    ) -> None:
        self._stream = stream
        self._scrub = scrub
        self._color = color
        self._width = width
        self._max_spans = max(0, max_spans_per_trace)
        self._max_open = max(0, max_open_traces)
        self._counters = counters
        self._count_all = count_all
        self._reset()
        if counters is not None:
            counters.watch_queue(self)
            if hasattr(os, "register_at_fork"):
                ref = weakref.ref(self)
                os.register_at_fork(after_in_child=lambda: _reset_in_child(ref))

    def _reset(self) -> None:
        """Nothing open, nothing counted, a fresh lock (also a forked child's start)."""
        self._lock = threading.Lock()
        self._traces: dict[int, _TraceBuffer] = {}
        self._printed: OrderedDict[int, str] = OrderedDict()
        self._members: set[int] = set()  # spans counted as started (when not count_all)
        self._queued = 0
        self._in_flight = 0
        self._shut = False

    # -- stats ---------------------------------------------------------------------------

    def queued(self) -> int:
        """Counted spans held in trees whose root has not ended yet."""
        return self._queued

    def in_flight(self) -> int:
        """Counted spans of trees being written."""
        return self._in_flight

    # -- SpanProcessor -------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Register an outermost Rollout trace span as its trace's printing root."""
        try:
            if self._shut:
                return
            context = span.context
            if context is None:
                return
            if (
                self._counters is not None
                and not self._count_all
                and in_rollout_trace(span, parent_context)
            ):
                self._members.add(context.span_id)
            attributes = span.attributes
            if attributes is None or attributes.get(ROLLOUT_SPAN_TYPE) not in TRACE_SPAN_TYPES:
                return
            trace_id = context.trace_id
            with self._lock:
                if trace_id in self._traces or len(self._traces) >= self._max_open:
                    return
                self._traces[trace_id] = _TraceBuffer(context.span_id)
        except Exception as exc:
            internal_error("console tree (span start)", exc)

    def on_end(self, span: ReadableSpan) -> None:
        """Buffer a span of an open Rollout trace; print the tree when its root ends."""
        try:
            context = span.context
            if context is None:
                return
            counted = self._counters is not None and (
                self._count_all or _take(self._members, context.span_id)
            )
            if self._shut:
                if counted:
                    self._drop("shutdown")
                return
            trace_id = context.trace_id
            if trace_id in self._traces:  # without the lock first: most spans are here
                ended: _TraceBuffer | None = None
                kept = False
                with self._lock:
                    buffer = self._traces.get(trace_id)
                    if buffer is None:
                        pass
                    elif buffer.root_span_id == context.span_id:
                        del self._traces[trace_id]
                        self._queued -= buffer.counted
                        self._in_flight += buffer.counted + counted
                        ended = buffer
                    elif len(buffer.spans) < self._max_spans:
                        buffer.spans.append(span)
                        kept = True
                        if counted:
                            buffer.counted += 1
                            self._queued += 1
                    else:
                        buffer.dropped += 1
                if ended is not None:
                    self._print_tree(span, ended, ended.counted + counted)
                    return
                if buffer is not None:
                    if counted and not kept:
                        self._drop("not_printed")
                    return
            attributes = span.attributes
            if attributes is not None and attributes.get(ROLLOUT_SPAN_TYPE) in LATE_SPAN_TYPES:
                self._print_late(span, int(counted))
            elif counted:
                self._drop("not_printed")
        except Exception as exc:
            internal_error("console tree", exc)

    def shutdown(self) -> None:
        """Forget all open traces without printing (counted as dropped at shutdown)."""
        with self._lock:
            self._shut = True
            held = sum(buffer.counted for buffer in self._traces.values())
            self._traces.clear()
            self._queued = 0
        if held:
            self._drop("shutdown", held)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing to flush: trees print as their root ends."""
        return True

    # -- internals -----------------------------------------------------------------------

    def _drop(self, reason: str, count: int = 1) -> None:
        if self._counters is not None:
            self._counters.drop(reason, count)

    def _print_tree(self, root: ReadableSpan, buffer: _TraceBuffer, landing: int) -> None:
        """Format the tree of `buffer` under `root`, write it and count its spans."""
        written = False
        try:
            context = root.context
            if context is not None:
                with self._lock:
                    self._printed[context.trace_id] = trace_label(root)
                    if len(self._printed) > PRINTED_TRACES_KEPT:
                        self._printed.popitem(last=False)
            stream = self._stream if self._stream is not None else sys.stderr
            color, width = self._look(stream)
            text = format_tree(
                root,
                buffer.spans,
                dropped=buffer.dropped,
                color=color,
                width=width,
                scrub=self._scrub,
            )
            written = self._write(stream, text)
        finally:
            with self._lock:
                self._in_flight -= landing
            self._land(landing, written)

    def _print_late(self, span: ReadableSpan, landing: int) -> None:
        """One line for a late feedback / signal / identity, naming its trace."""
        context = span.context
        name = None
        if context is not None:
            with self._lock:
                name = self._printed.get(context.trace_id)
        stream = self._stream if self._stream is not None else sys.stderr
        color, width = self._look(stream)
        text = format_late(span, name, color=color, width=width, scrub=self._scrub)
        self._land(landing, self._write(stream, text))

    def _look(self, stream: TextIO | None) -> tuple[bool, int]:
        """Colour and width for `stream` (unless given at construction)."""
        if stream is None:
            return False, 100
        color = self._color if self._color is not None else use_color(stream)
        width = self._width if self._width is not None else stream_width(stream)
        return color, width

    def _land(self, count: int, written: bool) -> None:
        if self._counters is None or not count:
            return
        if written:
            self._counters.add_exported(count)
        else:
            self._counters.add_failed(count)

    @staticmethod
    def _write(stream: TextIO | None, text: str) -> bool:
        """Write `text` and a newline; False (and a warning, once) when that fails."""
        if stream is None:
            return False
        try:
            try:
                stream.write(text + "\n")
            except UnicodeEncodeError:  # a stream that cannot take "│", "▸" or "…"
                encoding = getattr(stream, "encoding", None) or "ascii"
                stream.write((text + "\n").encode(encoding, "replace").decode(encoding))
            stream.flush()
            return True
        except Exception as exc:
            log_once(
                "console-write",
                logging.WARNING,
                "mv37.rollout: the console tree could not be written (%s: %s); its spans are "
                "counted in stats().spans_failed. Pass console=False to turn it off",
                type(exc).__name__,
                exc,
            )
            return False


def _take(members: set[int], span_id: int) -> bool:
    """Whether `span_id` was in `members` (removing it)."""
    if span_id in members:
        members.discard(span_id)
        return True
    return False


def _reset_in_child(ref: weakref.ref[ConsoleTreeProcessor]) -> None:
    """A forked child holds none of its parent's open trees (its counters restart too)."""
    processor = ref()
    if processor is not None:
        processor._reset()
