"""Metric delivery: where GenAI metrics go and how (issue 14, delivery and switch).

Over a real OTLP/HTTP receiver on 127.0.0.1 decoding `ExportMetricsServiceRequest`:
`{base}/v1/metrics` with the traces' key as `Authorization: Bearer`, gzip, the OTEL_*
metric variables, cumulative or delta temporality, failures counted in `stats()` and
warned about once. A user's `meter_provider=` or global SDK `MeterProvider` gets the
instruments instead (its readers deliver; nothing goes to /v1/metrics). Flushing is the
wait: nothing here sleeps.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.base._config import resolve_config
from mv37.rollout.facade._metrics import MetricsRecorder
from mv37.rollout.pipeline._metrics import MetricsDestination, resolve_metrics_destination
from mv37.rollout.testing import OTLPReceiver

pytestmark = pytest.mark.usefixtures("metrics_on")  # ROLLOUT_METRICS unset: on
KEY = "sk-rollout-test-0123456789"


@contextmanager
def global_meter_provider(provider: MeterProvider) -> Iterator[MeterProvider]:
    """`provider` installed as the global MeterProvider for the block (then none again)."""
    metrics_internal._METER_PROVIDER_SET_ONCE._done = False
    otel_metrics.set_meter_provider(provider)
    try:
        yield provider
    finally:
        provider.shutdown()
        metrics_internal._METER_PROVIDER_SET_ONCE._done = False
        metrics_internal._METER_PROVIDER = None


def recorder(client: rollout.Rollout) -> MetricsRecorder:
    """The client's metrics recorder (asserting it has one)."""
    assert client._metrics is not None
    return client._metrics


