"""Test helpers shared by our suite and our users' suites.

Example:
    >>> from mv37.rollout.testing import capture_spans
    >>> with capture_spans() as captured:  # doctest: +SKIP
    ...     run_my_agent()
    >>> [s["name"] for s in captured.as_dicts()]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mv37.rollout import semconv as sc
from mv37.rollout._global import init, reset
from mv37.rollout._rollout import Rollout
from mv37.rollout.testing._receiver import (
    OTLPReceiver,
    ReceivedPoint,
    ReceivedRequest,
    ReceivedSpan,
)

__all__ = [
    "CapturedSpans",
    "OTLPReceiver",
    "ReceivedPoint",
    "ReceivedRequest",
    "ReceivedSpan",
    "capture_spans",
    "reset_global_tracer_provider",
    "span_as_dict",
]


def span_as_dict(span: ReadableSpan) -> dict[str, Any]:
    """A plain dict of what an exported span carries (ids as hex, attributes as a dict)."""
    ctx = span.get_span_context()
    assert ctx is not None
    return {
        "name": span.name,
        "type": (span.attributes or {}).get(sc.ROLLOUT_SPAN_TYPE),
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent is not None else None,
        "kind": span.kind.name,
        "status": span.status.status_code.name,
        "status_description": span.status.description,
        "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": event.name, "attributes": dict(event.attributes or {})}
            for event in span.events
        ],
        "links": [f"{link.context.span_id:016x}" for link in span.links],
    }


@dataclass
class CapturedSpans:
    """What a `capture_spans` block exported."""

    client: Rollout
    exporter: InMemorySpanExporter

    def spans(self) -> tuple[ReadableSpan, ...]:
        """The finished spans, in the order they ended."""
        self.client.flush()
        return self.exporter.get_finished_spans()

    def as_dicts(self) -> list[dict[str, Any]]:
        """The finished spans as plain dicts (see `span_as_dict`)."""
        return [span_as_dict(span) for span in self.spans()]

    def by_name(self, name: str) -> dict[str, Any]:
        """The one finished span called `name` (OTel name or Rollout name)."""
        found = [
            s
            for s in self.as_dicts()
            if s["name"] == name or s["attributes"].get(sc.ROLLOUT_SPAN_NAME) == name
        ]
        if len(found) != 1:
            raise AssertionError(f"expected one span named {name!r}, found {len(found)}")
        return found[0]

    def clear(self) -> None:
        """Forget what was captured so far."""
        self.exporter.clear()


def reset_global_tracer_provider() -> None:
    """Let the next `set_tracer_provider` succeed (OTel allows one per process)."""
    otel_trace._TRACER_PROVIDER_SET_ONCE._done = False
    otel_trace._TRACER_PROVIDER = None


@contextmanager
def capture_spans(**config: Any) -> Iterator[CapturedSpans]:
    """`init()` a client that exports synchronously into memory, for the block.

    Console output is off unless asked for; other arguments go to `init()`.
    """
    exporter = InMemorySpanExporter()
    config.setdefault("console", False)
    config.setdefault("sync_mode", True)
    config["span_exporters"] = (*config.get("span_exporters", ()), exporter)
    client = init(**config)
    try:
        yield CapturedSpans(client, exporter)
    finally:
        reset()
