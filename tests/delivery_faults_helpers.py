"""The instrumented program and helpers shared by the test_delivery_faults_* modules.

The program is agent -> task -> tool, sync and async; `run()` calls it, `assert_runs()`
checks what a receiver decoded from runs, `accounted()` balances `stats()`.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass

import pytest

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import ReceivedSpan

KEY = "sk-test-SECRET-delivery-faults-5f0c1e2d3b4a"
FAIL_FAST_MS = "500"
"""Export timeout where exports should fail: less than the exporter's first backoff (~1 s)."""
HOLD_MS = "8000"
"""Export timeout where a held request must outlast the test's own steps."""

MODES = ["sync", "async"]


class Boom(Exception):
    """The user's own exception; must reach the caller unchanged."""


# -- the instrumented program: agent -> task -> tool, sync and async ------------------------


RAISED: list[Boom] = []
"""Every `Boom` the tools raised, to check the caller gets that very object."""


def boom(n: int) -> Boom:
    error = Boom(f"bad n {n}")
    RAISED.append(error)
    return error


@rollout.tool("fetch")
def fetch(n: int) -> dict[str, int]:
    if n < 0:
        raise boom(n)
    return {"n": n, "square": n * n}


@rollout.task("plan")
def plan(n: int) -> int:
    return fetch(n)["square"]


@rollout.agent("solver")
def solver(n: int) -> int:
    return plan(n) + 1


@rollout.tool("afetch")
async def afetch(n: int) -> dict[str, int]:
    await asyncio.sleep(0)
    if n < 0:
        raise boom(n)
    return {"n": n, "square": n * n}


@rollout.task("aplan")
async def aplan(n: int) -> int:
    return (await afetch(n))["square"]


@rollout.agent("asolver")
async def asolver(n: int) -> int:
    return await aplan(n) + 1


@dataclass(frozen=True)
class Names:
    agent: str
    task: str
    tool: str


NAMES = {
    "sync": Names("invoke_agent solver", "plan", "execute_tool fetch"),
    "async": Names("invoke_agent asolver", "aplan", "execute_tool afetch"),
}
SPANS_PER_RUN = 3


async def run(mode: str, n: int) -> int:
    """One agent run (3 spans): the sync agent called directly, or the async one awaited."""
    return await asolver(n) if mode == "async" else solver(n)


def expected(n: int) -> int:
    return n * n + 1


async def flush(mode: str, timeout: float) -> bool:
    return await rollout.aflush(timeout=timeout) if mode == "async" else rollout.flush(timeout)


# -- helpers -----------------------------------------------------------------------------------


def export_timeout(monkeypatch: pytest.MonkeyPatch, millis: str) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", millis)


def accounted(stats: rollout.RolloutStats) -> int:
    """Every started span is exactly one of: exported, failed, dropped, queued, in flight."""
    return (
        stats.spans_exported
        + stats.spans_failed
        + stats.spans_dropped
        + stats.spans_queued
        + stats.spans_in_flight
    )


def tool_input(span: ReceivedSpan) -> int:
    value = json.loads(str(span.attributes[sc.INPUT_VALUE]))
    assert isinstance(value, dict)
    return int(value["n"])


def assert_runs(spans: list[ReceivedSpan], mode: str, ns: list[int]) -> None:
    """`spans` are exactly the agent runs for `ns`, each one whole trace, linked correctly."""
    names = NAMES[mode]
    assert len({s.span_id for s in spans}) == len(spans), "a span arrived twice"
    traces: dict[str, dict[str, ReceivedSpan]] = defaultdict(dict)
    for span in spans:
        assert span.name not in traces[span.trace_id], f"{span.name} twice in a trace"
        traces[span.trace_id][span.name] = span
    inputs = []
    for trace_id, group in traces.items():
        assert set(group) == {names.agent, names.task, names.tool}, (trace_id, sorted(group))
        agent, task, tool = group[names.agent], group[names.task], group[names.tool]
        assert agent.parent_span_id is None
        assert task.parent_span_id == agent.span_id
        assert tool.parent_span_id == task.span_id
        assert agent.attributes[sc.ROLLOUT_SPAN_TYPE] == "agent"
        assert tool.attributes[sc.ROLLOUT_SPAN_TYPE] == "tool"
        inputs.append(tool_input(tool))
    assert sorted(inputs) == sorted(ns)
