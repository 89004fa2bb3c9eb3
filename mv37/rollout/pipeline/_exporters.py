"""The exporter chain: one-job `SpanExporter` wrappers around the real exporter.

An export processor (the queue, or `sync_mode`'s processor) hands each batch to the head
of a chain composed by `_pipeline.export_chain`; each link does one job and passes the
spans on to the next, as OTel exporters (and Logfire's `WrapperSpanExporter`) do:

- `PrivacyExporter`: default scrubbing, `scrubber`, `before_send` (`_privacy.py`);
- `CountingExporter`: counts the spans exported or failed and lands them from in flight;
- `QuietLogExporter`: the OTel OTLP exporter logs a WARNING for every retry and an ERROR
  for every failed export; those it logs during this link's exports (`ExportLog`) do not
  reach the user's handlers at that level: the first one per client becomes one WARNING
  on `mv37.rollout` naming the endpoint, the HTTP status or connection error, a hint,
  and whether it is retried (`_failures`), and all of them are passed on at DEBUG. Its
  records from any other work (a user's own exporter, `check()`) are left alone;
- `SuppressingExporter`: our POSTs must not become spans (`_suppress.py`).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Sequence
from contextvars import ContextVar

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from mv37.rollout.base._diagnostics import debug_once, internal_error, logger
from mv37.rollout.pipeline._failures import (
    Attempt,
    Failure,
    current_attempts,
    describe_failure,
    recording_attempts,
)
from mv37.rollout.pipeline._privacy import PrivacyStage
from mv37.rollout.pipeline._stats import Counters, InFlight
from mv37.rollout.pipeline._suppress import suppressed


class WrapperExporter(SpanExporter):
    """A link of the chain: holds the next exporter and forwards to it.

    Subclasses override `export` to do their one job around `self.wrapped.export`.
    """

    def __init__(self, wrapped: SpanExporter) -> None:
        self.wrapped = wrapped

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Pass `spans` on."""
        return self.wrapped.export(spans)

    def shutdown(self) -> None:
        """Shut the next exporter down."""
        self.wrapped.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the next exporter."""
        return self.wrapped.force_flush(timeout_millis)


class PrivacyExporter(WrapperExporter):
    """Passes on the spans `privacy` keeps, scrubbed; the ones it drops land from flight."""

    def __init__(self, wrapped: SpanExporter, privacy: PrivacyStage, flight: InFlight) -> None:
        super().__init__(wrapped)
        self._privacy = privacy
        self._flight = flight

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Scrub `spans` and pass on what is kept (dropped ones are counted `scrubbed`)."""
        kept = self._privacy.process(spans)
        self._flight.land(len(spans) - len(kept))
        if not kept:
            return SpanExportResult.SUCCESS
        return self.wrapped.export(kept)


class CountingExporter(WrapperExporter):
    """Counts how each export ended (`Counters`), then lands its spans from `flight`.

    An exception from the exporter is an internal error and a failed export: it never
    reaches the processor.
    """

    def __init__(self, wrapped: SpanExporter, counters: Counters, flight: InFlight) -> None:
        super().__init__(wrapped)
        self._counters = counters
        self._flight = flight

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export `spans` (counted in flight by the processor) and count how it ended."""
        count = len(spans)
        try:
            try:
                result = self.wrapped.export(spans)
            except Exception as exc:
                internal_error("export", exc)
                result = SpanExportResult.FAILURE
            if result is SpanExportResult.SUCCESS:
                self._counters.add_exported(count)
                return result
            self._counters.add_failed(count)
            debug_once(
                "export-failed",
                "mv37.rollout: an export of %d spans failed (counted in stats().export_failures)",
                count,
            )
            return SpanExportResult.FAILURE
        finally:
            self._flight.land(count)


class QuietLogExporter(WrapperExporter):
    """While it exports, the exporter's warnings and errors go to `log` (see `ExportLog`)."""

    def __init__(self, wrapped: SpanExporter, log: ExportLog) -> None:
        super().__init__(wrapped)
        self._log = log

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Pass `spans` on with `_EXPORTING` set to our log, noting each POST's outcome."""
        token = _EXPORTING.set(self._log)
        try:
            with recording_attempts():
                return self.wrapped.export(spans)
        finally:
            _EXPORTING.reset(token)


