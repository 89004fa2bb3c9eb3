"""Tests of the console tree printer (mv37.rollout.pipeline._console)."""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from mv37.rollout.base._diagnostics import internal_error_counts
from mv37.rollout.pipeline._console import ConsoleTreeProcessor, format_duration, format_tree
from mv37.rollout.pipeline._stats import Counters
from mv37.rollout.semconv import (
    EVENT_ROLLOUT_FEEDBACK,
    EVENT_ROLLOUT_MESSAGE,
    EVENT_ROLLOUT_SIGNAL,
    ROLLOUT_ERROR_MESSAGE,
    ROLLOUT_ERROR_TYPE,
    ROLLOUT_FEEDBACK_NAME,
    ROLLOUT_FEEDBACK_VALUE,
    ROLLOUT_INPUT,
    ROLLOUT_LLM_MODEL,
    ROLLOUT_MESSAGE_CONTENT,
    ROLLOUT_MESSAGE_ROLE,
    ROLLOUT_OUTPUT,
    ROLLOUT_SIGNAL_NAME,
    ROLLOUT_SIGNAL_VALUE,
    ROLLOUT_SPAN_TYPE,
    ROLLOUT_TOOL_NAME,
    ROLLOUT_TRACE_NAME,
    ROLLOUT_USAGE_COST_USD,
    ROLLOUT_USAGE_INPUT_TOKENS,
    ROLLOUT_USAGE_OUTPUT_TOKENS,
    ROLLOUT_USAGE_TOTAL_TOKENS,
)

_DURATION = re.compile(r"\b\d+ m \d{2} s\b|\b\d+(?:\.\d+)? (?:µs|ms|s)\b")


