"""GenAI metrics delivery: which `MeterProvider` (or none), and our own OTLP export.

Where measurements go, first match wins:

- `metrics=False` / `ROLLOUT_METRICS=false`, or the kill switch: nowhere, nothing recorded;
- `meter_provider=`: instruments on that provider (its readers deliver);
- an SDK `MeterProvider` installed globally: instruments on it, used as it is (never
  replaced, nothing added to it);
- a metrics destination: our own aggregation (`Aggregates`), collected every
  `OTEL_METRIC_EXPORT_INTERVAL` ms (default 60 s) by a daemon thread and on `flush()`,
  `shutdown()` and exit, and posted by the OTel OTLP/HTTP metric exporter;
- otherwise nowhere (the console tree already shows tokens).

The destination: `base_url` + `/v1/metrics` (a `base_url` ending in `/v1/traces` has that
replaced); else `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` as is; else
`OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/metrics`. The same headers as the traces
(`request_headers`: `OTEL_EXPORTER_OTLP(_METRICS)_HEADERS`, `headers=`, the API key as
`Authorization: Bearer`). Timeout
`OTEL_EXPORTER_OTLP(_METRICS)_TIMEOUT` (ms), compression
`OTEL_EXPORTER_OTLP(_METRICS)_COMPRESSION` (default gzip), temporality
`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` (`cumulative`, default; `delta` and
`lowmemory` make our histograms and counter delta).

Example:
    >>> from mv37.rollout.base._config import resolve_config
    >>> resolve_metrics_destination(resolve_config(base_url="http://localhost:4318"), {}).endpoint
    'http://localhost:4318/v1/metrics'
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import metrics as otel_metrics
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from mv37.rollout.base._config import RolloutConfig, check_url
from mv37.rollout.base._diagnostics import internal_error, logger
from mv37.rollout.base._version import __version__
from mv37.rollout.pipeline._destination import _session_class, redact_url, request_headers
from mv37.rollout.pipeline._failures import Attempt, describe_failure, recording_attempts
from mv37.rollout.pipeline._metrics_store import SCOPE, Aggregates, InstrumentSink, Sink
from mv37.rollout.pipeline._stats import Counters
from mv37.rollout.pipeline._suppress import suppressed

METRICS_PATH = "/v1/metrics"
TRACES_PATH = "/v1/traces"
DEFAULT_INTERVAL_S = 60.0
DEFAULT_TIMEOUT_S = 10.0
_COMPRESSIONS = ("gzip", "deflate", "none")
_TEMPORALITIES = ("cumulative", "delta", "lowmemory")


@dataclass(frozen=True)
class MetricsDestination:
    """A resolved OTLP/HTTP metrics destination. Header values never appear in its repr."""

    endpoint: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = DEFAULT_TIMEOUT_S
    compression: str = "gzip"
    interval: float = DEFAULT_INTERVAL_S
    delta: bool = False

    @property
    def safe_endpoint(self) -> str:
        """The endpoint without credentials or query string, for messages."""
        return redact_url(self.endpoint)


def _first(env: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    for name in names:
        value = env.get(name)
        if value is not None and value.strip():
            return name, value.strip()
    return None


def _positive_millis(found: tuple[str, str]) -> float:
    try:
        millis = float(found[1])
    except ValueError:
        millis = -1.0
    if not millis > 0:
        raise ValueError(
            f"environment variable {found[0]} must be a positive number of milliseconds, "
            f"got {found[1]!r}"
        )
    return millis / 1000.0


def resolve_metrics_destination(
    config: RolloutConfig, env: Mapping[str, str] | None = None
) -> MetricsDestination | None:
    """Where our metrics go (see the module docstring), or None.

    Raises:
        ValueError: For a malformed endpoint, timeout, compression, interval or
            temporality, naming the variable.
    """
    environ = os.environ if env is None else env
    if config.base_url:
        base = config.base_url.rstrip("/").removesuffix(TRACES_PATH)
        endpoint = base + METRICS_PATH
    elif found := _first(environ, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        endpoint = check_url(found[1], f"environment variable {found[0]}")
    elif found := _first(environ, "OTEL_EXPORTER_OTLP_ENDPOINT"):
        endpoint = check_url(found[1], f"environment variable {found[0]}") + METRICS_PATH
    else:
        return None
    timeout = DEFAULT_TIMEOUT_S
    if found := _first(environ, "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        timeout = _positive_millis(found)
    interval = DEFAULT_INTERVAL_S
    if found := _first(environ, "OTEL_METRIC_EXPORT_INTERVAL"):
        interval = _positive_millis(found)
    compression = "gzip"
    if found := _first(
        environ, "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"
    ):
        compression = found[1].lower()
        if compression not in _COMPRESSIONS:
            raise ValueError(
                f"environment variable {found[0]} must be one of {', '.join(_COMPRESSIONS)}, "
                f"got {found[1]!r}"
            )
    delta = False
    if found := _first(environ, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"):
        preference = found[1].lower()
        if preference not in _TEMPORALITIES:
            raise ValueError(
                f"environment variable {found[0]} must be one of {', '.join(_TEMPORALITIES)}, "
                f"got {found[1]!r}"
            )
        delta = preference != "cumulative"
    headers = request_headers(config, environ, signal="metrics")
    return MetricsDestination(endpoint, headers, timeout, compression, interval, delta)


def build_metric_exporter(destination: MetricsDestination) -> MetricExporter:
    """The OTel SDK's OTLP/HTTP metric exporter for `destination` (a fork-safe session)."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    compression = {
        "gzip": Compression.Gzip,
        "deflate": Compression.Deflate,
        "none": Compression.NoCompression,
    }[destination.compression]
    return OTLPMetricExporter(
        endpoint=destination.endpoint,
        headers=dict(destination.headers) or None,
        timeout=destination.timeout,
        compression=compression,
        session=_session_class()(),
    )


