"""Instrumentation never breaks the host program."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace import Span as SDKSpan

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.base import _diagnostics
from mv37.rollout.testing import CapturedSpans, capture_spans
from mv37.rollout.vocabulary import _payload_mirrors

payloads = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.binary(max_size=20)
    | st.datetimes(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=5), children, max_size=4)
        | st.tuples(children, children)
        | st.frozensets(st.integers(), max_size=3)
    ),
    max_leaves=20,
)


class Unprintable:
    """An object whose repr and str both raise."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__


class BadMessage(Exception):
    """An exception whose message cannot be printed."""

    def __str__(self) -> str:
        raise RuntimeError("no str")


@pytest.fixture
def no_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Internal errors are swallowed (as in production), not raised as under tests."""
    monkeypatch.delenv("MV37_ROLLOUT_RAISE_INTERNAL", raising=False)


@pytest.mark.parametrize("is_async", [False, True])
def test_internal_failure_is_logged_once_and_swallowed(
    captured: CapturedSpans,
    no_raise: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    is_async: bool,
) -> None:
    """A failing serialiser never reaches user code; it is logged once and counted."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("serialiser bug")

    monkeypatch.setattr(_payload_mirrors, "serialize", broken)
    result = object()

    @rollout.tool
    def sync_tool(x: int) -> object:
        return result

    @rollout.tool
    async def async_tool(x: int) -> object:
        return result

    @rollout.trace
    def run() -> list[object]:
        if is_async:
            return [asyncio.run(async_tool(i)) for i in range(3)]
        return [sync_tool(i) for i in range(3)]

    with caplog.at_level(logging.WARNING, logger="mv37.rollout"):
        assert run() == [result, result, result]
    warnings = [r for r in caplog.records if r.name == "mv37.rollout"]
    assert len(warnings) == 1
    assert _diagnostics.internal_error_counts() == {"serialize payload": 6}
    tools = [s for s in captured.as_dicts() if s["type"] == "tool"]
    assert len(tools) == 3, "the spans are still exported, only without the payload"


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=payloads)
def test_hostile_payloads_never_raise(captured: CapturedSpans, value: Any) -> None:
    """Any argument and return value goes through a @tool untouched and is recorded as text."""
    captured.clear()

    @rollout.tool
    def echo(v: Any) -> Any:
        return v

    with rollout.trace("t"):
        assert echo(value) is value
    span = captured.by_name("execute_tool echo")
    assert isinstance(span["attributes"][sc.INPUT_VALUE], str)
    assert isinstance(span["attributes"][sc.OUTPUT_VALUE], str)


@pytest.mark.parametrize("is_async", [False, True])
def test_unprintable_values_and_exceptions(captured: CapturedSpans, is_async: bool) -> None:
    """Objects whose repr raises, and exceptions whose str raises, are recorded safely."""
    error = BadMessage()

    @rollout.tool
    def sync_tool(v: object) -> None:
        raise error

    @rollout.tool
    async def async_tool(v: object) -> None:
        raise error

    def call() -> None:
        if is_async:
            asyncio.run(async_tool(Unprintable()))
        else:
            sync_tool(Unprintable())

    with rollout.trace("t"), pytest.raises(BadMessage) as info:
        call()
    assert info.value is error
    span = captured.by_name("execute_tool sync_tool" if not is_async else "execute_tool async_tool")
    assert span["status"] == "ERROR"
    assert span["attributes"][sc.ERROR_TYPE] == "BadMessage"
    assert "unrepresentable" in span["attributes"][sc.INPUT_VALUE]
    assert [e["name"] for e in span["events"]] == [sc.EVENT_EXCEPTION]


class ExplodingProcessor(SpanProcessor):
    """A user-supplied processor that raises everywhere."""

    def on_start(self, span: SDKSpan, parent_context: Context | None = None) -> None:
        raise RuntimeError("on_start")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("on_end")


@pytest.mark.parametrize("is_async", [False, True])
def test_broken_span_processor_does_not_break_calls(no_raise: None, is_async: bool) -> None:
    """A processor that raises on start and end costs telemetry, never the call."""
    with capture_spans(span_processors=[ExplodingProcessor()]):

        @rollout.agent
        def sync_agent(x: int) -> int:
            return x + 1

        @rollout.agent
        async def async_agent(x: int) -> int:
            return x + 1

        assert (asyncio.run(async_agent(1)) if is_async else sync_agent(1)) == 2


def test_exporter_failure_does_not_break_calls(no_raise: None) -> None:
    """An exporter that raises on every export leaves user code untouched."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Failing(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            raise ConnectionError("collector down")

    with capture_spans(span_exporters=[Failing()]):

        @rollout.agent
        def agent(x: int) -> int:
            return x * 2

        assert agent(21) == 42
