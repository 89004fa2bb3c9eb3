"""Feedback, signals and identities sent after their trace printed: one line naming it."""

from __future__ import annotations

import io
import re

import pytest
from opentelemetry.sdk.trace import TracerProvider

import mv37.rollout as rollout
from mv37.rollout.pipeline._console import ConsoleTreeProcessor
from mv37.rollout.pipeline._console_text import cells
from mv37.rollout.semconv import (
    EVENT_ROLLOUT_FEEDBACK,
    ROLLOUT_FEEDBACK_NAME,
    ROLLOUT_FEEDBACK_VALUE,
    ROLLOUT_SPAN_TYPE,
    ROLLOUT_TRACE_NAME,
)

_DURATION = re.compile(r"\d+(?:\.\d+)? (?:µs|ms|s)\b")


@pytest.fixture(autouse=True)
def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("FORCE_COLOR", raising=False)


async def _run_agent(mode: str) -> str:
    """Run a small agent (sync or async flavour); its trace id."""
    seen: list[str] = []

    @rollout.agent("support_agent")
    def support(text: str) -> str:
        trace = rollout.current_trace()
        assert trace is not None
        seen.append(trace.trace_id)
        return text.upper()

    @rollout.agent("support_agent")
    async def asupport(text: str) -> str:
        trace = rollout.current_trace()
        assert trace is not None
        seen.append(trace.trace_id)
        return text.upper()

    assert (support("hi") if mode == "sync" else await asupport("hi")) == "HI"
    return seen[0]


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_late_feedback_signal_and_identity_each_print_one_line(
    capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """After the tree printed, each late outcome prints a line with the trace's name and id."""
    rollout.init()
    trace_id = await _run_agent(mode)
    tree = capsys.readouterr().err
    assert tree.startswith("rollout ▸ support_agent  [agent]  ")
    assert trace_id in tree.splitlines()[0]

    rollout.feedback("csat", 5, trace_id=trace_id)
    rollout.signal("churned", False, trace_id=trace_id)
    rollout.identify_user("user-42", trace_id=trace_id)
    short = "…" + trace_id[-8:]
    assert capsys.readouterr().err.splitlines() == [
        f"rollout ▸ • feedback csat = 5  for support_agent  trace {short}",
        f"rollout ▸ • signal churned = false  for support_agent  trace {short}",
        f"rollout ▸ • identify user user-42  for support_agent  trace {short}",
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_feedback_by_external_id_names_the_trace_too(
    capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """Naming the trace by its external id reaches the same line."""
    rollout.init()

    @rollout.agent("support_agent", external_trace_id="ticket-9")
    def support() -> str:
        return "done"

    @rollout.agent("support_agent", external_trace_id="ticket-9")
    async def asupport() -> str:
        return "done"

    assert (support() if mode == "sync" else await asupport()) == "done"
    trace_id = capsys.readouterr().err.splitlines()[0][-32:]
    rollout.feedback("thumbs_up", True, external_trace_id="ticket-9")
    assert capsys.readouterr().err == (
        f"rollout ▸ • feedback thumbs_up = true  for support_agent  trace …{trace_id[-8:]}\n"
    )


def test_feedback_for_a_trace_printed_elsewhere_names_its_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A trace this console never printed (another process's) is named by its id."""
    rollout.init()
    rollout.feedback("csat", 3, trace_id="0af7651916cd43dd8448eb211c80319c")
    assert capsys.readouterr().err == "rollout ▸ • feedback csat = 3  for trace …1c80319c\n"


@pytest.mark.parametrize("width", [48, 60, 80])
def test_late_line_fits_the_width(width: int) -> None:
    """A long name and value are cut so that the line fits; the id stays."""
    stream = io.StringIO()
    provider = TracerProvider()
    provider.add_span_processor(ConsoleTreeProcessor(stream, width=width, color=False))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(
        "run",
        attributes={ROLLOUT_SPAN_TYPE: "agent", ROLLOUT_TRACE_NAME: "a_rather_long_agent_name"},
    ) as root:
        trace_id = f"{root.get_span_context().trace_id:032x}"
    carrier = tracer.start_span("feedback comment", attributes={ROLLOUT_SPAN_TYPE: "feedback"})
    carrier.add_event(
        EVENT_ROLLOUT_FEEDBACK,
        {ROLLOUT_FEEDBACK_NAME: "comment", ROLLOUT_FEEDBACK_VALUE: "très bien 👍 " * 20},
    )
    carrier.end()
    late = stream.getvalue().splitlines()[-1]
    assert late.startswith("rollout ▸ • feedback comm")
    assert "…" in late
    assert cells(late) <= width
    # Its own trace id: another trace, never printed here.
    own = f"{carrier.get_span_context().trace_id:032x}"
    assert late.endswith("trace …" + own[-8:])
    assert own != trace_id


def test_a_carrier_inside_an_open_trace_is_part_of_its_tree() -> None:
    """A carrier span that ends while its trace is still open prints inside the tree."""
    stream = io.StringIO()
    provider = TracerProvider()
    provider.add_span_processor(ConsoleTreeProcessor(stream, width=100, color=False))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("run", attributes={ROLLOUT_SPAN_TYPE: "agent"}),
        tracer.start_as_current_span(
            "feedback csat", attributes={ROLLOUT_SPAN_TYPE: "feedback"}
        ) as carrier,
    ):
        carrier.add_event(
            EVENT_ROLLOUT_FEEDBACK, {ROLLOUT_FEEDBACK_NAME: "csat", ROLLOUT_FEEDBACK_VALUE: 4}
        )
    lines = _DURATION.sub("<dur>", stream.getvalue()).splitlines()
    assert lines[1:] == [
        "└─ feedback csat  [feedback]  <dur>  ok",
        "   └─ • feedback csat = 4",
    ]