class Setup:
    """A tracer provider wired to a ConsoleTreeProcessor writing into a StringIO."""

    def __init__(self, processor: ConsoleTreeProcessor, stream: io.StringIO) -> None:
        self.processor = processor
        self.stream = stream
        self.provider = TracerProvider()
        self.provider.add_span_processor(processor)
        self.tracer: Tracer = self.provider.get_tracer("test")

    def lines(self) -> list[str]:
        """The printed output with durations replaced by <dur>."""
        return [_DURATION.sub("<dur>", line) for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def setup() -> Iterator[Setup]:
    """A fresh provider and processor per test."""
    stream = io.StringIO()
    result = Setup(ConsoleTreeProcessor(stream, width=120), stream)
    yield result
    result.provider.shutdown()


def _trace_hex(span: object) -> str:
    """The 32-digit hex trace id of a live span."""
    context = span.get_span_context()  # type: ignore[attr-defined]
    return f"{context.trace_id:032x}"


def test_nested_tree_with_tools_llm_usage_and_events(setup: Setup) -> None:
    """A full agent trace prints every span, event, usage and payload in order."""
    tracer = setup.tracer
    with tracer.start_as_current_span(
        "invoke_agent",
        attributes={
            ROLLOUT_SPAN_TYPE: "agent",
            ROLLOUT_TRACE_NAME: "support_agent",
            ROLLOUT_INPUT: "What's the weather\nin Paris?",
        },
    ) as root:
        trace_hex = _trace_hex(root)
        root.add_event(
            EVENT_ROLLOUT_MESSAGE,
            {ROLLOUT_MESSAGE_ROLE: "user", ROLLOUT_MESSAGE_CONTENT: "What's the weather in Paris?"},
        )
        with tracer.start_as_current_span(
            "get_weather",
            attributes={
                ROLLOUT_SPAN_TYPE: "tool",
                ROLLOUT_TOOL_NAME: "get_weather",
                ROLLOUT_INPUT: '{"city": "Paris"}',
                ROLLOUT_OUTPUT: '{"city": "Paris", "temp": 21}',
            },
        ):
            pass
        with tracer.start_as_current_span("plan", attributes={ROLLOUT_SPAN_TYPE: "task"}):
            with tracer.start_as_current_span(
                "chat gpt-4o",
                attributes={
                    ROLLOUT_SPAN_TYPE: "llm",
                    ROLLOUT_LLM_MODEL: "gpt-4o",
                    ROLLOUT_USAGE_INPUT_TOKENS: 120,
                    ROLLOUT_USAGE_OUTPUT_TOKENS: 45,
                    ROLLOUT_USAGE_TOTAL_TOKENS: 165,
                    ROLLOUT_USAGE_COST_USD: 0.0012,
                },
            ):
                pass
            with tracer.start_as_current_span(
                "chat", attributes={ROLLOUT_SPAN_TYPE: "llm", ROLLOUT_LLM_MODEL: "o3"}
            ) as chat:
                chat.set_attribute(ROLLOUT_USAGE_INPUT_TOKENS, 7)
                chat.set_attribute(ROLLOUT_USAGE_OUTPUT_TOKENS, 3)
        root.add_event(
            EVENT_ROLLOUT_FEEDBACK,
            {ROLLOUT_FEEDBACK_NAME: "thumbs_up", ROLLOUT_FEEDBACK_VALUE: True},
        )
        root.add_event(
            EVENT_ROLLOUT_SIGNAL, {ROLLOUT_SIGNAL_NAME: "order_placed", ROLLOUT_SIGNAL_VALUE: 2}
        )
        root.set_attribute(ROLLOUT_OUTPUT, "It is 21 °C.")
        assert setup.stream.getvalue() == ""

    assert setup.lines() == [
        f"rollout ▸ support_agent  [agent]  <dur>  ok  trace {trace_hex}",
        "│ in  What's the weather in Paris?",
        "│ out It is 21 °C.",
        '├─ • message user: "What\'s the weather in Paris?"',
        "├─ get_weather  [tool]  <dur>  ok",
        '│    in  {"city": "Paris"}',
        '│    out {"city": "Paris", "temp": 21}',
        "├─ plan  [task]  <dur>  ok",
        "│  ├─ chat gpt-4o  [llm]  <dur>  ok  tokens 120→45 (165)  $0.0012",
        "│  └─ chat  [llm]  <dur>  ok  model o3  tokens 7→3 (10)",
        "├─ • feedback thumbs_up = true",
        "└─ • signal order_placed = 2",
    ]
    assert setup.processor._traces == {}


def test_error_spans_show_type_and_message(setup: Setup) -> None:
    """Failed spans show ERROR with the exception type and message from any source."""
    tracer = setup.tracer
    trace_ids: list[str] = []

    def lookup() -> None:
        with tracer.start_as_current_span("lookup", attributes={ROLLOUT_SPAN_TYPE: "tool"}):
            raise ValueError("boom\nsecond line")

    def run() -> None:
        with tracer.start_as_current_span(
            "run", attributes={ROLLOUT_SPAN_TYPE: "trace", ROLLOUT_TRACE_NAME: "pipeline"}
        ) as root:
            trace_ids.append(_trace_hex(root))
            with pytest.raises(ValueError):
                lookup()
            with tracer.start_as_current_span(
                "validate",
                attributes={
                    ROLLOUT_SPAN_TYPE: "task",
                    ROLLOUT_ERROR_TYPE: "SchemaError",
                    ROLLOUT_ERROR_MESSAGE: "missing field 'id'",
                },
            ):
                pass
            raise RuntimeError("gave up")

    with pytest.raises(RuntimeError):
        run()
    trace_hex = trace_ids[0]

    assert setup.lines() == [
        f"rollout ▸ pipeline  [trace]  <dur>  ERROR RuntimeError: gave up  trace {trace_hex}",
        "├─ lookup  [tool]  <dur>  ERROR ValueError: boom second line",
        "└─ validate  [task]  <dur>  ERROR SchemaError: missing field 'id'",
    ]


def test_foreign_child_span_is_shown_as_otel(setup: Setup) -> None:
    """A child span from another instrumentation appears with the [otel] type."""
    tracer = setup.tracer
    with tracer.start_as_current_span("agent", attributes={ROLLOUT_SPAN_TYPE: "agent"}) as root:
        trace_hex = _trace_hex(root)
        with (
            tracer.start_as_current_span("step", attributes={ROLLOUT_SPAN_TYPE: "span"}),
            tracer.start_as_current_span("GET /orders"),
        ):
            pass

    assert setup.lines() == [
        f"rollout ▸ agent  [agent]  <dur>  ok  trace {trace_hex}",
        "└─ step  [span]  <dur>  ok",
        "   └─ GET /orders  [otel]  <dur>  ok",
    ]


def test_rollout_trace_inside_foreign_root_prints_only_its_subtree(setup: Setup) -> None:
    """A Rollout trace under an HTTP server span prints when it ends, without the HTTP span."""
    tracer = setup.tracer
    with tracer.start_as_current_span("POST /chat") as http_span:
        trace_hex = _trace_hex(http_span)
        with tracer.start_as_current_span("auth middleware"):
            pass
        with (
            tracer.start_as_current_span(
                "invoke_agent", attributes={ROLLOUT_SPAN_TYPE: "agent", ROLLOUT_TRACE_NAME: "bot"}
            ),
            tracer.start_as_current_span(
                "inner_flow", attributes={ROLLOUT_SPAN_TYPE: "trace", ROLLOUT_TRACE_NAME: "nested"}
            ),
            tracer.start_as_current_span("search", attributes={ROLLOUT_SPAN_TYPE: "tool"}),
        ):
            pass
        printed = setup.lines()
        assert printed == [
            f"rollout ▸ bot  [agent]  <dur>  ok  trace {trace_hex}",
            "└─ nested  [trace]  <dur>  ok",
            "   └─ search  [tool]  <dur>  ok",
        ]
        with tracer.start_as_current_span("serialize response"):
            pass
    assert setup.lines() == printed
    assert setup.processor._traces == {}


def test_two_threads_print_separate_complete_trees(setup: Setup) -> None:
    """Traces running interleaved on two threads print separately and completely."""
    tracer = setup.tracer
    barrier = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with tracer.start_as_current_span(
                "agent", attributes={ROLLOUT_SPAN_TYPE: "agent", ROLLOUT_TRACE_NAME: name}
            ):
                for step in range(3):
                    barrier.wait()
                    with tracer.start_as_current_span(
                        f"{name}-tool-{step}", attributes={ROLLOUT_SPAN_TYPE: "tool"}
                    ):
                        barrier.wait()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in ("alpha", "beta")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors

    text = _DURATION.sub("<dur>", setup.stream.getvalue())
    blocks = sorted(re.split(r"\n(?=rollout ▸ )", text.strip()))
    assert len(blocks) == 2
    for name, block in zip(("alpha", "beta"), blocks):
        lines = block.splitlines()
        assert re.fullmatch(
            rf"rollout ▸ {name}  \[agent\]  <dur>  ok  trace [0-9a-f]{{32}}", lines[0]
        )
        assert lines[1:] == [
            f"├─ {name}-tool-0  [tool]  <dur>  ok",
            f"├─ {name}-tool-1  [tool]  <dur>  ok",
            f"└─ {name}-tool-2  [tool]  <dur>  ok",
        ]
    assert setup.processor._traces == {}


def test_spans_without_rollout_trace_are_not_buffered(setup: Setup) -> None:
    """Spans of traces that have no Rollout trace span are never kept."""
    tracer = setup.tracer
    with tracer.start_as_current_span("GET /health"):
        with tracer.start_as_current_span("db query"):
            pass
        with (
            tracer.start_as_current_span("llm call", attributes={ROLLOUT_SPAN_TYPE: "llm"}),
            tracer.start_as_current_span("tool", attributes={ROLLOUT_SPAN_TYPE: "tool"}),
        ):
            pass
        assert len(setup.processor._traces) == 0
    assert len(setup.processor._traces) == 0
    assert setup.stream.getvalue() == ""


def test_closed_stream_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    """Printing to a closed stream logs a warning once, saying why, and never raises."""
    stream = io.StringIO()
    stream.close()
    processor = ConsoleTreeProcessor(stream)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")
    with caplog.at_level(logging.DEBUG, logger="mv37.rollout"):
        for _ in range(2):
            with (
                tracer.start_as_current_span("agent", attributes={ROLLOUT_SPAN_TYPE: "agent"}),
                tracer.start_as_current_span("child"),
            ):
                pass
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "mv37.rollout: the console tree could not be written (ValueError: I/O operation on "
        "closed file); its spans are counted in stats().spans_failed. Pass console=False to "
        "turn it off"
    ]
    assert processor._traces == {}


