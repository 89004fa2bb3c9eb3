"""`agent_flush`: a short-lived process delivers its traces before it goes away.

With `agent_flush="wait"` (`ROLLOUT_AGENT_FLUSH`, the default on AWS Lambda, Cloud
Functions and Azure Functions) the end of an `@agent` call, or of a root trace, waits
until the trace's spans are delivered, bounded by `shutdown_timeout`. The proofs run a
child Python process that calls an agent and then `os._exit(0)`s at once (no `atexit`
flush, like a frozen or killed function), against a real `OTLPReceiver` on 127.0.0.1;
`background` is the control that shows those tests can fail. Nothing sleeps: the
receiver's latches, flush counters and what is still queued.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value

import mv37.rollout as rollout
from mv37.rollout import Rollout, resolve_config
from mv37.rollout.base._config import SERVERLESS_VARIABLES
from mv37.rollout.pipeline._pipeline import Pipeline
from mv37.rollout.testing import OTLPReceiver, ReceivedSpan

SLACK = 3.0
"""Extra seconds a bounded call may take on a loaded machine (bounds only, never waits)."""


@pytest.fixture(autouse=True)
def _no_serverless_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine running the tests may itself look serverless; start from neither."""
    for name in SERVERLESS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# -- configuration -----------------------------------------------------------------------


def test_default_is_background() -> None:
    assert resolve_config({}).agent_flush == "background"
    assert Rollout(console=False).config.agent_flush == "background"


@pytest.mark.parametrize("raw", ["wait", "background", " WAIT ", "Background"])
def test_argument_is_read(raw: str) -> None:
    assert resolve_config({}, agent_flush=raw).agent_flush == raw.strip().lower()


