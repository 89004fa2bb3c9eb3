"""The privacy pipeline every exported span goes through, in the export thread.

Order: default scrubbing (`_scrub.Redactor`), then the user's `scrubber(event) -> event`,
then `before_send(event) -> event | None`, then the exporter. The callbacks get a plain
dict view of the span (see `span_view`) and may edit or drop it; edits reach the
exported span. A scrubber that raises drops the span (nothing leaves that the scrubber
did not see); a `before_send` that raises lets the scrubbed span through. Both are
counted and logged once.

Example:
    >>> def drop_health_checks(event):
    ...     return None if event["name"] == "GET /health" else event
    >>> rollout.init(before_send=drop_health_checks)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan

from mv37.rollout import semconv as sc
from mv37.rollout.base._config import EventDict
from mv37.rollout.base._diagnostics import internal_error, log_once
from mv37.rollout.pipeline._scrub import Redactor
from mv37.rollout.pipeline._stats import Counters
from mv37.rollout.vocabulary._payload import attribute_value

Callback = Callable[[EventDict], Any]


def span_view(span: ReadableSpan) -> EventDict:
    """A plain, editable dict of `span`: name, ids, type, kind, attributes, events, status.

    Ids are hex strings (`trace_id` 32, `span_id`/`parent_span_id` 16 characters);
    editing them has no effect. `attributes` and each event's `attributes` are plain
    dicts; edit, add or delete keys freely; remove events from the list to drop them.
    """
    context = span.context
    parent = span.parent
    attributes = dict(span.attributes or {})
    return {
        "name": span.name,
        "trace_id": format(context.trace_id, "032x") if context else None,
        "span_id": format(context.span_id, "016x") if context else None,
        "parent_span_id": format(parent.span_id, "016x") if parent else None,
        "type": attributes.get(sc.ROLLOUT_SPAN_TYPE),
        "kind": span.kind.name,
        "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
        "attributes": attributes,
        "events": [
            {
                "name": event.name,
                "timestamp": event.timestamp,
                "attributes": dict(event.attributes or {}),
            }
            for event in span.events
        ],
        "status": {"code": span.status.status_code.name, "description": span.status.description},
    }


def _clean(attributes: Any, limit: int) -> dict[str, Any]:
    if not isinstance(attributes, Mapping):
        return {}
    return {
        str(key): attribute_value(value, limit)
        for key, value in attributes.items()
        if value is not None
    }


def _from_view(span: ReadableSpan, view: Mapping[str, Any], limit: int) -> ReadableSpan:
    """`span` with the name, attributes and events of an edited view (ids kept)."""
    events = []
    for raw in view.get("events") or ():
        if isinstance(raw, Mapping) and raw.get("name"):
            timestamp = raw.get("timestamp")
            events.append(
                Event(
                    str(raw["name"]),
                    _clean(raw.get("attributes"), limit),
                    timestamp if isinstance(timestamp, int) else None,
                )
            )
    return _rebuild(
        span,
        name=str(view.get("name") or span.name),
        attributes=_clean(view.get("attributes"), limit),
        events=events,
    )


def _rebuild(
    span: ReadableSpan,
    *,
    name: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    events: Sequence[Event] | None = None,
) -> ReadableSpan:
    return ReadableSpan(
        name=span.name if name is None else name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes if attributes is None else attributes,
        events=span.events if events is None else events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class PrivacyStage:
    """Default scrubbing, then `scrubber`, then `before_send`, for a batch of spans."""

    def __init__(
        self,
        redactor: Redactor,
        counters: Counters,
        *,
        scrubber: Callback | None = None,
        before_send: Callback | None = None,
        limit: int = 32_768,
    ) -> None:
        self._redactor = redactor
        self._counters = counters
        self._scrubber = scrubber
        self._before_send = before_send
        self._limit = limit

    @property
    def active(self) -> bool:
        """Whether the stage can change anything (else the exporter gets spans as is)."""
        return self._redactor.active or self._scrubber is not None or self._before_send is not None

    def process(self, spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
        """The spans to export, scrubbed; dropped ones are counted."""
        out: list[ReadableSpan] = []
        for span in spans:
            try:
                kept = self._one(span)
            except Exception as exc:  # our own failure: never send what was not scrubbed
                internal_error("privacy pipeline", exc)
                kept = None
            if kept is None:
                self._counters.drop("scrubbed")
            else:
                out.append(kept)
        return out

    def _one(self, span: ReadableSpan) -> ReadableSpan | None:
        span = self._default(span)
        if self._scrubber is None and self._before_send is None:
            return span
        view = span_view(span)
        if self._scrubber is not None:
            try:
                view = self._scrubber(view)
            except Exception as exc:
                _callback_failed("scrubber", exc, "the span is dropped")
                return None
            if not isinstance(view, Mapping):
                _callback_failed("scrubber", None, "the span is dropped")
                return None
            view = dict(view)
        if self._before_send is not None:
            try:
                result = self._before_send(dict(view))
            except Exception as exc:
                _callback_failed("before_send", exc, "the scrubbed span is sent")
                result = view
            if result is None:
                return None
            if isinstance(result, Mapping):
                view = dict(result)
        return _from_view(span, view, self._limit)

    def _default(self, span: ReadableSpan) -> ReadableSpan:
        redactor = self._redactor
        if not redactor.active:
            return span
        try:  # the SDK's own containers: no per-item locking, no copies
            raw: Mapping[str, Any] = span._attributes._dict  # type: ignore[union-attr]
            raw_events: Sequence[Event] = span._events
        except AttributeError:
            raw, raw_events = dict(span.attributes or {}), span.events
        # One map of scrubbed texts for the whole span: a payload under several keys (our
        # mirrors), or repeated in an event, is scanned once and masked alike everywhere.
        seen: dict[str, tuple[str, int]] = {}
        attributes, count = redactor.attributes(raw, seen)
        events: list[Event] | None = None
        if raw_events:
            for index, event in enumerate(raw_events):
                scrubbed, n = redactor.attributes(event.attributes or {}, seen)
                if scrubbed is not None:
                    if events is None:
                        events = list(raw_events)
                    events[index] = Event(event.name, scrubbed, event.timestamp)
                    count += n
        if not count:
            return span
        attributes = dict(attributes if attributes is not None else raw)
        attributes[sc.ROLLOUT_SCRUB_COUNT] = count
        return _rebuild(span, attributes=attributes, events=events)


def _callback_failed(which: str, exc: Exception | None, consequence: str) -> None:
    """A user callback failed: warn once per callback (type only: no user data), never raise."""
    reason = f"raised {type(exc).__name__}" if exc is not None else "returned no event"
    log_once(
        f"callback-{which}",
        logging.WARNING,
        "mv37.rollout: your %s %s; %s (logged once)",
        which,
        reason,
        consequence,
    )
