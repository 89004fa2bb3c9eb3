"""Provider policy, console default, sampling and the flush/shutdown lifecycle.

No network: no test here sends to a `base_url`; destination tests only check the
configuration.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv.attributes import service_attributes
from opentelemetry.util.types import Attributes

import mv37.rollout as rollout
from mv37.rollout import resolve_config
from mv37.rollout import semconv as sc

if TYPE_CHECKING:
    from tests.helpers import lookup, support_agent
else:
    from helpers import lookup, support_agent


def _names(exporter: InMemorySpanExporter) -> list[str]:
    return [span.name for span in exporter.get_finished_spans()]


def _user_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


class NoOpProvider(otel_trace.TracerProvider):
    """A minimal non-SDK provider, like a vendor's or a test double."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes | None = None,
    ) -> otel_trace.Tracer:
        return otel_trace.NoOpTracer()


# -- no global provider: we install our own -------------------------------------------------


def test_init_installs_own_sdk_provider_globally() -> None:
    client = rollout.init(
        console=False,
        service_name="support-svc",
        release="1.4.2",
        environment="production",
        deployment="eu-west-1",
        agent_name="support_agent",
        agent_id="agent-7",
        agent_version="v3",
    )
    provider = otel_trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    assert provider is client.tracer_provider
    attrs = provider.resource.attributes
    assert sc.SERVICE_NAME == service_attributes.SERVICE_NAME
    assert sc.SERVICE_VERSION == service_attributes.SERVICE_VERSION
    assert sc.DEPLOYMENT_ENVIRONMENT_NAME == "deployment.environment.name"
    assert attrs[sc.SERVICE_NAME] == "support-svc"
    assert attrs[sc.SERVICE_VERSION] == "1.4.2"
    assert attrs[sc.DEPLOYMENT_ENVIRONMENT_NAME] == "production"
    assert attrs[sc.ROLLOUT_DEPLOYMENT] == "eu-west-1"
    assert attrs[sc.ROLLOUT_AGENT_NAME] == "support_agent"
    assert attrs[sc.ROLLOUT_AGENT_ID] == "agent-7"
    assert attrs[sc.ROLLOUT_AGENT_VERSION] == "v3"


def test_resource_from_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_SERVICE_NAME", "env-svc")
    monkeypatch.setenv("ROLLOUT_RELEASE", "deadbeef")
    monkeypatch.setenv("ROLLOUT_ENVIRONMENT", "staging")
    monkeypatch.setenv("ROLLOUT_AGENT_NAME", "env_agent")
    client = rollout.init(console=False)
    provider = client.tracer_provider
    assert isinstance(provider, TracerProvider)
    attrs = provider.resource.attributes
    assert attrs[sc.SERVICE_NAME] == "env-svc"
    assert attrs[sc.SERVICE_VERSION] == "deadbeef"
    assert attrs[sc.DEPLOYMENT_ENVIRONMENT_NAME] == "staging"
    assert attrs[sc.ROLLOUT_AGENT_NAME] == "env_agent"


def test_own_provider_spans_carry_the_resource() -> None:
    exporter = InMemorySpanExporter()
    rollout.init(
        span_exporters=[exporter],
        sync_mode=True,
        console=False,
        service_name="svc",
        release="r1",
    )
    assert support_agent(1) == "shipped"
    spans = exporter.get_finished_spans()
    assert {s.name for s in spans} == {"invoke_agent support_agent", "execute_tool lookup"}
    for span in spans:
        assert span.resource.attributes[sc.SERVICE_NAME] == "svc"
        assert span.resource.attributes[sc.SERVICE_VERSION] == "r1"


def test_install_global_provider_false_installs_nothing() -> None:
    exporter = InMemorySpanExporter()
    client = rollout.init(
        span_exporters=[exporter], sync_mode=True, console=False, install_global_provider=False
    )
    assert isinstance(client.tracer_provider, TracerProvider)
    global_provider = otel_trace.get_tracer_provider()
    assert not isinstance(global_provider, TracerProvider)
    assert global_provider is not client.tracer_provider
    # Our spans are still recorded, on our own provider.
    assert support_agent(2) == "shipped"
    assert "invoke_agent support_agent" in _names(exporter)


