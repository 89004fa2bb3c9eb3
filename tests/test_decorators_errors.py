"""Exceptions leaving a decorated function: recorded and re-raised unchanged; BaseException
and cancellation propagate without marking an error.

The matrix (kinds, shapes, `build`, `invoke`) is in `decorator_matrix.py`.
"""

from __future__ import annotations

import asyncio
import traceback
from typing import TYPE_CHECKING, Any

import pytest

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans

if TYPE_CHECKING:
    from tests import decorator_matrix as matrix
else:
    import decorator_matrix as matrix


def assert_interrupted(span: dict[str, Any], error_type: str) -> None:
    """Ended by a non-error exception: status UNSET, `error.type` and one exception event."""
    assert span["status"] == "UNSET"
    assert span["attributes"][sc.ERROR_TYPE] == error_type
    assert sc.ROLLOUT_ERROR_TYPE not in span["attributes"]
    events = [e for e in span["events"] if e["name"] == sc.EVENT_EXCEPTION]
    assert len(events) == 1
    assert events[0]["attributes"][sc.EXCEPTION_TYPE].endswith(error_type)


class Halt(BaseException):
    """A KeyboardInterrupt-like BaseException."""


# == errors =================================================================================


def _explode(err: BaseException) -> matrix.Body:
    def explode(city: str, n: int, rest: tuple[Any, ...]) -> Any:
        raise err

    return explode


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_error_is_recorded_and_reraised_unchanged(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """The user's exception propagates as the same object with its frames; the span is ERROR."""
    err = matrix.Boom("kaboom")
    built = matrix.build(shape, matrix.deco_for(kind), _explode(err))

    with pytest.raises(matrix.Boom) as info:
        await matrix.invoke(kind, built, "Paris")

    assert info.value is err
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "explode"
    assert built.raw.__code__.co_name in frames  # the user's own frame
    span = captured.by_name("work")
    attrs = span["attributes"]
    assert span["status"] == "ERROR"
    assert "kaboom" in (span["status_description"] or "")
    events = [e for e in span["events"] if e["name"] == sc.EVENT_EXCEPTION]
    assert len(events) == 1
    assert events[0]["attributes"][sc.EXCEPTION_TYPE].endswith("Boom")
    assert events[0]["attributes"][sc.EXCEPTION_MESSAGE] == "kaboom"
    assert attrs[sc.ERROR_TYPE] == "Boom"
    assert attrs[sc.ROLLOUT_ERROR_TYPE] == "Boom"
    assert attrs[sc.ROLLOUT_ERROR_MESSAGE] == "kaboom"
    assert sc.OUTPUT_VALUE not in attrs
    if kind == "tool":
        assert attrs[sc.ROLLOUT_TOOL_STATUS] == "error"


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
async def test_successful_tool_status_is_ok(captured: CapturedSpans, shape: str) -> None:
    """A tool call that returns normally has rollout.tool.status ok."""
    built = matrix.build(shape, rollout.tool())
    await matrix.invoke("tool", built, "Paris")
    assert captured.by_name("work")["attributes"][sc.ROLLOUT_TOOL_STATUS] == "ok"


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_base_exception_propagates_without_marking_error(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """A KeyboardInterrupt-like BaseException propagates unchanged; the span is interrupted.

    Its status stays UNSET (not a failure of the code inside); `error.type` and an
    `exception` event say what ended it.
    """
    err = Halt("stop")
    built = matrix.build(shape, matrix.deco_for(kind), _explode(err))

    with pytest.raises(Halt) as info:
        await matrix.invoke(kind, built, "Paris")

    assert info.value is err
    span = captured.by_name("work")
    assert_interrupted(span, "Halt")
    if kind == "tool":
        assert span["attributes"][sc.ROLLOUT_TOOL_STATUS] == "interrupted"


@pytest.mark.parametrize("how", ["task.cancel", "raise"])
@pytest.mark.parametrize("shape", matrix.ASYNC_SHAPES)
@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_cancellation_propagates_without_marking_error(
    captured: CapturedSpans, kind: str, shape: str, how: str
) -> None:
    """asyncio.CancelledError propagates through every async shape and does not mark ERROR."""
    started = asyncio.Event()
    err = asyncio.CancelledError()

    async def body(city: str, n: int, rest: tuple[Any, ...]) -> Any:
        started.set()
        if how == "raise":
            raise err
        await asyncio.sleep(10)
        return None

    built = matrix.build(shape, matrix.deco_for(kind), body)
    seen: list[BaseException] = []

    async def run() -> Any:
        # What leaves the decorated call, seen inside the task: on Python 3.10 `await task`
        # raises a new CancelledError of the task's own, not the one the coroutine raised.
        try:
            return await matrix.invoke(kind, built, "Paris")
        except BaseException as exc:
            seen.append(exc)
            raise

    task = asyncio.create_task(run())
    if how == "task.cancel":
        await started.wait()
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert started.is_set()
    assert task.cancelled()
    assert len(seen) == 1
    assert isinstance(seen[0], asyncio.CancelledError)
    if how == "raise":
        assert seen[0] is err
    span = captured.by_name("work")
    assert_interrupted(span, "CancelledError")
    if kind == "tool":
        assert span["attributes"][sc.ROLLOUT_TOOL_STATUS] == "cancelled"
