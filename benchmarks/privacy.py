"""Cost of default scrubbing, and of sampled-out traces, measured in one run.

Run with `make bench` (or `.venv/bin/python benchmarks/privacy.py`). Reports a table and
always exits 0.

1. A `@rollout.tool` taking and returning a typical ~2 kB JSON dict, inside a trace,
   with default scrubbing on vs off (`default_scrubbing=False`). Scrubbing runs in the
   export thread, so each sample times N calls *plus* `flush()`: the number is the
   whole cost per call, export work included. On and off run as pairs (alternating
   which goes first); the ratio is the median of the per-pair ratios. Dropped spans
   (`rollout.stats().dropped`) are printed and must be 0. Target: on <= 1.1x off.
2. An `@rollout.agent` calling three `@rollout.tool`s whose trace is sampled out
   (`sample_rate=0.0`) vs the same calls with `disabled=True`, and vs kept traces.
   Reported, no pass/fail.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import mv37.rollout as rollout
from mv37.rollout.vocabulary._payload import to_json_text

REPEATS = 9
CALLS = 2000


class DiscardExporter(SpanExporter):
    """Accepts every batch and drops it."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


def typical_payload(seed: int) -> dict[str, Any]:
    """About 2 kB of JSON: a search result page with a few nested records."""
    return {
        "query": f"orders for customer {seed} shipped last week",
        "page": 1,
        "filters": {"status": ["shipped", "delivered"], "region": "eu-west", "limit": 20},
        "results": [
            {
                "id": f"ord-{seed}-{i}",
                "customer": {"id": f"c-{seed}", "tier": "gold", "country": "FR"},
                "items": [
                    {"sku": f"sku-{i}-{j}", "qty": j + 1, "price": 9.99 * (j + 1)} for j in range(2)
                ],
                "notes": "left at the front desk, signed by reception",
            }
            for i in range(8)
        ],
    }


@rollout.tool("search_orders")
def search_orders(request: dict[str, Any]) -> dict[str, Any]:
    return request


@rollout.tool("step")
def step(i: int) -> int:
    return i


@rollout.agent("agent")
def agent(i: int) -> int:
    return step(i) + step(i + 1) + step(i + 2)


def run_tool(calls: int) -> None:
    payload = typical_payload(7)
    with rollout.trace("bench"):
        for _ in range(calls):
            search_orders(payload)
    rollout.flush()


def run_agent(calls: int) -> None:
    for i in range(calls):
        agent(i)
    rollout.flush()


def per_call_us(runner: Callable[[int], None], calls: int) -> float:
    gc.collect()
    start = time.perf_counter()
    runner(calls)
    return (time.perf_counter() - start) / calls * 1e6


def measure(
    setups: dict[str, dict[str, Any]], runner: Callable[[int], None]
) -> tuple[dict[str, list[float]], int]:
    """Samples per setup, the setups' order alternating each repeat; and spans dropped."""
    samples: dict[str, list[float]] = {name: [] for name in setups}
    dropped = 0
    for config in setups.values():  # warm-up
        rollout.init(**config)
        per_call_us(runner, CALLS // 4)
    order = list(setups.items())
    for repeat in range(REPEATS):
        for name, config in order if repeat % 2 == 0 else order[::-1]:
            rollout.init(**config)
            before = _dropped()
            samples[name].append(per_call_us(runner, CALLS))
            dropped += _dropped() - before
    rollout.shutdown()
    return samples, dropped


def _dropped() -> int:
    """Spans dropped so far for any reason but sampling."""
    counts = rollout.stats().dropped
    return sum(counts.values()) - counts.get("sampled_out", 0)


def paired_ratio(ours: list[float], ref: list[float]) -> float:
    """The median of the per-pair ratios."""
    return statistics.median(o / r for o, r in zip(ours, ref, strict=True))


def main() -> None:
    common: dict[str, Any] = {
        "span_exporters": [DiscardExporter()],
        "console": False,
        "install_global_provider": False,
        "max_queue_events": 100_000,
        "max_queue_bytes": 1 << 30,
    }
    print(
        f"mv37.rollout privacy costs; {REPEATS} paired repeats of {CALLS} calls, flush "
        "included; ratios are medians of per-pair ratios\n"
    )
    rows: list[tuple[str, float, str, str]] = []
    try:
        size = len(to_json_text(typical_payload(7)))
        tool, dropped = measure(
            {"off": {**common, "default_scrubbing": False}, "on": {**common}}, run_tool
        )
        off, on = statistics.median(tool["off"]), statistics.median(tool["on"])
        on_off = paired_ratio(tool["on"], tool["off"])
        verdict = "PASS" if on_off <= 1.1 else "MISS"
        rows.append(
            (f"@tool with a {size}-char JSON dict in/out, scrubbing off", off, "1.00x", "-")
        )
        rows.append(
            (
                "  same, default scrubbing on",
                on,
                f"{on_off:.2f}x",
                f"<= 1.1x off {verdict}; dropped {dropped}",
            )
        )
    except Exception:
        traceback.print_exc()
    try:
        agents, _ = measure(
            {
                "disabled": {"disabled": True},
                "sampled_out": {**common, "sample_rate": 0.0},
                "kept": {**common},
            },
            run_agent,
        )
        disabled = statistics.median(agents["disabled"])
        for name, label in (
            ("disabled", "@agent + 3 @tool, disabled"),
            ("sampled_out", "  same, trace sampled out"),
            ("kept", "  same, trace kept"),
        ):
            value = statistics.median(agents[name])
            rows.append((label, value, f"+{value - disabled:.1f} us", "report"))
    except Exception:
        traceback.print_exc()
    width = max(len(row[0]) for row in rows) if rows else 10
    print(f"{'case'.ljust(width)}  us/call  vs first  target")
    for label, value, ratio, target in rows:
        print(f"{label.ljust(width)}  {value:7.2f}  {ratio:8}  {target}")


if __name__ == "__main__":
    main()
    sys.exit(0)
