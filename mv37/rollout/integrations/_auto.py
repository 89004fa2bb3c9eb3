"""`auto_instrument`: integrations enabled by name at `init()`.

Only integrations that are global by nature are switched on here: `openai_agents`
registers our tracing processor with the `agents` package (`instrument_openai_agents`).

`openai` and `anthropic` are accepted but patch nothing: by design those SDKs are
instrumented per client object with `rollout.wrap(client)` (no global monkeypatching,
so clients you do not wrap, and other libraries' clients, stay untouched). Naming them
logs, at info level, how to do that.

Names are case-insensitive and `-` equals `_` (`openai-agents` is `openai_agents`);
`validate` runs when the configuration is read, so a typo fails at `init()`.

Example:
    >>> rollout.init(auto_instrument=["openai_agents"])  # doctest: +SKIP
    >>> # or ROLLOUT_AUTO_INSTRUMENT=openai_agents
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from mv37.rollout._diagnostics import logger

if TYPE_CHECKING:
    from mv37.rollout._client import Rollout

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


def enable(names: str | Iterable[str], client: Rollout) -> list[str]:
    """Enable each named integration for `client`; returns the ones switched on.

    Example:
        >>> enable(["openai_agents"], client)  # doctest: +SKIP
        ['openai_agents']

    Raises:
        ValueError: An unknown name.
        MissingExtraError: The package of a named integration is not installed (an
            `ImportError` naming the extra to install).
    """
    enabled: list[str] = []
    for name in validate(names):
        if name == "openai_agents":
            from mv37.rollout.integrations._agents_bridge import instrument_openai_agents

            instrument_openai_agents(client=client)
            enabled.append(name)
        elif name in PER_CLIENT:
            logger.warning(
                "mv37.rollout: auto_instrument=%s does nothing by itself: instrument each "
                "client object with rollout.wrap(client); nothing is patched globally",
                name,
            )
    return enabled
