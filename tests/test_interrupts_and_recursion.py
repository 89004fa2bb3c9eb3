"""What ends a span besides success and errors: interrupts, cancellation, deep recursion.

- `KeyboardInterrupt`/`SystemExit` end a span as "interrupted", `asyncio.CancelledError`
  as "cancelled": `error.type` and an `exception` event are recorded, the status stays
  unset, the console says so, and the exception itself passes through untouched.
- A generator closed early is not an error.
- A decorated recursive function costs at most two frames a level, and a
  `RecursionError` that strikes while our code runs reaches the user as their own.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.base import _diagnostics
from mv37.rollout.testing import CapturedSpans

MODES = ["sync", "async"]
INTERRUPTS: list[tuple[type[BaseException], str]] = [
    (KeyboardInterrupt, "interrupted"),
    (SystemExit, "interrupted"),
    (asyncio.CancelledError, "cancelled"),
]


def _ended_by(span: dict[str, Any], exc_type: type[BaseException]) -> None:
    """The span records what ended it, without being marked failed."""
    attrs = span["attributes"]
    assert span["status"] == "UNSET"
    assert attrs[sc.ERROR_TYPE] == exc_type.__qualname__
    assert sc.ROLLOUT_ERROR_TYPE not in attrs
    [event] = [e for e in span["events"] if e["name"] == sc.EVENT_EXCEPTION]
    assert event["attributes"][sc.EXCEPTION_TYPE].endswith(exc_type.__qualname__)


@pytest.mark.parametrize(("exc_type", "status"), INTERRUPTS)
@pytest.mark.parametrize("mode", MODES)
async def test_interrupt_is_recorded_and_passes_through(
    captured: CapturedSpans, mode: str, exc_type: type[BaseException], status: str
) -> None:
    """The tool span and the agent span both say what ended them; the same object escapes."""
    raised = exc_type()

    @rollout.tool("lookup")
    def lookup() -> None:
        raise raised

    @rollout.tool("alookup")
    async def alookup() -> None:
        raise raised

    @rollout.agent("agent")
    def agent() -> None:
        lookup()

    @rollout.agent("aagent")
    async def aagent() -> None:
        await alookup()

    run: Callable[[], Any] = agent if mode == "sync" else aagent
    with pytest.raises(exc_type) as info:
        await run() if mode == "async" else run()
    assert info.value is raised

    tool_name, agent_name = ("lookup", "agent") if mode == "sync" else ("alookup", "aagent")
    tool = captured.by_name(tool_name)
    _ended_by(tool, exc_type)
    assert tool["attributes"][sc.ROLLOUT_TOOL_STATUS] == status
    _ended_by(captured.by_name(agent_name), exc_type)


async def test_a_cancelled_task_ends_its_spans_as_cancelled(captured: CapturedSpans) -> None:
    """Cancelling a task mid-await: both spans end, marked cancelled, not failed."""
    started = asyncio.Event()

    @rollout.tool("slow")
    async def slow() -> None:
        started.set()
        await asyncio.Event().wait()

    @rollout.agent("runner")
    async def runner() -> None:
        await slow()

    task = asyncio.create_task(runner())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    slow_span = captured.by_name("slow")
    _ended_by(slow_span, asyncio.CancelledError)
    assert slow_span["attributes"][sc.ROLLOUT_TOOL_STATUS] == "cancelled"
    _ended_by(captured.by_name("runner"), asyncio.CancelledError)


@pytest.mark.parametrize("mode", MODES)
async def test_a_generator_closed_early_is_not_an_error(captured: CapturedSpans, mode: str) -> None:
    """Breaking out of a decorated (async) generator ends its span cleanly."""

    @rollout.task("numbers")
    def numbers() -> Generator[int, None, None]:
        yield from range(10)

    @rollout.task("anumbers")
    async def anumbers() -> AsyncGenerator[int, None]:
        for i in range(10):
            yield i

    with rollout.trace("root"):
        if mode == "sync":
            gen = numbers()
            assert next(gen) == 0
            gen.close()
        else:
            agen = anumbers()
            assert await agen.__anext__() == 0
            await agen.aclose()
    span = captured.by_name("numbers" if mode == "sync" else "anumbers")
    assert span["status"] == "UNSET"
    assert sc.ERROR_TYPE not in span["attributes"]
    assert [e for e in span["events"] if e["name"] == sc.EVENT_EXCEPTION] == []


@pytest.mark.parametrize(("exc_type", "status"), INTERRUPTS)
def test_console_shows_interrupted_and_cancelled(
    capsys: pytest.CaptureFixture[str], exc_type: type[BaseException], status: str
) -> None:
    """The console tree prints "interrupted (<type>)" / "cancelled", not "ok" or ERROR."""
    rollout.init(console=True, sync_mode=True, span_exporters=[InMemorySpanExporter()])

    @rollout.tool("step")
    def step() -> None:
        raise exc_type()

    @rollout.agent("job")
    def job() -> None:
        step()

    with pytest.raises(exc_type):
        job()
    rollout.flush()
    err = capsys.readouterr().err
    step_line = next(line for line in err.splitlines() if "step" in line)
    expected = "cancelled" if status == "cancelled" else f"interrupted ({exc_type.__qualname__})"
    assert expected in step_line
    assert " ok" not in step_line
    assert "ERROR" not in err


# -- recursion ------------------------------------------------------------------------------


def _max_depth(make: Callable[[Callable[[int], int]], Callable[[int], int]]) -> int:
    """How deep `make(rec)` recurses before a RecursionError."""
    reached = [0]

    def rec(level: int) -> int:
        reached[0] = max(reached[0], level)
        return decorated(level + 1)

    decorated = make(rec)
    with pytest.raises(RecursionError):
        decorated(0)
    return reached[0]


@pytest.mark.parametrize("kind", ["trace", "task", "tool"])
def test_decorated_recursion_costs_at_most_two_frames_a_level(
    captured: CapturedSpans, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Decorated recursion reaches at least half the plain function's depth."""
    monkeypatch.delenv("MV37_ROLLOUT_RAISE_INTERNAL")
    plain = _max_depth(lambda fn: fn)
    decorators: dict[str, Any] = {
        "trace": rollout.trace("r"),
        "task": rollout.task("r", record_input=True, record_output=True),
        "tool": rollout.tool("r"),
    }
    with rollout.trace("root"):
        decorated = _max_depth(decorators[kind])
    assert decorated >= plain // 2 - 5, (plain, decorated)
    assert rollout.current_trace() is None


