"""Decorators with nothing to record into: no active trace, before init(), a disabled
client, and functions decorated before init() once a client exists.

The matrix (kinds, shapes, `build`, `invoke`) is in `decorator_matrix.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider

import mv37.rollout as rollout
from mv37.rollout.facade import _current
from mv37.rollout.testing import CapturedSpans, capture_spans

if TYPE_CHECKING:
    from tests.decorator_matrix import (
        ALL_SHAPES,
        CHILD_KINDS,
        EXPECTED,
        KINDS,
        build,
        deco_for,
        invoke,
        named,
        run,
    )
else:
    from decorator_matrix import (
        ALL_SHAPES,
        CHILD_KINDS,
        EXPECTED,
        KINDS,
        build,
        deco_for,
        invoke,
        named,
        run,
    )


# == no trace, before init(), disabled ======================================================


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", CHILD_KINDS)
async def test_child_decorators_without_trace_run_untraced(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """@span/@tool/@task called with no active trace run normally and export nothing."""
    seen: list[object] = []

    def body(city: str, n: int, rest: tuple[Any, ...]) -> Any:
        seen.append(rollout.current_span())
        return {"city": city}

    built = build(shape, deco_for(kind), body)
    result = await run(built.mode, built.call, "Paris")

    expected = {"city": "Paris"}
    assert result == (["Paris", expected] if built.mode in ("gen", "agen") else expected)
    assert seen == [None]
    assert captured.spans() == ()


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", KINDS)
async def test_before_init_decorators_run_the_function(kind: str, shape: str) -> None:
    """Before init() (no client, no global provider) every decorator returns the value, no raise."""
    assert _current.client is None
    marker = object()
    built = build(shape, deco_for(kind), lambda city, n, rest: marker)

    results = [await run(built.mode, built.call, "Paris")]
    if kind in CHILD_KINDS:
        results.append(await invoke(kind, built, "Paris"))

    for result in results:
        if built.mode in ("gen", "agen"):
            assert result[0] == "Paris"
            assert result[1] is marker
        else:
            assert result is marker
    assert _current.client is None
    assert not isinstance(otel_trace.get_tracer_provider(), TracerProvider)


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", KINDS)
async def test_disabled_decorators_call_straight_through(kind: str, shape: str) -> None:
    """With disabled=True decorators emit nothing; inside, no-op facades stand in."""
    seen: list[tuple[object, object]] = []

    def body(city: str, n: int, rest: tuple[Any, ...]) -> Any:
        seen.append((rollout.current_trace(), rollout.current_span()))
        return city

    with capture_spans(disabled=True) as cap:
        built = build(shape, deco_for(kind), body)
        result = await invoke(kind, built, "Paris")
        assert result == (["Paris", "Paris"] if built.mode in ("gen", "agen") else "Paris")
        assert len(seen) == 1
        active_trace, active_span = seen[0]
        assert isinstance(active_trace, rollout.Trace)
        assert isinstance(active_span, rollout.Span)
        assert not active_trace.is_recording
        assert not active_span.is_recording
        assert cap.spans() == ()


# == decorating before init() ===============================================================


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("kind", KINDS)
async def test_decorated_before_init_records_once_client_exists(kind: str, shape: str) -> None:
    """A function decorated (and even called) before init() records once a client exists."""
    built = build(shape, deco_for(kind))
    await invoke(kind, built, "early")

    with capture_spans() as cap:
        await invoke(kind, built, "Paris")
        spans = named(cap, "work")
        assert len(spans) == 1
        assert spans[0]["name"] == EXPECTED[kind][0]
