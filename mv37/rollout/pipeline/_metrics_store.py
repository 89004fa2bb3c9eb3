"""Where metric measurements go: our own aggregates, or instruments on a `MeterProvider`.

The facade asks a `Sink` once for the `Series` of a metric and attribute set, keeps it,
and calls `Series.add(value)` where an operation ends. Two sinks:

- `Aggregates`, ours, for delivery to the destination: each series aggregates in place
  (appended to a queue, folded into buckets and sums in batches: about 0.1 us a
  measurement on the caller's side), and `collect()` turns them into
  the SDK's `MetricsData` for the OTLP exporter. Recording through the SDK's instruments
  costs 12-15 us a measurement (measurement objects, context and exemplar look-ups,
  attribute hashing), more than a `@tool` span's budget allows.
- `InstrumentSink`: histograms and counters on a user's `MeterProvider` (the
  `meter_provider=` argument, or an SDK provider installed globally), whose readers
  deliver.

Example:
    >>> store = Aggregates()
    >>> tool = sc.METRICS[3]  # gen_ai.execute_tool.duration
    >>> series = store.series(tool, {sc.GEN_AI_TOOL_NAME: "lookup"})
    >>> series.add(0.05)
    >>> [point.count for point in store.collect(delta=False)[0].data.data_points]
    [1]
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Mapping
from functools import partial
from typing import Protocol, TypeVar

from opentelemetry.metrics import Counter as ApiCounter
from opentelemetry.metrics import Histogram as ApiHistogram
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    Sum,
)
from opentelemetry.util.types import AttributeValue

from mv37.rollout import semconv as sc
from mv37.rollout.base._version import __version__

SCOPE = "mv37.rollout"
"""The instrumentation scope of our meters (the same name as our tracer's)."""

MetricAttributes = Mapping[str, AttributeValue]
_T = TypeVar("_T")


class Series(Protocol):
    """One metric with one attribute set: where a measurement is added."""

    def add(self, value: float) -> None:
        """Add one measurement (a histogram records it; a counter sums it)."""


class Group(Protocol):
    """Series measured together (an LLM call: duration, input and output tokens, cost)."""

    def add(self, values: tuple[float | None, ...]) -> None:
        """One measurement per series, in order (None: none for that series)."""


class Sink(Protocol):
    """Hands out the series of a metric and attribute set (callers keep them)."""

    def series(self, spec: sc.MetricSpec, attributes: MetricAttributes) -> Series:
        """The series of `spec` with `attributes`."""

    def group(self, series: tuple[Series, ...]) -> Group:
        """`series` fed together, one tuple of values a time."""


class _SeriesGroup:
    """A group that adds each value to its series (for any sink)."""

    __slots__ = ("_series",)

    def __init__(self, series: tuple[Series, ...]) -> None:
        self._series = series

    def add(self, values: tuple[float | None, ...]) -> None:
        """Add each value that is not None to its series."""
        for series, value in zip(self._series, values, strict=False):
            if value is not None:
                series.add(value)


# -- our own aggregation -------------------------------------------------------------------


FOLD_AT = 512
"""Measurements a series queues before the recording thread folds them in itself.

Small enough that queued tuples do not live through many garbage collections (each
one that finds them alive moves them to an older generation, which makes later
collections longer), large enough to fold in batches."""


class _Cell:
    """What one series holds; shared by histograms and counters.

    `add` only appends to `pending` (a deque: appending and popping are atomic, so no
    lock on the caller's path); the values are folded into the totals under the lock
    when collected, or by the recording thread once `FOLD_AT` are queued.
    """

    __slots__ = (
        "attributes",
        "count",
        "counts",
        "lock",
        "max",
        "min",
        "pending",
        "spec",
        "start",
        "sum",
    )

    def __init__(
        self, spec: sc.MetricSpec, attributes: MetricAttributes, lock: threading.Lock, start: int
    ) -> None:
        self.spec = spec
        self.attributes = dict(attributes)
        self.lock = lock
        self.start = start
        self.pending: deque[float] = deque()
        self.clear()

    def clear(self) -> None:
        """Back to no measurements (queued ones stay queued)."""
        self.counts = [0] * (len(self.spec.buckets) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def add(self, value: float) -> None:
        """Queue one measurement (seconds, tokens, dollars)."""
        pending = self.pending
        pending.append(value)
        if len(pending) >= FOLD_AT:
            with self.lock:
                self.fold()

    def fold(self) -> None:
        """Move the queued measurements into the totals (the caller holds `lock`)."""
        self.fold_values(_drain(self.pending))

    def fold_values(self, values: list[float]) -> None:
        """Add measurements to the totals (the caller holds `lock`), in C where it can:
        bucket indexes by `map`, counted by `Counter`; `sum`, `min` and `max` builtins."""
        histogram = self.spec.instrument == "histogram"
        if not histogram:
            values = [value for value in values if value >= 0]  # as OTel's counters do
        if not values:
            return
        if histogram:
            counts = self.counts
            for index, n in Counter(map(partial(bisect_left, self.spec.buckets), values)).items():
                counts[index] += n
        self.count += len(values)
        self.sum += sum(values)
        self.min = min(self.min, min(values))  # noqa: PLW3301 - no unpacking of a long list
        self.max = max(self.max, max(values))  # noqa: PLW3301


def _drain(pending: deque[_T]) -> list[_T]:
    """Everything queued in `pending` now (adders only append; one folder pops)."""
    return [pending.popleft() for _ in range(len(pending))]


class _HistogramSeries(_Cell):
    """A histogram series: explicit buckets (`(b[i-1], b[i]]`, as OTel counts), sum, min, max."""

    __slots__ = ()


class _CounterSeries(_Cell):
    """A monotonic counter series: the sum of what was added."""

    __slots__ = ()


class _CellGroup:
    """Cells fed together: one queue of value tuples, split into the cells when folded
    (one append on the caller's side for an LLM call's four measurements)."""

    __slots__ = ("cells", "lock", "pending")

    def __init__(self, cells: tuple[_Cell, ...], lock: threading.Lock) -> None:
        self.cells = cells
        self.lock = lock
        self.pending: deque[tuple[float | None, ...]] = deque()

    def add(self, values: tuple[float | None, ...]) -> None:
        """Queue one tuple of measurements."""
        pending = self.pending
        pending.append(values)
        if len(pending) >= FOLD_AT:
            with self.lock:
                self.fold()

    def fold(self) -> None:
        """Fold the queued tuples into the cells, a column each (the caller holds `lock`)."""
        columns = list(zip(*_drain(self.pending), strict=False))
        for index, cell in enumerate(self.cells):
            cell.fold()  # what reached it directly (a series may serve more than one group)
            if index < len(columns):
                cell.fold_values([value for value in columns[index] if value is not None])


class Aggregates:
    """Our own aggregation of every series, collected as OTel metric data.

    One lock guards all series (recording holds it for a few additions; `collect` holds
    it while it copies). Cumulative collections keep the running totals; delta ones
    (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta`) start each series again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: list[_Cell] = []
        self._groups: list[_CellGroup] = []
        self._start = time.time_ns()

    def series(self, spec: sc.MetricSpec, attributes: MetricAttributes) -> Series:
        """A new series of `spec` with `attributes` (the caller keeps and reuses it)."""
        cls = _HistogramSeries if spec.instrument == "histogram" else _CounterSeries
        cell = cls(spec, attributes, self._lock, self._start)
        with self._lock:
            self._series.append(cell)
        return cell

    def group(self, series: tuple[Series, ...]) -> Group:
        """`series` (all of this store) fed together through one queue."""
        if not all(isinstance(s, _Cell) for s in series):
            return _SeriesGroup(series)
        group = _CellGroup(tuple(s for s in series if isinstance(s, _Cell)), self._lock)
        with self._lock:
            self._groups.append(group)
        return group

    def collect(self, *, delta: bool) -> list[Metric]:
        """Each metric with measurements, one data point per series (none when empty).

        With `delta`, each point covers the time since the previous collection and the
        series start again from zero; otherwise since the first.
        """
        now = time.time_ns()
        points: dict[str, list[HistogramDataPoint | NumberDataPoint]] = {}
        specs: dict[str, sc.MetricSpec] = {}
        with self._lock:
            for group in self._groups:
                group.fold()
            for cell in self._series:
                cell.fold()
                if cell.count == 0:
                    continue
                specs[cell.spec.name] = cell.spec
                points.setdefault(cell.spec.name, []).append(_point(cell, now))
                if delta:
                    cell.clear()
                    cell.start = now
        temporality = AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE
        metrics: list[Metric] = []
        for spec in sc.METRICS:
            if spec.name not in points:
                continue
            data: Histogram | Sum
            if spec.instrument == "histogram":
                data = Histogram(points[spec.name], temporality)  # type: ignore[arg-type]
            else:
                data = Sum(points[spec.name], temporality, is_monotonic=True)  # type: ignore[arg-type]
            metrics.append(Metric(spec.name, spec.description, spec.unit, data))
        return metrics

    def reset(self) -> None:
        """Start from nothing with a fresh lock: a forked child counts its own operations
        (a thread of the parent's may have held the lock at the fork)."""
        self._lock = threading.Lock()
        self._start = time.time_ns()
        for cell in self._series:
            cell.lock = self._lock
            cell.start = self._start
            cell.pending = deque()
            cell.clear()
        for group in self._groups:
            group.lock = self._lock
            group.pending = deque()


def _point(cell: _Cell, now: int) -> HistogramDataPoint | NumberDataPoint:
    if cell.spec.instrument == "histogram":
        return HistogramDataPoint(
            attributes=dict(cell.attributes),
            start_time_unix_nano=cell.start,
            time_unix_nano=now,
            count=cell.count,
            sum=cell.sum,
            bucket_counts=list(cell.counts),
            explicit_bounds=list(cell.spec.buckets),
            min=cell.min,
            max=cell.max,
        )
    return NumberDataPoint(
        attributes=dict(cell.attributes),
        start_time_unix_nano=cell.start,
        time_unix_nano=now,
        value=cell.sum,
    )


# -- instruments on a MeterProvider --------------------------------------------------------


class _InstrumentSeries:
    """A series recorded through an OTel API instrument with a fixed attribute set."""

    __slots__ = ("_attributes", "_record")

    def __init__(self, instrument: ApiHistogram | ApiCounter, attributes: MetricAttributes) -> None:
        self._attributes = dict(attributes)
        self._record = instrument.record if isinstance(instrument, ApiHistogram) else instrument.add

    def add(self, value: float) -> None:
        """Record `value` on the instrument."""
        self._record(value, self._attributes)


class InstrumentSink:
    """Our instruments on `provider`, created once each (its readers deliver them)."""

    def __init__(self, provider: MeterProvider) -> None:
        self.provider = provider
        meter = provider.get_meter(SCOPE, __version__)
        self._instruments: dict[str, ApiHistogram | ApiCounter] = {}
        for spec in sc.METRICS:
            if spec.instrument == "histogram":
                self._instruments[spec.name] = meter.create_histogram(
                    spec.name,
                    unit=spec.unit,
                    description=spec.description,
                    explicit_bucket_boundaries_advisory=list(spec.buckets),
                )
            else:
                self._instruments[spec.name] = meter.create_counter(
                    spec.name, unit=spec.unit, description=spec.description
                )

    def series(self, spec: sc.MetricSpec, attributes: MetricAttributes) -> Series:
        """The instrument of `spec` bound to `attributes`."""
        return _InstrumentSeries(self._instruments[spec.name], attributes)

    def group(self, series: tuple[Series, ...]) -> Group:
        """`series` fed together (each recorded on its instrument)."""
        return _SeriesGroup(series)
