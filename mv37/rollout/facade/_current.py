"""The global client slot: the one piece of module state, kept in this small module.

`init()` (surface layer, `_global.py`) fills it; decorators and integrations read it on
every call, so functions decorated at import time start recording once `init()` runs.
Before `init()` a passive client follows whatever global OTel provider exists (emitting
nothing when there is none); the surface says which class that client is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from mv37.rollout.base._config import RolloutConfig, resolve_config
from mv37.rollout.base._diagnostics import logger
from mv37.rollout.facade._client import RolloutCore

_lock = threading.Lock()
client: RolloutCore | None = None
"""The client `init()` built, or None before it."""
_passive: RolloutCore | None = None
passive_factory: Callable[[RolloutConfig], RolloutCore] = RolloutCore.passive
"""Builds the client used before `init()` (the surface installs its own class's)."""


def get_client() -> RolloutCore:
    """The global client (a passive one before `init()`)."""
    current = client
    if current is not None:
        return current
    global _passive
    with _lock:
        if _passive is None:
            try:
                config = resolve_config()
            except ValueError as exc:
                logger.warning("mv37.rollout: ignoring invalid environment before init(): %s", exc)
                config = RolloutConfig()
            _passive = passive_factory(config)
        return _passive


def install(new: RolloutCore) -> RolloutCore | None:
    """Make `new` the global client; returns the one it replaces."""
    global client
    with _lock:
        old, client = client, new
    return old


def clear() -> RolloutCore | None:
    """Forget the global and the passive client; returns the global one (tests)."""
    global client, _passive
    with _lock:
        old, client, _passive = client, None, None
    return old
