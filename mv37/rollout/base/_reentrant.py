"""What a reusable context-manager object opened, kept per thread and asyncio task.

`rollout.trace("x")` and `rollout.user(...)` return objects that may be entered again,
nested, and from several threads or tasks at once. Each entry's state (a token, a
scope) cannot live on the shared object; it lives here, in a `ContextVar`, and `__exit__`
takes back the newest entry the same object made in this context.

Example:
    >>> opened: Entries[str] = Entries("example")
    >>> owner = object()
    >>> opened.push(owner, "token")
    >>> opened.take(owner), opened.take(owner)
    (('token',), ())
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Generic, TypeVar

E = TypeVar("E")


class Entries(Generic[E]):
    """Per-context (owner, entry) pairs, newest last."""

    __slots__ = ("_var",)

    def __init__(self, name: str) -> None:
        self._var: ContextVar[tuple[tuple[object, E], ...]] = ContextVar(name, default=())

    def push(self, owner: object, entry: E) -> None:
        """Remember that `owner` opened `entry` in this context."""
        self._var.set((*self._var.get(), (owner, entry)))

    def take(self, owner: object) -> tuple[E, ...]:
        """Take out the newest entry `owner` made in this context: `(entry,)`, or `()`
        when it made none here (an unmatched `__exit__`)."""
        opened = self._var.get()
        for index in range(len(opened) - 1, -1, -1):
            if opened[index][0] is owner:
                self._var.set(opened[:index] + opened[index + 1 :])
                return (opened[index][1],)
        return ()
