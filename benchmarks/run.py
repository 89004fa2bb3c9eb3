"""What a user pays for mv37.rollout, against raw OpenTelemetry, measured in one run.

Run with `make bench` (or `.venv/bin/python benchmarks/run.py`). See README.md beside
this file for how to read the table. The script reports; it always exits 0.

Ours run on the defaults a user gets: `rollout.init(span_exporters=[discard],
console=False)` (default conventions, default scrubbing, the default export chain
ending in an exporter that discards). The raw baseline is an SDK `TracerProvider` with
a `BatchSpanProcessor` and the same discarding exporter.

Each timed sample makes `BENCH_CALLS` (>= 20,000) decorated calls and then flushes,
inside the timed region, for ours and for the raw baseline alike: the export worker's
work (privacy, accounting, the exporter) is part of the number. Ours and raw run as a
pair, alternating which goes first, and the reported ratio is the median of the
per-pair ratios. Dropped spans are counted per case (ours from `rollout.stats()`, the
raw baseline by counting what its exporter received); both must be 0.

Cases and targets:
| case | target |
|---|---|
| `@task` in a trace | <= 1.2x a raw child span |
| `@tool`, small dict in and out, in a trace | <= 1.4x a raw child span |
| `@trace`, one trace per call | <= 1.5x a raw root span |
| `@agent` + 3 `@tool` | <= 1.5x of a raw root + 3 raw children |
| disabled `@task` / `@tool` | <= +0.5 us over the bare call |

Then the export worker's CPU per span: the export chain's work (privacy stage, then
OTLP protobuf encoding with `encode_spans`) on a fixed list of captured spans, against
encoding the raw SDK's spans of the same calls.

Then GenAI metrics on against off (issue 14), target <= 1.10x: the same defaults, one
client with metrics for an `OTLPReceiver` on 127.0.0.1 (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`),
the other with `metrics=False`; cases `@tool` in a trace and an LLM span (`trace.llm` +
`set_usage`). Each sample's flush collects the metrics into a discarding exporter, as the
spans go to one; the real exporter then posts the totals once (the operations counted).
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

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import mv37.rollout as rollout
from mv37.rollout.facade import _current
from mv37.rollout.pipeline._privacy import PrivacyStage
from mv37.rollout.pipeline._scrub import Redactor
from mv37.rollout.pipeline._stats import Counters
from mv37.rollout.testing import OTLPReceiver

CALLS = max(20_000, int(os.environ.get("BENCH_CALLS", "20000")))
PAIRS = int(os.environ.get("BENCH_PAIRS", "7"))
DISABLED_PAIRS = 15
DISABLED_CALLS = 200_000  # ~0.1 s a sample: sub-microsecond deltas need longer samples
COST_PAIRS = int(os.environ.get("BENCH_COST_PAIRS", "5"))  # 0 skips "what the defaults cost"
ENCODE_SPANS = 2_000  # captured spans per worker-CPU sample
ENCODE_REPEATS = 7

Runner = Callable[[int], None]


class DiscardExporter(SpanExporter):
    """Accepts every batch, counts its spans and drops them: measures the SDK, not a network."""

    def __init__(self) -> None:
        self.received = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.received += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class DiscardMetricExporter(MetricExporter):
    """Accepts every metrics collection and drops it (the metrics twin of DiscardExporter)."""

    def __init__(self) -> None:
        super().__init__()
        self.exports = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.exports += 1
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Nothing to release."""


