"""Our id generator: caller-chosen ids, trace ids that tell when they started, and a
root span id any process can compute from the trace id.

- A trace id this SDK makes carries its start instant: `[60 bits: ns since 2020]
  [4 bits: 0b0111] [64 random bits]`. The low 64 bits stay random (the ratio sampler
  reads them; W3C's random flag asks for the right-most 7 bytes), and a late feedback
  from another process places its carrier span at the trace's start (`trace_start_ns`)
  instead of stretching the trace to the moment the feedback came.
- The root span of every trace started on our provider gets `root_span_id(trace_id)`,
  so a feedback sent later with only the trace id parents on the real root (one root,
  not two).
"""

from __future__ import annotations

import contextvars
import random
import re
import time

from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

_forced_trace_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "mv37_rollout_forced_trace_id", default=None
)
_next_span_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "mv37_rollout_next_span_id", default=None
)
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def parse_trace_id(value: str | int) -> int:
    """Turn a 32-hex-digit trace id (or an int) into the OTel integer form.

    Raises:
        ValueError: When it is not a valid, non-zero 128-bit trace id.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip().lower().replace("-", "")
        if not _HEX32.match(text):
            raise ValueError(f"trace_id must be 32 hex digits, got {value!r}")
        number = int(text, 16)
    if not 0 < number < 2**128:
        raise ValueError("trace_id must be a non-zero 128-bit number")
    return number


def format_trace_id(trace_id: int) -> str:
    """The 32 lowercase hex digits Jaeger and Tempo search by."""
    return f"{trace_id:032x}"


_EPOCH_NS = 1_577_836_800 * 10**9  # 2020-01-01T00:00:00Z
_TIME_BITS = 52  # microseconds: 142 years from 2020
_MARK = 0xB17  # 12 bits that say "this id records its start"
_RANDOM_BITS = 64
_MASK64 = (1 << 64) - 1
MAX_TRACE_AGE_NS = 400 * 86_400 * 10**9
"""How old a trace may be for `trace_start_ns` to trust its id (late feedback a year on)."""


def start_instant(now_ns: int) -> int:
    """`now_ns` cut to the microsecond a timed trace id can record."""
    return now_ns - now_ns % 1000


def timed_trace_id(start_ns: int) -> int:
    """A new random trace id that records `start_ns` (to the microsecond).

    Example:
        >>> trace_start_ns(timed_trace_id(1_767_225_600_123_456_789), 1_767_225_601 * 10**9)
        1767225600123456000
    """
    since = ((start_ns - _EPOCH_NS) // 1000) & ((1 << _TIME_BITS) - 1)
    return (since << 76) | (_MARK << _RANDOM_BITS) | (random.getrandbits(_RANDOM_BITS) or 1)


def trace_start_ns(trace_id: int, now_ns: int | None = None) -> int | None:
    """The start instant a `timed_trace_id` records; None for any other trace id, or a
    start in the future or more than `MAX_TRACE_AGE_NS` ago (a random id passes the
    12-bit marker and lands in that window about twice in a million).

    Example:
        >>> trace_start_ns(0x4BF92F3577B34DA6A3CE929D0E0E4736) is None
        True
    """
    if (trace_id >> _RANDOM_BITS) & 0xFFF != _MARK:
        return None
    start = (trace_id >> 76) * 1000 + _EPOCH_NS
    now = time.time_ns() if now_ns is None else now_ns
    if start > now or now - start > MAX_TRACE_AGE_NS:
        return None
    return start


def root_span_id(trace_id: int) -> int:
    """The span id the root span of `trace_id` gets on our provider: a fixed mix of the
    trace id's bits (splitmix64's finaliser), never 0.

    Example:
        >>> root_span_id(1) == root_span_id(1) != root_span_id(2)
        True
    """
    z = ((trace_id >> 64) ^ trace_id) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) or 1


class RolloutIdGenerator(RandomIdGenerator):
    """Timed trace ids (or the one forced by `force_trace_id`), the derived span id for
    the root span that follows (`root_span_id`), random span ids otherwise.

    The SDK's `start_span` asks for a trace id only for a root span, and for that
    span's id right after, in the same context: a trace id drawn here makes the next
    span id of this context the root's. A forced trace id (the caller's `trace_id=`,
    possibly used by more than one root) gets a random root span id; the facade forces
    the derived one for the ids it draws itself (`own_root_ids`). A child span's id is
    one context-variable read and a random draw.
    """

    def generate_trace_id(self) -> int:
        """The forced trace id when one is set, else a new timed one."""
        forced = _forced_trace_id.get()
        if forced is not None:
            return forced
        trace_id = timed_trace_id(time.time_ns())
        if _next_span_id.get() is None:  # a forced span id wins
            _next_span_id.set(root_span_id(trace_id))
        return trace_id

    def generate_span_id(self) -> int:
        """The forced span id when one is set, the root's derived id right after a trace
        id was drawn, else a random one."""
        span_id = _next_span_id.get()
        if span_id is None:
            return random.getrandbits(64) or 1
        _next_span_id.set(None)  # used once (a `force_span_id` token still resets it)
        return span_id

    def new_trace_id(self) -> int:
        """A timed trace id for a root decided before it starts (presampling): no span
        id is owed for it here."""
        return timed_trace_id(time.time_ns())


def own_root_ids() -> tuple[int, int, int]:
    """`(trace id, root span id, start ns)` for a root trace the facade starts itself."""
    start = start_instant(time.time_ns())
    trace_id = timed_trace_id(start)
    return trace_id, root_span_id(trace_id), start


def force_trace_id(trace_id: int | None) -> contextvars.Token[int | None]:
    """Make the next root span started in this context use `trace_id`."""
    return _forced_trace_id.set(trace_id)


def reset_forced_trace_id(token: contextvars.Token[int | None]) -> None:
    """Undo `force_trace_id`."""
    _forced_trace_id.reset(token)


_HEX16 = re.compile(r"^[0-9a-f]{16}$")


def parse_span_id(value: str | int) -> int:
    """Turn a 16-hex-digit span id (or an int) into the OTel integer form.

    Raises:
        ValueError: When it is not a valid, non-zero 64-bit span id.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip().lower()
        if not _HEX16.match(text):
            raise ValueError(f"span_id must be 16 hex digits, got {value!r}")
        number = int(text, 16)
    if not 0 < number < 2**64:
        raise ValueError("span_id must be a non-zero 64-bit number")
    return number


def force_span_id(span_id: int | None) -> contextvars.Token[int | None]:
    """Make the next span started in this context use `span_id`."""
    return _next_span_id.set(span_id)


def reset_forced_span_id(token: contextvars.Token[int | None]) -> None:
    """Undo `force_span_id`."""
    _next_span_id.reset(token)


def sampling_bound(rate: float) -> int:
    """The trace-id bound below which a trace is kept at `rate` (OTel's ratio sampler's)."""
    return TraceIdRatioBased.get_bound_for_rate(rate)


def keeps_trace(trace_id: int, bound: int) -> bool:
    """The sampling decision: a function of the trace id alone, so it is the same for the
    sampler of our provider (`TraceIdRatioBased`, the same arithmetic), for a root
    presampled before it starts, and for feedback that arrives after the trace ended.

    Example:
        >>> keeps_trace(0x1, sampling_bound(0.5)), keeps_trace(2**64 - 1, sampling_bound(0.5))
        (True, False)
    """
    return (trace_id & TraceIdRatioBased.TRACE_ID_LIMIT) < bound
