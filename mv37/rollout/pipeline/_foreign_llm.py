"""Usage of other instrumentations' LLM spans rolls up into the Rollout trace, once.

A user who does not `wrap()` a client but runs OpenInference, OpenLLMetry or an OTel
contrib GenAI instrumentation gets their LLM spans inside our traces. When one ends, its
usage (`vocabulary/_foreign.py`) is added to the totals of the Rollout trace it started
in, which the trace's span carries as `rollout.usage.*` when it ends. Each call counts
once:

- a span started inside a Rollout `llm` span (a wrapped call with `dedupe_llm_spans`
  off, or `trace.llm(...)`) belongs to that span, whose own usage is the one counted;
- of nested foreign LLM spans (two instrumentors tracing one call), the innermost one
  with usage counts and its ancestors do not;
- a span that ends after its trace ended is not counted (the totals are written).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import Span as SDKSpan

from mv37.rollout.base._diagnostics import internal_error
from mv37.rollout.vocabulary._attributes import LLM
from mv37.rollout.vocabulary._foreign import foreign_usage, is_llm_span
from mv37.rollout.vocabulary._keys import SPAN_KEY, ActiveTrace

MAX_LIVE: Final = 10_000
"""Foreign spans followed at once; the oldest is forgotten past this (spans never ended)."""


class _Entry:
    __slots__ = ("counted_below", "covered", "parent_id", "trace")

    def __init__(self, trace: ActiveTrace, covered: bool, parent_id: int | None) -> None:
        self.trace = trace
        self.covered = covered
        self.parent_id = parent_id
        self.counted_below = False


class ForeignUsage:
    """Adds a foreign LLM span's usage to its Rollout trace's totals when it ends.

    Driven by `ContextStampProcessor` (`_processors.py`), which already runs for every
    span and has found the span's Rollout trace: `follow` at start, `ended` at end.
    """

    def __init__(self) -> None:
        # The spans followed, oldest first (`popitem(last=False)` evicts in O(1) at the
        # bound); empty, as for a process with no other instrumentation, ends cost nothing.
        self.live: OrderedDict[int, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._shut = False

    def follow(self, span: SDKSpan, trace: ActiveTrace, parent_context: Context | None) -> None:
        """Follow `span`, another instrumentation's span started inside `trace`."""
        if self._shut:
            return
        try:
            ours = otel_context.get_value(SPAN_KEY, parent_context)
            covered = getattr(ours, "span_type", None) == LLM
            parent = span.parent
            entry = _Entry(trace, covered, parent.span_id if parent is not None else None)
            with self._lock:
                live = self.live
                live[span.get_span_context().span_id] = entry
                if len(live) > MAX_LIVE:
                    live.popitem(last=False)
        except Exception as exc:
            internal_error("follow foreign span", exc)

    def ended(self, span: ReadableSpan) -> None:
        """Count the usage of a followed foreign LLM span once, in the trace it started in."""
        context = span.context
        if context is None:
            return
        with self._lock:
            entry = self.live.pop(context.span_id, None)
        if entry is None or entry.covered:
            return
        try:
            counted = entry.counted_below
            if not counted:
                attributes = span.attributes or {}
                usage = foreign_usage(attributes) if is_llm_span(attributes) else {}
                if usage:
                    entry.trace._add_usage(usage)
                    counted = True
            if counted and entry.parent_id is not None:
                with self._lock:
                    parent = self.live.get(entry.parent_id)
                if parent is not None:
                    parent.counted_below = True
        except Exception as exc:
            internal_error("foreign span usage", exc)

    def shutdown(self) -> None:
        """Forget the spans followed; follow no more (a replaced client's provider may still
        get spans from instrumentations that kept its tracer)."""
        self._shut = True
        with self._lock:
            self.live.clear()
