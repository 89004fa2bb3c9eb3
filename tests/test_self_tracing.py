"""Our exports never trace themselves, with the real HTTP instrumentors installed.

With `requests` (or `urllib3`) instrumented, every POST of an export would become a span,
exported by the next POST, forever; on a user's SDK provider our POSTs would land in
their backend. Each test instruments for real, sends to an `OTLPReceiver` on 127.0.0.1,
flushes several times (flushing is the wait) and asserts that what arrived is exactly
what the agent (or `check()`) produced: no `POST` span anywhere. A user's own request
inside a tool is still traced (the suppression never leaks into user code).

All three instrumentors are in the `test` extra (the urllib3 one resolves the OTel stack
to the newest release it supports).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any, Protocol

import pytest
import requests
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout
from mv37.rollout.__main__ import main as cli_main
from mv37.rollout.testing import OTLPReceiver

INSTRUMENTORS = {
    "requests": ("opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
    "urllib3": ("opentelemetry.instrumentation.urllib3", "URLLib3Instrumentor"),
    "httpx": ("opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
}
"""Instrumentors a user (or `opentelemetry-instrument`) may have switched on."""

SETS = {"requests": ("requests",), "urllib3": ("urllib3",), "all": tuple(INSTRUMENTORS)}
"""Each case's instrumentors; `all` is what `opentelemetry-instrument` would enable."""

AGENT_SPANS = ["GET", "execute_tool fetch_status", "invoke_agent support_agent"]
"""One agent run, sorted by name: the agent, its tool and the tool's own HTTP request."""
ASYNC_AGENT_SPANS = ["GET", "execute_tool afetch_status", "invoke_agent async_support_agent"]
CHECK_SPANS = ["span rollout.check.delivery", "trace rollout.check"]


class Instrumentor(Protocol):
    """What we use of OTel's `BaseInstrumentor` (its module is `# type: ignore`d upstream)."""

    @property
    def is_instrumented_by_opentelemetry(self) -> bool: ...

    def instrument(self, **kwargs: Any) -> None: ...

    def uninstrument(self, **kwargs: Any) -> None: ...


def _available(name: str) -> bool:
    """The instrumentor and the library it instruments (named like its key) are installed."""
    try:
        importlib.import_module(INSTRUMENTORS[name][0])
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _instrumentor(name: str) -> Instrumentor:
    module, cls = INSTRUMENTORS[name]
    instrumentor: Instrumentor = getattr(importlib.import_module(module), cls)()
    return instrumentor


@pytest.fixture(params=list(SETS))
def instrumented(request: pytest.FixtureRequest) -> Iterator[str]:
    """Switch the case's real instrumentors on (globally); always off again afterwards."""
    names = [name for name in SETS[request.param] if _available(name)]
    if request.param != "all" and not names:
        pytest.skip(f"{INSTRUMENTORS[request.param][0]} is not installed")
    instrumentors = [_instrumentor(name) for name in names]
    try:
        for instrumentor in instrumentors:
            instrumentor.instrument()
            assert instrumentor.is_instrumented_by_opentelemetry, instrumentor
        yield request.param
    finally:
        for instrumentor in reversed(instrumentors):
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()


