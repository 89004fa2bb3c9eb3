"""The console tree's layout: snapshots at 60, 80, 100 and 160 columns, no line wider
than the width, events and spans in time order, and the text measures behind it.

The realistic trace is built on a plain SDK provider with fixed ids and timestamps, so
its tree is byte-for-byte stable. Regenerate the snapshots under tests/fixtures/console/
with `UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_console_layout.py`.
"""

from __future__ import annotations

import io
import os
import random
import re
from pathlib import Path

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace import Span as SDKSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Status, StatusCode

from mv37.rollout import semconv as sc
from mv37.rollout.pipeline._console import ConsoleTreeProcessor, format_late, format_tree
from mv37.rollout.pipeline._console_text import cells, fit, one_line

SNAPSHOTS = Path(__file__).parent / "fixtures" / "console"
WIDTHS = (60, 80, 100, 160)
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
T0 = 1_750_000_000_000_000_000  # ns; every time below is T0 + an offset
MS = 1_000_000
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class FixedIds(IdGenerator):
    """Trace id `TRACE_ID` (then +1, +2, ...) and span ids 1, 2, 3, ..."""

    def __init__(self) -> None:
        self._span = 0
        self._trace = TRACE_ID - 1

    def generate_span_id(self) -> int:
        self._span += 1
        return self._span

    def generate_trace_id(self) -> int:
        self._trace += 1
        return self._trace


