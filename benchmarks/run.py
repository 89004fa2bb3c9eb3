"""Overhead of mv37.rollout against raw OpenTelemetry, measured in one run.

Run with `make bench` (or `.venv/bin/python benchmarks/run.py`). See README.md beside
this file for how to read the table. The script reports; it always exits 0.

Cases (per call, median of several timed repeats after a warm-up):
1. a bare function;
2. BASELINE: the same function inside a raw OTel SDK span
   (`tracer.start_as_current_span`) on a `TracerProvider` with a `BatchSpanProcessor`
   and an exporter that discards; the spans are children of one open root span;
3. `@rollout.task` (no capture) inside a trace;
4. `@rollout.tool` capturing a small dict argument and returning a small dict, inside
   a trace;
5. an `@rollout.agent` calling three `@rollout.tool`s, per agent call (4 spans);
6. the same decorated functions after `rollout.init(disabled=True)`.

Cases 3-5 use `rollout.init(span_exporters=[DiscardExporter()], console=False,
install_global_provider=False)`, so they batch with a `BatchSpanProcessor` and discard,
like the baseline, whose processor uses the same queue/batch limits as the client's
defaults (queue 1000, batch 100, delay 2 s).
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import mv37.rollout as rollout

REPEATS = int(os.environ.get("BENCH_REPEATS", "7"))
SAMPLE_SECONDS = float(os.environ.get("BENCH_SAMPLE_SECONDS", "0.25"))
WARMUP_SECONDS = 0.1
MIN_ITERATIONS = 200
MAX_ITERATIONS = 2_000_000

Runner = Callable[[int], None]


class DiscardExporter(SpanExporter):
    """Accepts every batch and drops it: measures the SDK, not a network."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# -- the functions under test -----------------------------------------------------------------


def work(x: int) -> int:
    """The bare function of cases 1-3."""
    return x + 1


def lookup(query: dict[str, Any]) -> dict[str, Any]:
    """A small tool: a small dict in, a small dict out."""
    return {"id": query["id"], "status": "ok"}


def bare_agent(x: int) -> int:
    """Case 5 without instrumentation: an agent calling three tools."""
    lookup({"id": x})
    lookup({"id": x + 1})
    return int(lookup({"id": x + 2})["id"])


task_work = rollout.task(work)
tool_lookup = rollout.tool(lookup)


@rollout.agent
def traced_agent(x: int) -> int:
    tool_lookup({"id": x})
    tool_lookup({"id": x + 1})
    return int(tool_lookup({"id": x + 2})["id"])


# -- runners: each loops n times over one call -------------------------------------------------


def run_bare(n: int) -> None:
    f = work
    for i in range(n):
        f(i)


def run_bare_tool(n: int) -> None:
    f = lookup
    for i in range(n):
        f({"id": i})


def run_bare_agent(n: int) -> None:
    f = bare_agent
    for i in range(n):
        f(i)


def make_baseline(provider: TracerProvider) -> Runner:
    tracer = provider.get_tracer("benchmark")

    def run_baseline(n: int) -> None:
        start = tracer.start_as_current_span
        f = work
        with start("root"):
            for i in range(n):
                with start("work"):
                    f(i)

    return run_baseline


def run_task(n: int) -> None:
    f = task_work
    with rollout.trace("bench"):
        for i in range(n):
            f(i)


def run_tool(n: int) -> None:
    f = tool_lookup
    with rollout.trace("bench"):
        for i in range(n):
            f({"id": i})


def run_agent(n: int) -> None:
    f = traced_agent
    for i in range(n):
        f(i)


# -- measurement ---------------------------------------------------------------------------------


@dataclass
class Case:
    key: str
    label: str
    runner: Runner
    iterations: int = 0
    samples: list[float] = field(default_factory=list)  # ns per call

    @property
    def us(self) -> float:
        return statistics.median(self.samples) / 1000.0


def _time_per_call(runner: Runner, n: int) -> float:
    gc.collect()
    start = time.perf_counter_ns()
    runner(n)
    return (time.perf_counter_ns() - start) / n


def calibrate(case: Case) -> None:
    """Warm up, then pick an iteration count so one sample takes ~SAMPLE_SECONDS."""
    n = 100
    spent = 0.0
    while spent < WARMUP_SECONDS:
        per_call = _time_per_call(case.runner, n)
        spent += per_call * n / 1e9
        n = min(n * 2, MAX_ITERATIONS)
    wanted = int(SAMPLE_SECONDS * 1e9 / max(per_call, 1.0))
    case.iterations = max(MIN_ITERATIONS, min(MAX_ITERATIONS, wanted))


def measure(cases: list[Case]) -> None:
    """Interleave the cases' repeats so drift (thermal, other load) hits them alike."""
    for case in cases:
        calibrate(case)
    for _ in range(REPEATS):
        for case in cases:
            case.samples.append(_time_per_call(case.runner, case.iterations))


# -- report --------------------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    us: float
    ratio: str
    target: str
    verdict: str


