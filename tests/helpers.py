"""Helpers shared by several test modules (fixtures live in conftest.py).

Test modules import this module the way they import `fake_providers`: `from tests import
helpers` for the type checker, plain `import helpers` at run time (pytest puts tests/ on
the path, tests/ is no package).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Protocol, TypeVar

import mv37.rollout as rollout
from mv37.rollout.testing import CapturedSpans

T_co = TypeVar("T_co", covariant=True)

# -- entering our scopes with `with` and `async with` -----------------------------------------

MODES = ("sync", "async")
OPENERS = ("client", "module")


class Scope(Protocol[T_co]):
    """Something usable with both `with` and `async with` (our traces, spans, factories)."""

    def __enter__(self) -> T_co: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def __aenter__(self) -> T_co: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@asynccontextmanager
async def entered(scope: Scope[T_co], mode: str) -> AsyncIterator[T_co]:
    """Enter `scope` with `with` (mode "sync") or `async with` (mode "async")."""
    if mode == "sync":
        with scope as value:
            yield value
    else:
        async with scope as value:
            yield value


def open_trace(
    captured: CapturedSpans, opener: str, name: str, **options: Any
) -> Scope[rollout.Trace]:
    """`captured.client.trace(...)` or the module-level `rollout.trace(...)`."""
    if opener == "client":
        return captured.client.trace(name, **options)
    return rollout.trace(name, **options)


def events_named(span: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The attributes of `span`'s events called `name`, in order."""
    return [e["attributes"] for e in span["events"] if e["name"] == name]


@dataclasses.dataclass
class Point:
    """A dataclass."""

    x: int
    y: int


# -- a small instrumented program: an agent calling one tool ---------------------------------


@rollout.tool("lookup")
def lookup(order_id: int) -> dict[str, object]:
    return {"order_id": order_id, "status": "shipped"}


@rollout.agent("support_agent")
def support_agent(order_id: int) -> str:
    return str(lookup(order_id)["status"])
