"""Feedback, signals and identities that arrive after their trace ended.

They land in the same OTel trace (same trace id) on a short **carrier span**, so Jaeger,
Tempo and Phoenix show them under that trace:

- name `feedback <name>` / `signal <name>` / `identify <user>`, `rollout.span.type`
  `feedback`/`signal`/`identify`, OpenInference kind `EVALUATOR`;
- the same events as on a live trace (`rollout.feedback` + `gen_ai.evaluation.result`),
  and OpenInference annotation attributes `trace.annotations.0.annotation.*`
  (`annotator_kind` HUMAN for feedback, CODE for signals);
- parent: the trace's root span (plus a span link to it), as this process recorded it
  or as any process can derive it from the trace id (`_ids.root_span_id`): never a
  second root;
- zero-length inside the trace's time range (at the root's end, or at the start its
  trace id records), the arrival time in `rollout.carrier.received_at` and the events;
- the trace's user, session and agent attributes when this process knows them.

Sampling agrees with the trace's own decision: it is a function of the trace id.
"""

from __future__ import annotations

import logging
import time
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
    keeps_trace,
    root_span_id,
    sampling_bound,
    trace_start_ns,
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
    """Start (not end: `end_carrier`) a carrier span for `kind` in the trace `trace_id`.

    It stays inside the trace's shape and time range, so a late feedback changes neither
    the trace's duration nor its root:
    - parent: the trace's root span, known here or derived from the trace id
      (`root_span_id`: the id every root on our provider gets), plus a link to it;
    - time: zero-length at the root's end when this process saw it end, else at the
      start instant the trace id records (`trace_start_ns`), else now (a trace id made
      elsewhere); the real arrival is `rollout.carrier.received_at` and the events' time;
    - the trace's context attributes (user, session, agent, ...) when known here.
    """
    now = time.time_ns()
    facts = client.traces.root_facts(trace_id)
    attrs: Attributes = {}
    at: int | None = None
    if facts is not None:
        root, context_attrs, at = facts
        attrs.update(context_attrs)
    else:
        root, at = root_span_id(trace_id), trace_start_ns(trace_id, now)
    attrs.update(
        {
            sc.ROLLOUT_SPAN_TYPE: kind,
            sc.ROLLOUT_SPAN_NAME: str(name),
            sc.OPENINFERENCE_SPAN_KIND: "EVALUATOR",
            sc.ROLLOUT_CARRIER_RECEIVED_AT: now,
            **extra,
        }
    )
    flags = TraceFlags(TraceFlags.SAMPLED if _sampled(client, trace_id) else 0)
    parent = SpanContext(trace_id, root, is_remote=True, trace_flags=flags)
    context = otel_trace.set_span_in_context(NonRecordingSpan(parent), Context())
    return client.tracer.start_span(
        f"{kind} {name}",
        context=context,
        kind=SpanKind.INTERNAL,
        attributes=attrs,
        links=[Link(parent)],
        start_time=at if at is not None and at <= now else now,
    )


def end_carrier(span: otel_trace.Span) -> None:
    """End a carrier span at its own start: zero-length, inside the trace's range."""
    start = getattr(span, "start_time", None)
    span.end(end_time=start if isinstance(start, int) else None)


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
        end_carrier(span)
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
        end_carrier(span)
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
