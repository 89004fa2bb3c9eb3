"""Decorated methods, classmethods and staticmethods, and what every wrapper preserves
(identity, `inspect` predicates).

The matrix (kinds, shapes, `build`, `invoke`) is in `decorator_matrix.py`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans

if TYPE_CHECKING:
    from tests import decorator_matrix as matrix
else:
    import decorator_matrix as matrix


# == methods, classmethods, staticmethods ===================================================


CAPTURE_KINDS = ("agent", "tool", "task", "retrieval", "llm")


@pytest.mark.parametrize("shape", matrix.METHOD_SHAPES)
@pytest.mark.parametrize("kind", CAPTURE_KINDS)
async def test_methods_called_on_instance_and_class(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """Methods (via instance and class), classmethods and staticmethods record without self/cls."""
    built = matrix.build(shape, matrix.deco_for(kind, **matrix.capture_on(kind)))
    assert built.owner is not None
    mode, where = matrix.SHAPES[shape]
    on_class: Callable[..., Any] = built.owner.work  # type: ignore[attr-defined]
    on_instance: Callable[..., Any] = built.instance.work  # type: ignore[attr-defined]

    async def both() -> list[Any]:
        first = await matrix.run(mode, on_instance, "Paris", 2)
        if where == "method":
            second = await matrix.run(mode, on_class, built.instance, "Lyon", 3)
        else:
            second = await matrix.run(mode, on_class, "Lyon", 3)
        return [first, second]

    if kind in matrix.TRACE_KINDS:
        results = await both()
    else:
        with rollout.get_client().trace("root"):
            results = await both()

    assert results == [
        {"city": "Paris", "n": 2, "rest": []},
        {"city": "Lyon", "n": 3, "rest": []},
    ]
    spans = matrix.named(captured, "work")
    assert [json.loads(s["attributes"][sc.INPUT_VALUE]) for s in spans] == [
        {"city": "Paris", "n": 2},
        {"city": "Lyon", "n": 3},
    ]
    assert [json.loads(s["attributes"][sc.OUTPUT_VALUE]) for s in spans] == results


@pytest.mark.parametrize("shape", matrix.METHOD_SHAPES)
@pytest.mark.parametrize("kind", ["trace"])
async def test_trace_decorated_methods_record_a_trace(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """@trace on methods/classmethods/staticmethods records one trace per call, either way."""
    built = matrix.build(shape, matrix.deco_for(kind))
    mode, where = matrix.SHAPES[shape]
    on_class: Callable[..., Any] = built.owner.work  # type: ignore[union-attr]
    await matrix.run(mode, built.instance.work, "Paris")  # type: ignore[attr-defined]
    if where == "method":
        await matrix.run(mode, on_class, built.instance, "Lyon")
    else:
        await matrix.run(mode, on_class, "Lyon")
    spans = matrix.named(captured, "work")
    assert [s["name"] for s in spans] == ["invoke_workflow work"] * 2
    assert spans[0]["trace_id"] != spans[1]["trace_id"]


class _Shop:
    def __init__(self) -> None:
        self.tag = "shop"

    def work(self, city: str, n: int = 1) -> dict[str, Any]:
        return {"city": city, "n": n, "tag": self.tag}

    async def awork(self, city: str, n: int = 1) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"city": city, "n": n, "tag": self.tag}

    @classmethod
    def kwork(cls, city: str, n: int = 1) -> dict[str, Any]:
        return {"city": city, "n": n, "tag": cls.__name__}

    @classmethod
    async def akwork(cls, city: str, n: int = 1) -> dict[str, Any]:
        return {"city": city, "n": n, "tag": cls.__name__}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("bound_to", ["instance", "class"])
async def test_decorating_an_already_bound_method_names_its_arguments(
    captured: CapturedSpans, mode: str, bound_to: str
) -> None:
    """`rollout.tool("x")(obj.method)`: arguments recorded under their own names, no self."""
    shop = _Shop()
    methods = {
        ("instance", "sync"): shop.work,
        ("instance", "async"): shop.awork,
        ("class", "sync"): _Shop.kwork,
        ("class", "async"): _Shop.akwork,
    }
    tool = rollout.tool("bound")(methods[bound_to, mode])
    with rollout.get_client().trace("root"):
        result = await matrix.run(mode, tool, "Paris", n=2)
    assert result == {"city": "Paris", "n": 2, "tag": "shop" if bound_to == "instance" else "_Shop"}
    [span] = matrix.named(captured, "bound")
    assert json.loads(span["attributes"][sc.INPUT_VALUE]) == {"city": "Paris", "n": 2}
    assert json.loads(span["attributes"][sc.OUTPUT_VALUE]) == result


# == preservation ===========================================================================


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
@pytest.mark.parametrize("kind", matrix.KINDS)
def test_wrapper_preserves_identity_and_inspect(kind: str, shape: str) -> None:
    """Name, qualname, doc, __wrapped__, signature and inspect predicates match the original."""
    decorated = matrix.build(shape, matrix.deco_for(kind))
    plain = matrix.build(shape, matrix.identity)
    pairs: list[tuple[Any, Any]] = [(decorated.call, plain.call)]
    if decorated.owner is not None and plain.owner is not None:
        pairs.append((decorated.owner.work, plain.owner.work))  # type: ignore[attr-defined]
        pairs.append((decorated.instance.work, plain.instance.work))  # type: ignore[attr-defined]
    for wrapped, original in pairs:
        assert wrapped.__name__ == original.__name__ == "work"
        assert wrapped.__qualname__ == original.__qualname__
        assert wrapped.__doc__ == original.__doc__ == "Do the work."
        assert inspect.signature(wrapped) == inspect.signature(original)
        assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(original)
        assert inspect.isgeneratorfunction(wrapped) == inspect.isgeneratorfunction(original)
        assert inspect.isasyncgenfunction(wrapped) == inspect.isasyncgenfunction(original)
        inner = wrapped.__wrapped__
        assert getattr(inner, "__func__", inner) is decorated.raw


@pytest.mark.parametrize("kind", matrix.KINDS)
def test_wrapper_preserves_predicates_of_each_function_kind(kind: str) -> None:
    """A decorated coroutine/generator/async-generator function is still recognised as one."""
    assert inspect.iscoroutinefunction(matrix.build("async", matrix.deco_for(kind)).call)
    assert not inspect.iscoroutinefunction(matrix.build("sync", matrix.deco_for(kind)).call)
    assert inspect.isgeneratorfunction(matrix.build("gen", matrix.deco_for(kind)).call)
    assert inspect.isasyncgenfunction(matrix.build("agen", matrix.deco_for(kind)).call)
    assert not inspect.isasyncgenfunction(matrix.build("gen", matrix.deco_for(kind)).call)
