"""Delivery counters: nothing the SDK drops goes unsaid.

Each client keeps one `Counters`; `Rollout.stats()` returns a `RolloutStats` snapshot.
The first drop of each reason is logged at debug level on the `mv37.rollout` logger,
except `queue_full`, which a person must hear about: its first drop logs a WARNING naming
the counter and the settings to raise, later ones at most once a minute with the running
count (`QueueFullWarning`).

Example:
    >>> counters = Counters()
    >>> counters.drop("queue_full", 3)
    >>> counters.snapshot().dropped["queue_full"]
    3
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from mv37.rollout.base._diagnostics import (
    debug_once,
    internal_error,
    internal_error_counts,
    logger,
)

DROP_REASONS = ("queue_full", "oversize", "sampled_out", "scrubbed", "shutdown", "not_printed")
"""Why spans are dropped: the export queue was full; the span alone was bigger than
`max_batch_bytes`; its trace was sampled out (counted per trace); a scrubber removed it
or failed on it; it ended after `shutdown()` or was still queued (or in an open console
tree) when the shutdown timeout ran out; the console tree, the only destination, does
not print it (outside a Rollout trace, ending after its trace printed, or beyond the
console's per-trace or open-trace limits)."""

_DROP_MESSAGES = {
    "queue_full": "export queue full (max_queue_events / max_queue_bytes); dropping spans",
    "oversize": "a span is larger than max_batch_bytes; dropping it",
    "sampled_out": "a trace was sampled out (sample_rate); it is not recorded",
    "scrubbed": "a span was dropped by the scrubber / before_send pipeline",
    "shutdown": "spans ended after shutdown or unsent at the shutdown timeout; dropping them",
    "not_printed": "a span is not part of a printed console tree and there is no destination",
}


QUEUE_FULL_WARNING_INTERVAL = 60.0
"""Seconds between two WARNINGs about `queue_full` drops (the first is logged at once)."""


def monotonic() -> float:
    """The clock `QueueFullWarning` uses by default (looked up per call: tests replace it)."""
    return time.monotonic()


class QueueFullWarning:
    """Says `queue_full` drops out loud: a WARNING at the first, then at most one per
    `QUEUE_FULL_WARNING_INTERVAL` seconds (by `clock`, default this module's `monotonic`)
    with the running count.

    Example:
        >>> now = [0.0]
        >>> warning = QueueFullWarning(clock=lambda: now[0])
        >>> warning.due(), warning.due()  # the first drop is due, the next is not
        (True, False)
        >>> now[0] = 61.0
        >>> warning.due()
        True
    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock
        self._next: float | None = None  # when the next WARNING may be logged

    def due(self) -> bool:
        """Whether a drop now is to be logged (callers hold a lock)."""
        now = self._clock() if self._clock is not None else monotonic()
        if self._next is not None and now < self._next:
            return False
        self._next = now + QUEUE_FULL_WARNING_INTERVAL
        return True

    @staticmethod
    def log(total: int, first: bool) -> None:
        """Log the WARNING for `total` spans dropped so far."""
        if first:
            logger.warning(
                "mv37.rollout: the export queue is full: spans end faster than they are "
                "exported, and the ones that do not fit are dropped (counted in "
                "stats().dropped['queue_full']). Raise max_queue_events / max_queue_bytes "
                "if bursts are expected, or check that the collector keeps up. Logged again "
                "at most once a minute with the count"
            )
        else:
            logger.warning(
                "mv37.rollout: %d spans dropped so far because the export queue was full "
                "(stats().dropped['queue_full']; raise max_queue_events / max_queue_bytes)",
                total,
            )


@dataclass(frozen=True)
class RolloutStats:
    """A snapshot of a client's delivery counters.

    Attributes:
        spans_started: Recording spans started in Rollout traces.
        spans_exported: Spans an exporter accepted (summed over exporters); with the
            console tree as the only destination, spans it printed.
        spans_queued: Spans waiting in export queues right now (or, console only, in a
            tree whose trace has not ended).
        spans_in_flight: Spans an exporter has taken from its queue (or, in `sync_mode`, is
            sending from the caller's thread) whose export has not ended yet: a request on
            the wire, or the exporter's retries against a collector that is down. They move
            to `spans_exported` or `spans_failed` when it ends. At any moment,
            `spans_started` = `spans_exported` + `spans_failed` + `spans_dropped` +
            `spans_queued` + `spans_in_flight`, give or take spans started but not ended.
        dropped: Spans dropped, by reason (see `DROP_REASONS`); `sampled_out` counts traces.
        export_failures: Export attempts (batches) that failed after the exporter's retries.
        spans_failed: Spans in those failed batches.
        internal_errors: SDK-internal failures caught and counted.
        metric_exports: Metric exports (OTLP requests to `/v1/metrics`) that succeeded.
        metric_export_failures: Metric exports that failed after the exporter's retries.
        feedback_sent: Feedback and signals a feedback sink accepted, by sink
            (`phoenix`, `langfuse`, `mlflow`; only the sinks in use).
        feedback_failed: Feedback and signals a sink did not take, by sink: refused,
            unreachable past the retries, queue full, or unsent at shutdown.
    """

    spans_started: int = 0
    spans_exported: int = 0
    spans_queued: int = 0
    spans_in_flight: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    export_failures: int = 0
    spans_failed: int = 0
    internal_errors: int = 0
    metric_exports: int = 0
    metric_export_failures: int = 0
    feedback_sent: dict[str, int] = field(default_factory=dict)
    feedback_failed: dict[str, int] = field(default_factory=dict)

    @property
    def spans_dropped(self) -> int:
        """All dropped spans (sampled-out traces excluded: their spans never started)."""
        return sum(n for reason, n in self.dropped.items() if reason != "sampled_out")


class Counters:
    """Thread-safe counters behind `RolloutStats`."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._lock = threading.Lock()
        self._started = itertools.count()
        self.exported = 0
        self.export_failures = 0
        self.spans_failed = 0
        self.metric_exports = 0
        self.metric_export_failures = 0
        self._dropped: Counter[str] = Counter()
        self._feedback: dict[str, list[int]] = {}  # sink -> [sent, failed]
        self._queued_sources: list[_QueueLength] = []
        self._clock = clock
        self._queue_full = QueueFullWarning(clock)

    def reset(self) -> None:
        """Start from zero (a forked child counts its own spans)."""
        self._lock = threading.Lock()
        self._started = itertools.count()
        self.exported = self.export_failures = self.spans_failed = 0
        self.metric_exports = self.metric_export_failures = 0
        self._dropped = Counter()
        self._feedback = {sink: [0, 0] for sink in self._feedback}
        self._queue_full = QueueFullWarning(self._clock)

    def add_started(self) -> None:
        """Count one started span (lock-free: `next` on a count is atomic in CPython)."""
        next(self._started)

    @property
    def started(self) -> int:
        """Spans counted by `add_started` so far."""
        return int(repr(self._started)[len("count(") : -1])

    def add_exported(self, count: int) -> None:
        with self._lock:
            self.exported += count

    def add_failed(self, count: int) -> None:
        with self._lock:
            self.export_failures += 1
            self.spans_failed += count

    def add_metric_export(self, ok: bool) -> None:
        """Count one metric export that succeeded (`ok`) or failed."""
        with self._lock:
            if ok:
                self.metric_exports += 1
            else:
                self.metric_export_failures += 1

    def add_sink(self, sink: str) -> None:
        """Show `sink` in `feedback_sent` / `feedback_failed` (at 0 until it counts)."""
        with self._lock:
            self._feedback.setdefault(sink, [0, 0])

    def add_feedback(self, sink: str, ok: bool, count: int = 1) -> None:
        """Count `count` feedback/signals `sink` took (`ok`) or did not."""
        with self._lock:
            self._feedback.setdefault(sink, [0, 0])[0 if ok else 1] += count

    def drop(self, reason: str, count: int = 1) -> None:
        """Count `count` dropped spans for `reason`; debug-log the first of each reason
        (`queue_full`: a WARNING, repeated at most once a minute, see `QueueFullWarning`).
        """
        if reason != "queue_full":
            with self._lock:
                self._dropped[reason] += count
            debug_once(f"drop-{reason}", "mv37.rollout: %s", _DROP_MESSAGES.get(reason, reason))
            return
        with self._lock:
            self._dropped[reason] += count
            total = self._dropped[reason]
            due = self._queue_full.due()
        if due and logger.isEnabledFor(logging.WARNING):
            try:  # called from the user's thread (a span ending): never raise there
                QueueFullWarning.log(total, first=total == count)
            except Exception as exc:
                internal_error("queue full warning", exc)

    def watch_queue(self, source: _QueueLength) -> None:
        """Count `source.queued()` in `spans_queued`, `source.in_flight()` in `spans_in_flight`."""
        self._queued_sources.append(source)

    def snapshot(self) -> RolloutStats:
        with self._lock:
            dropped = {reason: self._dropped.get(reason, 0) for reason in DROP_REASONS}
            exported = self.exported
            failures, failed = self.export_failures, self.spans_failed
            metric_exports, metric_failures = self.metric_exports, self.metric_export_failures
            sent = {sink: counts[0] for sink, counts in self._feedback.items()}
            unsent = {sink: counts[1] for sink, counts in self._feedback.items()}
        sources = list(self._queued_sources)
        return RolloutStats(
            spans_started=self.started,
            spans_exported=exported,
            spans_queued=sum(source.queued() for source in sources),
            spans_in_flight=sum(source.in_flight() for source in sources),
            dropped=dropped,
            export_failures=failures,
            spans_failed=failed,
            internal_errors=sum(internal_error_counts().values()),
            metric_exports=metric_exports,
            metric_export_failures=metric_failures,
            feedback_sent=sent,
            feedback_failed=unsent,
        )


class InFlight:
    """Spans one export processor has handed to its exporter chain whose export has not ended.

    The processor raises it (`take`) as spans leave its hands; the chain lowers it
    (`land`) as it counts them elsewhere: dropped by the privacy stage, exported or
    failed. So at any moment each span is counted in exactly one place (give or take the
    instant between counting it elsewhere and landing it).
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Nothing in flight, a fresh lock (a forked child: the parent's exports are not
        its own, and a thread of the parent's may have held the lock at the fork)."""
        self._lock = threading.Lock()
        self.count = 0

    def take(self, count: int) -> None:
        """`count` more spans are being exported."""
        with self._lock:
            self.count += count

    def land(self, count: int) -> None:
        """`count` spans are counted elsewhere now."""
        if count:
            with self._lock:
                self.count -= count


class _QueueLength(Protocol):
    """Anything with `queued()` and `in_flight()` span counts (the export processors)."""

    def queued(self) -> int: ...

    def in_flight(self) -> int: ...
