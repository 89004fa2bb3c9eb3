"""Faults, proven over real HTTP: the collector misbehaves, the host program never notices.

Every test sends through the real OTLP/HTTP exporter to an `OTLPReceiver` on 127.0.0.1
that is down, goes away and comes back, answers 4xx/5xx/garbage, or holds requests. The
assertions are on what the receiver decoded (names, trace ids, parent links, inputs)
and on `stats()`. Nothing sleeps to wait for an export: flush(), `wait_for_spans`,
the receiver's latches, thread joins and events. Export timeouts are set through
`OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds): short where an export should fail, long
where a held request must stay held until the test releases it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import pytest

import mv37.rollout as rollout
from mv37.rollout.pipeline._queue import QueueProcessor
from mv37.rollout.testing import OTLPReceiver

if TYPE_CHECKING:
    from tests import delivery_faults_helpers as faults
else:
    import delivery_faults_helpers as faults


SLACK = 3.0
"""Extra seconds a bounded call may take on a loaded 2-core machine (join bounds only)."""
T = TypeVar("T")


def run_bounded(target: Callable[[], T], bound: float) -> T:
    """`target()` run in a thread; fails if it has not returned within `bound` seconds.

    An exception it raised is re-raised here, never swallowed.
    """
    results: list[T] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            results.append(target())
        except BaseException as exc:  # re-raised in the test below
            errors.append(exc)

    thread = threading.Thread(target=body, name="bounded-call", daemon=True)
    thread.start()
    thread.join(bound)
    assert not thread.is_alive(), f"the call did not return within {bound} s"
    if errors:
        raise errors[0]
    [result] = results
    return result


def queue_processor() -> QueueProcessor:
    pipeline = rollout.get_client()._pipeline
    assert pipeline is not None
    [exporter] = [p for p in pipeline.processors if isinstance(p, QueueProcessor)]
    return exporter


# -- collector down from the start ------------------------------------------------------------


@pytest.mark.parametrize("mode", faults.MODES)
async def test_collector_down_at_start_values_and_exceptions_pass_through(
    dead_url: str, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    faults.export_timeout(monkeypatch, faults.FAIL_FAST_MS)
    rollout.init(base_url=dead_url, api_key=faults.KEY, console=False, flush_interval=60.0)
    assert await faults.run(mode, 3) == faults.expected(3)
    with pytest.raises(faults.Boom) as raised:
        await faults.run(mode, -1)
    assert raised.type is faults.Boom
    assert raised.value is faults.RAISED[-1]  # the very object the tool raised
    assert raised.value.args == ("bad n -1",)
    assert await faults.run(mode, 4) == faults.expected(4)

    if mode == "async":
        delivered = await asyncio.wait_for(rollout.aflush(timeout=2.0), 2.0 + SLACK)
    else:
        delivered = run_bounded(lambda: rollout.flush(timeout=2.0), 2.0 + SLACK)
    assert delivered is False  # nothing listens: the exports failed, flush says so

    stats = rollout.stats()
    assert stats.spans_started == 3 * faults.SPANS_PER_RUN
    assert stats.export_failures >= 1
    assert stats.spans_failed == 3 * faults.SPANS_PER_RUN
    assert stats.spans_exported == 0
    assert stats.spans_queued == 0
    assert stats.spans_dropped == 0
    assert faults.accounted(stats) == stats.spans_started


@pytest.mark.parametrize("mode", faults.MODES)
async def test_collector_down_flush_and_shutdown_are_bounded_while_the_exporter_retries(
    dead_url: str, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # A 10 s export timeout: the exporter keeps retrying the refused connection with
    # backoff (1 s, 2 s, 4 s) far longer than flush() and shutdown() may wait.
    faults.export_timeout(monkeypatch, "10000")
    shutdown_timeout = 0.5
    client = rollout.init(
        base_url=dead_url,
        api_key=faults.KEY,
        console=False,
        flush_interval=60.0,
        shutdown_timeout=shutdown_timeout,
    )
    exporter = queue_processor()
    assert await faults.run(mode, 1) == faults.expected(1)  # its batch goes out and starts retrying
    if mode == "async":
        flushed = await asyncio.wait_for(rollout.aflush(timeout=0.3), 0.3 + SLACK)
    else:
        flushed = run_bounded(lambda: rollout.flush(timeout=0.3), 0.3 + SLACK)
    assert flushed is False
    retrying = client.stats()
    assert retrying.spans_queued == 0
    assert retrying.spans_in_flight == faults.SPANS_PER_RUN  # the first run's batch, retrying
    assert (retrying.spans_exported, retrying.spans_failed) == (0, 0)
    assert faults.accounted(retrying) == retrying.spans_started
    assert await faults.run(mode, 2) == faults.expected(2)  # queued behind it
    if mode == "async":
        await asyncio.wait_for(rollout.ashutdown(), shutdown_timeout + SLACK)
    else:
        run_bounded(rollout.shutdown, shutdown_timeout + SLACK)
    # The exporter was shut down, so it abandons its backoff instead of running out
    # its 10 s: the worker ends promptly and the retried batch is counted as failed.
    worker = exporter._worker
    assert worker is not None
    worker.join(SLACK)
    assert not worker.is_alive(), "the exporter kept retrying after shutdown()"
    stats = client.stats()
    assert stats.spans_started == 2 * faults.SPANS_PER_RUN
    assert stats.spans_exported == 0
    assert stats.dropped["shutdown"] == faults.SPANS_PER_RUN  # the second run never left
    assert (stats.export_failures, stats.spans_failed) == (1, faults.SPANS_PER_RUN)
    assert (stats.spans_queued, stats.spans_in_flight) == (0, 0)
    assert faults.accounted(stats) == stats.spans_started


# -- collector goes away mid-run and comes back ------------------------------------------------


@pytest.mark.parametrize("mode", faults.MODES)
async def test_collector_goes_away_and_comes_back(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    faults.export_timeout(monkeypatch, faults.FAIL_FAST_MS)
    rollout.init(base_url=receiver.url, api_key=faults.KEY, console=False, flush_interval=60.0)
    assert await faults.run(mode, 1) == faults.expected(1)
    assert await faults.flush(mode, 5.0) is True
    faults.assert_runs(receiver.spans(), mode, [1])

    receiver.stop()
    assert await faults.run(mode, 2) == faults.expected(2)
    with pytest.raises(faults.Boom):
        await faults.run(mode, -2)
    assert await faults.flush(mode, 5.0) is False
    away = rollout.stats()
    assert away.spans_failed == 2 * faults.SPANS_PER_RUN
    assert away.export_failures >= 1

    receiver.start()  # the same port again
    assert await faults.run(mode, 3) == faults.expected(3)
    assert await faults.run(mode, 4) == faults.expected(4)
    assert await faults.flush(mode, 5.0) is True
    spans = receiver.wait_for_spans(3 * faults.SPANS_PER_RUN)
    faults.assert_runs(spans, mode, [1, 3, 4])  # nothing from the runs made while it was away
    assert len({s.trace_id for s in spans}) == 3

    stats = rollout.stats()
    assert stats.spans_started == 5 * faults.SPANS_PER_RUN
    assert stats.spans_exported == 3 * faults.SPANS_PER_RUN
    assert stats.spans_failed == 2 * faults.SPANS_PER_RUN
    assert stats.export_failures == away.export_failures
    assert (stats.spans_queued, stats.spans_dropped) == (0, 0)
    assert faults.accounted(stats) == stats.spans_started


# -- what the collector answers ----------------------------------------------------------------


@pytest.mark.parametrize("mode", faults.MODES)
@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_transient_status_is_retried_and_arrives_exactly_once(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, status: int, mode: str
) -> None:
    faults.export_timeout(
        monkeypatch, faults.HOLD_MS
    )  # room for the retries; Retry-After: 0 makes them quick
    rollout.init(base_url=receiver.url, api_key=faults.KEY, console=False, flush_interval=60.0)
    receiver.respond_with(status, status, retry_after="0")
    assert await faults.run(mode, 5) == faults.expected(5)
    assert await faults.flush(mode, 5.0) is True
    assert [r.status for r in receiver.requests] == [status, status, 200]
    # The same batch, three times: the retries resent exactly what was refused.
    sent = [sorted(s.span_id for s in r.spans) for r in receiver.requests]
    assert sent[0] == sent[1] == sent[2]
    assert len(sent[0]) == faults.SPANS_PER_RUN
    faults.assert_runs(receiver.spans(), mode, [5])  # accepted once
    stats = rollout.stats()
    assert (stats.spans_exported, stats.export_failures, stats.spans_failed) == (3, 0, 0)
    assert faults.accounted(stats) == stats.spans_started == faults.SPANS_PER_RUN


@pytest.mark.parametrize("mode", faults.MODES)
@pytest.mark.parametrize("status", [400, 500])
async def test_permanent_status_is_counted_and_later_batches_still_go(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, status: int, mode: str
) -> None:
    faults.export_timeout(
        monkeypatch, faults.HOLD_MS
    )  # a refusal must fail at once, not by timing out
    rollout.init(base_url=receiver.url, api_key=faults.KEY, console=False, flush_interval=60.0)
    receiver.respond_with(status)
    assert await faults.run(mode, 1) == faults.expected(1)
    assert await faults.flush(mode, 5.0) is False
    assert [r.status for r in receiver.requests] == [status]  # not retried
    assert await faults.run(mode, 2) == faults.expected(2)
    assert await faults.flush(mode, 5.0) is True
    assert [r.status for r in receiver.requests] == [status, 200]
    faults.assert_runs(receiver.spans(), mode, [2])
    stats = rollout.stats()
    assert (stats.export_failures, stats.spans_failed, stats.spans_exported) == (1, 3, 3)
    assert faults.accounted(stats) == stats.spans_started == 2 * faults.SPANS_PER_RUN


@pytest.mark.parametrize("mode", faults.MODES)
async def test_one_garbage_reply_is_retried_at_once(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # Non-HTTP bytes are a connection error: the exporter retries once without backoff.
    faults.export_timeout(monkeypatch, faults.FAIL_FAST_MS)
    rollout.init(base_url=receiver.url, api_key=faults.KEY, console=False, flush_interval=60.0)
    receiver.respond_garbage(1)
    assert await faults.run(mode, 1) == faults.expected(1)
    assert await faults.flush(mode, 5.0) is True
    assert [r.status for r in receiver.requests] == [0, 200]
    faults.assert_runs(receiver.spans(), mode, [1])
    stats = rollout.stats()
    assert (stats.spans_exported, stats.export_failures) == (3, 0)
    assert faults.accounted(stats) == stats.spans_started


@pytest.mark.parametrize("mode", faults.MODES)
async def test_repeated_garbage_fails_the_batch_quietly_and_later_batches_go(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # Twice garbage: the next retry would back off ~1 s, past the 0.5 s timeout.
    faults.export_timeout(monkeypatch, faults.FAIL_FAST_MS)
    rollout.init(base_url=receiver.url, api_key=faults.KEY, console=False, flush_interval=60.0)
    receiver.respond_garbage(2)
    assert await faults.run(mode, 1) == faults.expected(1)
    assert await faults.flush(mode, 5.0) is False
    assert [r.status for r in receiver.requests] == [0, 0]
    assert await faults.run(mode, 2) == faults.expected(2)
    assert await faults.flush(mode, 5.0) is True
    faults.assert_runs(receiver.spans(), mode, [2])
    stats = rollout.stats()
    assert (stats.export_failures, stats.spans_failed, stats.spans_exported) == (1, 3, 3)
    assert faults.accounted(stats) == stats.spans_started


@pytest.mark.parametrize("mode", faults.MODES)
async def test_a_200_with_a_garbage_body_counts_as_exported(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    faults.export_timeout(monkeypatch, faults.FAIL_FAST_MS)
    rollout.init(base_url=receiver.url, api_key=faults.KEY, console=False, flush_interval=60.0)
    receiver.reply_garbage_body()
    assert await faults.run(mode, 1) == faults.expected(1)
    assert await faults.flush(mode, 5.0) is True
    assert [r.status for r in receiver.requests] == [200]
    faults.assert_runs(receiver.spans(), mode, [1])
    stats = rollout.stats()
    assert (stats.spans_exported, stats.export_failures, stats.spans_failed) == (3, 0, 0)


# -- a collector that stalls -------------------------------------------------------------------


@pytest.mark.parametrize("mode", faults.MODES)
async def test_calls_return_while_the_collector_holds_the_export(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    faults.export_timeout(monkeypatch, faults.HOLD_MS)
    rollout.init(base_url=receiver.url, api_key=faults.KEY, console=False, flush_interval=60.0)
    latch = receiver.stall()
    try:
        assert await faults.run(mode, 0) == faults.expected(0)  # the agent's end starts the export
        assert latch.arrived.wait(5.0), "the export never reached the receiver"
        # The receiver holds that request unanswered; the worker is stuck in it.
        for n in range(1, 11):
            assert await faults.run(mode, n) == faults.expected(n)
            assert latch.held == 1
            assert receiver.requests == []  # still unanswered: the call did not wait
        with pytest.raises(faults.Boom):
            await faults.run(mode, -1)
        assert latch.held == 1
        assert receiver.requests == []
        stats = rollout.stats()
        assert stats.spans_queued == 11 * faults.SPANS_PER_RUN  # all but the held batch
        assert stats.spans_in_flight == faults.SPANS_PER_RUN  # the held batch
        assert stats.spans_exported == 0
        assert faults.accounted(stats) == stats.spans_started
        # flush() gives up at its timeout while the collector holds the request.
        flushed = run_bounded(lambda: rollout.flush(timeout=0.3), 0.3 + SLACK)
        assert flushed is False
        assert latch.held == 1
        assert rollout.stats().spans_in_flight == faults.SPANS_PER_RUN
    finally:
        latch.release()
    assert await faults.flush(mode, 10.0) is True
    spans = receiver.wait_for_spans(12 * faults.SPANS_PER_RUN)
    assert len(spans) == 12 * faults.SPANS_PER_RUN
    faults.assert_runs(spans, mode, [*range(11), -1])
    failed = [s for s in spans if s.status_code == "ERROR"]
    assert sorted(s.name for s in failed) == sorted(vars(faults.NAMES[mode]).values())
    stats = rollout.stats()
    assert stats.spans_exported == 12 * faults.SPANS_PER_RUN
    assert (stats.spans_queued, stats.spans_failed, stats.spans_dropped) == (0, 0, 0)
    assert stats.spans_in_flight == 0
    assert faults.accounted(stats) == stats.spans_started


@pytest.mark.parametrize("mode", faults.MODES)
async def test_shutdown_with_a_stalled_collector_is_bounded_and_counts_the_unsent(
    receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="mv37.rollout")
    faults.export_timeout(monkeypatch, faults.HOLD_MS)
    shutdown_timeout = 0.5
    client = rollout.init(
        base_url=receiver.url,
        api_key=faults.KEY,
        console=False,
        flush_interval=60.0,
        shutdown_timeout=shutdown_timeout,
    )
    exporter = queue_processor()
    latch = receiver.stall()
    try:
        assert await faults.run(mode, 0) == faults.expected(0)
        assert latch.arrived.wait(5.0)  # the first run's batch is held
        for n in range(1, 5):
            assert await faults.run(mode, n) == faults.expected(n)
        assert client.stats().spans_queued == 4 * faults.SPANS_PER_RUN

        if mode == "async":
            await asyncio.wait_for(rollout.ashutdown(), shutdown_timeout + SLACK)
        else:
            run_bounded(rollout.shutdown, shutdown_timeout + SLACK)
        assert latch.held == 1  # shutdown returned while the collector still held it
        assert (
            f"{4 * faults.SPANS_PER_RUN} queued spans dropped, "
            f"{faults.SPANS_PER_RUN} still in flight" in caplog.text
        )

        stats = client.stats()
        assert stats.dropped["shutdown"] == 4 * faults.SPANS_PER_RUN  # the queued, never sent
        assert stats.spans_queued == 0
        assert stats.spans_exported == 0
        # The batch on the wire stays in flight until its request ends (see below).
        assert stats.spans_in_flight == faults.SPANS_PER_RUN
        assert faults.accounted(stats) == stats.spans_started
        # Spans ending after shutdown: the caller still gets its value; counted, not sent.
        assert await faults.run(mode, 9) == faults.expected(9)
        assert client.stats().dropped["shutdown"] == 5 * faults.SPANS_PER_RUN
    finally:
        latch.release()
    worker = exporter._worker
    assert worker is not None
    worker.join(10.0)  # the held export finishes once released
    assert not worker.is_alive()
    spans = receiver.wait_for_spans(faults.SPANS_PER_RUN)
    faults.assert_runs(spans, mode, [0])  # only the batch that was already on the wire
    stats = client.stats()
    assert stats.spans_started == 6 * faults.SPANS_PER_RUN
    assert stats.spans_exported == faults.SPANS_PER_RUN  # answered 200 once released
    assert stats.spans_failed == 0
    assert stats.spans_in_flight == 0
    assert faults.accounted(stats) == stats.spans_started
