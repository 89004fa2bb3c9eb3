"""Drops reach a person: spans dropped because the export queue is full are said out loud.

The first `queue_full` drop logs one WARNING on `mv37.rollout` naming the counter
(`stats().dropped["queue_full"]`) and the settings to raise; later drops log at most once
a minute with the running count. The minute is read from `_stats.monotonic`, replaced here
by a fake clock (no sleeping). The queue overflows for real: a tiny queue whose worker is
held by a stalled `OTLPReceiver`. And a burst does not wait: a full batch leaves at once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

import mv37.rollout as rollout
from mv37.rollout.pipeline import _stats
from mv37.rollout.testing import OTLPReceiver

if TYPE_CHECKING:
    from tests import delivery_faults_helpers as faults
else:
    import delivery_faults_helpers as faults


@rollout.tool("step")
def step(n: int) -> int:
    return n


def queue_full_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "mv37.rollout" and r.levelno == logging.WARNING and "queue" in r.getMessage()
    ]


def test_queue_full_warns_once_then_at_most_once_a_minute_with_the_count(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    faults.export_timeout(monkeypatch, faults.HOLD_MS)
    now = [1000.0]
    monkeypatch.setattr(_stats, "monotonic", lambda: now[0])
    caplog.set_level(logging.WARNING, logger="mv37.rollout")
    rollout.init(base_url=receiver.url, console=False, flush_interval=60.0, max_queue_events=5)
    latch = receiver.stall()
    try:
        with rollout.trace("warm-up"):
            step(0)
        assert latch.arrived.wait(5.0)  # its end woke the worker, held exporting it now

        with rollout.trace("first"):
            for n in range(10):  # 10 tool spans and the root: 11 into a 5-span queue
                step(n)
        assert rollout.stats().dropped["queue_full"] == 6
        first = queue_full_warnings(caplog)
        assert len(first) == 1, first
        assert "stats().dropped['queue_full']" in first[0]
        assert "max_queue_events" in first[0]
        assert "max_queue_bytes" in first[0]

        now[0] += 30.0  # a second overflow within the minute: nothing more
        with rollout.trace("second"):
            for n in range(3):
                step(n)
        assert rollout.stats().dropped["queue_full"] == 10
        assert len(queue_full_warnings(caplog)) == 1

        now[0] += 31.0  # the minute has passed: one more line, with the running count
        with rollout.trace("third"):
            step(0)
        assert rollout.stats().dropped["queue_full"] == 12
        later = queue_full_warnings(caplog)
        assert len(later) == 2, later
        assert "11 spans dropped so far" in later[1]  # its tool span; the root followed
        assert "max_queue_events" in later[1]
        assert "max_queue_bytes" in later[1]
    finally:
        latch.release()
    assert rollout.flush(10.0) is True
    stats = rollout.stats()
    assert stats.spans_exported == 2 + 5  # the warm-up trace and the five that fit
    assert stats.spans_dropped == stats.dropped["queue_full"] == 12


def test_a_warning_that_fails_to_log_never_reaches_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(total: int, first: bool) -> None:
        raise RuntimeError("handler broke")

    monkeypatch.setattr(_stats.QueueFullWarning, "log", staticmethod(broken))
    monkeypatch.delenv("MV37_ROLLOUT_RAISE_INTERNAL")  # the suite raises internal errors
    counters = _stats.Counters()
    counters.drop("queue_full", 3)  # does not raise
    assert counters.snapshot().dropped["queue_full"] == 3
    assert counters.snapshot().internal_errors >= 1


def test_a_full_batch_leaves_at_once_without_flush_or_interval(receiver: OTLPReceiver) -> None:
    # A burst must not wait for flush_interval (60 s here) nor for a root trace to end:
    # the span that fills a batch wakes the worker. The trace stays open meanwhile.
    rollout.init(base_url=receiver.url, console=False, flush_interval=60.0, max_batch_events=4)
    with rollout.trace("open"):
        for n in range(4):
            step(n)
        spans = receiver.wait_for_spans(4)
        assert sorted(s.name for s in spans) == ["execute_tool step"] * 4
        assert rollout.stats().spans_queued == 0
    assert rollout.flush(10.0) is True
    assert rollout.stats().spans_exported == 5


def test_the_worker_wakes_at_wake_events_queued_spans_not_at_a_full_batch(
    receiver: OTLPReceiver,
) -> None:
    # Early export keeps spans out of the garbage collector's oldest generation: 128
    # queued spans wake the worker although a batch may hold 512 (the default).
    from mv37.rollout.pipeline._queue import WAKE_EVENTS

    rollout.init(base_url=receiver.url, console=False, flush_interval=60.0)
    with rollout.trace("open"):
        for n in range(WAKE_EVENTS - 1):
            step(n)
        assert rollout.stats().spans_queued == WAKE_EVENTS - 1  # nothing woke the worker
        assert receiver.spans() == []
        step(WAKE_EVENTS)
        spans = receiver.wait_for_spans(WAKE_EVENTS)
        assert [s.name for s in spans] == ["execute_tool step"] * WAKE_EVENTS
        assert rollout.stats().spans_queued == 0
    assert rollout.flush(10.0) is True
    assert rollout.stats().spans_exported == WAKE_EVENTS + 1


def test_our_resource_hashes_once_and_stays_equal_to_a_plain_one() -> None:
    # The OTLP encoder looks every span's resource up in a dict; ours caches its hash.
    from opentelemetry.sdk.resources import Resource

    client = rollout.init(console=False, install_global_provider=False, service_name="svc")
    provider = client.tracer_provider
    assert provider is not None
    resource = provider.resource  # type: ignore[attr-defined]
    plain = Resource(resource.attributes, resource.schema_url)
    assert resource == plain
    assert hash(resource) == hash(plain)
    assert {plain: 1}[resource] == 1
    assert resource.attributes["service.name"] == "svc"
