"""`check()`: send one diagnostic trace through the real exporter and say what happened.

Example:
    >>> import mv37.rollout as rollout
    >>> rollout.init(base_url="http://localhost:4318")  # doctest: +SKIP
    >>> rollout.check()  # doctest: +SKIP
    mv37.rollout check: OK, 2 spans accepted by http://localhost:4318/v1/traces (trace 5b8e…)
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from mv37.rollout.pipeline._destination import Destination, build_otlp_exporter
from mv37.rollout.pipeline._exporters import EXPORTER_LOGGERS, sentence
from mv37.rollout.pipeline._failures import Failure, describe_failure
from mv37.rollout.pipeline._suppress import suppressed
from mv37.rollout.vocabulary._attributes import TRACE, type_attributes

if TYPE_CHECKING:
    from mv37.rollout.base._config import RolloutConfig

_PREFIX = "mv37.rollout check:"


@dataclass(frozen=True)
class CheckResult:
    """What `check()` found. Truthy when the destination accepted every span.

    Attributes:
        ok: The destination accepted every diagnostic span.
        accepted: Spans accepted.
        rejected: Spans the destination rejected (OTLP partial success) or never got.
        errors: Reasons, one per problem.
        message: The one line `check(verbose=True)` prints.
        endpoint: Where it was sent (credentials removed), or None.
        trace_id: The diagnostic trace's id (32 hex), to look it up in your backend.
    """

    ok: bool
    accepted: int
    rejected: int
    errors: tuple[str, ...]
    message: str
    endpoint: str | None = None
    trace_id: str | None = None

    def __bool__(self) -> bool:
        return self.ok


class _ThisThreadOnly(logging.Filter):
    """Hides the exporter's own log lines for the duration of a check, in its thread."""

    def __init__(self) -> None:
        super().__init__()
        self._thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self._thread


def _diagnostic_spans(config: RolloutConfig) -> tuple[list[ReadableSpan], str]:
    from mv37.rollout.base._version import __version__
    from mv37.rollout.pipeline._pipeline import _resource
    from mv37.rollout.pipeline._processors import SCOPE

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=_resource(config), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(SCOPE, __version__)
    with tracer.start_as_current_span(
        "trace rollout.check", attributes=type_attributes(TRACE, "rollout.check")
    ) as root:
        with tracer.start_as_current_span(
            "span rollout.check.delivery", attributes=type_attributes("span", "delivery")
        ) as child:
            child.set_status(Status(StatusCode.OK))
        trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()
    return list(memory.get_finished_spans()), trace_id


def _rejections(response: Any) -> tuple[int, str]:
    """Rejected spans and message from an OTLP partial-success body (0 when none)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    body = getattr(response, "content", b"") or b""
    if not body or "json" in response.headers.get("content-type", ""):
        return 0, ""
    parsed = ExportTraceServiceResponse()
    try:
        parsed.ParseFromString(body)
    except Exception:
        return 0, ""
    partial = parsed.partial_success
    return int(partial.rejected_spans), partial.error_message


def _failure(session: Any, where: str) -> Failure:
    """Why the session's last POST failed, with the server's own words when it gave any."""
    attempt = getattr(session, "last_attempt", None)
    failure = describe_failure(attempt, where)
    if attempt is not None and attempt.status is not None:
        said = attempt.body
        if said and said not in (f"{attempt.status} {attempt.reason}", attempt.reason):
            failure = dataclasses.replace(failure, what=f"{failure.what}: {said}")
    return failure


def _failure_reason(session: Any, where: str = "") -> str:
    """The failure of the session's last POST, as one phrase (no hint)."""
    return _failure(session, where).what


def _without(secret: str | None, text: str) -> str:
    return text.replace(secret, "***") if secret else text


CHECK_TIMEOUT_S = 5.0
"""How long `check()` waits for the destination by default (retries included)."""


def check_destination(
    config: RolloutConfig,
    destination: Destination | None,
    *,
    verbose: bool = True,
    timeout: float | None = None,
) -> CheckResult:
    """Export a two-span diagnostic trace to `destination` synchronously; never raises.

    `timeout` bounds the whole attempt, the exporter's retries included (default
    `CHECK_TIMEOUT_S`, or the destination's own timeout when shorter).
    """
    if config.disabled:
        result = CheckResult(
            False, 0, 0, ("disabled",), f"{_PREFIX} FAILED, the client is disabled; nothing sent"
        )
    elif destination is None:
        result = CheckResult(
            False,
            0,
            0,
            ("no destination",),
            f"{_PREFIX} FAILED, no destination configured (set base_url, ROLLOUT_BASE_URL or "
            "OTEL_EXPORTER_OTLP_ENDPOINT); "
            + (
                "traces only print to the console"
                if config.console_enabled
                else "traces are neither printed (console is off) nor sent"
            ),
        )
    else:
        limit = min(destination.timeout, CHECK_TIMEOUT_S) if timeout is None else timeout
        try:
            result = _send(config, dataclasses.replace(destination, timeout=limit))
        except Exception as exc:  # never raises: report it instead
            reason = _without(config.api_key, f"{type(exc).__name__}: {exc}")
            result = CheckResult(
                False,
                0,
                0,
                (reason,),
                f"{_PREFIX} FAILED, {reason} ({destination.safe_endpoint})",
                destination.safe_endpoint,
            )
    if verbose:
        print(result.message, flush=True)
    return result


def _send(config: RolloutConfig, destination: Destination) -> CheckResult:
    spans, trace_id = _diagnostic_spans(config)
    where = destination.safe_endpoint
    exporter, session = build_otlp_exporter(destination)
    quiet = _ThisThreadOnly()
    loggers = [logging.getLogger(name) for name in EXPORTER_LOGGERS]
    for log in loggers:
        log.addFilter(quiet)
    try:
        with suppressed():  # the diagnostic POST must not become a span (`_suppress`)
            outcome = exporter.export(spans)
    finally:
        for log in loggers:
            log.removeFilter(quiet)
        exporter.shutdown()
    total = len(spans)
    if outcome is SpanExportResult.SUCCESS:
        rejected, why = _rejections(session.last_response)
        accepted = total - rejected
        if rejected:
            reason = _without(config.api_key, f"{rejected} of {total} spans rejected: {why}")
            return CheckResult(
                False,
                accepted,
                rejected,
                (reason,),
                f"{_PREFIX} FAILED, {reason} ({where})",
                where,
                trace_id,
            )
        return CheckResult(
            True,
            accepted,
            0,
            (),
            f"{_PREFIX} OK, {accepted} spans accepted by {where} (trace {trace_id})",
            where,
            trace_id,
        )
    failure = _failure(session, where)
    reason = _without(config.api_key, failure.what)
    hint = f" {sentence(failure.hint)}" if failure.hint else ""
    return CheckResult(
        False,
        0,
        total,
        (reason,),
        f"{_PREFIX} FAILED, {reason} ({where}).{hint}",
        where,
        trace_id,
    )
