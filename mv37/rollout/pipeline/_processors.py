"""The small span processors a client adds to a provider, beside its export processors.

`ContextStampProcessor` counts started spans and stamps trace context on foreign spans,
`SyncProcessor` is `sync_mode`'s export processor (the queue's twin), `RolloutSpansOnly`
narrows an export processor to Rollout traces on someone else's provider, and
`ProcessorHub` is the one processor we ever add to such a provider.
Whether a span belongs to a Rollout trace is decided once, by `in_rollout_trace`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SDKSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from mv37.rollout.base._diagnostics import internal_error
from mv37.rollout.pipeline._foreign_llm import ForeignUsage
from mv37.rollout.pipeline._queue import ExportProcessor, estimate_size
from mv37.rollout.pipeline._stats import Counters, InFlight
from mv37.rollout.vocabulary._keys import trace_in

SCOPE = "mv37.rollout"
"""The instrumentation scope of every span the Rollout API starts."""


def _from_our_scope(span: SDKSpan) -> bool:
    scope = span.instrumentation_scope
    return scope is not None and scope.name == SCOPE


def in_rollout_trace(span: SDKSpan, parent_context: Context | None) -> bool:
    """Whether `span` belongs to a Rollout trace: it comes from our scope, or it starts
    while a Rollout trace is active (another instrumentation's span inside one)."""
    return _from_our_scope(span) or trace_in(parent_context) is not None


class ContextStampProcessor(SpanProcessor):
    """Counts the spans we will export and copies trace context onto foreign ones.

    Our own spans get the trace-level attributes (user, session, agent, ...) when they
    start; this covers spans of other instrumentations started inside a Rollout trace,
    so filtering by user or session in a backend finds them too. On a provider we own
    every span is exported, so every span counts as started; on someone else's, only
    spans of Rollout traces do.
    """

    def __init__(
        self,
        counters: Counters,
        *,
        count_all: bool,
        foreign: ForeignUsage | None = None,
    ) -> None:
        self._counters = counters
        self._count_all = count_all
        # Foreign LLM spans' usage (`_foreign_llm.py`), followed from here: one processor
        # call per span start and end instead of two (this runs for every span).
        self._foreign = foreign

    def on_start(self, span: SDKSpan, parent_context: Context | None = None) -> None:
        """Count the span; stamp the active trace's context attributes on a foreign one."""
        try:
            if self._count_all or in_rollout_trace(span, parent_context):
                self._counters.add_started()
            if _from_our_scope(span):
                return  # stamped by the facade as it started
            trace = trace_in(parent_context)
            if trace is None:
                return
            if trace.context_attributes:
                span.set_attributes(trace.context_attributes)
        except Exception as exc:
            internal_error("stamp foreign span", exc)
            return
        if self._foreign is not None:
            self._foreign.follow(span, trace, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """A followed foreign LLM span ended: count its usage (nothing for ours)."""
        foreign = self._foreign
        if foreign is not None and foreign.live:
            foreign.ended(span)

    def shutdown(self) -> None:
        """Follow no more foreign spans."""
        if self._foreign is not None:
            self._foreign.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing buffered."""
        return True


class SyncProcessor(ExportProcessor):
    """`sync_mode`: hand each span to `exporter` (the chain) in the calling thread as it ends.

    A span larger than `max_bytes` (the smaller of `max_batch_bytes` and
    `max_queue_bytes`, as for the queue) is dropped and counted `oversize`; one that ends
    after `shutdown` is counted `shutdown`. Not the SDK's `SimpleSpanProcessor`: it
    discards the export's result, which `force_flush` reports here (False once after a
    failed export), and logs a warning for each span after shutdown instead of counting
    it. The suppression it sets is the chain's last link.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        counters: Counters,
        flight: InFlight,
        *,
        max_bytes: int | None = None,
    ) -> None:
        self._max_bytes = max_bytes
        self._shut = False
        self._failed = False  # an export failed since the last force_flush
        super().__init__(exporter, counters, flight)

    def on_end(self, span: ReadableSpan) -> None:
        """Export `span` now."""
        if self._shut:
            self._counters.drop("shutdown")
            return
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        if self._max_bytes is not None and estimate_size(span) > self._max_bytes:
            self._counters.drop("oversize")
            return
        self._flight.take(1)
        if self._exporter.export((span,)) is not SpanExportResult.SUCCESS:
            self._failed = True

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop exporting and release the exporter."""
        if not self._shut:
            self._shut = True
            self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is queued: False once if an export failed since the last flush."""
        failed, self._failed = self._failed, False
        return not failed


class RolloutSpansOnly(SpanProcessor):
    """Forwards to `inner` only the spans that belong to Rollout traces.

    Used for our export processors on a provider someone else installed: their other
    spans are theirs to export.
    """

    def __init__(self, inner: SpanProcessor) -> None:
        self._inner = inner
        self._members: set[int] = set()

    def on_start(self, span: SDKSpan, parent_context: Context | None = None) -> None:
        """Remember Rollout spans; let the inner processor see them start."""
        if in_rollout_trace(span, parent_context):
            self._members.add(span.context.span_id)
            self._inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Forward the span when it belongs to a Rollout trace."""
        ctx = span.context
        if ctx is not None and ctx.span_id in self._members:
            self._members.discard(ctx.span_id)
            self._inner.on_end(span)

    def shutdown(self) -> None:
        """Shut the inner processor down."""
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the inner processor."""
        return self._inner.force_flush(timeout_millis)


class ProcessorHub(SpanProcessor):
    """The one processor we add to a provider we do not own, whatever the `init()` count.

    OTel providers cannot remove a processor, so each client swaps its processors in
    here and takes them out at shutdown; re-running `init()` does not pile them up.
    """

    def __init__(self) -> None:
        self._processors: tuple[SpanProcessor, ...] = ()
        self._lock = threading.Lock()

    @classmethod
    def on(cls, provider: TracerProvider) -> ProcessorHub:
        """The hub attached to `provider`, attached now if it has none."""
        with _HUB_LOCK:
            hub = _HUBS.get(provider)
            if hub is None:
                hub = _HUBS[provider] = cls()
                provider.add_span_processor(hub)
            return hub

    def replace(self, old: Sequence[SpanProcessor], new: Sequence[SpanProcessor]) -> None:
        """Take `old` out (if present) and put `new` in."""
        with self._lock:
            kept = [p for p in self._processors if not any(p is o for o in old)]
            self._processors = (*kept, *new)

    def on_start(self, span: SDKSpan, parent_context: Context | None = None) -> None:
        """Forward to the current processors."""
        for processor in self._processors:
            processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Forward to the current processors."""
        for processor in self._processors:
            processor.on_end(span)

    def shutdown(self) -> None:
        """The provider is shutting down: shut the current processors down."""
        with self._lock:
            processors, self._processors = self._processors, ()
        for processor in processors:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the current processors."""
        ok = True
        for processor in self._processors:
            ok = processor.force_flush(timeout_millis) and ok
        return ok


_HUB_LOCK = threading.Lock()
_HUBS: weakref.WeakKeyDictionary[TracerProvider, ProcessorHub] = weakref.WeakKeyDictionary()