# -- a user's SDK provider installed before init() ----------------------------------------------


def test_user_sdk_provider_is_used_and_never_replaced() -> None:
    provider, exporter = _user_provider()
    otel_trace.set_tracer_provider(provider)

    client = rollout.init(console=False)
    assert client.tracer_provider is provider
    assert otel_trace.get_tracer_provider() is provider
    assert support_agent(3) == "shipped"
    assert "invoke_agent support_agent" in _names(exporter)
    assert "execute_tool lookup" in _names(exporter)

    exporter.clear()
    second = rollout.init(console=False)
    assert second.tracer_provider is provider
    assert otel_trace.get_tracer_provider() is provider
    assert support_agent(4) == "shipped"
    assert _names(exporter).count("invoke_agent support_agent") == 1

    rollout.shutdown()
    assert otel_trace.get_tracer_provider() is provider
    # We did not shut the user's provider down: their own spans still export.
    exporter.clear()
    with provider.get_tracer("user").start_as_current_span("user-span"):
        pass
    assert _names(exporter) == ["user-span"]


def test_user_provider_installed_before_init_is_used_by_decorators_without_init() -> None:
    provider, exporter = _user_provider()
    otel_trace.set_tracer_provider(provider)
    assert support_agent(5) == "shipped"
    assert "invoke_agent support_agent" in _names(exporter)


def test_rollout_trace_inside_user_span_is_its_child() -> None:
    provider, exporter = _user_provider()
    otel_trace.set_tracer_provider(provider)
    rollout.init(console=False)
    with provider.get_tracer("http").start_as_current_span("GET /support") as outer:
        support_agent(6)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    agent = spans["invoke_agent support_agent"]
    assert agent.parent is not None
    assert agent.parent.span_id == outer.get_span_context().span_id
    assert agent.context is not None
    assert agent.context.trace_id == outer.get_span_context().trace_id


# -- tracer_provider= argument -----------------------------------------------------------------


def test_tracer_provider_argument_is_used_and_nothing_global() -> None:
    provider, exporter = _user_provider()
    client = rollout.init(tracer_provider=provider, console=False)
    assert client.tracer_provider is provider
    assert not isinstance(otel_trace.get_tracer_provider(), TracerProvider)
    assert support_agent(7) == "shipped"
    assert "invoke_agent support_agent" in _names(exporter)
    rollout.shutdown()
    assert not isinstance(otel_trace.get_tracer_provider(), TracerProvider)


def test_tracer_provider_argument_wins_over_a_global_provider() -> None:
    global_provider, global_exporter = _user_provider()
    otel_trace.set_tracer_provider(global_provider)
    provider, exporter = _user_provider()
    rollout.init(tracer_provider=provider, console=False)
    support_agent(8)
    assert "invoke_agent support_agent" in _names(exporter)
    assert _names(global_exporter) == []
    assert otel_trace.get_tracer_provider() is global_provider


# -- a non-SDK global provider -----------------------------------------------------------------


def test_non_sdk_global_provider_does_not_crash() -> None:
    noop = NoOpProvider()
    otel_trace.set_tracer_provider(noop)
    client = rollout.init()
    assert otel_trace.get_tracer_provider() is noop
    assert support_agent(9) == "shipped"
    assert lookup(10) == {"order_id": 10, "status": "shipped"}
    with rollout.trace("manual") as trace:
        trace.message(role="user", content="hi")
        assert trace.is_recording is False
    assert client.flush()
    rollout.shutdown()
    assert otel_trace.get_tracer_provider() is noop


