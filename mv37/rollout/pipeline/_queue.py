"""The export queue: a span processor that only queues, bounded by events and bytes.

`QueueProcessor` replaces the SDK's `BatchSpanProcessor` for our exporters because we
need what it does not give: a queue bounded by bytes as well as spans, batches bounded by
bytes, every span it drops counted by reason (`_stats.Counters`), and a forked child that
starts with an empty queue and its own worker (the parent's spans are never sent twice).
The caller's thread only estimates the span's size and appends it; one daemon worker
thread hands each batch to one `SpanExporter`, the chain of `_exporters.py` (privacy,
counting, log quieting, the OTLP exporter), which counts how its export ended.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace import Span as SDKSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from mv37.rollout.base._diagnostics import internal_error, logger
from mv37.rollout.pipeline._stats import Counters, InFlight

_SPAN_OVERHEAD = 160
"""Bytes an encoded span costs beyond its strings: ids, times, kind, status, framing."""
_VALUE_OVERHEAD = 24
WAKE_EVENTS = 128
"""Queued spans that wake the worker (a batch still takes up to `max_batch_events`).

Export early: a span that waits in the queue through two garbage collections is moved
to the oldest generation, and what piles up there sets off full collections, whose cost
grows with the whole heap. Waking at 128 instead of 512 queued spans took the collector's
share of a `@task` call from about 4.0 to 2.7 us; under load batches still grow, as
spans keep arriving while one is exported."""
_is_str = str.__instancecheck__


def _strings_size(values: Any) -> int:
    # All in C (filter/map/len): about half the cost of a Python loop over the values.
    return _VALUE_OVERHEAD * len(values) + sum(map(len, filter(_is_str, values)))


def compact(span: ReadableSpan) -> None:
    """Let a queued span hold no empty event or link list.

    The SDK gives every span a `BoundedList` for each, a 760-byte deque even when empty,
    and a queued span keeps both for as long as it waits: a third of a small span's
    memory. An empty one with nothing dropped becomes `()`, which reads the same
    (`events`, `links`, `dropped_events`, `dropped_links`).
    """
    try:
        events: Any = span._events
        if not events and not getattr(events, "dropped", 0):
            span._events = ()
        links: Any = span._links
        if not links and not getattr(links, "dropped", 0):
            span._links = ()
    except AttributeError:
        pass  # not the SDK's layout: nothing to save


def estimate_size(span: ReadableSpan) -> int:
    """A cheap estimate of a span's encoded size in bytes (its strings plus overheads).

    Sequences count as one value each; our payloads are strings, so they are counted.
    """
    try:  # the SDK's own containers: no copies
        values: Any = span._attributes._dict.values()  # type: ignore[union-attr]
        events: Any = span._events
    except AttributeError:
        values = list((span.attributes or {}).values())
        events = span.events
    size = _SPAN_OVERHEAD + len(span._name) + _strings_size(values)
    if not events:
        return size
    for event in events:
        size += _SPAN_OVERHEAD // 2 + len(event.name)
        if event.attributes:
            size += _strings_size(list(event.attributes.values()))
    return size


def call_in_forked_child(method: Callable[[], None]) -> None:
    """Run the bound `method` in every child forked from now on, while its object lives.

    Held weakly: registering does not keep the object alive (`os.register_at_fork` has no
    way to unregister).
    """
    if not hasattr(os, "register_at_fork"):
        return
    ref = weakref.WeakMethod(method)

    def _child() -> None:
        alive = ref()
        if alive is not None:
            alive()

    os.register_at_fork(after_in_child=_child)


class ExportProcessor(SpanProcessor):
    """What both export processors share: the exporter (the chain) they hand spans to,
    the client's counters, and `flight`, the spans handed over whose export has not
    ended (raised here, lowered by the chain). `stats()` reads `queued()` and
    `in_flight()`; a forked child starts with nothing in flight.
    """

    def __init__(self, exporter: SpanExporter, counters: Counters, flight: InFlight) -> None:
        self._exporter = exporter
        self._counters = counters
        self._flight = flight
        counters.watch_queue(self)
        call_in_forked_child(self._after_fork_in_child)

    def _after_fork_in_child(self) -> None:
        # Only the forking thread lives on in the child: no export of the parent's is in
        # flight here, and a thread of the parent's may have held the lock at the fork.
        self._flight.reset()

    def on_start(self, span: SDKSpan, parent_context: Context | None = None) -> None:
        """Nothing at start."""

    def queued(self) -> int:
        """Spans waiting to be handed to the exporter now."""
        return 0

    def in_flight(self) -> int:
        """Spans handed to the exporter whose export (request and retries) has not ended."""
        return self._flight.count


class QueueProcessor(ExportProcessor):
    """Queues ended spans and hands them in batches to `exporter` from one worker thread.

    Bounded by `max_queue_events` and `max_queue_bytes` (estimated): a span that does not
    fit is dropped and counted, never blocks the caller. A batch holds at most
    `max_batch_events` spans and `max_batch_bytes`; one span larger than that is dropped
    (`oversize`). The worker sends what is queued when `WAKE_EVENTS` spans (or a batch's
    bytes) wait, every `flush_interval` seconds, on `kick` and `force_flush`, and at
    shutdown. Spans taken off the queue count in `flight` until
    the exporter (the chain) lands them.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        counters: Counters,
        flight: InFlight,
        *,
        max_queue_events: int = 65_536,
        max_queue_bytes: int = 32 * 1024 * 1024,
        max_batch_events: int = 512,
        max_batch_bytes: int = 2 * 1024 * 1024,
        flush_interval: float = 2.0,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self._max_events = max_queue_events
        self._max_bytes = max_queue_bytes
        self._batch_events = min(max_batch_events, max_queue_events)
        self._batch_bytes = min(max_batch_bytes, max_queue_bytes)
        self._wake_events = min(self._batch_events, WAKE_EVENTS)
        self._interval = flush_interval
        self._shutdown_timeout = shutdown_timeout
        self._reset()
        super().__init__(exporter, counters, flight)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._queue: deque[tuple[ReadableSpan, int]] = deque()
        self._bytes = 0
        self._enqueued = 0  # sequence number of the last queued span
        self._finished = 0  # sequence number of the last span exported or given up on
        self._last_failed = 0  # sequence number of the last span in a failed export
        self._reported = 0  # failures up to here were already reported by a flush
        self._flushes = 0  # callers waiting in force_flush
        self._kicked = False  # export what is queued now, nobody waits
        self._idle = False  # the worker waits for work (a span that makes a batch wakes it)
        self._stopping = False
        self._shut = False
        self._worker: threading.Thread | None = None

    def _after_fork_in_child(self) -> None:
        # The parent's queue is the parent's to send: start empty, with fresh locks (the
        # worker may have held the old one at fork) and no worker until a span arrives.
        self._reset()
        super()._after_fork_in_child()

    # -- the caller's side --------------------------------------------------------------

    def on_end(self, span: ReadableSpan) -> None:
        """Queue `span` for export, or count why it cannot be."""
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        compact(span)
        size = estimate_size(span)
        if size > self._batch_bytes:
            self._counters.drop("oversize")
            return
        start = False
        with self._lock:
            if self._shut:
                reason = "shutdown"
            elif len(self._queue) >= self._max_events or self._bytes + size > self._max_bytes:
                reason = "queue_full"
            else:
                reason = ""
                self._queue.append((span, size))
                self._bytes += size
                self._enqueued += 1
                if self._worker is None:
                    start = True
                    self._worker = threading.Thread(
                        target=self._run, name="mv37-rollout-export", daemon=True
                    )
                elif self._idle and (
                    len(self._queue) >= self._wake_events or self._bytes >= self._batch_bytes
                ):
                    self._idle = False  # one notify: later spans find the worker awake
                    self._work.notify()
        if reason:
            self._counters.drop(reason)
        elif start:
            self._start_worker()

    def _start_worker(self) -> None:
        worker = self._worker
        if worker is not None:
            try:
                worker.start()
            except RuntimeError as exc:  # interpreter shutting down
                internal_error("start export worker", exc)

    def kick(self) -> None:
        """Start exporting what is queued now, without waiting (the end of an `@agent`).

        A kick already pending is joined (no lock, no notify): the worker drains the queue.
        """
        if self._kicked or self._worker is None or not self._queue:
            return
        with self._lock:
            self._kicked = True
            self._work.notify()

    def queued(self) -> int:
        """Spans waiting in the queue now."""
        return len(self._queue)

    # -- the worker ---------------------------------------------------------------------

    def _take_batch(self) -> tuple[list[ReadableSpan], int]:
        batch: list[ReadableSpan] = []
        size = 0
        queue = self._queue
        while queue and len(batch) < self._batch_events:
            span, span_size = queue[0]
            if batch and size + span_size > self._batch_bytes:
                break
            queue.popleft()
            batch.append(span)
            size += span_size
        self._bytes -= size
        self._flight.take(len(batch))
        return batch, self._enqueued - len(queue)

    def _batch_ready(self) -> bool:
        return len(self._queue) >= self._wake_events or self._bytes >= self._batch_bytes

    def _wait_for_work(self, timeout: float) -> None:
        self._idle = True
        try:
            self._work.wait(timeout)
        finally:
            self._idle = False

    def _run(self) -> None:
        deadline = time.monotonic() + self._interval
        while True:
            with self._lock:
                while not (self._stopping or self._flushes or self._kicked or self._batch_ready()):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._wait_for_work(remaining)
                if not self._queue:
                    self._kicked = False
                    deadline = time.monotonic() + self._interval
                    if self._stopping:
                        self._done.notify_all()
                        return
                    self._done.notify_all()
                    if not self._flushes:
                        continue
                    # A flush with nothing queued: wait for the next span or request.
                    self._wait_for_work(self._interval)
                    continue
                batch, last = self._take_batch()
            try:
                delivered = self._exporter.export(batch) is SpanExportResult.SUCCESS
            except Exception as exc:  # a bug in the chain must not end the worker
                internal_error("export worker", exc)
                delivered = False
            with self._lock:
                self._finished = max(self._finished, last)
                if not delivered:
                    self._last_failed = max(self._last_failed, last)
                self._done.notify_all()
            if not self._batch_ready():
                deadline = time.monotonic() + self._interval

    # -- flush and shutdown -------------------------------------------------------------

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued before this call.

        False if `timeout_millis` ran out, or if an export of spans not yet reported by
        an earlier flush failed (the collector refused them or could not be reached).
        """
        deadline = time.monotonic() + timeout_millis / 1000.0
        with self._lock:
            target = self._enqueued
            if self._finished < target and self._worker is not None:
                self._flushes += 1
                self._work.notify()
                try:
                    while self._finished < target:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            return False
                        self._done.wait(remaining)
                finally:
                    self._flushes -= 1
            if self._finished < target:
                return False
            failed = self._last_failed > self._reported
            self._reported = max(self._reported, target)
            return not failed

    def shutdown(self, timeout: float | None = None) -> None:
        """Send what is queued (up to `timeout` seconds), then stop; idempotent.

        Spans still queued when the time runs out (a collector that stalls) are counted
        as dropped (`shutdown`); the exporter is shut down so it abandons its retries.
        """
        with self._lock:
            if self._shut:
                return
            self._shut = True
        budget = self._shutdown_timeout if timeout is None else timeout
        started = time.monotonic()
        flushed = self.force_flush(int(budget * 1000))
        with self._lock:
            self._stopping = True
            self._work.notify_all()
            unsent = len(self._queue) if not flushed else 0
            in_flight = self._flight.count
            self._queue.clear()
            self._bytes = 0
        if unsent:
            self._counters.drop("shutdown", unsent)
        try:
            self._exporter.shutdown()
        except Exception as exc:
            internal_error("exporter shutdown", exc)
        worker = self._worker
        if worker is not None and worker.is_alive():
            worker.join(max(0.0, budget - (time.monotonic() - started)) + 0.05)
        if not flushed:
            # The batch on the wire stays in `spans_in_flight` until its request ends, then
            # is counted exported or failed (if the process lives that long).
            logger.debug(
                "mv37.rollout: shutdown timed out; %d queued spans dropped, %d still in flight",
                unsent,
                in_flight,
            )
