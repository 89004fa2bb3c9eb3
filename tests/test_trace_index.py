"""The trace index forgets roots as they end and stays bounded for roots that never end."""

from __future__ import annotations

import pytest

import mv37.rollout as rollout
from mv37.rollout.facade import _targets
from mv37.rollout.facade._trace import Trace
from mv37.rollout.testing import CapturedSpans


def open_roots(index: _targets.TraceIndex) -> list[Trace]:
    """The roots the index holds as still running."""
    return [root for root in index._roots.values() if isinstance(root, Trace)]


def test_ended_roots_leave_the_open_index(captured: CapturedSpans) -> None:
    """A finished trace is no longer held as open: late feedback goes to a carrier span."""
    index = rollout.get_client().traces
    for _ in range(50):
        with rollout.trace("short"):
            pass
    assert open_roots(index) == []
    with rollout.trace("kept") as trace:
        assert open_roots(index) == [trace]
        with rollout.trace("nested"):
            pass
        assert open_roots(index) == [trace]
    assert open_roots(index) == []
    rollout.feedback("thumbs", True, trace_id=trace.trace_id)
    carrier = captured.by_name("feedback thumbs")
    assert carrier["trace_id"] == trace.trace_id


def test_open_roots_are_bounded(captured: CapturedSpans, monkeypatch: pytest.MonkeyPatch) -> None:
    """Roots that are never ended keep only the newest MAX_REMEMBERED entries."""
    monkeypatch.setattr(_targets, "MAX_REMEMBERED", 3)
    client = rollout.get_client()
    opened = [client.trace(f"t{i}") for i in range(5)]
    assert open_roots(client.traces) == opened[-3:]
    for trace in opened:
        trace.end()
    assert open_roots(client.traces) == []
    # The ended ones left their facts in place; the evicted ones are forgotten.
    known = [client.traces.root_facts(int(t.trace_id, 16)) for t in opened]
    assert known[:2] == [None, None]
    for trace, facts in zip(opened[2:], known[2:], strict=True):
        assert facts is not None
        span_id, _, end = facts
        assert f"{span_id:016x}" == trace.span_id
        assert end == trace.otel_span.end_time  # type: ignore[attr-defined]


def test_ended_roots_are_bounded_with_the_open_ones(
    captured: CapturedSpans, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ended roots count against the same bound: the newest MAX_REMEMBERED are kept."""
    monkeypatch.setattr(_targets, "MAX_REMEMBERED", 3)
    client = rollout.get_client()
    ids = []
    for i in range(5):
        with rollout.trace(f"t{i}") as trace:
            ids.append(int(trace.trace_id, 16))
    assert [client.traces.root_facts(i) is not None for i in ids] == [False, False] + [True] * 3
