"""GenAI metrics from the integrations (issue 14): `wrap()`ed OpenAI/Anthropic calls and the
OpenAI Agents SDK bridge, whatever the trace sampling.

`wrap()` adds the response model and `server.address`/`server.port` (from the client's
`base_url`); the Agents bridge names the innermost agent (`gen_ai.agent.name`) on the
tool and model spans inside it and on their metrics, not the client's `agent_name`.
Real SDKs over in-memory transports (`fake_providers`, the bridge's `ModelServer`);
metrics read from a `MeterProvider` with an in-memory reader (`meter_provider=`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("openai", reason="needs the openai extra: pip install 'mv37-rollout[openai]'")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from mv37.rollout import semconv as sc
from mv37.rollout.integrations import wrap
from mv37.rollout.testing import capture_spans

if TYPE_CHECKING:
    from tests import fake_providers as fp
else:
    import fake_providers as fp

pytestmark = pytest.mark.usefixtures("metrics_on")  # ROLLOUT_METRICS unset: on
KINDS = pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def histograms(reader: InMemoryMetricReader, name: str) -> dict[frozenset[Any], Any]:
    """The histogram points of metric `name` by their attribute set."""
    data = reader.get_metrics_data()
    found: dict[frozenset[Any], Any] = {}
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    assert isinstance(point, HistogramDataPoint)
                    found[frozenset(dict(point.attributes or {}).items())] = point
    return found


@KINDS
@pytest.mark.parametrize("rate", [1.0, 0.0])
async def test_wrapped_openai_calls_count_tokens_with_models_and_server(
    is_async: bool, rate: float
) -> None:
    """Two chat completions through `wrap()`: token usage per type with the request and
    response models, provider and server; exact when every trace is sampled out."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    with capture_spans(meter_provider=meter_provider, sample_rate=rate) as captured:
        api = fp.FakeAPI()
        api.reply("openai_chat_completion.json", times=2)
        client = wrap(fp.openai_client(api, is_async=is_async))
        for _ in range(2):
            await fp.resolve(client.chat.completions.create(model="gpt-4o", messages=MESSAGES))
        spans = captured.as_dicts()
    base = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
        sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
        sc.SERVER_ADDRESS: "fake.openai.test",
        sc.SERVER_PORT: 443,
    }
    tokens = histograms(reader, sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE)
    assert set(tokens) == {
        frozenset({**base, sc.GEN_AI_TOKEN_TYPE: "input"}.items()),
        frozenset({**base, sc.GEN_AI_TOKEN_TYPE: "output"}.items()),
    }
    tokens_in = tokens[frozenset({**base, sc.GEN_AI_TOKEN_TYPE: "input"}.items())]
    tokens_out = tokens[frozenset({**base, sc.GEN_AI_TOKEN_TYPE: "output"}.items())]
    assert (tokens_in.count, tokens_in.sum) == (2, 2 * 1117)
    assert (tokens_out.count, tokens_out.sum) == (2, 2 * 46)
    [duration] = histograms(reader, sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION).values()
    assert duration.count == 2
    assert len(spans) == (4 if rate == 1.0 else 0)  # each call: its one-call trace and LLM
    meter_provider.shutdown()


@KINDS
async def test_a_failing_wrapped_call_counts_its_error(is_async: bool) -> None:
    """A provider error: the operation duration carries the SDK's exception class."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    with capture_spans(meter_provider=meter_provider):
        api = fp.FakeAPI()
        api.reply_body(b'{"error": {"message": "boom"}}', "application/json", status=500)
        client = wrap(fp.openai_client(api, is_async=is_async))
        with pytest.raises(Exception, match="boom"):
            await fp.resolve(client.chat.completions.create(model="gpt-4o", messages=MESSAGES))
    [(attributes, point)] = histograms(reader, sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION).items()
    assert dict(attributes)[sc.ERROR_TYPE] == "InternalServerError"
    assert point.count == 1
    assert histograms(reader, sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE) == {}
    meter_provider.shutdown()