class SuppressingExporter(WrapperExporter):
    """Exports with OTel instrumentation suppressed, so our POSTs never become spans."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Pass `spans` on under `suppressed()`."""
        with suppressed():
            return self.wrapped.export(spans)


# -- the exporter's log -------------------------------------------------------------------

EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.common.http",
)
"""The loggers the OTel OTLP/HTTP span exporter reports retries and failures on."""


class ExportLog:
    """What the OTel exporter says while exporting one client's spans to `endpoint`.

    Its first WARNING-or-worse record becomes one WARNING on `mv37.rollout` naming the
    endpoint (credentials removed by the caller) and why the export failed (`_failures`);
    every such record is passed on at DEBUG on its own logger (shown only where that
    logger is enabled for DEBUG).
    """

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._seen = itertools.count()  # `next` is atomic: no lock to be held at a fork
        install_exporter_log_filter()

    def demote(self, record: logging.LogRecord, attempt: Attempt | None = None) -> None:
        """Report `record` (WARNING or worse) our way; `attempt` is the POST it is about."""
        if next(self._seen) == 0:
            if attempt is not None:
                failure = describe_failure(attempt, self.endpoint)
            else:
                failure = Failure(f"the exporter said {record.getMessage()!r}", "", False)
            logger.warning(failure_message(self.endpoint, failure, record.name))
        source = logging.getLogger(record.name)
        if source.isEnabledFor(logging.DEBUG):
            quiet = logging.makeLogRecord(record.__dict__)
            quiet.levelno, quiet.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
            source.handle(quiet)  # passes the filter: below WARNING


def sentence(text: str) -> str:
    """`text` with a capital first letter and a final stop (unless it asks a question)."""
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith(("?", ".")) else text + "."


def failure_message(endpoint: str, failure: Failure, source: str) -> str:
    """The one warning a client logs when exporting to its destination fails."""
    hint = f" {sentence(failure.hint)}" if failure.hint else ""
    if failure.retried:
        fate = (
            "Retried until the export timeout (OTEL_EXPORTER_OTLP_TIMEOUT, 10 s by default); "
            "spans still undelivered then are dropped and counted in stats() "
            "(export_failures, spans_failed)."
        )
    else:
        fate = (
            "Not retried: the batch is dropped and counted in stats() "
            "(export_failures, spans_failed)."
        )
    return (
        f"mv37.rollout: exporting spans to {endpoint} failed, {failure.what}.{hint} {fate} "
        f"Logged once for this client; later failures go to debug level (logger {source}); "
        "rollout.check() or `python -m mv37.rollout check` tests the destination."
    )


_EXPORTING: ContextVar[ExportLog | None] = ContextVar("mv37_rollout_exporting", default=None)
"""Set by `QuietLogExporter` around its exports (worker thread or, in sync_mode, the
caller's): the exporter's records logged meanwhile are ours to report."""


class _OwnExportRecords(logging.Filter):
    """On the exporter's loggers: hands its WARNING+ records from our exports to `ExportLog`."""

    def filter(self, record: logging.LogRecord) -> bool:
        log = _EXPORTING.get()
        if log is None or record.levelno < logging.WARNING:
            return True
        try:
            attempts = current_attempts()
            log.demote(record, attempts.last if attempts is not None else None)
        except Exception as exc:
            internal_error("exporter log", exc)
        return False


_FILTER = _OwnExportRecords()
_FILTER_LOCK = threading.Lock()


def install_exporter_log_filter() -> None:
    """Put our filter on the exporter's loggers, once (idempotent, thread-safe).

    It changes no logger's level or handlers, and passes every record logged outside our
    own export calls unchanged.
    """
    with _FILTER_LOCK:
        for name in EXPORTER_LOGGERS:
            source = logging.getLogger(name)
            if _FILTER not in source.filters:
                source.addFilter(_FILTER)
