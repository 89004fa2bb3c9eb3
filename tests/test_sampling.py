"""Per-trace sampling: whole traces kept or dropped, decided by the trace id."""

from __future__ import annotations

import asyncio
import math
from collections import Counter, defaultdict

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

import mv37.rollout as rollout
from mv37.rollout.testing import capture_spans

TRACES = 2000


@rollout.tool("step")
def step(i: int) -> int:
    return i


@rollout.task("plan")
def plan(i: int) -> int:
    return step(i) + step(i + 1)


@rollout.agent("sampled_agent")
def agent(i: int) -> int:
    with otel_trace.get_tracer("third.party").start_as_current_span("foreign"):
        return plan(i)


@rollout.tool("astep")
async def astep(i: int) -> int:
    await asyncio.sleep(0)
    return i


@rollout.agent("async_sampled_agent")
async def aagent(i: int) -> int:
    return await astep(i) + await astep(i + 1) + await astep(i + 2)


SPANS_PER_TRACE = {"sync": 5, "async": 4}


async def _run(mode: str, count: int) -> None:
    if mode == "async":
        await asyncio.gather(*(aagent(i) for i in range(count)))
    else:
        for i in range(count):
            assert agent(i) == 2 * i + 1


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("rate", [0.0, 1.0, 0.3])
async def test_whole_traces_are_kept_at_the_configured_rate(mode: str, rate: float) -> None:
    with capture_spans(sample_rate=rate) as captured:
        await _run(mode, TRACES)
        spans = captured.exporter.get_finished_spans()
        stats = rollout.stats()
    per_trace: defaultdict[int, list[str]] = defaultdict(list)
    for span in spans:
        assert span.context is not None
        per_trace[span.context.trace_id].append(span.name)
    # Never a partial trace: every kept trace has all of its spans.
    sizes = Counter(len(names) for names in per_trace.values())
    assert set(sizes) <= {SPANS_PER_TRACE[mode]}
    kept = len(per_trace)
    assert kept + stats.dropped["sampled_out"] == TRACES
    if rate in (0.0, 1.0):
        assert kept == TRACES * rate
    else:
        # Binomial(2000, 0.3): sd ~ 20.5; 5 sd either side.
        spread = 5 * math.sqrt(TRACES * rate * (1 - rate))
        assert abs(kept - TRACES * rate) < spread
    # The decision is a function of the trace id alone.
    sampler = TraceIdRatioBased(rate)
    bound = sampler.bound
    assert all((trace_id & 0xFFFFFFFFFFFFFFFF) < bound for trace_id in per_trace)


def test_sample_rate_zero_is_none_not_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_SAMPLE_RATE", "0")
    with capture_spans() as captured:
        agent(1)
        assert captured.exporter.get_finished_spans() == ()
    assert rollout.resolve_config(sample_rate=0.0).sample_rate == 0.0


def test_code_inside_a_sampled_out_trace_still_sees_its_trace() -> None:
    seen: list[str | None] = []

    @rollout.agent("inspect")
    def inspect() -> str:
        trace = rollout.current_trace()
        seen.append(trace.trace_id if trace is not None else None)
        if trace is not None:
            trace.message(role="user", content="hi")
            trace.feedback("thumbs", True)
        return "ok"

    with capture_spans(sample_rate=0.0) as captured:
        assert inspect() == "ok"
        assert captured.exporter.get_finished_spans() == ()
    assert len(seen) == 1
    assert seen[0] is not None
    assert len(seen[0]) == 32
    assert int(seen[0], 16) != 0
