"""Which trace a feedback, signal or identity is for: the ids this process remembers.

`feedback`/`signal`/`identify_user`/`capture_event` name their trace by nothing (the
active one), by OTel `trace_id`, or by `external_trace_id`. A trace still open here gets
the event live; an ended one (or one from another process) gets a carrier span in the
same OTel trace (`_feedback.py`), parented on its root when this process knows it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from mv37.rollout.base._diagnostics import debug_once
from mv37.rollout.facade._context import current_trace
from mv37.rollout.vocabulary._ids import parse_trace_id

if TYPE_CHECKING:
    from mv37.rollout.facade._trace import Trace
    from mv37.rollout.vocabulary._attributes import Attributes

RootFacts = tuple[int, "Attributes", "int | None"]
"""(span id, context attributes, end ns or None) of a trace's outermost Rollout span."""

_Ended = tuple[int, tuple[tuple[str, Any], ...], "int | None"]
"""What an ended root leaves: its span id, its context attributes as a tuple of items
(atomic values only, so the garbage collector stops tracking it after one look: ten
thousand remembered dicts made every full collection walk them), its end."""

MAX_REMEMBERED = 10_000
"""Traces whose external id and root span id are remembered, newest kept."""


class TraceIndex:
    """The traces one client recorded: external ids, and each root by its trace id.

    One ordered map holds the root `Trace` while it runs and what it leaves (`_Ended`)
    once it ended, replaced in place: one insert per trace, one assignment at its end,
    the oldest evicted first.
    """

    __slots__ = ("_external_ids", "_roots")

    def __init__(self) -> None:
        # OrderedDicts: the oldest entry leaves with `popitem(last=False)` in O(1). (A
        # plain dict's `del d[next(iter(d))]` scans past every slot deleted before it, so
        # at the bound each new trace paid a scan of thousands of dead slots.)
        self._external_ids: OrderedDict[str, str] = OrderedDict()
        # trace id -> the open root (strong: a weak mapping costs more than the rest of
        # the bookkeeping together), or what it left when it ended.
        self._roots: OrderedDict[int, Trace | _Ended] = OrderedDict()

    def remember(self, trace: Trace, external_trace_id: str | None) -> None:
        """Note a recording trace just started (the first one per OTel trace is its root)."""
        if external_trace_id:
            ids = self._external_ids
            ids[str(external_trace_id)] = trace.trace_id
            if len(ids) > MAX_REMEMBERED:
                ids.popitem(last=False)
        roots = self._roots
        trace_id = trace.otel_span.get_span_context().trace_id
        # A nested trace finds its root there already; past the bound the oldest leaves.
        if roots.setdefault(trace_id, trace) is trace and len(roots) > MAX_REMEMBERED:
            roots.popitem(last=False)

    def ended(self, trace: Trace) -> None:
        """`trace` ended: if it is a remembered root, it leaves its facts in its place."""
        otel_span = trace.otel_span
        context = otel_span.get_span_context()
        roots = self._roots
        trace_id = context.trace_id
        if roots.get(trace_id) is trace:  # the root (not a nested trace), not yet evicted
            roots[trace_id] = (
                context.span_id,
                tuple(trace.context_attributes.items()),
                getattr(otel_span, "end_time", None),
            )

    def root_facts(self, trace_id: int) -> RootFacts | None:
        """What this process knows of `trace_id`'s outermost Rollout span: its span id,
        its context attributes (user, session, agent, ...) and its end (ns, once ended)."""
        root = self._roots.get(trace_id)
        if root is None:
            return None
        if isinstance(root, tuple):
            return root[0], dict(root[1]), root[2]
        return root.otel_span.get_span_context().span_id, dict(root.context_attributes), None

    def _open_root(self, trace_id: int) -> Trace | None:
        root = self._roots.get(trace_id)
        return None if root is None or isinstance(root, tuple) else root

    def trace_id_for(self, external_trace_id: str) -> str | None:
        """The OTel trace id this process recorded for an external trace id, if known."""
        return self._external_ids.get(external_trace_id)

    def target(
        self, what: str, trace_id: str | int | None, external_trace_id: str | None
    ) -> tuple[Trace | None, int | None]:
        """The trace to record on: (an open trace, None) or (None, an ended trace's id).

        (None, None) when there is none; a debug line says why.
        """
        if trace_id is None and external_trace_id is None:
            trace = current_trace()
            if trace is None:
                debug_once(f"no-trace-{what}", "mv37.rollout: %s() with no active trace", what)
            return trace, None
        if trace_id is None and external_trace_id is not None:
            trace_id = self.trace_id_for(str(external_trace_id))
            if trace_id is None:
                debug_once(
                    f"unknown-external-{what}",
                    "mv37.rollout: %s() for an external_trace_id this process did not record; "
                    "pass the OTel trace_id instead",
                    what,
                )
                return None, None
        try:
            number = parse_trace_id(trace_id) if trace_id is not None else None
        except ValueError:
            number = None
        if number is None:
            debug_once(f"bad-trace-id-{what}", "mv37.rollout: %s(): invalid trace_id", what)
            return None, None
        open_trace = self._open_root(number)  # the outermost Rollout trace of that OTel trace
        if open_trace is not None and not open_trace.ended:
            return open_trace, None
        active = current_trace()
        if active is not None and active.otel_span.get_span_context().trace_id == number:
            return active, None
        return None, number