class Builder:
    """Spans with fixed ids and times on a provider that records them in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(id_generator=FixedIds())
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("test")

    def start(
        self, name: str, at_ms: float, parent: SDKSpan | None = None, **attrs: object
    ) -> SDKSpan:
        context = otel_trace.set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(
            name,
            context=context,
            attributes={k.replace("__", "."): v for k, v in attrs.items()},  # type: ignore[misc]
            start_time=T0 + int(at_ms * MS),
        )
        assert isinstance(span, SDKSpan)
        return span

    @staticmethod
    def end(span: SDKSpan, at_ms: float) -> None:
        span.end(end_time=T0 + int(at_ms * MS))

    @staticmethod
    def event(span: SDKSpan, name: str, at_ms: float, attrs: dict[str, object]) -> None:
        span.add_event(name, attrs, timestamp=T0 + int(at_ms * MS))  # type: ignore[arg-type]

    def spans(self) -> dict[str, ReadableSpan]:
        return {span.name: span for span in self.exporter.get_finished_spans()}


def realistic_trace() -> tuple[ReadableSpan, list[ReadableSpan], ReadableSpan]:
    """An agent run: retrieval, tools, an LLM with a foreign HTTP span, a failed and a
    cancelled tool, a handled exception, deep nesting, unicode and wide payloads,
    messages, feedback and a signal; and a late feedback carrier for it."""
    b = Builder()
    root = b.start(
        "invoke_agent support_agent",
        0,
        rollout__span__type="agent",
        rollout__trace__name="support_agent",
        input__value='{"text": "Réserve une table pour 2 à 東京 ce soir 🍣, près de Shibuya"}',
        input__mime_type="application/json",
        output__value="C'est fait : table pour 2 chez 寿司さいとう à 19 h 30.",
        output__mime_type="text/plain",
        rollout__usage__input_tokens=1234,
        rollout__usage__output_tokens=345,
        rollout__usage__total_tokens=1579,
        rollout__usage__cost_usd=0.004321,
    )
    b.event(
        root,
        sc.EVENT_ROLLOUT_MESSAGE,
        0.5,
        {
            sc.ROLLOUT_MESSAGE_ROLE: "user",
            sc.ROLLOUT_MESSAGE_CONTENT: "Réserve une table pour 2 à 東京 ce soir 🍣",
        },
    )
    retrieval = b.start(
        "retrieval faq_lookup",
        1,
        root,
        rollout__span__type="retrieval",
        input__value='{"query": "restaurants sushi Shibuya"}',
        output__value='["Sushi Saito (寿司さいとう)", "Sukiyabashi Jiro", "Sushi Yoshitake"]',
    )
    b.end(retrieval, 13.4)
    search = b.start(
        "execute_tool search_restaurants",
        14,
        root,
        rollout__span__type="tool",
        rollout__tool__name="search_restaurants",
        gen_ai__tool__call__arguments='{"area": "Shibuya", "cuisine": "sushi", "party": 2}',
        gen_ai__tool__call__result="["
        + ", ".join(f'{{"id": {i}, "seats": {i % 4}}}' for i in range(40))
        + "]",
    )
    b.end(search, 250.2)
    plan = b.start("plan", 251, root, rollout__span__type="task")
    llm = b.start(
        "chat gpt-4o-mini",
        252,
        plan,
        rollout__span__type="llm",
        rollout__llm__model="gpt-4o-mini-2024-07-18",
        rollout__usage__input_tokens=1234,
        rollout__usage__output_tokens=345,
        rollout__usage__total_tokens=1579,
        rollout__usage__cost_usd=0.004321,
        gen_ai__input__messages='[{"role": "system", "parts": [{"type": "text", "content": "You '
        'book tables."}]}, {"role": "user", "parts": [{"type": "text", "content": "Réserve\\n'
        'une table"}]}]',
        gen_ai__output__messages='[{"role": "assistant", "parts": [{"type": "tool_call", "name": '
        '"book_table"}]}]',
    )
    http = b.start("POST https://api.openai.com/v1/chat/completions", 253, llm)
    b.end(http, 1_480)
    b.end(llm, 1_481.7)
    book = b.start(
        "execute_tool book_table",
        1_482,
        plan,
        rollout__span__type="tool",
        rollout__tool__name="book_table",
        gen_ai__tool__call__arguments='{"restaurant": "寿司さいとう", "time": "19:30", "party": 2}',
    )
    book.set_status(Status(StatusCode.ERROR))
    book.set_attribute(sc.ROLLOUT_ERROR_TYPE, "BookingError")
    book.set_attribute(
        sc.ROLLOUT_ERROR_MESSAGE,
        "寿司さいとう is fully booked on 2026-12-24 at 19:30 for a party of 2; try 21:00",
    )
    b.end(book, 1_902.3)
    retry = b.start(
        "execute_tool book_table",
        1_903,
        plan,
        rollout__span__type="tool",
        rollout__tool__name="book_table",
        gen_ai__tool__call__arguments='{"restaurant": "寿司さいとう", "time": "21:00", "party": 2}',
        gen_ai__tool__call__result='{"confirmation": "SAITO-2112", "time": "21:00"}',
    )
    b.event(
        retry,
        sc.EVENT_EXCEPTION,
        1_950,
        {sc.EXCEPTION_TYPE: "TimeoutError", sc.EXCEPTION_MESSAGE: "first attempt timed out"},
    )
    b.end(retry, 2_100)
    notify = b.start(
        "execute_tool notify_user",
        2_101,
        plan,
        rollout__span__type="tool",
        rollout__tool__name="notify_user",
        error__type="CancelledError",
    )
    b.end(notify, 2_102)
    steps = [plan]
    for depth in range(1, 11):
        steps.append(b.start(f"step {depth}", 2_103 + depth, steps[-1], rollout__span__type="span"))
    leaf = b.start(
        "execute_tool lookup_allergens_for_the_whole_party_of_two",
        2_120,
        steps[-1],
        rollout__span__type="tool",
        rollout__tool__name="lookup_allergens_for_the_whole_party_of_two",
        input__value="{}",
        output__value="null",
    )
    b.end(leaf, 2_121)
    for offset, step in enumerate(reversed(steps[1:])):  # innermost first
        b.end(step, 2_122 + offset)
    b.end(plan, 2_200)
    b.event(
        root,
        sc.EVENT_ROLLOUT_MESSAGE,
        2_300,
        {
            sc.ROLLOUT_MESSAGE_ROLE: "assistant",
            sc.ROLLOUT_MESSAGE_CONTENT: "C'est fait : table pour 2 chez 寿司さいとう à 21 h.",
        },
    )
    b.event(
        root,
        sc.EVENT_ROLLOUT_FEEDBACK,
        2_310,
        {sc.ROLLOUT_FEEDBACK_NAME: "thumbs_up", sc.ROLLOUT_FEEDBACK_VALUE: True},
    )
    b.event(
        root,
        sc.EVENT_ROLLOUT_SIGNAL,
        2_320,
        {sc.ROLLOUT_SIGNAL_NAME: "booking_confirmed", sc.ROLLOUT_SIGNAL_VALUE: "SAITO-2112"},
    )
    b.end(root, 2_345.6)
    carrier = b.start(
        "feedback csat",
        60_000,
        root,  # in the trace, under its (ended) root: as facade/_feedback.py sends it
        rollout__span__type="feedback",
    )
    b.event(
        carrier,
        sc.EVENT_ROLLOUT_FEEDBACK,
        60_000,
        {sc.ROLLOUT_FEEDBACK_NAME: "csat", sc.ROLLOUT_FEEDBACK_VALUE: 5},
    )
    b.end(carrier, 60_000.2)
    finished = [span for span in b.exporter.get_finished_spans() if span.name != "feedback csat"]
    by_name = {span.name: span for span in b.exporter.get_finished_spans()}
    return by_name["invoke_agent support_agent"], finished, by_name["feedback csat"]


@pytest.fixture(scope="module")
def trace_spans() -> tuple[ReadableSpan, list[ReadableSpan], ReadableSpan]:
    return realistic_trace()


def _check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    assert path.exists(), f"missing snapshot {path}; run with UPDATE_SNAPSHOTS=1"
    assert text + "\n" == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("width", WIDTHS)
def test_snapshot_of_a_realistic_trace(
    trace_spans: tuple[ReadableSpan, list[ReadableSpan], ReadableSpan], width: int
) -> None:
    """The whole tree and its late feedback line, as printed at `width` columns."""
    root, spans, carrier = trace_spans
    tree = format_tree(root, spans, width=width)
    late = format_late(carrier, "support_agent", width=width)
    _check_snapshot(f"agent_tree_w{width}.txt", tree + "\n" + late)


@pytest.mark.parametrize("width", [20, 24, 33, 40, *WIDTHS, 61, 99, 240])
def test_no_line_is_wider_than_the_width(
    trace_spans: tuple[ReadableSpan, list[ReadableSpan], ReadableSpan], width: int
) -> None:
    """Every line of the tree and of the late line fits in `width` terminal cells."""
    root, spans, carrier = trace_spans
    for color in (False, True):
        text = format_tree(root, spans, width=width, color=color)
        text += "\n" + format_late(carrier, "support_agent", width=width, color=color)
        text += "\n" + format_late(carrier, None, width=width, color=color)
        widths = [cells(_ANSI.sub("", line)) for line in text.splitlines()]
        assert max(widths) <= width, text


def test_colour_takes_no_width(
    trace_spans: tuple[ReadableSpan, list[ReadableSpan], ReadableSpan],
) -> None:
    """Coloured output is the plain output with ANSI styles added."""
    root, spans, _ = trace_spans
    coloured = format_tree(root, spans, width=80, color=True)
    assert "\x1b[31mERROR\x1b[0m" in coloured
    assert "\x1b[31mBookingError: 寿司さいとう" in coloured
    assert _ANSI.sub("", coloured) == format_tree(root, spans, width=80)


def test_events_and_child_spans_in_time_order(
    trace_spans: tuple[ReadableSpan, list[ReadableSpan], ReadableSpan],
) -> None:
    """The root's messages, feedback and signal sit between its children as they happened."""
    root, spans, _ = trace_spans
    top = [
        line[3:].split("  ")[0]
        for line in format_tree(root, spans, width=160).splitlines()
        if line.startswith(("├─ ", "└─ "))
    ]
    assert top == [
        '• message user: "Réserve une table pour 2 à 東京 ce soir 🍣"',
        "retrieval faq_lookup",
        "execute_tool search_restaurants",
        "plan",
        '• message assistant: "C\'est fait : table pour 2 chez 寿司さいとう à 21 h."',
        "• feedback thumbs_up = true",
        "• signal booking_confirmed = SAITO-2112",
    ]


