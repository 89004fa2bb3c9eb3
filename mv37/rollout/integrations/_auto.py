"""`auto_instrument`: integrations enabled by name at `init()`.

Only integrations that are global by nature can be switched on this way:
`openai_agents` registers our processor with the `agents` package. OpenAI and Anthropic
clients are instrumented per object with `rollout.wrap(client)` by design (no global
monkeypatching), so `openai` / `anthropic` here only log how to do that.

Example:
    >>> rollout.init(auto_instrument=["openai_agents"])  # doctest: +SKIP
    >>> # or ROLLOUT_AUTO_INSTRUMENT=openai_agents
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mv37.rollout._diagnostics import logger

if TYPE_CHECKING:
    from mv37.rollout._client import Rollout

KNOWN_INTEGRATIONS = ("openai_agents", "openai", "anthropic")


def _normal(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def validate(names: Iterable[str]) -> tuple[str, ...]:
    """The names, normalised; `ValueError` listing the known ones for an unknown name."""
    out = tuple(_normal(name) for name in names)
    unknown = sorted(set(out) - set(KNOWN_INTEGRATIONS))
    if unknown:
        raise ValueError(
            f"auto_instrument: unknown integration(s) {', '.join(unknown)}; "
            f"known: {', '.join(KNOWN_INTEGRATIONS)}"
        )
    return out


def enable(names: Iterable[str], client: Rollout) -> list[str]:
    """Enable each named integration for `client`; the ones actually switched on.

    Raises:
        ValueError: An unknown name.
        MissingExtraError: The package of a named integration is not installed.
    """
    enabled: list[str] = []
    for name in validate(names):
        if name == "openai_agents":
            from mv37.rollout.integrations._agents_bridge import instrument_openai_agents

            instrument_openai_agents(client=client)
            enabled.append(name)
        else:
            logger.info(
                "mv37.rollout: auto_instrument=%s: instrument each client object with "
                "rollout.wrap(client); nothing is patched globally",
                name,
            )
    return enabled
