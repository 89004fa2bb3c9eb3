"""Faults, proven over real HTTP: the collector misbehaves, the host program never notices.

Every test runs a real OTLP/HTTP receiver on 127.0.0.1 and programs it to be down,
slow, stalled or rude. No sleeps: flush(), latches and events.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import pytest

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import OTLPReceiver

KEY = "sk-fault-test-KEY-0123456789abcdef"


class Boom(Exception):
    """The user's own exception."""


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as server:
        yield server


@pytest.fixture(autouse=True)
def _short_export_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # Milliseconds, per the OTel spec: failing exports give up quickly.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1500")


@rollout.tool("lookup")
def lookup(order_id: int) -> dict[str, object]:
    if order_id < 0:
        raise Boom("negative order id")
    return {"order_id": order_id, "status": "shipped"}


@rollout.agent("fault_agent")
def agent(order_id: int) -> str:
    return str(lookup(order_id)["status"])


@rollout.tool("alookup")
async def alookup(order_id: int) -> dict[str, object]:
    await asyncio.sleep(0)
    if order_id < 0:
        raise Boom("negative order id")
    return {"order_id": order_id, "status": "shipped"}


@rollout.agent("async_fault_agent")
async def aagent(order_id: int) -> str:
    return str((await alookup(order_id))["status"])


async def call(mode: str, order_id: int) -> str:
    return await aagent(order_id) if mode == "async" else agent(order_id)


def _finished_accounted(stats: rollout.RolloutStats) -> int:
    return stats.spans_exported + stats.spans_failed + stats.spans_dropped + stats.spans_queued


# -- collector down ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_collector_down_at_start_changes_nothing_for_the_caller(mode: str) -> None:
    down = OTLPReceiver().start()
    down.stop()  # a port with nothing listening
    rollout.init(base_url=down.url, api_key=KEY)
    assert await call(mode, 1) == "shipped"
    with pytest.raises(Boom, match="negative order id"):
        await call(mode, -1)
    assert (await rollout.aflush(timeout=10)) is False
    stats = rollout.stats()
    assert stats.export_failures >= 1
    assert stats.spans_failed == 4
    assert stats.spans_exported == 0
    assert _finished_accounted(stats) == stats.spans_started == 4


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_collector_goes_away_and_comes_back(receiver: OTLPReceiver, mode: str) -> None:
    rollout.init(base_url=receiver.url, flush_interval=60.0)
    await call(mode, 1)
    assert rollout.flush()
    receiver.wait_for_spans(2)
    receiver.stop()
    await call(mode, 2)
    assert not rollout.flush(timeout=10)  # nothing listening: the batch fails
    receiver.start()  # same port
    await call(mode, 3)
    assert rollout.flush()
    spans = receiver.wait_for_spans(4)
    inputs = sorted(
        str(s.attributes[sc.ROLLOUT_INPUT]) for s in spans if s.name.startswith("execute_tool")
    )
    assert inputs == ['{"order_id": 1}', '{"order_id": 3}']
    stats = rollout.stats()
    assert (stats.spans_exported, stats.spans_failed) == (4, 2)
    assert _finished_accounted(stats) == stats.spans_started == 6


@pytest.mark.parametrize("status", [429, 503])
def test_transient_errors_are_retried_and_arrive_once(receiver: OTLPReceiver, status: int) -> None:
    rollout.init(base_url=receiver.url)
    receiver.respond_with(status, status, retry_after="0")
    agent(1)
    assert rollout.flush()
    spans = receiver.wait_for_spans(2)
    assert [r.status for r in receiver.requests] == [status, status, 200]
    assert sorted(s.name for s in spans) == ["execute_tool lookup", "invoke_agent fault_agent"]
    stats = rollout.stats()
    assert (stats.spans_exported, stats.export_failures) == (2, 0)


@pytest.mark.parametrize("status", [400, 500])
def test_permanent_errors_are_counted_and_later_batches_still_go(
    receiver: OTLPReceiver, status: int
) -> None:
    rollout.init(base_url=receiver.url)
    receiver.respond_with(status)
    agent(1)
    assert not rollout.flush()
    agent(2)
    assert rollout.flush()
    receiver.wait_for_spans(2)
    assert [r.status for r in receiver.requests] == [status, 200]
    stats = rollout.stats()
    assert (stats.export_failures, stats.spans_failed, stats.spans_exported) == (1, 2, 2)


def test_garbage_answers_never_reach_the_caller(receiver: OTLPReceiver) -> None:
    rollout.init(base_url=receiver.url)
    receiver.respond_garbage(3)  # not HTTP at all, for the first attempts
    assert agent(1) == "shipped"
    rollout.flush()
    receiver.reply_garbage_body()  # 200 with a body that is not protobuf
    assert agent(2) == "shipped"
    rollout.flush()
    stats = rollout.stats()
    # Garbage bytes are a connection error (retried); a 200 is a 200.
    assert stats.spans_exported >= 2
    assert _finished_accounted(stats) == stats.spans_started == 4