def points_of(data: MetricsData | None) -> dict[str, list[object]]:
    """Data points by metric name, from an in-memory reader's collection."""
    found: dict[str, list[object]] = {}
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def test_metrics_go_to_v1_metrics_gzipped_with_the_key_only_in_the_header(
    receiver: OTLPReceiver,
) -> None:
    """`base_url` + /v1/metrics, gzip, `Authorization: Bearer <key>`; the key is in no body."""
    client = rollout.Rollout(base_url=receiver.url, api_key=KEY, console=False)
    recorder(client).tool("lookup_order", "support", None, 0.05)
    assert client.flush()
    [request] = receiver.metric_requests()
    assert request.path == "/v1/metrics"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-encoding"] == "gzip"
    assert request.content_type == "application/x-protobuf"
    assert KEY.encode() not in request.body
    [point] = receiver.points()
    assert point.metric == sc.METRIC_GEN_AI_EXECUTE_TOOL_DURATION
    assert point.unit == "s"
    assert point.kind == "histogram"
    assert point.temporality == "CUMULATIVE"
    assert point.scope_name == "mv37.rollout"
    assert point.attributes == {
        sc.GEN_AI_TOOL_NAME: "lookup_order",
        sc.GEN_AI_AGENT_NAME: "support",
    }
    assert (point.count, point.sum, point.min, point.max) == (1, 0.05, 0.05, 0.05)
    assert point.explicit_bounds == (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12,
                                     10.24, 20.48, 40.96, 81.92)  # fmt: skip
    assert point.bucket_counts == (0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert client.stats().metric_exports == 1
    assert client.stats().metric_export_failures == 0
    client.shutdown()


def test_nothing_recorded_means_no_metrics_request(receiver: OTLPReceiver) -> None:
    """An empty collection sends nothing: no request, no export counted."""
    client = rollout.Rollout(base_url=receiver.url, console=False)
    assert client.flush()
    client.shutdown()
    assert receiver.metric_requests() == []
    assert client.stats().metric_exports == 0


@pytest.mark.parametrize("source", ["argument", "variable"])
def test_metrics_switched_off_records_nothing_and_sends_nothing(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """`metrics=False` / `ROLLOUT_METRICS=false`: no recorder and no /v1/metrics request."""
    if source == "variable":
        monkeypatch.setenv("ROLLOUT_METRICS", "false")
        client = rollout.Rollout(base_url=receiver.url, console=False)
    else:
        client = rollout.Rollout(base_url=receiver.url, console=False, metrics=False)
    assert client._metrics is None
    assert client.flush()
    client.shutdown()
    assert receiver.metric_requests() == []


def test_metrics_variable_must_be_a_boolean(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad `ROLLOUT_METRICS` is a ValueError naming the variable."""
    monkeypatch.setenv("ROLLOUT_METRICS", "sometimes")
    with pytest.raises(ValueError, match="environment variable ROLLOUT_METRICS must be a boolean"):
        resolve_config()


def test_no_destination_records_no_metrics() -> None:
    """Console only (no destination, no MeterProvider): nothing to record metrics for."""
    client = rollout.Rollout(console=False)
    assert client._metrics is None
    client.shutdown()


def test_disabled_records_no_metrics(receiver: OTLPReceiver) -> None:
    """The kill switch: no recorder, even with a destination."""
    client = rollout.Rollout(base_url=receiver.url, disabled=True)
    assert client._metrics is None
    client.shutdown()
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("config", "env", "endpoint"),
    [
        ({"base_url": "http://collector:4318"}, {}, "http://collector:4318/v1/metrics"),
        ({"base_url": "http://collector:4318/"}, {}, "http://collector:4318/v1/metrics"),
        ({"base_url": "http://collector:4318/v1/traces"}, {}, "http://collector:4318/v1/metrics"),
        (
            {},
            {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:9090/otlp/v1/metrics"},
            "http://m:9090/otlp/v1/metrics",
        ),
        ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http://c:4318/v1/metrics"),
        (
            {"base_url": "http://ours:4318"},
            {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://theirs:4318/v1/metrics"},
            "http://ours:4318/v1/metrics",
        ),
        ({}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, None),
        ({}, {}, None),
    ],
)
def test_metrics_endpoint(
    config: dict[str, str], env: dict[str, str], endpoint: str | None
) -> None:
    """Ours first (`base_url` + /v1/metrics), then OTEL_EXPORTER_OTLP_METRICS_ENDPOINT as is,
    then OTEL_EXPORTER_OTLP_ENDPOINT + /v1/metrics; a traces-only endpoint gets no metrics."""
    found = resolve_metrics_destination(resolve_config(env, **config), env)
    assert (found.endpoint if found is not None else None) == endpoint


def test_metric_variables_are_read() -> None:
    """Timeout, interval, compression and temporality from the OTEL_* variables."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
        "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "2500",
        "OTEL_METRIC_EXPORT_INTERVAL": "15000",
        "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "none",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "Delta",
    }
    found = resolve_metrics_destination(resolve_config(env), env)
    assert found == MetricsDestination(
        "http://c:4318/v1/metrics", {}, timeout=2.5, compression="none", interval=15.0, delta=True
    )
    lowmemory = {**env, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "lowmemory"}
    assert resolve_metrics_destination(resolve_config(lowmemory), lowmemory).delta  # type: ignore[union-attr]
    default = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    assert resolve_metrics_destination(resolve_config(default), default) == MetricsDestination(
        "http://c:4318/v1/metrics"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
            "soon",
            "environment variable OTEL_EXPORTER_OTLP_METRICS_TIMEOUT must be a positive number "
            "of milliseconds, got 'soon'",
        ),
        (
            "OTEL_METRIC_EXPORT_INTERVAL",
            "0",
            "environment variable OTEL_METRIC_EXPORT_INTERVAL must be a positive number of "
            "milliseconds, got '0'",
        ),
        (
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            "sometimes",
            "environment variable OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE must be one "
            "of cumulative, delta, lowmemory, got 'sometimes'",
        ),
        (
            "OTEL_EXPORTER_OTLP_COMPRESSION",
            "zstd",
            "environment variable OTEL_EXPORTER_OTLP_COMPRESSION must be one of gzip, deflate, "
            "none, got 'zstd'",
        ),
    ],
)
def test_bad_metric_variables_name_themselves(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    """Setup misuse is a ValueError naming the variable, raised by `Rollout(...)`."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as raised:
        rollout.Rollout(base_url="http://127.0.0.1:4318", console=False)
    assert str(raised.value) == message


def test_cumulative_points_keep_their_totals(receiver: OTLPReceiver) -> None:
    """By default each export carries the running totals since the client started."""
    client = rollout.Rollout(base_url=receiver.url, console=False)
    recorder(client).agent("support", None, 1.5)
    assert client.flush()
    recorder(client).agent("support", None, 2.5)
    assert client.flush()
    client.shutdown()
    first, second, *_ = receiver.points(sc.METRIC_GEN_AI_INVOKE_AGENT_DURATION)
    assert (first.count, first.sum, second.count, second.sum) == (1, 1.5, 2, 4.0)
    assert first.start_time_unix_nano == second.start_time_unix_nano
    assert second.temporality == "CUMULATIVE"


def test_delta_points_count_each_measurement_once(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta`: each export since the last."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")
    client = rollout.Rollout(base_url=receiver.url, console=False)
    recorder(client).agent("support", None, 1.5)
    assert client.flush()
    recorder(client).agent("support", None, 2.5)
    assert client.flush()
    assert client.flush()  # nothing new: no third request
    client.shutdown()
    first, second = receiver.points(sc.METRIC_GEN_AI_INVOKE_AGENT_DURATION)
    assert (first.count, first.sum, second.count, second.sum) == (1, 1.5, 1, 2.5)
    assert second.start_time_unix_nano == first.time_unix_nano
    assert second.temporality == "DELTA"
    assert len(receiver.metric_requests()) == 2


def test_interval_exports_without_a_flush(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`OTEL_METRIC_EXPORT_INTERVAL` (ms): the worker exports on its own."""
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "20")
    client = rollout.Rollout(base_url=receiver.url, console=False)
    recorder(client).workflow("nightly", None, 3.0)
    [request, *_] = receiver.wait_for_requests(1)
    assert request.points[0].metric == sc.METRIC_GEN_AI_WORKFLOW_DURATION
    client.shutdown()