def test_huge_input_is_shortened(setup: Setup) -> None:
    """An input goes on its own line, flattened and cut with "…" at the width (120)."""
    tracer = setup.tracer
    with tracer.start_as_current_span("agent", attributes={ROLLOUT_SPAN_TYPE: "agent"}) as root:
        trace_hex = _trace_hex(root)
        with tracer.start_as_current_span(
            "summarise",
            attributes={ROLLOUT_SPAN_TYPE: "llm", ROLLOUT_INPUT: "line one\n" + "x" * 100_000},
        ):
            pass
    shortened = ("line one " + "x" * 200)[: 120 - len("     in  ") - 1] + "…"
    assert setup.lines() == [
        f"rollout ▸ agent  [agent]  <dur>  ok  trace {trace_hex}",
        "└─ summarise  [llm]  <dur>  ok",
        f"     in  {shortened}",
    ]
    assert len(setup.lines()[-1]) == 120


def test_buffer_cap_counts_dropped_spans() -> None:
    """Beyond the per-trace cap spans are only counted and reported."""
    stream = io.StringIO()
    provider = TracerProvider()
    provider.add_span_processor(ConsoleTreeProcessor(stream, max_spans_per_trace=2))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("agent", attributes={ROLLOUT_SPAN_TYPE: "agent"}):
        for index in range(5):
            with tracer.start_as_current_span(f"step {index}"):
                pass
    lines = _DURATION.sub("<dur>", stream.getvalue()).splitlines()
    assert lines[1:] == [
        "├─ step 0  [otel]  <dur>  ok",
        "├─ step 1  [otel]  <dur>  ok",
        "└─ … 3 more spans not shown",
    ]


