"""The integration names `auto_instrument` accepts, checked when the config is read.

Names are case-insensitive and `-` equals `_` (`openai-agents` is `openai_agents`). What
each one does lives with the integrations (`integrations/_auto.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

KNOWN_INTEGRATIONS: Final = ("openai_agents", "openai", "anthropic")
"""What `auto_instrument` accepts."""
PER_CLIENT: Final = frozenset({"openai", "anthropic"})
"""Accepted, but instrumented per client object with `rollout.wrap(client)`."""


def _normal(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def validate(names: str | Iterable[str]) -> tuple[str, ...]:
    """The names normalised, blanks and repeats dropped; a comma-separated string is split.

    Example:
        >>> validate("OpenAI-Agents, openai")
        ('openai_agents', 'openai')

    Raises:
        ValueError: An unknown name (the message lists the known ones).
    """
    raw = names.split(",") if isinstance(names, str) else names
    out = tuple(dict.fromkeys(n for n in (_normal(str(name)) for name in raw) if n))
    unknown = [name for name in out if name not in KNOWN_INTEGRATIONS]
    if unknown:
        raise ValueError(
            f"unknown integration(s) {', '.join(unknown)}; known: {', '.join(KNOWN_INTEGRATIONS)}"
        )
    return out


__all__ = ["KNOWN_INTEGRATIONS", "PER_CLIENT", "validate"]