def test_shutdown_sends_what_is_left(receiver: OTLPReceiver) -> None:
    """`shutdown()` exports the last measurements, once."""
    client = rollout.Rollout(base_url=receiver.url, console=False)
    recorder(client).workflow("nightly", "TimeoutError", 3.0)
    client.shutdown()
    client.shutdown()
    [point] = receiver.points()
    assert point.attributes == {
        sc.GEN_AI_WORKFLOW_NAME: "nightly",
        sc.ERROR_TYPE: "TimeoutError",
    }
    assert len(receiver.metric_requests()) == 1


def test_failed_exports_are_counted_and_warned_about_once(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """The collector takes spans but refuses metrics: `metric_export_failures` counts each
    refusal; one WARNING of ours names the endpoint, the status and the switch; the OTel
    exporter's own errors stay below WARNING; the next accepted export carries the point."""
    receiver.respond_with(200, 400, 400)  # the spans, then two metric exports
    client = rollout.Rollout(base_url=receiver.url, console=False)
    with client.trace("run"):
        pass
    recorder(client).tool("lookup_order", None, None, 0.05)
    with caplog.at_level(logging.WARNING):
        assert not client.flush()
        assert not client.flush()
    assert client.flush()
    stats = client.stats()
    assert (stats.metric_exports, stats.metric_export_failures) == (1, 2)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in warnings] == ["mv37.rollout"]
    assert warnings[0].getMessage() == (
        f"mv37.rollout: exporting metrics to {receiver.metrics_endpoint} failed, HTTP 400 "
        "Bad Request. Check that the URL is an OTLP/HTTP metrics endpoint (port 4318, not "
        "gRPC's 4317). The next export sends them again unless the temporality is delta; "
        "counted in stats().metric_export_failures. If the destination takes no metrics, "
        "metrics=False (ROLLOUT_METRICS=false) stops them. Logged once for this client."
    )
    [point] = receiver.points(sc.METRIC_GEN_AI_EXECUTE_TOOL_DURATION)
    assert point.count == 1
    client.shutdown()


def test_a_collector_refusing_spans_and_metrics_warns_once_about_the_spans(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Spans and metrics to the same collector both refused: the spans' WARNING names it;
    the metrics failure is counted and logged at debug level only."""
    receiver.respond_with(400, 400)
    client = rollout.Rollout(base_url=receiver.url, console=False)
    with client.trace("run"):
        pass
    recorder(client).tool("lookup_order", None, None, 0.05)
    with caplog.at_level(logging.DEBUG, logger="mv37.rollout"):
        assert not client.flush()
    stats = client.stats()
    assert (stats.export_failures, stats.metric_export_failures) == (1, 1)
    ours = [r for r in caplog.records if r.name == "mv37.rollout"]
    warnings = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("mv37.rollout: exporting spans to ")
    debug = [r.getMessage() for r in ours if r.levelno == logging.DEBUG]
    assert any(m.startswith("mv37.rollout: exporting metrics to ") for m in debug)
    client.shutdown()


def test_user_meter_provider_receives_the_instruments(receiver: OTLPReceiver) -> None:
    """`meter_provider=`: instruments on it, named and bucketed as registered; nothing is
    posted to /v1/metrics by us."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    client = rollout.Rollout(base_url=receiver.url, console=False, meter_provider=provider)
    recorder(client).tool("lookup_order", "support", None, 0.05)
    recorder(client).agent("support", "ValueError", 0.5)
    found = points_of(reader.get_metrics_data())
    [tool] = found[sc.METRIC_GEN_AI_EXECUTE_TOOL_DURATION]
    assert dict(tool.attributes) == {  # type: ignore[attr-defined]
        sc.GEN_AI_TOOL_NAME: "lookup_order",
        sc.GEN_AI_AGENT_NAME: "support",
    }
    assert tool.count == 1  # type: ignore[attr-defined]
    assert list(tool.explicit_bounds)[:3] == [0.01, 0.02, 0.04]  # type: ignore[attr-defined]
    [agent] = found[sc.METRIC_GEN_AI_INVOKE_AGENT_DURATION]
    assert dict(agent.attributes) == {  # type: ignore[attr-defined]
        sc.GEN_AI_AGENT_NAME: "support",
        sc.ERROR_TYPE: "ValueError",
    }
    assert client.flush()
    client.shutdown()
    assert receiver.metric_requests() == []
    provider.shutdown()


def test_global_sdk_meter_provider_is_used_as_it_is(receiver: OTLPReceiver) -> None:
    """An SDK MeterProvider installed globally gets the instruments (its in-memory reader
    sees them); it stays the global one, and nothing is posted to /v1/metrics."""
    reader = InMemoryMetricReader()
    with global_meter_provider(MeterProvider(metric_readers=[reader])) as provider:
        client = rollout.Rollout(base_url=receiver.url, console=False)
        recorder(client).workflow("nightly", None, 3.0)
        assert client.flush()
        client.shutdown()
        assert otel_metrics.get_meter_provider() is provider
        [point] = points_of(reader.get_metrics_data())[sc.METRIC_GEN_AI_WORKFLOW_DURATION]
        assert dict(point.attributes) == {sc.GEN_AI_WORKFLOW_NAME: "nightly"}  # type: ignore[attr-defined]
    assert receiver.metric_requests() == []
