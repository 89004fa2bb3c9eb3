"""The one guard for SDK-internal failures: log once, count, never raise.

Instrumentation must never break the host program. Code that runs inside a user's call
catches its own failures and hands them to `internal_error`, which logs the first
failure of each kind on the `mv37.rollout` logger (with the traceback) and counts all
of them. Under pytest, set `MV37_ROLLOUT_RAISE_INTERNAL=1` to make them raise instead so
that internal bugs fail the tests.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter

logger = logging.getLogger("mv37.rollout")

_lock = threading.Lock()
_seen: set[str] = set()
_counts: Counter[str] = Counter()


def internal_error(where: str, exc: BaseException | None = None) -> None:
    """Record an internal failure at `where`; log it the first time only.

    A `RecursionError` is the user's program running out of stack while our code ran:
    it is counted, never logged (that needs more stack) nor raised from here, so the
    user's own call raises it as their error.
    """
    if isinstance(exc, RecursionError):
        with _lock:
            _counts["recursion limit"] += 1
        return
    with _lock:
        _counts[where] += 1
        first = where not in _seen
        _seen.add(where)
    if os.environ.get("MV37_ROLLOUT_RAISE_INTERNAL") == "1" and exc is not None:
        raise exc
    if first:
        logger.warning(
            "mv37.rollout: internal error in %s (instrumentation continues; "
            "later errors here are counted, not logged)",
            where,
            exc_info=exc if exc is not None else True,
        )


def log_once(key: str, level: int, message: str, *args: object) -> None:
    """Log `message` at `level` the first time `key` is seen."""
    with _lock:
        if key in _seen:
            return
        _seen.add(key)
    logger.log(level, message, *args)


def debug_once(key: str, message: str, *args: object) -> None:
    """Log `message` at debug level the first time `key` is seen."""
    log_once(key, logging.DEBUG, message, *args)


def internal_error_counts() -> dict[str, int]:
    """How many internal failures happened, by place."""
    with _lock:
        return dict(_counts)


def reset_diagnostics() -> None:
    """Forget what was logged and counted (tests)."""
    with _lock:
        _seen.clear()
        _counts.clear()


def enable_debug_logging() -> None:
    """`debug=True`: the `mv37.rollout` logger at DEBUG, with a stderr handler if it has none."""
    logger.setLevel(logging.DEBUG)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