@pytest.mark.parametrize("raw", ["wait", "background", "Wait"])
def test_env_var_is_read(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("ROLLOUT_AGENT_FLUSH", raw)
    assert resolve_config().agent_flush == raw.lower()
    assert rollout.init(console=False).config.agent_flush == raw.lower()


def test_argument_beats_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_AGENT_FLUSH", "wait")
    assert resolve_config(agent_flush="background").agent_flush == "background"


@pytest.mark.parametrize("raw", ["later", "sync", "true", "1", True, 0])
def test_invalid_argument_names_it_and_the_values(raw: Any) -> None:
    for build in (resolve_config, Rollout, rollout.init):
        with pytest.raises(ValueError, match="argument agent_flush") as info:
            build(agent_flush=raw)
        assert "background, wait" in str(info.value)


def test_invalid_env_var_names_it_and_the_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_AGENT_FLUSH", "eventually")
    for build in (resolve_config, Rollout, rollout.init):
        with pytest.raises(ValueError, match="ROLLOUT_AGENT_FLUSH") as info:
            build()
        assert "background, wait" in str(info.value)


@pytest.mark.parametrize("variable", SERVERLESS_VARIABLES)
def test_serverless_runtime_defaults_to_wait(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, variable: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="mv37.rollout")
    monkeypatch.setenv(variable, "handler")
    assert resolve_config().agent_flush == "wait"
    assert rollout.init(console=False).config.agent_flush == "wait"
    said = [r.getMessage() for r in caplog.records if "serverless" in r.getMessage()]
    assert len(said) == 1, said  # one debug line, not one per client
    assert variable in said[0]
    assert "'wait'" in said[0]
    levels = {r.levelno for r in caplog.records if "serverless" in r.getMessage()}
    assert levels == {logging.DEBUG}


@pytest.mark.parametrize("variable", SERVERLESS_VARIABLES)
def test_empty_serverless_variable_is_not_a_runtime(variable: str) -> None:
    assert resolve_config({variable: ""}).agent_flush == "background"
    assert resolve_config({variable: "  "}).agent_flush == "background"


@pytest.mark.parametrize("variable", SERVERLESS_VARIABLES)
def test_explicit_setting_beats_detection(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, variable: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="mv37.rollout")
    monkeypatch.setenv(variable, "handler")
    assert resolve_config(agent_flush="background").agent_flush == "background"
    monkeypatch.setenv("ROLLOUT_AGENT_FLUSH", "background")
    assert resolve_config().agent_flush == "background"
    assert not [r for r in caplog.records if "serverless" in r.getMessage()]


def test_detection_reads_the_mapping_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fn")
    assert resolve_config({}).agent_flush == "background"
    assert resolve_config({"FUNCTIONS_WORKER_RUNTIME": "python"}).agent_flush == "wait"


# -- in process: who waits, and when ---------------------------------------------------


class FlushCounter:
    """Counts `Pipeline.flush` calls (the wait is one), passing them through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = Pipeline.flush

        def counted(pipeline: Pipeline, timeout: float | None = None) -> bool:
            self.calls += 1
            return original(pipeline, timeout)

        monkeypatch.setattr(Pipeline, "flush", counted)


@pytest.fixture
def flushes(monkeypatch: pytest.MonkeyPatch) -> FlushCounter:
    return FlushCounter(monkeypatch)


def _init(receiver: OTLPReceiver, **options: Any) -> Rollout:
    options.setdefault("agent_flush", "wait")
    return rollout.init(base_url=receiver.url, console=False, flush_interval=60.0, **options)


@rollout.tool("lookup")
def lookup(query: str) -> str:
    return query.upper()


@rollout.agent("inner")
def inner(query: str) -> str:
    return lookup(query)


def _names(spans: list[ReceivedSpan]) -> list[str]:
    return sorted(span.name for span in spans)


def test_agent_call_returns_after_its_trace_arrived(
    receiver: OTLPReceiver, flushes: FlushCounter
) -> None:
    _init(receiver)
    assert inner("hi") == "HI"
    # No flush, no wait here: the spans were in the receiver when the call returned.
    assert _names(receiver.spans()) == ["execute_tool lookup", "invoke_agent inner"]
    assert flushes.calls == 1
    assert rollout.get_client().stats().spans_queued == 0


def test_nested_agent_does_not_wait_only_the_root_does(
    receiver: OTLPReceiver, flushes: FlushCounter
) -> None:
    client = _init(receiver)
    seen: dict[str, object] = {}

    @rollout.agent("outer")
    def outer(query: str) -> str:
        answer = inner(query)  # a nested agent: its end must not wait
        seen["flushes"] = flushes.calls
        seen["queued"] = client.stats().spans_queued
        seen["received"] = len(receiver.spans())
        return answer

    assert outer("hi") == "HI"
    assert seen == {"flushes": 0, "queued": 2, "received": 0}
    assert flushes.calls == 1
    spans = receiver.spans()
    assert _names(spans) == ["execute_tool lookup", "invoke_agent inner", "invoke_agent outer"]
    by_name = {span.name: span for span in spans}
    assert by_name["invoke_agent inner"].parent_span_id == by_name["invoke_agent outer"].span_id


def test_root_trace_waits_and_its_explicit_end_too(
    receiver: OTLPReceiver, flushes: FlushCounter
) -> None:
    client = _init(receiver)
    with rollout.trace("job"):
        lookup("a")
    assert _names(receiver.spans()) == ["execute_tool lookup", "invoke_workflow job"]
    trace = client.trace("explicit")
    trace.end()
    trace.end()  # already ended: no second wait
    assert flushes.calls == 2
    assert len(receiver.spans()) == 3


def test_error_is_reraised_and_its_trace_delivered(receiver: OTLPReceiver) -> None:
    _init(receiver)
    failure = KeyError("missing")

    @rollout.agent("fails")
    def fails() -> None:
        raise failure

    with pytest.raises(KeyError) as raised:
        fails()
    assert raised.value is failure
    (span,) = receiver.spans()
    assert span.name == "invoke_agent fails"
    assert span.status_code == "ERROR"


def test_background_only_wakes_the_worker(receiver: OTLPReceiver, flushes: FlushCounter) -> None:
    _init(receiver, agent_flush="background")
    inner("hi")
    assert flushes.calls == 0
    rollout.flush()
    assert len(receiver.spans()) == 2


def test_sync_mode_has_nothing_to_wait_for(receiver: OTLPReceiver, flushes: FlushCounter) -> None:
    _init(receiver, sync_mode=True)
    inner("hi")
    assert flushes.calls == 0
    assert len(receiver.spans()) == 2


def test_sampled_out_trace_does_not_wait(receiver: OTLPReceiver, flushes: FlushCounter) -> None:
    _init(receiver, sample_rate=0.0)
    assert inner("hi") == "HI"
    assert flushes.calls == 0


def test_no_wait_while_instrumentation_is_suppressed(
    receiver: OTLPReceiver, flushes: FlushCounter
) -> None:
    # The flag exporters run under: the SDK's batch processor flushes inline, under the
    # lock its own export holds, so a wait there could never finish.
    client = _init(receiver)
    token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        inner("hi")
    finally:
        detach(token)
    assert flushes.calls == 0
    assert client.flush()
    assert len(receiver.spans()) == client.stats().spans_exported


def test_root_trace_ended_on_the_export_worker_does_not_wait_for_itself(
    receiver: OTLPReceiver,
) -> None:
    # A before_send runs on the export worker; a root trace it ends must not make the
    # worker wait for its own queue (that would stall it for shutdown_timeout).
    on_worker: list[str] = []

    def before_send(event: dict[str, Any]) -> dict[str, Any]:
        if not on_worker:
            on_worker.append(threading.current_thread().name)
            with rollout.trace("from_worker"):
                pass
        return event

    client = _init(receiver, before_send=before_send, shutdown_timeout=5.0)
    started = time.monotonic()
    inner("hi")
    elapsed = time.monotonic() - started
    assert len(on_worker) == 1
    assert on_worker[0] != threading.current_thread().name  # it ran on the worker
    assert elapsed < 2.5, f"the agent call took {elapsed:.2f}s"
    assert client.flush(timeout=5.0)
    assert "invoke_workflow from_worker" in _names(receiver.spans())


# -- a child process that exits the moment its agent returns -----------------------------

CHILD = r"""
import asyncio, json, os, sys, time
import mv37.rollout as rollout

@rollout.tool("lookup")
def lookup(query):
    return query.upper()

@rollout.agent("helper")
def helper(query):
    return lookup(query)

@rollout.agent("ahelper")
async def ahelper(query):
    return lookup(query)

kind, shutdown_timeout, report = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "report"
client = rollout.init(flush_interval=60.0, shutdown_timeout=shutdown_timeout)
print(json.dumps({"agent_flush": client.config.agent_flush}), flush=True)
started = time.monotonic()

def done():
    # Gone the moment the call returns (no atexit flush, no I/O first): a frozen or
    # killed function. Only the collector-down test reports, after its call.
    if report:
        stats = client.stats()
        print(json.dumps({"elapsed": time.monotonic() - started,
                          "export_failures": stats.export_failures,
                          "spans_failed": stats.spans_failed}), flush=True)
    os._exit(0)

if kind == "sync":
    assert helper("hi") == "HI"
    done()
elif kind == "async":
    async def main():
        assert await ahelper("hi") == "HI"
        done()
    asyncio.run(main())
else:
    with rollout.trace("job"):
        lookup("hi")
    done()
"""

ROOTS = {
    "sync": "invoke_agent helper",
    "async": "invoke_agent ahelper",
    "trace": "invoke_workflow job",
}
KINDS = sorted(ROOTS)


def _run_child(
    kind: str,
    url: str,
    extra_env: dict[str, str],
    *,
    shutdown_timeout: float = 5.0,
    report: bool = False,
) -> dict[str, Any]:
    """Run the child; what it printed (one JSON object a line), merged."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ROLLOUT_", "OTEL_")) and key not in SERVERLESS_VARIABLES
    }
    env.update({"ROLLOUT_BASE_URL": url, "ROLLOUT_CONSOLE": "false", **extra_env})
    argv = [kind, str(shutdown_timeout), "report" if report else "exit"]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    printed: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        printed.update(json.loads(line))
    return printed


