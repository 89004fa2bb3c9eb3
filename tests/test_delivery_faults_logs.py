"""What leaves and what is logged when the collector fails: the API key only ever leaves in
the Authorization header (never in a body, a log record or a repr), and a failing
collector is logged once per destination at warning, the rest at debug.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout
from mv37.rollout.testing import OTLPReceiver

if TYPE_CHECKING:
    from tests import delivery_faults_helpers as faults
else:
    import delivery_faults_helpers as faults


# -- the API key stays in the Authorization header ---------------------------------------------


def test_the_api_key_only_ever_leaves_in_the_authorization_header(
    receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    faults.export_timeout(monkeypatch, faults.FAIL_FAST_MS)
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records
    client = rollout.init(
        base_url=receiver.url, api_key=faults.KEY, console=False, flush_interval=60.0, debug=True
    )
    receiver.respond_with(500)  # a refused export
    with pytest.raises(faults.Boom):
        faults.solver(-1)  # an exception inside a tool, recorded on its span
    assert rollout.flush(timeout=5.0) is False
    receiver.stop()  # an export that cannot connect
    assert faults.solver(2) == faults.expected(2)
    assert rollout.flush(timeout=5.0) is False
    receiver.start()
    assert faults.solver(3) == faults.expected(3)
    assert rollout.flush(timeout=5.0) is True
    assert client.check(verbose=True).ok
    stats = rollout.stats()
    assert stats.export_failures == 2

    requests = receiver.requests
    assert len(requests) >= 3
    for request in requests:
        assert request.headers["authorization"] == f"Bearer {faults.KEY}"
        assert faults.KEY.encode() not in request.body
        assert faults.KEY.encode() not in request.raw_body
        others = {k: v for k, v in request.headers.items() if k != "authorization"}
        assert faults.KEY not in repr(others)
    # Once per request, in its authorization header line, and nowhere else.
    assert receiver.all_bytes().count(faults.KEY.encode()) == len(requests)

    # The failures were logged (debug is on), and no record carries the key.
    assert any(r.name.startswith("mv37.rollout") for r in caplog.records)
    assert any(r.name.startswith("opentelemetry.exporter") for r in caplog.records)
    for record in caplog.records:
        assert faults.KEY not in record.getMessage(), record.name
        assert faults.KEY not in repr(record.args), record.name
        assert faults.KEY not in (record.exc_text or ""), record.name
    assert faults.KEY not in caplog.text
    out, err = capsys.readouterr()
    assert faults.KEY not in out
    assert faults.KEY not in err
    assert faults.KEY not in repr(rollout.get_client())
    assert faults.KEY not in repr(client.config)
    assert faults.KEY not in str(client.config)
    assert faults.KEY not in repr(client.destination)
    assert faults.KEY not in repr(stats)


# -- what the exporter logs ----------------------------------------------------------------------


EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
EXPORT_THREAD = "mv37-rollout-export"


def warnings_from(caplog: pytest.LogCaptureFixture, prefix: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(prefix) and r.levelno >= logging.WARNING]


@pytest.mark.parametrize("delivery", ["batch", "sync_mode"])
@pytest.mark.parametrize("mode", faults.MODES)
async def test_a_failing_collector_logs_one_warning_naming_the_url_the_rest_at_debug(
    receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    delivery: str,
) -> None:
    faults.export_timeout(monkeypatch, faults.FAIL_FAST_MS)
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records
    sync_mode = delivery == "sync_mode"
    client = rollout.init(
        base_url=receiver.url,
        api_key=faults.KEY,
        console=False,
        flush_interval=60.0,
        sync_mode=sync_mode,
    )
    # Six 503s, retried at once: the exporter warns five times, then gives up (an error).
    receiver.respond_with(*[503] * 6, retry_after="0")
    assert await faults.run(mode, 1) == faults.expected(1)
    assert await faults.flush(mode, 5.0) is False
    receiver.stop()  # then nothing listens: an error per export
    assert await faults.run(mode, 2) == faults.expected(2)
    assert await faults.flush(mode, 5.0) is False
    stats = client.stats()
    # sync_mode: the first span took the six 503s, its two parents were accepted.
    assert stats.export_failures == (1 + faults.SPANS_PER_RUN if sync_mode else 2)
    assert stats.spans_exported == (2 if sync_mode else 0)
    assert faults.accounted(stats) == stats.spans_started == 2 * faults.SPANS_PER_RUN

    [warning] = warnings_from(caplog, "mv37.rollout")  # one, for all those failures
    message = warning.getMessage()
    assert message == (
        f"mv37.rollout: exporting spans to {receiver.endpoint} failed, HTTP 503 Service "
        "Unavailable. The collector (or a proxy in front of it) is unavailable or overloaded. "
        "Retried until the export timeout (OTEL_EXPORTER_OTLP_TIMEOUT, 10 s by default); spans "
        "still undelivered then are dropped and counted in stats() (export_failures, "
        "spans_failed). Logged once for this client; "
        f"later failures go to debug level (logger {EXPORTER_LOGGER}); rollout.check() or "
        "`python -m mv37.rollout check` tests the destination."
    )
    assert faults.KEY not in message
    assert warnings_from(caplog, "opentelemetry") == []
    # The exporter's own records are still there, at debug level, from where we export.
    exporter_records = [r for r in caplog.records if r.name == EXPORTER_LOGGER]
    assert {r.levelno for r in exporter_records} == {logging.DEBUG}
    assert sum("Transient error" in r.getMessage() for r in exporter_records) == 5
    failed = [r for r in exporter_records if r.getMessage().startswith("Failed to export")]
    assert len(failed) == stats.export_failures
    ours = threading.current_thread().name if sync_mode else EXPORT_THREAD
    assert {r.threadName for r in exporter_records} == {ours}


@pytest.mark.parametrize("mode", faults.MODES)
async def test_each_client_warns_once_about_its_own_destination(
    receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    # Default levels: nothing of the exporter's reaches a handler; ours warn once each.
    faults.export_timeout(monkeypatch, faults.HOLD_MS)
    receiver.respond_with(500, 500, 500, 500)  # refused, not retried
    with OTLPReceiver() as other:
        other.respond_with(500, 500)
        first = rollout.init(base_url=receiver.url, console=False, flush_interval=60.0)
        for n in (1, 2):
            assert await faults.run(mode, n) == faults.expected(n)
            assert await faults.flush(mode, 5.0) is False
        second = rollout.init(base_url=other.url, console=False, flush_interval=60.0)
        for n in (3, 4):
            assert await faults.run(mode, n) == faults.expected(n)
            assert await faults.flush(mode, 5.0) is False
    assert (first.stats().export_failures, second.stats().export_failures) == (2, 2)
    warned = [(r.name, r.levelno) for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == [("mv37.rollout", logging.WARNING)] * 2, caplog.text
    assert receiver.endpoint in caplog.records[0].getMessage()
    assert other.endpoint in caplog.records[1].getMessage()


def user_spans() -> tuple[ReadableSpan, ...]:
    """Spans of the user's own, made with a provider of their own."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("user.app").start_as_current_span("user work"):
        pass
    provider.shutdown()
    return memory.get_finished_spans()


