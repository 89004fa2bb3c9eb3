"""Delivery over real HTTP: destination resolution, what arrives, check(), stats, lifecycle.

Every test that sends starts an `OTLPReceiver` on 127.0.0.1 and asserts on the spans it
decoded. Fault injection (collector down, stalls, overflow, 4xx/5xx) lives in
the `test_delivery_faults_*.py` modules; fork safety in `test_fork.py`.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout
from mv37.rollout import resolve_config
from mv37.rollout import semconv as sc
from mv37.rollout.pipeline._destination import resolve_destination
from mv37.rollout.testing import OTLPReceiver, ReceivedSpan

if TYPE_CHECKING:
    from tests.helpers import lookup, support_agent
else:
    from helpers import lookup, support_agent

KEY = "sk-rollout-test-0123456789abcdef"
ROOT = Path(__file__).resolve().parent.parent


@rollout.tool("alookup")
async def alookup(order_id: int) -> dict[str, object]:
    await asyncio.sleep(0)
    return {"order_id": order_id, "status": "shipped"}


@rollout.agent("async_support_agent")
async def async_support_agent(order_id: int) -> str:
    return str((await alookup(order_id))["status"])


async def _run_agent(mode: str, order_id: int) -> str:
    if mode == "async":
        return await async_support_agent(order_id)
    return support_agent(order_id)


def _by_name(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    return {span.name: span for span in spans}


# -- destination resolution -----------------------------------------------------------------


def test_base_url_gives_the_traces_endpoint() -> None:
    config = resolve_config(base_url="http://collector:4318/")
    destination = resolve_destination(config, {})
    assert destination is not None
    assert destination.endpoint == "http://collector:4318/v1/traces"
    assert destination.compression == "gzip"
    assert destination.timeout == 10.0
    assert dict(destination.headers) == {}


@pytest.mark.parametrize("suffix", ["/v1/traces", "/v1/traces/"])
def test_a_base_url_already_ending_in_v1_traces_is_used_as_is(
    caplog: pytest.LogCaptureFixture, suffix: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="mv37.rollout")
    for _ in range(2):
        destination = resolve_destination(
            resolve_config(base_url=f"http://u:pw@c:4318{suffix}"), {}
        )
        assert destination is not None
        assert destination.endpoint == "http://u:pw@c:4318/v1/traces"
    lines = [r.getMessage() for r in caplog.records if "already ends in" in r.getMessage()]
    assert lines == [
        "mv37.rollout: base_url http://c:4318/v1/traces already ends in /v1/traces; "
        "sending there as is"
    ]
    assert {r.levelno for r in caplog.records} == {logging.DEBUG}
    # A longer path ending in it too; one merely containing it gets the path added.
    nested = resolve_destination(resolve_config(base_url="http://c/otel/v1/traces"), {})
    assert nested is not None
    assert nested.endpoint == "http://c/otel/v1/traces"
    middle = resolve_destination(resolve_config(base_url="http://c/v1/traces/x"), {})
    assert middle is not None
    assert middle.endpoint == "http://c/v1/traces/x/v1/traces"


def test_the_standard_otel_endpoint_always_gets_the_signal_path() -> None:
    # The spec: OTEL_EXPORTER_OTLP_ENDPOINT is a base, the signal path is always appended
    # (use OTEL_EXPORTER_OTLP_TRACES_ENDPOINT for a full URL).
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/v1/traces"}
    destination = resolve_destination(resolve_config(), env)
    assert destination is not None
    assert destination.endpoint == "http://c:4318/v1/traces/v1/traces"


def test_no_destination_without_base_url_or_otel_endpoint() -> None:
    assert resolve_destination(resolve_config(), {}) is None


def test_otel_endpoint_gets_the_signal_path_and_traces_endpoint_is_used_as_is() -> None:
    config = resolve_config()
    base = resolve_destination(config, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"})
    assert base is not None
    assert base.endpoint == "http://c:4318/v1/traces"
    exact = resolve_destination(
        config,
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:9999/custom/traces",
        },
    )
    assert exact is not None
    assert exact.endpoint == "http://t:9999/custom/traces"


def test_base_url_beats_the_otel_endpoint() -> None:
    config = resolve_config(base_url="http://ours:4318")
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://theirs:4318/v1/traces"}
    destination = resolve_destination(config, env)
    assert destination is not None
    assert destination.endpoint == "http://ours:4318/v1/traces"


def test_timeout_env_is_milliseconds_and_compression_env_applies() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none",
    }
    destination = resolve_destination(resolve_config(), env)
    assert destination is not None
    assert destination.timeout == 2.5
    assert destination.compression == "none"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://c/v1/traces"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:notaport"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-5"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
    ],
)
def test_malformed_otel_variables_raise_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    if "ENDPOINT" not in name:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        rollout.init()


@pytest.mark.parametrize("url", ["localhost:4318", "http://", "http://h:99999", "mailto:x@y"])
def test_malformed_base_url_raises_naming_the_argument(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        rollout.init(base_url=url)


def test_destination_repr_hides_the_api_key() -> None:
    destination = resolve_destination(resolve_config(base_url="http://c", api_key=KEY), {})
    assert destination is not None
    assert destination.headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(destination)
    client = rollout.init(base_url="http://127.0.0.1:9", api_key=KEY, console=False)
    assert KEY not in repr(client)
    assert KEY not in repr(client.config)


def test_url_credentials_are_not_printed() -> None:
    destination = resolve_destination(resolve_config(base_url="http://u:pw@c:4318"), {})
    assert destination is not None
    assert destination.safe_endpoint == "http://c:4318/v1/traces"


# -- what arrives -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_spans_arrive_as_gzip_protobuf_with_bearer_key(
    receiver: OTLPReceiver, mode: str
) -> None:
    rollout.init(base_url=receiver.url, api_key=KEY, agent_name="support", service_name="svc")
    assert await _run_agent(mode, 7) == "shipped"
    assert rollout.flush()
    spans = receiver.wait_for_spans(2)
    request = receiver.requests[0]
    assert request.path == "/v1/traces"
    assert request.content_type == "application/x-protobuf"
    assert request.headers["content-encoding"] == "gzip"
    assert gzip.decompress(request.raw_body) == request.body
    assert request.headers["authorization"] == f"Bearer {KEY}"
    names = _by_name(spans)
    agent = names[f"invoke_agent {'async_' if mode == 'async' else ''}support_agent"]
    tool = names[f"execute_tool {'a' if mode == 'async' else ''}lookup"]
    assert tool.parent_span_id == agent.span_id
    assert tool.trace_id == agent.trace_id
    assert agent.parent_span_id is None
    assert agent.attributes[sc.ROLLOUT_SPAN_TYPE] == "agent"
    assert tool.attributes[sc.ROLLOUT_SPAN_TYPE] == "tool"
    assert tool.attributes[sc.GEN_AI_TOOL_NAME] == tool.name.split()[-1]
    assert agent.resource[sc.SERVICE_NAME] == "svc"
    assert agent.scope_name == "mv37.rollout"
    assert KEY.encode() not in request.body


@pytest.mark.parametrize("via", ["argument", "ROLLOUT_BASE_URL"])
@pytest.mark.parametrize("suffix", ["/v1/traces", "/v1/traces/"])
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_spans_arrive_with_a_base_url_that_already_ends_in_v1_traces(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, mode: str, suffix: str, via: str
) -> None:
    base_url = receiver.url + suffix
    if via == "argument":
        client = rollout.init(base_url=base_url, api_key=KEY, console=False)
    else:
        monkeypatch.setenv("ROLLOUT_BASE_URL", base_url)
        client = rollout.init(api_key=KEY, console=False)
    assert client.destination is not None
    assert client.destination.endpoint == receiver.endpoint
    assert await _run_agent(mode, 3) == "shipped"
    assert rollout.flush()
    spans = receiver.wait_for_spans(2)
    assert [r.path for r in receiver.requests] == ["/v1/traces"]
    assert [r.status for r in receiver.requests] == [200]
    prefix = "async_" if mode == "async" else ""
    assert sorted(s.name for s in spans) == sorted(
        [f"invoke_agent {prefix}support_agent", f"execute_tool {'a' if prefix else ''}lookup"]
    )
    stats = client.stats()
    assert (stats.spans_exported, stats.export_failures) == (2, 0)


def test_standard_otel_variables_deliver_with_their_headers(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme,x-team=agents")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none")
    rollout.init()
    support_agent(1)
    assert rollout.flush()
    receiver.wait_for_spans(2)
    headers = receiver.requests[0].headers
    assert headers["x-tenant"] == "acme"
    assert headers["x-team"] == "agents"
    assert "content-encoding" not in headers
    assert "authorization" not in headers


def test_api_key_wins_over_an_authorization_header_from_the_environment(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Basic%20abc")
    rollout.init(base_url=receiver.url, api_key=KEY)
    support_agent(1)
    assert rollout.flush()
    receiver.wait_for_spans(2)
    assert receiver.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_console_is_off_with_a_destination_unless_asked(
    receiver: OTLPReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    rollout.init(base_url=receiver.url)
    support_agent(1)
    rollout.flush()
    assert "support_agent" not in capsys.readouterr().err
    rollout.init(base_url=receiver.url, console=True)
    support_agent(2)
    rollout.flush()
    assert "support_agent" in capsys.readouterr().err
    receiver.wait_for_spans(4)


def test_batches_respect_max_batch_events(receiver: OTLPReceiver) -> None:
    rollout.init(base_url=receiver.url, max_batch_events=3, flush_interval=60.0)

    @rollout.trace
    def run() -> None:
        for i in range(7):
            lookup(i)

    run()
    assert rollout.flush()
    receiver.wait_for_spans(8)
    sizes = [len(request.spans) for request in receiver.requests]
    assert sum(sizes) == 8
    assert max(sizes) <= 3


def test_batches_respect_max_batch_bytes(receiver: OTLPReceiver) -> None:
    # Each tool span carries its 1000-char output three times (ours, OpenInference,
    # GenAI): about 3.5 kB, so at most two fit in an 8 kB batch.
    rollout.init(base_url=receiver.url, max_batch_bytes=8000, flush_interval=60.0)

    @rollout.tool
    def big(i: int) -> str:
        return "x" * 1000

    @rollout.trace
    def run() -> None:
        for i in range(6):
            big(i)

    run()
    assert rollout.flush()
    receiver.wait_for_spans(7)
    assert len(receiver.requests) >= 3
    assert all(len(request.body) < 8000 for request in receiver.requests)
    assert rollout.stats().dropped["oversize"] == 0


def test_own_provider_exports_foreign_spans_inside_and_outside_traces(
    receiver: OTLPReceiver,
) -> None:
    rollout.init(base_url=receiver.url)
    tracer = otel_trace.get_tracer("third.party")
    with rollout.trace("run"), tracer.start_as_current_span("inside"):
        pass
    with tracer.start_as_current_span("outside"):
        pass
    assert rollout.flush()
    names = {span.name for span in receiver.wait_for_spans(3)}
    assert {"inside", "outside"} <= names
    inside = _by_name(receiver.spans())["inside"]
    assert inside.scope_name == "third.party"


def test_on_a_user_sdk_provider_only_rollout_spans_go_to_our_destination(
    receiver: OTLPReceiver,
) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    otel_trace.set_tracer_provider(provider)
    rollout.init(base_url=receiver.url)
    assert rollout.get_client().tracer_provider is provider
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("GET /health"):
        pass
    with tracer.start_as_current_span("POST /chat"):
        support_agent(3)
    assert rollout.flush()
    ours = {span.name for span in receiver.wait_for_spans(2)}
    assert ours == {"invoke_agent support_agent", "execute_tool lookup"}
    theirs = {span.name for span in memory.get_finished_spans()}
    assert {"GET /health", "POST /chat", "invoke_agent support_agent"} <= theirs
    agent = _by_name(receiver.spans())["invoke_agent support_agent"]
    chat = next(s for s in memory.get_finished_spans() if s.name == "POST /chat")
    assert chat.context is not None
    assert agent.parent_span_id == format(chat.context.span_id, "016x")


def test_reinit_on_a_user_provider_does_not_pile_up_processors(
    receiver: OTLPReceiver,
) -> None:
    provider = TracerProvider()
    for _ in range(5):
        rollout.init(tracer_provider=provider, base_url=receiver.url, sync_mode=True)
    support_agent(1)
    spans = receiver.wait_for_spans(2)
    assert len(receiver.spans()) == 2, [s.name for s in spans]
    processors = provider._active_span_processor._span_processors
    assert len(processors) == 1


# -- check() -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_check_succeeds_and_prints_one_line(
    receiver: OTLPReceiver, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    rollout.init(base_url=receiver.url, api_key=KEY)
    result = await rollout.acheck() if mode == "async" else rollout.check()
    assert result.ok
    assert bool(result)
    assert (result.accepted, result.rejected, result.errors) == (2, 0, ())
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "OK" in out
    assert receiver.endpoint in out
    spans = receiver.wait_for_spans(2)
    assert {span.trace_id for span in spans} == {result.trace_id}
    assert receiver.requests[0].headers["authorization"] == f"Bearer {KEY}"
    root = next(span for span in spans if span.parent_span_id is None)
    assert root.attributes[sc.ROLLOUT_SPAN_TYPE] == "trace"


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_check_reports_a_rejection_with_the_url_and_never_the_key(
    receiver: OTLPReceiver, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    rollout.init(base_url=receiver.url, api_key=KEY)
    receiver.respond_with(401, body=b"bad key " + KEY.encode())
    result = await rollout.acheck() if mode == "async" else rollout.check()
    assert not result.ok
    assert result.accepted == 0
    assert result.rejected == 2
    assert "401" in result.message
    assert receiver.endpoint in result.message
    out = capsys.readouterr().out
    assert out.strip() == result.message
    assert KEY not in out
    assert KEY not in repr(result)


def test_check_reports_partial_success(receiver: OTLPReceiver) -> None:
    rollout.init(base_url=receiver.url)
    receiver.partial_success(1, "span too old")
    result = rollout.check(verbose=False)
    assert not result.ok
    assert (result.accepted, result.rejected) == (1, 1)
    assert "span too old" in result.errors[0]


def test_check_with_nothing_listening_fails_within_its_timeout() -> None:
    server = OTLPReceiver().start()
    server.stop()
    rollout.init(base_url=server.url)
    result = rollout.check(verbose=False, timeout=1.0)
    assert not result.ok
    assert "cannot connect" in result.message
    assert server.endpoint in result.message


def test_check_without_destination_or_disabled_says_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rollout.init(console=False)
    result = rollout.check()
    assert not result.ok
    assert "no destination" in result.message
    assert capsys.readouterr().out.strip() == result.message
    rollout.init(disabled=True, base_url="http://127.0.0.1:9")
    assert "disabled" in rollout.check(verbose=False).message


def test_check_before_init_uses_the_environment(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROLLOUT_BASE_URL", receiver.url)
    assert rollout.check(verbose=False).ok
    receiver.wait_for_spans(2)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mv37.rollout", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_check_exit_codes(receiver: OTLPReceiver) -> None:
    env = {"PATH": "/usr/bin:/bin", "ROLLOUT_BASE_URL": receiver.url, "ROLLOUT_API_KEY": KEY}
    ok = _cli("check", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("\n") == 1
    assert "OK, 2 spans accepted" in ok.stdout
    receiver.respond_with(403)
    denied = _cli("check", env=env)
    assert denied.returncode == 1
    assert "403" in denied.stdout
    assert KEY not in denied.stdout + denied.stderr
    bad = _cli("check", "--base-url", "nonsense", env=env)
    assert bad.returncode == 1
    assert bad.stdout == (
        "mv37.rollout check: FAILED, invalid configuration: --base-url must be an http(s) URL "
        "such as http://localhost:4318\n"
    )
    quiet = _cli("check", "--quiet", env=env)
    assert quiet.returncode == 0
    assert quiet.stdout == ""


# -- stats and lifecycle ----------------------------------------------------------------------


def test_stats_count_started_and_exported(receiver: OTLPReceiver) -> None:
    rollout.init(base_url=receiver.url)
    for i in range(3):
        support_agent(i)
    assert rollout.flush()
    receiver.wait_for_spans(6)
    stats = rollout.stats()
    assert (stats.spans_started, stats.spans_exported, stats.spans_queued) == (6, 6, 0)
    assert stats.spans_dropped == 0
    assert stats.export_failures == 0


def test_stats_count_sampled_out_traces() -> None:
    rollout.init(sample_rate=0.0, console=False)
    for i in range(4):
        support_agent(i)
    stats = rollout.stats()
    assert stats.dropped["sampled_out"] == 4
    assert stats.spans_started == 0


def test_stats_count_spans_ended_after_shutdown(receiver: OTLPReceiver) -> None:
    client = rollout.init(base_url=receiver.url)
    with rollout.trace("late"):
        lookup(1)
        client.shutdown()
    assert receiver.wait_for_spans(1)[0].name == "execute_tool lookup"
    assert client.stats().dropped["shutdown"] == 1


def test_atexit_delivers_a_script_that_never_calls_shutdown(receiver: OTLPReceiver) -> None:
    script = textwrap.dedent(
        f"""
        import mv37.rollout as rollout
        rollout.init(base_url={receiver.url!r}, flush_interval=60)

        @rollout.tool
        def step(i):
            return i

        @rollout.trace
        def main():
            for i in range(3):
                step(i)

        main()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert sorted(span.name for span in receiver.wait_for_spans(4)) == [
        "execute_tool step",
        "execute_tool step",
        "execute_tool step",
        "invoke_workflow main",
    ]


