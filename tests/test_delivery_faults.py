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
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SDKSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout._export import BatchExporter, estimate_size
from mv37.rollout.testing import OTLPReceiver, ReceivedSpan

KEY = "sk-test-SECRET-delivery-faults-5f0c1e2d3b4a"
FAIL_FAST_MS = "500"
"""Export timeout where exports should fail: less than the exporter's first backoff (~1 s)."""
HOLD_MS = "8000"
"""Export timeout where a held request must outlast the test's own steps."""
SLACK = 3.0
"""Extra seconds a bounded call may take on a loaded 2-core machine (join bounds only)."""

MODES = ["sync", "async"]
T = TypeVar("T")


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
    value = json.loads(str(span.attributes[sc.ROLLOUT_INPUT]))
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


def batch_exporter() -> BatchExporter:
    pipeline = rollout.get_client()._pipeline
    assert pipeline is not None
    [exporter] = [p for p in pipeline.processors if isinstance(p, BatchExporter)]
    return exporter


# -- 1. collector down from the start ---------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_collector_down_at_start_values_and_exceptions_pass_through(
    dead_url: str, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    export_timeout(monkeypatch, FAIL_FAST_MS)
    rollout.init(base_url=dead_url, api_key=KEY, console=False, flush_interval=60.0)
    assert await run(mode, 3) == expected(3)
    with pytest.raises(Boom) as raised:
        await run(mode, -1)
    assert raised.type is Boom
    assert raised.value is RAISED[-1]  # the very object the tool raised
    assert raised.value.args == ("bad n -1",)
    assert await run(mode, 4) == expected(4)

    if mode == "async":
        delivered = await asyncio.wait_for(rollout.aflush(timeout=2.0), 2.0 + SLACK)
    else:
        delivered = run_bounded(lambda: rollout.flush(timeout=2.0), 2.0 + SLACK)
    assert delivered is False  # nothing listens: the exports failed, flush says so

    stats = rollout.stats()
    assert stats.spans_started == 3 * SPANS_PER_RUN
    assert stats.export_failures >= 1
    assert stats.spans_failed == 3 * SPANS_PER_RUN
    assert stats.spans_exported == 0
    assert stats.spans_queued == 0
    assert stats.spans_dropped == 0
    assert accounted(stats) == stats.spans_started