async def test_non_sdk_global_provider_async_code_runs() -> None:
    otel_trace.set_tracer_provider(NoOpProvider())
    rollout.init()

    @rollout.agent
    async def run(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    assert await run(21) == 42
    await rollout.aflush()
    await rollout.ashutdown()


# -- console default ---------------------------------------------------------------------------


def test_console_tree_printed_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    client = rollout.init()
    assert client.config.console_enabled is True
    assert support_agent(11) == "shipped"
    out = capsys.readouterr()
    assert "support_agent" in out.err
    assert "lookup" in out.err
    assert out.out == ""


def test_console_printed_when_the_trace_ends(capsys: pytest.CaptureFixture[str]) -> None:
    rollout.init()
    with rollout.trace("console_trace"):
        assert "console_trace" not in capsys.readouterr().err
    assert "console_trace" in capsys.readouterr().err


def test_console_false_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    rollout.init(console=False)
    assert support_agent(12) == "shipped"
    out = capsys.readouterr()
    assert out.err == ""
    assert out.out == ""


def test_console_env_false_prints_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_CONSOLE", "false")
    client = rollout.init()
    assert client.config.console_enabled is False
    assert support_agent(13) == "shipped"
    out = capsys.readouterr()
    assert out.err == ""
    assert out.out == ""


def test_console_off_when_a_destination_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_config(base_url="http://127.0.0.1:9").console_enabled is False
    assert resolve_config(base_url="http://127.0.0.1:9", console=True).console_enabled is True
    monkeypatch.setenv("ROLLOUT_BASE_URL", "http://127.0.0.1:9")
    assert resolve_config().console_enabled is False
    assert resolve_config(console="on").console_enabled is True
    monkeypatch.delenv("ROLLOUT_BASE_URL")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    assert resolve_config().console_enabled is False
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/v1/traces")
    assert resolve_config().console_enabled is False
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    assert resolve_config().console_enabled is True


def test_malformed_base_url_raises() -> None:
    with pytest.raises(ValueError, match="base_url"):
        rollout.init(base_url="127.0.0.1:4318")
    with pytest.raises(ValueError, match="base_url"):
        rollout.init(base_url="http://")


# -- sampling ------------------------------------------------------------------------------------


def test_sample_rate_zero_records_nothing_but_code_runs() -> None:
    exporter = InMemorySpanExporter()
    rollout.init(sample_rate=0.0, span_exporters=[exporter], sync_mode=True, console=False)
    seen: list[bool] = []

    @rollout.agent
    def run(x: int) -> int:
        trace = rollout.current_trace()
        assert trace is not None
        seen.append(trace.is_recording)
        lookup(x)
        return x + 1

    assert [run(i) for i in range(20)] == list(range(1, 21))
    with rollout.trace("manual") as trace:
        seen.append(trace.is_recording)
    assert rollout.flush()
    assert seen == [False] * 21
    assert exporter.get_finished_spans() == ()


def test_sample_rate_one_records_all() -> None:
    exporter = InMemorySpanExporter()
    rollout.init(sample_rate=1.0, span_exporters=[exporter], sync_mode=True, console=False)
    recording: list[bool] = []

    @rollout.agent
    def run(x: int) -> int:
        trace = rollout.current_trace()
        assert trace is not None
        recording.append(trace.is_recording)
        return x

    for i in range(20):
        run(i)
    assert rollout.flush()
    assert recording == [True] * 20
    assert _names(exporter).count("invoke_agent run") == 20
    assert len({s.context.trace_id for s in exporter.get_finished_spans() if s.context}) == 20


# -- flush / aflush / shutdown / ashutdown ---------------------------------------------------------


def test_flush_and_shutdown_before_init_are_safe() -> None:
    assert rollout.flush() is True
    rollout.shutdown()
    rollout.shutdown()


def test_flush_exports_queued_spans_and_is_idempotent() -> None:
    exporter = InMemorySpanExporter()
    rollout.init(span_exporters=[exporter], console=False, flush_interval=60.0)
    assert support_agent(14) == "shipped"
    assert rollout.flush() is True
    assert "invoke_agent support_agent" in _names(exporter)
    count = len(exporter.get_finished_spans())
    assert rollout.flush() is True
    assert rollout.flush(timeout=1.0) is True
    assert len(exporter.get_finished_spans()) == count


def test_shutdown_exports_and_is_idempotent() -> None:
    exporter = InMemorySpanExporter()
    rollout.init(span_exporters=[exporter], console=False, flush_interval=60.0)
    with rollout.trace("queued"):
        pass
    rollout.shutdown()
    assert "invoke_workflow queued" in _names(exporter)
    rollout.shutdown()
    rollout.flush()  # after shutdown: must not raise or hang
    # Code still runs after shutdown.
    assert support_agent(15) == "shipped"


async def test_aflush_and_ashutdown_are_idempotent() -> None:
    exporter = InMemorySpanExporter()
    rollout.init(span_exporters=[exporter], console=False, flush_interval=60.0)

    @rollout.agent
    async def run(x: int) -> int:
        await asyncio.sleep(0)
        return x

    assert await run(1) == 1
    assert await rollout.aflush() is True
    assert "invoke_agent run" in _names(exporter)
    assert await rollout.aflush() is True
    await rollout.ashutdown()
    await rollout.ashutdown()
    rollout.shutdown()


class BlockingExporter(SpanExporter):
    """An exporter whose export blocks until the test releases it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.started.set()
        self.release.wait(10.0)
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


async def test_aflush_does_not_block_the_event_loop() -> None:
    exporter = BlockingExporter()
    rollout.init(span_exporters=[exporter], console=False, flush_interval=60.0)
    with rollout.trace("slow_export"):
        pass

    counter = 0
    stop = asyncio.Event()

    async def tick() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    flushing = asyncio.create_task(rollout.aflush(timeout=20.0))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    # Wait, on the loop, until the export is in progress and the counter has advanced.
    while not exporter.started.is_set() and loop.time() < deadline:
        await asyncio.sleep(0.001)
    assert exporter.started.is_set()
    start = counter
    while counter < start + 5 and loop.time() < deadline:
        await asyncio.sleep(0.001)
    advanced_while_blocked = counter >= start + 5
    flush_pending = not flushing.done()
    exporter.release.set()  # released from the loop, not by the exporter's timeout

    ok = await asyncio.wait_for(flushing, 15.0)
    stop.set()
    await ticker
    assert advanced_while_blocked
    assert flush_pending
    assert ok is True
    assert [s.name for s in exporter.spans] == ["invoke_workflow slow_export"]


async def test_ashutdown_does_not_block_the_event_loop() -> None:
    exporter = BlockingExporter()
    rollout.init(span_exporters=[exporter], console=False, flush_interval=60.0)
    with rollout.trace("slow_shutdown"):
        pass
    released_by_loop = threading.Event()

    async def wait_then_release() -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while not exporter.started.is_set() and loop.time() < deadline:
            await asyncio.sleep(0.001)
        for _ in range(5):
            await asyncio.sleep(0.001)
        released_by_loop.set()
        exporter.release.set()

    releaser = asyncio.create_task(wait_then_release())
    await asyncio.wait_for(rollout.ashutdown(), 15.0)
    # Had ashutdown blocked the loop, the exporter would have timed out on its own first.
    assert released_by_loop.is_set()
    await releaser
    assert [s.name for s in exporter.spans] == ["invoke_workflow slow_shutdown"]


# -- export filter on a user's provider (DESIGN.md, "Providers and coexistence") -------------


def test_our_exporters_on_a_user_provider_export_only_rollout_spans() -> None:
    provider, user_exporter = _user_provider()
    otel_trace.set_tracer_provider(provider)
    ours = InMemorySpanExporter()
    rollout.init(span_exporters=[ours], sync_mode=True, console=False)
    with provider.get_tracer("db").start_as_current_span("SELECT orders"):
        pass
    assert support_agent(16) == "shipped"
    assert rollout.flush()
    assert "SELECT orders" in _names(user_exporter)  # the user's pipeline sees everything
    assert "invoke_agent support_agent" in _names(ours)
    assert "SELECT orders" not in _names(ours)  # ours only Rollout traces' spans


def test_export_all_spans_exports_foreign_spans_too() -> None:
    provider, _ = _user_provider()
    otel_trace.set_tracer_provider(provider)
    ours = InMemorySpanExporter()
    rollout.init(span_exporters=[ours], sync_mode=True, console=False, export_all_spans=True)
    with provider.get_tracer("db").start_as_current_span("SELECT orders"):
        pass
    assert rollout.flush()
    assert "SELECT orders" in _names(ours)


# -- before init(), the passive client follows a provider installed later -----------------------


def test_decorators_before_init_follow_a_provider_installed_later() -> None:
    assert support_agent(17) == "shipped"  # no provider at all: runs, emits nothing
    client = rollout.get_client()
    provider, exporter = _user_provider()
    otel_trace.set_tracer_provider(provider)
    assert rollout.get_client() is client
    assert support_agent(18) == "shipped"
    assert "invoke_agent support_agent" in _names(exporter)