def _ratio_row(case: Case, reference_us: float, limit: float, what: str) -> Row:
    ratio = case.us / reference_us
    verdict = "PASS" if ratio <= limit else "MISS"
    return Row(case.label, case.us, f"{ratio:.2f}x", f"<= {limit:.1f}x {what}", verdict)


def _delta_row(case: Case, bare: Case, baseline_us: float, calls: int) -> Row:
    delta = case.us - bare.us
    allowed = 1.0 * calls
    verdict = "PASS" if delta <= allowed else "MISS"
    per = f" ({delta / calls:+.2f}/call)" if calls > 1 else ""
    return Row(
        case.label,
        case.us,
        f"{case.us / baseline_us:.2f}x",
        f"<= bare +{allowed:.0f} us; got {delta:+.2f}{per}",
        verdict,
    )


def print_table(rows: list[Row]) -> None:
    headers = ("case", "us/call", "ratio vs baseline", "target", "PASS/MISS")
    cells = [(r.label, f"{r.us:.3f}", r.ratio, r.target, r.verdict) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))


def main() -> None:
    print(
        f"mv37.rollout {rollout.__version__}  opentelemetry-sdk {version('opentelemetry-sdk')}  "
        f"Python {platform.python_version()}  {platform.machine()}  cpus={os.cpu_count()}"
    )
    print(f"median of {REPEATS} repeats, ~{SAMPLE_SECONDS}s each, after warm-up\n")

    baseline_provider = TracerProvider()
    baseline_provider.add_span_processor(
        BatchSpanProcessor(
            DiscardExporter(),
            max_queue_size=1000,
            schedule_delay_millis=2000,
            max_export_batch_size=100,
        )
    )
    rollout.init(span_exporters=[DiscardExporter()], console=False, install_global_provider=False)

    bare = Case("bare", "1. bare function", run_bare)
    baseline = Case("baseline", "2. raw OTel span (BASELINE)", make_baseline(baseline_provider))
    task = Case("task", "3. @rollout.task in a trace", run_task)
    tool = Case("tool", "4. @rollout.tool (dict in/out) in a trace", run_tool)
    agent = Case("agent", "5. @rollout.agent + 3 @rollout.tool, per agent call", run_agent)
    measure([bare, baseline, task, tool, agent])

    rollout.init(disabled=True)
    bare2 = Case("bare2", "   bare function (again, for 6)", run_bare)
    bare_tool = Case("bare_tool", "   bare tool function", run_bare_tool)
    bare_agent_case = Case("bare_agent", "   bare agent + 3 bare tools", run_bare_agent)
    off_task = Case("off_task", "6a. @rollout.task, disabled", run_task)
    off_tool = Case("off_tool", "6b. @rollout.tool, disabled", run_tool)
    off_agent = Case("off_agent", "6c. @rollout.agent + 3 tools, disabled", run_agent)
    measure([bare2, off_task, bare_tool, off_tool, bare_agent_case, off_agent])

    rollout.shutdown()
    baseline_provider.shutdown()

    base = baseline.us
    rows = [
        Row(bare.label, bare.us, f"{bare.us / base:.2f}x", "-", "-"),
        Row(baseline.label, base, "1.00x", "-", "-"),
        _ratio_row(task, base, 1.2, "baseline"),
        _ratio_row(tool, base, 1.4, "baseline"),
        Row(
            agent.label,
            agent.us,
            f"{agent.us / base:.2f}x ({agent.us / (4 * base):.2f}x of 4x)",
            "report vs 4x baseline",
            "-",
        ),
        Row(bare2.label, bare2.us, f"{bare2.us / base:.2f}x", "-", "-"),
        _delta_row(off_task, bare2, base, 1),
        Row(bare_tool.label, bare_tool.us, f"{bare_tool.us / base:.2f}x", "-", "-"),
        _delta_row(off_tool, bare_tool, base, 1),
        Row(
            bare_agent_case.label,
            bare_agent_case.us,
            f"{bare_agent_case.us / base:.2f}x",
            "-",
            "-",
        ),
        _delta_row(off_agent, bare_agent_case, base, 4),
    ]
    print_table(rows)
    print("\nspread per case (min .. max us/call over repeats):")
    for case in (bare, baseline, task, tool, agent, bare2, off_task, bare_tool, off_tool):
        lo, hi = min(case.samples) / 1000, max(case.samples) / 1000
        print(f"  {case.label.strip():<55} {lo:9.3f} .. {hi:9.3f}  (n={case.iterations})")
    for case in (bare_agent_case, off_agent):
        lo, hi = min(case.samples) / 1000, max(case.samples) / 1000
        print(f"  {case.label.strip():<55} {lo:9.3f} .. {hi:9.3f}  (n={case.iterations})")


if __name__ == "__main__":
    started = time.perf_counter()
    try:
        main()
    except Exception:
        traceback.print_exc()
        print("benchmark failed (reported above); exiting 0: this script reports, it does not test")
    print(f"\ntotal {time.perf_counter() - started:.1f}s")
    sys.exit(0)
