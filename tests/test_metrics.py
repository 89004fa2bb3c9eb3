"""GenAI metrics recorded where operations end (issue 14): what each scope records.

Over a real OTLP/HTTP receiver on 127.0.0.1 decoding `ExportMetricsServiceRequest`:
token sums and counts per type and model, each duration metric with its count and
`error.type` on a failing tool, the innermost agent's name, no user/session/trace id in
any point, exact sums at `sample_rate=0`, nothing when disabled or switched off. Every
sync behaviour has its async twin (`mode`). A user's global SDK `MeterProvider` with an
in-memory reader receives the same instruments. Flushing is the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import OTLPReceiver, ReceivedPoint

pytestmark = pytest.mark.usefixtures("metrics_on")  # ROLLOUT_METRICS unset: on
MODES = pytest.mark.parametrize("mode", ["sync", "async"])
TOOL = sc.METRIC_GEN_AI_EXECUTE_TOOL_DURATION
AGENT = sc.METRIC_GEN_AI_INVOKE_AGENT_DURATION
WORKFLOW = sc.METRIC_GEN_AI_WORKFLOW_DURATION
LLM = sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION
TOKENS = sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE
COST = sc.METRIC_ROLLOUT_CLIENT_COST
CHAT = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai"}


# -- the agent every test runs ---------------------------------------------------------------


@rollout.tool("lookup_order")
def lookup_order(order_id: int) -> dict[str, Any]:
    return {"id": order_id, "status": "shipped"}


@rollout.tool("refund")
def refund(order_id: int) -> None:
    raise ValueError(f"order {order_id} cannot be refunded")


@rollout.agent("support")
def support(order_id: int, model: str) -> str:
    lookup_order(order_id)
    with contextlib.suppress(ValueError):
        refund(order_id)
    trace = rollout.current_trace()
    assert trace is not None
    with trace.llm("answer", model=model, provider="openai") as span:
        span.set_usage(input_tokens=100 + order_id, output_tokens=10, cost_usd=0.002)
    return "done"


@rollout.tool("alookup_order")
async def alookup_order(order_id: int) -> dict[str, Any]:
    return {"id": order_id, "status": "shipped"}


@rollout.tool("arefund")
async def arefund(order_id: int) -> None:
    raise ValueError(f"order {order_id} cannot be refunded")


@rollout.agent("support")
async def asupport(order_id: int, model: str) -> str:
    await alookup_order(order_id)
    with contextlib.suppress(ValueError):
        await arefund(order_id)
    trace = rollout.current_trace()
    assert trace is not None
    async with trace.llm("answer", model=model, provider="openai") as span:
        span.set_usage(input_tokens=100 + order_id, output_tokens=10, cost_usd=0.002)
    return "done"


def run_agents(mode: str, calls: list[tuple[int, str]]) -> None:
    """`support(order, model)` for each call, for the user u-1 in session s-1."""
    with rollout.user(user_id="u-1", session_id="s-1"):
        if mode == "sync":
            for order_id, model in calls:
                support(order_id, model)
        else:

            async def main() -> None:
                for order_id, model in calls:
                    await asupport(order_id, model)

            asyncio.run(main())


def tool_names(mode: str) -> tuple[str, str]:
    return ("lookup_order", "refund") if mode == "sync" else ("alookup_order", "arefund")


def by_attributes(points: list[ReceivedPoint]) -> dict[frozenset[tuple[str, object]], Any]:
    """The last point of each attribute set (cumulative: the totals)."""
    return {frozenset(p.attributes.items()): p for p in points}


@pytest.fixture
def client(receiver: OTLPReceiver) -> Iterator[rollout.Rollout]:
    """The global client, exporting to the receiver (the console off)."""
    yield rollout.init(base_url=receiver.url, console=False, api_key="sk-metrics-test")
    rollout.shutdown()


# -- what is recorded --------------------------------------------------------------------------


@MODES
def test_each_operation_is_counted_with_its_attributes(
    client: rollout.Rollout, receiver: OTLPReceiver, mode: str
) -> None:
    """Three agent runs over two models: agent, tool (ok and failing), LLM durations and
    token usage per type and model, cost; each with exactly the registered attributes."""
    run_agents(mode, [(1, "gpt-4o"), (2, "gpt-4o"), (3, "gpt-4o-mini")])
    assert rollout.flush()
    ok_tool, failing_tool = tool_names(mode)
    points = receiver.points()
    [agent] = [p for p in points if p.metric == AGENT]
    assert agent.attributes == {sc.GEN_AI_AGENT_NAME: "support"}
    assert agent.count == 3
    assert (agent.unit, agent.kind) == ("s", "histogram")
    tools = [p for p in points if p.metric == TOOL]
    ok = by_attributes(tools)[
        frozenset({sc.GEN_AI_TOOL_NAME: ok_tool, sc.GEN_AI_AGENT_NAME: "support"}.items())
    ]
    failed = by_attributes(tools)[
        frozenset(
            {
                sc.GEN_AI_TOOL_NAME: failing_tool,
                sc.GEN_AI_AGENT_NAME: "support",
                sc.ERROR_TYPE: "ValueError",
            }.items()
        )
    ]
    assert (ok.count, failed.count) == (3, 3)
    series = by_attributes([p for p in points if p.metric == TOKENS])
    for model, calls, input_sum in (("gpt-4o", 2, 203.0), ("gpt-4o-mini", 1, 103.0)):
        base = {**CHAT, sc.GEN_AI_REQUEST_MODEL: model, sc.GEN_AI_AGENT_NAME: "support"}
        tokens_in = series[frozenset({**base, sc.GEN_AI_TOKEN_TYPE: "input"}.items())]
        tokens_out = series[frozenset({**base, sc.GEN_AI_TOKEN_TYPE: "output"}.items())]
        assert (tokens_in.count, tokens_in.sum) == (calls, input_sum)
        assert (tokens_out.count, tokens_out.sum) == (calls, 10.0 * calls)
        assert tokens_in.unit == "{token}"
        llm = by_attributes([p for p in points if p.metric == LLM])[frozenset(base.items())]
        assert llm.count == calls
        cost = by_attributes([p for p in points if p.metric == COST])[frozenset(base.items())]
        assert cost.value == pytest.approx(0.002 * calls)
        assert (cost.kind, cost.is_monotonic, cost.unit) == ("sum", True, "{USD}")
    assert {p.metric for p in points} == {AGENT, TOOL, LLM, TOKENS, COST}


@MODES
def test_no_point_carries_an_id_or_a_payload(
    client: rollout.Rollout, receiver: OTLPReceiver, mode: str
) -> None:
    """Every attribute of every point is a registered metric attribute: never the user,
    session, conversation or trace id, nor an argument or result."""
    run_agents(mode, [(41, "gpt-4o")])
    assert rollout.flush()
    allowed = {key for spec in sc.METRICS for key in spec.attributes}
    body = b"".join(r.body for r in receiver.metric_requests())
    for point in receiver.points():
        assert set(point.attributes) <= allowed, point.attributes
    for secret in (b"u-1", b"s-1", b"shipped", b"cannot be refunded", b"sk-metrics-test"):
        assert secret not in body
    trace_ids = {span.trace_id.encode() for span in receiver.spans()}
    assert trace_ids
    assert not any(trace_id in body for trace_id in trace_ids)


@MODES
@pytest.mark.parametrize("rate", [0.0, 0.5])
def test_metrics_are_exact_whatever_the_sampling(
    receiver: OTLPReceiver, mode: str, rate: float
) -> None:
    """Sampled-out traces export no spans but every operation and token is counted."""
    rollout.init(base_url=receiver.url, console=False, sample_rate=rate)
    calls = [(i, "gpt-4o") for i in range(20)]
    run_agents(mode, calls)
    assert rollout.flush()
    points = receiver.points()
    [agent] = by_attributes([p for p in points if p.metric == AGENT]).values()
    assert agent.count == 20
    tools = by_attributes([p for p in points if p.metric == TOOL]).values()
    assert sorted(p.count for p in tools) == [20, 20]
    tokens = by_attributes([p for p in points if p.metric == TOKENS])
    inputs = [p for p in tokens.values() if p.attributes[sc.GEN_AI_TOKEN_TYPE] == "input"]
    assert [(p.count, p.sum) for p in inputs] == [(20, float(sum(100 + i for i in range(20))))]
    spans = len(receiver.spans())
    if rate == 0.0:
        assert spans == 0
        assert rollout.stats().dropped["sampled_out"] == 20
    else:
        assert spans < 20 * 4  # some traces were dropped, none of their operations
    rollout.shutdown()


@MODES
def test_disabled_records_nothing(receiver: OTLPReceiver, mode: str) -> None:
    """The kill switch: the agent runs, no request of any kind is made."""
    rollout.init(base_url=receiver.url, disabled=True)
    run_agents(mode, [(1, "gpt-4o")])
    assert rollout.flush()
    rollout.shutdown()
    assert receiver.requests == []


@MODES
def test_switched_off_sends_no_metrics_but_the_spans(receiver: OTLPReceiver, mode: str) -> None:
    """`metrics=False`: the spans are exported, no /v1/metrics request is made."""
    rollout.init(base_url=receiver.url, console=False, metrics=False)
    run_agents(mode, [(1, "gpt-4o")])
    assert rollout.flush()
    rollout.shutdown()
    assert len(receiver.spans()) == 4
    assert receiver.metric_requests() == []


@MODES
def test_a_workflow_is_counted_with_its_error(receiver: OTLPReceiver, mode: str) -> None:
    """`rollout.trace` is a workflow: its name, and `error.type` when it failed."""
    rollout.init(base_url=receiver.url, console=False, agent_name="billing_service")

    async def body() -> None:
        for failing in (False, True):
            try:
                if mode == "sync":
                    with rollout.trace("nightly_sync"):
                        if failing:
                            raise TimeoutError("late")
                else:
                    async with rollout.trace("nightly_sync"):
                        if failing:
                            raise TimeoutError("late")
            except TimeoutError:
                pass

    asyncio.run(body())
    assert rollout.flush()
    workflows = by_attributes(receiver.points(WORKFLOW))
    ok = workflows[frozenset({sc.GEN_AI_WORKFLOW_NAME: "nightly_sync"}.items())]
    failed = workflows[
        frozenset({sc.GEN_AI_WORKFLOW_NAME: "nightly_sync", sc.ERROR_TYPE: "TimeoutError"}.items())
    ]
    assert (ok.count, failed.count) == (1, 1)
    assert ok.explicit_bounds[:3] == (1.0, 5.0, 10.0)


def test_a_tool_outside_any_agent_has_the_clients_agent_name(receiver: OTLPReceiver) -> None:
    """No `@agent` around a tool: its agent is the client's `agent_name` (as on its span)."""
    rollout.init(base_url=receiver.url, console=False, agent_name="billing_service")
    with rollout.trace("batch"):
        lookup_order(7)
    with rollout.trace("batch"), rollout.trace("inner"):
        lookup_order(8)
    assert rollout.flush()
    [tool] = receiver.points(TOOL)
    assert tool.attributes == {
        sc.GEN_AI_TOOL_NAME: "lookup_order",
        sc.GEN_AI_AGENT_NAME: "billing_service",
    }
    assert tool.count == 2