@pytest.mark.parametrize("mode", MODES)
async def test_collector_down_flush_and_shutdown_are_bounded_while_the_exporter_retries(
    dead_url: str, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # A 10 s export timeout: the exporter keeps retrying the refused connection with
    # backoff (1 s, 2 s, 4 s) far longer than flush() and shutdown() may wait.
    export_timeout(monkeypatch, "10000")
    shutdown_timeout = 0.5
    client = rollout.init(
        base_url=dead_url,
        api_key=KEY,
        console=False,
        flush_interval=60.0,
        shutdown_timeout=shutdown_timeout,
    )
    exporter = batch_exporter()
    assert await run(mode, 1) == expected(1)  # its batch goes out and starts retrying
    if mode == "async":
        flushed = await asyncio.wait_for(rollout.aflush(timeout=0.3), 0.3 + SLACK)
    else:
        flushed = run_bounded(lambda: rollout.flush(timeout=0.3), 0.3 + SLACK)
    assert flushed is False
    retrying = client.stats()
    assert retrying.spans_queued == 0
    assert retrying.spans_in_flight == SPANS_PER_RUN  # the first run's batch, retrying
    assert (retrying.spans_exported, retrying.spans_failed) == (0, 0)
    assert accounted(retrying) == retrying.spans_started
    assert await run(mode, 2) == expected(2)  # queued behind it
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
    assert stats.spans_started == 2 * SPANS_PER_RUN
    assert stats.spans_exported == 0
    assert stats.dropped["shutdown"] == SPANS_PER_RUN  # the second run never left
    assert (stats.export_failures, stats.spans_failed) == (1, SPANS_PER_RUN)
    assert (stats.spans_queued, stats.spans_in_flight) == (0, 0)
    assert accounted(stats) == stats.spans_started


# -- 2. collector goes away mid-run and comes back ---------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_collector_goes_away_and_comes_back(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    export_timeout(monkeypatch, FAIL_FAST_MS)
    rollout.init(base_url=receiver.url, api_key=KEY, console=False, flush_interval=60.0)
    assert await run(mode, 1) == expected(1)
    assert await flush(mode, 5.0) is True
    assert_runs(receiver.spans(), mode, [1])

    receiver.stop()
    assert await run(mode, 2) == expected(2)
    with pytest.raises(Boom):
        await run(mode, -2)
    assert await flush(mode, 5.0) is False
    away = rollout.stats()
    assert away.spans_failed == 2 * SPANS_PER_RUN
    assert away.export_failures >= 1

    receiver.start()  # the same port again
    assert await run(mode, 3) == expected(3)
    assert await run(mode, 4) == expected(4)
    assert await flush(mode, 5.0) is True
    spans = receiver.wait_for_spans(3 * SPANS_PER_RUN)
    assert_runs(spans, mode, [1, 3, 4])  # nothing from the runs made while it was away
    assert len({s.trace_id for s in spans}) == 3

    stats = rollout.stats()
    assert stats.spans_started == 5 * SPANS_PER_RUN
    assert stats.spans_exported == 3 * SPANS_PER_RUN
    assert stats.spans_failed == 2 * SPANS_PER_RUN
    assert stats.export_failures == away.export_failures
    assert (stats.spans_queued, stats.spans_dropped) == (0, 0)
    assert accounted(stats) == stats.spans_started


# -- 3. what the collector answers -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_transient_status_is_retried_and_arrives_exactly_once(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, status: int, mode: str
) -> None:
    export_timeout(monkeypatch, HOLD_MS)  # room for the retries; Retry-After: 0 makes them quick
    rollout.init(base_url=receiver.url, api_key=KEY, console=False, flush_interval=60.0)
    receiver.respond_with(status, status, retry_after="0")
    assert await run(mode, 5) == expected(5)
    assert await flush(mode, 5.0) is True
    assert [r.status for r in receiver.requests] == [status, status, 200]
    # The same batch, three times: the retries resent exactly what was refused.
    sent = [sorted(s.span_id for s in r.spans) for r in receiver.requests]
    assert sent[0] == sent[1] == sent[2]
    assert len(sent[0]) == SPANS_PER_RUN
    assert_runs(receiver.spans(), mode, [5])  # accepted once
    stats = rollout.stats()
    assert (stats.spans_exported, stats.export_failures, stats.spans_failed) == (3, 0, 0)
    assert accounted(stats) == stats.spans_started == SPANS_PER_RUN


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", [400, 500])
async def test_permanent_status_is_counted_and_later_batches_still_go(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, status: int, mode: str
) -> None:
    export_timeout(monkeypatch, HOLD_MS)  # a refusal must fail at once, not by timing out
    rollout.init(base_url=receiver.url, api_key=KEY, console=False, flush_interval=60.0)
    receiver.respond_with(status)
    assert await run(mode, 1) == expected(1)
    assert await flush(mode, 5.0) is False
    assert [r.status for r in receiver.requests] == [status]  # not retried
    assert await run(mode, 2) == expected(2)
    assert await flush(mode, 5.0) is True
    assert [r.status for r in receiver.requests] == [status, 200]
    assert_runs(receiver.spans(), mode, [2])
    stats = rollout.stats()
    assert (stats.export_failures, stats.spans_failed, stats.spans_exported) == (1, 3, 3)
    assert accounted(stats) == stats.spans_started == 2 * SPANS_PER_RUN


