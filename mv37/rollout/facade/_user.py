"""`rollout.user(...)`: who the traces opened inside a block are for.

The active user lives in a `ContextVar`, so it is per thread and per asyncio task (a
task created inside the block inherits it; changes inside a task stay there). Nested
blocks override field by field and the previous value comes back when a block ends.

Example:
    >>> import mv37.rollout as rollout
    >>> with rollout.user(user_id="u-42", session_id="s-7"):  # doctest: +SKIP
    ...     handle_request("hi")  # its trace carries user.id and session.id
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from mv37.rollout.base._reentrant import Entries

_FIELDS = ("user_id", "traits", "account_id", "account_traits", "session_id", "conversation_id")


@dataclass(frozen=True)
class UserFields:
    """The user, account and session a block of code runs for (unset fields are None)."""

    user_id: str | None = None
    traits: Mapping[str, Any] | None = None
    account_id: str | None = None
    account_traits: Mapping[str, Any] | None = None
    session_id: str | None = None
    conversation_id: str | None = None

    def over(self, outer: UserFields | None) -> UserFields:
        """These fields on top of `outer`'s: each set field wins, unset ones inherit."""
        if outer is None:
            return self
        changes = {name: getattr(self, name) for name in _FIELDS if getattr(self, name) is not None}
        return dataclasses.replace(outer, **changes)


_CURRENT: contextvars.ContextVar[UserFields | None] = contextvars.ContextVar(
    "mv37_rollout_user", default=None
)


_ENTERED: Entries[contextvars.Token[UserFields | None]] = Entries("mv37_rollout_user_entered")


def current_user() -> UserFields | None:
    """The user fields active in this context, or None."""
    return _CURRENT.get()


class UserContext:
    """A (sync or async) context manager making its fields the active user.

    Returned by `rollout.user(...)` and `Rollout.user(...)`. Reusable, and safe to
    enter in several threads or tasks at once: each entry keeps its own token.
    """

    def __init__(
        self,
        *,
        user_id: str | None = None,
        traits: Mapping[str, Any] | None = None,
        account_id: str | None = None,
        account_traits: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        conversation_id: str | None = None,
    ) -> None:
        self.fields = UserFields(
            None if user_id is None else str(user_id),
            dict(traits) if traits else None,
            None if account_id is None else str(account_id),
            dict(account_traits) if account_traits else None,
            None if session_id is None else str(session_id),
            None if conversation_id is None else str(conversation_id),
        )

    def __repr__(self) -> str:
        set_fields = ", ".join(
            f"{name}={getattr(self.fields, name)!r}"
            for name in ("user_id", "account_id", "session_id", "conversation_id")
            if getattr(self.fields, name) is not None
        )
        return f"UserContext({set_fields})"

    def __enter__(self) -> UserContext:
        _ENTERED.push(self, _CURRENT.set(self.fields.over(_CURRENT.get())))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for token in _ENTERED.take(self):
            _CURRENT.reset(token)

    async def __aenter__(self) -> UserContext:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
