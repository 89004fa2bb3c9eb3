"""Feedback, signals and identities that arrive after their trace ended.

They land in the same OTel trace (same trace id) on a short **carrier span**, so Jaeger,
Tempo and Phoenix show them under that trace:

- name `feedback <name>` / `signal <name>` / `identify <user>`, `rollout.span.type`
  `feedback`/`signal`/`identify`, OpenInference kind `EVALUATOR`;
- the same events as on a live trace (`rollout.feedback` + `gen_ai.evaluation.result`),
  and OpenInference annotation attributes `trace.annotations.0.annotation.*`
  (`annotator_kind` HUMAN for feedback, CODE for signals);
- parent: the trace's root span when this process recorded that trace (plus a span
  link to it); otherwise a root span in that trace (our provider forces the trace id),
  or the child of a remote parent carrying that trace id (someone else's provider).

Sampling agrees with the trace's own decision: it is a function of the trace id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as otel_trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from mv37.rollout import semconv as sc
from mv37.rollout.base._diagnostics import internal_error, log_once
from mv37.rollout.facade._context import current_trace
from mv37.rollout.vocabulary import _events
from mv37.rollout.vocabulary._attributes import Attributes
from mv37.rollout.vocabulary._ids import (
    RolloutIdGenerator,
    force_trace_id,
    keeps_trace,
    reset_forced_trace_id,
    sampling_bound,
)

if TYPE_CHECKING:
    from mv37.rollout.facade._client import RolloutCore

_ANNOTATOR = {"feedback": "HUMAN", "signal": "CODE"}
_ANNOTATION = sc.TRACE_ANNOTATIONS + ".0.annotation."


def _sampled(client: RolloutCore, trace_id: int) -> bool:
    """The ratio sampler's decision for `trace_id` (what the trace itself got)."""
    return keeps_trace(trace_id, sampling_bound(client.config.sample_rate))


def annotation_attributes(kind: str, name: str, value: object) -> Attributes:
    """OpenInference annotation attributes for a feedback or signal on a carrier span."""
    attrs: Attributes = {
        _ANNOTATION + "name": str(name),
        _ANNOTATION + "annotator_kind": _ANNOTATOR.get(kind, "CODE"),
    }
    if isinstance(value, bool):
        attrs[_ANNOTATION + "score"] = 1.0 if value else 0.0
        attrs[_ANNOTATION + "label"] = "true" if value else "false"
    elif isinstance(value, (int, float)):
        attrs[_ANNOTATION + "score"] = float(value)
    elif isinstance(value, str):
        attrs[_ANNOTATION + "label"] = value
    return attrs


def start_carrier(
    client: RolloutCore, kind: str, name: str, trace_id: int, extra: Attributes
) -> otel_trace.Span:
    """Start (not end) a carrier span for `kind` in the trace `trace_id`."""
    root = client.traces.root_span_id(trace_id)
    attrs: Attributes = {
        sc.ROLLOUT_SPAN_TYPE: kind,
        sc.ROLLOUT_SPAN_NAME: str(name),
        sc.OPENINFERENCE_SPAN_KIND: "EVALUATOR",
        **extra,
    }
    links: list[Link] = []
    forced: int | None = None
    context: Context
    if root is not None:
        flags = TraceFlags(TraceFlags.SAMPLED if _sampled(client, trace_id) else 0)
        parent = SpanContext(trace_id, root, is_remote=True, trace_flags=flags)
        context = otel_trace.set_span_in_context(NonRecordingSpan(parent), Context())
        links.append(Link(parent))
    elif isinstance(getattr(client.tracer_provider, "id_generator", None), RolloutIdGenerator):
        context, forced = Context(), trace_id  # a root in that trace; the sampler decides
    else:
        flags = TraceFlags(TraceFlags.SAMPLED)
        remote = SpanContext(
            trace_id, RolloutIdGenerator().generate_span_id(), is_remote=True, trace_flags=flags
        )
        context = otel_trace.set_span_in_context(NonRecordingSpan(remote), Context())
    token = force_trace_id(forced) if forced is not None else None
    try:
        return client.tracer.start_span(
            f"{kind} {name}", context=context, kind=SpanKind.INTERNAL, attributes=attrs, links=links
        )
    finally:
        if token is not None:
            reset_forced_trace_id(token)