# -- a collector that stalls -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_calls_return_while_the_collector_holds_the_request(
    receiver: OTLPReceiver, mode: str
) -> None:
    rollout.init(base_url=receiver.url, shutdown_timeout=2.0)
    latch = receiver.stall()
    try:
        await call(mode, 1)  # the agent's end wakes the exporter
        assert latch.arrived.wait(10), "the export never reached the receiver"
        # The collector now holds that request and answers nothing. Calls still return:
        for i in range(20):
            assert await call(mode, i) == "shipped"
        assert latch.held >= 1
        assert not latch._released.is_set()
    finally:
        latch.release()
    assert rollout.flush()
    assert len(receiver.wait_for_spans(42)) == 42


def test_shutdown_with_a_stalled_collector_is_bounded_and_counts_what_is_lost(
    receiver: OTLPReceiver,
) -> None:
    client = rollout.init(base_url=receiver.url, shutdown_timeout=1.0, max_batch_events=2)
    latch = receiver.stall()
    try:
        for i in range(5):
            agent(i)
        client._kick_flush()
        assert latch.arrived.wait(10)
        done = threading.Event()

        def stop() -> None:
            client.shutdown()
            done.set()

        worker = threading.Thread(target=stop, daemon=True)
        worker.start()
        worker.join(10)
        assert done.is_set(), "shutdown() did not return"
    finally:
        latch.release()
    stats = client.stats()
    assert stats.dropped["shutdown"] >= 1
    assert stats.spans_queued == 0


# -- overflow and size -------------------------------------------------------------------------


def test_queue_overflow_drops_exactly_what_does_not_fit(receiver: OTLPReceiver) -> None:
    rollout.init(
        base_url=receiver.url, max_queue_events=10, max_batch_events=5, flush_interval=60.0
    )
    latch = receiver.stall()
    try:
        with rollout.trace("warmup"):
            pass
        rollout.get_client()._kick_flush()
        assert latch.arrived.wait(10)  # the worker is stuck in this first export
        with rollout.trace("burst"):
            for i in range(199):
                lookup(i)
                assert rollout.stats().spans_queued <= 10
        stats = rollout.stats()
        assert stats.spans_queued == 10
        assert stats.dropped["queue_full"] == 200 - 10
    finally:
        latch.release()
    assert rollout.flush()
    assert len(receiver.wait_for_spans(11)) == 11  # warm-up + the ten that fit
    assert rollout.stats().spans_exported == 11


def test_queue_bytes_bound_and_oversize_spans(receiver: OTLPReceiver) -> None:
    rollout.init(
        base_url=receiver.url,
        max_queue_bytes=60_000,
        max_batch_bytes=40_000,
        max_payload_chars=100_000,
        flush_interval=60.0,
    )

    @rollout.tool("blob")
    def blob(size: int) -> str:
        return "x" * size

    latch = receiver.stall()
    try:
        with rollout.trace("warmup"):
            pass
        rollout.get_client()._kick_flush()
        assert latch.arrived.wait(10)
        with rollout.trace("big"):
            blob(20_000)  # ~60 kB with its three mirrors: over max_batch_bytes
            for _ in range(10):
                blob(3_000)  # ~9 kB each: six fit in 60 kB
        stats = rollout.stats()
        assert stats.dropped["oversize"] == 1
        assert stats.dropped["queue_full"] >= 4
        assert stats.spans_queued <= 7
    finally:
        latch.release()
    assert rollout.flush()
    stats = rollout.stats()
    assert stats.spans_exported == stats.spans_started - stats.spans_dropped


# -- secrets -----------------------------------------------------------------------------------


def test_the_api_key_is_only_ever_in_the_authorization_header(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = rollout.init(base_url=receiver.url, api_key=KEY, debug=True)
    receiver.respond_with(500)
    with pytest.raises(Boom):
        agent(-1)
    rollout.flush()
    agent(1)
    assert rollout.flush()
    assert client.check(verbose=False).ok
    receiver.wait_for_spans(2)
    for request in receiver.requests:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert KEY.encode() not in request.body
        assert all(KEY not in v for k, v in request.headers.items() if k != "authorization")
    assert KEY not in caplog.text
    assert all(KEY not in str(record.args) for record in caplog.records)
    assert KEY not in repr(client)
    assert KEY not in repr(client.config)
    assert KEY not in repr(client.stats())


# -- sync mode -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_sync_mode_exports_before_the_call_returns(receiver: OTLPReceiver, mode: str) -> None:
    rollout.init(base_url=receiver.url, sync_mode=True)
    await call(mode, 1)
    assert len(receiver.spans()) == 2  # no flush needed
    receiver.stop()
    assert await call(mode, 2) == "shipped"  # collector gone: still returns
    assert rollout.stats().spans_failed == 2


async def test_aflush_waits_without_blocking_the_event_loop(receiver: OTLPReceiver) -> None:
    rollout.init(base_url=receiver.url)
    latch = receiver.stall()
    ticked = asyncio.Event()

    async def ticker() -> None:
        ticked.set()

    try:
        await aagent(1)
        flushing = asyncio.create_task(rollout.aflush(timeout=10))
        await asyncio.wait_for(asyncio.to_thread(latch.arrived.wait, 10), 15)
        await asyncio.wait_for(asyncio.create_task(ticker()), 5)
        assert ticked.is_set()
        assert not flushing.done()
    finally:
        latch.release()
    assert await flushing
