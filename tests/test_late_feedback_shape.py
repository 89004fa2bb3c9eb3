"""Late feedback keeps the trace's timing and shape (issue 15 §2).

A feedback, signal or identity for a trace that already ended rides a carrier span that
is never a second root and never stretches the trace: its parent is the trace's root
(known here, or derived from the trace id in another process), it is zero-length
inside the trace's time range, and the moment it really arrived is kept in
`rollout.carrier.received_at` and as its events' time.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from opentelemetry import trace as otel_trace

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans, OTLPReceiver, capture_spans
from mv37.rollout.vocabulary._ids import root_span_id, trace_start_ns


async def _a_run(
    asynchronous: bool, user_id: str | None = None, session_id: str | None = None
) -> rollout.Trace:
    scope = rollout.trace("run", user_id=user_id, session_id=session_id)
    if asynchronous:
        async with scope as trace:
            with trace.tool("lookup"):
                pass
    else:
        with scope as trace, trace.tool("lookup"):
            pass
    return trace


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_a_new_root_has_a_timed_trace_id_and_the_derived_span_id(
    captured: CapturedSpans, asynchronous: bool
) -> None:
    before = time.time_ns()
    trace = await _a_run(asynchronous)
    root = next(s for s in captured.spans() if s.parent is None)
    assert root.context is not None
    trace_id = root.context.trace_id
    assert root.context.span_id == root_span_id(trace_id)
    assert trace.span_id == f"{root_span_id(trace_id):016x}"
    # The trace id records the root's start, to the microsecond it started at.
    assert trace_start_ns(trace_id) == root.start_time
    assert before - 1000 <= (root.start_time or 0) <= time.time_ns()
    # The low 64 bits (what ratio samplers read) stay random across traces.
    other = await _a_run(asynchronous)
    assert int(other.trace_id, 16) & (2**64 - 1) != trace_id & (2**64 - 1)


@pytest.mark.parametrize("rate", [0.999, 1.0])
def test_presampled_roots_get_the_derived_span_id_too(rate: float) -> None:
    with capture_spans(sample_rate=rate) as captured:
        for _ in range(20):
            with rollout.trace("run"):
                pass
        roots = captured.spans()
    assert roots
    for root in roots:
        assert root.context is not None
        assert root.context.span_id == root_span_id(root.context.trace_id)
        assert trace_start_ns(root.context.trace_id) == root.start_time


def test_a_foreign_root_on_our_provider_gets_the_derived_span_id(
    captured: CapturedSpans,
) -> None:
    tracer = otel_trace.get_tracer_provider().get_tracer("someone.else")
    with tracer.start_as_current_span("GET /orders"), rollout.trace("run"):
        pass
    spans = {s.name: s for s in captured.spans()}
    server = spans["GET /orders"]
    assert server.context is not None
    assert server.parent is None
    assert server.context.span_id == root_span_id(server.context.trace_id)
    # The Rollout trace inside is not an OTel root: a span id of its own.
    inner = spans["invoke_workflow run"]
    assert inner.context is not None
    assert inner.context.span_id != root_span_id(inner.context.trace_id)


def test_roots_sharing_a_callers_trace_id_get_distinct_span_ids(
    captured: CapturedSpans,
) -> None:
    chosen = "4bf92f3577b34da6a3ce929d0e0e4736"
    for _ in range(2):
        with rollout.trace("run", trace_id=chosen):
            pass
    roots = captured.spans()
    ids = {r.context.span_id for r in roots if r.context is not None}
    assert len(roots) == 2
    assert len(ids) == 2
    assert trace_start_ns(int(chosen, 16)) is None  # not a timed id: no start to read


@pytest.mark.parametrize("kind", ["feedback", "signal", "identify_user"])
@pytest.mark.parametrize("asynchronous", [False, True])
async def test_in_this_process_the_carrier_sits_at_the_roots_end_under_the_root(
    captured: CapturedSpans, kind: str, asynchronous: bool
) -> None:
    trace = await _a_run(asynchronous, user_id="u-7", session_id="s-9")
    before = time.time_ns()
    if kind == "identify_user":
        rollout.identify_user("u-7", trace_id=trace.trace_id, traits={"plan": "pro"})
    else:
        getattr(rollout, kind)("csat", 5, trace_id=trace.trace_id)
    after = time.time_ns()
    spans = captured.spans()
    root = next(s for s in spans if s.parent is None)
    carrier = spans[-1]
    assert [s for s in spans if s.parent is None] == [root]  # one root
    assert carrier.parent is not None
    assert root.context is not None
    assert carrier.parent.span_id == root.context.span_id
    assert [link.context.span_id for link in carrier.links] == [root.context.span_id]
    # Zero-length at the root's end: the trace's time range is unchanged.
    assert carrier.start_time == carrier.end_time == root.end_time
    attrs = dict(carrier.attributes or {})
    assert before <= attrs[sc.ROLLOUT_CARRIER_RECEIVED_AT] <= after  # type: ignore[operator]
    assert carrier.events
    assert all(before <= e.timestamp <= after for e in carrier.events)
    assert attrs[sc.USER_ID] == "u-7"
    assert attrs[sc.SESSION_ID] == "s-9"


def test_from_another_process_the_carrier_sits_at_the_traces_start_under_its_root() -> None:
    with OTLPReceiver() as receiver:
        rollout.init(base_url=receiver.url, console=False)
        with rollout.trace("run") as trace:
            pass
        assert rollout.flush()
        receiver.wait_for_spans(1)
        script = textwrap.dedent(
            f"""
            import mv37.rollout as rollout
            rollout.init(base_url={receiver.url!r}, console=False)
            rollout.feedback("thumbs", True, trace_id={trace.trace_id!r})
            rollout.signal("order_placed", 42, trace_id={trace.trace_id!r})
            """
        )
        before = time.time_ns()
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        spans = receiver.wait_for_spans(3)
    root = next(s for s in spans if s.name == "invoke_workflow run")
    assert [s.name for s in spans if s.parent_span_id is None] == ["invoke_workflow run"]
    for name in ("feedback thumbs", "signal order_placed"):
        carrier = next(s for s in spans if s.name == name)
        assert carrier.trace_id == root.trace_id
        assert carrier.parent_span_id == root.span_id
        assert carrier.links == ((root.trace_id, root.span_id),)
        assert carrier.start_time_unix_nano == carrier.end_time_unix_nano
        assert root.start_time_unix_nano <= carrier.start_time_unix_nano
        assert carrier.end_time_unix_nano <= root.end_time_unix_nano
        assert carrier.attributes[sc.ROLLOUT_CARRIER_RECEIVED_AT] >= before  # type: ignore[operator]


def test_a_trace_id_made_elsewhere_gets_its_carrier_now_under_the_derived_root(
    captured: CapturedSpans,
) -> None:
    foreign = "4bf92f3577b34da6a3ce929d0e0e4736"
    before = time.time_ns()
    rollout.feedback("thumbs", True, trace_id=foreign)
    (carrier,) = captured.spans()
    assert carrier.parent is not None
    assert carrier.parent.span_id == root_span_id(int(foreign, 16))
    assert carrier.start_time is not None
    assert carrier.start_time >= before
    assert carrier.start_time == carrier.end_time


def test_an_unsampled_trace_gets_an_unsampled_carrier() -> None:
    with capture_spans(sample_rate=0.0) as captured:
        with rollout.trace("run") as trace:
            pass
        rollout.feedback("thumbs", True, trace_id=trace.trace_id)
        assert captured.spans() == ()