def test_a_workflow_inside_an_agent_says_the_agents_name_on_its_spans(
    receiver: OTLPReceiver,
) -> None:
    """`@trace` inside `@agent("support")` with `agent_name="billing_service"`: the inner
    trace's spans and the tool's metrics name `support`, the innermost agent."""
    rollout.init(base_url=receiver.url, console=False, agent_name="billing_service")

    @rollout.trace("inner_step")
    def inner_step() -> None:
        lookup_order(9)

    @rollout.agent("support")
    def agent() -> None:
        inner_step()

    agent()
    assert rollout.flush()
    names = {s.name: s.attributes.get(sc.GEN_AI_AGENT_NAME) for s in receiver.spans()}
    assert names == {
        "invoke_agent support": "support",
        "invoke_workflow inner_step": "support",
        "execute_tool lookup_order": "support",
    }
    [tool] = receiver.points(TOOL)
    assert tool.attributes[sc.GEN_AI_AGENT_NAME] == "support"


@MODES
def test_a_span_ended_with_an_error_string_counts_as_failed(
    client: rollout.Rollout, receiver: OTLPReceiver, mode: str
) -> None:
    """`span.end(error="...")` on an LLM span (streaming): `error.type` is `error`."""

    async def body() -> None:
        if mode == "sync":
            with rollout.trace("stream") as trace:
                span = trace.llm("answer", model="gpt-4o", provider="openai")
                span.__enter__()
                span.end(error="stream broke")
        else:
            async with rollout.trace("stream") as trace:
                span = trace.llm("answer", model="gpt-4o", provider="openai")
                await span.__aenter__()
                span.end(error="stream broke")

    asyncio.run(body())
    assert rollout.flush()
    [llm] = receiver.points(LLM)
    assert llm.attributes == {**CHAT, sc.GEN_AI_REQUEST_MODEL: "gpt-4o", sc.ERROR_TYPE: "error"}
    assert receiver.points(TOKENS) == []


