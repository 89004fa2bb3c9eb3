"""The trace index forgets roots as they end and stays bounded for roots that never end."""

from __future__ import annotations

import pytest

import mv37.rollout as rollout
from mv37.rollout.facade import _targets
from mv37.rollout.testing import CapturedSpans


def test_ended_roots_leave_the_open_index(captured: CapturedSpans) -> None:
    """A finished trace is no longer held as open: late feedback goes to a carrier span."""
    index = rollout.get_client().traces
    for _ in range(50):
        with rollout.trace("short"):
            pass
    assert index._open == {}
    with rollout.trace("kept") as trace:
        assert list(index._open.values()) == [trace]
        with rollout.trace("nested"):
            pass
        assert list(index._open.values()) == [trace]
    assert index._open == {}
    rollout.feedback("thumbs", True, trace_id=trace.trace_id)
    carrier = captured.by_name("feedback thumbs")
    assert carrier["trace_id"] == trace.trace_id


def test_open_roots_are_bounded(captured: CapturedSpans, monkeypatch: pytest.MonkeyPatch) -> None:
    """Roots that are never ended keep only the newest MAX_REMEMBERED entries."""
    monkeypatch.setattr(_targets, "MAX_REMEMBERED", 3)
    client = rollout.get_client()
    opened = [client.trace(f"t{i}") for i in range(5)]
    assert list(client.traces._open.values()) == opened[-3:]
    for trace in opened:
        trace.end()
    assert client.traces._open == {}