def test_second_rollout_trace_in_same_otel_trace_prints_after_first(setup: Setup) -> None:
    """Sequential Rollout traces under one foreign root each print their own tree."""
    tracer = setup.tracer
    with tracer.start_as_current_span("job"):
        for name in ("first", "second"):
            with (
                tracer.start_as_current_span(
                    name, attributes={ROLLOUT_SPAN_TYPE: "trace", ROLLOUT_TRACE_NAME: name}
                ),
                tracer.start_as_current_span(f"{name} step"),
            ):
                pass
    lines = setup.lines()
    assert [line.split("  trace ")[0] for line in lines] == [
        "rollout ▸ first  [trace]  <dur>  ok",
        "└─ first step  [otel]  <dur>  ok",
        "rollout ▸ second  [trace]  <dur>  ok",
        "└─ second step  [otel]  <dur>  ok",
    ]


def test_shutdown_prints_nothing_and_force_flush_is_true(setup: Setup) -> None:
    """shutdown() drops open traces silently; force_flush() always succeeds."""
    span = setup.tracer.start_span("agent", attributes={ROLLOUT_SPAN_TYPE: "agent"})
    assert len(setup.processor._traces) == 1
    assert setup.processor.force_flush() is True
    setup.processor.shutdown()
    assert setup.processor._traces == {}
    span.end()
    assert setup.stream.getvalue() == ""


