"""Through a real collector hop: SDK -> rotel -> our receiver, nothing lost or altered.

The examples run in this process with their own `rollout.init(...)` call, to which the
test adds a destination (rotel) and two more exporters: one straight to a second
receiver and one in memory. The in-memory spans are the ground truth of what the SDK
produced; the direct receiver shows they were encoded as produced; what came through
rotel must be exactly the same spans: ids, parents, names, kinds, attributes, events,
links, status, times, scope and resource.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import runpy
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from e2e.servers import ROOT, Rotel
from mv37 import rollout
from mv37.rollout.testing import OTLPReceiver, ReceivedSpan, reset_global_tracer_provider

Hop = tuple[OTLPReceiver, OTLPReceiver, Rotel]


@pytest.fixture
def hop() -> Iterator[Hop]:
    """(receiver behind rotel, receiver the SDK reaches directly, rotel)."""
    with (
        OTLPReceiver() as via_rotel,
        OTLPReceiver() as direct,
        tempfile.TemporaryDirectory(prefix="mv37-e2e-rotel-") as workdir,
    ):
        rotel = Rotel(via_rotel.url, Path(workdir))
        try:
            yield via_rotel, direct, rotel
        finally:
            rollout.shutdown()
            reset_global_tracer_provider()
            rotel.stop()


def _comparable(span: ReceivedSpan) -> tuple[object, ...]:
    """Everything a hop could alter: `_received_view` plus the scope name and trace state."""
    return (*_received_view(span), span.scope_name, span.trace_state)


def _plain(value: Any) -> Any:
    """OTel attribute values as OTLP carries them (sequences become lists)."""
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def _sdk_view(span: ReadableSpan) -> tuple[object, ...]:
    """The fields of an SDK span, shaped like `_received_view`."""
    context = span.get_span_context()
    assert context is not None
    return (
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
        f"{span.parent.span_id:016x}" if span.parent is not None else None,
        span.name,
        span.kind.name,
        {k: _plain(v) for k, v in (span.attributes or {}).items()},
        tuple(
            (e.name, {k: _plain(v) for k, v in (e.attributes or {}).items()}) for e in span.events
        ),
        tuple((f"{ln.context.trace_id:032x}", f"{ln.context.span_id:016x}") for ln in span.links),
        span.status.status_code.name,
        span.status.description or "",
        {k: _plain(v) for k, v in span.resource.attributes.items()},
        span.start_time,
        span.end_time,
    )


def _received_view(span: ReceivedSpan) -> tuple[object, ...]:
    return (
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.name,
        span.kind,
        span.attributes,
        span.events,
        span.links,
        span.status_code,
        span.status_message,
        span.resource,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
    )


def _assert_unaltered(
    truth: list[ReadableSpan], direct: OTLPReceiver, via_rotel: OTLPReceiver
) -> list[ReceivedSpan]:
    """Every span the SDK produced arrived through rotel exactly as produced."""
    encoded = direct.wait_for_spans(len(truth))
    received = via_rotel.wait_for_spans(len(truth), timeout=30)
    assert len(encoded) == len(received) == len(truth)
    produced = {view[1]: view for view in map(_sdk_view, truth)}
    assert {s.span_id for s in encoded} == set(produced)
    for span in encoded:
        assert _received_view(span) == produced[span.span_id], span.name
    through = {span.span_id: span for span in received}
    assert set(through) == set(produced), "lost or duplicated by the hop"
    for span in encoded:
        assert _comparable(through[span.span_id]) == _comparable(span), span.name
    return received


def _run_example(name: str, monkeypatch: pytest.MonkeyPatch, **init: Any) -> str:
    """Run `examples/<name>` as `__main__` here, adding `init` to its `rollout.init(...)`."""
    real_init = rollout.init

    def patched(*args: Any, **kwargs: Any) -> rollout.Rollout:
        return real_init(*args, **{**kwargs, **init})

    monkeypatch.setattr(rollout, "init", patched)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        runpy.run_path(str(ROOT / "examples" / name), run_name="__main__")
    return output.getvalue()


@pytest.mark.parametrize(
    ("example", "count", "statuses"),
    [
        ("quickstart.py", 5, {"UNSET"}),
        ("multi_agent.py", 9, {"UNSET"}),
        ("error_example.py", 2, {"ERROR"}),
    ],
)
def test_example_through_rotel_arrives_unaltered(
    hop: Hop, monkeypatch: pytest.MonkeyPatch, example: str, count: int, statuses: set[str]
) -> None:
    via_rotel, direct, rotel = hop
    memory = InMemorySpanExporter()
    output = _run_example(
        example,
        monkeypatch,
        base_url=rotel.url,
        span_exporters=[OTLPSpanExporter(endpoint=direct.endpoint), memory],
        console=False,
    )
    assert output.strip(), "the example printed its result"
    truth = list(memory.get_finished_spans())
    assert len(truth) == count, [s.name for s in truth]
    received = _assert_unaltered(truth, direct, via_rotel)
    assert {s.status_code for s in received} == statuses
    assert len({s.trace_id for s in received}) == 1
    (root,) = (s for s in received if s.parent_span_id is None)
    assert root.resource["service.name"] == root.attributes["rollout.agent.name"]
    assert all(s.resource == root.resource for s in received)
    assert rotel.server.alive()


@rollout.tool("lookup_order")
async def lookup_order(order_id: str) -> dict[str, object]:
    await asyncio.sleep(0)
    return {"order_id": order_id, "status": "shipped", "items": [1, 2]}


@rollout.tool("refund")
async def refund(order_id: str) -> None:
    raise PermissionError(f"refund of {order_id} needs approval")


@rollout.agent("hop_agent", user_id="u-1", session_id="s-1")
async def hop_agent(order_id: str) -> str:
    trace = rollout.current_trace()
    assert trace is not None
    trace.message(role="user", content=f"where is {order_id}?")
    found, _ = await asyncio.gather(lookup_order(order_id), lookup_order(order_id + "-b"))
    with trace.llm("answer", model="gpt-4o-mini", provider="openai", temperature=0.1) as llm:
        llm.record_input([{"role": "user", "content": "where?"}])
        llm.record_output("shipped")
        llm.set_usage(input_tokens=12, output_tokens=3, cached_tokens=2)
    try:
        await refund(order_id)
    except PermissionError:
        trace.signal("escalated", True)
    rollout.feedback("csat", 4)
    return str(found["status"])


def test_several_traces_and_late_feedback_through_rotel(hop: Hop) -> None:
    """Three traces at once, an API key, resource fields and a feedback carrier span."""
    via_rotel, direct, rotel = hop
    memory = InMemorySpanExporter()
    rollout.init(
        base_url=rotel.url,
        service_name="hop-service",
        release="1.2.3",
        environment="e2e",
        api_key="sk-e2e-hop-key-000000000000",
        span_exporters=[OTLPSpanExporter(endpoint=direct.endpoint), memory],
        console=False,
        metrics=False,  # this rotel takes no metrics: flush() would report their 404
    )

    async def three() -> list[str]:
        return list(await asyncio.gather(*(hop_agent(order) for order in ("o-1", "o-2", "o-3"))))

    assert asyncio.run(three()) == ["shipped"] * 3
    assert rollout.flush()  # the in-memory copy arrives through the batch queue too
    first_trace = next(s for s in memory.get_finished_spans() if s.parent is None)
    context = first_trace.get_span_context()
    assert context is not None
    rollout.feedback("thumbs_up", False, trace_id=f"{context.trace_id:032x}")  # after it ended
    assert rollout.flush()
    truth = list(memory.get_finished_spans())
    assert len(truth) == 3 * 5 + 1
    received = _assert_unaltered(truth, direct, via_rotel)
    assert len({s.trace_id for s in received}) == 3
    assert {s.status_code for s in received if s.name == "execute_tool refund"} == {"ERROR"}
    assert {s.resource["service.name"] for s in received} == {"hop-service"}
    assert {s.resource["service.version"] for s in received} == {"1.2.3"}
    (carrier,) = (s for s in received if s.name == "feedback thumbs_up")
    assert carrier.links, "the carrier links to the trace's root"
    assert any(e[0] == "rollout.feedback" for s in received for e in s.events)
    assert rotel.server.alive()
