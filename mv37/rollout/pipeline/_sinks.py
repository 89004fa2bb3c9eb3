"""Feedback sinks: each feedback and signal also goes where LLM teams look for it.

Phoenix (annotations), Langfuse (scores) and MLflow (assessments) read feedback from
their own APIs, not from span events. So every `rollout.feedback` / `rollout.signal`
event that leaves in an exported span — live on a trace, or on a late carrier span, from
this process or another — becomes an `Outcome`, handed to a `SinkWorker` that posts it
to each sink (`_sinks_http.py`) from its own thread:

- after the trace's own spans: the export chain hands it over once the batch holding the
  event's span was exported (`SinkTap`), so the backend has (or is ingesting) the trace;
- never blocking the caller, never raising, with OTel instrumentation suppressed;
- retried with backoff while the answer says "not yet" (trace not ingested: 404), the
  server is busy (408/429/5xx) or unreachable, within `RETRY_WINDOW` seconds;
- counted in `stats().feedback_sent` / `feedback_failed` per sink; the first failure of
  each sink is one WARNING with its cause;
- bounded: at most `max_queue_events` waiting; `flush()` waits for them, `shutdown()`
  within `shutdown_timeout` (what is left counts as failed).

Example:
    >>> split_value({"label": "good", "score": 4, "explanation": "fast", "by": "qa"})
    Verdict(score=4.0, label='good', explanation='fast', rest={'by': 'qa'}, boolean=None)
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from mv37.rollout import semconv as sc
from mv37.rollout.base._diagnostics import internal_error, log_once
from mv37.rollout.pipeline._exporters import WrapperExporter
from mv37.rollout.pipeline._suppress import suppressed

if TYPE_CHECKING:
    from mv37.rollout.pipeline._stats import Counters

RETRY_WINDOW = 30.0
"""Seconds a feedback keeps being retried after its first attempt (Phoenix and MLflow
answer 404 until they have ingested the trace; servers restart)."""
MAX_ATTEMPTS = 10
FIRST_BACKOFF = 0.25
MAX_BACKOFF = 4.0

_OUTCOME_EVENTS = {
    sc.EVENT_ROLLOUT_FEEDBACK: ("feedback", sc.ROLLOUT_FEEDBACK_NAME, sc.ROLLOUT_FEEDBACK_VALUE),
    sc.EVENT_ROLLOUT_SIGNAL: ("signal", sc.ROLLOUT_SIGNAL_NAME, sc.ROLLOUT_SIGNAL_VALUE),
}
_CARRIER_TYPES = ("feedback", "signal")
_ATTRIBUTES_PREFIX = sc.ROLLOUT_ATTRIBUTES + "."


@dataclass(frozen=True)
class Outcome:
    """One feedback or signal, as exported.

    Attributes:
        kind: "feedback" (from a person) or "signal" (from code).
        name: Its name (`thumbs_up`, `csat`, ...).
        value: bool, number, string, or a dict/list (decoded from its JSON text).
        trace_id: The OTel trace id, 32 hex.
        span_id: The span it is about, 16 hex: the trace's span for live feedback, the
            carrier's parent (the trace's root) for late feedback; None when unknown.
        user_id: The `user.id` of the span that carried it, if any.
        time_ns: When it was given (the event's time).
        attributes: The caller's `attributes=` (without the `rollout.attributes.` prefix).
        key: A stable id (same event, same key): sinks upsert on it, so a retry never
            duplicates.
    """

    kind: str
    name: str
    value: object
    trace_id: str
    span_id: str | None
    user_id: str | None
    time_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)
    key: str = ""


def _decoded(raw: object) -> object:
    """An event value: dicts and lists were written as JSON text; read them back."""
    if isinstance(raw, str) and raw[:1] in ("{", "["):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    if isinstance(raw, tuple):
        return list(raw)
    return raw


def outcomes_in(spans: Sequence[ReadableSpan]) -> list[Outcome]:
    """The feedback and signals carried by `spans` (their `rollout.feedback`/`signal` events)."""
    found: list[Outcome] = []
    for span in spans:
        if not span.events or span.context is None:
            continue
        attrs = span.attributes or {}
        own_id = span.context.span_id
        if attrs.get(sc.ROLLOUT_SPAN_TYPE) in _CARRIER_TYPES:
            about = span.parent.span_id if span.parent is not None else None
        else:
            about = own_id
        user = attrs.get(sc.USER_ID) or attrs.get(sc.ROLLOUT_USER_ID)
        trace_id = format(span.context.trace_id, "032x")
        for event in span.events:
            known = _OUTCOME_EVENTS.get(event.name)
            if known is None:
                continue
            kind, name_key, value_key = known
            event_attrs = event.attributes or {}
            name = str(event_attrs.get(name_key, ""))
            extra = {
                key[len(_ATTRIBUTES_PREFIX) :]: _decoded(value)
                for key, value in event_attrs.items()
                if key.startswith(_ATTRIBUTES_PREFIX)
            }
            seed = f"{trace_id}:{own_id:016x}:{event.timestamp}:{kind}:{name}"
            found.append(
                Outcome(
                    kind=kind,
                    name=name,
                    value=_decoded(event_attrs.get(value_key)),
                    trace_id=trace_id,
                    span_id=format(about, "016x") if about else None,
                    user_id=str(user) if user else None,
                    time_ns=event.timestamp or time.time_ns(),
                    attributes=extra,
                    key=hashlib.sha256(seed.encode()).hexdigest()[:32],
                )
            )
    return found


@dataclass(frozen=True)
class Verdict:
    """A value the way annotation APIs want it: score, label, explanation, the rest.

    bool → score 1/0 and label "true"/"false" (`boolean` keeps it); number → score;
    string → label; a dict's `score`/`label`/`explanation` keys, the other keys in
    `rest`; anything else → `rest["value"]`.
    """

    score: float | None
    label: str | None
    explanation: str | None
    rest: dict[str, Any]
    boolean: bool | None


def split_value(value: object) -> Verdict:
    """`value` as a `Verdict` (see its docstring)."""
    if isinstance(value, bool):
        return Verdict(1.0 if value else 0.0, "true" if value else "false", None, {}, value)
    if isinstance(value, (int, float)):
        return Verdict(float(value), None, None, {}, None)
    if isinstance(value, str):
        return Verdict(None, value, None, {}, None)
    if isinstance(value, dict):
        rest = dict(value)
        raw_score = rest.pop("score", None)
        score, boolean = None, None
        if isinstance(raw_score, bool):
            score, boolean = (1.0 if raw_score else 0.0), raw_score
        elif isinstance(raw_score, (int, float)):
            score = float(raw_score)
        elif raw_score is not None:
            rest["score"] = raw_score  # not a number: kept as is
        label, explanation = rest.pop("label", None), rest.pop("explanation", None)
        return Verdict(
            score,
            None if label is None else str(label),
            None if explanation is None else str(explanation),
            rest,
            boolean,
        )
    return Verdict(None, None, None, {} if value is None else {"value": value}, None)


# -- sinks ------------------------------------------------------------------------------

Outcome_ = Literal["ok", "retry", "fail"]


@dataclass(frozen=True)
class Reply:
    """What one attempt at a sink came to: `ok`, `retry` (not yet, busy, unreachable)
    or `fail` (refused), with the cause in words; `ambiguous` when the request may have
    been applied although no answer said so (a timeout, a 5xx)."""

    result: Outcome_
    cause: str = ""
    ambiguous: bool = False


class Sink(Protocol):
    """One backend's feedback API (`_sinks_http.py`)."""

    name: str
    title: str
    where: str

    def send(self, session: Any, outcome: Outcome, attempt: int, ambiguous: bool) -> Reply:
        """Post `outcome` (attempt 1, 2, ...; `ambiguous`: an earlier one may have landed)."""
        ...


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    sink: Sink = field(compare=False)
    outcome: Outcome = field(compare=False)
    attempt: int = field(default=1, compare=False)
    first: float = field(default=0.0, compare=False)
    ambiguous: bool = field(default=False, compare=False)


class SinkWorker:
    """Posts outcomes to the sinks from one daemon thread (started on first use)."""

    def __init__(self, sinks: Sequence[Sink], counters: Counters, max_jobs: int) -> None:
        self.sinks = tuple(sinks)
        self.counters = counters
        self.max_jobs = max_jobs
        for sink in self.sinks:
            counters.add_sink(sink.name)
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._jobs: list[_Job] = []
        self._seq = itertools.count()
        self._busy = 0
        self._thread: threading.Thread | None = None
        self._stopped = False

    # -- the exporting side -------------------------------------------------------------

    def offer(self, outcomes: Sequence[Outcome]) -> None:
        """Queue `outcomes` for every sink; never blocks on the network, never raises."""
        if not outcomes or not self.sinks:
            return
        if self._pid != os.getpid():
            self._reset()  # a forked child: the parent's thread and jobs are not its own
        now = time.monotonic()
        refused: list[Sink] = []
        with self._cond:
            for outcome in outcomes:
                for sink in self.sinks:
                    if self._stopped or len(self._jobs) >= self.max_jobs:
                        refused.append(sink)
                        continue
                    heapq.heappush(self._jobs, _Job(now, next(self._seq), sink, outcome, 1, now))
            self._start()
            self._cond.notify_all()
        for sink in refused:
            self._failed(
                sink,
                "client shut down"
                if self._stopped
                else "the feedback queue is full (max_queue_events)",
            )

    def _start(self) -> None:
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(
                target=self._run, name="mv37.rollout feedback sinks", daemon=True
            )
            self._thread.start()

    # -- the worker ---------------------------------------------------------------------

    def _run(self) -> None:
        session: Any = None
        while True:
            with self._cond:
                while True:
                    if self._stopped and not self._jobs:
                        return
                    if self._jobs:
                        wait = self._jobs[0].due - time.monotonic()
                        if wait <= 0:
                            job = heapq.heappop(self._jobs)
                            self._busy += 1
                            break
                    else:
                        wait = None
                    if self._stopped:
                        return
                    self._cond.wait(wait)
            try:
                if session is None:
                    import requests

                    session = requests.Session()
                self._attempt(session, job)
            except Exception as exc:
                internal_error("feedback sink", exc)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _attempt(self, session: Any, job: _Job) -> None:
        with suppressed():  # our POSTs never become spans
            try:
                reply = job.sink.send(session, job.outcome, job.attempt, job.ambiguous)
            except Exception as exc:
                reply = Reply("fail", f"{type(exc).__name__}: {exc}")
        if reply.result == "ok":
            self.counters.add_feedback(job.sink.name, True)
            return
        now = time.monotonic()
        if reply.result == "retry":
            backoff = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (job.attempt - 1))
            if job.attempt < MAX_ATTEMPTS and now + backoff - job.first <= RETRY_WINDOW:
                job.due, job.attempt = now + backoff, job.attempt + 1
                job.ambiguous = job.ambiguous or reply.ambiguous
                with self._cond:
                    if not self._stopped:
                        heapq.heappush(self._jobs, job)
                        return
                self._failed(job.sink, f"{reply.cause} (client shut down while retrying)")
                return
            self._failed(
                job.sink,
                f"{reply.cause} (still, after {job.attempt} tries in {now - job.first:.0f} s)",
            )
            return
        self._failed(job.sink, reply.cause)

    def _failed(self, sink: Sink, cause: str) -> None:
        self.counters.add_feedback(sink.name, False)
        log_once(
            f"feedback-sink-{sink.name}",
            logging.WARNING,
            "mv37.rollout: feedback could not be sent to %s (%s): %s. It stays on the trace's "
            "spans; counted in stats().feedback_failed[%r]. Logged once.",
            sink.title,
            sink.where,
            cause,
            sink.name,
        )

    # -- lifecycle ----------------------------------------------------------------------

    def pending(self) -> int:
        """(outcome, sink) jobs waiting or being sent."""
        with self._cond:
            return len(self._jobs) + self._busy

    def flush(self, timeout: float) -> bool:
        """Wait until every queued outcome was sent or given up, at most `timeout` s."""
        if self._pid != os.getpid():
            return True
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._jobs:
                self._start()
                # Retries waiting for their backoff go now: a flush is a deadline.
                now = time.monotonic()
                for job in self._jobs:
                    job.due = min(job.due, now)
                heapq.heapify(self._jobs)
                self._cond.notify_all()
            while self._jobs or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def shutdown(self, timeout: float) -> None:
        """Flush within `timeout`, then stop; what is left counts as failed."""
        self.flush(timeout)
        with self._cond:
            self._stopped = True
            left, self._jobs = self._jobs, []
            self._cond.notify_all()
        for job in left:
            self._failed(job.sink, "unsent at shutdown (shutdown_timeout)")


class SinkTap(WrapperExporter):
    """In the destination's export chain: once a batch was exported, its feedback and
    signals go to the `SinkWorker` (so the backend has the trace's spans first)."""

    def __init__(self, wrapped: SpanExporter, worker: SinkWorker) -> None:
        super().__init__(wrapped)
        self.worker = worker

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.wrapped.export(spans)
        try:
            self.worker.offer(outcomes_in(spans))
        except Exception as exc:
            internal_error("feedback sink", exc)
        return result


class SinkProcessor(SpanProcessor):
    """With no destination exporter to tap: hands ended spans' outcomes to the worker."""

    def __init__(self, worker: SinkWorker) -> None:
        self.worker = worker

    def on_end(self, span: ReadableSpan) -> None:
        if span.events:
            try:
                self.worker.offer(outcomes_in([span]))
            except Exception as exc:
                internal_error("feedback sink", exc)

    def shutdown(self) -> None:
        """The pipeline stops the worker."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.worker.flush(timeout_millis / 1000)