def send_outcome(
    client: RolloutCore,
    kind: str,
    name: str,
    value: object,
    *,
    trace_id: int,
    attributes: Mapping[str, Any] | None,
) -> None:
    """A feedback or signal for a trace that is not open here: on a carrier span."""
    limit = client.config.max_payload_chars
    span = start_carrier(client, kind, name, trace_id, annotation_attributes(kind, name, value))
    try:
        if span.is_recording():
            span.set_attributes(_events.evaluation_attributes(name, value, limit))
            _events.outcome(span, kind, name, value, limit=limit, attributes=attributes)
    finally:
        span.end()
    client._kick_flush()


def send_identity(
    client: RolloutCore,
    trace_id: int,
    user_id: str | None,
    *,
    traits: Mapping[str, Any] | None,
    account_id: str | None,
    account_traits: Mapping[str, Any] | None,
) -> None:
    """An identity for a trace that is not open here: on a carrier span."""
    extra: Attributes = {}
    if user_id:
        extra[sc.ROLLOUT_USER_ID] = extra[sc.USER_ID] = str(user_id)
    span = start_carrier(client, "identify", str(user_id or account_id or "user"), trace_id, extra)
    try:
        if span.is_recording():
            _events.identify(
                span, user_id, traits=traits, account_id=account_id, account_traits=account_traits
            )
    finally:
        span.end()
    client._kick_flush()


def warn_no_trace(kind: str, name: str) -> None:
    """A feedback or signal with nothing to land on: one WARNING per process and kind."""
    log_once(
        f"no-trace-{kind}",
        logging.WARNING,
        "mv37.rollout: %s(%r, ...) was called with no active trace and no trace_id, so it "
        "was not recorded. Call it inside an @agent or @trace function (or a `with "
        "rollout.trace(...)` block), or pass trace_id= (keep rollout.current_trace().trace_id "
        "from the run; it works after the trace ended) or external_trace_id=. Logged once.",
        kind,
        str(name),
    )


def record_outcome(
    client: RolloutCore,
    kind: str,
    name: str,
    value: object,
    *,
    trace_id: str | int | None,
    external_trace_id: str | None,
    attributes: Mapping[str, Any] | None,
) -> None:
    """A feedback or signal (`kind`) on the trace it names: live, or on a carrier span."""
    if client.config.disabled:
        return
    try:
        if trace_id is None and external_trace_id is None and current_trace() is None:
            warn_no_trace(kind, name)
            return
        trace, ended = client.traces.target(kind, trace_id, external_trace_id)
        if trace is not None:
            record = trace.feedback if kind == "feedback" else trace.signal
            record(name, value, attributes=attributes)
        elif ended is not None:
            send_outcome(client, kind, name, value, trace_id=ended, attributes=attributes)
    except Exception as exc:
        internal_error(kind, exc)


def record_identity(
    client: RolloutCore,
    user_id: str | None,
    *,
    traits: Mapping[str, Any] | None,
    account_id: str | None,
    account_traits: Mapping[str, Any] | None,
    trace_id: str | int | None,
    external_trace_id: str | None,
) -> None:
    """An identity on the trace it names: live, or on a carrier span."""
    if client.config.disabled:
        return
    try:
        trace, ended = client.traces.target("identify_user", trace_id, external_trace_id)
        if trace is not None:
            trace.identify_user(
                user_id, traits=traits, account_id=account_id, account_traits=account_traits
            )
        elif ended is not None:
            send_identity(
                client,
                ended,
                user_id,
                traits=traits,
                account_id=account_id,
                account_traits=account_traits,
            )
    except Exception as exc:
        internal_error("identify_user", exc)
