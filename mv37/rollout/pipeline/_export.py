"""Export processors: a bounded, counted, fork-safe batch queue and the synchronous twin.

`BatchExporter` replaces the SDK's `BatchSpanProcessor` for our destinations because we
need what it does not give: a queue bounded by bytes as well as spans, batches bounded by
bytes, counters for every span exported, failed or dropped (`_stats.Counters`), and a
forked child that starts with an empty queue and its own worker (the parent's spans
are never sent twice). The caller's thread only estimates the span's size and appends
it; the privacy pipeline (`_privacy.py`), encoding and HTTP happen on one daemon worker
thread.

The OTel OTLP exporter logs a WARNING for every retry and an ERROR for every failed
export. Those it logs while doing our export work (`ExportLog`) do not reach the user's
handlers at that level: the first one per client becomes one WARNING on `mv37.rollout`
naming the endpoint, and all of them are passed on at DEBUG. Its records from any other
work (a user's own exporter, `check()`) are left alone.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace import Span as SDKSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from mv37.rollout.base._diagnostics import debug_once, internal_error, logger
from mv37.rollout.pipeline._privacy import PrivacyStage
from mv37.rollout.pipeline._stats import Counters
from mv37.rollout.pipeline._suppress import suppressed

_SPAN_OVERHEAD = 160
"""Bytes an encoded span costs beyond its strings: ids, times, kind, status, framing."""
_VALUE_OVERHEAD = 24
_is_str = str.__instancecheck__


def _strings_size(values: Any) -> int:
    # All in C (filter/map/len): about half the cost of a Python loop over the values.
    return _VALUE_OVERHEAD * len(values) + sum(map(len, filter(_is_str, values)))


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


EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.common.http",
)
"""The loggers the OTel OTLP/HTTP span exporter reports retries and failures on."""


class ExportLog:
    """What the OTel exporter says while exporting one client's spans to `endpoint`.

    Its first WARNING-or-worse record becomes one WARNING on `mv37.rollout` naming the
    endpoint (credentials removed by the caller); every such record is passed on at
    DEBUG on its own logger (shown only where that logger is enabled for DEBUG).
    """

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._seen = itertools.count()  # `next` is atomic: no lock to be held at a fork
        install_exporter_log_filter()

    def demote(self, record: logging.LogRecord) -> None:
        """Report `record` (WARNING or worse) our way instead of at its own level."""
        if next(self._seen) == 0:
            logger.warning(
                "mv37.rollout: exporting spans to %s failed; Rollout keeps retrying in the "
                "background and counts what is not delivered in stats() (export_failures, "
                "spans_failed). Logged once; later failures go to debug level (logger %s); "
                "rollout.check() says why",
                self.endpoint,
                record.name,
            )
        source = logging.getLogger(record.name)
        if source.isEnabledFor(logging.DEBUG):
            quiet = logging.makeLogRecord(record.__dict__)
            quiet.levelno, quiet.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
            source.handle(quiet)  # passes the filter: below WARNING


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


_EXPORTING: ContextVar[ExportLog | None] = ContextVar("mv37_rollout_exporting", default=None)
"""Set around our own `exporter.export(...)` calls (worker thread or, in sync_mode, the
caller's): the exporter's records logged meanwhile are ours to report."""


class _OwnExportRecords(logging.Filter):
    """On the exporter's loggers: hands its WARNING+ records from our exports to `ExportLog`."""

    def filter(self, record: logging.LogRecord) -> bool:
        log = _EXPORTING.get()
        if log is None or record.levelno < logging.WARNING:
            return True
        try:
            log.demote(record)
        except Exception as exc:
            internal_error("exporter log", exc)
        return False


_FILTER = _OwnExportRecords()
_FILTER_LOCK = threading.Lock()


def install_exporter_log_filter() -> None:
    """Put our filter on the exporter's loggers, once (idempotent, thread-safe).

    It changes no logger's level or handlers, and passes every record logged outside our
    own export calls unchanged.
    """
    with _FILTER_LOCK:
        for name in EXPORTER_LOGGERS:
            source = logging.getLogger(name)
            if _FILTER not in source.filters:
                source.addFilter(_FILTER)


def _export(
    exporter: SpanExporter,
    spans: Sequence[ReadableSpan],
    counters: Counters,
    privacy: PrivacyStage | None,
    landed: Callable[[int], None],
    *,
    log: ExportLog | None = None,
) -> bool:
    """Export `spans` (counted in flight by the caller) and count how it ended.

    `landed(n)` is called once `n` of them are counted elsewhere (scrubbed, exported or
    failed), so that they leave the caller's in-flight count; all of them by the return.
    With `log`, the exporter's own warnings and errors meanwhile go to it.
    """
    flying = len(spans)
    try:
        if privacy is not None:
            kept = privacy.process(spans)  # counts the spans it drops
            landed(flying - len(kept))
            flying = len(kept)
            spans = kept
            if not spans:
                return True
        token = _EXPORTING.set(log)
        try:
            with suppressed():  # our POSTs must not become spans (`_suppress`)
                result = exporter.export(spans)
        except Exception as exc:
            internal_error("export", exc)
            result = SpanExportResult.FAILURE
        finally:
            _EXPORTING.reset(token)
        if result is SpanExportResult.SUCCESS:
            counters.add_exported(flying)
            return True
        counters.add_failed(flying)
        debug_once(
            "export-failed",
            "mv37.rollout: an export of %d spans failed (counted in stats().export_failures)",
            flying,
        )
        return False
    finally:
        landed(flying)


class _CountedExport(SpanProcessor):
    """What both export processors keep for `stats()`: the spans in flight.

    `_flying` is raised when spans are handed to `_export` and lowered, under `_lock`,
    by `_landed` as `_export` counts them elsewhere (scrubbed, exported or failed).
    """

    _lock: threading.Lock
    _flying: int

    def in_flight(self) -> int:
        """Spans handed to the exporter whose export (request and retries) has not ended."""
        return self._flying

    def _landed(self, count: int) -> None:
        if count:
            with self._lock:
                self._flying -= count


class SyncExporter(_CountedExport):
    """`sync_mode`: export each span in the calling thread as it ends, counted.

    A span larger than `max_bytes` (the smaller of `max_batch_bytes` and
    `max_queue_bytes`, as for the batch queue) is dropped and counted `oversize`.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        counters: Counters,
        privacy: PrivacyStage | None = None,
        *,
        max_bytes: int | None = None,
        log: ExportLog | None = None,
    ) -> None:
        self._exporter = exporter
        self._log = log
        self._counters = counters
        self._privacy = privacy if privacy is not None and privacy.active else None
        self._max_bytes = max_bytes
        self._shut = False
        self._failed = False  # an export failed since the last force_flush
        self._lock = threading.Lock()
        self._flying = 0  # spans being exported by callers' threads now
        counters.watch_queue(self)
        call_in_forked_child(self._after_fork_in_child)

    def _after_fork_in_child(self) -> None:
        # Only the forking thread lives on in the child: no export of the parent's is in
        # flight here, and the lock may have been held by one at the fork.
        self._lock = threading.Lock()
        self._flying = 0

    def on_start(self, span: SDKSpan, parent_context: Context | None = None) -> None:
        """Nothing at start."""

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
        with self._lock:
            self._flying += 1
        if not _export(
            self._exporter, (span,), self._counters, self._privacy, self._landed, log=self._log
        ):
            self._failed = True

    def queued(self) -> int:
        """Nothing waits: each span is exported as it ends."""
        return 0

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop exporting and release the exporter."""
        if not self._shut:
            self._shut = True
            self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is queued: False once if an export failed since the last flush."""
        failed, self._failed = self._failed, False
        return not failed


class BatchExporter(_CountedExport):
    """Queues ended spans and exports them in batches from one worker thread.

    Bounded by `max_queue_events` and `max_queue_bytes` (estimated): a span that does not
    fit is dropped and counted, never blocks the caller. A batch holds at most
    `max_batch_events` spans and `max_batch_bytes`; one span larger than that is dropped
    (`oversize`). A batch leaves when it is full, every `flush_interval` seconds, on
    `force_flush`, and at shutdown.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        counters: Counters,
        *,
        max_queue_events: int = 1000,
        max_queue_bytes: int = 4 * 1024 * 1024,
        max_batch_events: int = 100,
        max_batch_bytes: int = 512 * 1024,
        flush_interval: float = 2.0,
        shutdown_timeout: float = 5.0,
        privacy: PrivacyStage | None = None,
        log: ExportLog | None = None,
    ) -> None:
        self._exporter = exporter
        self._log = log
        self._counters = counters
        self._privacy = privacy if privacy is not None and privacy.active else None
        self._max_events = max_queue_events
        self._max_bytes = max_queue_bytes
        self._batch_events = min(max_batch_events, max_queue_events)
        self._batch_bytes = min(max_batch_bytes, max_queue_bytes)
        self._interval = flush_interval
        self._shutdown_timeout = shutdown_timeout
        self._reset()
        counters.watch_queue(self)
        call_in_forked_child(self._after_fork_in_child)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._queue: deque[tuple[ReadableSpan, int]] = deque()
        self._bytes = 0
        self._enqueued = 0  # sequence number of the last queued span
        self._finished = 0  # sequence number of the last span exported or given up on
        self._flying = 0  # spans taken off the queue whose export has not ended
        self._last_failed = 0  # sequence number of the last span in a failed export
        self._reported = 0  # failures up to here were already reported by a flush
        self._flushes = 0  # callers waiting in force_flush
        self._kicked = False  # export what is queued now, nobody waits
        self._stopping = False
        self._shut = False
        self._worker: threading.Thread | None = None

    def _after_fork_in_child(self) -> None:
        # The parent's queue is the parent's to send: start empty, with fresh locks (the
        # worker may have held the old one at fork) and no worker until a span arrives.
        self._reset()

    # -- the caller's side --------------------------------------------------------------

    def on_start(self, span: SDKSpan, parent_context: Context | None = None) -> None:
        """Nothing at start."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue `span` for export, or count why it cannot be."""
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
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
                elif len(self._queue) >= self._batch_events or self._bytes >= self._batch_bytes:
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
        """Start exporting what is queued now, without waiting (the end of an `@agent`)."""
        if self._worker is None or not self._queue:
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
        self._flying += len(batch)
        return batch, self._enqueued - len(queue)

    def _batch_ready(self) -> bool:
        return len(self._queue) >= self._batch_events or self._bytes >= self._batch_bytes

    def _run(self) -> None:
        deadline = time.monotonic() + self._interval
        while True:
            with self._lock:
                while not (self._stopping or self._flushes or self._kicked or self._batch_ready()):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._work.wait(remaining)
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
                    self._work.wait(self._interval)
                    continue
                batch, last = self._take_batch()
            delivered = _export(
                self._exporter, batch, self._counters, self._privacy, self._landed, log=self._log
            )
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
            in_flight = self._flying
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