def _assert_whole_trace(spans: list[ReceivedSpan], root_name: str) -> None:
    assert _names(spans) == sorted([root_name, "execute_tool lookup"])
    by_name = {span.name: span for span in spans}
    root, tool = by_name[root_name], by_name["execute_tool lookup"]
    assert root.parent_span_id is None
    assert tool.trace_id == root.trace_id
    assert tool.parent_span_id == root.span_id


WAITING_ENVS: dict[str, dict[str, str]] = {
    "wait": {"ROLLOUT_AGENT_FLUSH": "wait"},
    "lambda": {"AWS_LAMBDA_FUNCTION_NAME": "fn"},
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("setting", sorted(WAITING_ENVS))
def test_child_exiting_right_after_the_call_delivers_the_whole_trace(
    receiver: OTLPReceiver, kind: str, setting: str
) -> None:
    report = _run_child(kind, receiver.url, WAITING_ENVS[setting])
    assert report["agent_flush"] == "wait"
    # The child is gone; its spans arrived before it left.
    _assert_whole_trace(receiver.wait_for_spans(2, timeout=5.0), ROOTS[kind])


BACKGROUND_ENVS: dict[str, dict[str, str]] = {
    "background": {"ROLLOUT_AGENT_FLUSH": "background"},
    "lambda-but-background": {
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "ROLLOUT_AGENT_FLUSH": "background",
    },
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("setting", sorted(BACKGROUND_ENVS))
def test_control_background_child_loses_its_trace(
    receiver: OTLPReceiver, kind: str, setting: str
) -> None:
    report = _run_child(kind, receiver.url, BACKGROUND_ENVS[setting])
    assert report["agent_flush"] == "background"
    assert receiver.requests == []


@pytest.mark.parametrize("kind", KINDS)
def test_collector_down_wait_is_bounded_quiet_and_counted(dead_url: str, kind: str) -> None:
    shutdown_timeout = 2.0
    report = _run_child(
        kind,
        dead_url,
        {"ROLLOUT_AGENT_FLUSH": "wait", "OTEL_EXPORTER_OTLP_TIMEOUT": "500"},
        shutdown_timeout=shutdown_timeout,
        report=True,
    )
    assert report["elapsed"] < shutdown_timeout + SLACK
    assert report["export_failures"] >= 1
    assert report["spans_failed"] == 2


def test_collector_down_in_process_returns_within_the_bound(
    dead_url: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # A 10 s export timeout: the exporter keeps retrying the refused connection far
    # longer than the wait may take; the call returns at shutdown_timeout.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "10000")
    client = rollout.init(
        base_url=dead_url, console=False, agent_flush="wait", shutdown_timeout=0.5
    )
    started = time.monotonic()
    assert inner("hi") == "HI"
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 0.5 + SLACK
    stats = client.stats()
    assert stats.spans_in_flight + stats.spans_failed + stats.spans_queued == 2
    assert "Traceback" not in capfd.readouterr().err


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def time_wait_calls(call: Callable[[], object], count: int = 5) -> float:
    """The median time of `count` calls (used by the report, not asserted tightly)."""
    times = []
    for _ in range(count):
        started = time.monotonic()
        call()
        times.append(time.monotonic() - started)
    return _median(times)


def test_wait_against_a_live_receiver_is_one_round_trip(receiver: OTLPReceiver) -> None:
    _init(receiver)
    median = time_wait_calls(lambda: inner("hi"))
    assert median < 1.0, f"median wait {median:.3f}s"
    assert len(receiver.spans()) == 10


@pytest.mark.parametrize("opener", ["decorator", "with_block"])
async def test_async_wait_leaves_the_event_loop_running(
    receiver: OTLPReceiver, opener: str
) -> None:
    """An async agent's wait runs off the loop: other tasks progress while it waits."""
    _init(receiver)
    latch = receiver.stall()

    @rollout.agent("async_agent")
    async def async_agent() -> str:
        return "done"

    async def run() -> str:
        if opener == "decorator":
            return await async_agent()
        async with rollout.trace("async_block"):
            return "done"

    waiting = asyncio.create_task(run())
    # The export request is held by the receiver, so the agent is now waiting on it.
    assert await asyncio.to_thread(latch.arrived.wait, 10.0)
    ticks = 0
    for _ in range(5):
        await asyncio.sleep(0)  # would never run if the wait blocked the loop
        ticks += 1
    assert not waiting.done()
    latch.release()
    assert await waiting == "done"
    assert ticks == 5
    expected = (
        "invoke_agent async_agent" if opener == "decorator" else "invoke_workflow async_block"
    )
    assert _names(receiver.spans()) == [expected]