def test_input_and_output_lines_keep_the_guides(
    trace_spans: tuple[ReadableSpan, list[ReadableSpan], ReadableSpan],
) -> None:
    """Payload lines sit under their span, the guides of its ancestors continuing."""
    root, spans, _ = trace_spans
    lines = format_tree(root, spans, width=100).splitlines()
    search = next(i for i, line in enumerate(lines) if "search_restaurants" in line)
    assert lines[search + 1] == '│    in  {"area": "Shibuya", "cuisine": "sushi", "party": 2}'
    assert lines[search + 2].startswith('│    out [{"id": 0, "seats": 0}, ')
    assert lines[search + 2].endswith("…")
    assert cells(lines[search + 2]) == 100
    llm = next(i for i, line in enumerate(lines) if "chat gpt-4o-mini" in line)
    assert lines[llm].startswith("│  ├─ chat gpt-4o-mini  [llm]  1.23 s  ok  tokens 1234→345")
    assert lines[llm + 1].startswith('│  │  │ in  [{"role": "system"')  # its HTTP child below
    assert (
        lines[llm + 3]
        == "│  │  └─ POST https://api.openai.com/v1/chat/completions  [otel]  1.23 s  ok"
    )


def test_empty_input_and_none_output_print_no_lines(
    trace_spans: tuple[ReadableSpan, list[ReadableSpan], ReadableSpan],
) -> None:
    """Input `{}` and JSON output `null` are omitted; text output "null" would not be."""
    root, spans, _ = trace_spans
    text = format_tree(root, spans, width=160)
    leaf = text.splitlines().index(
        next(line for line in text.splitlines() if "lookup_allergens" in line)
    )
    assert "in  {}" not in text
    assert "out null" not in text
    assert text.splitlines()[leaf + 1].lstrip(" │├└─").startswith("• message assistant")


