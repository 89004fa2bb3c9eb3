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
    from tests import decorator_matrix as matrix
else:
    import decorator_matrix as matrix


# == no trace, before init(), disabled ======================================================


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
@pytest.mark.parametrize("kind", matrix.CHILD_KINDS)
async def test_child_decorators_without_trace_run_untraced(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """@span/@tool/@task called with no active trace run normally and export nothing."""
    seen: list[object] = []

    def body(city: str, n: int, rest: tuple[Any, ...]) -> Any:
        seen.append(rollout.current_span())
        return {"city": city}

    built = matrix.build(shape, matrix.deco_for(kind), body)
    result = await matrix.run(built.mode, built.call, "Paris")

    expected = {"city": "Paris"}
    assert result == (["Paris", expected] if built.mode in ("gen", "agen") else expected)
    assert seen == [None]
    assert captured.spans() == ()


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_before_init_decorators_run_the_function(kind: str, shape: str) -> None:
    """Before init() (no client, no global provider) every decorator returns the value, no raise."""
    assert _current.client is None
    marker = object()
    built = matrix.build(shape, matrix.deco_for(kind), lambda city, n, rest: marker)

    results = [await matrix.run(built.mode, built.call, "Paris")]
    if kind in matrix.CHILD_KINDS:
        results.append(await matrix.invoke(kind, built, "Paris"))

    for result in results:
        if built.mode in ("gen", "agen"):
            assert result[0] == "Paris"
            assert result[1] is marker
        else:
            assert result is marker
    assert _current.client is None
    assert not isinstance(otel_trace.get_tracer_provider(), TracerProvider)


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_disabled_decorators_call_straight_through(kind: str, shape: str) -> None:
    """With disabled=True decorators emit nothing; inside, no-op facades stand in."""
    seen: list[tuple[object, object]] = []

    def body(city: str, n: int, rest: tuple[Any, ...]) -> Any:
        seen.append((rollout.current_trace(), rollout.current_span()))
        return city

    with capture_spans(disabled=True) as cap:
        built = matrix.build(shape, matrix.deco_for(kind), body)
        result = await matrix.invoke(kind, built, "Paris")
        assert result == (["Paris", "Paris"] if built.mode in ("gen", "agen") else "Paris")
        assert len(seen) == 1
        active_trace, active_span = seen[0]
        assert isinstance(active_trace, rollout.Trace)
        assert isinstance(active_span, rollout.Span)
        assert not active_trace.is_recording
        assert not active_span.is_recording
        assert cap.spans() == ()


# == decorating before init() ===============================================================


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_decorated_before_init_records_once_client_exists(kind: str, shape: str) -> None:
    """A function decorated (and even called) before init() records once a client exists."""
    built = matrix.build(shape, matrix.deco_for(kind))
    await matrix.invoke(kind, built, "early")

    with capture_spans() as cap:
        await matrix.invoke(kind, built, "Paris")
        spans = matrix.named(cap, "work")
        assert len(spans) == 1
        assert spans[0]["name"] == matrix.EXPECTED[kind][0]