def test_atexit_delivers_on_a_user_provider(receiver: OTLPReceiver) -> None:
    script = textwrap.dedent(
        f"""
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        import mv37.rollout as rollout
        trace.set_tracer_provider(TracerProvider(shutdown_on_exit=False))
        rollout.init(base_url={receiver.url!r}, flush_interval=60)
        with rollout.trace("main"):
            pass
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert [span.name for span in receiver.wait_for_spans(1)] == ["invoke_workflow main"]


def test_importing_the_package_imports_no_exporter() -> None:
    code = (
        "import sys, mv37.rollout; "
        "print(any(m.startswith(('requests', 'opentelemetry.exporter')) for m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"


def test_check_keeps_the_real_failure_when_the_last_retry_has_no_time_left(
    dead_url: str,
) -> None:
    """A retry given a spent timeout (0.0) does not hide why the attempts failed."""
    from mv37.rollout.pipeline._check import _failure_reason
    from mv37.rollout.pipeline._destination import build_otlp_exporter, resolve_destination

    destination = resolve_destination(resolve_config(base_url=dead_url))
    assert destination is not None
    _, session = build_otlp_exporter(destination)
    with pytest.raises(requests.ConnectionError):
        session.request("POST", destination.endpoint, data=b"", timeout=1.0)
    with pytest.raises(ValueError, match="timeout"):
        session.request("POST", destination.endpoint, data=b"", timeout=0.0)
    assert "cannot connect" in _failure_reason(session)
