"""Shared fixtures: a captured client per test, the registry check on its spans, and an
OTLP receiver over real HTTP (started for one test, or bound then stopped for a dead URL)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from mv37.rollout import _global, semconv
from mv37.rollout.base import _diagnostics
from mv37.rollout.testing import (
    CapturedSpans,
    OTLPReceiver,
    capture_spans,
    reset_global_tracer_provider,
)

os.environ["MV37_ROLLOUT_RAISE_INTERNAL"] = "1"
_SERVERLESS = ("AWS_LAMBDA_FUNCTION_NAME", "FUNCTION_TARGET", "FUNCTIONS_WORKER_RUNTIME")
for _name in list(os.environ):
    if _name.startswith(("ROLLOUT_", "OTEL_")) or _name in _SERVERLESS:
        del os.environ[_name]
# GenAI metrics are on by default and post to /v1/metrics beside the spans; the delivery
# tests count requests and log lines exactly, so the suite runs with them off and the
# metrics tests (tests/test_metrics*.py) switch them back on (`metrics_on`).
os.environ["ROLLOUT_METRICS"] = "false"


@pytest.fixture
def metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """GenAI metrics as a user gets them: `ROLLOUT_METRICS` unset (default on)."""
    monkeypatch.delenv("ROLLOUT_METRICS", raising=False)


def assert_registered(captured: CapturedSpans) -> None:
    """Every attribute and event our scope emitted is listed in `semconv/`."""
    for span in captured.exporter.get_finished_spans():
        scope = span.instrumentation_scope.name if span.instrumentation_scope else ""
        keys = set(span.attributes or {})
        if scope != "mv37.rollout":
            keys = {k for k in keys if k.startswith("rollout.")}
        for key in keys:
            assert semconv.is_registered_attribute(key), f"unregistered attribute {key!r}"
        if scope != "mv37.rollout":
            continue
        for event in span.events:
            assert semconv.is_registered_event(event.name), f"unregistered event {event.name!r}"
            for key in event.attributes or {}:
                assert semconv.is_registered_attribute(key), (
                    f"unregistered attribute {key!r} on event {event.name!r}"
                )


@pytest.fixture(autouse=True)
def _clean_global_state() -> Iterator[None]:
    """Each test starts with no client, no global provider and fresh diagnostics."""
    _global.reset()
    reset_global_tracer_provider()
    _diagnostics.reset_diagnostics()
    _sdk_logger = logging.getLogger("mv37.rollout")
    _sdk_logger.setLevel(logging.NOTSET)
    _sdk_logger.handlers.clear()
    yield
    _global.reset()
    reset_global_tracer_provider()


@pytest.fixture
def captured() -> Iterator[CapturedSpans]:
    """A client exporting synchronously into memory; its spans are checked against semconv."""
    with capture_spans() as spans:
        yield spans
        assert_registered(spans)


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    """An `OTLPReceiver` on 127.0.0.1, listening for the whole test."""
    with OTLPReceiver() as server:
        yield server


@pytest.fixture
def dead_url() -> str:
    """The URL of a port nothing listens on (a receiver bound, then stopped)."""
    server = OTLPReceiver().start()
    server.stop()
    return server.url
