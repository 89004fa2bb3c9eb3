"""Where metric measurements go: our own aggregates, or instruments on a `MeterProvider`.

The facade asks a `Sink` once for the `Series` of a metric and attribute set, keeps it,
and calls `Series.add(value)` where an operation ends. Two sinks:

- `Aggregates`, ours, for delivery to the destination: each series aggregates in place
  (a bisect and a few additions under a lock, about 1 us), and `collect()` turns them into
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
from collections.abc import Mapping
from typing import Protocol

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


class Series(Protocol):
    """One metric with one attribute set: where a measurement is added."""

    def add(self, value: float) -> None:
        """Add one measurement (a histogram records it; a counter sums it)."""


class Sink(Protocol):
    """Hands out the series of a metric and attribute set (callers keep them)."""

    def series(self, spec: sc.MetricSpec, attributes: MetricAttributes) -> Series:
        """The series of `spec` with `attributes`."""


# -- our own aggregation -------------------------------------------------------------------


class _Cell:
    """What one series holds; shared by histograms and counters."""

    __slots__ = ("attributes", "count", "counts", "lock", "max", "min", "spec", "start", "sum")

    def __init__(
        self, spec: sc.MetricSpec, attributes: MetricAttributes, lock: threading.Lock, start: int
    ) -> None:
        self.spec = spec
        self.attributes = dict(attributes)
        self.lock = lock
        self.start = start
        self.clear()

    def clear(self) -> None:
        """Back to no measurements."""
        self.counts = [0] * (len(self.spec.buckets) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")


class _HistogramSeries(_Cell):
    """A histogram series: explicit buckets (`(b[i-1], b[i]]`, as OTel counts), sum, min, max."""

    __slots__ = ()

    def add(self, value: float) -> None:
        """Record `value` (seconds, tokens)."""
        index = bisect_left(self.spec.buckets, value)
        with self.lock:
            self.counts[index] += 1
            self.count += 1
            self.sum += value
            # Comparisons, not min()/max(): two calls fewer on every measurement.
            if value < self.min:  # noqa: PLR1730
                self.min = value
            if value > self.max:  # noqa: PLR1730
                self.max = value


class _CounterSeries(_Cell):
    """A monotonic counter series: the sum of what was added."""

    __slots__ = ()

    def add(self, value: float) -> None:
        """Add `value` (non-negative; a negative amount is ignored, as OTel's counters do)."""
        if value < 0:
            return
        with self.lock:
            self.count += 1
            self.sum += value


class Aggregates:
    """Our own aggregation of every series, collected as OTel metric data.

    One lock guards all series (recording holds it for a few additions; `collect` holds
    it while it copies). Cumulative collections keep the running totals; delta ones
    (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta`) start each series again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: list[_Cell] = []
        self._start = time.time_ns()

    def series(self, spec: sc.MetricSpec, attributes: MetricAttributes) -> Series:
        """A new series of `spec` with `attributes` (the caller keeps and reuses it)."""
        cls = _HistogramSeries if spec.instrument == "histogram" else _CounterSeries
        cell = cls(spec, attributes, self._lock, self._start)
        with self._lock:
            self._series.append(cell)
        return cell

    def collect(self, *, delta: bool) -> list[Metric]:
        """Each metric with measurements, one data point per series (none when empty).

        With `delta`, each point covers the time since the previous collection and the
        series start again from zero; otherwise since the first.
        """
        now = time.time_ns()
        points: dict[str, list[HistogramDataPoint | NumberDataPoint]] = {}
        specs: dict[str, sc.MetricSpec] = {}
        with self._lock:
            for cell in self._series:
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
            cell.clear()


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
