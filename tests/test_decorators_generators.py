"""Decorated generators and async generators: the span covers the whole iteration, body
spans are children, early close, exceptions, send/asend, never iterated.

The matrix (kinds, shapes, `build`, `invoke`) is in `decorator_matrix.py`.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans, capture_spans

if TYPE_CHECKING:
    from tests import decorator_matrix as matrix
else:
    import decorator_matrix as matrix


def readable(captured: CapturedSpans, name: str) -> ReadableSpan:
    """The one exported span whose Rollout name is `name`."""
    found = [s for s in captured.spans() if (s.attributes or {}).get(sc.ROLLOUT_SPAN_NAME) == name]
    assert len(found) == 1, f"expected one span named {name!r}, found {len(found)}"
    return found[0]


def assert_no_error(span: dict[str, Any]) -> None:
    """The span ended without being marked failed."""
    assert span["status"] == "UNSET"
    assert [e for e in span["events"] if e["name"] == sc.EVENT_EXCEPTION] == []
    assert sc.ERROR_TYPE not in span["attributes"]
    assert sc.ROLLOUT_ERROR_TYPE not in span["attributes"]


# == generators and async generators ========================================================


@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_generator_span_covers_whole_iteration(captured: CapturedSpans, kind: str) -> None:
    """A generator's span starts at the first step and ends after its last item was produced."""
    produced: list[int] = []

    def stamp(city: str, n: int, rest: tuple[Any, ...]) -> str:
        produced.append(time.time_ns())
        return "last"

    built = matrix.build("gen", matrix.deco_for(kind), stamp)
    with rollout.get_client().trace("root"):
        gen = built.call("Paris")
        assert next(gen) == "Paris"
        time.sleep(0.002)
        assert next(gen) == "last"
        time.sleep(0.002)
        with pytest.raises(StopIteration):
            next(gen)

    span = readable(captured, "work")
    assert span.start_time is not None
    assert span.end_time is not None
    assert span.start_time < produced[0] <= span.end_time


@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_async_generator_span_covers_whole_iteration(
    captured: CapturedSpans, kind: str
) -> None:
    """An async generator's span ends after its last item was produced."""
    produced: list[int] = []

    def stamp(city: str, n: int, rest: tuple[Any, ...]) -> str:
        produced.append(time.time_ns())
        return "last"

    built = matrix.build("agen", matrix.deco_for(kind), stamp)
    with rollout.get_client().trace("root"):
        agen = built.call("Paris")
        assert await agen.__anext__() == "Paris"
        await asyncio.sleep(0.002)
        assert await agen.__anext__() == "last"
        await asyncio.sleep(0.002)
        with pytest.raises(StopAsyncIteration):
            await agen.__anext__()

    span = readable(captured, "work")
    assert span.start_time is not None
    assert span.end_time is not None
    assert span.start_time < produced[0] <= span.end_time


@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_generator_body_spans_are_children_consumer_spans_are_not(
    captured: CapturedSpans, kind: str
) -> None:
    """Spans made in the generator body nest under it; the consumer's spans between items do not."""

    @rollout.task("inner")
    def inner(i: int) -> int:
        return i

    @rollout.task("outside")
    def outside(i: int) -> int:
        return i

    @matrix.deco_for(kind)
    def work(count: int) -> Iterator[int]:
        for i in range(count):
            assert rollout.current_trace() is not None
            yield inner(i)

    with rollout.get_client().trace("root"):
        for item in work(2):
            outside(item)

    root = captured.by_name("root")
    gen_span = captured.by_name("work")
    inners = matrix.named(captured, "inner")
    outsides = matrix.named(captured, "outside")
    assert len(inners) == 2
    assert len(outsides) == 2
    assert gen_span["parent_id"] == root["span_id"]
    assert all(s["parent_id"] == gen_span["span_id"] for s in inners)
    assert all(s["parent_id"] == root["span_id"] for s in outsides)
    assert {s["trace_id"] for s in [*inners, *outsides, gen_span]} == {root["trace_id"]}


