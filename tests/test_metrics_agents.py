"""The innermost agent's name through the OpenAI Agents SDK bridge, on spans and metrics
(issue 14): a tool or model span inside an agent named `weather_agent` says
`weather_agent`, not the client's `agent_name`, and so do their metrics.

Driven by the real `agents` package over the in-memory model server of
`test_agents_bridge.py` (its fixtures and helpers are reused).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip(
    "agents", reason="needs the openai-agents extra: pip install 'mv37-rollout[openai-agents]'"
)

from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader  # noqa: E402

import mv37.rollout as rollout  # noqa: E402
from mv37.rollout import semconv as sc  # noqa: E402
from mv37.rollout.testing import capture_spans  # noqa: E402

if TYPE_CHECKING:
    from tests.test_agents_bridge import (
        MODEL,
        ModelServer,
        _agents_tracing,
        call,
        say,
        sync_run,
        weather_agent,
    )
else:
    from test_agents_bridge import (
        MODEL,
        ModelServer,
        _agents_tracing,  # noqa: F401 - the bridge tests' autouse fixture, here too
        call,
        say,
        sync_run,
        weather_agent,
    )


pytestmark = pytest.mark.usefixtures("metrics_on")  # ROLLOUT_METRICS unset: on


def histograms(reader: InMemoryMetricReader, name: str) -> dict[frozenset[Any], Any]:
    data = reader.get_metrics_data()
    found: dict[frozenset[Any], Any] = {}
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points if metric.name == name else ():
                    assert isinstance(point, HistogramDataPoint)
                    found[frozenset(dict(point.attributes or {}).items())] = point
    return found


@pytest.mark.parametrize("rate", [1.0, 0.0])
def test_spans_and_metrics_inside_an_agent_name_that_agent(rate: float) -> None:
    """A run with one tool call and two model calls, `agent_name="billing_service"`."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    with capture_spans(
        agent_name="billing_service", meter_provider=provider, sample_rate=rate
    ) as captured:
        rollout.instrument_openai_agents()
        server = ModelServer([call("get_weather", '{"city": "Rome"}')], [say("sunny")])
        assert sync_run(weather_agent(server), "weather in Rome?").final_output == "sunny"
        spans = captured.as_dicts()
    if rate == 1.0:
        named = {
            s["type"]: s["attributes"].get(sc.GEN_AI_AGENT_NAME)
            for s in spans
            if s["type"] in ("agent", "tool", "llm")
        }
        assert named == {"agent": "weather_agent", "tool": "weather_agent", "llm": "weather_agent"}
        for span in spans:
            if span["type"] in ("tool", "llm"):
                assert span["attributes"][sc.ROLLOUT_AGENT_NAME] == "weather_agent"
    else:
        assert spans == []
    [agent] = histograms(reader, sc.METRIC_GEN_AI_INVOKE_AGENT_DURATION).items()
    assert dict(agent[0]) == {sc.GEN_AI_AGENT_NAME: "weather_agent"}
    [tool] = histograms(reader, sc.METRIC_GEN_AI_EXECUTE_TOOL_DURATION).items()
    assert dict(tool[0]) == {
        sc.GEN_AI_TOOL_NAME: "get_weather",
        sc.GEN_AI_AGENT_NAME: "weather_agent",
    }
    tokens = histograms(reader, sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE)
    by_type = {dict(k)[sc.GEN_AI_TOKEN_TYPE]: (dict(k), p) for k, p in tokens.items()}
    attrs, tokens_in = by_type["input"]
    assert attrs == {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: MODEL,
        sc.GEN_AI_RESPONSE_MODEL: MODEL,
        sc.GEN_AI_AGENT_NAME: "weather_agent",
        sc.GEN_AI_TOKEN_TYPE: "input",
    }
    assert (tokens_in.count, tokens_in.sum) == (2, 40)
    assert (by_type["output"][1].count, by_type["output"][1].sum) == (2, 10)
    provider.shutdown()
