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
from typing import TYPE_CHECKING

from mv37.rollout.base._diagnostics import logger
from mv37.rollout.base._integration_names import KNOWN_INTEGRATIONS, PER_CLIENT, validate

if TYPE_CHECKING:
    from mv37.rollout.facade._client import RolloutCore


def enable(names: str | Iterable[str], client: RolloutCore) -> list[str]:
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


__all__ = ["KNOWN_INTEGRATIONS", "PER_CLIENT", "enable", "validate"]