@pytest.fixture
def user_memory() -> InMemorySpanExporter:
    """A user's own SDK provider, installed globally, exporting into memory."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    otel_trace.set_tracer_provider(provider)
    return memory


@rollout.tool("fetch_status")
def fetch_status(url: str) -> int:
    return requests.get(url, timeout=5).status_code  # the user's own request: traced


@rollout.agent("support_agent")
def support_agent(url: str) -> int:
    return fetch_status(url)


@rollout.tool("afetch_status")
async def afetch_status(url: str) -> int:
    await asyncio.sleep(0)
    return requests.get(url, timeout=5).status_code


@rollout.agent("async_support_agent")
async def async_support_agent(url: str) -> int:
    return await afetch_status(url)


async def _run(mode: str, url: str) -> list[str]:
    """Run the agent once, flush; the span names that run exports, sorted."""
    if mode == "async":
        await async_support_agent(url)
        spans = ASYNC_AGENT_SPANS
    else:
        support_agent(url)
        spans = AGENT_SPANS
    assert rollout.flush()
    return spans


def _names(receiver: OTLPReceiver) -> list[str]:
    return sorted(span.name for span in receiver.spans())


def _settled(receiver: OTLPReceiver, expected: list[str], flushes: int = 3) -> None:
    """Flushing again and again sends nothing more: the receiver holds exactly `expected`."""
    for _ in range(flushes):
        assert rollout.flush()
        assert _names(receiver) == sorted(expected)


def _memory_names(memory: InMemorySpanExporter) -> list[str]:
    return sorted(span.name for span in memory.get_finished_spans())


# -- (a) our own provider -----------------------------------------------------------------


@pytest.mark.parametrize("sync_mode", [False, True], ids=["batch", "sync_mode"])
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_own_provider_receives_exactly_the_agents_spans(
    instrumented: str, receiver: OTLPReceiver, mode: str, sync_mode: bool
) -> None:
    rollout.init(base_url=receiver.url, console=False, sync_mode=sync_mode)
    expected: list[str] = []
    for _ in range(2):
        expected += await _run(mode, receiver.url + "/health")
    _settled(receiver, expected)
    assert "POST" not in _names(receiver)


@pytest.mark.parametrize("sync_mode", [False, True], ids=["batch", "sync_mode"])
def test_late_feedback_carrier_adds_only_its_own_span(
    instrumented: str, receiver: OTLPReceiver, sync_mode: bool
) -> None:
    client = rollout.init(base_url=receiver.url, console=False, sync_mode=sync_mode)
    with client.trace("conversation") as trace:
        trace_id = trace.trace_id
    assert rollout.flush()
    rollout.feedback("thumbs_up", True, trace_id=trace_id)
    _settled(receiver, ["feedback thumbs_up", "invoke_workflow conversation"])


# -- (b) a user's SDK provider ------------------------------------------------------------


@pytest.mark.parametrize("sync_mode", [False, True], ids=["batch", "sync_mode"])
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_user_provider_sees_none_of_our_posts(
    instrumented: str,
    user_memory: InMemorySpanExporter,
    receiver: OTLPReceiver,
    mode: str,
    sync_mode: bool,
) -> None:
    rollout.init(base_url=receiver.url, console=False, sync_mode=sync_mode)
    assert rollout.get_client().tracer_provider is otel_trace.get_tracer_provider()
    expected: list[str] = []
    for _ in range(2):
        expected += await _run(mode, receiver.url + "/health")
    _settled(receiver, expected)
    assert _memory_names(user_memory) == sorted(expected)


# -- (c) check(), acheck() and the CLI ------------------------------------------------------


@pytest.mark.parametrize("provider", ["own", "user"])
@pytest.mark.parametrize("caller", ["check", "acheck", "cli"])
async def test_check_sends_only_the_diagnostic_spans(
    instrumented: str, receiver: OTLPReceiver, provider: str, caller: str
) -> None:
    memory = InMemorySpanExporter()
    if provider == "user":
        user = TracerProvider(shutdown_on_exit=False)
        user.add_span_processor(SimpleSpanProcessor(memory))
        otel_trace.set_tracer_provider(user)
    rollout.init(base_url=receiver.url, console=False)
    if caller == "check":
        assert rollout.check(verbose=False).ok
    elif caller == "acheck":
        assert (await rollout.acheck(verbose=False)).ok
    else:
        assert cli_main(["check", "--base-url", receiver.url, "--quiet"]) == 0
    _settled(receiver, CHECK_SPANS)
    assert _memory_names(memory) == []


# -- the atexit flush -----------------------------------------------------------------------


def test_atexit_flush_on_a_user_provider_traces_no_post(
    instrumented: str, receiver: OTLPReceiver
) -> None:
    names = [name for name in SETS[instrumented] if _available(name)]
    script = textwrap.dedent(
        f"""
        import atexit, importlib, json
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )
        memory = InMemorySpanExporter()
        # Registered first, so it runs last: after Rollout's atexit flush.
        atexit.register(
            lambda: print(json.dumps(sorted(s.name for s in memory.get_finished_spans())))
        )
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(memory))
        trace.set_tracer_provider(provider)
        for module, cls in {[INSTRUMENTORS[name] for name in names]!r}:
            getattr(importlib.import_module(module), cls)().instrument()
        import mv37.rollout as rollout
        rollout.init(base_url={receiver.url!r}, console=False, flush_interval=60)
        with rollout.trace("main"):
            pass
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["invoke_workflow main"]
    assert _names(receiver) == ["invoke_workflow main"]
