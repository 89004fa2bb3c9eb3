"""Public type aliases."""

from __future__ import annotations

from typing import Any, TypedDict


class UsageDict(TypedDict, total=False):
    """Keyword arguments for `Span.set_usage`; missing fields are simply absent."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    total_tokens: int
    context_window_tokens: int
    context_used_tokens: int
    context_utilization: float
    cost_usd: float


EventAttributes = dict[str, Any]
"""Extra attributes for events (`attributes=`), namespaced as `rollout.attributes.*`."""

UserTraits = dict[str, Any]
"""Traits of a user or account (email, plan, ...)."""
