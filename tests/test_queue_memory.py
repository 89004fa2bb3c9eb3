"""A queued span holds no empty event or link list, and reads exactly as before.

The SDK gives each span a deque per list (760 bytes even when empty); the export queue
swaps an empty one with nothing dropped for `()`. These run through the real queue (not
`sync_mode`) into the SDK's `InMemorySpanExporter`, and over OTLP to a real receiver.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link

import mv37.rollout as rollout
from mv37.rollout.testing import OTLPReceiver


@rollout.task
def work(n: int) -> int:
    return n + 1


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    rollout.init(span_exporters=[exporter], console=False)
    yield exporter
    rollout.shutdown()


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    assert rollout.flush(10.0) is True
    return {span.name: span for span in exporter.get_finished_spans()}


def test_a_span_without_events_or_links_leaves_the_queue_without_their_deques(
    exported: InMemorySpanExporter,
) -> None:
    with rollout.trace("root"):
        work(1)
    spans = by_name(exported)
    assert set(spans) == {"invoke_workflow root", "work"}
    for span in spans.values():
        assert span._events == ()
        assert span._links == ()
        assert span.events == ()
        assert span.links == ()
        assert span.dropped_events == 0
        assert span.dropped_links == 0


def test_events_and_links_a_span_has_are_kept(exported: InMemorySpanExporter) -> None:
    tracer = rollout.get_client().tracer
    with rollout.trace("root") as trace:
        other = tracer.start_span("other")
        other.end()
        span = tracer.start_span("linked", links=[Link(other.get_span_context())])
        span.add_event("step", {"n": 1})
        span.end()
        trace.message(role="user", content="hi")
    spans = by_name(exported)
    linked = spans["linked"]
    assert [e.name for e in linked.events] == ["step"]
    assert [link.context.span_id for link in linked.links] == [other.get_span_context().span_id]
    assert [e.name for e in spans["invoke_workflow root"].events] == ["rollout.message"]


def test_dropped_events_are_still_counted_when_none_are_kept(
    monkeypatch: pytest.MonkeyPatch, receiver: OTLPReceiver
) -> None:
    # A limit of 0 keeps no event and counts each one dropped: the list is empty but
    # not compacted, and the count reaches the collector.
    monkeypatch.setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "0")
    monkeypatch.setenv("OTEL_SPAN_LINK_COUNT_LIMIT", "0")
    rollout.init(base_url=receiver.url, console=False)
    tracer = rollout.get_client().tracer
    with rollout.trace("root"):
        first = tracer.start_span("first")
        first.end()
        span = tracer.start_span("busy", links=[Link(first.get_span_context())])
        span.add_event("a")
        span.add_event("b")
        span.end()
    assert rollout.flush(10.0) is True
    busy = next(s for s in receiver.spans() if s.name == "busy")
    assert busy.events == ()
    assert busy.dropped_events_count == 2
    assert busy.links == ()
    assert busy.dropped_links_count == 1