class CaptureExporter(DiscardExporter):
    """Keeps the spans it receives (for the worker-CPU measurement)."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return super().export(spans)


# -- the functions under test -----------------------------------------------------------------


def work(x: int) -> int:
    """The bare function of the task and trace cases."""
    return x + 1


def lookup(query: dict[str, Any]) -> dict[str, Any]:
    """A small tool: a small dict in, a small dict out."""
    return {"id": query["id"], "status": "ok"}


task_work = rollout.task(work)
tool_lookup = rollout.tool(lookup)
trace_work = rollout.trace(work)


@rollout.agent
def traced_agent(x: int) -> int:
    tool_lookup({"id": x})
    tool_lookup({"id": x + 1})
    return int(tool_lookup({"id": x + 2})["id"])


# -- runners: each makes n decorated calls (spans), then flushes ---------------------------------


def ours_task(n: int) -> None:
    f = task_work
    with rollout.trace("bench"):
        for i in range(n):
            f(i)
    rollout.flush()


def ours_tool(n: int) -> None:
    f = tool_lookup
    with rollout.trace("bench"):
        for i in range(n):
            f({"id": i})
    rollout.flush()


def ours_trace(n: int) -> None:
    f = trace_work
    for i in range(n):
        f(i)
    rollout.flush()


def ours_llm(n: int) -> None:
    with rollout.trace("bench") as trace:
        for _ in range(n):
            with trace.llm("answer", model="gpt-4o-mini", provider="openai") as span:
                span.set_usage(input_tokens=12, output_tokens=3)
    rollout.flush()


def ours_agent(n: int) -> None:
    f = traced_agent
    for i in range(n // 4):  # 4 decorated calls each
        f(i)
    rollout.flush()


@dataclass
class Raw:
    """The raw OTel SDK: a provider with a BatchSpanProcessor and a counting discard."""

    exporter: DiscardExporter = field(default_factory=DiscardExporter)
    provider: TracerProvider = field(default_factory=TracerProvider)

    def __post_init__(self) -> None:
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("benchmark")

    def child(self, n: int) -> None:
        """n child spans of one open root (like @task / @tool in a trace)."""
        start = self.tracer.start_as_current_span
        f = work
        with start("root"):
            for i in range(n):
                with start("work"):
                    f(i)
        self.provider.force_flush()

    def root(self, n: int) -> None:
        """n root spans (like one trace per call)."""
        start = self.tracer.start_as_current_span
        f = work
        for i in range(n):
            with start("work"):
                f(i)
        self.provider.force_flush()

    def agent(self, n: int) -> None:
        """n // 4 root spans with 3 child spans each."""
        start = self.tracer.start_as_current_span
        f = lookup
        for i in range(n // 4):
            with start("agent"):
                for j in range(3):
                    with start("tool"):
                        f({"id": i + j})
        self.provider.force_flush()


def run_bare(n: int) -> None:
    f = work
    for i in range(n):
        f(i)


def run_bare_tool(n: int) -> None:
    f = lookup
    for i in range(n):
        f({"id": i})


def run_off_task(n: int) -> None:
    f = task_work
    for i in range(n):
        f(i)


def run_off_tool(n: int) -> None:
    f = tool_lookup
    for i in range(n):
        f({"id": i})


# -- measurement ---------------------------------------------------------------------------------


def _ns(runner: Runner, n: int) -> int:
    gc.collect()
    start = time.perf_counter_ns()
    runner(n)
    return time.perf_counter_ns() - start


def _dropped() -> int:
    return sum(rollout.stats().dropped.values())


@dataclass
class Pairs:
    """Paired samples of ours and the reference (ns per call)."""

    ours: list[float] = field(default_factory=list)
    ref: list[float] = field(default_factory=list)

    def add(self, ours: float, ref: float) -> None:
        self.ours.append(ours)
        self.ref.append(ref)

    @property
    def ratio(self) -> float:
        return statistics.median(o / r for o, r in zip(self.ours, self.ref, strict=True))

    @property
    def delta_us(self) -> float:
        return statistics.median(o - r for o, r in zip(self.ours, self.ref, strict=True)) / 1e3


def paired(ours: Runner, ref: Runner, n: int, pairs: int) -> Pairs:
    """Warm both up, then `pairs` pairs, alternating which of the two runs first."""
    ours(n // 10)
    ref(n // 10)
    result = Pairs()
    for index in range(pairs):
        if index % 2:
            r = _ns(ref, n)
            o = _ns(ours, n)
        else:
            o = _ns(ours, n)
            r = _ns(ref, n)
        result.add(o / n, r / n)
    return result


@dataclass
class Row:
    label: str
    ours_us: float
    ref_us: float
    measured: str
    target: str
    verdict: str
    dropped: str


def ratio_case(label: str, ours: Runner, ref: Runner, raw: Raw, limit: float, what: str) -> Row:
    before_ours, before_raw = _dropped(), raw.exporter.received
    result = paired(ours, ref, CALLS, PAIRS)
    ours_dropped = _dropped() - before_ours
    raw_received = raw.exporter.received - before_raw
    raw_expected = _raw_spans_expected(ref, CALLS, PAIRS)
    ratio = result.ratio
    return Row(
        label,
        statistics.median(result.ours) / 1e3,
        statistics.median(result.ref) / 1e3,
        f"{ratio:.2f}x",
        f"<= {limit:.1f}x {what}",
        "PASS" if ratio <= limit else "MISS",
        f"{ours_dropped} / {raw_expected - raw_received}",
    )


def _raw_spans_expected(ref: Runner, n: int, pairs: int) -> int:
    """Spans the raw runner made in the warm-up and the pairs."""
    name = getattr(ref, "__name__", "")
    per = {"child": n + 1, "root": n, "agent": (n // 4) * 4}[name]
    warm = {"child": n // 10 + 1, "root": n // 10, "agent": (n // 10 // 4) * 4}[name]
    return per * pairs + warm


def delta_case(label: str, ours: Runner, bare: Runner, limit_us: float) -> Row:
    ours(DISABLED_CALLS)  # a full warm-up sample each: the first ones run slow
    bare(DISABLED_CALLS)
    result = paired(ours, bare, DISABLED_CALLS, DISABLED_PAIRS)
    delta = result.delta_us
    return Row(
        label,
        statistics.median(result.ours) / 1e3,
        statistics.median(result.ref) / 1e3,
        f"{delta:+.3f} us",
        f"<= +{limit_us:.1f} us over bare",
        "PASS" if delta <= limit_us else "MISS",
        "-",
    )


# -- the export worker's CPU per span ------------------------------------------------------------


def capture(runner: Runner, n: int) -> list[ReadableSpan]:
    """The spans of n calls, as the export chain receives them (before privacy)."""
    exporter = CaptureExporter()
    rollout.init(
        span_exporters=[exporter],
        console=False,
        default_scrubbing=False,
        max_queue_events=n + 100,
        max_queue_bytes=1 << 30,
    )
    runner(n)
    rollout.shutdown()
    return exporter.spans


def capture_raw(kind: str, n: int) -> list[ReadableSpan]:
    raw = CaptureRaw()
    getattr(raw, kind)(n)
    raw.provider.shutdown()
    return raw.capture.spans


@dataclass
class CaptureRaw(Raw):
    capture: CaptureExporter = field(default_factory=CaptureExporter)

    def __post_init__(self) -> None:
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        self.exporter = self.capture
        self.provider.add_span_processor(SimpleSpanProcessor(self.capture))
        self.tracer = self.provider.get_tracer("benchmark")


def worker_cpu(label: str, runner: Runner, kind: str) -> tuple[str, float, float, float]:
    """Median CPU per span of privacy + encoding (ours) and encoding (raw), in us."""
    ours_spans = capture(runner, ENCODE_SPANS)
    raw_spans = capture_raw(kind, ENCODE_SPANS)
    privacy = PrivacyStage(Redactor(), Counters())

    def ours() -> None:
        encode_spans(privacy.process(ours_spans)).SerializeToString()

    def raw() -> None:
        encode_spans(raw_spans).SerializeToString()

    ours_t: list[float] = []
    raw_t: list[float] = []
    for _ in range(ENCODE_REPEATS):
        gc.collect()
        t0 = time.thread_time_ns()
        ours()
        t1 = time.thread_time_ns()
        raw()
        t2 = time.thread_time_ns()
        ours_t.append((t1 - t0) / len(ours_spans) / 1e3)
        raw_t.append((t2 - t1) / len(raw_spans) / 1e3)
    o, r = statistics.median(ours_t), statistics.median(raw_t)
    return label, o, r, o / r


# -- GenAI metrics on vs off ---------------------------------------------------------------------


def as_client(client: rollout.Rollout, runner: Runner) -> Runner:
    """`runner` with `client` as the global client (decorators record into it)."""

    def run(n: int) -> None:
        _current.install(client)
        runner(n)

    run.__name__ = runner.__name__
    return run


def metrics_rows() -> list[tuple[str, str, str, str, str, str, str]]:
    """@tool and LLM-span calls with metrics on against off, paired like the cases above."""
    rows = []
    with OTLPReceiver() as receiver:
        os.environ["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] = receiver.metrics_endpoint
        try:
            on = rollout.Rollout(span_exporters=[DiscardExporter()], console=False)
        finally:
            del os.environ["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]
        off = rollout.Rollout(span_exporters=[DiscardExporter()], console=False, metrics=False)
        assert on._metrics is not None
        assert off._metrics is None
        # Measured like the spans: up to a discarding exporter (collection and MetricsData
        # included, OTLP encoding and HTTP not); the real exporter sends the totals after.
        pipeline = on._pipeline.metrics if on._pipeline is not None else None
        delivery = pipeline.delivery if pipeline is not None else None
        assert delivery is not None
        real, delivery.exporter = delivery.exporter, DiscardMetricExporter()
        for label, runner in (("@tool dict in/out, in a trace", ours_tool), ("LLM span", ours_llm)):
            result = paired(as_client(on, runner), as_client(off, runner), CALLS, PAIRS)
            ratio = result.ratio
            rows.append(
                (
                    label,
                    f"{statistics.median(result.ours) / 1e3:.3f}",
                    f"{statistics.median(result.ref) / 1e3:.3f}",
                    f"{ratio:.2f}x",
                    "<= 1.10x metrics off",
                    "PASS" if ratio <= 1.10 else "MISS",
                    f"{on.stats().metric_exports} / {on.stats().metric_export_failures}",
                )
            )
        _current.clear()
        delivery.exporter = real
        delivery._delivered = -1  # the discarding exporter "delivered" the totals: send them
        assert on.flush()
        on.shutdown()
        off.shutdown()
        last = receiver.metric_requests()[-1].points if receiver.metric_requests() else ()
        counted = sum(p.count for p in last if p.metric.endswith("duration"))
        rows.append(("(operations counted by the on client)", "", "", str(counted), "", "", ""))
    return rows


# -- what the defaults cost ----------------------------------------------------------------------

COSTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("defaults", {}),
    ("capture off", {"capture_inputs": False, "capture_outputs": False}),
    ("scrubbing off", {"default_scrubbing": False}),
    ("semconv=genai", {"semconv": "genai"}),
    ("metrics off", {"metrics": False}),
    (
        "all four",
        {
            "capture_inputs": False,
            "capture_outputs": False,
            "default_scrubbing": False,
            "semconv": "genai",
            "metrics": False,
        },
    ),
)
"""Default settings a user can turn off, each alone, then together: what each one costs
shows as the fall of the ratio to raw from the "defaults" row."""


def cost_rows(raw: Raw) -> list[tuple[str, ...]]:
    """The @tool, @trace and agent cases against raw, with each default turned off."""
    cases = (
        ("@tool", ours_tool, raw.child, 1.4),
        ("@trace", ours_trace, raw.root, 1.5),
        ("@agent + 3 @tool", ours_agent, raw.agent, 1.5),
    )
    rows = []
    for label, settings in COSTS:
        client = rollout.Rollout(span_exporters=[DiscardExporter()], console=False, **settings)
        cells = [label]
        for _, runner, ref, limit in cases:
            ratio = paired(as_client(client, runner), ref, CALLS, COST_PAIRS).ratio
            cells.append(f"{ratio:.2f}x {'PASS' if ratio <= limit else 'MISS'}")
        dropped = sum(client.stats().dropped.values())
        cells.append(str(dropped))
        _current.clear()
        client.shutdown()
        rows.append(tuple(cells))
    return rows


# -- report --------------------------------------------------------------------------------------


def print_table(headers: Sequence[str], cells: Sequence[Sequence[str]]) -> None:
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))


def main() -> None:
    print(
        f"mv37.rollout {rollout.__version__}  opentelemetry-sdk {version('opentelemetry-sdk')}  "
        f"Python {platform.python_version()}  {platform.machine()}  cpus={os.cpu_count()}"
    )
    print(
        f"{CALLS} decorated calls per sample, flush inside the timed region; "
        f"median of {PAIRS} paired (ours/raw alternating) ratios\n"
    )

    raw = Raw()
    rollout.init(span_exporters=[DiscardExporter()], console=False)
    rows = [
        ratio_case("@task in a trace", ours_task, raw.child, raw, 1.2, "raw child span"),
        ratio_case("@tool dict in/out, in a trace", ours_tool, raw.child, raw, 1.4, "raw child"),
        ratio_case("@trace, one trace per call", ours_trace, raw.root, raw, 1.5, "raw root span"),
        ratio_case("@agent + 3 @tool (per span)", ours_agent, raw.agent, raw, 1.5, "4 raw spans"),
    ]
    rollout.init(disabled=True)
    rows.append(delta_case("@task, disabled", run_off_task, run_bare, 0.5))
    rows.append(delta_case("@tool, disabled", run_off_tool, run_bare_tool, 0.5))
    rollout.shutdown()
    raw.provider.shutdown()

    print_table(
        ("case", "ours us/call", "ref us/call", "measured", "target", "PASS/MISS", "dropped"),
        [
            (
                r.label,
                f"{r.ours_us:.3f}",
                f"{r.ref_us:.3f}",
                r.measured,
                r.target,
                r.verdict,
                r.dropped,
            )
            for r in rows
        ],
    )
    print("dropped: ours (rollout.stats()) / raw (spans made - spans its exporter got)")

    print("\nexport worker CPU per span (privacy + OTLP encoding vs encoding the raw spans):")
    cpu = [
        worker_cpu("@task in a trace", ours_task, "child"),
        worker_cpu("@tool dict in/out", ours_tool, "child"),
        worker_cpu("@trace per call", ours_trace, "root"),
    ]
    print_table(
        ("spans of", "ours us/span", "raw us/span", "ratio"),
        [(label, f"{o:.2f}", f"{r:.2f}", f"{x:.2f}x") for label, o, r, x in cpu],
    )

    if COST_PAIRS > 0:
        print(
            f"\nwhat the defaults cost: each turned off alone, then all four; ratio to raw "
            f"(median of {COST_PAIRS} pairs), targets as above:"
        )
        raw = Raw()
        print_table(("settings", "@tool", "@trace", "@agent + 3 @tool", "dropped"), cost_rows(raw))
        raw.provider.shutdown()

    print("\nGenAI metrics on vs off (same defaults; on: posted to a receiver on 127.0.0.1):")
    print_table(
        (
            "case",
            "on us/call",
            "off us/call",
            "measured",
            "target",
            "PASS/MISS",
            "exports ok/failed",
        ),
        metrics_rows(),
    )


if __name__ == "__main__":
    started = time.perf_counter()
    try:
        main()
    except Exception:
        traceback.print_exc()
        print("benchmark failed (reported above); exiting 0: this script reports, it does not test")
    print(f"\ntotal {time.perf_counter() - started:.1f}s")
    sys.exit(0)
