"""The bounded export queue, over real HTTP: a queue (or its byte bound) that overflows
drops exactly what does not fit and counts it; a span over max_batch_bytes is counted
oversize and not sent. Assertions are on what an `OTLPReceiver` decoded and on `stats()`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace import Span as SDKSpan

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.pipeline._queue import estimate_size
from mv37.rollout.testing import OTLPReceiver

if TYPE_CHECKING:
    from tests import delivery_faults_helpers as faults
else:
    import delivery_faults_helpers as faults


# -- bounded queue -------------------------------------------------------------------------------


@rollout.trace("burst")
def burst(count: int) -> list[int]:
    queued = []
    for n in range(count):
        faults.fetch(n)
        queued.append(rollout.stats().spans_queued)
    return queued


@rollout.trace("aburst")
async def aburst(count: int) -> list[int]:
    queued = []
    for n in range(count):
        await faults.afetch(n)
        queued.append(rollout.stats().spans_queued)
    return queued


@pytest.mark.parametrize("mode", faults.MODES)
async def test_queue_overflow_drops_exactly_what_does_not_fit(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    faults.export_timeout(monkeypatch, faults.HOLD_MS)
    limit = 10
    rollout.init(
        base_url=receiver.url,
        api_key=faults.KEY,
        console=False,
        flush_interval=60.0,
        max_queue_events=limit,
    )
    latch = receiver.stall()
    try:
        assert await faults.run(mode, 100) == faults.expected(100)
        assert latch.arrived.wait(5.0)  # the worker is stuck exporting the warm-up run
        warm_up = rollout.stats()
        assert (warm_up.spans_queued, warm_up.spans_in_flight) == (0, faults.SPANS_PER_RUN)
        # 199 tool spans and their workflow root: 200 spans into a 10-span queue.
        queued = await aburst(199) if mode == "async" else burst(199)
        assert max(queued) == limit
        assert queued[: limit + 1] == [*range(1, limit + 1), limit]
        stats = rollout.stats()
        assert stats.spans_queued == limit
        assert stats.spans_in_flight == faults.SPANS_PER_RUN
        assert stats.dropped["queue_full"] == 200 - limit
        assert faults.accounted(stats) == stats.spans_started
        assert latch.held == 1
    finally:
        latch.release()
    assert await faults.flush(mode, 10.0) is True
    spans = receiver.wait_for_spans(faults.SPANS_PER_RUN + limit)
    assert len(spans) == faults.SPANS_PER_RUN + limit
    tool = faults.NAMES[mode].tool
    kept = [s for s in spans if s.name == tool and faults.tool_input(s) != 100]
    assert sorted(faults.tool_input(s) for s in kept) == list(range(limit))  # the first ten fit
    assert not any(s.name.endswith("burst") for s in spans)  # the root ended last: dropped
    stats = rollout.stats()
    assert stats.spans_exported == faults.SPANS_PER_RUN + limit
    assert stats.spans_started == faults.SPANS_PER_RUN + 200
    assert faults.accounted(stats) == stats.spans_started


@dataclass
class SizeRecorder(SpanProcessor):
    """Records each ended span's name and estimated size, in `on_end` order."""

    ended: list[tuple[str, int]] = field(default_factory=list)

    def on_start(self, span: SDKSpan, parent_context: Context | None = None) -> None:
        """Nothing at start."""

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append((span.name, estimate_size(span)))

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@rollout.tool("blob")
def blob(n: int, size: int) -> str:
    return str(n % 10) * size


@rollout.tool("ablob")
async def ablob(n: int, size: int) -> str:
    await asyncio.sleep(0)
    return str(n % 10) * size


