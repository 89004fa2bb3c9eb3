"""Fork safety: a forked child exports its own spans, never the parent's, and never hangs.

The receiver lives in the parent; a child inherits its listening socket, so the
parent's server thread also answers the child's requests.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import Counter
from collections.abc import Callable

import pytest

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import OTLPReceiver

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    # Python 3.12+ warns when forking a process that has threads; that is the point here.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@rollout.tool("step")
def step(tag: str) -> str:
    return tag


@rollout.trace("work")
def work(tag: str) -> None:
    step(tag)


def _inputs(receiver: OTLPReceiver) -> Counter[str]:
    """How many tool spans arrived per tag."""
    return Counter(
        str(span.attributes[sc.INPUT_VALUE])
        for span in receiver.spans()
        if span.name == "execute_tool step"
    )


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


def test_child_exports_its_own_spans_and_never_the_parents(receiver: OTLPReceiver) -> None:
    rollout.init(base_url=receiver.url, flush_interval=60.0)
    work("parent-before")  # queued, not yet sent, when we fork

    def child() -> int:
        work("child")
        if not rollout.flush(timeout=10):
            return 2
        stats = rollout.stats()
        # The child counts its own spans only: one trace and one tool.
        return 0 if (stats.spans_started, stats.spans_exported) == (2, 2) else 3

    assert _fork(child) == 0
    work("parent-after")
    assert rollout.flush()
    receiver.wait_for_spans(6)
    assert _inputs(receiver) == Counter(
        {'{"tag": "parent-before"}': 1, '{"tag": "child"}': 1, '{"tag": "parent-after"}': 1}
    )
    assert len(receiver.spans()) == 6
    assert rollout.stats().spans_exported == 4


def test_multiprocessing_fork_child_delivers_without_calling_flush(
    receiver: OTLPReceiver,
) -> None:
    rollout.init(base_url=receiver.url, flush_interval=60.0)
    work("parent")
    process = multiprocessing.get_context("fork").Process(target=work, args=("mp-child",))
    process.start()
    process.join(30)
    assert process.exitcode == 0
    assert rollout.flush()
    receiver.wait_for_spans(4)
    assert _inputs(receiver) == Counter({'{"tag": "parent"}': 1, '{"tag": "mp-child"}': 1})


def test_flush_in_a_child_forked_mid_export_does_not_hang(receiver: OTLPReceiver) -> None:
    rollout.init(base_url=receiver.url, flush_interval=60.0, shutdown_timeout=2.0)
    latch = receiver.stall()
    work("parent")
    rollout.get_client()._kick_flush()
    assert latch.arrived.wait(10), "the parent's export never reached the receiver"
    # The parent's export thread is now inside an HTTP request (holding its locks).

    def child() -> int:
        work("child")
        rollout.flush(timeout=1.0)  # the collector stalls: False, but it returns
        rollout.shutdown()
        return 0

    try:
        assert _fork(child) == 0
    finally:
        latch.release()
    assert rollout.flush()
    assert _inputs(receiver)['{"tag": "parent"}'] == 1


def test_child_of_a_sync_mode_client_exports_inline(receiver: OTLPReceiver) -> None:
    rollout.init(base_url=receiver.url, sync_mode=True)

    def child() -> int:
        work("child")
        return 0 if rollout.stats().spans_exported == 2 else 2

    assert _fork(child) == 0
    assert _inputs(receiver) == Counter({'{"tag": "child"}': 1})