def test_default_stream_is_stderr_at_print_time(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a stream the tree goes to the sys.stderr current at print time, uncoloured."""
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    provider = TracerProvider()
    provider.add_span_processor(ConsoleTreeProcessor())
    with provider.get_tracer("test").start_as_current_span(
        "agent", attributes={ROLLOUT_SPAN_TYPE: "agent"}
    ):
        pass
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("rollout ▸ agent  [agent]  ")
    assert "\x1b[" not in captured.err


def test_color_option_adds_ansi_codes() -> None:
    """color=True styles the output with ANSI escape codes."""
    stream = io.StringIO()
    provider = TracerProvider()
    provider.add_span_processor(ConsoleTreeProcessor(stream, color=True))
    with provider.get_tracer("test").start_as_current_span(
        "agent", attributes={ROLLOUT_SPAN_TYPE: "agent"}
    ):
        pass
    assert "\x1b[" in stream.getvalue()


def _finished_spans(tracer_setup: Setup) -> list[ReadableSpan]:
    """Spans recorded by an in-memory exporter attached to the setup's provider."""
    exporter = InMemorySpanExporter()
    tracer_setup.provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = tracer_setup.tracer
    with tracer.start_as_current_span("root", attributes={ROLLOUT_SPAN_TYPE: "agent"}):
        with tracer.start_as_current_span("a"), tracer.start_as_current_span("a1"):
            pass
        with tracer.start_as_current_span("b"):
            pass
    return list(exporter.get_finished_spans())


def test_format_tree_hangs_orphans_under_root(setup: Setup) -> None:
    """format_tree places spans whose parent is missing directly under the root."""
    spans = {span.name: span for span in _finished_spans(setup)}
    root = spans["root"]
    text = _DURATION.sub("<dur>", format_tree(root, [spans["a1"], spans["b"], root]))
    assert text.splitlines()[1:] == [
        "├─ a1  [otel]  <dur>  ok",
        "└─ b  [otel]  <dur>  ok",
    ]
    full = _DURATION.sub("<dur>", format_tree(root, list(spans.values())))
    assert full.splitlines()[1:] == [
        "├─ a  [otel]  <dur>  ok",
        "│  └─ a1  [otel]  <dur>  ok",
        "└─ b  [otel]  <dur>  ok",
    ]


@pytest.mark.parametrize(
    ("nanoseconds", "expected"),
    [
        (None, "?"),
        (850_000, "850 µs"),
        (12_340_000, "12.3 ms"),
        (999_990_000, "1.00 s"),
        (1_520_000_000, "1.52 s"),
        (125_000_000_000, "2 m 05 s"),
    ],
)
def test_format_duration(nanoseconds: int | None, expected: str) -> None:
    """Durations are rendered in µs, ms, s or minutes."""
    assert format_duration(nanoseconds) == expected


def test_an_internal_failure_is_logged_once_counted_and_never_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A scrubber that raises: the tree is not printed, its spans count as failed, one
    warning with the traceback, the user's code goes on."""
    monkeypatch.delenv("MV37_ROLLOUT_RAISE_INTERNAL", raising=False)

    def broken(text: str) -> str:
        raise RuntimeError("scrubber bug")

    stream = io.StringIO()
    counters = Counters()
    provider = TracerProvider()
    provider.add_span_processor(ConsoleTreeProcessor(stream, scrub=broken, counters=counters))
    tracer = provider.get_tracer("test")
    with caplog.at_level(logging.WARNING, logger="mv37.rollout"):
        for _ in range(2):
            with (
                tracer.start_as_current_span("agent", attributes={ROLLOUT_SPAN_TYPE: "agent"}),
                tracer.start_as_current_span("child"),
            ):
                pass
    assert stream.getvalue() == ""
    stats = counters.snapshot()
    assert (stats.spans_failed, stats.export_failures, stats.spans_in_flight) == (4, 2, 0)
    assert internal_error_counts() == {"console tree": 2}
    assert [r.getMessage() for r in caplog.records] == [
        "mv37.rollout: internal error in console tree (instrumentation continues; later "
        "errors here are counted, not logged)"
    ]
    assert caplog.records[0].exc_info is not None


def test_a_stream_that_cannot_encode_the_guides_gets_question_marks() -> None:
    """An ASCII-only stream (a legacy console, a redirected file) still gets the tree."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    provider = TracerProvider()
    provider.add_span_processor(ConsoleTreeProcessor(stream, width=80, color=False))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("agent", attributes={ROLLOUT_SPAN_TYPE: "agent"}),
        tracer.start_as_current_span("café"),
    ):
        pass
    lines = raw.getvalue().decode("ascii").splitlines()
    assert lines[0].startswith("rollout ? agent  [agent]  ")
    assert lines[1].startswith("?? caf?  [otel]  ")
    assert lines[1].endswith("  ok")
