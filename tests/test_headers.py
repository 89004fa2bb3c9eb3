"""`headers` / `ROLLOUT_HEADERS`: on every request of ours, never in a message.

Also pins what the README says of the OTel header variables: they apply whether or not
`base_url` / `ROLLOUT_BASE_URL` is set.
"""

from __future__ import annotations

import logging

import pytest

import mv37.rollout as rollout
from mv37.rollout.base._config import resolve_config
from mv37.rollout.pipeline import _sinks
from mv37.rollout.pipeline._destination import request_headers
from mv37.rollout.testing import OTLPReceiver


def _export_headers(receiver: OTLPReceiver) -> list[dict[str, str]]:
    return [r.headers for r in receiver.requests if r.path == "/v1/traces"]


@pytest.mark.parametrize("how", ["argument", "mapping", "env"])
def test_headers_reach_the_export(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    if how == "env":
        monkeypatch.setenv("ROLLOUT_HEADERS", "X-Team=search, x-tenant=a%2Cb")
        rollout.init(base_url=receiver.url, console=False)
    elif how == "argument":
        rollout.init(base_url=receiver.url, console=False, headers="X-Team=search,x-tenant=a%2Cb")
    else:
        rollout.init(
            base_url=receiver.url, console=False, headers={"X-Team": "search", "x-tenant": "a,b"}
        )
    with rollout.trace("run"):
        pass
    assert rollout.flush()
    (headers,) = _export_headers(receiver)
    assert (headers["x-team"], headers["x-tenant"]) == ("search", "a,b")


def test_the_otel_header_variables_apply_with_base_url_set(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-generic=1,x-both=generic")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-traces=1,x-both=traces")
    rollout.init(base_url=receiver.url, console=False, headers={"x-ours": "1"})
    with rollout.trace("run"):
        pass
    assert rollout.flush()
    (headers,) = _export_headers(receiver)
    # The signal's own variable replaces the generic one (as the OTel exporter reads them).
    assert (headers["x-traces"], headers["x-both"], headers["x-ours"]) == ("1", "traces", "1")
    assert "x-generic" not in headers


def test_later_sources_win_the_api_key_last(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Basic abc,x-a=otel,x-b=otel")
    config = resolve_config(headers={"x-b": "ours", "Authorization": "Bearer mine"})
    assert request_headers(config) == {
        "authorization": "Bearer mine",
        "x-a": "otel",
        "x-b": "ours",
    }
    keyed = resolve_config(headers={"Authorization": "Bearer mine"}, api_key="rk-1")
    assert request_headers(keyed)["authorization"] == "Bearer rk-1"


def test_the_metrics_signal_reads_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-a=generic")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-a=metrics")
    config = resolve_config(headers="x-b=1")
    assert request_headers(config, signal="metrics") == {"x-a": "metrics", "x-b": "1"}
    assert request_headers(config, signal="traces") == {"x-a": "generic", "x-b": "1"}


@pytest.mark.usefixtures("metrics_on")
def test_headers_reach_the_metrics_export(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-signal=metrics")
    client = rollout.init(
        base_url=receiver.url, console=False, headers={"x-team": "search"}, api_key="rk-m"
    )

    @rollout.tool
    def lookup() -> str:
        return "ok"

    with rollout.trace("run"):
        lookup()
    assert client.flush()
    [request] = receiver.metric_requests()
    assert receiver.points(), "the metrics export carried no points"
    headers = request.headers
    assert (headers["x-team"], headers["x-signal"], headers["authorization"]) == (
        "search",
        "metrics",
        "Bearer rk-m",
    )
    # The trace export does not read the metrics signal's variable.
    (trace_headers,) = _export_headers(receiver)
    assert trace_headers["x-team"] == "search"
    assert "x-signal" not in trace_headers


def test_check_sends_them(receiver: OTLPReceiver) -> None:
    rollout.init(base_url=receiver.url, console=False, headers={"x-team": "search"})
    assert rollout.check(verbose=False)
    (headers,) = _export_headers(receiver)
    assert headers["x-team"] == "search"


def test_the_sinks_send_them(receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sinks, "RETRY_WINDOW", 0.2)  # the receiver answers 404: no Phoenix
    rollout.init(
        base_url=receiver.url,
        console=False,
        feedback_sinks="phoenix",
        headers={"x-team": "search"},
        api_key="rk-secret-1",
    )
    with rollout.trace("run") as trace:
        trace.feedback("thumbs_up", True)
    rollout.flush()
    annotations = [r for r in receiver.requests if r.path.startswith("/v1/trace_annotations")]
    assert annotations
    headers = annotations[0].headers
    assert (headers["x-team"], headers["authorization"]) == ("search", "Bearer rk-secret-1")
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "x-a=1,secret-without-equals",
            "environment variable ROLLOUT_HEADERS must be key=value pairs separated by commas; "
            "entry 2 has no key=value",
        ),
        (
            "=s3cr3t",
            "environment variable ROLLOUT_HEADERS must be key=value pairs separated by "
            "commas; entry 1 has no key=value",
        ),
        ("bad name=s3cr3t", "environment variable ROLLOUT_HEADERS: header 1 has an invalid name"),
    ],
)
def test_a_malformed_value_is_a_value_error_without_its_text(
    monkeypatch: pytest.MonkeyPatch, raw: str, message: str
) -> None:
    monkeypatch.setenv("ROLLOUT_HEADERS", raw)
    with pytest.raises(ValueError) as raised:
        rollout.Rollout()
    assert str(raised.value) == message


def test_never_in_a_repr_or_a_log_line(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mv37.rollout")
    client = rollout.init(
        base_url=receiver.url, console=False, debug=True, headers={"x-token": "tok-s3cr3t"}
    )
    receiver.respond_with(401)
    with rollout.trace("run"):
        pass
    rollout.flush()
    assert "tok-s3cr3t" not in repr(client.config) + repr(client) + repr(client.destination)
    assert "tok-s3cr3t" not in caplog.text
