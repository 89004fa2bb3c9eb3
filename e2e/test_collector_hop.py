"""Through a real collector hop: SDK -> rotel -> our receiver, nothing lost or altered.

The same process exports every span twice: through rotel, and straight to a second
receiver (the ground truth). Both receivers must hold exactly the same spans: ids,
parents, names, kinds, attributes, events, links, status, times and resource.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from e2e.servers import Rotel
from mv37 import rollout
from mv37.rollout.testing import OTLPReceiver, ReceivedSpan, reset_global_tracer_provider


@pytest.fixture
def receivers() -> Iterator[tuple[OTLPReceiver, OTLPReceiver, Rotel]]:
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


def _comparable(span: ReceivedSpan) -> tuple[object, ...]:
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
        span.scope_name,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        span.trace_state,
    )


def test_nothing_is_lost_or_altered_through_rotel(
    receivers: tuple[OTLPReceiver, OTLPReceiver, Rotel],
) -> None:
    via_rotel, direct, rotel = receivers
    rollout.init(
        base_url=rotel.url,
        service_name="hop-service",
        release="1.2.3",
        environment="e2e",
        api_key="sk-e2e-hop-key-000000000000",
        span_exporters=[OTLPSpanExporter(endpoint=direct.endpoint)],
        console=False,
    )
    for order in ("o-1", "o-2", "o-3"):
        assert asyncio.run(hop_agent(order)) == "shipped"
    assert rollout.flush()
    expected = direct.wait_for_spans(3 * 5)
    received = via_rotel.wait_for_spans(len(expected), timeout=30)
    assert len(received) == len(expected) == 15
    by_id = {span.span_id: span for span in received}
    assert set(by_id) == {span.span_id for span in expected}
    for span in expected:
        assert _comparable(by_id[span.span_id]) == _comparable(span), span.name
    # A few facts, so this cannot pass on two empty or trivial sets.
    assert {s.status_code for s in expected if s.name == "execute_tool refund"} == {"ERROR"}
    assert expected[0].resource["service.name"] == "hop-service"
    assert any(e[0] == "rollout.feedback" for s in expected for e in s.events)
    assert rotel.server.alive()