@pytest.mark.parametrize("mode", faults.MODES)
async def test_queue_bytes_bound_drops_exactly_what_does_not_fit(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    faults.export_timeout(monkeypatch, faults.HOLD_MS)
    max_bytes = 60_000
    recorder = SizeRecorder()
    rollout.init(
        base_url=receiver.url,
        api_key=faults.KEY,
        console=False,
        flush_interval=60.0,
        max_queue_bytes=max_bytes,
        max_batch_bytes=max_bytes,
        max_payload_chars=100_000,
        span_processors=[recorder],
    )
    blob_name = "execute_tool ablob" if mode == "async" else "execute_tool blob"
    latch = receiver.stall()
    try:
        assert await faults.run(mode, 100) == faults.expected(100)
        assert latch.arrived.wait(5.0)
        recorder.ended.clear()
        # Twelve ~3 x 4 kB payload spans (output and its mirrors) and their small root:
        # the bytes bound, not the 1000-span event bound, decides which ones fit.
        if mode == "async":
            async with rollout.trace("bytes"):
                for n in range(12):
                    assert len(await ablob(n, 4_000)) == 4_000
        else:
            with rollout.trace("bytes"):
                for n in range(12):
                    assert len(blob(n, 4_000)) == 4_000
        # The queue starts empty (the warm-up batch is on the wire): admit in order.
        admitted, total = [], 0
        for name, size in recorder.ended:
            if total + size <= max_bytes:
                admitted.append(name)
                total += size
        assert len(recorder.ended) == 13
        blobs = admitted.count(blob_name)
        assert 2 <= blobs < 12, recorder.ended  # the bound bites
        stats = rollout.stats()
        assert stats.spans_queued == len(admitted)
        assert stats.spans_in_flight == faults.SPANS_PER_RUN  # the warm-up batch, held
        assert stats.dropped["queue_full"] == 13 - len(admitted)
        assert stats.dropped["oversize"] == 0
        assert faults.accounted(stats) == stats.spans_started
    finally:
        latch.release()
    assert await faults.flush(mode, 10.0) is True
    spans = receiver.wait_for_spans(faults.SPANS_PER_RUN + len(admitted))
    assert len(spans) == faults.SPANS_PER_RUN + len(admitted)
    assert sorted(s.name for s in spans[faults.SPANS_PER_RUN :]) == sorted(admitted)
    outputs = [str(s.attributes[sc.OUTPUT_VALUE])[:1] for s in spans if s.name == blob_name]
    assert sorted(outputs) == [str(n) for n in range(blobs)]  # the first ones fit
    stats = rollout.stats()
    assert stats.spans_exported == faults.SPANS_PER_RUN + len(admitted)
    assert faults.accounted(stats) == stats.spans_started


@pytest.mark.parametrize("delivery", ["batch", "sync_mode"])
@pytest.mark.parametrize("mode", faults.MODES)
async def test_a_span_over_max_batch_bytes_is_counted_oversize_and_not_sent(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str, delivery: str
) -> None:
    # README: `max_batch_bytes` is the most one request carries; "one span bigger than
    # that is dropped and counted". sync_mode sends one span per request: same bound.
    faults.export_timeout(monkeypatch, faults.FAIL_FAST_MS)
    rollout.init(
        base_url=receiver.url,
        api_key=faults.KEY,
        console=False,
        flush_interval=60.0,
        max_batch_bytes=2_000,
        max_payload_chars=100_000,
        sync_mode=delivery == "sync_mode",
    )

    @rollout.agent("hoarder")
    def hoarder() -> int:
        return len(blob(7, 10_000))

    @rollout.agent("ahoarder")
    async def ahoarder() -> int:
        return len(await ablob(7, 10_000))

    assert (await ahoarder() if mode == "async" else hoarder()) == 10_000
    assert await faults.run(mode, 1) == faults.expected(1)
    assert await faults.flush(mode, 5.0) is True
    spans = receiver.wait_for_spans(1 + faults.SPANS_PER_RUN)
    names = sorted(s.name for s in spans)
    prefix = "a" if mode == "async" else ""
    assert f"invoke_agent {prefix}hoarder" in names
    stats = rollout.stats()
    assert f"execute_tool {prefix}blob" not in names, (
        f"a span over max_batch_bytes was sent; dropped: {stats.dropped}"
    )
    assert len(spans) == 1 + faults.SPANS_PER_RUN
    assert all(b"7" * 10_000 not in r.body for r in receiver.requests)
    assert stats.dropped["oversize"] == 1
    assert stats.dropped["queue_full"] == 0
    assert stats.spans_exported == stats.spans_started - 1
    assert faults.accounted(stats) == stats.spans_started