def test_a_span_with_no_trace_records_nothing(
    client: rollout.Rollout, receiver: OTLPReceiver
) -> None:
    """`client.span("llm")` with no active trace is a placeholder: no operation, no metric."""
    with client.span("llm", model="gpt-4o", provider="openai") as span:
        span.set_usage(input_tokens=5, output_tokens=1)
    assert rollout.flush()
    assert receiver.metric_requests() == []


# -- a user's MeterProvider ------------------------------------------------------------------


@pytest.fixture
def global_reader() -> Iterator[InMemoryMetricReader]:
    """An SDK MeterProvider with an in-memory reader installed globally for the test."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics_internal._METER_PROVIDER_SET_ONCE._done = False
    otel_metrics.set_meter_provider(provider)
    yield reader
    provider.shutdown()
    metrics_internal._METER_PROVIDER_SET_ONCE._done = False
    metrics_internal._METER_PROVIDER = None


@MODES
def test_a_global_meter_provider_receives_the_instruments(
    global_reader: InMemoryMetricReader, receiver: OTLPReceiver, mode: str
) -> None:
    """With an SDK MeterProvider installed globally, its in-memory reader gets every
    instrument (units and buckets as registered); nothing goes to /v1/metrics."""
    rollout.init(base_url=receiver.url, console=False)
    run_agents(mode, [(1, "gpt-4o"), (2, "gpt-4o")])
    data = global_reader.get_metrics_data()
    assert data is not None
    found = {
        m.name: m
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        if sm.scope.name == "mv37.rollout"
        for m in sm.metrics
    }
    assert set(found) == {AGENT, TOOL, LLM, TOKENS, COST}
    assert found[TOKENS].unit == "{token}"

    def histogram_points(name: str) -> list[HistogramDataPoint]:
        return [p for p in found[name].data.data_points if isinstance(p, HistogramDataPoint)]

    tokens = {dict(p.attributes or {})[sc.GEN_AI_TOKEN_TYPE]: p for p in histogram_points(TOKENS)}
    assert (tokens["input"].count, tokens["input"].sum) == (2, 203)
    assert list(tokens["input"].explicit_bounds)[:4] == [1, 4, 16, 64]
    assert sorted(p.count for p in histogram_points(TOOL)) == [2, 2]
    rollout.shutdown()
    assert receiver.metric_requests() == []