def test_data_model_events_and_identities_show_in_the_tree() -> None:
    """capture_event's `rollout.event` and identify_user's event print as bullets."""
    b = Builder()
    root = b.start("root", 0, rollout__span__type="trace", rollout__trace__name="flow")
    b.event(
        root,
        sc.EVENT_ROLLOUT_EVENT,
        1,
        {sc.ROLLOUT_EVENT_TYPE: "retrieval", sc.ROLLOUT_EVENT_FIELDS: '{"hits": 3}'},
    )
    b.event(root, sc.EVENT_ROLLOUT_EVENT, 2, {sc.ROLLOUT_EVENT_TYPE: "metric"})
    b.event(
        root,
        sc.EVENT_ROLLOUT_IDENTIFY,
        3,
        {sc.ROLLOUT_USER_ID: "u-1", sc.ROLLOUT_ACCOUNT_ID: "acme"},
    )
    b.end(root, 4)
    assert format_tree(root, [], width=80).splitlines()[1:] == [
        '├─ • event retrieval {"hits": 3}',
        "├─ • event metric",
        "└─ • identify user u-1 account acme",
    ]


def test_deep_nesting_elides_guides_and_still_fits() -> None:
    """A tree 60 levels deep prints every level within 60 columns, guides elided."""
    b = Builder()
    root = b.start("root", 0, rollout__span__type="agent")
    parents = [root]
    for depth in range(60):
        parents.append(b.start(f"level {depth} " + "名前" * 5, depth + 1, parents[-1]))
    for depth, span in enumerate(reversed(parents[1:])):
        b.end(span, 100 - depth)
    b.end(root, 200)
    spans = list(b.exporter.get_finished_spans())
    lines = format_tree(root, spans, width=60).splitlines()
    assert len(lines) == 61 + 1  # root, its trace id line, 60 levels
    assert all(cells(line) <= 60 for line in lines)
    assert lines[-1].startswith("…")
    assert "level 59" in lines[-1]


def test_random_payloads_never_overflow() -> None:
    """Names and payloads of random unicode (wide, combining, control, emoji) still fit."""
    rng = random.Random(7)
    alphabet = "aé東京🍣\u0301\u200b\t\n\x1b[31m│ " + "x" * 10
    b = Builder()
    root = b.start("root", 0, rollout__span__type="trace", rollout__trace__name="r")
    for index in range(30):
        payload = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        child = b.start(
            "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80))),
            index + 1,
            root,
            rollout__span__type="tool",
            input__value=payload,
            output__value=payload[::-1],
        )
        b.end(child, index + 1.5)
    b.end(root, 100)
    spans = list(b.exporter.get_finished_spans())
    for width in (20, 37, 60, 80, 100, 160):
        text = format_tree(root, spans, width=width)
        assert "\x1b" not in text
        assert max(cells(line) for line in text.splitlines()) <= width


# --------------------------------------------------------------------------- terminal


class FakeTty(io.StringIO):
    """A StringIO that says it is a terminal (file descriptor 99)."""

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 99


def _print_one(stream: io.StringIO, **kwargs: object) -> str:
    provider = TracerProvider()
    provider.add_span_processor(ConsoleTreeProcessor(stream, **kwargs))  # type: ignore[arg-type]
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(
        "agent",
        attributes={sc.ROLLOUT_SPAN_TYPE: "agent", sc.INPUT_VALUE: "x" * 500},
    ):
        pass
    return stream.getvalue()