@pytest.mark.parametrize("mode", MODES)
async def test_one_garbage_reply_is_retried_at_once(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # Non-HTTP bytes are a connection error: the exporter retries once without backoff.
    export_timeout(monkeypatch, FAIL_FAST_MS)
    rollout.init(base_url=receiver.url, api_key=KEY, console=False, flush_interval=60.0)
    receiver.respond_garbage(1)
    assert await run(mode, 1) == expected(1)
    assert await flush(mode, 5.0) is True
    assert [r.status for r in receiver.requests] == [0, 200]
    assert_runs(receiver.spans(), mode, [1])
    stats = rollout.stats()
    assert (stats.spans_exported, stats.export_failures) == (3, 0)
    assert accounted(stats) == stats.spans_started


@pytest.mark.parametrize("mode", MODES)
async def test_repeated_garbage_fails_the_batch_quietly_and_later_batches_go(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # Twice garbage: the next retry would back off ~1 s, past the 0.5 s timeout.
    export_timeout(monkeypatch, FAIL_FAST_MS)
    rollout.init(base_url=receiver.url, api_key=KEY, console=False, flush_interval=60.0)
    receiver.respond_garbage(2)
    assert await run(mode, 1) == expected(1)
    assert await flush(mode, 5.0) is False
    assert [r.status for r in receiver.requests] == [0, 0]
    assert await run(mode, 2) == expected(2)
    assert await flush(mode, 5.0) is True
    assert_runs(receiver.spans(), mode, [2])
    stats = rollout.stats()
    assert (stats.export_failures, stats.spans_failed, stats.spans_exported) == (1, 3, 3)
    assert accounted(stats) == stats.spans_started


@pytest.mark.parametrize("mode", MODES)
async def test_a_200_with_a_garbage_body_counts_as_exported(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    export_timeout(monkeypatch, FAIL_FAST_MS)
    rollout.init(base_url=receiver.url, api_key=KEY, console=False, flush_interval=60.0)
    receiver.reply_garbage_body()
    assert await run(mode, 1) == expected(1)
    assert await flush(mode, 5.0) is True
    assert [r.status for r in receiver.requests] == [200]
    assert_runs(receiver.spans(), mode, [1])
    stats = rollout.stats()
    assert (stats.spans_exported, stats.export_failures, stats.spans_failed) == (3, 0, 0)


# -- 4. a collector that stalls ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_calls_return_while_the_collector_holds_the_export(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    export_timeout(monkeypatch, HOLD_MS)
    rollout.init(base_url=receiver.url, api_key=KEY, console=False, flush_interval=60.0)
    latch = receiver.stall()
    try:
        assert await run(mode, 0) == expected(0)  # the agent's end starts the export
        assert latch.arrived.wait(5.0), "the export never reached the receiver"
        # The receiver holds that request unanswered; the worker is stuck in it.
        for n in range(1, 11):
            assert await run(mode, n) == expected(n)
            assert latch.held == 1
            assert receiver.requests == []  # still unanswered: the call did not wait
        with pytest.raises(Boom):
            await run(mode, -1)
        assert latch.held == 1
        assert receiver.requests == []
        stats = rollout.stats()
        assert stats.spans_queued == 11 * SPANS_PER_RUN  # all but the held batch
        assert stats.spans_in_flight == SPANS_PER_RUN  # the held batch
        assert stats.spans_exported == 0
        assert accounted(stats) == stats.spans_started
        # flush() gives up at its timeout while the collector holds the request.
        flushed = run_bounded(lambda: rollout.flush(timeout=0.3), 0.3 + SLACK)
        assert flushed is False
        assert latch.held == 1
        assert rollout.stats().spans_in_flight == SPANS_PER_RUN
    finally:
        latch.release()
    assert await flush(mode, 10.0) is True
    spans = receiver.wait_for_spans(12 * SPANS_PER_RUN)
    assert len(spans) == 12 * SPANS_PER_RUN
    assert_runs(spans, mode, [*range(11), -1])
    failed = [s for s in spans if s.status_code == "ERROR"]
    assert sorted(s.name for s in failed) == sorted(vars(NAMES[mode]).values())
    stats = rollout.stats()
    assert stats.spans_exported == 12 * SPANS_PER_RUN
    assert (stats.spans_queued, stats.spans_failed, stats.spans_dropped) == (0, 0, 0)
    assert stats.spans_in_flight == 0
    assert accounted(stats) == stats.spans_started


@pytest.mark.parametrize("mode", MODES)
async def test_shutdown_with_a_stalled_collector_is_bounded_and_counts_the_unsent(
    receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="mv37.rollout")
    export_timeout(monkeypatch, HOLD_MS)
    shutdown_timeout = 0.5
    client = rollout.init(
        base_url=receiver.url,
        api_key=KEY,
        console=False,
        flush_interval=60.0,
        shutdown_timeout=shutdown_timeout,
    )
    exporter = batch_exporter()
    latch = receiver.stall()
    try:
        assert await run(mode, 0) == expected(0)
        assert latch.arrived.wait(5.0)  # the first run's batch is held
        for n in range(1, 5):
            assert await run(mode, n) == expected(n)
        assert client.stats().spans_queued == 4 * SPANS_PER_RUN

        if mode == "async":
            await asyncio.wait_for(rollout.ashutdown(), shutdown_timeout + SLACK)
        else:
            run_bounded(rollout.shutdown, shutdown_timeout + SLACK)
        assert latch.held == 1  # shutdown returned while the collector still held it
        assert (
            f"{4 * SPANS_PER_RUN} queued spans dropped, {SPANS_PER_RUN} still in flight"
            in caplog.text
        )

        stats = client.stats()
        assert stats.dropped["shutdown"] == 4 * SPANS_PER_RUN  # the queued, never sent
        assert stats.spans_queued == 0
        assert stats.spans_exported == 0
        # The batch on the wire stays in flight until its request ends (see below).
        assert stats.spans_in_flight == SPANS_PER_RUN
        assert accounted(stats) == stats.spans_started
        # Spans ending after shutdown: the caller still gets its value; counted, not sent.
        assert await run(mode, 9) == expected(9)
        assert client.stats().dropped["shutdown"] == 5 * SPANS_PER_RUN
    finally:
        latch.release()
    worker = exporter._worker
    assert worker is not None
    worker.join(10.0)  # the held export finishes once released
    assert not worker.is_alive()
    spans = receiver.wait_for_spans(SPANS_PER_RUN)
    assert_runs(spans, mode, [0])  # only the batch that was already on the wire
    stats = client.stats()
    assert stats.spans_started == 6 * SPANS_PER_RUN
    assert stats.spans_exported == SPANS_PER_RUN  # answered 200 once released
    assert stats.spans_failed == 0
    assert stats.spans_in_flight == 0
    assert accounted(stats) == stats.spans_started


# -- 5. bounded queue ----------------------------------------------------------------------------


@rollout.trace("burst")
def burst(count: int) -> list[int]:
    queued = []
    for n in range(count):
        fetch(n)
        queued.append(rollout.stats().spans_queued)
    return queued


@rollout.trace("aburst")
async def aburst(count: int) -> list[int]:
    queued = []
    for n in range(count):
        await afetch(n)
        queued.append(rollout.stats().spans_queued)
    return queued


@pytest.mark.parametrize("mode", MODES)
async def test_queue_overflow_drops_exactly_what_does_not_fit(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    export_timeout(monkeypatch, HOLD_MS)
    limit = 10
    rollout.init(
        base_url=receiver.url,
        api_key=KEY,
        console=False,
        flush_interval=60.0,
        max_queue_events=limit,
    )
    latch = receiver.stall()
    try:
        assert await run(mode, 100) == expected(100)
        assert latch.arrived.wait(5.0)  # the worker is stuck exporting the warm-up run
        warm_up = rollout.stats()
        assert (warm_up.spans_queued, warm_up.spans_in_flight) == (0, SPANS_PER_RUN)
        # 199 tool spans and their workflow root: 200 spans into a 10-span queue.
        queued = await aburst(199) if mode == "async" else burst(199)
        assert max(queued) == limit
        assert queued[: limit + 1] == [*range(1, limit + 1), limit]
        stats = rollout.stats()
        assert stats.spans_queued == limit
        assert stats.spans_in_flight == SPANS_PER_RUN
        assert stats.dropped["queue_full"] == 200 - limit
        assert accounted(stats) == stats.spans_started
        assert latch.held == 1
    finally:
        latch.release()
    assert await flush(mode, 10.0) is True
    spans = receiver.wait_for_spans(SPANS_PER_RUN + limit)
    assert len(spans) == SPANS_PER_RUN + limit
    tool = NAMES[mode].tool
    kept = [s for s in spans if s.name == tool and tool_input(s) != 100]
    assert sorted(tool_input(s) for s in kept) == list(range(limit))  # the first ten fit
    assert not any(s.name.endswith("burst") for s in spans)  # the root ended last: dropped
    stats = rollout.stats()
    assert stats.spans_exported == SPANS_PER_RUN + limit
    assert stats.spans_started == SPANS_PER_RUN + 200
    assert accounted(stats) == stats.spans_started


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


@pytest.mark.parametrize("mode", MODES)
async def test_queue_bytes_bound_drops_exactly_what_does_not_fit(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    export_timeout(monkeypatch, HOLD_MS)
    max_bytes = 60_000
    recorder = SizeRecorder()
    rollout.init(
        base_url=receiver.url,
        api_key=KEY,
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
        assert await run(mode, 100) == expected(100)
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
        assert stats.spans_in_flight == SPANS_PER_RUN  # the warm-up batch, held
        assert stats.dropped["queue_full"] == 13 - len(admitted)
        assert stats.dropped["oversize"] == 0
        assert accounted(stats) == stats.spans_started
    finally:
        latch.release()
    assert await flush(mode, 10.0) is True
    spans = receiver.wait_for_spans(SPANS_PER_RUN + len(admitted))
    assert len(spans) == SPANS_PER_RUN + len(admitted)
    assert sorted(s.name for s in spans[SPANS_PER_RUN:]) == sorted(admitted)
    outputs = [str(s.attributes[sc.ROLLOUT_OUTPUT])[:1] for s in spans if s.name == blob_name]
    assert sorted(outputs) == [str(n) for n in range(blobs)]  # the first ones fit
    stats = rollout.stats()
    assert stats.spans_exported == SPANS_PER_RUN + len(admitted)
    assert accounted(stats) == stats.spans_started


@pytest.mark.parametrize("delivery", ["batch", "sync_mode"])
@pytest.mark.parametrize("mode", MODES)
async def test_a_span_over_max_batch_bytes_is_counted_oversize_and_not_sent(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str, delivery: str
) -> None:
    # README: `max_batch_bytes` is the most one request carries; "one span bigger than
    # that is dropped and counted". sync_mode sends one span per request: same bound.
    export_timeout(monkeypatch, FAIL_FAST_MS)
    rollout.init(
        base_url=receiver.url,
        api_key=KEY,
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
    assert await run(mode, 1) == expected(1)
    assert await flush(mode, 5.0) is True
    spans = receiver.wait_for_spans(1 + SPANS_PER_RUN)
    names = sorted(s.name for s in spans)
    prefix = "a" if mode == "async" else ""
    assert f"invoke_agent {prefix}hoarder" in names
    stats = rollout.stats()
    assert f"execute_tool {prefix}blob" not in names, (
        f"a span over max_batch_bytes was sent; dropped: {stats.dropped}"
    )
    assert len(spans) == 1 + SPANS_PER_RUN
    assert all(b"7" * 10_000 not in r.body for r in receiver.requests)
    assert stats.dropped["oversize"] == 1
    assert stats.dropped["queue_full"] == 0
    assert stats.spans_exported == stats.spans_started - 1
    assert accounted(stats) == stats.spans_started


# -- 6. the API key stays in the Authorization header ------------------------------------------


def test_the_api_key_only_ever_leaves_in_the_authorization_header(
    receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    export_timeout(monkeypatch, FAIL_FAST_MS)
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records
    client = rollout.init(
        base_url=receiver.url, api_key=KEY, console=False, flush_interval=60.0, debug=True
    )
    receiver.respond_with(500)  # a refused export
    with pytest.raises(Boom):
        solver(-1)  # an exception inside a tool, recorded on its span
    assert rollout.flush(timeout=5.0) is False
    receiver.stop()  # an export that cannot connect
    assert solver(2) == expected(2)
    assert rollout.flush(timeout=5.0) is False
    receiver.start()
    assert solver(3) == expected(3)
    assert rollout.flush(timeout=5.0) is True
    assert client.check(verbose=True).ok
    stats = rollout.stats()
    assert stats.export_failures == 2

    requests = receiver.requests
    assert len(requests) >= 3
    for request in requests:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert KEY.encode() not in request.body
        assert KEY.encode() not in request.raw_body
        others = {k: v for k, v in request.headers.items() if k != "authorization"}
        assert KEY not in repr(others)
    # Once per request, in its authorization header line, and nowhere else.
    assert receiver.all_bytes().count(KEY.encode()) == len(requests)

    # The failures were logged (debug is on), and no record carries the key.
    assert any(r.name.startswith("mv37.rollout") for r in caplog.records)
    assert any(r.name.startswith("opentelemetry.exporter") for r in caplog.records)
    for record in caplog.records:
        assert KEY not in record.getMessage(), record.name
        assert KEY not in repr(record.args), record.name
        assert KEY not in (record.exc_text or ""), record.name
    assert KEY not in caplog.text
    out, err = capsys.readouterr()
    assert KEY not in out
    assert KEY not in err
    assert KEY not in repr(rollout.get_client())
    assert KEY not in repr(client.config)
    assert KEY not in str(client.config)
    assert KEY not in repr(client.destination)
    assert KEY not in repr(stats)


# -- 7. sync_mode ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_sync_mode_exports_each_span_before_the_call_returns(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    export_timeout(monkeypatch, FAIL_FAST_MS)
    rollout.init(base_url=receiver.url, api_key=KEY, console=False, sync_mode=True)
    names = NAMES[mode]
    seen_inside: list[list[str]] = []

    @rollout.agent("inline")
    def inline(n: int) -> int:
        value = plan(n)
        seen_inside.append([s.name for s in receiver.spans()])
        return value

    @rollout.agent("ainline")
    async def ainline(n: int) -> int:
        value = await aplan(n)
        seen_inside.append([s.name for s in receiver.spans()])
        return value

    assert (await ainline(4) if mode == "async" else inline(4)) == 16
    # Inside the agent, its finished children had already been delivered.
    assert seen_inside == [[names.tool, names.task]]
    assert len(receiver.spans()) == SPANS_PER_RUN  # and the agent itself, without flush()

    assert await run(mode, 2) == expected(2)
    assert len(receiver.spans()) == 2 * SPANS_PER_RUN
    assert rollout.stats().spans_exported == 2 * SPANS_PER_RUN

    receiver.stop()  # collector gone: calls still return, errors still pass through
    assert await run(mode, 3) == expected(3)
    with pytest.raises(Boom, match="bad n -3"):
        await run(mode, -3)
    stats = rollout.stats()
    assert stats.spans_failed == 2 * SPANS_PER_RUN
    assert stats.export_failures == 2 * SPANS_PER_RUN  # one export per span
    assert stats.spans_exported == 2 * SPANS_PER_RUN
    assert stats.spans_queued == 0
    assert accounted(stats) == stats.spans_started == 4 * SPANS_PER_RUN
    # flush() owns up to the failed exports once, like the batch queue's flush.
    assert await flush(mode, 5.0) is False
    assert await flush(mode, 5.0) is True


@pytest.mark.parametrize("mode", MODES)
async def test_sync_mode_counts_the_span_being_sent_in_flight(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    export_timeout(monkeypatch, HOLD_MS)
    client = rollout.init(base_url=receiver.url, api_key=KEY, console=False, sync_mode=True)
    latch = receiver.stall()
    results: list[int] = []

    def call() -> None:  # the caller's thread, stuck in the export of its first span
        results.append(asyncio.run(run(mode, 6)) if mode == "async" else solver(6))

    caller = threading.Thread(target=call, name="caller", daemon=True)
    caller.start()
    try:
        assert latch.arrived.wait(5.0)
        stats = client.stats()
        assert stats.spans_in_flight == 1  # the tool span, on the wire
        assert (stats.spans_queued, stats.spans_exported, stats.spans_failed) == (0, 0, 0)
        assert stats.spans_started == SPANS_PER_RUN
        # Its task and agent spans have started but not ended: in no counter yet.
        assert accounted(stats) == stats.spans_started - 2
        assert caller.is_alive()
    finally:
        latch.release()
    caller.join(10.0)
    assert not caller.is_alive()
    assert results == [expected(6)]
    assert_runs(receiver.wait_for_spans(SPANS_PER_RUN), mode, [6])
    stats = client.stats()
    assert (stats.spans_exported, stats.spans_in_flight) == (SPANS_PER_RUN, 0)
    assert accounted(stats) == stats.spans_started == SPANS_PER_RUN


# -- 8. flush() and aflush() ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_flush_true_means_already_delivered(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    export_timeout(monkeypatch, HOLD_MS)
    rollout.init(base_url=receiver.url, api_key=KEY, console=False, flush_interval=60.0)
    for n in range(5):
        assert await run(mode, n) == expected(n)
    assert await flush(mode, 5.0) is True
    assert_runs(receiver.spans(), mode, list(range(5)))  # no waiting: already there
    assert await flush(mode, 5.0) is True  # nothing queued, nothing failed


async def test_aflush_waits_for_a_stalled_collector_without_blocking_the_loop(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    export_timeout(monkeypatch, HOLD_MS)
    rollout.init(base_url=receiver.url, api_key=KEY, console=False, flush_interval=60.0)
    latch = receiver.stall()
    ran = asyncio.Event()
    seen: dict[str, object] = {}
    try:
        assert await asolver(1) == expected(1)
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
    assert_runs(receiver.spans(), "async", [1])


# -- 9. what the exporter logs -------------------------------------------------------------------

EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
EXPORT_THREAD = "mv37-rollout-export"


def warnings_from(caplog: pytest.LogCaptureFixture, prefix: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(prefix) and r.levelno >= logging.WARNING]


@pytest.mark.parametrize("delivery", ["batch", "sync_mode"])
@pytest.mark.parametrize("mode", MODES)
async def test_a_failing_collector_logs_one_warning_naming_the_url_the_rest_at_debug(
    receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    delivery: str,
) -> None:
    export_timeout(monkeypatch, FAIL_FAST_MS)
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records
    sync_mode = delivery == "sync_mode"
    client = rollout.init(
        base_url=receiver.url,
        api_key=KEY,
        console=False,
        flush_interval=60.0,
        sync_mode=sync_mode,
    )
    # Six 503s, retried at once: the exporter warns five times, then gives up (an error).
    receiver.respond_with(*[503] * 6, retry_after="0")
    assert await run(mode, 1) == expected(1)
    assert await flush(mode, 5.0) is False
    receiver.stop()  # then nothing listens: an error per export
    assert await run(mode, 2) == expected(2)
    assert await flush(mode, 5.0) is False
    stats = client.stats()
    # sync_mode: the first span took the six 503s, its two parents were accepted.
    assert stats.export_failures == (1 + SPANS_PER_RUN if sync_mode else 2)
    assert stats.spans_exported == (2 if sync_mode else 0)
    assert accounted(stats) == stats.spans_started == 2 * SPANS_PER_RUN

    [warning] = warnings_from(caplog, "mv37.rollout")  # one, for all those failures
    message = warning.getMessage()
    assert receiver.endpoint in message
    assert "keeps retrying" in message
    assert "stats()" in message
    assert KEY not in message
    assert warnings_from(caplog, "opentelemetry") == []
    # The exporter's own records are still there, at debug level, from where we export.
    exporter_records = [r for r in caplog.records if r.name == EXPORTER_LOGGER]
    assert {r.levelno for r in exporter_records} == {logging.DEBUG}
    assert sum("Transient error" in r.getMessage() for r in exporter_records) == 5
    failed = [r for r in exporter_records if r.getMessage().startswith("Failed to export")]
    assert len(failed) == stats.export_failures
    ours = threading.current_thread().name if sync_mode else EXPORT_THREAD
    assert {r.threadName for r in exporter_records} == {ours}


@pytest.mark.parametrize("mode", MODES)
async def test_each_client_warns_once_about_its_own_destination(
    receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    # Default levels: nothing of the exporter's reaches a handler; ours warn once each.
    export_timeout(monkeypatch, HOLD_MS)
    receiver.respond_with(500, 500, 500, 500)  # refused, not retried
    with OTLPReceiver() as other:
        other.respond_with(500, 500)
        first = rollout.init(base_url=receiver.url, console=False, flush_interval=60.0)
        for n in (1, 2):
            assert await run(mode, n) == expected(n)
            assert await flush(mode, 5.0) is False
        second = rollout.init(base_url=other.url, console=False, flush_interval=60.0)
        for n in (3, 4):
            assert await run(mode, n) == expected(n)
            assert await flush(mode, 5.0) is False
    assert (first.stats().export_failures, second.stats().export_failures) == (2, 2)
    warned = [(r.name, r.levelno) for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == [("mv37.rollout", logging.WARNING)] * 2, caplog.text
    assert receiver.endpoint in caplog.records[0].getMessage()
    assert other.endpoint in caplog.records[1].getMessage()


def user_spans() -> tuple[ReadableSpan, ...]:
    """Spans of the user's own, made with a provider of their own."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("user.app").start_as_current_span("user work"):
        pass
    provider.shutdown()
    return memory.get_finished_spans()


@pytest.mark.parametrize("delivery", ["batch", "sync_mode"])
@pytest.mark.parametrize("mode", MODES)
async def test_a_users_own_exporter_still_warns_as_before(
    receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    delivery: str,
) -> None:
    export_timeout(monkeypatch, HOLD_MS)
    caplog.set_level(logging.DEBUG)
    rollout.init(
        base_url=receiver.url,
        api_key=KEY,
        console=False,
        flush_interval=60.0,
        sync_mode=delivery == "sync_mode",
    )
    receiver.respond_with(503, retry_after="0")  # ours: one transient error, then accepted
    assert await run(mode, 1) == expected(1)
    assert await flush(mode, 5.0) is True
    assert_runs(receiver.wait_for_spans(SPANS_PER_RUN), mode, [1])

    with OTLPReceiver() as theirs:
        exporter = OTLPSpanExporter(endpoint=theirs.endpoint, timeout=8)
        results: list[SpanExportResult] = []
        # Their exporter, in a thread of theirs and in this one (where sync_mode exports).
        theirs.respond_with(503, retry_after="0")
        thread = threading.Thread(
            target=lambda: results.append(exporter.export(user_spans())), name="user-export"
        )
        thread.start()
        thread.join(10.0)
        assert not thread.is_alive()
        theirs.respond_with(503, retry_after="0")
        results.append(exporter.export(user_spans()))
        exporter.shutdown()  # type: ignore[no-untyped-call]
        assert results == [SpanExportResult.SUCCESS] * 2
        assert [s.name for s in theirs.wait_for_spans(2)] == ["user work"] * 2

    theirs_warned = warnings_from(caplog, "opentelemetry")
    assert [(r.name, r.threadName) for r in theirs_warned] == [
        (EXPORTER_LOGGER, "user-export"),
        (EXPORTER_LOGGER, threading.current_thread().name),
    ]
    assert all("Transient error" in r.getMessage() for r in theirs_warned)
    [ours] = warnings_from(caplog, "mv37.rollout")
    assert receiver.endpoint in ours.getMessage()
