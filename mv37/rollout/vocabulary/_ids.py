"""Trace ids chosen by the caller (`trace_id=`), through the SDK's id generator."""

from __future__ import annotations

import contextvars
import re

from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

_forced_trace_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "mv37_rollout_forced_trace_id", default=None
)
_forced_span_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "mv37_rollout_forced_span_id", default=None
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


class RolloutIdGenerator(RandomIdGenerator):
    """Random ids, except a root span started under `forced_trace_id` gets that id."""

    def generate_trace_id(self) -> int:
        """Return the forced trace id when one is set, else a random one."""
        forced = _forced_trace_id.get()
        if forced is not None:
            return forced
        return super().generate_trace_id()

    def generate_span_id(self) -> int:
        """Return the forced span id when one is set, else a random one."""
        forced = _forced_span_id.get()
        if forced is not None:
            return forced
        return super().generate_span_id()


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
    return _forced_span_id.set(span_id)


def reset_forced_span_id(token: contextvars.Token[int | None]) -> None:
    """Undo `force_span_id`."""
    _forced_span_id.reset(token)


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
