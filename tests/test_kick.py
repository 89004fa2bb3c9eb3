"""The end of an `@agent` kicks the export worker: the trace leaves soon, without a flush,
and every run of a burst arrives (kicks while one is pending join it). Real
`OTLPReceiver`, a 60 s flush interval so only the kick can deliver."""

from __future__ import annotations

import asyncio

import pytest

import mv37.rollout as rollout
from mv37.rollout.testing import OTLPReceiver

RUNS = 300


@rollout.tool
def lookup(i: int) -> int:
    return i


@rollout.agent
def agent(i: int) -> int:
    return lookup(i)


@rollout.agent
async def async_agent(i: int) -> int:
    return lookup(i)


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_one_agent_run_is_delivered_without_a_flush(
    receiver: OTLPReceiver, asynchronous: bool
) -> None:
    rollout.init(base_url=receiver.url, console=False, flush_interval=60.0)
    if asynchronous:
        await async_agent(1)
    else:
        agent(1)
    spans = receiver.wait_for_spans(2)
    name = "async_agent" if asynchronous else "agent"
    assert sorted(s.name for s in spans) == ["execute_tool lookup", f"invoke_agent {name}"]


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_a_burst_of_agent_runs_arrives_whole_without_a_flush(
    receiver: OTLPReceiver, asynchronous: bool
) -> None:
    rollout.init(base_url=receiver.url, console=False, flush_interval=60.0)
    if asynchronous:
        await asyncio.gather(*(async_agent(i) for i in range(RUNS)))
    else:
        for i in range(RUNS):
            agent(i)
    spans = receiver.wait_for_spans(2 * RUNS)
    assert len(spans) == 2 * RUNS
    # Without coalescing, each run's kick woke the worker for an export of its own (the
    # control: about one request per run); batches of up to 512 spans need 2.
    print("REQUESTS", len(receiver.requests))
    assert len(receiver.requests) <= 12, len(receiver.requests)
    assert rollout.stats().spans_dropped == 0
