"""The OTel context keys under which the active Rollout trace and span live.

The facade stores its `Trace`/`Span` objects under these keys (`facade/_context.py`);
the pipeline reads them to tell spans of Rollout traces from others and to copy a
trace's context attributes onto foreign spans. Both sides meet here, below them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

TRACE_KEY = otel_context.create_key("mv37-rollout-trace")
"""The active Rollout trace (a `facade._trace.Trace`)."""
SPAN_KEY = otel_context.create_key("mv37-rollout-span")
"""The innermost active Rollout span (a `facade._span.Span`), or None."""


class ActiveTrace(Protocol):
    """What the pipeline reads of an active Rollout trace."""

    @property
    def context_attributes(self) -> dict[str, AttributeValue]:
        """User, session, conversation and agent attributes copied onto every span."""
        ...

    def _add_usage(self, usage: Mapping[str, int | float]) -> None:
        """Add an LLM call's usage to the trace's totals (another instrumentation's span)."""


def trace_in(ctx: Context | None) -> ActiveTrace | None:
    """The Rollout trace recorded in `ctx` (the current context when `None`)."""
    return otel_context.get_value(TRACE_KEY, ctx)  # type: ignore[return-value]