@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_async_generator_body_spans_are_children_consumer_spans_are_not(
    captured: CapturedSpans, kind: str
) -> None:
    """Async twin: body spans nest under the async generator's span, consumer spans do not."""

    @rollout.task("inner")
    async def inner(i: int) -> int:
        await asyncio.sleep(0)
        return i

    @rollout.task("outside")
    async def outside(i: int) -> int:
        await asyncio.sleep(0)
        return i

    @matrix.deco_for(kind)
    async def work(count: int) -> AsyncIterator[int]:
        for i in range(count):
            assert rollout.current_trace() is not None
            yield await inner(i)

    with rollout.get_client().trace("root"):
        async for item in work(2):
            await outside(item)

    root = captured.by_name("root")
    gen_span = captured.by_name("work")
    inners = matrix.named(captured, "inner")
    outsides = matrix.named(captured, "outside")
    assert len(inners) == 2
    assert len(outsides) == 2
    assert gen_span["parent_id"] == root["span_id"]
    assert all(s["parent_id"] == gen_span["span_id"] for s in inners)
    assert all(s["parent_id"] == root["span_id"] for s in outsides)


@pytest.mark.parametrize("how", ["break", "close"])
@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_generator_closed_early_ends_span_unset(
    captured: CapturedSpans, kind: str, how: str
) -> None:
    """Breaking out of the loop or .close() ends the generator's span, status UNSET."""
    cleaned: list[bool] = []

    @matrix.deco_for(kind)
    def work() -> Iterator[int]:
        try:
            yield from range(10)
        finally:
            cleaned.append(True)

    with rollout.get_client().trace("root"):
        if how == "break":
            for item in work():
                if item == 1:
                    break
        else:
            gen = work()
            assert next(gen) == 0
            gen.close()
        gc.collect()

    assert cleaned == [True]
    span = captured.by_name("work")
    assert_no_error(span)
    assert captured.by_name("root")["status"] == "UNSET"


@pytest.mark.parametrize("how", ["break", "aclose"])
@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_async_generator_closed_early_ends_span_unset(
    captured: CapturedSpans, kind: str, how: str
) -> None:
    """Breaking out of `async for` or aclose() ends the async generator's span, status UNSET."""
    cleaned: list[bool] = []

    @matrix.deco_for(kind)
    async def work() -> AsyncIterator[int]:
        try:
            for i in range(10):
                yield i
        finally:
            cleaned.append(True)

    with rollout.get_client().trace("root"):
        if how == "break":
            async for item in work():
                if item == 1:
                    break
            gc.collect()
            for _ in range(5):  # the loop's asyncgen finalizer schedules aclose()
                await asyncio.sleep(0)
        else:
            agen = work()
            assert await agen.__anext__() == 0
            await agen.aclose()

    assert cleaned == [True]
    span = captured.by_name("work")
    assert_no_error(span)


@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_generator_exception_marks_error_and_propagates(
    captured: CapturedSpans, kind: str
) -> None:
    """An exception raised inside a generator marks its span ERROR and reaches the consumer."""
    err = matrix.Boom("mid-stream")

    @matrix.deco_for(kind)
    def work() -> Iterator[int]:
        yield 1
        raise err

    seen: list[int] = []

    def consume() -> None:
        for item in work():
            seen.append(item)

    with rollout.get_client().trace("root"), pytest.raises(matrix.Boom) as info:
        consume()
    assert info.value is err
    assert seen == [1]
    span = captured.by_name("work")
    assert span["status"] == "ERROR"
    assert span["attributes"][sc.ERROR_TYPE] == "Boom"


@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_async_generator_exception_marks_error_and_propagates(
    captured: CapturedSpans, kind: str
) -> None:
    """An exception raised inside an async generator marks ERROR and reaches the consumer."""
    err = matrix.Boom("mid-stream")

    @matrix.deco_for(kind)
    async def work() -> AsyncIterator[int]:
        yield 1
        raise err

    seen: list[int] = []

    async def consume() -> None:
        async for item in work():
            seen.append(item)

    with rollout.get_client().trace("root"), pytest.raises(matrix.Boom) as info:
        await consume()
    assert info.value is err
    assert seen == [1]
    span = captured.by_name("work")
    assert span["status"] == "ERROR"
    assert span["attributes"][sc.ERROR_TYPE] == "Boom"


