"""Starting the OTel span of a Rollout trace: who it is for, sampling up front, its parent.

`RolloutCore.start_trace` (facade/_client.py) puts these together; they are apart so each
step reads on its own.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from opentelemetry import trace as otel_trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags, Tracer

from mv37.rollout.facade._user import UserFields, current_user
from mv37.rollout.vocabulary._attributes import (
    AGENT,
    Attributes,
    context_attributes,
    start_attributes,
)
from mv37.rollout.vocabulary._fastattrs import set_clean_attributes
from mv37.rollout.vocabulary._ids import (
    RolloutIdGenerator,
    force_span_id,
    force_trace_id,
    keeps_trace,
    own_root_ids,
    parse_trace_id,
    reset_forced_span_id,
    reset_forced_trace_id,
    root_span_id,
    trace_start_ns,
)
from mv37.rollout.vocabulary._keys import trace_in

if TYPE_CHECKING:
    from mv37.rollout.base._config import RolloutConfig
    from mv37.rollout.pipeline._pipeline import Pipeline

CONTEXT_FIELDS = ("user_id", "session_id", "conversation_id", "account_id")
"""Context keys that are trace context (copied onto every span), not free attributes."""


class TraceContext(NamedTuple):
    """Who and what a new trace is for."""

    own: Attributes
    """Its context attributes (user, session, conversation, agent)."""
    extra: dict[str, Any]
    """Free attributes (`attributes=` and non-context `context=` entries)."""
    user: UserFields | None
    """The active `rollout.user(...)` block, if any."""
    user_id: str | None
    """The user id the trace ends up with."""


def trace_context(
    config: RolloutConfig,
    span_type: str,
    name: str,
    *,
    agent_name: str | None,
    user_id: str | None,
    session_id: str | None,
    conversation_id: str | None,
    context: Mapping[str, Any] | None,
    attributes: Mapping[str, Any] | None,
) -> TraceContext:
    """The trace's own context attributes, its free attributes, and the active user block.

    Explicit ids win over `context=` entries, which win over the `rollout.user(...)`
    block; an `@agent` is its own agent, a trace belongs to the configured one.
    """
    if not (user_id or session_id or conversation_id or context or attributes):
        user = current_user()
        if user is None:  # the common call: only the agent's own attributes, cached
            agent = agent_name or (name if span_type == AGENT else config.agent_name)
            own = _agent_context(agent, config.agent_id, config.agent_version)
            return TraceContext(dict(own), {}, None, None)
    fields: dict[str, Any] = {
        "user_id": user_id,
        "session_id": session_id,
        "conversation_id": conversation_id,
    }
    extra_user: dict[str, Any] = dict(attributes or {})
    for key, value in (context or {}).items():
        if key in CONTEXT_FIELDS:
            fields[key] = fields.get(key) or value
        else:
            extra_user[key] = value
    user = current_user()
    if user is not None:
        for key in CONTEXT_FIELDS:
            if fields.get(key) is None:
                fields[key] = getattr(user, key)
    agent = agent_name or (name if span_type == AGENT else config.agent_name)
    own = context_attributes(
        agent_name=agent,
        agent_id=config.agent_id,
        agent_version=config.agent_version,
        **fields,
    )
    return TraceContext(own, extra_user, user, fields["user_id"])


@functools.lru_cache(maxsize=512)
def _agent_context(
    agent_name: str | None, agent_id: str | None, agent_version: str | None
) -> Attributes:
    # Callers copy it: the cached dict itself is never handed out.
    return context_attributes(agent_name=agent_name, agent_id=agent_id, agent_version=agent_version)


def presample(
    ids: RolloutIdGenerator, bound: int | None, pipeline: Pipeline | None
) -> tuple[otel_trace.Span | None, int | None]:
    """Decide a new root trace's sampling before building anything.

    On our own provider the sampler is `ParentBased(TraceIdRatioBased(rate))`, so a
    root's fate is a function of its trace id: draw the id, and for a dropped trace
    return a non-recording span at once (its children are skipped too). A kept trace
    uses the drawn id (`start_root_span(own_trace_id=...)`). Inside another
    instrumentation's span the parent's decision applies, so nothing is decided here.
    """
    if otel_trace.get_current_span().get_span_context().is_valid:
        return None, None
    trace_id = ids.new_trace_id()
    if bound is not None and not keeps_trace(trace_id, bound):
        if pipeline is not None:
            pipeline.counters.drop("sampled_out")
        context = SpanContext(trace_id, root_span_id(trace_id), False, TraceFlags(0))
        return NonRecordingSpan(context), None
    return None, trace_id


def start_root_span(
    tracer: Tracer,
    pipeline: Pipeline | None,
    config: RolloutConfig,
    otel_name: str,
    attrs: Attributes,
    *,
    trace_id: str | int | None,
    own_trace_id: int | None = None,
    lean: bool = False,
) -> otel_trace.Span:
    """Start a trace's OTel span: in the forced `trace_id`, linked to a foreign parent
    (`link_foreign_parent`), or as the child of whatever span is current.

    A new root on our provider gets a timed trace id (`own_trace_id` when presampling
    drew it), starts at the instant that id records and has `root_span_id(trace_id)`:
    a late feedback from any process can find both (`_feedback.start_carrier`).

    With `lean`, when nobody reads attributes at start (`RolloutCore.lean_root`), the
    span starts bare and gets them all right after: the SDK validates start attributes
    twice (sampler and span).
    """
    current: Context | None = None
    links: list[Link] = []
    forced = parse_trace_id(trace_id) if trace_id is not None else None
    ours = pipeline is not None and pipeline.own_ids
    if forced is not None:
        current = Context()
        if not ours:
            # Not our provider: continue the trace under a remote parent with that id.
            remote = SpanContext(
                forced, RolloutIdGenerator().generate_span_id(), True, TraceFlags(1)
            )
            current = otel_trace.set_span_in_context(NonRecordingSpan(remote), Context())
            forced = None
    elif config.link_foreign_parent and trace_in(None) is None:
        ambient = otel_trace.get_current_span().get_span_context()
        if ambient.is_valid:
            links.append(Link(ambient))
            current = Context()
    root_id: int | None = None
    start_ns: int | None = None
    if (
        forced is None
        and ours
        and (current is not None or not otel_trace.get_current_span().get_span_context().is_valid)
    ):
        if own_trace_id is None:
            forced, root_id, start_ns = own_root_ids()
        else:
            forced, root_id = own_trace_id, root_span_id(own_trace_id)
            start_ns = trace_start_ns(own_trace_id)
    token = force_trace_id(forced) if forced is not None else None
    span_token = force_span_id(root_id) if root_id is not None else None
    try:
        otel_span = tracer.start_span(
            otel_name,
            context=current,
            kind=SpanKind.INTERNAL,
            attributes=None if lean else start_attributes(attrs),
            links=links,
            start_time=start_ns,
        )
        set_clean_attributes(otel_span, attrs)
        if not otel_span.is_recording() and pipeline is not None and pipeline.records:
            pipeline.counters.drop("sampled_out")
        return otel_span
    finally:
        if span_token is not None:
            reset_forced_span_id(span_token)
        if token is not None:
            reset_forced_trace_id(token)