# -- the exporter's log --------------------------------------------------------------------

METRIC_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.common.http",
)
"""The loggers the OTel OTLP/HTTP metric exporter reports retries and failures on."""

_EXPORTING: ContextVar[MetricsDelivery | None] = ContextVar(
    "mv37_rollout_exporting_metrics", default=None
)


class _OwnMetricExportRecords(logging.Filter):
    """During our metric exports, the exporter's WARNING+ records go to debug level (our
    delivery logs one WARNING of its own); every other record passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _EXPORTING.get() is None or record.levelno < logging.WARNING:
            return True
        source = logging.getLogger(record.name)
        if source.isEnabledFor(logging.DEBUG):
            quiet = logging.makeLogRecord(record.__dict__)
            quiet.levelno, quiet.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
            source.handle(quiet)  # passes this filter: below WARNING
        return False


_FILTER = _OwnMetricExportRecords()
_FILTER_LOCK = threading.Lock()


def _install_log_filter() -> None:
    with _FILTER_LOCK:
        for name in METRIC_EXPORTER_LOGGERS:
            source = logging.getLogger(name)
            if _FILTER not in source.filters:
                source.addFilter(_FILTER)


# -- our own delivery ------------------------------------------------------------------------


class _Requests:
    """Export requests between callers (flush, shutdown) and the worker thread."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.wanted = 0  # requests made
        self.served = 0  # requests an export has started after, and finished
        self.stopping = False
        self.last_ok = True