async def test_async_decorated_recursion_costs_at_most_two_frames_a_level(
    captured: CapturedSpans, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The async twin: an awaited decorated coroutine costs two frames a level."""
    monkeypatch.delenv("MV37_ROLLOUT_RAISE_INTERNAL")
    reached = {"plain": 0, "decorated": 0}

    async def plain(level: int) -> int:
        reached["plain"] = max(reached["plain"], level)
        return await plain(level + 1)

    @rollout.task("r")
    async def decorated(level: int) -> int:
        reached["decorated"] = max(reached["decorated"], level)
        return await decorated(level + 1)

    with pytest.raises(RecursionError):
        await plain(0)
    with rollout.trace("root"), pytest.raises(RecursionError):
        await decorated(0)
    assert reached["decorated"] >= reached["plain"] // 2 - 5, reached


def test_recursion_error_reaches_the_user_as_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A RecursionError hit inside our code is not re-raised from our guard or logging.

    Run as in production (internal errors logged, not raised). Afterwards the context is
    clean and tracing works.
    """
    monkeypatch.delenv("MV37_ROLLOUT_RAISE_INTERNAL")
    exporter = InMemorySpanExporter()
    rollout.init(console=False, sync_mode=True, span_exporters=[exporter])

    @rollout.tool("deep")
    def deep(level: int) -> int:
        return deep(level + 1)

    @rollout.agent("runner")
    def runner() -> int:
        return deep(0)

    with pytest.raises(RecursionError) as info:
        runner()
    files = {frame.filename for frame in traceback.extract_tb(info.value.__traceback__)}
    assert not any(name.endswith("_diagnostics.py") for name in files)
    assert not any("logging" in name for name in files)
    assert info.value.__context__ is None or isinstance(info.value.__context__, RecursionError)
    assert _diagnostics.internal_error_counts().get("recursion limit", 0) >= 1
    assert rollout.current_trace() is None

    exporter.clear()

    @rollout.agent("after")
    def after() -> str:
        return "fine"

    assert after() == "fine"
    assert [s.name for s in exporter.get_finished_spans()] == ["invoke_agent after"]
    assert sys.getrecursionlimit() > 0