@pytest.fixture
def plain_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("COLUMNS", "NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_width_comes_from_the_streams_terminal(plain_env: pytest.MonkeyPatch) -> None:
    """On a terminal the width is the terminal's, whatever COLUMNS says."""
    asked: list[int] = []

    def size(fd: int) -> os.terminal_size:
        asked.append(fd)
        return os.terminal_size((57, 20))

    plain_env.setattr(os, "get_terminal_size", size)
    plain_env.setenv("COLUMNS", "120")
    plain_env.setenv("NO_COLOR", "1")
    lines = _print_one(FakeTty()).splitlines()
    assert asked == [99]
    assert cells(lines[-1]) == 57
    assert lines[-1].endswith("x…")


@pytest.mark.parametrize(
    ("columns", "expected"), [("72", 72), ("", 100), ("wide", 100), ("0", 100)]
)
def test_width_from_columns_else_100(
    plain_env: pytest.MonkeyPatch, columns: str, expected: int
) -> None:
    """Not a terminal: COLUMNS when it is a positive number, else 100."""
    plain_env.setenv("COLUMNS", columns)
    lines = _print_one(io.StringIO()).splitlines()
    assert cells(lines[-1]) == expected


def test_a_terminal_without_a_size_falls_back_to_columns(plain_env: pytest.MonkeyPatch) -> None:
    """A terminal whose size cannot be read (or reads 0) uses COLUMNS."""

    def size(fd: int) -> os.terminal_size:
        raise OSError("not a tty")

    plain_env.setattr(os, "get_terminal_size", size)
    plain_env.setenv("COLUMNS", "66")
    plain_env.setenv("NO_COLOR", "1")
    assert cells(_print_one(FakeTty()).splitlines()[-1]) == 66


@pytest.mark.parametrize(
    ("tty", "env", "coloured"),
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"NO_COLOR": ""}, True),
        (False, {"FORCE_COLOR": "1"}, True),
        (False, {"FORCE_COLOR": ""}, False),
        (True, {"FORCE_COLOR": "1", "NO_COLOR": "1"}, True),
        (True, {"TERM": "dumb"}, False),
        (True, {"TERM": "xterm-256color"}, True),
    ],
)
def test_colour_only_on_a_terminal_without_no_color(
    plain_env: pytest.MonkeyPatch, tty: bool, env: dict[str, str], coloured: bool
) -> None:
    """Colour on a terminal unless NO_COLOR is non-empty; a non-empty FORCE_COLOR forces it."""
    plain_env.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((100, 20)))
    for name, value in env.items():
        plain_env.setenv(name, value)
    stream = FakeTty() if tty else io.StringIO()
    assert ("\x1b[" in _print_one(stream)) is coloured


def test_explicit_colour_and_width_win(plain_env: pytest.MonkeyPatch) -> None:
    """color= and width= given to the processor override the environment."""
    plain_env.setenv("FORCE_COLOR", "1")
    plain_env.setenv("COLUMNS", "200")
    out = _print_one(io.StringIO(), color=False, width=44)
    assert "\x1b[" not in out
    assert max(cells(line) for line in out.splitlines()) == 44


# --------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("text", "width", "expected"),
    [
        ("abcdef", 6, "abcdef"),
        ("abcdef", 5, "abcd…"),
        ("東京都庁", 8, "東京都庁"),
        ("東京都庁", 7, "東京都…"),
        ("東京都庁", 6, "東京…"),
        ("e\u0301e\u0301e\u0301", 3, "e\u0301e\u0301e\u0301"),
        ("🍣🍣🍣", 5, "🍣🍣…"),
        ("abc", 0, ""),
    ],
)
def test_fit_counts_terminal_cells(text: str, width: int, expected: str) -> None:
    """Wide characters take two cells, combining marks none; a cut ends with "…"."""
    assert fit(text, width) == expected
    assert cells(fit(text, width)) <= width


def test_one_line_flattens_breaks_and_escapes_and_reads_only_the_start() -> None:
    """Line breaks, tabs and escape characters become spaces; long text is capped."""
    assert one_line("a\n  b\r\n\tc\x1b[31md", 100) == "a b c [31md"
    assert one_line("x" * 1_000_000, 10) == "x" * 10 + "…"
    assert one_line(("a", True, 2), 20) == "[a, true, 2]"