@pytest.mark.parametrize("delivery", ["batch", "sync_mode"])
@pytest.mark.parametrize("mode", faults.MODES)
async def test_a_users_own_exporter_still_warns_as_before(
    receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    delivery: str,
) -> None:
    faults.export_timeout(monkeypatch, faults.HOLD_MS)
    caplog.set_level(logging.DEBUG)
    rollout.init(
        base_url=receiver.url,
        api_key=faults.KEY,
        console=False,
        flush_interval=60.0,
        sync_mode=delivery == "sync_mode",
    )
    receiver.respond_with(503, retry_after="0")  # ours: one transient error, then accepted
    assert await faults.run(mode, 1) == faults.expected(1)
    assert await faults.flush(mode, 5.0) is True
    faults.assert_runs(receiver.wait_for_spans(faults.SPANS_PER_RUN), mode, [1])

    with OTLPReceiver() as theirs:
        exporter = OTLPSpanExporter(endpoint=theirs.endpoint, timeout=8)
        results: list[SpanExportResult] = []
        # Their exporter, in a thread of theirs and in this one (where sync_mode exports).
        theirs.respond_with(503, retry_after="0")
        thread = threading.Thread(
            target=lambda: results.append(exporter.export(user_spans())), name="user-export"
        )
        thread.start()
        thread.join(10.0)
        assert not thread.is_alive()
        theirs.respond_with(503, retry_after="0")
        results.append(exporter.export(user_spans()))
        exporter.shutdown()  # type: ignore[no-untyped-call]
        assert results == [SpanExportResult.SUCCESS] * 2
        assert [s.name for s in theirs.wait_for_spans(2)] == ["user work"] * 2

    theirs_warned = warnings_from(caplog, "opentelemetry")
    assert [(r.name, r.threadName) for r in theirs_warned] == [
        (EXPORTER_LOGGER, "user-export"),
        (EXPORTER_LOGGER, threading.current_thread().name),
    ]
    assert all("Transient error" in r.getMessage() for r in theirs_warned)
    [ours] = warnings_from(caplog, "mv37.rollout")
    assert receiver.endpoint in ours.getMessage()
