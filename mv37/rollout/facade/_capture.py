"""`capture_event`: record one event of the Rollout data model by its type.

The data model's lifecycle events (`trace.start`, `span.end`, `tool.call`, ...) are what
our traces and spans already are; the others become what the friendly API records:

| event type | recorded as |
|---|---|
| `feedback` | `client.feedback(name, value)` |
| `user.signal` | `client.signal(name, value)` |
| `identity.update` | `client.identify_user(user_id, traits=..., account_id=..., ...)` |
| `message` | a `rollout.message` event (role, content, ...) |
| `eval.result` | a `gen_ai.evaluation.result` event (name, score or label, explanation) |
| `error` | an `exception` event (type, message) |
| any other type | a `rollout.event` event: its type, `event_id` and the fields as JSON |

Each lands on the active trace or the one named by `trace_id`/`external_trace_id`; for
a trace that already ended, on a carrier span in the same OTel trace (see
`_feedback.py`). `occurred_at` (a datetime or epoch seconds) becomes the time of the
`eval.result`, `error` and `rollout.event` events; `event_id` is kept on `rollout.event`.
The other types keep the time of the call, as their own methods do. An unknown type
records nothing and logs one warning.

Example:
    >>> rollout.capture_event("metric", name="latency_ms", value=412)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.trace import Span as OTelSpan

from mv37.rollout import semconv as sc
from mv37.rollout.base._diagnostics import internal_error, log_once
from mv37.rollout.facade._feedback import end_carrier, start_carrier
from mv37.rollout.vocabulary import _events
from mv37.rollout.vocabulary._attributes import Attributes, user_attributes
from mv37.rollout.vocabulary._payload import cap_text, serialize

if TYPE_CHECKING:
    from mv37.rollout.facade._client import RolloutCore

EVENT_TYPES: Final = frozenset(
    {
        "trace.start",
        "trace.end",
        "span.start",
        "span.update",
        "span.end",
        "message",
        "llm.request",
        "llm.response",
        "llm.stream_start",
        "llm.stream_chunk",
        "llm.stream_end",
        "tool.call",
        "tool.result",
        "retrieval",
        "eval.result",
        "error",
        "metric",
        "feedback",
        "user.signal",
        "identity.update",
    }
)
"""The event types of the Rollout data model (API.md)."""

_MESSAGE_FIELDS: Final = ("content_type", "tool_call_id", "is_internal")


def _timestamp(occurred_at: object) -> int | None:
    """Nanoseconds since the epoch for a datetime or epoch seconds; None otherwise."""
    if isinstance(occurred_at, datetime.datetime):
        if occurred_at.tzinfo is None:
            occurred_at = occurred_at.astimezone()  # a naive time is local time
        return int(occurred_at.timestamp() * 1_000_000_000)
    if isinstance(occurred_at, (int, float)) and not isinstance(occurred_at, bool):
        return int(occurred_at * 1_000_000_000)
    return None


def _record(
    span: OTelSpan,
    event_type: str,
    fields: Mapping[str, Any],
    *,
    event_id: str | None,
    timestamp: int | None,
    attributes: Mapping[str, Any] | None,
    limit: int,
) -> None:
    """Add the event for `event_type` to `span`."""
    attrs: Attributes
    if event_type == "eval.result":
        name = fields.get("name", "evaluation")
        value = fields.get("score", fields.get("value", fields.get("label")))
        attrs = _events.evaluation_attributes(str(name), value, limit)
        if "explanation" in fields:
            attrs[sc.GEN_AI_EVALUATION_EXPLANATION] = cap_text(str(fields["explanation"]), limit)[0]
        event_name = sc.EVENT_GEN_AI_EVALUATION_RESULT
    elif event_type == "error":
        attrs = {
            sc.EXCEPTION_TYPE: str(fields.get("type") or fields.get("error_type") or "error"),
            sc.EXCEPTION_MESSAGE: cap_text(str(fields.get("message", "")), limit)[0],
        }
        event_name = sc.EVENT_EXCEPTION
    else:
        attrs = {sc.ROLLOUT_EVENT_TYPE: event_type}
        if event_id is not None:
            attrs[sc.ROLLOUT_EVENT_ID] = str(event_id)
        if fields:
            attrs[sc.ROLLOUT_EVENT_FIELDS] = serialize(dict(fields), limit).text
        event_name = sc.EVENT_ROLLOUT_EVENT
    attrs.update(user_attributes(attributes, limit))
    span.add_event(event_name, attrs, timestamp=timestamp)


def capture_event(
    client: RolloutCore,
    event_type: str,
    *,
    trace_id: str | int | None = None,
    external_trace_id: str | None = None,
    event_id: str | None = None,
    occurred_at: object = None,
    attributes: Mapping[str, Any] | None = None,
    **fields: Any,
) -> None:
    """Record one data-model event on the active trace or the one named by id (see above)."""
    if client.config.disabled:
        return
    try:
        kind = str(event_type)
        if kind not in EVENT_TYPES:
            log_once(
                f"unknown-event-type-{kind}",
                logging.WARNING,
                "mv37.rollout: capture_event(%r): not an event type of the Rollout data "
                "model; nothing recorded (known: %s)",
                kind,
                ", ".join(sorted(EVENT_TYPES)),
            )
            return
        target: dict[str, Any] = {"trace_id": trace_id, "external_trace_id": external_trace_id}
        if kind in ("feedback", "user.signal"):
            record = client.feedback if kind == "feedback" else client.signal
            record(
                str(fields.get("name", kind)),
                fields.get("value"),
                attributes=attributes,
                **target,
            )
            return
        if kind == "identity.update":
            client.identify_user(
                fields.get("user_id"),
                traits=fields.get("traits") or fields.get("user_traits"),
                account_id=fields.get("account_id"),
                account_traits=fields.get("account_traits"),
                **target,
            )
            return
        trace, ended = client.traces.target("capture_event", trace_id, external_trace_id)
        limit = client.config.max_payload_chars
        message: dict[str, Any] | None = None
        if kind == "message":
            message = {
                "role": str(fields.get("role", "user")),
                "content": fields.get("content"),
                "attributes": attributes,
                **{k: fields[k] for k in _MESSAGE_FIELDS if k in fields},
            }

        def record_on(span: OTelSpan) -> None:
            _record(
                span,
                kind,
                fields,
                event_id=event_id,
                timestamp=_timestamp(occurred_at),
                attributes=attributes,
                limit=limit,
            )

        if trace is not None:
            if message is not None:
                trace.message(**message)  # numbers it among the trace's messages
            elif trace.is_recording:
                record_on(trace.otel_span)
            return
        if ended is None:
            return
        carrier = start_carrier(client, "event", kind, ended, {})
        try:
            if not carrier.is_recording():
                return
            if message is not None:
                _events.message(
                    carrier,
                    index=int(fields.get("index", 0)),
                    limit=limit,
                    with_content=client.config.content_enabled,
                    **message,
                )
            else:
                record_on(carrier)
        finally:
            end_carrier(carrier)
            client._kick_flush()
    except Exception as exc:
        internal_error("capture_event", exc)