def _sending_generator(deco: matrix.Deco) -> Callable[[], Generator[int | str, int, None]]:
    @deco
    def work() -> Generator[int | str, int, None]:
        received = yield "ready"
        yield received * 2

    return work  # type: ignore[no-any-return]


def _sending_async_generator(deco: matrix.Deco) -> Callable[[], AsyncGenerator[int | str, int]]:
    @deco
    async def work() -> AsyncGenerator[int | str, int]:
        received = yield "ready"
        yield received * 2

    return work  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_generator_send_reaches_generator(captured: CapturedSpans, kind: str) -> None:
    """Values passed with .send() reach the decorated generator."""
    work = _sending_generator(matrix.deco_for(kind))
    with rollout.get_client().trace("root"):
        gen: Any = work()
        assert next(gen) == "ready"
        assert gen.send(21) == 42
        with pytest.raises(StopIteration):
            next(gen)
    assert_no_error(captured.by_name("work"))


@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_async_generator_asend_reaches_generator(captured: CapturedSpans, kind: str) -> None:
    """Values passed with .asend() reach the decorated async generator."""
    work = _sending_async_generator(matrix.deco_for(kind))
    with rollout.get_client().trace("root"):
        agen: Any = work()
        assert await agen.__anext__() == "ready"
        assert await agen.asend(21) == 42
        with pytest.raises(StopAsyncIteration):
            await agen.__anext__()
    assert_no_error(captured.by_name("work"))


@pytest.mark.parametrize("kind", matrix.CHILD_KINDS)
async def test_untraced_generator_send_reaches_generator(
    captured: CapturedSpans, kind: str
) -> None:
    """With no active trace, .send() still reaches the (untraced) generator."""
    gen: Any = _sending_generator(matrix.deco_for(kind))()
    assert next(gen) == "ready"
    assert gen.send(21) == 42
    assert captured.spans() == ()


@pytest.mark.parametrize("kind", matrix.CHILD_KINDS)
async def test_untraced_async_generator_asend_reaches_generator(
    captured: CapturedSpans, kind: str
) -> None:
    """With no active trace, .asend() still reaches the (untraced) async generator."""
    agen: Any = _sending_async_generator(matrix.deco_for(kind))()
    assert await agen.__anext__() == "ready"
    assert await agen.asend(21) == 42
    await agen.aclose()
    assert captured.spans() == ()


@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_disabled_generator_send_reaches_generator(kind: str) -> None:
    """With disabled=True, .send() still reaches the generator and nothing is exported."""
    with capture_spans(disabled=True) as cap:
        gen: Any = _sending_generator(matrix.deco_for(kind))()
        assert next(gen) == "ready"
        assert gen.send(21) == 42
        assert cap.spans() == ()


@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_disabled_async_generator_asend_reaches_generator(kind: str) -> None:
    """With disabled=True, .asend() still reaches the async generator; nothing is exported."""
    with capture_spans(disabled=True) as cap:
        agen: Any = _sending_async_generator(matrix.deco_for(kind))()
        assert await agen.__anext__() == "ready"
        assert await agen.asend(21) == 42
        await agen.aclose()
        assert cap.spans() == ()


@pytest.mark.parametrize("shape", ["gen", "agen"])
@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_generator_never_iterated_creates_no_span(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """Calling a decorated (async) generator function without iterating it records nothing."""
    built = matrix.build(shape, matrix.deco_for(kind))
    with rollout.get_client().trace("root"):
        it = built.call("Paris")
        assert inspect.isgenerator(it) or inspect.isasyncgen(it)
        del it
        gc.collect()
    assert matrix.named(captured, "work") == []
    assert [s["name"] for s in captured.as_dicts()] == ["invoke_workflow root"]
