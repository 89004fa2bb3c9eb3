"""GenAI metrics through a real collector hop: SDK -> rotel -> our receiver (issue 14).

rotel (0.0.1a15) receives OTLP metrics on /v1/metrics and forwards them over OTLP/HTTP.
An agent runs with `base_url` at rotel; what the SDK aggregated (its own cumulative
collection, the ground truth) must arrive behind rotel unaltered: every metric and
attribute set with its count, sum, buckets and bounds (a counter: its value), scope and
resource.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, NumberDataPoint

from e2e.servers import Rotel
from mv37 import rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import OTLPReceiver, reset_global_tracer_provider


@rollout.tool("lookup_order")
def lookup_order(order_id: int) -> str:
    if order_id < 0:
        raise KeyError(order_id)
    return "shipped"


@rollout.agent("support")
def support(order_id: int) -> str:
    trace = rollout.current_trace()
    assert trace is not None
    with trace.llm("answer", model="gpt-4o-mini", provider="openai") as span:
        span.set_usage(input_tokens=120, output_tokens=8, cost_usd=0.0004)
    try:
        return lookup_order(order_id)
    except KeyError:
        return "unknown"


@pytest.fixture
def behind_rotel() -> Iterator[tuple[OTLPReceiver, Rotel]]:
    with (
        OTLPReceiver() as receiver,
        tempfile.TemporaryDirectory(prefix="mv37-e2e-rotel-metrics-") as workdir,
    ):
        rotel = Rotel(receiver.url, Path(workdir), metrics=True)
        try:
            yield receiver, rotel
        finally:
            rollout.shutdown()
            reset_global_tracer_provider()
            rotel.stop()


def test_metrics_arrive_through_rotel_unaltered(
    behind_rotel: tuple[OTLPReceiver, Rotel],
) -> None:
    receiver, rotel = behind_rotel
    client = rollout.init(base_url=rotel.url, console=False, service_name="support_svc")
    for order_id in (1, 2, -1):
        support(order_id)
    pipeline = client._pipeline
    assert pipeline is not None
    assert pipeline.metrics is not None
    delivery = pipeline.metrics.delivery
    assert delivery is not None
    assert rollout.flush()
    truth = delivery.store.collect(delta=False)  # cumulative: what the flush carried
    expected: dict[tuple[str, str], object] = {
        (m.name, repr(sorted(dict(p.attributes or {}).items()))): p
        for m in truth
        for p in m.data.data_points
    }

    points = receiver.wait_for_points(len(expected), timeout=30)
    assert len(points) == len(expected)
    for point in points:
        truth_point = expected[(point.metric, repr(sorted(point.attributes.items())))]
        if isinstance(truth_point, HistogramDataPoint):
            assert (point.count, point.sum) == (truth_point.count, truth_point.sum)
            assert list(point.bucket_counts) == list(truth_point.bucket_counts)
            assert list(point.explicit_bounds) == list(truth_point.explicit_bounds)
        else:
            assert isinstance(truth_point, NumberDataPoint)
            assert point.value == pytest.approx(truth_point.value)
        assert point.scope_name == "mv37.rollout"
        assert point.resource[sc.SERVICE_NAME] == "support_svc"
    tools = {
        tuple(sorted(p.attributes.items())): p.count
        for p in points
        if p.metric == sc.METRIC_GEN_AI_EXECUTE_TOOL_DURATION
    }
    assert tools == {
        ((sc.GEN_AI_AGENT_NAME, "support"), (sc.GEN_AI_TOOL_NAME, "lookup_order")): 2,
        (
            (sc.ERROR_TYPE, "KeyError"),
            (sc.GEN_AI_AGENT_NAME, "support"),
            (sc.GEN_AI_TOOL_NAME, "lookup_order"),
        ): 1,
    }