class MetricsDelivery:
    """Collects `Aggregates` and posts them from a daemon thread: every `interval`, and
    when asked (`flush`, `shutdown`, exit), the caller waiting at most its timeout (a
    collector that is down never holds up `flush()` or `agent_flush="wait"` longer). One
    export at a time; each is counted in `stats()` (`metric_exports`,
    `metric_export_failures`); the first failure logs one WARNING."""

    def __init__(
        self,
        store: Aggregates,
        exporter: MetricExporter,
        destination: MetricsDestination,
        counters: Counters,
        resource: Resource,
        *,
        shutdown_timeout: float = 5.0,
        traces_endpoint: str | None = None,
    ) -> None:
        self.store = store
        self._traces_origin = _origin(traces_endpoint) if traces_endpoint else None
        self.exporter = exporter
        self.destination = destination
        self.counters = counters
        self.resource = resource
        self.shutdown_timeout = shutdown_timeout
        self._scope = InstrumentationScope(SCOPE, __version__)
        self._warned = False
        self._shut = False
        self._delivered = -1  # measurements the last delivered cumulative export carried
        _install_log_filter()
        self._start_worker()

    def _start_worker(self) -> None:
        self._export_lock = threading.Lock()
        self._requests = _Requests()
        self._thread = threading.Thread(
            target=_worker,
            args=(weakref.ref(self), self._requests, self.destination.interval),
            name="mv37-rollout-metrics",
            daemon=True,
        )
        self._thread.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Have the worker export now; wait for it at most `timeout` seconds (default
        `shutdown_timeout`). True when that export delivered (or had nothing to send)."""
        if self._shut:
            return True
        requests = self._requests
        budget = self.shutdown_timeout if timeout is None else max(0.0, timeout)
        with requests.cond:
            requests.wanted += 1
            mine = requests.wanted
            requests.cond.notify_all()
            done = requests.cond.wait_for(lambda: requests.served >= mine, budget)
            return done and requests.last_ok

    def export(self, *, only_new: bool = False) -> bool:
        """Collect now and post what was recorded, in this thread (the worker's job).

        `only_new` (a flush or the shutdown): nothing is posted when no measurement came
        since the last delivered export (cumulative totals already there); the periodic
        export posts them anyway, which keeps the series alive in the backend.
        """
        with self._export_lock:
            metrics = self.store.collect(delta=self.destination.delta)
            if not metrics:
                return True
            measured = sum(getattr(p, "count", 0) or 1 for m in metrics for p in m.data.data_points)
            if only_new and measured == self._delivered:
                return True
            data = MetricsData(
                [
                    ResourceMetrics(
                        self.resource,
                        [ScopeMetrics(self._scope, metrics, "")],
                        self.resource.schema_url,
                    )
                ]
            )
            ok = self._send(data)
            self.counters.add_metric_export(ok)
            if ok and not self.destination.delta:
                self._delivered = measured
            return ok

    def _send(self, data: MetricsData) -> bool:
        token = _EXPORTING.set(self)
        attempts = None
        try:
            with suppressed(), recording_attempts() as attempts:
                millis = self.destination.timeout * 1000
                result = self.exporter.export(data, timeout_millis=millis)
        except Exception as exc:
            internal_error("metric export", exc)
            result = MetricExportResult.FAILURE
        finally:
            _EXPORTING.reset(token)
        if result is MetricExportResult.SUCCESS:
            return True
        if not self._warned:
            last = attempts.last if attempts is not None else None
            failure = describe_failure(last, self.destination.safe_endpoint)
            alone = self._metrics_alone_fail(last)
            level = logging.WARNING if alone else logging.DEBUG
            self._warned = level == logging.WARNING
            logger.log(
                level,
                "mv37.rollout: exporting metrics to %s failed, %s.%s The next export sends "
                "them again unless the temporality is delta; counted in "
                "stats().metric_export_failures. If the destination takes no metrics, "
                "metrics=False (ROLLOUT_METRICS=false) stops them. Logged once for this client.",
                self.destination.safe_endpoint,
                failure.what,
                _metrics_hint(failure.hint),
            )
        return False

    def _metrics_alone_fail(self, last: Attempt | None) -> bool:
        """Whether a metrics failure is news: another collector than the traces', or the
        traces' one answering metrics with an error while it takes spans fine (a backend
        without metrics, say). When it cannot be reached, or the spans to it fail too,
        their one WARNING already names it: ours stays at debug level."""
        if self._traces_origin != _origin(self.destination.endpoint):
            return True
        if last is None or last.error is not None:
            return False
        snapshot = self.counters.snapshot()
        return snapshot.spans_exported > 0 and snapshot.export_failures == 0

    def shutdown(self) -> None:
        """Post what is left (waiting at most `shutdown_timeout`), stop the worker and shut
        the exporter down; idempotent."""
        if self._shut:
            return
        requests = self._requests
        with requests.cond:
            requests.stopping = True
        self.flush(self.shutdown_timeout)
        self._shut = True
        if self._thread is not threading.current_thread():
            self._thread.join(0.1)
        try:
            self.exporter.shutdown()
        except Exception as exc:
            internal_error("metric exporter shutdown", exc)

    def after_fork_in_child(self) -> None:
        """A forked child counts and posts its own operations: zeroed series, a new worker
        (the exporter's session re-creates its connection pools by itself)."""
        self.store.reset()
        self._shut = False
        self._start_worker()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}"


