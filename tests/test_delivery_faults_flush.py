"""sync_mode, flush() and aflush() against a real OTLP receiver: sync_mode exports each span
before the call returns, flush() returning True means delivered, aflush() waits for a
stalled collector without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import pytest

import mv37.rollout as rollout
from mv37.rollout.testing import OTLPReceiver

if TYPE_CHECKING:
    from tests import delivery_faults_helpers as faults
else:
    import delivery_faults_helpers as faults


# -- sync_mode ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", faults.MODES)
async def test_sync_mode_exports_each_span_before_the_call_returns(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    faults.export_timeout(monkeypatch, faults.FAIL_FAST_MS)
    rollout.init(base_url=receiver.url, api_key=faults.KEY, console=False, sync_mode=True)
    names = faults.NAMES[mode]
    seen_inside: list[list[str]] = []

    @rollout.agent("inline")
    def inline(n: int) -> int:
        value = faults.plan(n)
        seen_inside.append([s.name for s in receiver.spans()])
        return value

    @rollout.agent("ainline")
    async def ainline(n: int) -> int:
        value = await faults.aplan(n)
        seen_inside.append([s.name for s in receiver.spans()])
        return value

    assert (await ainline(4) if mode == "async" else inline(4)) == 16
    # Inside the agent, its finished children had already been delivered.
    assert seen_inside == [[names.tool, names.task]]
    assert len(receiver.spans()) == faults.SPANS_PER_RUN  # and the agent itself, without flush()

    assert await faults.run(mode, 2) == faults.expected(2)
    assert len(receiver.spans()) == 2 * faults.SPANS_PER_RUN
    assert rollout.stats().spans_exported == 2 * faults.SPANS_PER_RUN

    receiver.stop()  # collector gone: calls still return, errors still pass through
    assert await faults.run(mode, 3) == faults.expected(3)
    with pytest.raises(faults.Boom, match="bad n -3"):
        await faults.run(mode, -3)
    stats = rollout.stats()
    assert stats.spans_failed == 2 * faults.SPANS_PER_RUN
    assert stats.export_failures == 2 * faults.SPANS_PER_RUN  # one export per span
    assert stats.spans_exported == 2 * faults.SPANS_PER_RUN
    assert stats.spans_queued == 0
    assert faults.accounted(stats) == stats.spans_started == 4 * faults.SPANS_PER_RUN
    # flush() owns up to the failed exports once, like the batch queue's flush.
    assert await faults.flush(mode, 5.0) is False
    assert await faults.flush(mode, 5.0) is True


@pytest.mark.parametrize("mode", faults.MODES)
async def test_sync_mode_counts_the_span_being_sent_in_flight(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    faults.export_timeout(monkeypatch, faults.HOLD_MS)
    client = rollout.init(base_url=receiver.url, api_key=faults.KEY, console=False, sync_mode=True)
    latch = receiver.stall()
    results: list[int] = []

    def call() -> None:  # the caller's thread, stuck in the export of its first span
        results.append(asyncio.run(faults.run(mode, 6)) if mode == "async" else faults.solver(6))

    caller = threading.Thread(target=call, name="caller", daemon=True)
    caller.start()
    try:
        assert latch.arrived.wait(5.0)
        stats = client.stats()
        assert stats.spans_in_flight == 1  # the tool span, on the wire
        assert (stats.spans_queued, stats.spans_exported, stats.spans_failed) == (0, 0, 0)
        assert stats.spans_started == faults.SPANS_PER_RUN
        # Its task and agent spans have started but not ended: in no counter yet.
        assert faults.accounted(stats) == stats.spans_started - 2
        assert caller.is_alive()
    finally:
        latch.release()
    caller.join(10.0)
    assert not caller.is_alive()
    assert results == [faults.expected(6)]
    faults.assert_runs(receiver.wait_for_spans(faults.SPANS_PER_RUN), mode, [6])
    stats = client.stats()
    assert (stats.spans_exported, stats.spans_in_flight) == (faults.SPANS_PER_RUN, 0)
    assert faults.accounted(stats) == stats.spans_started == faults.SPANS_PER_RUN


# -- flush() and aflush() ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", faults.MODES)
async def test_flush_true_means_already_delivered(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    faults.export_timeout(monkeypatch, faults.HOLD_MS)
    rollout.init(base_url=receiver.url, api_key=faults.KEY, console=False, flush_interval=60.0)
    for n in range(5):
        assert await faults.run(mode, n) == faults.expected(n)
    assert await faults.flush(mode, 5.0) is True
    faults.assert_runs(receiver.spans(), mode, list(range(5)))  # no waiting: already there
    assert await faults.flush(mode, 5.0) is True  # nothing queued, nothing failed


async def test_aflush_waits_for_a_stalled_collector_without_blocking_the_loop(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults.export_timeout(monkeypatch, faults.HOLD_MS)
    rollout.init(base_url=receiver.url, api_key=faults.KEY, console=False, flush_interval=60.0)
    latch = receiver.stall()
    ran = asyncio.Event()
    seen: dict[str, object] = {}
    try:
        assert await faults.asolver(1) == faults.expected(1)
        assert await asyncio.to_thread(latch.arrived.wait, 5.0)
        flushing = asyncio.create_task(rollout.aflush(timeout=10.0))

        async def meanwhile() -> None:
            # Runs only if aflush() yielded the loop while it waits on the held export.
            seen["flush_done"] = flushing.done()
            seen["held"] = latch.held
            seen["answered"] = len(receiver.requests)
            ran.set()

        other = asyncio.create_task(meanwhile())
        await asyncio.wait_for(ran.wait(), 5.0)
        await other
        assert seen == {"flush_done": False, "held": 1, "answered": 0}
    finally:
        latch.release()
    assert await asyncio.wait_for(flushing, 10.0) is True
    faults.assert_runs(receiver.spans(), "async", [1])
