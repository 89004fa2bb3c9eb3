"""stats() with the console tree as the only destination: every started span is counted
once, exported (printed), failed (not writable), dropped, queued (in an open tree) or in
flight, as with an OTLP destination."""

from __future__ import annotations

import io
import logging
import os

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout
from mv37.rollout.pipeline._stats import RolloutStats


@pytest.fixture(autouse=True)
def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("FORCE_COLOR", raising=False)


def _balance(stats: RolloutStats) -> int:
    """started - (exported + failed + dropped + queued + in flight): 0 when all is told."""
    return stats.spans_started - (
        stats.spans_exported
        + stats.spans_failed
        + stats.spans_dropped
        + stats.spans_queued
        + stats.spans_in_flight
    )


@rollout.tool("lookup")
def lookup(city: str) -> dict[str, object]:
    return {"city": city}


@rollout.agent("support")
def support(text: str) -> str:
    lookup("Paris")
    with rollout.span("task", name="compose"):
        pass
    rollout.feedback("thumbs_up", True)
    return text


@rollout.agent("support")
async def asupport(text: str) -> str:
    lookup("Paris")
    with rollout.span("task", name="compose"):
        pass
    rollout.feedback("thumbs_up", True)
    return text


async def _call(mode: str, text: str = "hi") -> str:
    return support(text) if mode == "sync" else await asupport(text)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_console_default_counts_what_it_prints(
    capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """No destination: the printed spans are exported, spans it cannot print dropped."""
    rollout.init()
    for _ in range(3):
        await _call(mode)
    trace_id = capsys.readouterr().err.splitlines()[0][-32:]
    rollout.feedback("csat", 5, trace_id=trace_id)  # a late carrier span: one line
    with otel_trace.get_tracer("app").start_as_current_span("GET /health"):
        pass  # outside any Rollout trace: not printed
    stats = rollout.stats()
    assert capsys.readouterr().err.startswith("rollout ▸ • feedback csat = 5  for support")
    assert stats.spans_started == 3 * 3 + 1 + 1
    assert stats.spans_exported == 3 * 3 + 1
    assert stats.dropped["not_printed"] == 1
    assert stats.spans_queued == stats.spans_in_flight == stats.spans_failed == 0
    assert _balance(stats) == 0


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_an_open_trees_spans_are_queued_until_it_prints(
    capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """While the trace runs its ended spans are queued; at its end they are exported."""
    seen: list[RolloutStats] = []

    @rollout.agent("outer")
    def outer() -> None:
        lookup("Paris")
        lookup("Rome")
        seen.append(rollout.stats())

    @rollout.agent("outer")
    async def aouter() -> None:
        lookup("Paris")
        lookup("Rome")
        seen.append(rollout.stats())

    rollout.init()
    if mode == "sync":
        outer()
    else:
        await aouter()
    during = seen[0]
    assert during.spans_queued == 2
    assert during.spans_exported == 0
    assert _balance(during) == 1  # the agent's own span: started, not ended yet
    after = rollout.stats()
    assert after.spans_exported == 3
    assert after.spans_queued == 0
    assert _balance(after) == 0
    assert "lookup" in capsys.readouterr().err


def test_a_span_ending_after_its_tree_printed_is_dropped_not_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A child that outlives its trace's tree is counted as not printed."""
    rollout.init()
    with rollout.trace("run"):
        straggler = otel_trace.get_tracer("app").start_span("background job")
    straggler.end()
    stats = rollout.stats()
    assert stats.spans_exported == 1
    assert stats.dropped["not_printed"] == 1
    assert _balance(stats) == 0
    assert "background job" not in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_shutdown_with_a_tree_open_drops_its_spans(
    capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """Spans held in a tree still open at shutdown, and spans after it, count as shutdown."""

    @rollout.agent("cut_short")
    def cut_short() -> None:
        lookup("Paris")
        rollout.shutdown()
        lookup("Rome")

    @rollout.agent("cut_short")
    async def acut_short() -> None:
        lookup("Paris")
        rollout.shutdown()
        lookup("Rome")

    rollout.init()
    if mode == "sync":
        cut_short()
    else:
        await acut_short()
    stats = rollout.stats()
    assert stats.spans_started == 3
    assert stats.dropped["shutdown"] == 3
    assert _balance(stats) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_an_unwritable_stream_counts_failed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    """A tree that cannot be written: its spans are failed, one warning says so."""
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr("sys.stderr", closed)
    rollout.init()
    with caplog.at_level(logging.WARNING, logger="mv37.rollout"):
        await _call(mode)
        await _call(mode)
    stats = rollout.stats()
    assert stats.spans_failed == 6
    assert stats.export_failures == 2
    assert stats.spans_exported == 0
    assert _balance(stats) == 0
    assert [r.getMessage() for r in caplog.records if "console tree" in r.getMessage()] == [
        "mv37.rollout: the console tree could not be written (ValueError: I/O operation on "
        "closed file); its spans are counted in stats().spans_failed. Pass console=False to "
        "turn it off"
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_with_an_exporter_the_console_counts_nothing(
    capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """Console on beside an exporter: the exporter's counts alone, nothing counted twice."""
    memory = InMemorySpanExporter()
    rollout.init(console=True, sync_mode=True, span_exporters=[memory])
    await _call(mode)
    stats = rollout.stats()
    assert capsys.readouterr().err.startswith("rollout ▸ support")
    assert stats.spans_started == stats.spans_exported == len(memory.get_finished_spans()) == 3
    assert _balance(stats) == 0


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_on_a_users_provider_only_rollout_spans_count(
    capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """console=True on someone else's provider: their spans are neither started nor dropped."""
    provider = TracerProvider()
    rollout.init(tracer_provider=provider, console=True)
    with provider.get_tracer("app").start_as_current_span("GET /health"):
        pass
    await _call(mode)
    stats = rollout.stats()
    assert stats.spans_started == stats.spans_exported == 3
    assert stats.dropped["not_printed"] == 0
    assert _balance(stats) == 0
    assert capsys.readouterr().err.startswith("rollout ▸ support")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_forked_child_holds_none_of_its_parents_open_trees() -> None:
    """Forked inside an open trace: the child's stats start empty and still balance."""
    rollout.init()
    read, write = os.pipe()
    with rollout.trace("parent_run"):
        lookup("Paris")
        assert rollout.stats().spans_queued == 1
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                before = rollout.stats()
                with rollout.trace("child_run"):
                    lookup("Rome")
                after = rollout.stats()
                ok = (
                    before.spans_queued == 0
                    and before.spans_started == 0
                    and after.spans_exported == after.spans_started == 2
                    and _balance(after) == 0
                )
                os.write(write, b"ok" if ok else repr((before, after)).encode())
                code = 0
            finally:
                os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as pipe:
        report = pipe.read().decode()
    assert status == 0
    assert report == "ok"
    assert _balance(rollout.stats()) == 0
