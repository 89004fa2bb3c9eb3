"""Uncompressed OTLP bytes per agent run, against raw OpenTelemetry carrying each payload once.

Run with `make bench` (or `.venv/bin/python benchmarks/bytes.py`). One agent run is an
`@agent` and three `@tool` calls, each taking and returning a ~1 kB JSON payload. Spans
are captured in memory (`capture_spans`) and encoded as one OTLP export request
(`encode_spans(spans).SerializeToString()`), per `semconv` setting. The raw baseline is
an SDK `TracerProvider` making the same four spans with each payload once (`input` /
`output` attributes holding the same JSON text). The script reports; it always exits 0.

Targets (issue 12): <= 2.2x by default (both conventions), <= 1.2x with
`ROLLOUT_SEMCONV=genai`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout
from mv37.rollout.testing import capture_spans

RUNS = 20
TOOLS = 3


def _payload(tag: str) -> dict[str, Any]:
    """A JSON object of about 1 kB (its JSON text is 1,000-1,100 characters)."""
    items: list[dict[str, Any]] = []
    while len(json.dumps(items)) < 1000:
        i = len(items)
        items.append({"id": f"{tag}-{i:03d}", "name": f"item number {i}", "qty": i, "ok": True})
    return {"items": items}


def _encoded(spans: Sequence[ReadableSpan]) -> int:
    return len(encode_spans(spans).SerializeToString())


def ours(**config: Any) -> tuple[int, int]:
    """(bytes per run, spans per run) for our decorators under `config`."""

    @rollout.tool
    def lookup(data: dict[str, Any]) -> dict[str, Any]:
        return _payload("out")

    @rollout.agent
    def agent(data: dict[str, Any]) -> dict[str, Any]:
        for _ in range(TOOLS):
            lookup(_payload("in"))
        return _payload("answer")

    with capture_spans(**config) as captured:
        for _ in range(RUNS):
            agent(_payload("question"))
        spans = captured.exporter.get_finished_spans()
    return _encoded(spans) // RUNS, len(spans) // RUNS


def raw() -> tuple[int, int]:
    """The same run as raw OTel spans carrying each payload once."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("raw")
    for _ in range(RUNS):
        with tracer.start_as_current_span("agent") as root:
            root.set_attribute("input", json.dumps({"data": _payload("question")}))
            for _ in range(TOOLS):
                with tracer.start_as_current_span("lookup") as tool:
                    tool.set_attribute("input", json.dumps({"data": _payload("in")}))
                    tool.set_attribute("output", json.dumps(_payload("out")))
            root.set_attribute("output", json.dumps(_payload("answer")))
    provider.shutdown()
    spans = exporter.get_finished_spans()
    return _encoded(spans) // RUNS, len(spans) // RUNS


def main() -> int:
    for name in list(os.environ):
        if name.startswith("ROLLOUT_"):
            del os.environ[name]
    base, base_spans = raw()
    rows: list[tuple[str, int, int, float | None]] = [
        ("raw OTel, each payload once", base, base_spans, None)
    ]
    settings: list[tuple[str, dict[str, Any], float | None]] = [
        ("default (genai + openinference)", {}, 2.2),
        ("ROLLOUT_SEMCONV=genai", {"semconv": "genai"}, 1.2),
        ("ROLLOUT_SEMCONV=openinference", {"semconv": "openinference"}, None),
        ("semconv=[] (rollout.* only)", {"semconv": []}, None),
    ]
    for label, config, target in settings:
        try:
            size, spans = ours(**config)
        except Exception as exc:  # report, never fail the bench run
            print(f"{label}: failed: {exc!r}")
            continue
        rows.append((label, size, spans, target))
    print(f"Uncompressed OTLP bytes per agent run (@agent + {TOOLS} @tool, ~1 kB JSON payloads)")
    print("| setting | bytes/run | spans | x raw | target |\n|---|---|---|---|---|")
    for label, size, spans, target in rows:
        ratio = size / base
        verdict = "" if target is None else f"<= {target}x {'ok' if ratio <= target else 'MISSED'}"
        print(f"| {label} | {size:,} | {spans} | {ratio:.2f}x | {verdict} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