def _metrics_hint(hint: str) -> str:
    """The export-failure hint (written for traces) said of metrics, as a sentence."""
    if not hint:
        return ""
    hint = hint.replace(TRACES_PATH, METRICS_PATH).replace("traces endpoint", "metrics endpoint")
    return f" {hint[0].upper()}{hint[1:]}{'' if hint.endswith(('.', '?')) else '.'}"


def _worker(ref: weakref.ref[MetricsDelivery], requests: _Requests, interval: float) -> None:
    """Export every `interval` seconds and whenever asked, until stopped (or the delivery
    is gone); after the last request once stopping."""
    while True:
        with requests.cond:
            if requests.served == requests.wanted and not requests.stopping:
                requests.cond.wait(interval)
            target, stopping = requests.wanted, requests.stopping
            asked = target > requests.served
        delivery = ref()
        if delivery is None:
            return
        try:
            ok = delivery.export(only_new=asked or stopping)
        except Exception as exc:
            internal_error("metric export", exc)
            ok = False
        del delivery
        with requests.cond:
            requests.last_ok = ok
            requests.served = max(requests.served, target)
            requests.cond.notify_all()
            if stopping and requests.served >= requests.wanted:
                return


# -- the choice ----------------------------------------------------------------------------


class MetricsPipeline:
    """The sink one client records its metrics into, and (ours) their delivery.

    `sink` is None when nothing is to be recorded (switched off, disabled, or nowhere to
    deliver to).
    """

    def __init__(
        self,
        config: RolloutConfig,
        counters: Counters,
        resource: Resource,
        *,
        passive: bool = False,
        traces_endpoint: str | None = None,
    ) -> None:
        self.sink: Sink | None = None
        self.delivery: MetricsDelivery | None = None
        self.provider: otel_metrics.MeterProvider | None = None
        if config.disabled or not config.metrics:
            return
        if config.meter_provider is not None:
            self.provider = config.meter_provider
        else:
            current = otel_metrics.get_meter_provider()
            if isinstance(current, SdkMeterProvider):
                self.provider = current
        if self.provider is not None:
            self.sink = InstrumentSink(self.provider)
            return
        if passive:
            return
        destination = resolve_metrics_destination(config)
        if destination is None:
            return
        store = Aggregates()
        self.delivery = MetricsDelivery(
            store,
            build_metric_exporter(destination),
            destination,
            counters,
            resource,
            shutdown_timeout=config.shutdown_timeout,
            traces_endpoint=traces_endpoint,
        )
        self.sink = store
        atexit.register(_export_at_exit, weakref.ref(self.delivery))
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self.delivery)
            os.register_at_fork(after_in_child=lambda: _after_fork(ref))

    def flush(self, timeout: float | None = None) -> bool:
        """Post what our aggregation holds now; a user's provider flushes its readers."""
        try:
            if self.delivery is not None:
                return self.delivery.flush(timeout)
            if self.provider is not None:  # its readers collect and deliver now
                flush: Any = getattr(self.provider, "force_flush", None)
                if flush is not None:
                    millis = int((timeout if timeout is not None else 5.0) * 1000)
                    return bool(flush(millis))
        except Exception as exc:
            internal_error("metric flush", exc)
            return False
        return True

    def shutdown(self) -> None:
        """Post what is left and stop our delivery (a user's provider is left running)."""
        if self.delivery is not None:
            try:
                self.delivery.shutdown()
            except Exception as exc:
                internal_error("metric shutdown", exc)


def _export_at_exit(ref: weakref.ref[MetricsDelivery]) -> None:
    delivery = ref()
    if delivery is not None:
        try:
            delivery.shutdown()
        except Exception as exc:
            internal_error("metric export at exit", exc)


def _after_fork(ref: weakref.ref[MetricsDelivery]) -> None:
    delivery = ref()
    if delivery is not None and not delivery._shut:
        delivery.after_fork_in_child()
