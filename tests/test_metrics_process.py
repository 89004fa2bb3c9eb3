"""Metrics and the process (issue 14): a forked child posts its own operations, never the
parent's; the metric export never traces itself with the HTTP instrumentors on.

The receiver lives in the parent; a forked child inherits its listening socket.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Iterator

import pytest

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import OTLPReceiver

pytestmark = pytest.mark.usefixtures("metrics_on")  # ROLLOUT_METRICS unset: on
TOOL = sc.METRIC_GEN_AI_EXECUTE_TOOL_DURATION


@rollout.tool("step")
def step(tag: str) -> str:
    return tag


@rollout.trace("work")
def work(tag: str) -> None:
    step(tag)


def _fork(child: Callable[[], int], *, timeout: float = 20.0) -> int:
    """Run `child` in a forked process; its return value is the exit code."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            code = child()
        finally:
            os._exit(code)
    result: list[int] = []
    waiter = threading.Thread(target=lambda: result.append(os.waitpid(pid, 0)[1]), daemon=True)
    waiter.start()
    waiter.join(timeout)
    if waiter.is_alive():
        os.kill(pid, 9)
        waiter.join()
        pytest.fail(f"forked child did not finish within {timeout}s")
    return os.waitstatus_to_exitcode(result[0])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # forking with threads: the point
def test_a_forked_child_posts_its_own_operations(receiver: OTLPReceiver) -> None:
    """Parent: 2 tool calls before the fork, 1 after; child: 3 of its own. The child's
    export counts 3; the parent's counts 3 (it never sees the child's)."""
    rollout.init(base_url=receiver.url, console=False)
    work("a")
    work("b")

    def child() -> int:
        for tag in ("c", "d", "e"):
            work(tag)
        if not rollout.flush(timeout=10):
            return 2
        return 0 if rollout.stats().metric_exports == 1 else 3

    assert _fork(child) == 0
    [from_child] = receiver.points(TOOL)
    assert from_child.count == 3
    work("f")
    assert rollout.flush()
    counts = [p.count for p in receiver.points(TOOL)]
    assert counts == [3, 3]
    assert rollout.stats().metric_exports == 1


@pytest.fixture
def requests_instrumented() -> Iterator[None]:
    """The real `requests` instrumentor on (as `opentelemetry-instrument` would)."""
    module = pytest.importorskip("opentelemetry.instrumentation.requests")
    importlib.import_module("requests")
    instrumentor = module.RequestsInstrumentor()
    instrumentor.instrument()
    try:
        yield
    finally:
        instrumentor.uninstrument()


def test_the_metric_export_never_traces_itself(
    receiver: OTLPReceiver, requests_instrumented: None
) -> None:
    """With `requests` instrumented, our /v1/metrics POSTs make no span: over several
    flushes only the agent's own spans arrive."""
    rollout.init(base_url=receiver.url, console=False)
    for tag in ("a", "b", "c"):
        work(tag)
        assert rollout.flush()
    assert rollout.flush()
    assert len(receiver.metric_requests()) >= 3
    names = sorted({span.name for span in receiver.spans()})
    assert names == ["execute_tool step", "invoke_workflow work"]
    assert len(receiver.spans()) == 6
